package analyzer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

func TestBatchBound(t *testing.T) {
	b := newBatchBound(15 * time.Second) // a budget of 5 s
	if got := b.limit(0); got != boundFloor {
		t.Errorf("first batch: limit %d, want the floor %d", got, boundFloor)
	}
	if got := b.limit(2000); got != 2000 {
		t.Errorf("with --max-records-per-batch 2000: limit %d, want 2000 exactly", got)
	}
	b.committed(1_000_000, 2*time.Second) // 500k/s: 2.5 M fit in 5 s
	if got := b.limit(0); got != 2_500_000 {
		t.Errorf("after 1 M in 2 s: limit %d, want 2,500,000", got)
	}
	b.committed(10, time.Second) // a quiet trigger: never below the floor
	if got := b.limit(0); got != boundFloor {
		t.Errorf("after a small batch: limit %d, want the floor", got)
	}
	if got := b.limit(5_000_000); got != 5_000_000 {
		t.Errorf("an explicit cap is kept while nothing timed out: %d", got)
	}

	// A batch of 4 M offsets aborted after 40 s: 500k fit in 5 s, and the
	// cap then applies with or without --max-records-per-batch.
	if next := b.abortedForTime(4_000_000, 40*time.Second); next != 500_000 {
		t.Errorf("after the abort: next cap %d, want 500,000", next)
	}
	if b.limit(0) != 500_000 || b.limit(5_000_000) != 500_000 || b.limit(1000) != 1000 {
		t.Errorf("after the abort: limits %d, %d, %d; want 500000, 500000, 1000", b.limit(0), b.limit(5_000_000), b.limit(1000))
	}
	// It grows back at most twofold per batch, below the floor too.
	b.committed(500_000, 100*time.Millisecond)
	if got := b.limit(0); got != 1_000_000 {
		t.Errorf("after a fast batch: limit %d, want twice the cap", got)
	}
	// An abort whose time went elsewhere still halves the batch.
	if next := b.abortedForTime(1000, time.Millisecond); next != 500 {
		t.Errorf("next cap %d, want half of 1000", next)
	}
	if next := b.abortedForTime(1, time.Hour); next != 1 {
		t.Errorf("next cap %d, want at least 1", next)
	}
}

// slowOutput holds the first batch until the broker has aborted the
// batch's transaction for time.
type slowOutput struct {
	t     *testing.T
	adm   *kadm.Client
	txnID string
	held  bool
}

func (o *slowOutput) WriteBatch(ctx context.Context, b *window.Batch) error {
	if o.held {
		return nil
	}
	o.held = true
	deadline := time.Now().Add(40 * time.Second)
	seenOngoing := false
	for time.Now().Before(deadline) {
		d, err := o.adm.DescribeTransactions(ctx, o.txnID)
		if err == nil {
			if tx, ok := d[o.txnID]; ok {
				o.t.Logf("transaction %s: %s", o.txnID, tx.State)
				switch {
				case tx.State == "Ongoing":
					seenOngoing = true
				case seenOngoing:
					return nil // the broker ended it
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return errors.New("the broker did not abort the transaction within 40 s")
}

// A batch whose transaction outlives --transaction-timeout is aborted by
// the broker: the analyzer says so (not that another instance took over),
// runs the batch again in smaller batches, and counts exactly; the results
// topic holds none of the aborted attempt's rows.
func TestKafkaStateBatchAbortedForTime(t *testing.T) {
	// The aborted transaction shows in the write that follows: the results
	// topic's, or (with the slow output last) the state's, at the commit.
	t.Run("results", func(t *testing.T) { testAbortedForTime(t, false) })
	t.Run("state", func(t *testing.T) { testAbortedForTime(t, true) })
}

func testAbortedForTime(t *testing.T, slowLast bool) {
	topic := kafkatest.Topic(t, 1)
	results := kafkatest.Topic(t, 1)
	const n = 2000
	var vals [][]byte
	want := map[string]int64{}
	for i := range n {
		ts := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC).Add(time.Duration(i) * 100 * time.Millisecond)
		name := fmt.Sprint("a", i%7)
		vals = append(vals, msgID(fmt.Sprint(1442323862181007360+int64(i)), name, ts.Format("2006-01-02 15:04:05.000")))
		us := ts.UnixMicro()
		last := us - us%30_000_000
		want[name+"@"+time.UnixMicro(last).UTC().Format("15:04:05")]++
		want[name+"@"+time.UnixMicro(last-30_000_000).UTC().Format("15:04:05")]++
	}
	produce(t, producer(t), topic, 0, vals...)
	app := "test-app-" + topic
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := kafkatest.Client(t)
	var log syncBuffer
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(&log, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	shuffle, err := EnsureStateTopics(ctx, cl, app, 1, 1, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range StateTopicNames(app) {
			kafka.DeleteTopic(context.Background(), cl, n)
		}
	})
	st, err := NewKafkaState(ctx, kafkatest.Config(t), KafkaStateConfig{
		KafkaSourceConfig: KafkaSourceConfig{Topic: topic, Group: app, StartingOffsets: StartEarliest, AvailableNow: true},
		ApplicationID:     app, InstanceID: "i1", Shuffle: shuffle, SessionTimeout: 6 * time.Second,
		TransactionTimeout: 2 * time.Second,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := seedQuery()
	cfg.AvailableNow, cfg.Dedup = true, true
	rec := &recordingOutput{}
	outs := []Output{sink.NewKafkaResults(st.Client(), results, cfg.GroupBy), rec}
	slow := &slowOutput{t: t, adm: kadm.NewClient(cl), txnID: TransactionalID(app, "i1")}
	if slowLast {
		outs = append(outs, slow)
	} else {
		outs = append([]Output{slow}, outs...)
	}
	a := newTestAnalyzer(t, cfg, Deps{Source: st, Log: logger, Outputs: outs})
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "the batch ran out of time") || !strings.Contains(log.String(), "longer than the transaction timeout (2s)") ||
		strings.Contains(log.String(), "another analyzer runs") {
		t.Errorf("the log does not say the batch ran out of time:\n%s", log.String())
	}
	if a.m.rollbacks.Value() != 1 {
		t.Errorf("%v batches rolled back, want 1", a.m.rollbacks.Value())
	}
	var inputs []int64
	if slowLast {
		rec.batches = rec.batches[1:] // the aborted attempt's batch reached it
	}
	for _, b := range rec.batches {
		if b.Input > 0 {
			inputs = append(inputs, b.Input)
		}
	}
	if len(inputs) < 2 || inputs[0] > n/2 {
		t.Errorf("batches counted %v events: want the input again in batches of at most %d", inputs, n/2)
	}
	got := map[string]int64{}
	for _, b := range rec.batches {
		for _, r := range b.Rows {
			got[fmt.Sprintf("%s@%s", r.Keys[0].S, time.UnixMicro(r.Start).UTC().Format("15:04:05"))] = r.Count
		}
	}
	compareCountMaps(t, "counts after the aborted batch", got, want)

	// The results topic, read committed: the rows of the batches that
	// committed, none of the aborted attempt's.
	rows := 0
	for _, b := range rec.batches {
		rows += len(b.Rows)
	}
	rc := kafkatest.Client(t, kgo.ConsumeTopics(results), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := 0
	deadline := time.Now().Add(20 * time.Second)
	for seen < rows && time.Now().Before(deadline) {
		pctx, c := context.WithTimeout(ctx, time.Second)
		rc.PollFetches(pctx).EachRecord(func(*kgo.Record) { seen++ })
		c()
	}
	pctx, c := context.WithTimeout(ctx, 2*time.Second)
	rc.PollFetches(pctx).EachRecord(func(*kgo.Record) { seen++ })
	c()
	if seen != rows {
		t.Errorf("results topic (read committed): %d records, the committed batches emitted %d", seen, rows)
	}
}

// Kafka's answers to a producer whose transaction it ended are told from
// others.
func TestEpochError(t *testing.T) {
	for _, err := range []error{kerr.InvalidProducerEpoch, kerr.ProducerFenced, fmt.Errorf("unable to commit transaction offsets: %w", kerr.InvalidProducerEpoch)} {
		if !epochError(err) {
			t.Errorf("epochError(%v) = false", err)
		}
	}
	for _, err := range []error{nil, kerr.MessageTooLarge, context.DeadlineExceeded} {
		if epochError(err) {
			t.Errorf("epochError(%v) = true", err)
		}
	}
}
