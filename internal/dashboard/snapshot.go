package dashboard

import (
	"container/heap"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// Snapshot is one query's rows and progress as of the end of one batch. It
// never changes once published: everything read from one Snapshot belongs
// to the same batch. Get the current one with Dashboard.Snapshot.
type Snapshot struct {
	query   *Query
	batch   *BatchInfo  // nil before the first batch
	wins    []*win      // held windows, by start
	archive []total     // totals of windows no longer held, oldest first
	batches []BatchInfo // recent batches, oldest first
	held    int         // rows held

	floor          int64 // rows of windows starting at or before it are ignored
	hasFloor       bool
	droppedWindows int64 // windows dropped for retention or room
	ignoredRows    int64 // rows of batches ignored because their window was dropped

	since      Counts // summed over every batch seen
	batchCount int64
}

// BatchInfo is one committed batch as the API shows it.
type BatchInfo struct {
	ID               int64          `json:"id"`
	CommittedAt      time.Time      `json:"committed_at"`
	Duration         float64        `json:"duration_ms"`
	Reset            bool           `json:"reset,omitempty"`
	RowsChanged      int            `json:"rows_changed"`
	RowsClosed       int            `json:"rows_closed"`
	WatermarkForLate time.Time      `json:"watermark_for_late"`
	Watermark        time.Time      `json:"watermark"`
	NextWatermark    time.Time      `json:"next_watermark"`
	Counts           Counts         `json:"counts"`
	LagTotal         int64          `json:"lag"`
	Lag              []PartitionLag `json:"-"` // in the status answer
	StateRows        int64          `json:"state_rows"`
}

// Batch returns the batch the snapshot reflects; false before the first.
func (s *Snapshot) Batch() (BatchInfo, bool) {
	if s.batch == nil {
		return BatchInfo{}, false
	}
	return *s.batch, true
}

// Query returns the query the snapshot belongs to.
func (s *Snapshot) Query() Query { return *s.query }

// HeldRows is the number of rows the snapshot holds, every window together.
func (s *Snapshot) HeldRows() int { return s.held }

// Value returns the values of one row, if held.
func (s *Snapshot) Value(start int64, keys []window.Value) ([]float64, bool) {
	w := s.window(start)
	if w == nil || len(keys) != len(s.query.GroupBy) {
		return nil, false
	}
	i, ok := w.find(keys)
	if !ok {
		return nil, false
	}
	nm := len(s.query.Measures)
	return slices.Clone(w.vals[i*nm : (i+1)*nm]), true
}

// window returns the held window starting at start, or nil.
func (s *Snapshot) window(start int64) *win {
	i, ok := slices.BinarySearchFunc(s.wins, start, func(w *win, t int64) int { return cmpInt(w.start, t) })
	if !ok {
		return nil
	}
	return s.wins[i]
}

// current returns the window a leaderboard shows by default: of the windows
// that contain the newest window's first slide, the one that started first
// (for tumbling windows the newest window; for sliding ones the window that
// still receives the newest events and has seen the most of them). Nil when
// nothing is held.
func (s *Snapshot) current() *win {
	if len(s.wins) == 0 {
		return nil
	}
	newest := s.wins[len(s.wins)-1]
	lo := newest.start + s.query.Slide.Microseconds() - s.query.Window.Microseconds()
	i, _ := slices.BinarySearchFunc(s.wins, lo, func(w *win, t int64) int { return cmpInt(w.start, t) })
	return s.wins[i]
}

// ---------------------------------------------------------------- rows

// rowFilter selects rows: windows by start, open or closed, keys by column
// or whole, after a cursor, at most limit.
type rowFilter struct {
	from, to       int64 // window start in [from, to)
	hasFrom, hasTo bool
	state          string // "", "open" or "closed"
	exact          []window.Value
	cols           map[int]string // column index -> value (not NULL)
	after          *cursor
	limit          int
}

type cursor struct {
	start int64
	keys  []window.Value
}

func (c cursor) encode() string {
	b := binary.AppendVarint(nil, c.start)
	b = window.AppendKeys(b, c.keys)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, ncols int) (*cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	start, n := binary.Varint(b)
	if n <= 0 {
		return nil, errors.New("no window start")
	}
	keys, rest, err := decodeKeys(b[n:], ncols)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("bad keys")
	}
	return &cursor{start: start, keys: keys}, nil
}

func (f *rowFilter) window(w *win) bool {
	switch {
	case f.hasFrom && w.start < f.from, f.hasTo && w.start >= f.to:
		return false
	case f.state == "open" && w.closed, f.state == "closed" && !w.closed:
		return false
	}
	return true
}

func (f *rowFilter) keys(vals []window.Value) bool {
	for c, v := range f.cols {
		if !vals[c].Valid || vals[c].S != v {
			return false
		}
	}
	return true
}

// rowRef is one row of a held window.
type rowRef struct {
	w *win
	i int
}

// rows returns the rows f selects, in order (window start, then keys), and
// whether more follow.
func (s *Snapshot) rows(f *rowFilter) ([]rowRef, bool) {
	var out []rowRef
	for _, w := range s.wins {
		if !f.window(w) || (f.after != nil && w.start < f.after.start) {
			continue
		}
		lo, hi := 0, len(w.keys)
		if f.after != nil && w.start == f.after.start {
			i, found := w.find(f.after.keys)
			if found {
				i++
			}
			lo = i
		}
		if f.exact != nil {
			i, found := w.find(f.exact)
			if !found || i < lo {
				continue
			}
			lo, hi = i, i+1
		}
		for i := lo; i < hi; i++ {
			if len(f.cols) > 0 && !f.keys(w.keys[i].vals) {
				continue
			}
			if len(out) == f.limit {
				return out, true
			}
			out = append(out, rowRef{w, i})
		}
	}
	return out, false
}

// ---------------------------------------------------------------- top N

// top returns the n rows of w with the largest value of measure m, largest
// first; ties in key order.
func (s *Snapshot) top(w *win, m, n int) []rowRef {
	nm := len(s.query.Measures)
	h := &topHeap{w: w, m: m, nm: nm}
	for i := range w.keys {
		if len(h.idx) < n {
			heap.Push(h, i)
			continue
		}
		if n > 0 && h.better(i, h.idx[0]) {
			h.idx[0] = i
			heap.Fix(h, 0)
		}
	}
	out := make([]rowRef, len(h.idx))
	for k := len(out) - 1; k >= 0; k-- {
		out[k] = rowRef{w, heap.Pop(h).(int)}
	}
	return out
}

// topHeap is a min-heap of row positions: its root is the worst row kept.
type topHeap struct {
	w     *win
	m, nm int
	idx   []int
}

// better reports whether row a ranks before row b: a larger value, or an
// equal value and a smaller key.
func (h *topHeap) better(a, b int) bool {
	va, vb := h.w.value(a, h.m, h.nm), h.w.value(b, h.m, h.nm)
	if va != vb {
		return va > vb
	}
	return compareKeys(h.w.keys[a].vals, h.w.keys[b].vals) < 0
}

func (h *topHeap) Len() int           { return len(h.idx) }
func (h *topHeap) Less(i, j int) bool { return h.better(h.idx[j], h.idx[i]) }
func (h *topHeap) Swap(i, j int)      { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *topHeap) Push(x any)         { h.idx = append(h.idx, x.(int)) }
func (h *topHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}

// ---------------------------------------------------------------- totals

// windowTotal is a window's totals, held or archived.
type windowTotal struct {
	start, end int64
	closed     bool
	held       bool
	truncated  bool
	rows       int
	sums       []float64
}

// totals returns the totals of every window with start in [from, to), held
// or archived, oldest first, at most the last limit of them.
func (s *Snapshot) totals(from, to int64, hasFrom, hasTo bool, limit int) []windowTotal {
	in := func(start int64) bool { return (!hasFrom || start >= from) && (!hasTo || start < to) }
	var out []windowTotal
	for _, t := range s.archive {
		if in(t.start) {
			out = append(out, windowTotal{start: t.start, end: t.end, closed: t.closed, rows: t.rows, sums: t.sums})
		}
	}
	for _, w := range s.wins {
		if in(w.start) {
			out = append(out, windowTotal{start: w.start, end: w.end, closed: w.closed, held: true, truncated: w.truncated, rows: len(w.keys), sums: w.sums})
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// seriesPoint is one key's values in one held window; row is false when the
// key has no row there.
type seriesPoint struct {
	w   *win
	row bool
	i   int
}

// series returns keys' row in every held window with start in [from, to),
// oldest first, at most the last limit of them.
func (s *Snapshot) series(keys []window.Value, from, to int64, hasFrom, hasTo bool, limit int) []seriesPoint {
	var out []seriesPoint
	for _, w := range s.wins {
		if (hasFrom && w.start < from) || (hasTo && w.start >= to) {
			continue
		}
		i, ok := w.find(keys)
		out = append(out, seriesPoint{w: w, row: ok, i: i})
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}
