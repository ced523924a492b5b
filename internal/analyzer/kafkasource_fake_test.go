package analyzer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
)

// Against an in-process Kafka: with two partitions and a cap of 4 offsets per
// batch, batches split the available offsets as Spark's rateLimit does, every
// record is read once, in order, and commits follow each batch.
func TestKafkaSourceBatchesAcrossPartitions(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	send := func(p int32, n int) {
		for i := 0; i < n; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "in", Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(0, 10)
	send(1, 2)

	s, err := NewKafkaSource(ctx, kafka.Config{Brokers: c.ListenAddrs()},
		KafkaSourceConfig{Topic: "in", Group: "g", StartingOffsets: StartEarliest, MaxRecordsPerBatch: 4}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var got []string
	batch := func() {
		t.Helper()
		plan, err := s.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var read []string
		if err := s.Read(ctx, plan, func(r *Record) { read = append(read, fmt.Sprintf("%d@%d", r.Partition, r.Offset)) }); err != nil {
			t.Fatal(err)
		}
		// Partitions arrive in whatever order the fetches do; within a
		// partition the order is the offsets'.
		slices.SortStableFunc(read, func(a, b string) int { return strings.Compare(a[:strings.Index(a, "@")], b[:strings.Index(b, "@")]) })
		if err := s.Commit(ctx, plan); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s lag=%d read=%v", plan, plan.Lag, read))
	}
	batch() // 10 and 2 available: shares 3.33 -> 3 and 0.67 -> 1
	batch() // 7 and 1: 3.5 -> 3 and 0.5 -> 1
	batch() // 4 and 0
	batch() // nothing new
	send(1, 5)
	batch() // 5 new on partition 1, capped at 4
	batch()
	want := []string{
		"in/0[0,3) in/1[0,1) lag=8 read=[0@0 0@1 0@2 1@0]",
		"in/0[3,6) in/1[1,2) lag=4 read=[0@3 0@4 0@5 1@1]",
		"in/0[6,10) lag=0 read=[0@6 0@7 0@8 0@9]",
		"(no new data) lag=0 read=[]",
		"in/1[2,6) lag=1 read=[1@2 1@3 1@4 1@5]",
		"in/1[6,7) lag=0 read=[1@6]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("batches:\n%q\nwant:\n%q", got, want)
	}
	adm := s.adm
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o0, o1 := offs["in"][0].At, offs["in"][1].At; o0 != 10 || o1 != 7 {
		t.Errorf("committed %d and %d, want 10 and 7", o0, o1)
	}
}
