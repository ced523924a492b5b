package analyzer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
	"github.com/cordstream/cordstream/internal/sink"
	"github.com/cordstream/cordstream/internal/window"
)

// produce writes values (nil: a tombstone) to topic, in order, and waits.
func produce(t *testing.T, cl *kgo.Client, topic string, partition int32, values ...[]byte) {
	t.Helper()
	if err := produceErr(cl, topic, partition, values...); err != nil {
		t.Fatal(err)
	}
}

func produceErr(cl *kgo.Client, topic string, partition int32, values ...[]byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Key: []byte(fmt.Sprint("k", i)), Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", topic, err)
	}
	return nil
}

// testLogger logs to the test output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// manualPartitioner clients produce to the partition a record names.
func producer(t *testing.T) *kgo.Client {
	return kafkatest.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

func runAvailableNow(t *testing.T, src KafkaSourceConfig, d Deps) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := NewKafkaSource(ctx, kafkatest.Config(t), src, testLogger(t))
	if err != nil {
		t.Fatalf("NewKafkaSource: %v", err)
	}
	defer s.Close()
	cfg := seedQuery()
	cfg.AvailableNow = true
	d.Source = s
	d.Log = testLogger(t)
	a, err := New(cfg, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Run did not finish in time")
	}
}

func committedOffsets(t *testing.T, cl *kgo.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		out[p] = o.At
	}
	return out
}

func endOffsets(t *testing.T, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ends, err := listOffsets(ctx, kadm.NewClient(cl).ListEndOffsets, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	return ends
}

// The scenario of TestAvailableNowBatchesAndNoDataBatch through a real
// broker: same batches, same rows; bad records land in the dead-letter topic;
// the group's committed offsets end at the topic's end (lag 0).
func TestKafkaSourceAvailableNow(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	deadTopic := kafkatest.Topic(t, 1)
	cl := producer(t)
	values := [][]byte{
		msg("alice", "2025-11-07 18:00:05.000"),
		msg("bob", "2025-11-07 18:00:10.000"),
		msg("alice", "2025-11-07 18:00:40.000"),
		msg("alice", "2025-11-07 18:02:10.000"),
		[]byte(`{"author_name":`),
		msg("alice", "2025-11-07 18:00:20.000"),
		msg("alice", "2025-11-07 18:03:00.000"),
		nil,
	}
	produce(t, cl, topic, 0, values...)

	// The same records through the in-memory source give the expected output.
	ref := &fakeSource{topic: topic, limit: 2}
	ref.add(values...)
	ref.avail = len(values)
	var want bytes.Buffer
	cfg := seedQuery()
	cfg.AvailableNow = true
	a := newTestAnalyzer(t, cfg, Deps{Source: ref, Outputs: []Output{sink.NewJSONLines(&want, cfg.GroupBy)}})
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	group := "test-group-" + topic
	var got, stderr bytes.Buffer
	dcl := kafkatest.Client(t)
	runAvailableNow(t,
		KafkaSourceConfig{Topic: topic, Group: group, StartingOffsets: StartEarliest, AvailableNow: true, MaxRecordsPerBatch: 2},
		Deps{Outputs: []Output{sink.NewJSONLines(&got, cfg.GroupBy)}, DeadLetters: sink.NewDeadLetter(dcl, deadTopic, 0), Stderr: &stderr})

	if got.String() != want.String() || want.Len() == 0 {
		t.Errorf("json lines from Kafka:\n%s\nwant (in-memory source):\n%s", got.String(), want.String())
	}
	if !strings.Contains(stderr.String(), "batch 2: 1 bad record (malformed_json=1)") ||
		!strings.Contains(stderr.String(), "batch 3: 1 bad record (null_value=1)") {
		t.Errorf("stderr: %q", stderr.String())
	}
	if c, e := committedOffsets(t, cl, group, topic), endOffsets(t, cl, topic); c[0] != e[0] || e[0] != int64(len(values)) {
		t.Errorf("committed offsets %v, end offsets %v: want both at %d (lag 0)", c, e, len(values))
	}

	// The dead-letter topic holds the two bad records, with why and whence.
	dead := consumeAll(t, deadTopic, 2)
	wantDead := []struct {
		reason, offset string
		value          []byte
	}{{"malformed_json", "4", values[4]}, {"null_value", "7", nil}}
	for i, w := range wantDead {
		h := headers(dead[i])
		if h[sink.HeaderReason] != w.reason || h[sink.HeaderSourceOffset] != w.offset ||
			h[sink.HeaderSourceTopic] != topic || h[sink.HeaderSourcePartition] != "0" || h[sink.HeaderError] == "" {
			t.Errorf("dead letter %d headers %v, want reason %s, source %s/0@%s", i, h, w.reason, topic, w.offset)
		}
		if !bytes.Equal(dead[i].Value, w.value) || string(dead[i].Key) != fmt.Sprint("k", w.offset) {
			t.Errorf("dead letter %d: key %q value %q, want the original record", i, dead[i].Key, dead[i].Value)
		}
	}
}

// A second available-now run of the same group resumes after the first one's
// commits, whatever --starting-offsets says.
func TestKafkaSourceResumesFromCommittedOffsets(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	cl := producer(t)
	produce(t, cl, topic, 0, msg("alice", "2025-11-07 18:00:05.000"), msg("alice", "2025-11-07 18:00:06.000"))
	group := "test-group-" + topic
	src := KafkaSourceConfig{Topic: topic, Group: group, StartingOffsets: StartEarliest, AvailableNow: true}
	out := &recordingOutput{}
	runAvailableNow(t, src, Deps{Outputs: []Output{out}})
	if len(out.batches) != 2 || out.batches[0].Input != 2 { // data batch, then the no-data batch
		t.Fatalf("first run: batches %+v, want a batch of 2 events then a no-data batch", out.batches)
	}

	produce(t, cl, topic, 0, msg("bob", "2025-11-07 18:00:07.000"))
	src.StartingOffsets = StartLatest
	out = &recordingOutput{}
	runAvailableNow(t, src, Deps{Outputs: []Output{out}})
	if len(out.batches) == 0 || out.batches[0].Input != 1 {
		t.Fatalf("second run: batches %+v, want batch 0 with bob's message only", out.batches)
	}
	for _, r := range out.batches[0].Rows {
		if r.Keys[0].S != "bob" || r.Count != 1 {
			t.Errorf("second run row %+v, want only bob with 1", r)
		}
	}
	if c := committedOffsets(t, cl, group, topic); c[0] != 3 {
		t.Errorf("committed %v, want 3", c)
	}
}

// Three partitions, a cap of 5 per batch: every record is read exactly once,
// no batch reads more than 5 offsets, and every partition is committed to
// its end.
func TestKafkaSourcePartitionsAndCap(t *testing.T) {
	topic := kafkatest.Topic(t, 3)
	cl := producer(t)
	sizes := []int{9, 4, 1}
	total := 0
	for p, n := range sizes {
		var vals [][]byte
		for i := range n {
			vals = append(vals, msg(fmt.Sprint("a", p), fmt.Sprintf("2025-11-07 18:00:%02d.000", i)))
		}
		produce(t, cl, topic, int32(p), vals...)
		total += n
	}
	group := "test-group-" + topic
	var inputs []int64
	out := outputFunc(func(_ context.Context, b *window.Batch) error {
		inputs = append(inputs, b.Input)
		return nil
	})
	runAvailableNow(t, KafkaSourceConfig{Topic: topic, Group: group, StartingOffsets: StartEarliest, AvailableNow: true, MaxRecordsPerBatch: 5},
		Deps{Outputs: []Output{out}})
	var sum int64
	for _, n := range inputs {
		if n > 5 {
			t.Errorf("a batch read %d events, more than the cap of 5", n)
		}
		sum += n
	}
	if sum != int64(total) {
		t.Errorf("batches read %d events in all (%v), want %d", sum, inputs, total)
	}
	c, e := committedOffsets(t, cl, group, topic), endOffsets(t, cl, topic)
	for p, n := range sizes {
		if c[int32(p)] != int64(n) || e[int32(p)] != int64(n) {
			t.Errorf("partition %d: committed %d, end %d, want %d", p, c[int32(p)], e[int32(p)], n)
		}
	}
}

// The processing-time trigger against the broker: with latest offsets the
// first batch is empty, messages produced afterwards are counted in a later
// batch, a stop ends Run cleanly, and the offsets are committed.
func TestKafkaSourceProcessingTime(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	cl := producer(t)
	produce(t, cl, topic, 0, msg("old", "2025-11-07 18:00:00.000")) // before the start: not read with latest
	group := "test-group-" + topic
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := NewKafkaSource(ctx, kafkatest.Config(t), KafkaSourceConfig{Topic: topic, Group: group, StartingOffsets: StartLatest}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	var events []string
	batches := 0
	stop, stopRun := context.WithCancel(ctx)
	defer stopRun()
	out := outputFunc(func(_ context.Context, b *window.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		batches++
		if b.ID == 0 {
			// Batch 0 has run: the start position is fixed; produce now.
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := produceErr(cl, topic, 0, msg("new", "2025-11-07 18:01:00.000"), msg("new", "2025-11-07 18:01:01.000")); err != nil {
					t.Error(err)
				}
			}()
		}
		for _, r := range b.Rows {
			events = append(events, fmt.Sprintf("%s:%d", r.Keys[0].S, r.Count))
			if r.Keys[0].S == "new" && r.Count == 2 {
				stopRun()
			}
		}
		return nil
	})
	cfg := seedQuery()
	cfg.Trigger = 100 * time.Millisecond
	a := newTestAnalyzer(t, cfg, Deps{Source: s, Outputs: []Output{out}, Log: testLogger(t)})
	if err := a.Run(stop); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("no batch counted the new messages in time; rows seen: %v", events)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range events {
		if strings.HasPrefix(e, "old:") {
			t.Errorf("row %s: a message from before the start was read with latest offsets", e)
		}
	}
	if c := committedOffsets(t, cl, group, topic); c[0] != 3 {
		t.Errorf("committed %v, want 3 (1 old + 2 new)", c)
	}
}

// consumeAll reads n records from the start of topic.
func consumeAll(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func headers(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// A partition whose range is complete while the batch still reads another
// one stops being fetched once it holds holdPauseAfter records, and is
// fetched again once a Read leaves it fewer; every record still comes out once, in
// order, in the batch that planned it.
func TestKafkaSourcePausesPartitionsAhead(t *testing.T) {
	old := holdPauseAfter
	holdPauseAfter = 10
	defer func() { holdPauseAfter = old }()

	topic := kafkatest.Topic(t, 2)
	cl := producer(t)
	n := map[int32]int{0: 30, 1: 600}
	for p, count := range n {
		var vals [][]byte
		for i := range count {
			vals = append(vals, fmt.Appendf(nil, "p%d-%d", p, i))
		}
		produce(t, cl, topic, p, vals...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := NewKafkaSource(ctx, kafkatest.Config(t), KafkaSourceConfig{
		Topic: topic, Group: kafkatest.TopicName(t), StartingOffsets: StartEarliest,
		AvailableNow: true, MaxRecordsPerBatch: 63,
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	next := map[int32]int64{0: 0, 1: 0}
	pausedSeen := false
	for batch := 0; ; batch++ {
		plan, err := s.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Empty() {
			break
		}
		if batch > 100 {
			t.Fatalf("more than 100 batches for %d records", n[0]+n[1])
		}
		in := map[int32]Range{}
		for _, r := range plan.Ranges {
			in[r.Partition] = r
		}
		err = s.Read(ctx, plan, func(r *Record) {
			rg, ok := in[r.Partition]
			if !ok || r.Offset < rg.From || r.Offset >= rg.To {
				t.Fatalf("batch %d: record %d/%d outside the plan %s", batch, r.Partition, r.Offset, plan)
			}
			if r.Offset != next[r.Partition] {
				t.Fatalf("batch %d: partition %d: offset %d, want %d (lost or repeated records)", batch, r.Partition, r.Offset, next[r.Partition])
			}
			if want := fmt.Sprintf("p%d-%d", r.Partition, r.Offset); string(r.Value) != want {
				t.Fatalf("record %d/%d = %q, want %q", r.Partition, r.Offset, r.Value, want)
			}
			next[r.Partition]++
		})
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		for tpart, held := range s.rr.held {
			if s.rr.paused[tpart] {
				pausedSeen = true
			} else if len(held) >= holdPauseAfter {
				t.Errorf("batch %d: partition %d holds %d records and is not paused", batch, tpart.p, len(held))
			}
		}
		s.mu.Unlock()
		if paused := s.cl.PauseFetchPartitions(nil)[topic]; len(paused) != len(s.rr.paused) {
			t.Errorf("batch %d: client has partitions %v paused, reader %v", batch, paused, s.rr.paused)
		}
		if err := s.Commit(ctx, plan); err != nil {
			t.Fatal(err)
		}
	}
	for p, count := range n {
		if next[p] != int64(count) {
			t.Errorf("partition %d: read %d records, want %d", p, next[p], count)
		}
	}
	if !pausedSeen {
		t.Error("no partition was paused: the test did not exercise pausing")
	}
	s.mu.Lock()
	for tpart := range s.rr.paused {
		t.Errorf("partition %d still paused after the last batch, holding %d records", tpart.p, len(s.rr.held[tpart]))
	}
	s.mu.Unlock()
}
