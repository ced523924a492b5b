//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
)

// ProducerSeed names the seed's producer in (d): bench/seedproducer,
// discord.py with kafka-python, as the seed's on_message describes it.
const ProducerSeed = "seed"

// seedKey identifies a record of the seed's producer, which carries no
// message id: its author, its millisecond timestamp and its text. Two
// messages of one author with the same text in the same millisecond share a
// key; they are matched in order.
func seedKey(authorID, timestamp, content string) string {
	return authorID + "\x00" + timestamp + "\x00" + content
}

// seedRecord is the seed's JSON record (its four fields).
type seedRecord struct {
	AuthorID   string `json:"author_id"`
	AuthorName string `json:"author_name"`
	Content    string `json:"content"`
	Timestamp  string `json:"message_timestamp"`
}

// seedWatcher reads a topic the seed's producer writes and remembers every
// record by seedKey, in offset order.
type seedWatcher struct {
	cl   *kgo.Client
	done chan struct{}

	mu      sync.Mutex
	records map[string][]seen
	bad     int
}

func startSeedWatcher(ctx context.Context, kcfg kafka.Config, topic string) (*seedWatcher, error) {
	cl, err := kafka.NewClient(ctx, kcfg, nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	w := &seedWatcher{cl: cl, done: make(chan struct{}), records: map[string][]seen{}}
	go w.run()
	return w, nil
}

func (w *seedWatcher) run() {
	defer close(w.done)
	for {
		fs := w.cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return
		}
		w.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			var s seedRecord
			if err := json.Unmarshal(r.Value, &s); err != nil || s.AuthorID == "" || s.Timestamp == "" {
				w.bad++
				return
			}
			k := seedKey(s.AuthorID, s.Timestamp, s.Content)
			w.records[k] = append(w.records[k], seen{partition: r.Partition, offset: r.Offset, appended: r.Timestamp})
		})
		w.mu.Unlock()
	}
}

// reset forgets the records seen so far (between phases).
func (w *seedWatcher) reset() {
	w.mu.Lock()
	w.records = map[string][]seen{}
	w.mu.Unlock()
}

func (w *seedWatcher) Close() {
	w.cl.Close()
	<-w.done
}

// matched returns how many of the world's posts since its last forget have
// a record.
func (w *seedWatcher) matched(world *simWorld) int {
	world.mu.Lock()
	defer world.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for k, posts := range world.bySeedKey {
		n += min(len(posts), len(w.records[k]))
	}
	return n
}

// settle waits until all n posts have a record, or until none arrived for
// quiet (the rest are lost), and returns how many arrived. It fails if
// records still arrive after limit: a producer that slow is not losing
// messages, and its numbers would not say so.
func (w *seedWatcher) settle(ctx context.Context, world *simWorld, n int, quiet, limit time.Duration) (int, error) {
	start := time.Now()
	last, lastChange := -1, time.Now()
	for {
		got := w.matched(world)
		if got >= n {
			return got, nil
		}
		if got != last {
			last, lastChange = got, time.Now()
		}
		if time.Since(lastChange) > quiet {
			return got, nil
		}
		if time.Since(start) > limit {
			return got, fmt.Errorf("only %d of %d messages reached Kafka within %v, and more were still arriving", got, n, limit)
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// latencies pairs posts and records of each key in order and returns post
// -> broker append in ms (half a millisecond added to the append time, as in
// ingestLatencies).
func (w *seedWatcher) latencies(world *simWorld) (lat []float64, first, last time.Time) {
	world.mu.Lock()
	defer world.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, posts := range world.bySeedKey {
		recs := w.records[k]
		if len(recs) == 0 {
			continue
		}
		posts = slices.Clone(posts)
		slices.SortFunc(posts, func(a, b time.Time) int { return a.Compare(b) })
		recs = slices.Clone(recs)
		slices.SortFunc(recs, func(a, b seen) int {
			if a.partition != b.partition {
				return int(a.partition - b.partition)
			}
			return int(a.offset - b.offset)
		})
		for i := range min(len(posts), len(recs)) {
			app := recs[i].appended.Add(500 * time.Microsecond)
			lat = append(lat, float64(app.Sub(posts[i]))/1e6)
			if first.IsZero() || posts[i].Before(first) {
				first = posts[i]
			}
			if app.After(last) {
				last = app
			}
		}
	}
	return lat, first, last
}

// runSeedProducer measures the seed's producer as (d) measures the bot: the
// same simulated world and phases (steady rate, then as fast as the
// simulator posts), the producer pointed at the simulator's REST base and
// gateway. It has no latency histogram of its own: its latency is post ->
// broker append; messages that never reach the topic are counted as lost.
func (h *harness) runSeedProducer(ctx context.Context) (*BotResult, error) {
	topic, err := h.newTopic(ctx, "seed-producer")
	if err != nil {
		return nil, err
	}
	defer h.dropTopic(topic)
	world, err := newSimWorld(h.cfg.seed, h.cfg.authors)
	if err != nil {
		return nil, err
	}
	defer world.Close()
	world.keySeedRecords()
	wt, err := startSeedWatcher(ctx, h.kcfg, topic)
	if err != nil {
		return nil, err
	}
	defer wt.Close()
	var tail stderrTail
	ready := make(chan time.Time, 1)
	var once sync.Once
	args := []string{filepath.Join(h.root, "bench", "seedproducer", "discord_producer.py"),
		"--brokers", h.brokers, "--topic", topic,
		"--discord-api-url", world.srv.APIURL(), "--gateway-url", world.srv.GatewayURL()}
	p, err := startProcEvery(h.cfg.seedPython, args, []string{"DISCORD_TOKEN=" + world.srv.Token(), "PYTHONUNBUFFERED=1"},
		func(t time.Time, line string) {
			if line == "ready" {
				once.Do(func() { ready <- t })
			}
		}, func(_ time.Time, l string) { tail.add(l) }, 100*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	res := &BotResult{Producer: ProducerSeed, Spool: "none"}
	select {
	case t := <-ready:
		res.ReadyS = t.Sub(p.start).Seconds()
	case <-p.exit:
		_, err := p.Wait()
		return nil, fmt.Errorf("the seed's producer exited before it was ready: %v\n%s", err, tail.String())
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("the seed's producer was not ready within a minute\n%s", tail.String())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	h.log.Info("seed producer ready", "seconds", fmt.Sprintf("%.2f", res.ReadyS))

	phase := func(name string, rate float64, count int, d time.Duration) (BotPhase, error) {
		ph := BotPhase{Name: name, NoHistogram: true}
		world.forget()
		wt.reset()
		p.sampleOnce()
		cpu0 := p.CPU()
		n, err := world.traffic(ctx, rate, count, d)
		if err != nil {
			return ph, err
		}
		got, err := wt.settle(ctx, world, n, 15*time.Second, 10*time.Minute)
		if err != nil {
			return ph, fmt.Errorf("%s: %w\n%s", name, err, tail.String())
		}
		p.sampleOnce()
		ph.CPUS = p.CPU() - cpu0
		ph.Messages = n
		ph.Lost = n - got
		ph.CPUPerMsgUS = ph.CPUS / float64(n) * 1e6
		lat, first, last := wt.latencies(world)
		ph.External = distOf(lat)
		if span := last.Sub(first).Seconds(); span > 0 {
			ph.RatePerS = float64(got) / span
		}
		h.log.Info("seed producer phase", "phase", name, "messages", n, "lost", ph.Lost, "msgs_per_s", int(ph.RatePerS),
			"ext_p50_ms", ms(ph.External.P50), "ext_p99_ms", ms(ph.External.P99), "cpu_s", fmt.Sprintf("%.2f", ph.CPUS))
		return ph, nil
	}
	if res.Steady, err = phase(fmt.Sprintf("steady %.0f msgs/s", h.cfg.botRate), h.cfg.botRate, 0, h.cfg.botDuration); err != nil {
		return nil, err
	}
	if res.Burst, err = phase("as fast as the simulator posts", 0, h.cfg.botBurst, 0); err != nil {
		return nil, err
	}
	_ = p.Signal(syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if res.Proc, err = waitProc(wctx, p); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail.String())
	}
	return res, nil
}
