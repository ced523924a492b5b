package window

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// Session windows, as Spark Structured Streaming computes
// groupBy(session_window(ts, gap), keys...).agg(...) with a watermark
// (AggUtils.planStreamingAggregationForSession, MergingSessionsExec,
// SessionWindowStateStoreRestoreExec and SessionWindowStateStoreSaveExec):
//
//   - An event at ts is the session [ts, ts+gap). Two sessions of a key merge
//     when the later one starts at or before the end of the earlier one
//     (they overlap or touch): the merged session runs from the first start
//     to the last end, and its aggregates are the merged aggregates. Sessions
//     only ever merge; one never splits.
//   - An event is too late when its own session's end, ts+gap, is at or
//     before the watermark the previous batch ran with (Spark drops the
//     partially aggregated row (key, [ts, ts+gap)) before merging it with
//     state; Batch.Late counts those rows, distinct (key, ts) pairs).
//   - The sessions of the batch merge with those in state, whatever batch
//     they came from: a late-arriving event can bridge two stored sessions.
//   - Append mode emits and evicts the sessions whose end is at or before
//     the watermark the batch runs with; complete mode emits every session,
//     every batch, and evicts none. Update mode is refused (Spark's
//     UnsupportedOperationChecker does: a session's start moves as it merges).
//   - A query with session windows needs at least one group-by column.
//
// Merging intervals is associative and commutative, and so are the
// aggregates, so merging each event into the state as it comes gives the
// sessions Spark's sort-and-merge gives at the end of the batch.

type sessions struct {
	gap   int64
	byKey map[int32]*keySessions
	// removed are the rows of stored sessions (held in the caller's store
	// under their start) that merged into another session or whose start
	// moved since the last batch: PendingChanges reports them as evicted.
	removed []Row
	dirty   []int32 // keys with sessions changed in the current batch
	// minEnd is at most the end of every session held (merging only moves
	// ends later), so that a batch whose watermark is before it closes
	// nothing and need not look at every key.
	minEnd int64
}

type keySessions struct {
	list  []*session // by start; list[i+1].start > list[i].end
	dirty bool       // in sessions.dirty
}

type session struct {
	start, end int64
	count      int64
	aggs       []AggState
	dirty      bool // changed in the current batch
	stored     bool // held in the caller's store under this start
}

func newSessions(gap int64) *sessions {
	return &sessions{gap: gap, byKey: make(map[int32]*keySessions), minEnd: math.MaxInt64}
}

// addSession merges an event at ts into its key's sessions.
func (e *Engine) addSession(ts int64, keys []Value, n int64, in []Input, src []AggState) {
	s := e.sess
	end := ts + s.gap
	if end <= e.wmLate {
		e.noteLate(ts, keys)
		return
	}
	id := e.keys.intern(keys)
	ks := s.byKey[id]
	if ks == nil {
		ks = &keySessions{}
		s.byKey[id] = ks
	}
	if !ks.dirty {
		ks.dirty = true
		s.dirty = append(s.dirty, id)
	}
	// The sessions [i, j) overlap or touch [ts, end): their ends are at or
	// after ts and their starts at or before end.
	i := sort.Search(len(ks.list), func(k int) bool { return ks.list[k].end >= ts })
	j := i
	for j < len(ks.list) && ks.list[j].start <= end {
		j++
	}
	if i == j {
		ss := &session{start: ts, end: end, dirty: true}
		if e.nagg > 0 {
			ss.aggs = e.newAggs(make([]AggState, 0, e.nagg))
		}
		ss.count = n
		e.updateAggs(ss.aggs, in, src)
		ks.list = slices.Insert(ks.list, i, ss)
		e.keys.ref(id)
		e.stateRows++
		s.minEnd = min(s.minEnd, end)
		return
	}
	t := ks.list[i]
	if ts < t.start && t.stored {
		s.removed = append(s.removed, e.sessionRow(t, id, true))
		t.stored = false
	}
	t.start = min(t.start, ts)
	t.end = max(t.end, end)
	for _, o := range ks.list[i+1 : j] {
		if o.stored {
			s.removed = append(s.removed, e.sessionRow(o, id, true))
		}
		t.end = max(t.end, o.end)
		t.count += o.count
		for a := range t.aggs {
			t.aggs[a].merge(&e.cfg.Aggs[a], &o.aggs[a])
		}
		e.keys.unref(id) // still held by t
		e.stateRows--
	}
	if j > i+1 {
		clear(ks.list[i+1 : j])
		ks.list = slices.Delete(ks.list, i+1, j)
	}
	t.count += n
	e.updateAggs(t.aggs, in, src)
	t.dirty = true
}

// sessionRow returns the row of session ss of key id: with its aggregate
// states (state) or as a batch emits it.
func (e *Engine) sessionRow(ss *session, id int32, state bool) Row {
	r := Row{Start: ss.start, End: ss.end, Keys: e.keys.values(id), Count: ss.count}
	if e.nagg > 0 {
		if state {
			r.Aggs = e.rowAggs()
			r.Aggs.States = ss.aggs[:e.nagg:e.nagg]
		} else {
			r.Aggs = e.results(ss.aggs, ss.count)
		}
	}
	return r
}

// runBatch emits the batch's rows (append: the sessions the watermark
// closes, evicted; complete: all of them) and starts the next batch.
func (s *sessions) runBatch(e *Engine) []Row {
	var rows []Row
	complete := e.cfg.Mode == Complete
	if !complete && e.wm < s.minEnd {
		// Nothing closes: only the sessions changed in the batch change.
		for _, id := range s.dirty {
			if ks := s.byKey[id]; ks != nil {
				for _, ss := range ks.list {
					ss.dirty, ss.stored = false, true
				}
				ks.dirty = false
			}
		}
		s.dirty = s.dirty[:0]
		clear(s.removed)
		s.removed = s.removed[:0]
		return nil
	}
	s.minEnd = math.MaxInt64
	for id, ks := range s.byKey {
		n := 0
		for _, ss := range ks.list {
			closed := !complete && ss.end <= e.wm
			if complete || closed {
				rows = append(rows, e.sessionRow(ss, id, false))
			}
			if closed {
				e.keys.unref(id)
				e.stateRows--
				continue
			}
			ss.dirty, ss.stored = false, true
			s.minEnd = min(s.minEnd, ss.end)
			ks.list[n] = ss
			n++
		}
		clear(ks.list[n:])
		ks.list = ks.list[:n]
		ks.dirty = false
		if n == 0 {
			delete(s.byKey, id)
		}
	}
	s.dirty = s.dirty[:0]
	clear(s.removed)
	s.removed = s.removed[:0]
	slices.SortFunc(rows, CompareRows)
	return rows
}

// all returns every session held, in order.
func (s *sessions) all(e *Engine, state bool) []Row {
	rows := make([]Row, 0, e.stateRows)
	for id, ks := range s.byKey {
		for _, ss := range ks.list {
			rows = append(rows, e.sessionRow(ss, id, state))
		}
	}
	slices.SortFunc(rows, CompareRows)
	return rows
}

// pending is PendingChanges for sessions.
func (s *sessions) pending(e *Engine) (updated, evicted []Row) {
	complete := e.cfg.Mode == Complete
	evicted = append(evicted, s.removed...)
	for _, id := range s.dirty {
		ks := s.byKey[id]
		if ks == nil {
			continue
		}
		for _, ss := range ks.list {
			if ss.dirty && (complete || ss.end > e.wm) {
				updated = append(updated, e.sessionRow(ss, id, true))
			}
		}
	}
	if !complete && e.wm >= s.minEnd {
		for id, ks := range s.byKey {
			for _, ss := range ks.list {
				if ss.end <= e.wm {
					evicted = append(evicted, e.sessionRow(ss, id, true))
				}
			}
		}
	}
	return updated, evicted
}

// restore adds a session from a snapshot (checked by checkRestored once all
// are in).
func (s *sessions) restore(e *Engine, r *Row) error {
	switch {
	case r.Start < MinTimestamp || r.Start > MaxTimestamp:
		return fmt.Errorf("session starts at %d, out of range", r.Start)
	case r.End < r.Start+s.gap || r.End > MaxTimestamp+s.gap:
		return fmt.Errorf("session [%d, %d) is shorter than the gap (%dµs) or out of range", r.Start, r.End, s.gap)
	}
	id := e.keys.intern(r.Keys)
	ks := s.byKey[id]
	if ks == nil {
		ks = &keySessions{}
		s.byKey[id] = ks
	}
	ss := &session{start: r.Start, end: r.End, count: r.Count, stored: true}
	s.minEnd = min(s.minEnd, r.End)
	if e.nagg > 0 {
		ss.aggs = e.copyAggs(make([]AggState, 0, e.nagg), r.States())
	}
	ks.list = append(ks.list, ss)
	e.keys.ref(id)
	e.stateRows++
	return nil
}

// checkRestored sorts each key's restored sessions and checks that none
// overlap or touch (they would have merged).
func (s *sessions) checkRestored(e *Engine) error {
	for id, ks := range s.byKey {
		slices.SortFunc(ks.list, func(a, b *session) int { return compareInt(a.start, b.start) })
		for i := 1; i < len(ks.list); i++ {
			if p, q := ks.list[i-1], ks.list[i]; q.start <= p.end {
				return fmt.Errorf("sessions [%d, %d) and [%d, %d) of key %v overlap or touch: they would have merged", p.start, p.end, q.start, q.end, e.keys.values(id))
			}
		}
	}
	return nil
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
