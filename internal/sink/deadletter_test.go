package sink

import (
	"context"
	"strings"
	"testing"
)

func TestDeadLetterCopiesRecordsWithHeaders(t *testing.T) {
	cl, addr := fakeKafka(t, "dead")
	d := NewDeadLetter(cl, "dead")
	ctx := context.Background()
	d.Send(ctx, BadRecord{Topic: "in", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("{"),
		Reason: "malformed_json", Error: "unexpected end of JSON input"})
	d.Send(ctx, BadRecord{Topic: "in", Partition: 0, Offset: 7, Key: nil, Value: nil, Reason: "null_value", Error: "record value is null"})
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
	d := NewDeadLetter(cl, "missing")
	ctx := context.Background()
	d.Send(ctx, BadRecord{Topic: "in", Offset: 3, Value: []byte("x"), Reason: "malformed_json"})
	err := d.Flush(ctx)
	if err == nil || !strings.Contains(err.Error(), "dead-letter topic missing") || !strings.Contains(err.Error(), "in/0@3") {
		t.Fatalf("Flush = %v, want an error naming the topic and the record", err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Errorf("second Flush = %v, want nil (the failure was reported)", err)
	}
}
