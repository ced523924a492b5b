package sink

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cordstream/cordstream/internal/chat"
)

func TestDeadLetterCopiesRecordsWithHeaders(t *testing.T) {
	cl, addr := fakeKafka(t, "dead")
	d := NewDeadLetter(cl, "dead", 0)
	ctx := context.Background()
	d.Send(ctx, chat.BadRecord{Topic: "in", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("{"),
		Reason: "malformed_json", Error: "unexpected end of JSON input"})
	d.Send(ctx, chat.BadRecord{Topic: "in", Partition: 0, Offset: 7, Key: nil, Value: nil, Reason: "null_value", Error: "record value is null"})
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	recs := readTopic(t, addr, "dead", 2)
	want := []struct {
		key, value string
		nilValue   bool
		headers    map[string]string
	}{
		{"k", "{", false, map[string]string{"reason": "malformed_json", "field": "", "error": "unexpected end of JSON input",
			"source_topic": "in", "source_partition": "2", "source_offset": "41"}},
		{"", "", true, map[string]string{"reason": "null_value", "field": "", "error": "record value is null",
			"source_topic": "in", "source_partition": "0", "source_offset": "7"}},
	}
	for i, w := range want {
		r := recs[i]
		if string(r.Key) != w.key || string(r.Value) != w.value || (r.Value == nil) != w.nilValue {
			t.Errorf("record %d: key %q value %q (nil %v), want %q %q (nil %v)", i, r.Key, r.Value, r.Value == nil, w.key, w.value, w.nilValue)
		}
		got := map[string]string{}
		for _, h := range r.Headers {
			got[h.Key] = string(h.Value)
		}
		for k, v := range w.headers {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("record %d header %s = %q (present %v), want %q", i, k, g, ok, v)
			}
		}
	}
}

func TestDeadLetterFlushReportsFailureOnce(t *testing.T) {
	cl, _ := fakeKafka(t)
	d := NewDeadLetter(cl, "missing", 0)
	ctx := context.Background()
	d.Send(ctx, chat.BadRecord{Topic: "in", Offset: 3, Value: []byte("x"), Reason: "malformed_json"})
	err := d.Flush(ctx)
	if err == nil || !strings.Contains(err.Error(), "dead-letter topic missing") || !strings.Contains(err.Error(), "in/0@3") {
		t.Fatalf("Flush = %v, want an error naming the topic and the record", err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Errorf("second Flush = %v, want nil (the failure was reported)", err)
	}
}

// A record over the limit is cut to fit: the value first, the key keeping
// at least a quarter of the room; a null value stays null; the headers say
// it was cut and how large it was.
func TestDeadLetterCutsToLimit(t *testing.T) {
	const limit = 4000
	d := NewDeadLetter(nil, "dead", limit)
	big := strings.Repeat("v", 1<<20)
	for _, c := range []struct {
		name       string
		key, value []byte
		keyKept    int // -1: unchanged
		nilValue   bool
	}{
		{"big value", []byte("k"), []byte(big), -1, false},
		{"big key", []byte(big), []byte("v"), 0, false},
		{"big key, null value", []byte(big), nil, 0, true},
		{"both big", []byte(big), []byte(big), 0, false},
	} {
		r := d.record(chat.BadRecord{Topic: "in", Offset: 1, Key: c.key, Value: c.value, Reason: "malformed_json", Error: strings.Repeat("é", 2000)})
		size := len(r.Key) + len(r.Value) + headerBytes(r.Headers)
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		switch {
		case size > limit:
			t.Errorf("%s: %d bytes with headers, over the limit %d", c.name, size, limit)
		case size < limit*3/4:
			t.Errorf("%s: cut to %d bytes, want most of %d", c.name, size, limit)
		case h[HeaderTruncated] != "true" || h[HeaderOriginalKeyBytes] != strconv.Itoa(len(c.key)) || h[HeaderOriginalValueBytes] != strconv.Itoa(len(c.value)):
			t.Errorf("%s: headers %v, want truncated and the original sizes", c.name, h)
		case (r.Value == nil) != c.nilValue:
			t.Errorf("%s: value nil = %v, want %v", c.name, r.Value == nil, c.nilValue)
		case c.keyKept < 0 && string(r.Key) != string(c.key):
			t.Errorf("%s: the key was cut", c.name)
		case c.keyKept == 0 && len(r.Key) < (limit-headerBytes(r.Headers))/5:
			t.Errorf("%s: the key kept %d bytes, want about a quarter of the room at least", c.name, len(r.Key))
		case !utf8.ValidString(h[HeaderError]) || len(h[HeaderError]) > limit/8 || !strings.HasSuffix(h[HeaderError], "(4000 bytes)"):
			t.Errorf("%s: error header %q: want it cut on a character, under %d bytes, with its length", c.name, h[HeaderError], limit/8)
		}
	}
	small := d.record(chat.BadRecord{Topic: "in", Key: []byte("k"), Value: []byte("{"), Reason: "malformed_json", Error: "short"})
	if string(small.Value) != "{" || len(small.Headers) != 6 {
		t.Errorf("a small record was changed: %+v", small)
	}
}
