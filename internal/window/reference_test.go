package window

import (
	"slices"
	"time"
)

// refModel is the brute-force reference the engine is checked against: it
// keeps every event it was given and recomputes each batch from scratch,
// straight from the rules in the package comment, with no state, no caches
// and no incremental bookkeeping. It is slow on purpose.
type refModel struct {
	cfg    Config
	events []refEvent
	next   int // id of the batch being filled
}

type refEvent struct {
	ts    int64
	keys  []Value
	batch int
}

func newRef(cfg Config) *refModel { return &refModel{cfg: cfg} }

func (r *refModel) Add(ts int64, keys []Value) {
	r.events = append(r.events, refEvent{ts: ts, keys: slices.Clone(keys), batch: r.next})
}

func (r *refModel) inRange(ts int64) bool { return ts >= MinTimestamp && ts <= MaxTimestamp }

// watermarks returns wm[k] for k = 0..n+1: the watermark batch k runs with.
func (r *refModel) watermarks(n int) []int64 {
	wm := make([]int64, n+2)
	delayMs := int64(r.cfg.Watermark / time.Millisecond)
	// Candidate per batch: max event time in ms minus the delay. Java's long
	// division truncates toward zero, as Go's does.
	cand := make([]int64, n+1)
	has := make([]bool, n+1)
	for _, ev := range r.events {
		if ev.batch <= n && r.inRange(ev.ts) {
			if c := (ev.ts/1000 - delayMs) * 1000; !has[ev.batch] || c > cand[ev.batch] {
				cand[ev.batch], has[ev.batch] = c, true
			}
		}
	}
	for k := 0; k <= n; k++ {
		wm[k+1] = wm[k]
		if has[k] && cand[k] > wm[k] {
			wm[k+1] = cand[k]
		}
	}
	return wm
}

// windowsOf lists the starts of every epoch-aligned window [s, s+size) that
// contains ts, enumerated directly (not with Spark's lastStart formula).
func (r *refModel) windowsOf(ts int64) []int64 {
	size, slide := int64(r.cfg.Window/time.Microsecond), int64(r.cfg.Slide/time.Microsecond)
	floorDiv := func(a, b int64) int64 {
		q := a / b
		if a%b != 0 && (a < 0) != (b < 0) {
			q--
		}
		return q
	}
	var out []int64
	for k := floorDiv(ts-size, slide); k <= floorDiv(ts, slide); k++ {
		s := k * slide
		if s <= ts && ts < s+size {
			out = append(out, s)
		}
	}
	return out
}

type refKey struct {
	start int64
	enc   string
}

func (r *refModel) RunBatch() Batch {
	n := r.next
	r.next++
	wm := r.watermarks(n)
	lateWM := func(k int) int64 {
		if k == 0 {
			return 0
		}
		return wm[k-1]
	}
	size := int64(r.cfg.Window / time.Microsecond)
	counts := map[refKey]int64{}
	keysOf := map[refKey][]Value{}
	touched := map[refKey]bool{}
	late := map[refKey]bool{}
	out := Batch{ID: int64(n), WatermarkForLate: lateWM(n), Watermark: wm[n], NextWatermark: wm[n+1]}
	for _, ev := range r.events {
		if ev.batch > n {
			continue
		}
		if ev.batch == n {
			out.Input++
		}
		if !r.inRange(ev.ts) {
			if ev.batch == n {
				out.OutOfRange++
			}
			continue
		}
		for _, s := range r.windowsOf(ev.ts) {
			k := refKey{s, string(encodeKeys(nil, ev.keys))}
			if r.cfg.Mode != Complete && s+size <= lateWM(ev.batch) {
				if ev.batch == n {
					late[k] = true
				}
				continue
			}
			counts[k]++
			keysOf[k] = ev.keys
			if ev.batch == n {
				touched[k] = true
			}
		}
	}
	out.Late = int64(len(late))
	for k, c := range counts {
		end := k.start + size
		row := Row{Start: k.start, End: end, Keys: keysOf[k], Count: c}
		evictedBefore := n > 0 && end <= wm[n-1]
		switch r.cfg.Mode {
		case Update:
			if touched[k] {
				out.Rows = append(out.Rows, row)
			}
		case Append:
			if end <= wm[n] && !evictedBefore {
				out.Rows = append(out.Rows, row)
			}
		case Complete:
			out.Rows = append(out.Rows, row)
		}
		if r.cfg.Mode == Complete || end > wm[n] {
			out.StateRows++
		}
	}
	slices.SortFunc(out.Rows, CompareRows)
	return out
}

// NeedsNoDataBatch: after at least one batch, in update or append mode, the
// next watermark is above the one the last batch ran with.
func (r *refModel) NeedsNoDataBatch() bool {
	if r.next == 0 || r.cfg.Mode == Complete {
		return false
	}
	wm := r.watermarks(r.next - 1)
	return wm[r.next] > wm[r.next-1]
}
