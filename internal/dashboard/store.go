package dashboard

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// store holds one query's rows and publishes them as immutable snapshots.
//
// Rules (the snapshot rule rests on them):
//   - One writer at a time (mu): apply builds the next Snapshot from the
//     current one and the batch, then swaps it in with one atomic store.
//     Readers load the pointer once and answer from that Snapshot alone, so
//     they see a batch entirely or not at all.
//   - Nothing a Snapshot can reach is ever changed after it is published.
//     A window the batch touches is rebuilt (copy-on-write); untouched
//     windows are shared between snapshots. The archive of totals is
//     append-only: the writer appends beyond the length older snapshots
//     see, never over it.
//   - keys (the intern table) and keyEntry.refs belong to the writer; readers
//     only read a keyEntry's vals and id, which never change.
type store struct {
	q   *Query
	lim limits

	mu   sync.Mutex
	keys map[string]*keyEntry // by window.AppendKeys encoding
	buf  []byte

	cur atomic.Pointer[Snapshot]
}

// limits bound what a store holds (see Options).
type limits struct {
	maxRows       int
	retainClosed  int
	maxTotals     int
	recentBatches int
}

// keyEntry is one distinct key tuple the store holds: interned, so that the
// rows of every window share one copy.
type keyEntry struct {
	vals []window.Value
	refs int // rows of the current snapshot holding it; writer only
}

// id is the key's key_id in answers: base64url of window.AppendKeys(vals).
// It is computed when asked, not kept: it would cost a string per key.
func (e *keyEntry) id() string {
	return base64.RawURLEncoding.EncodeToString(window.AppendKeys(nil, e.vals))
}

// win is one window's rows, sorted by key (NULL first, then byte order,
// column by column), values in a flat slice (len(keys) * measures).
type win struct {
	start, end int64
	closed     bool
	truncated  bool // rows were left out: the store was full
	keys       []*keyEntry
	vals       []float64
	sums       []float64 // per measure, over the rows
}

func (w *win) value(i, m, nm int) float64 { return w.vals[i*nm+m] }

// find returns the position of keys in w, or where they would be inserted.
func (w *win) find(keys []window.Value) (int, bool) {
	return slices.BinarySearchFunc(w.keys, keys, func(e *keyEntry, k []window.Value) int {
		return compareKeys(e.vals, k)
	})
}

// total is a window's totals kept after its rows were dropped.
type total struct {
	start, end int64
	closed     bool
	rows       int
	sums       []float64
}

func newStore(q *Query, lim limits) *store {
	s := &store{q: q, lim: lim, keys: make(map[string]*keyEntry)}
	s.cur.Store(&Snapshot{query: q})
	return s
}

// snapshot returns the current snapshot.
func (s *store) snapshot() *Snapshot { return s.cur.Load() }

// change is one row of a batch, to be merged into its window.
type change struct {
	start  int64
	keys   []window.Value
	vals   []float64
	closed bool
}

// apply merges b into the current snapshot and publishes the result. It
// returns the new snapshot and the starts of the windows whose rows or state
// the batch changed.
func (s *store) apply(b *Batch) (*Snapshot, []int64, error) {
	if err := b.check(s.q); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.cur.Load()
	if p.batch != nil {
		if b.ID < p.batch.ID || (b.ID == p.batch.ID && !b.Reset) {
			return nil, nil, fmt.Errorf("batch %d comes after batch %d: batch ids must increase (a reset may repeat the last one)", b.ID, p.batch.ID)
		}
	}
	nm := len(s.q.Measures)
	n := &Snapshot{
		query:          s.q,
		archive:        p.archive,
		floor:          p.floor,
		hasFloor:       p.hasFloor,
		droppedWindows: p.droppedWindows,
		ignoredRows:    p.ignoredRows,
		since:          p.since.clone(),
		batchCount:     p.batchCount + 1,
	}
	var release []*win // windows no longer held: their keys lose a reference
	wins := make([]*win, 0, len(p.wins)+4)
	for _, w := range p.wins {
		if b.Reset && !w.closed {
			release = append(release, w)
			continue
		}
		wins = append(wins, w)
	}

	// Every row of the batch, sorted by window then key; the later of two
	// rows for the same window and key wins (Closed after Changed).
	changes := make([]change, 0, len(b.Changed)+len(b.Closed))
	ignored := 0
	add := func(rows []Row, closed bool) {
		for i := range rows {
			r := &rows[i]
			if n.hasFloor && r.Start <= n.floor {
				ignored++
				continue
			}
			changes = append(changes, change{start: r.Start, keys: r.Keys, vals: r.Values, closed: closed})
		}
	}
	add(b.Changed, false)
	add(b.Closed, true)
	slices.SortStableFunc(changes, func(x, y change) int {
		if x.start != y.start {
			if x.start < y.start {
				return -1
			}
			return 1
		}
		return compareKeys(x.keys, y.keys)
	})
	n.ignoredRows += int64(ignored)

	held := 0
	for _, w := range wins {
		held += len(w.keys)
	}
	var touched []int64
	for i := 0; i < len(changes); {
		j := i + 1
		for j < len(changes) && changes[j].start == changes[i].start {
			j++
		}
		start := changes[i].start
		pos, found := slices.BinarySearchFunc(wins, start, func(w *win, s int64) int { return cmpInt(w.start, s) })
		var old *win
		if found {
			old = wins[pos]
		}
		// Older windows are dropped first when the store is full, so a
		// window competes for room only with the newer ones.
		room := s.lim.maxRows
		for _, w := range wins[pos:] {
			room -= len(w.keys)
		}
		nw := s.merge(old, start, changes[i:j], nm, room)
		if old != nil {
			held -= len(old.keys)
			wins[pos] = nw
		} else {
			wins = slices.Insert(wins, pos, nw)
		}
		held += len(nw.keys)
		touched = append(touched, start)
		i = j
	}

	// Windows the watermark has passed are closed (not in complete mode,
	// where the engine keeps and may still update every window).
	if s.q.Mode != window.Complete {
		for i, w := range wins {
			if !w.closed && w.end <= b.Watermark {
				c := *w
				c.closed = true
				wins[i] = &c
				touched = append(touched, w.start)
			}
		}
	}

	// Bounds: at most retainClosed closed windows, at most maxRows rows (the
	// newest window is always kept), at most maxTotals totals.
	closed := 0
	for _, w := range wins {
		if w.closed {
			closed++
		}
	}
	drop := func(i int) {
		w := wins[i]
		n.archive = append(n.archive, total{start: w.start, end: w.end, closed: w.closed, rows: len(w.keys), sums: w.sums})
		if !n.hasFloor || w.start > n.floor {
			n.floor, n.hasFloor = w.start, true
		}
		n.droppedWindows++
		held -= len(w.keys)
		if w.closed {
			closed--
		}
		release = append(release, w)
		wins = slices.Delete(wins, i, i+1)
	}
	for closed > s.lim.retainClosed {
		i := slices.IndexFunc(wins, func(w *win) bool { return w.closed })
		drop(i)
	}
	for held > s.lim.maxRows && len(wins) > 1 {
		drop(0)
	}
	// Dropping windows oldest first keeps the floor below every held window;
	// a closed window dropped for retention may sit above an open one only
	// in complete mode, where nothing is closed.
	if keep := s.lim.maxTotals - len(wins); len(n.archive) > keep {
		if keep < 0 {
			keep = 0
		}
		n.archive = n.archive[len(n.archive)-keep:]
	}

	for _, w := range release {
		for _, k := range w.keys {
			s.unref(k)
		}
	}
	n.wins = wins
	n.held = held

	info := BatchInfo{
		ID:               b.ID,
		CommittedAt:      b.CommittedAt.UTC(),
		Duration:         durationMs(b.Duration),
		Reset:            b.Reset,
		RowsChanged:      len(b.Changed),
		RowsClosed:       len(b.Closed),
		Watermark:        usTime(b.Watermark),
		WatermarkForLate: usTime(b.WatermarkForLate),
		NextWatermark:    usTime(b.NextWatermark),
		Counts:           b.Counts.clone(),
		Lag:              slices.Clone(b.Lag),
		StateRows:        b.StateRows,
	}
	for _, l := range b.Lag {
		info.LagTotal += l.Lag
	}
	if info.Counts.Bad == nil {
		info.Counts.Bad = map[string]int64{}
	}
	n.batch = &info
	n.since.add(b.Counts)
	if n.since.Bad == nil {
		n.since.Bad = map[string]int64{}
	}
	keep := min(len(p.batches), s.lim.recentBatches-1)
	n.batches = make([]BatchInfo, 0, keep+1)
	n.batches = append(n.batches, p.batches[len(p.batches)-keep:]...)
	n.batches = append(n.batches, info)
	slices.Sort(touched)
	touched = slices.Compact(touched)
	s.cur.Store(n)
	return n, touched, nil
}

// merge returns old's rows with the changes (all for window start) applied,
// as a new window; old may be nil. At most room new keys are added: beyond
// it the window is marked truncated.
func (s *store) merge(old *win, start int64, ch []change, nm, room int) *win {
	var ok []*keyEntry
	var ov []float64
	nw := &win{start: start, end: start + s.q.Window.Microseconds()}
	if old != nil {
		ok, ov = old.keys, old.vals
		nw.closed, nw.truncated = old.closed, old.truncated
	}
	keys := make([]*keyEntry, 0, len(ok)+len(ch))
	vals := make([]float64, 0, (len(ok)+len(ch))*nm)
	i, j := 0, 0
	for i < len(ok) || j < len(ch) {
		c := 1
		switch {
		case i == len(ok):
			c = 1
		case j == len(ch):
			c = -1
		default:
			c = compareKeys(ok[i].vals, ch[j].keys)
		}
		switch {
		case c < 0: // unchanged row
			keys = append(keys, ok[i])
			vals = append(vals, ov[i*nm:(i+1)*nm]...)
			i++
		default: // changed (c == 0) or new (c > 0) row; later duplicates win
			k := j
			for k+1 < len(ch) && compareKeys(ch[k+1].keys, ch[j].keys) == 0 {
				k++
			}
			if ch[k].closed {
				nw.closed = true
			}
			if c == 0 {
				keys = append(keys, ok[i])
				vals = append(vals, ch[k].vals...)
				i++
			} else if room > 0 {
				keys = append(keys, s.intern(ch[k].keys))
				vals = append(vals, ch[k].vals...)
				room--
			} else {
				nw.truncated = true
			}
			j = k + 1
		}
	}
	nw.keys, nw.vals = keys, vals
	nw.sums = make([]float64, nm)
	for r := range keys {
		for m := range nm {
			nw.sums[m] += vals[r*nm+m]
		}
	}
	return nw
}

// intern returns the entry of keys with one more reference, creating it (and
// copying the values) if new.
func (s *store) intern(keys []window.Value) *keyEntry {
	s.buf = window.AppendKeys(s.buf[:0], keys)
	if e, ok := s.keys[string(s.buf)]; ok {
		e.refs++
		return e
	}
	enc := string(s.buf)
	e := &keyEntry{vals: slices.Clone(keys), refs: 1}
	s.keys[enc] = e
	return e
}

func (s *store) unref(e *keyEntry) {
	e.refs--
	if e.refs == 0 {
		s.buf = window.AppendKeys(s.buf[:0], e.vals)
		delete(s.keys, string(s.buf))
	}
}

// compareKeys orders key tuples column by column, NULL first, then by bytes,
// as the engine orders its rows.
func compareKeys(a, b []window.Value) int {
	for i := range a {
		x, y := a[i], b[i]
		switch {
		case !x.Valid && !y.Valid:
			continue
		case !x.Valid:
			return -1
		case !y.Valid:
			return 1
		}
		if c := strings.Compare(x.S, y.S); c != 0 {
			return c
		}
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// decodeKeyID parses a key_id back into its values.
func decodeKeyID(id string, ncols int) ([]window.Value, error) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	vals, rest, err := decodeKeys(b, ncols)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return vals, nil
}

// decodeKeys reads ncols values in window.AppendKeys's encoding from b.
func decodeKeys(b []byte, ncols int) ([]window.Value, []byte, error) {
	vals := make([]window.Value, ncols)
	for i := range vals {
		if len(b) == 0 {
			return nil, nil, fmt.Errorf("%d key values, want %d", i, ncols)
		}
		tag := b[0]
		b = b[1:]
		switch tag {
		case 0:
		case 1:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, nil, errors.New("bad string length")
			}
			vals[i] = window.Value{S: string(b[n : n+int(l)]), Valid: true}
			b = b[n+int(l):]
		default:
			return nil, nil, errors.New("bad value tag")
		}
	}
	return vals, b, nil
}

func usTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

func durationMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
