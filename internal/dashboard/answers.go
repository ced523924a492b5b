package dashboard

// The shapes of the API's answers (docs/API.md), built from a Snapshot.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// object is a JSON object whose members keep their order (group-by columns
// and measures in the query's order).
type object struct {
	names []string
	vals  []any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range o.names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// batchRef names the batch an answer reflects.
type batchRef struct {
	ID          int64     `json:"id"`
	CommittedAt time.Time `json:"committed_at"`
}

func refOf(snap *Snapshot) *batchRef {
	if snap.batch == nil {
		return nil
	}
	return &batchRef{snap.batch.ID, snap.batch.CommittedAt}
}

type queryJSON struct {
	Name       string        `json:"name"`
	Title      string        `json:"title,omitempty"`
	Input      string        `json:"input,omitempty"`
	Window     string        `json:"window"`
	Slide      string        `json:"slide"`
	Watermark  string        `json:"watermark"`
	GroupBy    []string      `json:"group_by"`
	Measures   []measureJSON `json:"measures"`
	OutputMode string        `json:"output_mode"`
	Trigger    string        `json:"trigger"`
	View       View          `json:"view"`
	Scope      Scope         `json:"scope"`
	Spark      string        `json:"spark"`
	Retention  retentionJSON `json:"retention"`
}

type measureJSON struct {
	Name      string `json:"name"`
	Aggregate string `json:"aggregate"`
	Additive  bool   `json:"additive"`
}

type retentionJSON struct {
	MaxRows             int `json:"max_rows"`
	RetainClosedWindows int `json:"closed_windows"`
	MaxTotals           int `json:"totals"`
	RecentBatches       int `json:"batches"`
}

func (d *Dashboard) queryJSON(q *Query) queryJSON {
	out := queryJSON{
		Name: q.Name, Title: q.Title, Input: q.Input,
		Window: shortDur(q.Window), Slide: shortDur(q.Slide), Watermark: shortDur(q.Watermark),
		GroupBy: q.GroupBy, OutputMode: q.Mode.String(), Trigger: "available-now",
		View: q.View, Scope: q.Scope, Spark: sparkText(q),
		Retention: retentionJSON{d.opt.MaxRows, d.opt.RetainClosedWindows, d.opt.MaxTotals, d.opt.RecentBatches},
	}
	if q.Trigger > 0 {
		out.Trigger = shortDur(q.Trigger)
	}
	for _, m := range q.Measures {
		out.Measures = append(out.Measures, measureJSON(m))
	}
	return out
}

// sparkText is the query as Spark's DataFrame API writes it, for people.
func sparkText(q *Query) string {
	aggs := make([]string, len(q.Measures))
	for i, m := range q.Measures {
		aggs[i] = fmt.Sprintf("%s.alias(%q)", m.Aggregate, m.Name)
	}
	cols := make([]string, len(q.GroupBy))
	for i, c := range q.GroupBy {
		cols[i] = fmt.Sprintf("%q", c)
	}
	return fmt.Sprintf(`withWatermark("message_timestamp", %q).groupBy(window("message_timestamp", %q, %q), %s).agg(%s)`,
		sparkDur(q.Watermark), sparkDur(q.Window), sparkDur(q.Slide), strings.Join(cols, ", "), strings.Join(aggs, ", "))
}

// shortDur writes d as Go does, without zero units at the end: 1m, 1h,
// 1h30m, 30s.
func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func sparkDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0 seconds"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return fmt.Sprintf("%d milliseconds", d/time.Millisecond)
}

type windowJSON struct {
	Start     time.Time `json:"window_start"`
	End       time.Time `json:"window_end"`
	Closed    bool      `json:"closed"`
	Held      bool      `json:"held"`
	Truncated bool      `json:"truncated,omitempty"`
	Rows      int       `json:"rows"`
	Totals    object    `json:"totals"`
}

func totalsObject(q *Query, sums []float64) object {
	var o object
	for i, m := range q.Measures {
		if m.Additive {
			o.names = append(o.names, m.Name)
			o.vals = append(o.vals, sums[i])
		}
	}
	return o
}

func windowOf(q *Query, t windowTotal) windowJSON {
	return windowJSON{Start: usTime(t.start), End: usTime(t.end), Closed: t.closed, Held: t.held, Truncated: t.truncated, Rows: t.rows, Totals: totalsObject(q, t.sums)}
}

func heldWindow(q *Query, w *win) windowJSON {
	return windowOf(q, windowTotal{start: w.start, end: w.end, closed: w.closed, held: true, truncated: w.truncated, rows: len(w.keys), sums: w.sums})
}

type rowJSON struct {
	Rank   int       `json:"rank,omitempty"`
	Start  time.Time `json:"window_start"`
	End    time.Time `json:"window_end"`
	Keys   object    `json:"keys"`
	KeyID  string    `json:"key_id"`
	Values object    `json:"values"`
	Closed bool      `json:"closed"`
}

func keysObject(q *Query, vals []window.Value) object {
	o := object{names: q.GroupBy, vals: make([]any, len(vals))}
	for i, v := range vals {
		if v.Valid {
			o.vals[i] = v.S
		}
	}
	return o
}

func valuesObject(q *Query, vals []float64) object {
	o := object{names: make([]string, len(q.Measures)), vals: make([]any, len(q.Measures))}
	for i, m := range q.Measures {
		o.names[i] = m.Name
		o.vals[i] = vals[i]
	}
	return o
}

func rowOf(q *Query, r rowRef, rank int) rowJSON {
	nm := len(q.Measures)
	k := r.w.keys[r.i]
	return rowJSON{
		Rank: rank, Start: usTime(r.w.start), End: usTime(r.w.end),
		Keys: keysObject(q, k.vals), KeyID: k.id(),
		Values: valuesObject(q, r.w.vals[r.i*nm:(r.i+1)*nm]), Closed: r.w.closed,
	}
}

type statusJSON struct {
	Query            string     `json:"query"`
	Batch            *BatchInfo `json:"batch"`
	Watermark        *time.Time `json:"watermark"`
	WatermarkForLate *time.Time `json:"watermark_for_late"`
	Lag              lagJSON    `json:"lag"`
	LastBatch        *Counts    `json:"last_batch"`
	SinceStart       sinceJSON  `json:"since_start"`
	StateRows        int64      `json:"state_rows"`
	Held             heldJSON   `json:"held"`
	Scope            Scope      `json:"scope"`
}

type lagJSON struct {
	Total      int64          `json:"total"`
	Partitions []PartitionLag `json:"partitions"`
}

type sinceJSON struct {
	Batches int64 `json:"batches"`
	Counts
}

type heldJSON struct {
	Windows        int        `json:"windows"`
	OpenWindows    int        `json:"open_windows"`
	ClosedWindows  int        `json:"closed_windows"`
	Rows           int        `json:"rows"`
	MaxRows        int        `json:"max_rows"`
	DroppedWindows int64      `json:"dropped_windows"`
	IgnoredRows    int64      `json:"ignored_rows"`
	DroppedThrough *time.Time `json:"dropped_through"`
}

// status is the status answer of snap (also part of every batch event).
func status(snap *Snapshot, maxRows int) statusJSON {
	st := statusJSON{
		Query:      snap.query.Name,
		Batch:      snap.batch,
		Lag:        lagJSON{Partitions: []PartitionLag{}},
		SinceStart: sinceJSON{Batches: snap.batchCount, Counts: snap.since},
		Held:       heldJSON{Rows: snap.held, MaxRows: maxRows, DroppedWindows: snap.droppedWindows, IgnoredRows: snap.ignoredRows},
		Scope:      snap.query.Scope,
	}
	if st.SinceStart.Bad == nil {
		st.SinceStart.Bad = map[string]int64{}
	}
	if b := snap.batch; b != nil {
		wm, late := b.NextWatermark, b.Watermark
		st.Watermark, st.WatermarkForLate = &wm, &late
		st.Lag = lagJSON{Total: b.LagTotal, Partitions: b.Lag}
		if st.Lag.Partitions == nil {
			st.Lag.Partitions = []PartitionLag{}
		}
		c := b.Counts
		st.LastBatch = &c
		st.StateRows = b.StateRows
	}
	for _, w := range snap.wins {
		st.Held.Windows++
		if w.closed {
			st.Held.ClosedWindows++
		} else {
			st.Held.OpenWindows++
		}
	}
	if snap.hasFloor {
		t := usTime(snap.floor)
		st.Held.DroppedThrough = &t
	}
	return st
}
