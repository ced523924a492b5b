package analyzer

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
	"github.com/cordstream/cordstream/internal/sink"
	"github.com/cordstream/cordstream/internal/window"
)

// RecordLimit reads the topic's max.message.bytes from the real broker, and
// a dead letter cut to it is accepted where the record itself is refused.
func TestRecordLimitAndDeadLetterCut(t *testing.T) {
	cl := kafkatest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	small := kafkatest.TopicName(t)
	if _, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{Name: small, Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"max.message.bytes": "20000"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kafka.DeleteTopic(context.Background(), cl, small) })
	plain := kafkatest.Topic(t, 1)

	limit, err := RecordLimit(ctx, cl, small)
	if err != nil {
		t.Fatal(err)
	}
	if want := 20000 - recordOverhead - len(small); limit != want {
		t.Errorf("RecordLimit(%s) = %d, want %d (its max.message.bytes less the overhead)", small, limit, want)
	}
	// Without a topic setting, the least of the broker's message.max.bytes
	// (1048588 by default) and franz-go's batch limit (1000012).
	both, err := RecordLimit(ctx, cl, small, plain)
	if err != nil || both != limit {
		t.Errorf("RecordLimit of both topics = %d, %v; want the smaller topic's %d", both, err, limit)
	}
	if got, err := RecordLimit(ctx, cl, plain); err != nil || got != 1000012-recordOverhead-len(plain) {
		t.Errorf("RecordLimit(%s) = %d, %v; want franz-go's 1000012 less the overhead", plain, got, err)
	}

	huge := BadRecordFor(bytes.Repeat([]byte("k"), 100_000), bytes.Repeat([]byte("v"), 1<<20), strings.Repeat("e", 50_000))
	// Uncut, Kafka (or the client) refuses it: the limit is real.
	uncut := sink.NewDeadLetter(cl, small, 0)
	uncut.Send(ctx, huge)
	if err := uncut.Flush(ctx); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("the uncut record: %v, want MESSAGE_TOO_LARGE", err)
	}
	// Cut to the limit: accepted, with the original sizes. So is a record
	// exactly at the limit, unchanged.
	d := sink.NewDeadLetter(cl, small, limit)
	d.Send(ctx, huge)
	fits := BadRecordFor([]byte("k"), nil, "e")
	fits.Value = bytes.Repeat([]byte("x"), limit-len(fits.Key)-headerSize(t, fits))
	d.Send(ctx, fits)
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	recs := readAll(t, small, 2)
	h := headers(recs[0])
	if h[sink.HeaderTruncated] != "true" || h[sink.HeaderOriginalKeyBytes] != "100000" || h[sink.HeaderOriginalValueBytes] != strconv.Itoa(1<<20) {
		t.Errorf("cut record headers %v: want truncated and the original sizes", h)
	}
	if n := len(recs[0].Key) + len(recs[0].Value); n > limit || n < limit/2 {
		t.Errorf("cut record holds %d bytes of key and value, want most of %d", n, limit)
	}
	if !strings.HasSuffix(h[sink.HeaderError], "... (50000 bytes)") || len(h[sink.HeaderError]) > 1024 {
		t.Errorf("error header of %d bytes ending %q: want it cut with its length", len(h[sink.HeaderError]), h[sink.HeaderError][max(0, len(h[sink.HeaderError])-30):])
	}
	if hf := headers(recs[1]); hf[sink.HeaderTruncated] != "" || !bytes.Equal(recs[1].Value, fits.Value) {
		t.Errorf("a record that fits was changed (headers %v, value %d bytes)", hf, len(recs[1].Value))
	}
}

// BadRecordFor is a dead letter with the given key, value and error.
func BadRecordFor(key, value []byte, errText string) chat.BadRecord {
	return chat.BadRecord{Topic: "in", Partition: 0, Offset: 7, Key: key, Value: value, Reason: "malformed_json", Error: errText}
}

// headerSize is the room the headers of a dead letter of r take, as the
// sink counts it.
func headerSize(t *testing.T, r chat.BadRecord) int {
	n := 0
	for _, kv := range [][2]string{{sink.HeaderReason, r.Reason}, {sink.HeaderField, r.Field}, {sink.HeaderError, r.Error},
		{sink.HeaderSourceTopic, r.Topic}, {sink.HeaderSourcePartition, "0"}, {sink.HeaderSourceOffset, "7"}} {
		n += len(kv[0]) + len(kv[1]) + 10
	}
	return n
}

func readAll(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(4<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// A key tuple too long to store is a bad record, measured as the records
// store it: escaped, so control characters count six bytes each.
func TestKeyTooLongIsABadRecord(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add(msg(strings.Repeat("a", 100), "2025-11-07 18:00:00.000"),
		msg(strings.Repeat("b", 101), "2025-11-07 18:00:00.000"),
		msg(strings.Repeat("\x01", 17), "2025-11-07 18:00:00.000"), // \u0001 x 17 = 102 bytes as JSON
		msg("ok", "2025-11-07 18:00:00.000"))
	cfg := seedQuery()
	cfg.MaxKeyBytes = 102 // 100 letters and their quotes
	batches, dl, _ := runFake(t, cfg, src)
	if len(dl.sent) != 2 || dl.sent[0].Offset != 1 || dl.sent[1].Offset != 2 {
		t.Fatalf("dead letters %+v, want offsets 1 and 2", dl.sent)
	}
	for _, b := range dl.sent {
		if b.Reason != ReasonKeyTooLong || b.Field != "author_name" || !strings.Contains(b.Error, "at most 102") {
			t.Errorf("dead letter %+v: want %s on author_name, saying the bound", b, ReasonKeyTooLong)
		}
	}
	keys := map[string]bool{}
	for _, r := range batches[0].Rows {
		keys[r.Keys[0].S] = true
	}
	if len(keys) != 2 || !keys["ok"] || !keys[strings.Repeat("a", 100)] {
		t.Errorf("counted keys %v, want ok and the 100 letters", keys)
	}
}

func TestLongKey(t *testing.T) {
	var buf []byte
	v := func(s string) window.Value { return window.Value{S: s, Valid: true} }
	for _, c := range []struct {
		keys        []window.Value
		limit, i, n int
	}{
		{[]window.Value{v("abc")}, 5, -1, 0},
		{[]window.Value{v("abcd")}, 5, 0, 6},
		{[]window.Value{v("ab"), {}}, 8, -1, 0},       // "ab" and null
		{[]window.Value{v("ab"), v("<>")}, 15, 1, 18}, // < and > as \u003c \u003e
		{[]window.Value{v("\xff")}, 8, -1, 0},         // "\ufffd"
		{[]window.Value{v("\xff")}, 7, 0, 8},
	} {
		i, n := longKey(c.keys, c.limit, &buf)
		if i != c.i || n != c.n {
			t.Errorf("longKey(%v, %d) = %d, %d; want %d, %d", c.keys, c.limit, i, n, c.i, c.n)
		}
	}
}

// With de-duplication, a message_id too long to remember is a bad record.
func TestMessageIDTooLong(t *testing.T) {
	src := &fakeSource{topic: "in"}
	src.add([]byte(`{"author_name":"a","message_timestamp":"2025-11-07 18:00:00","message_id":"`+strings.Repeat("9", maxMessageIDBytes+1)+`"}`),
		[]byte(`{"author_name":"a","message_timestamp":"2025-11-07 18:00:00","message_id":"`+strings.Repeat("9", maxMessageIDBytes)+`"}`))
	cfg := seedQuery()
	cfg.Dedup = true
	_, dl, _ := runFake(t, cfg, src)
	if len(dl.sent) != 1 || dl.sent[0].Offset != 0 || dl.sent[0].Reason != ReasonMessageIDTooLong {
		t.Fatalf("dead letters %+v, want offset 0 as %s", dl.sent, ReasonMessageIDTooLong)
	}
	cfg.Dedup = false
	if _, dl, _ := runFake(t, cfg, &fakeSource{topic: "in", records: src.records}); len(dl.sent) != 0 {
		t.Errorf("without de-duplication: dead letters %+v, want none", dl.sent)
	}
}
