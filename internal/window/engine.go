// Package window is the analysis engine: it counts events, and computes
// Spark's aggregates over them (aggregate.go), per group-by key in sliding
// event-time windows or session windows (session.go) with a watermark,
// exactly as Spark Structured Streaming's
//
//	withWatermark(ts, delay).groupBy(window(ts, size, slide), keys...).count()
//	withWatermark(ts, delay).groupBy(session_window(ts, gap), keys...).agg(...)
//
// does, micro-batch by micro-batch, in the update, append and complete output
// modes (append and complete for session windows, as Spark).
//
// The engine is pure: no I/O, no clock, no goroutines. Time is the events'
// own (Unix microseconds, UTC); the caller decides where a micro-batch ends by
// calling RunBatch. Given the same events and the same batch boundaries it
// emits the same rows as Spark. What it does, following Spark 3.5/4.x:
//
//   - Windows are aligned to the Unix epoch: an event at ts is checked against
//     the ceil(size/slide) windows starting at lastStart - i*slide, where
//     lastStart = ts - floorMod(ts, slide); start inclusive, end exclusive.
//     When size is not a multiple of slide, windows that do not contain ts
//     are skipped (Spark's filter).
//   - The watermark starts at 0 and never moves back. At the end of a batch
//     that had events it becomes max(watermark, maxEventTime - delay), with
//     the event time truncated to milliseconds as Spark does. The watermark
//     computed at the end of batch N is the one batch N+1 runs with.
//   - In update and append modes, batch N drops a (window, key) contribution
//     as too late when window.end <= the watermark batch N-1 ran with, and
//     evicts state rows with window.end <= the watermark batch N runs with.
//     So a row can be updated, emitted and evicted in the same batch.
//   - Update emits the rows that received events in the batch (running
//     totals); append emits the rows it evicts (final counts); complete emits
//     all of state every batch, never evicts and never drops late events.
//   - After a batch that moved the watermark, Spark runs one more batch with
//     no data at the next trigger (NeedsNoDataBatch).
//
// Where we differ on purpose: emitted rows are sorted by window start, then
// keys (NULL first), which Spark cannot do in update or append mode.
//
// Memory is bounded by the watermark in update and append modes: evicted
// windows free their state, and a key no window holds is forgotten.
package window

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/hllpp"
)

// Value is one group-by value. Valid=false is SQL NULL (S is then ignored).
type Value struct {
	S     string
	Valid bool
}

// Row is one (window, key) aggregate: the window [Start, End) in Unix
// microseconds, the group-by values and the number of events counted.
// Keys is shared with the engine and other rows: treat it as read-only.
type Row struct {
	Start, End int64
	Keys       []Value
	Count      int64
	// Aggs are the row's aggregates (nil when Config.Aggs is empty).
	Aggs *RowAggs
}

// RowAggs are a row's aggregates, behind a pointer so that a row of a query
// that only counts stays as small as it was.
type RowAggs struct {
	// Values are the values of Config.Aggs, in order, in the rows of a
	// Batch (nil in the rows of Rows and PendingChanges).
	Values []Result
	// States are the states of Config.Aggs, in order, in the rows of Rows
	// and PendingChanges, for a snapshot (nil in the rows of a Batch); the
	// engine's own: read-only, and valid until the next Add. Restore and
	// DecodeRowState take them too.
	States []AggState
}

// Values returns the values of the row's aggregates (nil without).
func (r *Row) Values() []Result {
	if r.Aggs == nil {
		return nil
	}
	return r.Aggs.Values
}

// States returns the states of the row's aggregates (nil without).
func (r *Row) States() []AggState {
	if r.Aggs == nil {
		return nil
	}
	return r.Aggs.States
}

// Batch is the result of one micro-batch.
type Batch struct {
	// ID is the batch id, counting from 0 like Spark's.
	ID int64
	// Rows are the rows the output mode emits in this batch, sorted by Start,
	// then keys (NULL first, then byte order), then End.
	Rows []Row
	// WatermarkForLate is the watermark this batch dropped late rows against:
	// the one the previous batch ran with (0 for the first batch).
	WatermarkForLate int64
	// Watermark is the watermark this batch ran with and evicted against.
	Watermark int64
	// NextWatermark is the watermark after this batch, the one the next batch
	// runs with.
	NextWatermark int64
	// Input is the number of events added in this batch.
	Input int64
	// Late is the number of distinct (window, key) aggregates dropped in this
	// batch because their window had ended before WatermarkForLate (Spark's
	// numRowsDroppedByWatermark). Always 0 in complete mode.
	Late int64
	// OutOfRange is the number of events ignored because their timestamp was
	// outside [MinTimestamp, MaxTimestamp].
	OutOfRange int64
	// StateRows is the number of (window, key) rows held after the batch.
	StateRows int
}

// Engine is the windowed count. It is not safe for concurrent use.
type Engine struct {
	cfg     Config
	size    int64 // µs
	slide   int64 // µs
	delayMs int64
	nwin    int  // ceil(size/slide)
	exact   bool // size % slide == 0: every candidate window contains the event

	// Batch bookkeeping.
	batchID   int64
	wmLate    int64 // watermark the previous batch ran with
	wm        int64 // watermark the current batch runs with
	lastRunWM int64 // watermark the last batch ran with
	ran       bool  // a batch has run

	// Current batch.
	input, late, outOfRange int64
	maxTs                   int64
	hasTs                   bool
	lateSeen                map[int64]map[string]struct{}

	// Keys: interned, reference counted by the rows that hold them.
	keys   keyTable
	encBuf []byte

	// State: one bucket per window start, found by its start in byStart;
	// buckets holds them sorted by start unless unsorted is set (a bucket
	// was created before the latest one: events out of order), which
	// sortBuckets repairs once, before anything walks them in order.
	// Inserting each such bucket at its place instead cost a copy of the
	// slice per bucket: quadratic for a batch of events in random order.
	buckets    []*bucket
	byStart    map[int64]*bucket
	unsorted   bool
	stateRows  int
	nextSerial uint64
	useRecent  bool // nwin <= recentSlots: keys remember their recent cells

	// Buckets of the windows of the last event's lastStart (nil: not
	// created yet); valid while cacheOK.
	cacheStart int64
	cache      []*bucket
	cacheOK    bool

	sortBuf []sortItem // scratch for sortPositions

	// Aggregates (Config.Aggs): nagg states per cell, in bucket.ext.
	nagg      int
	needInput bool  // some aggregate reads an input value
	prec      []int // sketch precision per aggregate (0: none)
	resultBuf []Result
	rowAggBuf []RowAggs

	sess *sessions // session windows (Config.Gap), else nil
}

// bucket is the state of one window: a count per key.
type bucket struct {
	start  int64
	serial uint64          // unique per bucket ever created, never 0
	index  map[int32]int32 // key id -> position in cells
	cells  []cell
	dirty  []int32    // positions of cells updated in the current batch
	sorted []int32    // positions of cells in key order; nil when stale
	ext    []AggState // nagg states per cell, by position
}

type cell struct {
	count int64
	key   int32
	dirty bool
}

// New returns an engine for cfg, or cfg.Validate's error.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:      cfg,
		size:     int64(cfg.Window / time.Microsecond),
		slide:    int64(cfg.Slide / time.Microsecond),
		delayMs:  int64(cfg.Watermark / time.Millisecond),
		lateSeen: make(map[int64]map[string]struct{}),
		byStart:  make(map[int64]*bucket),
	}
	e.cfg.Aggs = slices.Clone(cfg.Aggs)
	e.nagg = len(cfg.Aggs)
	e.prec = make([]int, e.nagg)
	for i, a := range cfg.Aggs {
		e.prec[i], _ = a.validate()
		if a.Input != TypeNone {
			e.needInput = true
		}
	}
	e.keys.init(cfg.Keys)
	if cfg.Gap != 0 {
		e.sess = newSessions(int64(cfg.Gap / time.Microsecond))
		return e, nil
	}
	e.nwin = int(windowsPerEvent(cfg))
	e.exact = e.size%e.slide == 0
	e.useRecent = e.nwin <= recentSlots
	e.cache = make([]*bucket, e.nwin)
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Watermark returns the event-time watermark (Unix µs) the next batch runs
// with.
func (e *Engine) Watermark() int64 { return e.wm }

// StateRows returns the number of (window, key) rows held in state.
func (e *Engine) StateRows() int { return e.stateRows }

// NextBatchID returns the id the next RunBatch will give its batch.
func (e *Engine) NextBatchID() int64 { return e.batchID }

// NeedsNoDataBatch reports whether Spark would run a batch now even without
// new data: in update or append mode, when the watermark moved past the one
// the last batch ran with, so that the next batch evicts (and, in append
// mode, emits) with it. False before the first batch and in complete mode.
func (e *Engine) NeedsNoDataBatch() bool {
	return e.ran && e.cfg.Mode != Complete && e.wm > e.lastRunWM
}

// floorMod is ts mod slide in [0, slide), also for negative ts (Spark's
// remainder-plus-slide correction).
func floorMod(ts, slide int64) int64 {
	r := ts % slide
	if r < 0 {
		r += slide
	}
	return r
}

// Add counts one event with event time ts (Unix µs) and group-by values keys
// into the current micro-batch. keys is not retained: the engine copies the
// values it keeps, so keys may alias a buffer the caller reuses. Events
// outside [MinTimestamp, MaxTimestamp] are only counted in Batch.OutOfRange.
// Add panics if len(keys) != Config.Keys, or if an aggregate of the query
// reads an input value (use AddWith): that is a bug in the caller, not bad
// input.
func (e *Engine) Add(ts int64, keys []Value) {
	if e.nagg > 0 || e.sess != nil {
		if e.needInput {
			panic("window: Add called on a query whose aggregates read values: use AddWith")
		}
		e.add(ts, keys, 1, nil, nil)
		return
	}
	// The count alone: add's loop without the aggregates.
	e.input++
	if ts < MinTimestamp || ts > MaxTimestamp {
		e.outOfRange++
		return
	}
	if !e.hasTs || ts > e.maxTs {
		e.maxTs, e.hasTs = ts, true
	}
	if len(keys) != e.cfg.Keys {
		panic("window: Add called with the wrong number of keys")
	}
	lastStart := ts - floorMod(ts, e.slide)
	if !e.cacheOK || lastStart != e.cacheStart {
		e.fillCache(lastStart)
	}
	id := int32(-1)
	complete := e.cfg.Mode == Complete
	start := lastStart
	for i := 0; i < e.nwin; i, start = i+1, start-e.slide {
		end := start + e.size
		if !e.exact && ts >= end {
			continue
		}
		if !complete && end <= e.wmLate {
			e.noteLate(start, keys)
			continue
		}
		b := e.cache[i]
		if b == nil {
			b = e.bucketAt(start)
			e.cache[i] = b
		}
		if id < 0 {
			id = e.keys.intern(keys)
		}
		e.incr(b, id, start)
	}
}

// AddWith is Add for a query with aggregates: in holds the values of the
// aggregates' input expressions for the event, one per Config.Aggs (the one
// of count(*) is ignored). in is not retained. It panics if len(in) !=
// len(Config.Aggs).
func (e *Engine) AddWith(ts int64, keys []Value, in []Input) {
	if len(in) != e.nagg {
		panic("window: AddWith called with the wrong number of inputs")
	}
	e.add(ts, keys, 1, in, nil)
}

// AddPartial adds n > 0 events at once, aggregated outside the engine (on
// another instance, say): their event time is ts, their group-by values
// keys, their aggregates' states st (Config.NewStates, UpdateStates,
// MergeStates; nil when Config.Aggs is empty). It is Add of each event when
// all n belong to the windows ts belongs to (sliding windows: the same
// windows; session windows: ts exactly, as Spark's partial aggregation
// groups by (keys, [ts, ts+gap))). st is not retained.
func (e *Engine) AddPartial(ts int64, keys []Value, n int64, st []AggState) {
	if len(st) != e.nagg || n <= 0 {
		panic("window: AddPartial called with the wrong number of states or no events")
	}
	e.add(ts, keys, n, nil, st)
}

// add adds n events at ts: one with inputs in, or n whose aggregates'
// states are st.
func (e *Engine) add(ts int64, keys []Value, n int64, in []Input, st []AggState) {
	e.input += n
	if ts < MinTimestamp || ts > MaxTimestamp {
		e.outOfRange += n
		return
	}
	if !e.hasTs || ts > e.maxTs {
		e.maxTs, e.hasTs = ts, true
	}
	if len(keys) != e.cfg.Keys {
		panic("window: Add called with the wrong number of keys")
	}
	if e.sess != nil {
		e.addSession(ts, keys, n, in, st)
		return
	}
	lastStart := ts - floorMod(ts, e.slide)
	if !e.cacheOK || lastStart != e.cacheStart {
		e.fillCache(lastStart)
	}
	id := int32(-1)
	complete := e.cfg.Mode == Complete
	start := lastStart
	for i := 0; i < e.nwin; i, start = i+1, start-e.slide {
		end := start + e.size
		if !e.exact && ts >= end {
			continue
		}
		if !complete && end <= e.wmLate {
			e.noteLate(start, keys)
			continue
		}
		b := e.cache[i]
		if b == nil {
			b = e.bucketAt(start)
			e.cache[i] = b
		}
		if id < 0 {
			id = e.keys.intern(keys)
		}
		pos := e.incr(b, id, start)
		if n > 1 {
			b.cells[pos].count += n - 1
		}
		if e.nagg > 0 {
			e.updateAggs(b.ext[int(pos)*e.nagg:int(pos+1)*e.nagg], in, st)
		}
	}
}

// updateAggs adds an event's inputs in, or the states of several, src, to
// the aggregate states st.
func (e *Engine) updateAggs(st []AggState, in []Input, src []AggState) {
	switch {
	case src != nil:
		for i := range st {
			st[i].merge(&e.cfg.Aggs[i], &src[i])
		}
	case in != nil:
		for i := range st {
			st[i].update(&e.cfg.Aggs[i], &in[i])
		}
	}
}

// newAggs appends the empty states of a new cell's aggregates to ext.
func (e *Engine) newAggs(ext []AggState) []AggState {
	for i := range e.nagg {
		var s AggState
		if p := e.prec[i]; p != 0 {
			s.Sketch, _ = hllpp.New(p)
		}
		ext = append(ext, s)
	}
	return ext
}

// fillCache points the cache at the existing buckets of the windows starting
// at lastStart, lastStart-slide, ...
func (e *Engine) fillCache(lastStart int64) {
	e.cacheStart, e.cacheOK = lastStart, true
	start := lastStart
	for i := range e.cache {
		e.cache[i] = e.byStart[start]
		start -= e.slide
	}
}

// bucketAt returns the bucket for start, creating it.
func (e *Engine) bucketAt(start int64) *bucket {
	if b := e.byStart[start]; b != nil {
		return b
	}
	e.nextSerial++
	b := &bucket{start: start, serial: e.nextSerial, index: make(map[int32]int32)}
	if n := len(e.buckets); n > 0 && e.buckets[n-1].start > start {
		e.unsorted = true
	}
	e.buckets = append(e.buckets, b)
	e.byStart[start] = b
	return b
}

// sortBuckets puts the buckets in order of their start, if they are not.
func (e *Engine) sortBuckets() {
	if !e.unsorted {
		return
	}
	slices.SortFunc(e.buckets, func(a, b *bucket) int { return cmp.Compare(a.start, b.start) })
	e.unsorted = false
}

// incr counts one event for key id in bucket b (the window at start) and
// returns the position of its cell.
func (e *Engine) incr(b *bucket, id int32, start int64) int32 {
	// Most events of a key land in the windows its previous event did: the
	// key remembers its cell in each of its recent windows (direct-mapped by
	// window number), which saves the bucket's map lookup. Bucket serials
	// make entries for evicted buckets harmless.
	var slot *recentCell
	if e.useRecent {
		slot = &e.keys.recent[id][uint64(start/e.slide)&(recentSlots-1)]
		if slot.serial == b.serial {
			e.bump(b, slot.pos)
			return slot.pos
		}
	}
	pos, ok := b.index[id]
	if !ok {
		pos = int32(len(b.cells))
		b.cells = append(b.cells, cell{key: id})
		b.index[id] = pos
		b.sorted = nil
		e.keys.ref(id)
		e.stateRows++
		if e.nagg > 0 {
			b.ext = e.newAggs(b.ext)
		}
	}
	if slot != nil {
		slot.serial, slot.pos = b.serial, pos
	}
	e.bump(b, pos)
	return pos
}

func (e *Engine) bump(b *bucket, pos int32) {
	c := &b.cells[pos]
	c.count++
	if !c.dirty {
		c.dirty = true
		b.dirty = append(b.dirty, pos)
	}
}

// noteLate counts a late (window, key) contribution once per batch.
func (e *Engine) noteLate(start int64, keys []Value) {
	seen := e.lateSeen[start]
	if seen == nil {
		seen = make(map[string]struct{})
		e.lateSeen[start] = seen
	}
	e.encBuf = encodeKeys(e.encBuf[:0], keys)
	if _, ok := seen[string(e.encBuf)]; !ok {
		seen[string(e.encBuf)] = struct{}{}
		e.late++
	}
}

// RunBatch ends the current micro-batch: it emits the rows the output mode
// asks for, evicts the windows the watermark has passed (update and append
// modes), advances the watermark if the batch had events, and starts the
// next batch. A batch without events (a no-data batch) is fine.
func (e *Engine) RunBatch() Batch {
	out := Batch{
		ID:               e.batchID,
		WatermarkForLate: e.wmLate,
		Watermark:        e.wm,
		Input:            e.input,
		Late:             e.late,
		OutOfRange:       e.outOfRange,
	}
	switch {
	case e.sess != nil:
		out.Rows = e.sess.runBatch(e)
	case e.cfg.Mode == Update:
		out.Rows = e.emitDirty()
		e.evict(false, nil)
	case e.cfg.Mode == Append:
		e.clearDirty()
		out.Rows = e.evict(true, nil)
	case e.cfg.Mode == Complete:
		e.clearDirty()
		out.Rows = e.emitAll(false)
	}
	next := e.wm
	if e.hasTs {
		// Spark keeps event-time statistics in milliseconds (µs / 1000,
		// truncated) and subtracts the delay in milliseconds.
		if cand := (e.maxTs/1000 - e.delayMs) * 1000; cand > next {
			next = cand
		}
	}
	out.NextWatermark = next
	out.StateRows = e.stateRows

	e.ran = true
	e.lastRunWM = e.wm
	e.wmLate = e.wm
	e.wm = next
	e.batchID++
	e.input, e.late, e.outOfRange = 0, 0, 0
	e.hasTs, e.maxTs = false, 0
	clear(e.lateSeen)
	e.cacheOK = false
	return out
}

// emitDirty returns the rows updated in this batch, in order, and clears
// their dirty marks.
func (e *Engine) emitDirty() []Row {
	e.sortBuckets()
	n := 0
	for _, b := range e.buckets {
		n += len(b.dirty)
	}
	if n == 0 {
		return nil
	}
	rows := make([]Row, 0, n)
	for _, b := range e.buckets {
		if len(b.dirty) == 0 {
			continue
		}
		e.sortPositions(b, b.dirty)
		for _, pos := range b.dirty {
			c := &b.cells[pos]
			c.dirty = false
			r := Row{Start: b.start, End: b.start + e.size, Keys: e.keys.values(c.key), Count: c.count}
			if e.nagg > 0 {
				r.Aggs = e.outAggs(b, pos, c.count)
			}
			rows = append(rows, r)
		}
		b.dirty = b.dirty[:0]
	}
	return rows
}

func (e *Engine) clearDirty() {
	for _, b := range e.buckets {
		for _, pos := range b.dirty {
			b.cells[pos].dirty = false
		}
		b.dirty = b.dirty[:0]
	}
}

// emitAll returns every row in state, in order: as a batch emits them, or
// with their aggregate states when state is set.
func (e *Engine) emitAll(state bool) []Row {
	if e.sess != nil {
		return e.sess.all(e, state)
	}
	e.sortBuckets()
	rows := make([]Row, 0, e.stateRows)
	for _, b := range e.buckets {
		for _, pos := range e.order(b) {
			if state {
				rows = append(rows, e.stateRow(b, pos))
			} else {
				rows = append(rows, e.outRow(b, pos))
			}
		}
	}
	return rows
}

// outRow returns the row of b's cell at pos as a batch emits it.
func (e *Engine) outRow(b *bucket, pos int32) Row {
	c := &b.cells[pos]
	r := Row{Start: b.start, End: b.start + e.size, Keys: e.keys.values(c.key), Count: c.count}
	if e.nagg > 0 {
		r.Aggs = e.outAggs(b, pos, c.count)
	}
	return r
}

func (e *Engine) outAggs(b *bucket, pos int32, count int64) *RowAggs {
	return e.results(b.ext[int(pos)*e.nagg:int(pos+1)*e.nagg], count)
}

// stateRow returns the row of b's cell at pos with its aggregate states.
func (e *Engine) stateRow(b *bucket, pos int32) Row {
	c := &b.cells[pos]
	r := Row{Start: b.start, End: b.start + e.size, Keys: e.keys.values(c.key), Count: c.count}
	if e.nagg > 0 {
		r.Aggs = e.stateAggs(b, pos)
	}
	return r
}

func (e *Engine) stateAggs(b *bucket, pos int32) *RowAggs {
	ra := e.rowAggs()
	ra.States = b.ext[int(pos)*e.nagg : int(pos+1)*e.nagg : int(pos+1)*e.nagg]
	return ra
}

// results computes the values of the aggregates whose states are st, in a
// slice of their own (cut from a shared block).
func (e *Engine) results(st []AggState, count int64) *RowAggs {
	if len(e.resultBuf) < e.nagg {
		e.resultBuf = make([]Result, 256*e.nagg)
	}
	v := e.resultBuf[:e.nagg:e.nagg]
	e.resultBuf = e.resultBuf[e.nagg:]
	for i := range st {
		v[i] = e.cfg.Aggs[i].value(&st[i], count)
	}
	ra := e.rowAggs()
	ra.Values = v
	return ra
}

// rowAggs returns a new RowAggs (cut from a shared block).
func (e *Engine) rowAggs() *RowAggs {
	if len(e.rowAggBuf) == 0 {
		e.rowAggBuf = make([]RowAggs, 256)
	}
	ra := &e.rowAggBuf[0]
	e.rowAggBuf = e.rowAggBuf[1:]
	return ra
}

// order returns b's cell positions in key order.
func (e *Engine) order(b *bucket) []int32 {
	if b.sorted == nil || len(b.sorted) != len(b.cells) {
		b.sorted = make([]int32, len(b.cells))
		for i := range b.sorted {
			b.sorted[i] = int32(i)
		}
		e.sortPositions(b, b.sorted)
	}
	return b.sorted
}

// sortItem is a cell to sort by its single key, the string at hand.
type sortItem struct {
	s     string
	pos   int32
	valid bool
}

// sortPositions sorts positions of b's cells by key.
func (e *Engine) sortPositions(b *bucket, pos []int32) {
	if e.cfg.Keys != 1 {
		slices.SortFunc(pos, func(x, y int32) int {
			return compareKeys(e.keys.values(b.cells[x].key), e.keys.values(b.cells[y].key))
		})
		return
	}
	// One key: sort copies of the strings, which saves the lookups through
	// the key table in every comparison.
	items := e.sortBuf[:0]
	for _, p := range pos {
		v := e.keys.infos[b.cells[p].key].vals[0]
		items = append(items, sortItem{s: v.S, pos: p, valid: v.Valid})
	}
	slices.SortFunc(items, func(x, y sortItem) int {
		if x.valid != y.valid {
			if x.valid {
				return 1
			}
			return -1
		}
		return strings.Compare(x.s, y.s)
	})
	for i := range items {
		pos[i] = items[i].pos
	}
	clear(items) // drop the string references
	e.sortBuf = items[:0]
}

// evict removes the buckets whose window ended at or before the watermark
// the batch runs with, and returns their rows (in order) when emit is set.
func (e *Engine) evict(emit bool, rows []Row) []Row {
	e.sortBuckets()
	if emit {
		// One allocation for the rows emitted.
		k := 0
		for i := 0; i < len(e.buckets) && e.buckets[i].start+e.size <= e.wm; i++ {
			k += len(e.buckets[i].cells)
		}
		if k > 0 {
			rows = slices.Grow(rows, k)
		}
	}
	n := 0
	for n < len(e.buckets) && e.buckets[n].start+e.size <= e.wm {
		b := e.buckets[n]
		if emit {
			for _, pos := range e.order(b) {
				c := &b.cells[pos]
				r := Row{Start: b.start, End: b.start + e.size, Keys: e.keys.values(c.key), Count: c.count}
				if e.nagg > 0 {
					r.Aggs = e.outAggs(b, pos, c.count)
				}
				rows = append(rows, r)
			}
		}
		for i := range b.cells {
			e.keys.unref(b.cells[i].key)
		}
		e.stateRows -= len(b.cells)
		delete(e.byStart, b.start)
		n++
	}
	if n > 0 {
		clear(e.buckets[:n])
		e.buckets = slices.Delete(e.buckets, 0, n)
	}
	return rows
}

// compareKeys orders key tuples column by column, NULL first, then by bytes
// (Spark's ascending, nulls first, on strings).
func compareKeys(a, b []Value) int {
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

// CompareRows orders rows as Batch.Rows are ordered: by Start, then keys
// (NULL first), then End.
func CompareRows(a, b Row) int {
	switch {
	case a.Start < b.Start:
		return -1
	case a.Start > b.Start:
		return 1
	}
	if c := compareKeys(a.Keys, b.Keys); c != 0 {
		return c
	}
	switch {
	case a.End < b.End:
		return -1
	case a.End > b.End:
		return 1
	}
	return 0
}
