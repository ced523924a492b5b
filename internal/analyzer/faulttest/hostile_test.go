package faulttest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
	"github.com/cordstream/cordstream/internal/sink"
)

// hostile is a record no well-behaved producer writes, and what the
// analyzer must make of it: a bad record with its reason, or a record
// counted (or dropped as late) like any other.
type hostile struct {
	name string
	// value is the record, produced at now, among records of event time
	// ts (the wire form): a valid record takes it, so that it neither
	// moves the watermark nor is late.
	value  func(now time.Time, ts string) []byte
	reason string // the dead-letter reason; "" when the record is valid
	// For valid records: the author_name the results carry (null: ""), and
	// whether it is too late to count (it comes after the first batch).
	author string
	late   bool
	cut    bool // its dead-letter copy is cut to fit the topic
}

const megabyte = 1_000_000

func hostileRecords() []hostile {
	const ts = `"message_timestamp":"TS"` // the neighbours' event time
	rec := func(fields string) func(time.Time, string) []byte {
		return func(_ time.Time, at string) []byte {
			return []byte("{" + strings.Replace(fields, ts, `"message_timestamp":"`+at+`"`, 1) + "}")
		}
	}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	return []hostile{
		{name: "year 9999", value: rec(`"author_name":"mallory","message_timestamp":"9999-12-31 23:59:59.000"`), reason: "future_timestamp"},
		{name: "a year ahead of its Kafka timestamp", reason: "future_timestamp", value: func(now time.Time, _ string) []byte {
			return []byte(`{"author_name":"mallory","message_timestamp":"` + chat.FormatTimestamp(now.Add(365*24*time.Hour)) + `"}`)
		}},
		{name: "year 999999", value: rec(`"author_name":"mallory","message_timestamp":"999999-01-01 00:00:00"`), reason: "bad_timestamp"},
		{name: "year 1", value: rec(`"author_name":"ancient","message_timestamp":"0001-01-01 00:00:00.000"`), author: "ancient", late: true},
		{name: "1970", value: rec(`"author_name":"ancient","message_timestamp":"1970-01-01 00:00:10.000"`), author: "ancient", late: true},
		{name: "1 MB malformed", value: rec(`"author_name":"x","content":"` + strings.Repeat("x", megabyte)), reason: "malformed_json", cut: true},
		{name: "1 MB author_name", value: rec(`"author_name":"` + strings.Repeat("n", megabyte) + `",` + ts), reason: "key_too_long", cut: true},
		{name: "1 MB content", value: rec(`"author_name":"verbose","content":"` + strings.Repeat("c", megabyte) + `",` + ts), author: "verbose"},
		{name: "JSON nested 20,000 deep", value: rec(`"author_name":"x",` + ts + `,"content":` + deep(20_000)), reason: "malformed_json"},
		{name: "JSON nested 5,000 deep in an unknown field", value: rec(`"author_name":"deep",` + ts + `,"extra":` + deep(5000)), author: "deep"},
		{name: "an object as author_name", value: rec(`"author_name":{"a":{"a":{"a":[1,2,{"b":null}]}}},` + ts), reason: "wrong_type"},
		{name: "invalid UTF-8 in a name", value: rec("\"author_name\":\"bad\xffname\"," + ts), author: "bad\ufffdname"},
		{name: "invalid UTF-8 outside strings", value: rec("\"author_name\":\"x\",\xff," + ts), reason: "malformed_json"},
		{name: "ESC sequences in a name", value: rec(`"author_name":"clear\u001b[2J\u001b[3J\u001b]52;c;cHduZWQ=\u0007",` + ts), author: "clear\x1b[2J\x1b[3J\x1b]52;c;cHduZWQ=\a"},
		{name: "NUL, DEL and C1 in a name", value: rec(`"author_name":"nul\u0000del\u007fcsi\u009b31m",` + ts), author: "nul\x00del\x7fcsi\u009b31m"},
		{name: "bidi overrides in a name", value: rec(`"author_name":"bidi\u202egpj.exe\u202c\u2066x\u2069",` + ts), author: "bidi\u202egpj.exe\u202c\u2066x\u2069"},
		{name: "null value", value: func(time.Time, string) []byte { return nil }, reason: "null_value"},
		{name: "empty value", value: func(time.Time, string) []byte { return []byte{} }, reason: "malformed_json"},
		{name: "a JSON array", value: func(time.Time, string) []byte { return []byte(`[1,2,3]`) }, reason: "malformed_json"},
		{name: "a JSON number", value: func(time.Time, string) []byte { return []byte(`123`) }, reason: "malformed_json"},
		{name: "author_name null", value: rec(`"author_name":null,` + ts), author: ""},
		{name: "message_timestamp null", value: rec(`"author_name":"x","message_timestamp":null`), reason: "missing_field"},
		{name: "author_name a number", value: rec(`"author_name":123,` + ts), reason: "wrong_type"},
		{name: "message_timestamp a number", value: rec(`"author_name":"x","message_timestamp":17`), reason: "wrong_type"},
		{name: "event_kind unknown", value: rec(`"author_name":"x",` + ts + `,"event_kind":"explode"`), reason: "bad_value"},
		{name: "a 10,000-character message_id", value: rec(`"author_name":"x",` + ts + `,"message_id":"` + strings.Repeat("7", 10_000) + `"`), reason: "message_id_too_long"},
	}
}

// TestHostileStream runs the real `cordstream analyze` (default exactly-once
// state, de-duplication on) over good records mixed with every kind of
// hostile record: far-future and far-past timestamps, 1 MB values, control
// characters, deep JSON, invalid UTF-8, nulls and wrong types. It must exit
// 0 with every good window's count equal to a brute-force count, every bad
// record in the dead-letter topic once with its reason (the 1 MB ones cut
// to fit, saying so), and no raw control character on the console.
func TestHostileStream(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	const good, perBatch = 3000, 200
	// One partition: batch k is exactly offsets [200k, 200k+200), so the
	// workload's very late records and the far-past ones are late for sure
	// after the first two batches.
	topic := kafkatest.Topic(t, 1)
	app := topic + "-app"
	dropTopics(t, app+"-results", app+"-dead", app+"-input-state", app+"-window-state", app+"-repartition")

	// Good records: the fault tests' workload (duplicates and very late
	// records among them), then each hostile record twice, at random places
	// after the first batch (so that the far-past ones are late).
	base := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC)
	var msgs []message
	for _, m := range workload(rng, good, base, 30*time.Millisecond) {
		switch {
		case m.poison:
			// The hostile records below are the bad ones, with keys of their own.
		case len(msgs) < 2*perBatch && m.ts < base.UnixMicro():
			// Very late, but in batch 0 or 1: batch N drops what is late
			// against the watermark batch N-1 ran with, 0 until batch 2;
			// the oracle does not model that.
		default:
			msgs = append(msgs, m)
		}
	}
	type placed struct {
		h   hostile
		key string
	}
	// The records in offset order: the workload's, with the hostile ones
	// inserted among them.
	type entry struct {
		rec     *kgo.Record
		m       *message // nil for a hostile record
		hostile bool
	}
	var bad []placed
	var extra []message
	now := time.Now()
	entries := make([]entry, 0, len(msgs)+60)
	for i := range msgs {
		entries = append(entries, entry{rec: &kgo.Record{Topic: topic, Key: msgs[i].key, Value: msgs[i].value}, m: &msgs[i]})
	}
	for i, h := range hostileRecords() {
		for copyN := range 2 {
			key := fmt.Sprintf("hostile-%02d-%d", i, copyN)
			at := 2*perBatch + rng.IntN(len(entries)-2*perBatch)
			// A valid one takes the event time of the counted record before it.
			prev := at - 1
			for entries[prev].m == nil || !entries[prev].m.counted {
				prev--
			}
			v := h.value(now, chat.FormatTimestamp(time.UnixMicro(entries[prev].m.ts)))
			e := entry{rec: &kgo.Record{Topic: topic, Key: []byte(key), Value: v}, hostile: true}
			entries = append(entries[:at], append([]entry{e}, entries[at:]...)...)
			bad = append(bad, placed{h, key})
			if h.reason == "" && !h.late {
				// Valid records count, like the workload's, at their event time.
				var p chat.Projection
				if err := chat.Project(v, &p); err != nil {
					t.Fatalf("%s: %v", h.name, err)
				}
				extra = append(extra, message{name: h.author, ts: p.Timestamp, counted: true})
			}
		}
	}
	msgs = append(msgs, extra...)
	recs := make([]*kgo.Record, len(entries))
	for i, e := range entries {
		recs[i] = e.rec
	}
	cl := kafkatest.Client(t, kgo.ProducerBatchMaxBytes(4<<20))
	ctx := t.Context()
	for i := 0; i < len(recs); i += 1000 {
		if err := cl.ProduceSync(ctx, recs[i:min(i+1000, len(recs))]...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	dir := t.TempDir()
	began := time.Now()
	c := startOut(t, dir, "hostile", true, "analyze", "--brokers", brokers, "--topic", topic, "--group", app, "--instance-id", "h1",
		"--starting-offsets", "earliest", "--available-now", "--max-records-per-batch", strconv.Itoa(perBatch),
		"--output", "console,kafka", "--rows", "100000", "--results-topic", app+"-results", "--dead-letter-topic", app+"-dead",
		"--replication-factor", "1", "--log-level", "info")
	c.wait(t, 2*time.Minute)
	t.Logf("%d records (%d hostile) in %v", len(recs), len(bad), time.Since(began).Round(time.Millisecond))

	// Counts: the good records (and the valid hostile ones), brute force.
	got, _ := finalCounts(t, readCommitted(t, app+"-results"))
	compareCounts(t, "hostile stream vs the brute-force count", got, oracle(msgs))

	// Every bad record once in the dead-letter topic, with its reason.
	want := map[string]hostile{}
	for _, b := range bad {
		if b.h.reason != "" {
			want[b.key] = b.h
		}
	}
	seen := map[string]int{}
	for _, r := range readCommitted(t, app+"-dead") {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		key := string(r.Key)
		seen[key]++
		w, ok := want[key]
		switch {
		case !ok:
			t.Errorf("dead letter %s (%s: %s) is not a bad record", key, h[sink.HeaderReason], h[sink.HeaderError])
		case h[sink.HeaderReason] != w.reason:
			t.Errorf("%s (%s): reason %q (%s), want %q", key, w.name, h[sink.HeaderReason], h[sink.HeaderError], w.reason)
		case w.cut && (h[sink.HeaderTruncated] != "true" || h[sink.HeaderOriginalValueBytes] == "" || len(r.Value) >= megabyte):
			t.Errorf("%s (%s): a %d-byte copy with headers %v, want it cut with its original size", key, w.name, len(r.Value), h)
		case !w.cut && h[sink.HeaderTruncated] != "":
			t.Errorf("%s (%s): cut, want it whole", key, w.name)
		}
	}
	for key, w := range want {
		if seen[key] != 1 {
			t.Errorf("%s (%s, %s) is %d times in the dead-letter topic, want once", key, w.name, w.reason, seen[key])
		}
	}

	// The console: the escaped names, and no raw control character.
	out, err := os.ReadFile(c.stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := rawControl(out); err != nil {
		t.Errorf("console output: %v", err)
	}
	for _, cell := range []string{`clear\u001b[2J\u001b[3J\u001b]52;c;cHduZWQ=\a`, `nul\u0000del\u007fcsi\u009b31m`, `bidi\u202egpj.exe\u202c\u2066x\u2069`, "bad\ufffdname"} {
		if !bytes.Contains(out, []byte("|"+cell)) {
			t.Errorf("console output lacks the cell %q", cell)
		}
	}
	if !t.Failed() {
		t.Logf("%d windows exact; %d bad records in the dead-letter topic once each", len(got), len(want))
	}
}

// rawControl returns an error naming the first byte or character of b a
// terminal would act on: C0 controls but newline, DEL, C1 controls, bidi
// formatting characters, and bytes that are not UTF-8.
func rawControl(b []byte) error {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("byte %#x at %d is not UTF-8", b[i], i)
		case r < 0x20 && r != '\n', r >= 0x7f && r <= 0x9f,
			r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return fmt.Errorf("raw %U at %d: %q", r, i, b[max(0, i-20):min(len(b), i+20)])
		}
		i += size
	}
	return nil
}
