package dashboard

import (
	"fmt"
	"math"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// Batch is what the dashboard learns of one committed micro-batch of one
// query. The analyzer hands it over after the batch committed (a batch rolled
// back is never shown), whatever the output mode: Changed and Closed come
// from the engine's changes (window.Engine.PendingChanges), not from the rows
// the output mode emits, so that the dashboard always knows the current value
// of every open row.
//
// Publish copies what it keeps: the caller may reuse the batch and its slices
// once Publish returns. Strings are kept as they are, so they must not alias
// memory the caller changes later (the engine's key strings do not).
type Batch struct {
	// Query is the name of the query the batch belongs to; it may be empty
	// when the dashboard shows one query.
	Query string
	// ID is the batch id (Spark's batchId). Ids increase from batch to
	// batch; a Reset may repeat the last one.
	ID int64
	// CommittedAt is when the batch committed; Duration how long it took
	// from planning to commit.
	CommittedAt time.Time
	Duration    time.Duration
	// Reset says that Changed holds every row the query holds now, not only
	// the rows that changed: open windows and rows missing from it are
	// dropped (windows already closed are kept). The analyzer sends one
	// after restoring its state (at start, after a rebalance), with the id
	// of the last committed batch.
	Reset bool
	// Changed are the rows whose values changed in the batch and that stay
	// open, with their new values.
	Changed []Row
	// Closed are the rows the batch evicted (their window ended at or before
	// Watermark), with their final values, whether they changed or not.
	Closed []Row
	// WatermarkForLate, Watermark and NextWatermark are the batch's
	// watermarks (Unix µs): the one it dropped late rows against, the one it
	// ran with and evicted against, and the one the next batch runs with.
	WatermarkForLate, Watermark, NextWatermark int64
	// Counts are what happened to the batch's input records.
	Counts Counts
	// Lag is the input not yet read after the batch, per partition.
	Lag []PartitionLag
	// StateRows is the number of rows the engine holds after the batch.
	StateRows int64
}

// Row is one (window, key) row with its values.
type Row struct {
	// Start and End are the window [Start, End), Unix µs.
	Start, End int64
	// Keys are the group-by values, in the order of Query.GroupBy.
	Keys []window.Value
	// Values are the measures, in the order of Query.Measures. They are
	// exact for integers up to 2^53.
	Values []float64
}

// Counts say what happened to a batch's input records (or, summed, to all
// batches the dashboard has seen).
type Counts struct {
	Records     int64            `json:"records"`      // data records read, bad ones included
	Counted     int64            `json:"counted"`      // records added to the windows
	Duplicates  int64            `json:"duplicates"`   // dropped: message_id seen before
	LateRecords int64            `json:"late_records"` // dropped before counting: too late for every window
	LateRows    int64            `json:"late_rows"`    // (window, key) rows dropped as late by the engine
	Skipped     int64            `json:"skipped"`      // valid records that are not new messages (edits, deletions)
	Bad         map[string]int64 `json:"bad"`          // bad records by reason
}

// BadTotal is the number of bad records, all reasons together.
func (c Counts) BadTotal() int64 {
	var n int64
	for _, v := range c.Bad {
		n += v
	}
	return n
}

func (c *Counts) add(d Counts) {
	c.Records += d.Records
	c.Counted += d.Counted
	c.Duplicates += d.Duplicates
	c.LateRecords += d.LateRecords
	c.LateRows += d.LateRows
	c.Skipped += d.Skipped
	if len(d.Bad) > 0 && c.Bad == nil {
		c.Bad = make(map[string]int64, len(d.Bad))
	}
	for k, v := range d.Bad {
		c.Bad[k] += v
	}
}

func (c Counts) clone() Counts {
	if c.Bad != nil {
		m := make(map[string]int64, len(c.Bad))
		for k, v := range c.Bad {
			m[k] = v
		}
		c.Bad = m
	}
	return c
}

// PartitionLag is how many records of one input partition are available
// beyond what the query has read.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
}

// CountRows turns the engine's rows into dashboard rows for a query whose
// only measure is a count (CountMeasure): the Keys are shared, not copied.
func CountRows(rows []window.Row) []Row {
	if len(rows) == 0 {
		return nil
	}
	out := make([]Row, len(rows))
	vals := make([]float64, len(rows))
	for i := range rows {
		vals[i] = float64(rows[i].Count)
		out[i] = Row{Start: rows[i].Start, End: rows[i].End, Keys: rows[i].Keys, Values: vals[i : i+1 : i+1]}
	}
	return out
}

// check reports the first row of b that does not fit q.
func (b *Batch) check(q *Query) error {
	size := q.Window.Microseconds()
	slide := q.Slide.Microseconds()
	for _, part := range []struct {
		name string
		rows []Row
	}{{"changed", b.Changed}, {"closed", b.Closed}} {
		for i := range part.rows {
			r := &part.rows[i]
			switch {
			case len(r.Keys) != len(q.GroupBy):
				return fmt.Errorf("%s row %d has %d keys, the query groups by %d", part.name, i, len(r.Keys), len(q.GroupBy))
			case len(r.Values) != len(q.Measures):
				return fmt.Errorf("%s row %d has %d values, the query has %d measures", part.name, i, len(r.Values), len(q.Measures))
			case r.End-r.Start != size:
				return fmt.Errorf("%s row %d is the window [%d, %d), not %v long", part.name, i, r.Start, r.End, q.Window)
			case r.Start%slide != 0:
				return fmt.Errorf("%s row %d starts at %d, not a multiple of the slide %v", part.name, i, r.Start, q.Slide)
			}
			for j, v := range r.Values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("%s row %d: measure %s is %v; only finite numbers can be shown", part.name, i, q.Measures[j].Name, v)
				}
			}
		}
	}
	return nil
}

// FromEngine builds the dashboard batch of a count query (CountMeasure)
// from what the engine says of one batch: updated and evicted as
// window.Engine.PendingChanges returned them before RunBatch, and b as
// RunBatch returned it. The caller adds what the engine does not know: the
// query's name, CommittedAt, Duration, the Counts of the records (LateRows
// is set from b) and the Lag.
func FromEngine(b *window.Batch, updated, evicted []window.Row) Batch {
	return Batch{
		ID:               b.ID,
		Changed:          CountRows(updated),
		Closed:           CountRows(evicted),
		WatermarkForLate: b.WatermarkForLate,
		Watermark:        b.Watermark,
		NextWatermark:    b.NextWatermark,
		Counts:           Counts{LateRows: b.Late},
		StateRows:        int64(b.StateRows),
	}
}

// ResetFromEngine builds the reset batch of a count query from an engine
// just restored (window.Engine.Restore, at start or after a rebalance): its
// progress and its rows (window.Engine.Rows). It carries the id of the last
// committed batch and the watermarks that batch left. The caller adds the
// query's name and CommittedAt (the restore's time). An engine that never
// ran a batch (p.Ran false) has nothing to show: send no reset for it.
func ResetFromEngine(p window.Progress, rows []window.Row) Batch {
	return Batch{
		ID:            p.NextBatchID - 1,
		Reset:         true,
		Changed:       CountRows(rows),
		Watermark:     p.LastRunWatermark,
		NextWatermark: p.Watermark,
		StateRows:     int64(len(rows)),
	}
}
