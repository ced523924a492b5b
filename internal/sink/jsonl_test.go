package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cordstream/cordstream/internal/window"
)

func TestJSONLinesExample(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSONLines(&buf, []string{"author_name"})
	b := &window.Batch{ID: 3, Rows: []window.Row{mkRow("2025-11-07 17:59:30", "2025-11-07 18:00:30", 2, val("alice"))}}
	if err := j.WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := `{"batch_id":3,"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"alice","message_count":2}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSONLines(&buf, []string{"author_name", "channel_id"})
	b := &window.Batch{ID: 41, Rows: []window.Row{
		mkRow("2025-11-07 17:59:30.5", "2025-11-07 18:00:30.5", 1, nullVal, val("c1")),
		mkRow("2025-11-07 18:00:00.000001", "2025-11-07 18:01:00.000001", 7, val("日本 \"q\" \\ <b>&\n\u2028\x01"), nullVal),
	}}
	if err := j.WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := `{"batch_id":41,"window_start":"2025-11-07T17:59:30.5Z","window_end":"2025-11-07T18:00:30.5Z","author_name":null,"channel_id":"c1","message_count":1}
{"batch_id":41,"window_start":"2025-11-07T18:00:00.000001Z","window_end":"2025-11-07T18:01:00.000001Z","author_name":"日本 \"q\" \\ \u003cb\u003e\u0026\n\u2028\u0001","channel_id":null,"message_count":7}
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Every line is JSON that decodes back to the row's values.
	for i, line := range bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		r := b.Rows[i]
		for k, name := range []string{"author_name", "channel_id"} {
			if r.Keys[k].Valid && m[name] != r.Keys[k].S || !r.Keys[k].Valid && m[name] != nil {
				t.Errorf("line %d: %s = %#v, want %+v", i, name, m[name], r.Keys[k])
			}
		}
	}
}

func TestJSONLinesEmptyBatchWritesNothing(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSONLines(&buf, []string{"author_name"})
	if err := j.WriteBatch(context.Background(), &window.Batch{ID: 1}); err != nil || buf.Len() != 0 {
		t.Errorf("empty batch: error %v, wrote %q", err, buf.String())
	}
}

func TestJSONLinesErrors(t *testing.T) {
	boom := errors.New("pipe closed")
	j := NewJSONLines(failWriter{boom}, nil)
	b := &window.Batch{Rows: []window.Row{mkRow("2025-11-07 17:59:30", "2025-11-07 18:00:30", 2)}}
	if err := j.WriteBatch(context.Background(), b); !errors.Is(err, boom) {
		t.Errorf("write error = %v, want %v", err, boom)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewJSONLines(&bytes.Buffer{}, nil).WriteBatch(ctx, b); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
