package sink

import (
	"bytes"
	"context"
	"testing"

	"github.com/cordstream/cordstream/internal/window"
)

// A query's own columns: aggregates by name, a DOUBLE as Java prints it,
// NULL as NULL on the console and null in JSON, the table headed by the
// query's name when it has one.
func TestColumnsConsoleAndJSONLines(t *testing.T) {
	cols := Columns{
		Keys: []string{"channel_id"},
		Aggs: []string{"message_count", "avg_chars", "max_chars"},
		Values: func(r *window.Row) []window.Result {
			return []window.Result{
				{Type: window.TypeBigInt, Valid: true, I: r.Count},
				{Type: window.TypeDouble, Valid: true, F: 2.0 / 3},
				{Type: window.TypeInt},
			}
		},
		Title: "per_channel",
	}
	b := &window.Batch{ID: 4, Rows: []window.Row{{Start: 1762538400000000, End: 1762538700000000,
		Keys: []window.Value{{S: "c1", Valid: true}}, Count: 3}}}
	var con, js bytes.Buffer
	if err := NewConsoleColumns(&con, cols, 20, nil).WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := `Query: per_channel
-------------------------------------------
Batch: 4
-------------------------------------------
+------------------------------------------+----------+-------------+------------------+---------+
|window                                    |channel_id|message_count|avg_chars         |max_chars|
+------------------------------------------+----------+-------------+------------------+---------+
|{2025-11-07 18:00:00, 2025-11-07 18:05:00}|c1        |3            |0.6666666666666666|NULL     |
+------------------------------------------+----------+-------------+------------------+---------+

`
	if con.String() != want {
		t.Errorf("console:\n%s\nwant:\n%s", con.String(), want)
	}
	if err := NewJSONLinesColumns(&js, cols).WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	wantJ := `{"batch_id":4,"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:05:00Z","channel_id":"c1","message_count":3,"avg_chars":0.6666666666666666,"max_chars":null}` + "\n"
	if js.String() != wantJ {
		t.Errorf("JSON lines:\n%s\nwant:\n%s", js.String(), wantJ)
	}
}
