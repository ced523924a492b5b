package analyzer

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// kafkaTime is the Kafka timestamp the records of these tests carry: the
// time they were produced, a little after their event times.
var kafkaTime = time.Date(2025, 11, 7, 18, 5, 0, 0, time.UTC)

// addAt adds records stamped with the Kafka timestamp at.
func (f *fakeSource) addAt(at time.Time, values ...[]byte) {
	for _, v := range values {
		f.add(v)
		f.records[len(f.records)-1].Timestamp = at
	}
}

// runFake runs cfg over src's records, batch by batch, and returns
// the batches, the dead letters and the log.
func runFake(t *testing.T, cfg Config, src *fakeSource) ([]window.Batch, *recordingDeadLetters, string) {
	t.Helper()
	src.avail = len(src.records)
	cfg.AvailableNow = true
	out := &recordingOutput{}
	dl := &recordingDeadLetters{}
	var log syncBuffer
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}, DeadLetters: dl,
		Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out.batches, dl, log.String()
}

// lastCounts keeps the last count of every (window start, key) emitted.
func lastCounts(batches []window.Batch) map[string]int64 {
	out := map[string]int64{}
	for _, b := range batches {
		for _, r := range b.Rows {
			out[time.UnixMicro(r.Start).UTC().Format("15:04:05")+" "+r.Keys[0].S] = r.Count
		}
	}
	return out
}

// One record stamped in the year 9999 among in-order records: with the
// check (the default), it is a bad record and every other record counts as
// if it were not there; without it (Spark's behaviour), it moves the
// watermark to 9999 and the records after it are dropped as late.
func TestFarFutureRecordIsABadRecord(t *testing.T) {
	good := func(src *fakeSource, from, to int) {
		for i := from; i < to; i++ {
			ts := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC).Add(time.Duration(i) * 10 * time.Second)
			src.addAt(kafkaTime, msg([]string{"alice", "bob", "carol"}[i%3], ts.Format("2006-01-02 15:04:05.000")))
		}
	}
	poisoned := func() *fakeSource {
		src := &fakeSource{topic: "in", limit: 4}
		good(src, 0, 6)
		src.addAt(kafkaTime, msg("mallory", "9999-12-31 23:59:59.000"))
		good(src, 6, 24)
		return src
	}
	clean := &fakeSource{topic: "in", limit: 4}
	good(clean, 0, 24)

	cfg := seedQuery()
	cfg.MaxEventTimeAhead = time.Hour
	want, _, _ := runFake(t, cfg, clean)
	got, dl, log := runFake(t, cfg, poisoned())
	compareCountMaps(t, "with the check", lastCounts(got), lastCounts(want))
	if len(dl.sent) != 1 || dl.sent[0].Offset != 6 || dl.sent[0].Reason != ReasonFutureTimestamp || dl.sent[0].Field != "message_timestamp" {
		t.Fatalf("dead letters %+v, want the record at offset 6 as %s", dl.sent, ReasonFutureTimestamp)
	}
	if e := dl.sent[0].Error; !strings.Contains(e, "9999-12-31 23:59:59.000") || !strings.Contains(e, "2025-11-07 18:05:00.000") ||
		!strings.Contains(e, "years ahead") || !strings.Contains(e, "--max-event-time-ahead") {
		t.Errorf("dead letter error %q: want the event time, the Kafka timestamp, how far ahead and the flag", e)
	}
	if last := got[len(got)-1]; last.NextWatermark > time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() {
		t.Errorf("watermark moved to %s", formatMicros(last.NextWatermark))
	}
	if strings.Contains(log, "jumped") {
		t.Errorf("a watermark jump was reported:\n%s", log)
	}

	cfg.MaxEventTimeAhead = 0
	strict, dl, log := runFake(t, cfg, poisoned())
	if len(dl.sent) != 0 {
		t.Errorf("without the check: dead letters %+v, want none", dl.sent)
	}
	lost := 0
	for k, n := range lastCounts(want) {
		if lastCounts(strict)[k] != n {
			lost++
		}
	}
	if lost == 0 {
		t.Errorf("without the check, no window lost counts: the far-future record did not move the watermark (Spark's behaviour)")
	}
	if !strings.Contains(log, "the watermark jumped far ahead") || !strings.Contains(log, "in/0@6") {
		t.Errorf("without the check, the jump to 9999 was not reported with its record:\n%s", log)
	}
}

// The limit is inclusive, judged against each record's own Kafka
// timestamp; a record without one is not judged.
func TestMaxEventTimeAheadBoundary(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.addAt(kafkaTime, msg("at-limit", "2025-11-07 19:05:00.000"))
	src.addAt(kafkaTime, msg("past-limit", "2025-11-07 19:05:00.001"))
	src.addAt(kafkaTime.Add(time.Hour), msg("later-kafka-time", "2025-11-07 19:05:00.001"))
	src.add(msg("no-kafka-time", "2025-11-07 23:00:00.000"))
	cfg := seedQuery()
	cfg.MaxEventTimeAhead = time.Hour
	batches, dl, _ := runFake(t, cfg, src)
	if len(dl.sent) != 1 || dl.sent[0].Offset != 1 {
		t.Fatalf("dead letters %+v, want only offset 1 (1 ms past the limit)", dl.sent)
	}
	counted := map[string]bool{}
	for _, r := range batches[0].Rows {
		counted[r.Keys[0].S] = true
	}
	for _, k := range []string{"at-limit", "later-kafka-time", "no-kafka-time"} {
		if !counted[k] {
			t.Errorf("%s not counted: %+v", k, batches[0].Rows)
		}
	}
}

// A timestamp beyond the years the engine counts is a bad record, not an
// event silently ignored.
func TestTimestampOutOfRangeIsABadRecord(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add([]byte(`{"author_name":"x","message_timestamp":"200000-01-01 00:00:00"}`),
		[]byte(`{"author_name":"x","message_timestamp":"-200000-01-01 00:00:00"}`))
	batches, dl, _ := runFake(t, seedQuery(), src)
	if len(dl.sent) != 2 || dl.sent[0].Reason != "bad_timestamp" || dl.sent[1].Reason != "bad_timestamp" {
		t.Fatalf("dead letters %+v, want both as bad_timestamp", dl.sent)
	}
	if batches[0].OutOfRange != 0 {
		t.Errorf("the engine saw %d events out of range", batches[0].OutOfRange)
	}
}

// A batch that moves the watermark by more than an hour says so, naming the
// record with the latest event time; the first move (from nothing) and
// ordinary moves do not. Reports are at most one a minute.
func TestWatermarkJumpIsReported(t *testing.T) {
	src := &fakeSource{topic: "in", limit: 2}
	src.addAt(kafkaTime, msg("a", "2025-11-07 18:00:00.000"), msg("a", "2025-11-07 18:00:10.000")) // first move: quiet
	src.addAt(kafkaTime, msg("a", "2025-11-07 18:00:20.000"), msg("a", "2025-11-07 18:00:30.000")) // ordinary
	src.addAt(kafkaTime, msg("a", "2025-11-07 18:00:40.000"), msg("b", "2025-11-07 20:30:00.000")) // 2.5 h: reported
	src.addAt(kafkaTime, msg("a", "2025-11-07 23:00:00.000"))                                      // within the minute: counted, not said
	cfg := seedQuery()
	_, _, log := runFake(t, cfg, src)
	if n := strings.Count(log, "the watermark jumped far ahead"); n != 1 {
		t.Fatalf("%d jump reports, want 1:\n%s", n, log)
	}
	for _, want := range []string{"batch=2", "by=2h29m30s", "latest_event_time=\"2025-11-07 20:30:00.000\"", "record=\"in/0@5 (Kafka timestamp 2025-11-07 18:05:00.000)\""} {
		if !strings.Contains(log, want) {
			t.Errorf("jump report without %s:\n%s", want, log)
		}
	}
}

func compareCountMaps(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s counted %d, want %d", what, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s counted %d, want no row", what, k, g)
		}
	}
}

// A batch that drops late data says so at info level: how many records,
// how many rows, the oldest event time, the watermark. The metrics tell
// counted, late, bad, duplicate and skipped records apart, and add up to
// the records read.
func TestLateDataIsReported(t *testing.T) {
	src := &fakeSource{topic: "in", limit: 3}
	upd := []byte(`{"author_name":"a","message_timestamp":"2025-11-07 18:05:00","event_kind":"update"}`)
	src.add(
		msg("a", "2025-11-07 18:00:00.000"), msg("a", "2025-11-07 18:03:00.000"), upd, // watermark 18:02 for batch 2's late rows
		msg("b", "2025-11-07 18:03:10.000"), []byte(`{`), msg("a", "2025-11-07 18:03:00.000"), // a duplicate; nothing late yet
		msg("c", "2025-11-07 18:00:10.000"), // every window closed: late
		msg("d", "2025-11-07 18:01:40.000"), // its window [18:01, 18:02) closed, [18:01:30, 18:02:30) open
		msg("e", "2025-11-07 18:03:20.000"),
	)
	cfg := seedQuery()
	cfg.Dedup = true
	src.avail = len(src.records)
	cfg.AvailableNow = true
	var log syncBuffer
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{&recordingOutput{}},
		Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "late data dropped"); n != 1 {
		t.Fatalf("%d late reports, want 1 (batch 2):\n%s", n, log.String())
	}
	for _, want := range []string{"batch=2", "late_records=1", "late_rows=3", `oldest_event_time="2025-11-07 18:00:10.000"`, `watermark="2025-11-07 18:02:00.000"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("late report without %s:\n%s", want, log.String())
		}
	}
	in, counted, late, dup := a.m.recordsIn.Value(), a.m.counted.Value(), a.m.lateRecords.Value(), a.m.duplicates.Value()
	bad, skipped := a.m.badRecords.With("malformed_json").Value(), a.m.skipped.With("update").Value()
	if in != 9 || counted != 5 || late != 1 || dup != 1 || bad != 1 || skipped != 1 {
		t.Errorf("records in %v = counted %v + late %v + duplicates %v + bad %v + skipped %v; want 9 = 5 + 1 + 1 + 1 + 1", in, counted, late, dup, bad, skipped)
	}
}

// FuzzAnalyzerRecords feeds fuzzer-made records (split at 0x1e; a record's
// first byte picks its Kafka timestamp) to the analyzer, de-duplication on,
// in batches of three: it must never fail or panic, and every record read
// must be counted, late, bad (with a known reason), a duplicate or skipped.
func FuzzAnalyzerRecords(f *testing.F) {
	sep := "\x1e"
	f.Add([]byte("\x01" + string(msg("alice", "2025-11-07 18:00:00.000")) + sep + "\x02" + `{"author_name":"b","message_timestamp":"9999-12-31 23:59:59"}` +
		sep + "\x03" + `{"author_name":"c","message_timestamp":"1970-01-01 00:00:00","message_id":"7"}` + sep + "\x03" + `{"author_name":"c","message_timestamp":"1970-01-01 00:00:00","message_id":"7"}`))
	f.Add([]byte("\x00" + `{"author_name":"x\u001b[2J","message_timestamp":"2025-11-07 18:00:00","event_kind":"update"}` + sep + "\x05" + `[[[[` + sep + "\x09" + `{"message_timestamp":"0001-01-01"}`))
	f.Add([]byte("\x07" + `{"author_name":"\xff","message_timestamp":"2025-11-07T18:00:00+14:00","message_id":""}` + sep + "\x00" + `{"author_name":null,"message_timestamp":"200000-01-01"}`))
	known := map[string]bool{"malformed_json": true, "missing_field": true, "wrong_type": true, "bad_timestamp": true, "bad_value": true,
		ReasonNullValue: true, ReasonFutureTimestamp: true, ReasonKeyTooLong: true, ReasonMessageIDTooLong: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &fakeSource{topic: "in", limit: 3}
		for _, r := range bytes.Split(data, []byte(sep)) {
			if len(r) == 0 {
				continue
			}
			var value []byte
			if len(r) > 1 {
				value = r[1:]
			}
			// Kafka timestamps from 1969 (unknown) to a year after the events.
			at := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC).Add(time.Duration(int(r[0])-8) * 30 * 24 * time.Hour)
			if r[0] == 0 {
				at = time.Time{}
			}
			src.addAt(at, value)
		}
		src.avail = len(src.records)
		cfg := seedQuery()
		cfg.AvailableNow, cfg.Dedup, cfg.MaxEventTimeAhead, cfg.MaxKeyBytes = true, true, time.Hour, 64
		dl := &recordingDeadLetters{}
		a, err := New(cfg, Deps{Source: src, Outputs: []Output{&recordingOutput{}}, DeadLetters: dl})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v", err)
		}
		var skipped, bad float64
		for _, k := range []string{"update", "delete"} {
			skipped += a.m.skipped.With(k).Value()
		}
		for _, b := range dl.sent {
			if !known[b.Reason] {
				t.Errorf("dead letter with an unknown reason %q: %+v", b.Reason, b)
			}
		}
		for r := range known {
			bad += a.m.badRecords.With(r).Value()
		}
		in, counted, late, dup := a.m.recordsIn.Value(), a.m.counted.Value(), a.m.lateRecords.Value(), a.m.duplicates.Value()
		if in != float64(len(src.records)) || in != counted+late+bad+dup+skipped || bad != float64(len(dl.sent)) {
			t.Errorf("%v records in, %v counted + %v late + %v bad (%d dead letters) + %v duplicates + %v skipped", in, counted, late, bad, len(dl.sent), dup, skipped)
		}
	})
}
