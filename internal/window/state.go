package window

import (
	"errors"
	"fmt"
	"time"
)

// This file lets a caller keep an engine's state somewhere durable and bring
// it back: Progress and Rows take a snapshot between batches, Restore loads
// one into a new engine, and PendingChanges says what the next RunBatch will
// change, so that only the difference need be written after each batch.
// None of it changes what the engine computes: an engine restored from a
// snapshot taken after batch N runs batch N+1 exactly as the engine the
// snapshot came from would have.

// Progress is where an engine stands between two batches: everything except
// the rows that decides what the next batches do.
type Progress struct {
	// NextBatchID is the id the next batch gets.
	NextBatchID int64
	// WatermarkForLate is the watermark the next batch drops late rows
	// against (the one the last batch ran with).
	WatermarkForLate int64
	// Watermark is the watermark the next batch runs with and evicts
	// against.
	Watermark int64
	// LastRunWatermark is the watermark the last batch ran with; Ran says
	// whether any batch ran. Together with Watermark they decide
	// NeedsNoDataBatch.
	LastRunWatermark int64
	Ran              bool
}

// Progress returns the engine's progress. Call it between batches (not while
// events of a batch have been added but RunBatch has not run).
func (e *Engine) Progress() Progress {
	return Progress{
		NextBatchID:      e.batchID,
		WatermarkForLate: e.wmLate,
		Watermark:        e.wm,
		LastRunWatermark: e.lastRunWM,
		Ran:              e.ran,
	}
}

// Merge returns the progress of an engine that takes over the state of two:
// the later batch id and watermarks of each. It is how state kept in parts
// (one part per partition) is put back together: the parts of one engine
// share one progress, so merging them gives that progress back.
func (p Progress) Merge(q Progress) Progress {
	return Progress{
		NextBatchID:      max(p.NextBatchID, q.NextBatchID),
		WatermarkForLate: max(p.WatermarkForLate, q.WatermarkForLate),
		Watermark:        max(p.Watermark, q.Watermark),
		LastRunWatermark: max(p.LastRunWatermark, q.LastRunWatermark),
		Ran:              p.Ran || q.Ran,
	}
}

// Validate checks that p could come from an engine: no negative batch id,
// watermarks that never decrease from one batch to the next.
func (p Progress) Validate() error {
	switch {
	case p.NextBatchID < 0:
		return fmt.Errorf("next batch id %d is negative", p.NextBatchID)
	case p.WatermarkForLate > p.Watermark:
		return fmt.Errorf("watermark for late rows %d is after the watermark %d", p.WatermarkForLate, p.Watermark)
	case p.LastRunWatermark > p.Watermark:
		return fmt.Errorf("last batch's watermark %d is after the watermark %d", p.LastRunWatermark, p.Watermark)
	case !p.Ran && (p.NextBatchID != 0 || p.Watermark != 0 || p.WatermarkForLate != 0 || p.LastRunWatermark != 0):
		return errors.New("progress says no batch ran, yet has a batch id or a watermark")
	}
	return nil
}

// Rows returns every row held in state, sorted as Batch.Rows are. Call it
// between batches. The rows' Keys are shared with the engine: read-only.
func (e *Engine) Rows() []Row {
	return e.emitAll(true)
}

// Restore loads a snapshot (a Progress and the rows held with it) into e,
// which must be new: no batch run and nothing added. Rows may come in any
// order; each (window, key) at most once, with a count above zero, a window
// start aligned to the slide (sessions: an end after the start, and the
// sessions of a key apart by more than nothing), the key count of the
// configuration and the state of each of its aggregates (Row.Aggs.States; none is
// needed when every aggregate is count(*)). Keys and states are copied. On
// error e is left unusable.
func (e *Engine) Restore(p Progress, rows []Row) error {
	if e.ran || e.batchID != 0 || e.stateRows != 0 || e.input != 0 {
		return errors.New("window: Restore needs a new engine")
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("window: restore: %w", err)
	}
	e.batchID = p.NextBatchID
	e.wmLate = p.WatermarkForLate
	e.wm = p.Watermark
	e.lastRunWM = p.LastRunWatermark
	e.ran = p.Ran
	for i := range rows {
		r := &rows[i]
		switch {
		case len(r.Keys) != e.cfg.Keys:
			return fmt.Errorf("window: restore: row %d has %d keys, the query groups by %d", i, len(r.Keys), e.cfg.Keys)
		case r.Count <= 0:
			return fmt.Errorf("window: restore: row %d has count %d", i, r.Count)
		}
		if err := e.checkAggs(r); err != nil {
			return fmt.Errorf("window: restore: row %d: %w", i, err)
		}
		if e.sess != nil {
			if err := e.sess.restore(e, r); err != nil {
				return fmt.Errorf("window: restore: row %d: %w", i, err)
			}
			continue
		}
		switch {
		case r.Start < MinTimestamp-e.size || r.Start > MaxTimestamp:
			return fmt.Errorf("window: restore: row %d starts at %d, out of range", i, r.Start)
		case floorMod(r.Start, e.slide) != 0:
			return fmt.Errorf("window: restore: row %d starts at %d, not a multiple of the slide (%dµs)", i, r.Start, e.slide)
		case r.End != 0 && r.End != r.Start+e.size:
			return fmt.Errorf("window: restore: row %d is the window [%d, %d), not %v long", i, r.Start, r.End, e.cfg.Window)
		}
		b := e.bucketAt(r.Start)
		id := e.keys.intern(r.Keys)
		if _, dup := b.index[id]; dup {
			return fmt.Errorf("window: restore: row %d: window %d and key %v given twice", i, r.Start, r.Keys)
		}
		b.index[id] = int32(len(b.cells))
		b.cells = append(b.cells, cell{key: id, count: r.Count})
		if e.nagg > 0 {
			b.ext = e.copyAggs(b.ext, r.States())
		}
		b.sorted = nil
		e.keys.ref(id)
		e.stateRows++
	}
	if e.sess != nil {
		if err := e.sess.checkRestored(e); err != nil {
			return fmt.Errorf("window: restore: %w", err)
		}
	}
	e.cacheOK = false
	return nil
}

// checkAggs checks the aggregate states of a row from a snapshot.
func (e *Engine) checkAggs(r *Row) error {
	st := r.States()
	if len(st) == 0 {
		for _, a := range e.cfg.Aggs {
			if a.Kind != Count || a.Input != TypeNone {
				return fmt.Errorf("no aggregate state, and the query computes %v: the snapshot was written by a query that only counted; start this query from a new state", a)
			}
		}
		return nil
	}
	if len(st) != e.nagg {
		return fmt.Errorf("%d aggregate states, the query has %d aggregates", len(st), e.nagg)
	}
	for i := range st {
		if err := e.cfg.Aggs[i].checkState(&st[i], r.Count, e.prec[i]); err != nil {
			return fmt.Errorf("aggregate %d: %w", i+1, err)
		}
	}
	return nil
}

// copyAggs appends copies of the states src (empty states when src is
// empty) to dst.
func (e *Engine) copyAggs(dst, src []AggState) []AggState {
	if len(src) == 0 {
		return e.newAggs(dst)
	}
	for _, s := range src {
		if s.Sketch != nil {
			s.Sketch = s.Sketch.Clone()
		}
		dst = append(dst, s)
	}
	return dst
}

// PendingChanges reports how the next RunBatch changes the rows held in
// state, given the events added since the last batch: updated are the rows
// whose count changed and that stay in state, with their new counts; evicted
// are the rows RunBatch removes (their windows ended at or before the
// watermark the batch runs with), whether updated or not. Both are in no
// particular order (they are written to a store keyed by row, where order
// does not matter, and sorting them cost a fifth of the time between two
// batches) and share their Keys with the engine (read-only). It does not
// change the engine. Call it after the batch's Add calls, before
// RunBatch.
func (e *Engine) PendingChanges() (updated, evicted []Row) {
	if e.sess != nil {
		return e.sess.pending(e)
	}
	complete := e.cfg.Mode == Complete
	nu, ne := 0, 0
	for _, b := range e.buckets {
		if !complete && b.start+e.size <= e.wm {
			ne += len(b.cells)
		} else {
			nu += len(b.dirty)
		}
	}
	if nu > 0 {
		updated = make([]Row, 0, nu)
	}
	if ne > 0 {
		evicted = make([]Row, 0, ne)
	}
	for _, b := range e.buckets {
		end := b.start + e.size
		if !complete && end <= e.wm {
			for i := range b.cells {
				evicted = append(evicted, e.stateRow(b, int32(i)))
			}
			continue
		}
		for _, p := range b.dirty {
			updated = append(updated, e.stateRow(b, p))
		}
	}
	return updated, evicted
}

// WindowEnd returns the end of the last window (the one starting latest) an
// event at ts belongs to: once the watermark reaches it, every window of the
// event is closed and a later event at ts is too late for all of them.
func (c Config) WindowEnd(ts int64) int64 {
	if c.Gap != 0 {
		return ts + int64(c.Gap/time.Microsecond)
	}
	slide := int64(c.Slide / time.Microsecond)
	return ts - floorMod(ts, slide) + int64(c.Window/time.Microsecond)
}

// FirstWindowEnd returns the end of the first window (the one starting
// earliest) an event at ts belongs to: once the watermark reaches it, a
// later event at ts is too late for at least one of its windows.
func (c Config) FirstWindowEnd(ts int64) int64 {
	if c.Gap != 0 {
		return ts + int64(c.Gap/time.Microsecond)
	}
	slide, size := int64(c.Slide/time.Microsecond), int64(c.Window/time.Microsecond)
	// The earliest start after ts - size that is a multiple of the slide.
	from := ts - size
	return from - floorMod(from, slide) + slide + size
}

// AppendKeys appends an unambiguous binary encoding of a key tuple to b (per
// value a tag byte, 0 for NULL and 1 for a string, then the string's length
// as a uvarint and its bytes). Equal tuples encode equally.
func AppendKeys(b []byte, keys []Value) []byte {
	return encodeKeys(b, keys)
}
