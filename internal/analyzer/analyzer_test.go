package analyzer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/sink"
	"github.com/cordstream/cordstream/internal/testio"
	"github.com/cordstream/cordstream/internal/window"
)

func seedQuery() Config {
	return Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute,
		GroupBy: []string{chat.FieldAuthorName}, Mode: window.Update, Trigger: 5 * time.Second}
}

func newTestAnalyzer(t *testing.T, cfg Config, d Deps) *Analyzer {
	t.Helper()
	a, err := New(cfg, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// The replay the Spark conformance check uses: available-now, two offsets per
// batch, one partition. Batches hold offsets [2N, 2N+2); after the last data
// batch moved the watermark, a no-data batch evicts, then the query stops.
func TestAvailableNowBatchesAndNoDataBatch(t *testing.T) {
	src := &fakeSource{topic: "in", limit: 2}
	src.add(
		msg("alice", "2025-11-07 18:00:05.000"), // 0  batch 0
		msg("bob", "2025-11-07 18:00:10.000"),   // 1
		msg("alice", "2025-11-07 18:00:40.000"), // 2  batch 1
		msg("alice", "2025-11-07 18:02:10.000"), // 3
		[]byte(`{"author_name":`),               // 4  batch 2: malformed
		msg("alice", "2025-11-07 18:00:20.000"), // 5  late for no window yet
		msg("alice", "2025-11-07 18:03:00.000"), // 6  batch 3: moves the watermark
		nil,                                     // 7  tombstone
	)
	src.avail = len(src.records)
	var jsonl, console, stderr bytes.Buffer
	cfg := seedQuery()
	cfg.AvailableNow = true
	a := newTestAnalyzer(t, cfg, Deps{
		Source:  src,
		Outputs: []Output{sink.NewJSONLines(&jsonl, cfg.GroupBy), sink.NewConsole(&console, cfg.GroupBy, 20, time.UTC)},
		Stderr:  &stderr,
	})
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}

	row := func(id int, start, end, author string, n int) string {
		return `{"batch_id":` + itoa(id) + `,"window_start":"2025-11-07T` + start + `Z","window_end":"2025-11-07T` + end +
			`Z","author_name":"` + author + `","message_count":` + itoa(n) + "}\n"
	}
	want := row(0, "17:59:30", "18:00:30", "alice", 1) +
		row(0, "17:59:30", "18:00:30", "bob", 1) +
		row(0, "18:00:00", "18:01:00", "alice", 1) +
		row(0, "18:00:00", "18:01:00", "bob", 1) +
		row(1, "18:00:00", "18:01:00", "alice", 2) +
		row(1, "18:00:30", "18:01:30", "alice", 1) +
		row(1, "18:01:30", "18:02:30", "alice", 1) +
		row(1, "18:02:00", "18:03:00", "alice", 1) +
		row(2, "17:59:30", "18:00:30", "alice", 2) +
		row(2, "18:00:00", "18:01:00", "alice", 3) +
		row(3, "18:02:30", "18:03:30", "alice", 1) +
		row(3, "18:03:00", "18:04:00", "alice", 1)
	if got := jsonl.String(); got != want {
		t.Errorf("json lines:\n got:\n%s\nwant:\n%s", got, want)
	}
	// Batch 4 is the no-data batch: Spark's console prints it as an empty table.
	if got := strings.Count(console.String(), "Batch: "); got != 5 {
		t.Errorf("console shows %d batches, want 5 (0-3 with data, 4 without):\n%s", got, console.String())
	}
	emptyTable := "Batch: 4\n-------------------------------------------\n" +
		"+------+-----------+-------------+\n|window|author_name|message_count|\n" +
		"+------+-----------+-------------+\n+------+-----------+-------------+\n\n"
	if !strings.HasSuffix(console.String(), emptyTable) {
		t.Errorf("console: no empty batch 4:\n%s", console.String())
	}
	if got, want := src.commits, []int64{2, 4, 6, 8, 8}; !slices.Equal(got, want) {
		t.Errorf("committed positions %v, want %v", got, want)
	}
	wantErr := "batch 2: 1 bad record (malformed_json=1)\nbatch 3: 1 bad record (null_value=1)\n"
	if got := stderr.String(); got != wantErr {
		t.Errorf("stderr:\n got %q\nwant %q", got, wantErr)
	}
	if got := a.m.badRecords.With("malformed_json").Value(); got != 1 {
		t.Errorf("bad records metric (malformed_json) = %v, want 1", got)
	}
	if got := a.m.recordsIn.Value(); got != 8 {
		t.Errorf("records in = %v, want 8", got)
	}
	if got := a.m.batches.With("no_data").Value(); got != 1 {
		t.Errorf("no-data batches = %v, want 1", got)
	}
	if got, want := a.m.watermark.Value(), float64(time.Date(2025, 11, 7, 18, 2, 0, 0, time.UTC).Unix()); got != want {
		t.Errorf("watermark metric = %v, want %v", got, want)
	}
}

// With latest offsets and nothing new, Spark still runs an empty batch 0; with
// available-now the query then stops.
func TestAvailableNowEmptyInputRunsBatchZero(t *testing.T) {
	src := &fakeSource{topic: "in"}
	out := &recordingOutput{}
	cfg := seedQuery()
	cfg.AvailableNow = true
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}})
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(out.batches) != 1 || out.batches[0].ID != 0 || len(out.batches[0].Rows) != 0 {
		t.Fatalf("batches %+v, want one empty batch 0", out.batches)
	}
	if len(src.commits) != 1 {
		t.Errorf("commits %v, want one (batch 0)", src.commits)
	}
}

func TestProcessingTimeTrigger(t *testing.T) {
	start := time.Date(2025, 11, 7, 18, 0, 1, 300_000_000, time.UTC)
	clock := &fakeClock{now: start}
	src := &fakeSource{topic: "in"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src.onPlan = func(call int) {
		switch call {
		case 1: // 18:00:05: two messages arrived
			src.add(msg("alice", "2025-11-07 18:00:02.000"), msg("bob", "2025-11-07 18:00:03.500"))
			src.avail = len(src.records)
		case 2: // 18:00:10: nothing new, but the watermark moved: a no-data batch
		case 3: // 18:00:15: nothing new, nothing to evict: no batch
		case 4: // 18:00:20: one more message; reading it takes 7s
			src.add(msg("carol", "2025-11-07 18:00:19.000"))
			src.avail = len(src.records)
		case 5: // the batch overran its interval: this trigger fires at once
		case 6:
			cancel()
		}
	}
	src.onRead = func(call int) (int, error) {
		if call == 1 {
			clock.advance(7 * time.Second)
		}
		return 0, nil
	}
	out := &recordingOutput{}
	a := newTestAnalyzer(t, seedQuery(), Deps{Source: src, Outputs: []Output{out}, Now: clock.Now, SleepUntil: clock.SleepUntil})
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	at := func(s string) time.Time {
		t, _ := time.Parse("15:04:05.000", s)
		return time.Date(2025, 11, 7, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	}
	wantSleeps := []time.Time{start, at("18:00:05.000"), at("18:00:10.000"), at("18:00:15.000"), at("18:00:20.000"), at("18:00:25.000"), at("18:00:30.000")}
	if len(clock.sleeps) != len(wantSleeps) {
		t.Fatalf("triggers at %v, want %v", clock.sleeps, wantSleeps)
	}
	for i := range wantSleeps {
		if !clock.sleeps[i].Equal(wantSleeps[i]) {
			t.Errorf("trigger %d at %v, want %v", i, clock.sleeps[i], wantSleeps[i])
		}
	}
	var ids []int64
	var rows []int
	for _, b := range out.batches {
		ids = append(ids, b.ID)
		rows = append(rows, len(b.Rows))
	}
	// 0: empty first batch; 1: data; 2: no-data (watermark moved); 18:00:15
	// idle; 3: data (at 18:00:20, took 7s); 4: no-data, at once (18:00:27).
	if want := []int64{0, 1, 2, 3, 4}; !slices.Equal(ids, want) {
		t.Errorf("batch ids %v, want %v", ids, want)
	}
	if want := []int{0, 4, 0, 2, 0}; !slices.Equal(rows, want) {
		t.Errorf("rows per batch %v, want %v", rows, want)
	}
}

func TestStopWhileReadingAbandonsBatch(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add(msg("alice", "2025-11-07 18:00:02.000"), msg("bob", "2025-11-07 18:00:03.000"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src.onPlan = func(call int) {
		if call == 1 {
			src.avail = 2
		}
	}
	src.onRead = func(int) (int, error) {
		cancel()
		return 1, context.Canceled
	}
	clock := &fakeClock{now: time.Unix(1000, 0)}
	out := &recordingOutput{}
	a := newTestAnalyzer(t, seedQuery(), Deps{Source: src, Outputs: []Output{out}, Now: clock.Now, SleepUntil: clock.SleepUntil})
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run after a stop: %v, want nil", err)
	}
	if len(out.batches) != 1 {
		t.Errorf("%d batches written, want only batch 0 (batch 1 was abandoned)", len(out.batches))
	}
	if got, want := src.commits, []int64{0}; !slices.Equal(got, want) {
		t.Errorf("commits %v, want %v (nothing of the abandoned batch)", got, want)
	}
}

func TestStopAfterReadingFinishesBatch(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add(msg("alice", "2025-11-07 18:00:02.000"))
	src.avail = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &recordingOutput{}
	var outCtxErr error
	out.onWrite = func(*window.Batch) { cancel() } // the stop arrives while writing batch 0
	check := outputFunc(func(ctx context.Context, b *window.Batch) error {
		outCtxErr = ctx.Err()
		return nil
	})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	a := newTestAnalyzer(t, seedQuery(), Deps{Source: src, Outputs: []Output{out, check}, Now: clock.Now, SleepUntil: clock.SleepUntil})
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if outCtxErr != nil {
		t.Errorf("the second output saw a cancelled context (%v): the batch should drain", outCtxErr)
	}
	if got, want := src.commits, []int64{1}; !slices.Equal(got, want) {
		t.Errorf("commits %v, want %v: the batch that was read is finished and committed", got, want)
	}
}

type outputFunc func(ctx context.Context, b *window.Batch) error

func (f outputFunc) WriteBatch(ctx context.Context, b *window.Batch) error { return f(ctx, b) }

func TestOutputFailureStopsWithoutCommit(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add(msg("alice", "2025-11-07 18:00:02.000"))
	src.avail = 1
	out := &recordingOutput{err: errors.New("disk full")}
	cfg := seedQuery()
	cfg.AvailableNow = true
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}})
	err := a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run = %v, want the output's error", err)
	}
	if len(src.commits) != 0 {
		t.Errorf("commits %v after a failed output, want none", src.commits)
	}
}

func TestBadRecordsGoToDeadLetters(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add(
		msg("alice", "2025-11-07 18:00:02.000"),
		[]byte(`{"author_name":"x","message_timestamp":"yesterday"}`),
		[]byte(`{"author_name":"x"}`),
		[]byte(`{"author_name":7,"message_timestamp":"2025-11-07 18:00:02.000"}`),
		nil,
		[]byte(`not json`),
	)
	src.avail = len(src.records)
	dl := &recordingDeadLetters{}
	out := &recordingOutput{}
	var stderr bytes.Buffer
	cfg := seedQuery()
	cfg.AvailableNow = true
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}, DeadLetters: dl, Stderr: &stderr})
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	type bad struct {
		off           int64
		reason, field string
	}
	want := []bad{
		{1, "bad_timestamp", "message_timestamp"},
		{2, "missing_field", "message_timestamp"},
		{3, "wrong_type", "author_name"},
		{4, "null_value", ""},
		{5, "malformed_json", ""},
	}
	if len(dl.sent) != len(want) {
		t.Fatalf("dead letters %+v, want %d", dl.sent, len(want))
	}
	for i, w := range want {
		got := dl.sent[i]
		if got.Offset != w.off || got.Reason != w.reason || got.Field != w.field || got.Topic != "in" || got.Error == "" {
			t.Errorf("dead letter %d = %+v, want offset %d reason %s field %q", i, got, w.off, w.reason, w.field)
		}
		if !bytes.Equal(got.Value, src.records[w.off].Value) || !bytes.Equal(got.Key, src.records[w.off].Key) {
			t.Errorf("dead letter %d: key/value changed", i)
		}
	}
	if dl.flushed != len(want) {
		t.Errorf("flushed %d dead letters before the commit, want %d", dl.flushed, len(want))
	}
	wantLine := "batch 0: 5 bad records (bad_timestamp=1, malformed_json=1, missing_field=1, null_value=1, wrong_type=1)\n"
	if got := stderr.String(); got != wantLine {
		t.Errorf("stderr %q, want %q", got, wantLine)
	}
	if n := len(out.batches[0].Rows); n != 2 {
		t.Errorf("batch 0 has %d rows, want 2 (alice's two windows)", n)
	}
}

func TestDeadLetterFailureStopsWithoutCommit(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add([]byte(`nope`))
	src.avail = 1
	dl := &recordingDeadLetters{flushErr: errors.New("broker gone")}
	cfg := seedQuery()
	cfg.AvailableNow = true
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{&recordingOutput{}}, DeadLetters: dl})
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "broker gone") {
		t.Fatalf("Run = %v, want the dead-letter error", err)
	}
	if len(src.commits) != 0 {
		t.Errorf("commits %v, want none", src.commits)
	}
}

// Updates and deletes are edits of messages already counted: not counted, not bad.
func TestUpdatesAndDeletesNotCounted(t *testing.T) {
	src := &fakeSource{topic: "in"}
	upd := []byte(`{"author_name":"alice","message_timestamp":"2025-11-07 18:00:02.000","event_kind":"update","message_id":"1","channel_id":"c"}`)
	del := []byte(`{"author_name":null,"message_timestamp":"2025-11-07 18:00:02.000","event_kind":"delete","message_id":"1","channel_id":"c"}`)
	src.add(msg("alice", "2025-11-07 18:00:02.000"), upd, del)
	src.avail = 3
	out := &recordingOutput{}
	var stderr bytes.Buffer
	cfg := seedQuery()
	cfg.AvailableNow = true
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}, Stderr: &stderr})
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, r := range out.batches[0].Rows {
		if r.Count != 1 {
			t.Errorf("row %+v: count %d, want 1 (updates and deletes are not new messages)", r, r.Count)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q: updates and deletes are not bad records", stderr.String())
	}
	if got := a.m.skipped.With("update").Value() + a.m.skipped.With("delete").Value(); got != 2 {
		t.Errorf("skipped = %v, want 2", got)
	}
}

// Every group-by column, with null and absent values grouped as NULL.
func TestGroupByColumns(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add(
		[]byte(`{"author_id":"1","author_name":"a","channel_id":"c1","guild_id":"g1","message_timestamp":"2025-11-07 18:00:02.000"}`),
		[]byte(`{"author_id":"1","author_name":null,"channel_id":"c1","message_timestamp":"2025-11-07 18:00:03.000"}`),
	)
	src.avail = 2
	cfg := seedQuery()
	cfg.Slide = time.Minute // tumbling: one window per event
	cfg.AvailableNow = true
	cfg.GroupBy = []string{"guild_id", "author_name", "author_id", "channel_id"}
	out := &recordingOutput{}
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}})
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got []string
	for _, r := range out.batches[0].Rows {
		var parts []string
		for _, k := range r.Keys {
			if k.Valid {
				parts = append(parts, k.S)
			} else {
				parts = append(parts, "NULL")
			}
		}
		got = append(got, strings.Join(parts, ",")+"="+itoa(int(r.Count)))
	}
	want := []string{"NULL,NULL,1,c1=1", "g1,a,1,c1=1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("rows %v, want %v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := seedQuery()
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"seed", func(*Config) {}, ""},
		{"tumbling", func(c *Config) { c.Slide = c.Window }, ""},
		{"slide longer than window", func(c *Config) { c.Slide = 2 * time.Minute }, "longer than the window"},
		{"zero window", func(c *Config) { c.Window = 0 }, "window 0s"},
		{"negative watermark", func(c *Config) { c.Watermark = -time.Second }, "watermark"},
		{"unknown column", func(c *Config) { c.GroupBy = []string{"content"} }, `unknown column "content"`},
		{"no column", func(c *Config) { c.GroupBy = nil }, "no column"},
		{"column twice", func(c *Config) { c.GroupBy = []string{"author_id", "author_id"} }, "twice"},
		{"zero trigger", func(c *Config) { c.Trigger = 0 }, "trigger"},
		{"zero trigger with available-now", func(c *Config) { c.Trigger = 0; c.AvailableNow = true }, ""},
		{"sub-millisecond watermark", func(c *Config) { c.Watermark = time.Microsecond }, "milliseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.GroupBy = append([]string(nil), ok.GroupBy...)
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestBadSummary(t *testing.T) {
	s := newBatchStats()
	if got := s.badSummary(1); got != "" {
		t.Errorf("no bad records: %q, want empty", got)
	}
	s.bad["wrong_type"] = 2
	s.bad["bad_timestamp"] = 1
	if got, want := s.badSummary(7), "batch 7: 3 bad records (bad_timestamp=1, wrong_type=2)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The second Ctrl-C: a batch blocked writing its output after the stop is
// abandoned, not committed, and Run says so.
func TestAbortDuringDrain(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add(msg("alice", "2025-11-07 18:00:02.000"))
	src.avail = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var a *Analyzer
	blocked := outputFunc(func(octx context.Context, b *window.Batch) error {
		cancel()  // first signal: the batch drains...
		a.Abort() // ...second signal: abort it
		<-octx.Done()
		return octx.Err()
	})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	a = newTestAnalyzer(t, seedQuery(), Deps{Source: src, Outputs: []Output{blocked}, Now: clock.Now, SleepUntil: clock.SleepUntil})
	if err := a.Run(ctx); !errors.Is(err, ErrAborted) {
		t.Fatalf("Run = %v, want ErrAborted", err)
	}
	if len(src.commits) != 0 {
		t.Errorf("commits %v after an abort, want none", src.commits)
	}
}

// A batch that cannot finish within the drain timeout after a stop fails
// without committing.
func TestDrainTimeout(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.avail = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blocked := outputFunc(func(octx context.Context, b *window.Batch) error {
		cancel()
		<-octx.Done()
		return octx.Err()
	})
	cfg := seedQuery()
	cfg.DrainTimeout = 50 * time.Millisecond
	clock := &fakeClock{now: time.Unix(1000, 0)}
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{blocked}, Now: clock.Now, SleepUntil: clock.SleepUntil})
	err := a.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "drain timeout") {
		t.Fatalf("Run = %v, want a drain timeout error", err)
	}
	if len(src.commits) != 0 {
		t.Errorf("commits %v, want none", src.commits)
	}
}

// flakySource fails to plan a number of times, then works.
type flakySource struct {
	*fakeSource
	failures int
}

func (f *flakySource) Plan(ctx context.Context) (Plan, error) {
	if f.failures > 0 {
		f.failures--
		return Plan{}, errors.New("broker not available")
	}
	return f.fakeSource.Plan(ctx)
}

func TestPlanFailuresAreRetried(t *testing.T) {
	for _, tt := range []struct {
		failures int
		wantErr  bool
	}{{maxPlanFailures - 1, false}, {int(PlanPatience / planRetryDelay), false}, {int(PlanPatience/planRetryDelay) + 1, true}} {
		t.Run(strconv.Itoa(tt.failures), func(t *testing.T) {
			src := &flakySource{fakeSource: &fakeSource{topic: "in"}, failures: tt.failures}
			src.add(msg("alice", "2025-11-07 18:00:02.000"))
			src.avail = 1
			cfg := seedQuery()
			cfg.AvailableNow = true
			clock := &fakeClock{now: time.Unix(1000, 0)}
			out := &recordingOutput{}
			a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}, Now: clock.Now, SleepUntil: clock.SleepUntil})
			err := a.Run(context.Background())
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "broker not available") {
					t.Fatalf("Run = %v, want the plan error after %v of attempts", err, PlanPatience)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(out.batches) == 0 || out.batches[0].Input != 1 {
				t.Errorf("batches %+v, want batch 0 with the message once planning worked", out.batches)
			}
		})
	}
}

// --metrics: the server listens on the address (":0" picks a port, which is
// logged) and serves the analyzer's metrics and /healthz.
func TestMetricsServer(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add(msg("alice", "2025-11-07 18:00:02.000"), []byte("bad"))
	src.avail = 2
	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var body, health string
	check := outputFunc(func(_ context.Context, b *window.Batch) error {
		if b.ID != 1 {
			return nil
		}
		// Batch 1 runs after batch 0's metrics were recorded.
		m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(logBuf.String())
		if m == nil {
			return fmt.Errorf("no address logged: %s", logBuf.String())
		}
		body = httpGet(t, "http://"+m[1]+"/metrics")
		health = httpGet(t, "http://"+m[1]+"/healthz")
		cancel()
		return nil
	})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	a := newTestAnalyzer(t, seedQuery(), Deps{Source: src, Outputs: []Output{check}, Now: clock.Now, SleepUntil: clock.SleepUntil,
		Log: log, MetricsAddr: "127.0.0.1:0"})
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, want := range []string{
		"cordstream_analyze_records_in_total 2",
		`cordstream_analyze_bad_records_total{reason="malformed_json"} 1`,
		"cordstream_analyze_state_rows 2",
		"cordstream_analyze_batch_duration_seconds_count 1",
		"cordstream_analyze_consumer_lag_records 0",
		"cordstream_analyze_watermark_seconds 1.762538342e+09",
		"cordstream_analyze_late_rows_dropped_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if !strings.HasPrefix(health, `{"status":"ok"`) {
		t.Errorf("/healthz = %q, want status ok", health)
	}
}

func httpGet(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

type syncBuffer = testio.Buffer
