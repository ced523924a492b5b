package analyzer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
	"github.com/cordstream/cordstream/internal/sink"
	"github.com/cordstream/cordstream/internal/window"
)

// stateRun runs the seed's query available-now with durable state in Kafka
// and returns the batches it wrote.
func stateRun(t *testing.T, topic, app, instance string, cfgMod func(*Config), d Deps) []window.Batch {
	t.Helper()
	return stateRunCap(t, topic, app, instance, 2, cfgMod, d)
}

// stateRunCap is stateRun with a cap on the records of a batch (0: none).
func stateRunCap(t *testing.T, topic, app, instance string, maxRecords int64, cfgMod func(*Config), d Deps) []window.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := kafkatest.Client(t)
	info, err := kafka.DescribeTopic(ctx, cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	shuffle, err := EnsureStateTopics(ctx, cl, app, int32(len(info.Partitions)), 1, testLogger(t))
	if err != nil {
		t.Fatalf("EnsureStateTopics: %v", err)
	}
	t.Cleanup(func() {
		for _, n := range StateTopicNames(app) {
			kafka.DeleteTopic(context.Background(), cl, n)
		}
	})
	st, err := NewKafkaState(ctx, kafkatest.Config(t), KafkaStateConfig{
		KafkaSourceConfig: KafkaSourceConfig{Topic: topic, Group: app, StartingOffsets: StartEarliest, AvailableNow: true, MaxRecordsPerBatch: maxRecords},
		ApplicationID:     app, InstanceID: instance, Shuffle: shuffle, SessionTimeout: 6 * time.Second,
	}, testLogger(t))
	if err != nil {
		t.Fatalf("NewKafkaState: %v", err)
	}
	defer st.Close()
	cfg := seedQuery()
	cfg.AvailableNow, cfg.Dedup = true, true
	if cfgMod != nil {
		cfgMod(&cfg)
	}
	out := &recordingOutput{}
	d.Source, d.Log = st, testLogger(t)
	d.Outputs = append(d.Outputs, out)
	a, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out.batches
}

// State survives a restart: the second run continues the counts and the
// batch ids of the first, and reads only what is new; a duplicate of a
// message counted by the first run is not counted again.
func TestKafkaStateSurvivesRestart(t *testing.T) {
	topic := kafkatest.Topic(t, 2)
	cl := producer(t)
	produce(t, cl, topic, 0, msgID("1", "alice", "2025-11-07 18:00:05.000"), msgID("2", "alice", "2025-11-07 18:00:06.000"))
	produce(t, cl, topic, 1, msgID("3", "bob", "2025-11-07 18:00:07.000"))
	app := "test-app-" + topic
	first := stateRun(t, topic, app, "i1", nil, Deps{})
	if len(first) == 0 {
		t.Fatal("first run: no batch")
	}
	last := first[len(first)-1]

	produce(t, cl, topic, 0, msgID("4", "alice", "2025-11-07 18:00:08.000"), msgID("1", "alice", "2025-11-07 18:00:05.000")) // the second is a duplicate
	second := stateRun(t, topic, app, "i1", nil, Deps{})
	if len(second) == 0 {
		t.Fatal("second run: no batch")
	}
	if second[0].ID != last.ID+1 {
		t.Errorf("second run's first batch is %d, want %d (after the first run's last)", second[0].ID, last.ID+1)
	}
	if second[0].Input != 1 {
		t.Errorf("second run's first batch counted %d events, want 1 (the new message; its duplicate dropped)", second[0].Input)
	}
	got := map[string]int64{}
	for _, b := range second {
		for _, r := range b.Rows {
			got[fmt.Sprintf("%s@%s", r.Keys[0].S, time.UnixMicro(r.Start).UTC().Format("15:04:05"))] = r.Count
		}
	}
	want := map[string]int64{"alice@17:59:30": 3, "alice@18:00:00": 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("second run's rows %v, want %v (the first run's 2, plus 1)", got, want)
	}
}

// msgID is msg with a given message id.
func msgID(id, author, ts string) []byte {
	b := msg(author, ts)
	return []byte(strings.Replace(string(b), `"message_id":"m-`+author+ts+`"`, `"message_id":"`+id+`"`, 1))
}

// Results and dead letters are produced in the batch's transaction: a
// read-committed consumer sees each exactly once.
func TestKafkaStateResultsAndDeadLettersInTransaction(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	results := kafkatest.Topic(t, 1)
	dead := kafkatest.Topic(t, 1)
	cl := producer(t)
	produce(t, cl, topic, 0,
		msgID("1", "alice", "2025-11-07 18:00:05.000"),
		[]byte(`{"author_name":`), // poison
		msgID("2", "bob", "2025-11-07 18:00:06.000"),
		nil, // tombstone
	)
	app := "test-app-" + topic
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	info, _ := kafka.DescribeTopic(ctx, kafkatest.Client(t), topic)
	shuffle, err := EnsureStateTopics(ctx, kafkatest.Client(t), app, int32(len(info.Partitions)), 1, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range StateTopicNames(app) {
			kafka.DeleteTopic(context.Background(), kafkatest.Client(t), n)
		}
	})
	st, err := NewKafkaState(ctx, kafkatest.Config(t), KafkaStateConfig{
		KafkaSourceConfig: KafkaSourceConfig{Topic: topic, Group: app, StartingOffsets: StartEarliest, AvailableNow: true, MaxRecordsPerBatch: 2},
		ApplicationID:     app, InstanceID: "i1", Shuffle: shuffle,
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := seedQuery()
	cfg.AvailableNow = true
	rec := &recordingOutput{}
	a := newTestAnalyzer(t, cfg, Deps{Source: st, Log: testLogger(t),
		Outputs:     []Output{sink.NewKafkaResults(st.Client(), results, cfg.GroupBy), rec},
		DeadLetters: sink.NewDeadLetter(st.Client(), dead, 0)})
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, b := range rec.batches {
		rows += len(b.Rows)
	}
	rc := kafkatest.Client(t, kgo.ConsumeTopics(results, dead), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var res, dl []*kgo.Record
	deadline := time.Now().Add(20 * time.Second)
	for (len(res) < rows || len(dl) < 2) && time.Now().Before(deadline) {
		pctx, c := context.WithTimeout(ctx, time.Second)
		rc.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			if r.Topic == results {
				res = append(res, r)
			} else {
				dl = append(dl, r)
			}
		})
		c()
	}
	if len(res) != rows || rows == 0 {
		t.Errorf("read-committed consumer saw %d result records, the batches emitted %d rows", len(res), rows)
	}
	if len(dl) != 2 || headers(dl[0])[sink.HeaderReason] != "malformed_json" || headers(dl[1])[sink.HeaderReason] != ReasonNullValue {
		t.Errorf("dead letters %d, want the poison record and the tombstone", len(dl))
	}
}

// A second process with the same instance id fences the first: its next
// commit fails with an error that says what to change.
func TestKafkaStateSameInstanceIDIsFenced(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	app := "test-app-" + topic
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	shuffle, err := EnsureStateTopics(ctx, kafkatest.Client(t), app, 1, 1, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range StateTopicNames(app) {
			kafka.DeleteTopic(context.Background(), kafkatest.Client(t), n)
		}
	})
	cfg := KafkaStateConfig{
		KafkaSourceConfig: KafkaSourceConfig{Topic: topic, Group: app, StartingOffsets: StartEarliest},
		ApplicationID:     app, InstanceID: "same", Shuffle: shuffle,
	}
	first, err := NewKafkaState(ctx, kafkatest.Config(t), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := first.Plan(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := NewKafkaState(ctx, kafkatest.Config(t), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := first.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	first.Write(ctx, StateRecord{Topic: WindowState, Partition: 0, Key: []byte("x"), Value: []byte("1")})
	err = first.Commit(ctx, Plan{})
	var fe *FencedError
	if !errors.As(err, &fe) || fe.Hint() == "" {
		t.Fatalf("commit of the fenced instance: %v, want a FencedError", err)
	}
}

// A batch that adds more message ids than fit in one Kafka record (here
// 60,000 snowflakes in one window, about 1.3 MB as JSON, over the broker's
// 1 MiB default) stores them in several de-duplication records: the batch
// commits, and a second run finds every id again and counts no copy.
func TestKafkaStateManyIDsInOneBatch(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	cl := producer(t)
	const n = 60_000
	var vals [][]byte
	for i := range n {
		vals = append(vals, msgID(fmt.Sprint(1442323862181007360+int64(i)), fmt.Sprint("a", i%50), "2025-11-07 18:00:05.000"))
	}
	produce(t, cl, topic, 0, vals...)
	app := "test-app-" + topic
	first := stateRunCap(t, topic, app, "i1", 0, nil, Deps{})
	var counted int64
	for _, b := range first {
		counted += b.Input
	}
	if counted != n {
		t.Fatalf("first run counted %d events, want %d", counted, n)
	}
	produce(t, cl, topic, 0, vals[:1000]...)
	second := stateRunCap(t, topic, app, "i1", 0, nil, Deps{})
	counted = 0
	for _, b := range second {
		counted += b.Input
	}
	if counted != 0 {
		t.Errorf("second run counted %d of 1000 copies of counted messages, want 0 (their ids were stored)", counted)
	}
}

// A reload after a rolled-back batch keeps the partitions a rebalance
// assigned while it read the state back: their state, loaded when they
// were assigned, is only in the changes not planned yet. (Found by
// TestThreeInstancesOneKilled: without it the new owner counted a gained
// shuffle partition's rows from zero and let duplicates of a gained input
// partition through.)
func TestKeepGainedDuringReload(t *testing.T) {
	reset := &StateChanges{Reset: true,
		GainedInput:   map[int32]PartitionState{3: {"o": []byte("30")}},
		GainedShuffle: map[int32]PartitionState{3: {"o": []byte("31")}}}
	prev := &StateChanges{
		GainedInput:   map[int32]PartitionState{3: {"o": []byte("old")}, 5: {"o": []byte("50")}, 6: {"o": []byte("60")}},
		GainedShuffle: map[int32]PartitionState{2: {"o": []byte("20")}},
		LostInput:     []int32{1}}
	owned := map[tp]int64{{"in", 3}: 0, {"in", 5}: 0, {"rep", 2}: 0, {"rep", 3}: 0}
	got := keepGained(reset, prev, owned, "in", "rep")
	if !got.Reset {
		t.Error("no longer a reset")
	}
	for name, c := range map[string]struct {
		m    map[int32]PartitionState
		want map[int32]string
	}{
		"input":   {got.GainedInput, map[int32]string{3: "30", 5: "50"}},
		"shuffle": {got.GainedShuffle, map[int32]string{2: "20", 3: "31"}},
	} {
		if len(c.m) != len(c.want) {
			t.Errorf("%s partitions gained: %v, want %v", name, slices.Sorted(maps.Keys(c.m)), slices.Sorted(maps.Keys(c.want)))
		}
		for p, o := range c.want {
			if got := string(c.m[p]["o"]); got != o {
				t.Errorf("%s partition %d: state %q, want %q", name, p, got, o)
			}
		}
	}
	if keepGained(reset, nil, nil, "in", "rep") != reset {
		t.Error("without pending changes the reset is not returned as it is")
	}
}

// An instance that owns no partition says so a minute after it began, then
// every minute, with how long it has lasted; owning one again resets it.
func TestIdleWatch(t *testing.T) {
	var w idleWatch
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		after   time.Duration
		none    bool
		say     bool
		lasting time.Duration
	}{
		{0, true, false, 0},
		{30 * time.Second, true, false, 0},
		{59 * time.Second, true, false, 0},
		{60 * time.Second, true, true, 60 * time.Second},
		{90 * time.Second, true, false, 0},
		{125 * time.Second, true, true, 125 * time.Second},
		{130 * time.Second, false, false, 0},
		{140 * time.Second, true, false, 0},
		{199 * time.Second, true, false, 0},
		{200 * time.Second, true, true, 60 * time.Second},
	}
	for i, s := range steps {
		d, say := w.note(t0.Add(s.after), s.none)
		if say != s.say || d != s.lasting {
			t.Fatalf("step %d (at %v, none %v): said %v after %v, want %v after %v", i, s.after, s.none, say, d, s.say, s.lasting)
		}
	}
}

// TestUnstableOffsetsWarning: franz-go's quiet retries of an offset fetch
// the broker answers with UNSTABLE_OFFSET_COMMIT turn into a warning once
// they have gone on for a minute (then every minute); a pause longer than
// unstableGap starts the count again, and other errors do not count.
func TestUnstableOffsetsWarning(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := unstableLogger(slog.New(slog.NewTextHandler(&buf, nil)), &unstableWatch{now: func() time.Time { return now }})
	if l.Level() != kgo.LogLevelInfo {
		t.Fatalf("level %v: franz-go would not report its retries", l.Level())
	}
	const msg = "fetch offsets failed with retryable partition error, waiting 1s and retrying"
	unstable := []any{"group", "g", "topic", "in", "partition", int32(3), "err", kerr.UnstableOffsetCommit}
	warnings := func() int { return strings.Count(buf.String(), "stay unstable") }
	step := func(d time.Duration, kv []any) {
		now = now.Add(d)
		l.Log(kgo.LogLevelInfo, msg, kv...)
	}
	for range 60 { // the first, then 59 s of them
		step(time.Second, unstable)
	}
	if n := warnings(); n != 0 {
		t.Fatalf("%d warnings after 59 s", n)
	}
	step(time.Second, unstable)
	if n := warnings(); n != 1 || !strings.Contains(buf.String(), "partition=3") || !strings.Contains(buf.String(), "for=1m0s") {
		t.Fatalf("after 60 s: %d warnings in %q", n, buf.String())
	}
	if strings.Contains(buf.String(), msg) {
		t.Errorf("franz-go's info line was logged at the default level: %q", buf.String())
	}
	step(30*time.Second, unstable) // a gap: counting starts again
	for range 59 {
		step(time.Second, unstable)
	}
	for range 100 {
		step(time.Second, []any{"topic", "in", "partition", int32(3), "err", kerr.UnknownTopicID})
	}
	if n := warnings(); n != 1 {
		t.Fatalf("%d warnings, want 1: a gap must restart the count, other errors must not count", n)
	}
	step(time.Second, unstable)
	for range 60 {
		step(time.Second, unstable)
	}
	if n := warnings(); n != 2 {
		t.Fatalf("%d warnings after a second minute of unstable offsets, want 2", n)
	}
}

// TestStateRestoreReportsOpenTransaction: a transaction left open on a
// state partition holds its restore back; when that lasts past hungAfter the
// wait is reported, naming the partition and where its stable offset stands,
// and the restore goes on once the transaction ends.
func TestStateRestoreReportsOpenTransaction(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	prod := kafkatest.Client(t, kgo.TransactionalID("cordstream-test-"+topic), kgo.TransactionTimeout(2*time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { hungAfter = d }(hungAfter)
	hungAfter = time.Second
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	adm := kadm.NewClient(kafkatest.Client(t))
	want := map[string][]int32{topic: {0}}

	wctx, wcancel := context.WithTimeout(ctx, 3500*time.Millisecond)
	_, err := readStateTopics(wctx, kafkatest.Config(t), adm, want, log)
	wcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("restore with a transaction open: %v, want it to wait", err)
	}
	if got := buf.String(); !strings.Contains(got, "transactions on the state topics are still open") || !strings.Contains(got, topic+"/0@0") {
		t.Fatalf("the open transaction was not reported after hungAfter (naming %s/0@0):\n%s", topic, got)
	}

	if err := prod.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	if _, err := readStateTopics(ctx, kafkatest.Config(t), adm, want, log); err != nil {
		t.Fatalf("restore after the transaction ended: %v", err)
	}
}
