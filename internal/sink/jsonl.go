package sink

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// JSONLines writes one JSON object per emitted row, one per line:
//
//	{"batch_id":3,"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"alice","message_count":2}
//
// Keys are named by their column and are a JSON string or null; times are
// RFC 3339 in UTC with a fraction only when it is not zero. Rows keep the
// batch's order. Nothing is written for a batch without rows.
type JSONLines struct {
	w        io.Writer
	keyNames []string // already JSON-encoded, with the leading comma and colon
	aggNames []string // the same
	values   func(*window.Row) []window.Result
	buf      []byte
}

// NewJSONLines returns a JSON Lines sink writing to w; keyNames are the
// group-by column names, in the order of the rows' keys.
func NewJSONLines(w io.Writer, keyNames []string) *JSONLines {
	j := &JSONLines{w: w}
	for _, k := range keyNames {
		b := appendJSONString([]byte{','}, k)
		j.keyNames = append(j.keyNames, string(append(b, ':')))
	}
	j.aggNames = []string{`,"message_count":`}
	return j
}

// NewJSONLinesColumns is NewJSONLines for a query's own columns: after the
// keys, each aggregate by its alias, its value as Spark's JSON writer
// writes it (a DOUBLE as sparkfmt.JSONDouble, NULL as null).
func NewJSONLinesColumns(w io.Writer, cols Columns) *JSONLines {
	j := NewJSONLines(w, cols.Keys)
	j.aggNames = nil
	for _, a := range cols.Aggs {
		b := appendJSONString([]byte{','}, a)
		j.aggNames = append(j.aggNames, string(append(b, ':')))
	}
	j.values = cols.Values
	return j
}

// WriteBatch writes b's rows. It returns ctx's error if ctx is done, and w's
// error if the write fails.
func (j *JSONLines) WriteBatch(ctx context.Context, b *window.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(b.Rows) == 0 {
		return nil
	}
	buf := j.buf[:0]
	for _, r := range b.Rows {
		buf = j.appendRow(buf, b.ID, &r)
	}
	j.buf = buf
	_, err := j.w.Write(buf)
	return err
}

func (j *JSONLines) appendRow(buf []byte, id int64, r *window.Row) []byte {
	buf = append(buf, `{"batch_id":`...)
	buf = strconv.AppendInt(buf, id, 10)
	buf = append(buf, `,"window_start":"`...)
	buf = time.UnixMicro(r.Start).UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","window_end":"`...)
	buf = time.UnixMicro(r.End).UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, '"')
	for i, name := range j.keyNames {
		buf = append(buf, name...)
		if i < len(r.Keys) && r.Keys[i].Valid {
			buf = appendJSONString(buf, r.Keys[i].S)
		} else {
			buf = append(buf, "null"...)
		}
	}
	if j.values == nil {
		buf = append(buf, j.aggNames[0]...)
		buf = strconv.AppendInt(buf, r.Count, 10)
		return append(buf, "}\n"...)
	}
	for i, v := range j.values(r) {
		if i < len(j.aggNames) {
			buf = append(buf, j.aggNames[i]...)
			buf = v.AppendJSON(buf)
		}
	}
	return append(buf, "}\n"...)
}
