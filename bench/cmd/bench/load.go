//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/bench/workload"
	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/kafka"
)

// LoadStats describes the loaded data.
type LoadStats struct {
	Topics       map[int]string `json:"topics"` // partitions -> topic
	Messages     int64          `json:"messages"`
	AvgBytes     float64        `json:"avg_value_bytes"`
	Seconds      float64        `json:"seconds"`
	Compression  string         `json:"compression"`
	Reused       bool           `json:"reused"`
	EventSeconds float64        `json:"event_time_span_s"`
}

// createTopic creates a topic (replication factor 1) and waits for its leaders.
func createTopic(ctx context.Context, cl *kgo.Client, name string, partitions int, configs map[string]string) error {
	created, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{Name: name, Partitions: int32(partitions), ReplicationFactor: 1, Configs: configs})
	if err != nil {
		return err
	}
	if !created {
		return fmt.Errorf("topic %s already exists", name)
	}
	return nil
}

// endOffsets returns the sum of the end offsets of topic's partitions, and
// how many partitions it has (0 when it does not exist).
func endOffsets(ctx context.Context, cl *kgo.Client, topic string) (total int64, parts int, err error) {
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Topic == topic {
			total += o.Offset
			parts++
		}
	})
	return total, parts, nil
}

// loadTopics writes the same n generated messages, in the same order, to
// every topic (one per partition count), through one producer: snappy
// compression as the bot's producer (franz-go's default), large batches,
// keyed by author id as the bot keys them. With reuse, topics that already
// hold exactly n records are kept as they are.
func loadTopics(ctx context.Context, kcfg kafka.Config, topics map[int]string, n int64, wcfg workload.Config, reuse bool, log *slog.Logger) (LoadStats, error) {
	st := LoadStats{Topics: topics, Messages: n, Compression: "snappy"}
	admin, err := kafka.NewClient(ctx, kcfg, nil)
	if err != nil {
		return st, err
	}
	defer admin.Close()
	var todo []string
	for parts, t := range topics {
		have, hp, err := endOffsets(ctx, admin, t)
		if err == nil && hp == parts && have == n && reuse {
			log.Info("reusing loaded topic", "topic", t, "records", have)
			continue
		}
		if hp > 0 {
			if !reuse {
				return st, fmt.Errorf("topic %s already exists (%d records); remove it or pass --reuse-topics", t, have)
			}
			log.Info("topic holds other data; recreating it", "topic", t, "records", have, "partitions", hp)
			if err := kafka.DeleteTopic(ctx, admin, t); err != nil {
				return st, err
			}
			time.Sleep(2 * time.Second)
		}
		if err := createTopic(ctx, admin, t, parts, nil); err != nil {
			return st, err
		}
		todo = append(todo, t)
	}
	if len(todo) == 0 {
		st.Reused = true
		return st, nil
	}

	cl, err := kafka.NewClient(ctx, kcfg, nil,
		kgo.ProducerBatchCompression(kgo.SnappyCompression()),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(20*time.Millisecond),
		kgo.MaxBufferedRecords(1<<18),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(),
	)
	if err != nil {
		return st, err
	}
	defer cl.Close()

	g := workload.New(wcfg)
	var m chat.Message
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
		wg.Done()
	}
	start := time.Now()
	var bytes int64
	var first, last int64
	arena := make([]byte, 0, 4<<20)
	lastLog := start
	for i := range n {
		g.Next(&m)
		if len(arena)+4096 > cap(arena) {
			arena = make([]byte, 0, 4<<20)
		}
		off := len(arena)
		arena, err = chat.AppendEncode(arena, &m)
		if err != nil {
			return st, err
		}
		val := arena[off:len(arena):len(arena)]
		key := []byte(*m.AuthorID)
		bytes += int64(len(val))
		us := m.Timestamp.UnixMicro()
		if i == 0 {
			first, last = us, us
		}
		first, last = min(first, us), max(last, us)
		for _, t := range todo {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: t, Key: key, Value: val}, done)
		}
		if e := failed.Load(); e != nil {
			return st, fmt.Errorf("load: %w", *e)
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			log.Info("loading", "messages", i, "of", n, "per_s", int(float64(i)/time.Since(start).Seconds()))
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return st, err
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return st, fmt.Errorf("load: %w", *e)
	}
	st.Seconds = time.Since(start).Seconds()
	st.AvgBytes = float64(bytes) / float64(n)
	st.EventSeconds = float64(last-first) / 1e6
	for _, t := range todo {
		have, _, err := endOffsets(ctx, admin, t)
		if err != nil {
			return st, err
		}
		if have != n {
			return st, fmt.Errorf("topic %s holds %d records after loading, want %d", t, have, n)
		}
	}
	return st, nil
}

// deleteTopics deletes the topics, logging failures.
func deleteTopics(kcfg kafka.Config, names []string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(ctx, kcfg, nil)
	if err != nil {
		log.Warn("could not delete the benchmark topics", "err", err)
		return
	}
	defer cl.Close()
	for _, t := range names {
		var nf *kafka.TopicNotFoundError
		if err := kafka.DeleteTopic(ctx, cl, t); err != nil && !errors.As(err, &nf) {
			log.Warn("could not delete topic", "topic", t, "err", err)
		}
	}
}
