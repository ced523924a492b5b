package analyzer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

// A durable query keeps its state in three internal topics, written only in
// the transaction of the batch that changes them:
//
//   - InputState has one partition per input partition: the input offset the
//     next batch starts at, and the de-duplication state (the message ids
//     seen within the watermark horizon, and the horizon).
//   - WindowState has one partition per shuffle partition: the window rows
//     whose group-by key hashes to it, the engine's progress (batch id,
//     watermarks) and the offset of the shuffle partition.
//   - Repartition has the same partitions: partial counts sent by an
//     instance that read them to the instance that owns their key.
//
// A group-by key belongs to shuffle partition hash(key) mod the number of
// shuffle partitions, whoever reads the input record. The instance that owns
// a shuffle partition counts its keys: records of its own input partitions
// directly, others through the repartition topic. One instance owns every
// partition and never writes to the repartition topic.

// StateTopic names an internal topic of a durable query.
type StateTopic uint8

// The internal topics.
const (
	InputState StateTopic = iota + 1
	WindowState
	Repartition
	// Batches has one partition: the plan of the query's latest batch
	// (offset ranges of every input partition), written by the leader.
	Batches
)

func (t StateTopic) String() string {
	switch t {
	case InputState:
		return "input-state"
	case WindowState:
		return "window-state"
	case Repartition:
		return "repartition"
	case Batches:
		return "batches"
	}
	return fmt.Sprintf("StateTopic(%d)", uint8(t))
}

// StateRecord is a record the analyzer writes to an internal topic in a
// batch's transaction. A nil Value is a tombstone.
type StateRecord struct {
	Topic      StateTopic
	Partition  int32
	Key, Value []byte
}

// PartitionState is the committed content of one partition of a compacted
// internal topic: the latest value of every key, tombstones applied.
type PartitionState map[string][]byte

// StateChanges are the changes in ownership a plan brings: the partitions
// this instance lost and gained since the previous plan, with the committed
// state of those it gained.
type StateChanges struct {
	// Reset drops all state held before the gained partitions are loaded:
	// after a rolled-back batch Gained* hold every partition owned.
	Reset         bool
	LostInput     []int32
	LostShuffle   []int32
	GainedInput   map[int32]PartitionState
	GainedShuffle map[int32]PartitionState
}

// Empty reports whether nothing changed.
func (c *StateChanges) Empty() bool {
	return c == nil || !c.Reset && len(c.LostInput)+len(c.LostShuffle)+len(c.GainedInput)+len(c.GainedShuffle) == 0
}

// Durable is a Source whose batches are transactions and whose partitions
// carry state. Per batch the analyzer calls Plan (whose Changes it applies
// before reading), Begin, Read, Write for the batch's state records (and the
// outputs and dead letters produce into the same transaction), then Commit,
// or Abort when the batch fails.
type Durable interface {
	Source
	// ShufflePartitions is the number of shuffle partitions (fixed).
	ShufflePartitions() int32
	// Begin starts the transaction of a batch.
	Begin(ctx context.Context) error
	// Write adds records to the transaction; a failure is reported by
	// Commit. It may be called from another goroutine than the other
	// methods, while the batch runs (never at the same time as itself or
	// as Begin, Commit and Abort). It may wait for room to buffer the
	// records, until ctx is done: the records not buffered then fail the
	// transaction.
	Write(ctx context.Context, recs ...StateRecord)
	// Abort rolls the transaction back; the next plan reloads every owned
	// partition's state (Changes.Reset). cause is why (nil when stopping):
	// when it shows the transaction itself failed in a way running the
	// batch again can avoid (it ran out of time), Abort returns an error
	// wrapping ErrRolledBack, and the batch is run again.
	Abort(ctx context.Context, cause error) error
}

// ErrRolledBack is Commit's error when the transaction was rolled back
// instead of committed (the group rebalanced during the batch): nothing of
// the batch is stored, its input is read again, and the next plan reloads
// the state of every partition still owned.
var ErrRolledBack = errors.New("the batch's transaction was rolled back (the group rebalanced); its input is read again")

// Keys of the internal topics' records. Window rows are "w/<start µs>/<keys
// as a JSON array>", de-duplication sets "d/<window end µs>/<sequence>".
const (
	keyProgress = "p" // WindowState: the engine's progress and the query
	keyHorizon  = "h" // InputState: the de-duplication horizon
	// KeyOffset is the key of the offset record a Durable keeps in every
	// partition of InputState and WindowState: the offset of the input or
	// shuffle partition the next batch starts at.
	KeyOffset = "o"
)

// progressValue is the value of the progress record.
type progressValue struct {
	Query            string `json:"query"`
	NextBatchID      int64  `json:"next_batch_id"`
	WatermarkForLate int64  `json:"watermark_for_late_us"`
	Watermark        int64  `json:"watermark_us"`
	LastRunWatermark int64  `json:"last_run_watermark_us"`
	Ran              bool   `json:"ran"`
}

// horizonValue is the value of an input partition's de-duplication horizon:
// records whose last window ends at or before Drop are too late for every
// window, Next is what Drop becomes after the next batch, Seq numbers the
// partition's de-duplication records.
type horizonValue struct {
	Drop int64 `json:"drop_us"`
	Next int64 `json:"next_us"`
	Seq  int64 `json:"seq"`
}

// partial is the count of one batch's records of one key whose event times
// fall in the same set of windows, sent through the repartition topic. Its
// event time is the latest of them: every event of the set lies in the same
// windows, and the latest one is what moves the watermark.
type partial struct {
	TS    int64     `json:"ts_us"`
	Count int64     `json:"count"`
	Keys  []*string `json:"keys"`
	// Batch is the batch whose share of an input partition the count is
	// (RoleMap); absent in records of earlier versions.
	Batch *int64 `json:"batch,omitempty"`
}

// keyMarker is the key of a marker record on the repartition topic: an
// instance ran its share of a batch for one input partition, and every
// partial count of that share is before the marker in the same partition.
const keyMarker = "m"

// marker is the value of a marker record.
type marker struct {
	Batch     int64 `json:"batch"`
	Partition int32 `json:"partition"`
	// Late counts the records of the share that were too late for every
	// window (not sent); Records the records read.
	Late    int64 `json:"late_records"`
	Records int64 `json:"records"`
}

// inputPart is the de-duplication state of one owned input partition. The
// ids are kept by the end of their message's last window: every copy of a
// message carries the message's creation time (message_timestamp; the bot
// takes it from Discord, whose copies of a message all agree), so a copy
// falls in the same slot as the original. A slot's ids are forgotten at
// once when the horizon passes its end, and each lookup searches one
// slot's set, not every id within the horizon.
type inputPart struct {
	byEnd map[int64]*dedupSlot
	hz    horizonValue
	// The slot of the last lookup: consecutive records mostly share one.
	lastEnd  int64
	lastSlot *dedupSlot
	// This batch.
	maxTs int64
	hasTs bool
	// sizeHint is the size of the largest slot held at the end of the last
	// batch: a new slot that turns out busy gets room for as many ids at
	// once, instead of growing a set of 100,000s step by step (idSet.hint).
	// It is computed once per batch: computing it when a slot is created
	// scanned every slot, and a replay creating tens of thousands of slots
	// in one batch took quadratic time.
	sizeHint int
	// track: the ids added are stored (the state is kept in a Durable).
	track bool
}

type dedupSlot struct {
	ids  idSet
	seqs []int64 // the records holding them: "d/<end>/<seq>"
	// The string ids new in this batch, not stored yet (kept only when the
	// state is stored; ids tracks the numeric ones).
	addedStr []string
	touched  bool // an id was added in this batch
}

// idCount returns how many ids the partition remembers.
func (p *inputPart) idCount() int {
	n := 0
	for _, s := range p.byEnd {
		n += s.ids.len()
	}
	return n
}

// durableState is the analyzer's state beyond the engine when it runs on a
// Durable: which partitions it owns, their de-duplication sets, and this
// batch's partial counts for other instances.
type durableState struct {
	src      Durable
	cfg      window.Config
	query    string
	dedup    bool
	nShuffle int32

	shuffle  map[int32]bool
	inputs   map[int32]*inputPart
	partials map[int32]map[string]*partial // by repartition partition, then slot and key
	// role and batch are the current batch's (Plan.Role, Plan.Batch): with
	// RoleMap the partial counts of an input partition p go to
	// repartition partition p mod the shuffle partitions, tagged with the
	// batch, followed by a marker.
	role  Role
	batch int64
	keys  keyHasher
	buf   []byte // for addPartial's keys
}

// keyHasher hashes key tuples to shuffle partitions (FNV-1a of
// window.AppendKeys), reusing its buffers.
type keyHasher struct {
	buf  []byte
	hash hash.Hash64
}

func (h *keyHasher) partition(keys []window.Value, n int32) int32 {
	h.buf = window.AppendKeys(h.buf[:0], keys)
	if h.hash == nil {
		h.hash = fnv.New64a()
	}
	h.hash.Reset()
	h.hash.Write(h.buf)
	return int32(h.hash.Sum64() % uint64(n))
}

func newDurableState(src Durable, cfg Config) *durableState {
	return &durableState{
		src:      src,
		cfg:      cfg.engineConfig(),
		query:    cfg.fingerprint(),
		dedup:    cfg.Dedup,
		nShuffle: src.ShufflePartitions(),
		shuffle:  map[int32]bool{},
		inputs:   map[int32]*inputPart{},
		partials: map[int32]map[string]*partial{},
	}
}

// newMemoryState is de-duplication without a Durable source: the ids are
// remembered in memory only (forgotten on restart), every partition is
// owned, every key counted here.
func newMemoryState(cfg Config) *durableState {
	return &durableState{
		cfg:      cfg.engineConfig(),
		query:    cfg.fingerprint(),
		dedup:    cfg.Dedup,
		nShuffle: 1,
		shuffle:  map[int32]bool{0: true},
		inputs:   map[int32]*inputPart{},
		partials: map[int32]map[string]*partial{},
	}
}

func newInputPart(track bool) *inputPart {
	return &inputPart{byEnd: map[int64]*dedupSlot{}, track: track}
}

// route returns the shuffle partition of a key tuple and whether this
// instance owns it.
func (d *durableState) route(keys []window.Value) (int32, bool) {
	if len(d.shuffle) == int(d.nShuffle) {
		return 0, true // every partition is ours: no need to hash
	}
	q := d.shuffleOf(keys)
	return q, d.shuffle[q]
}

// advance ends a batch without a Durable source: the horizons move and ids
// beyond them are forgotten.
func (d *durableState) advance() {
	d.endBatch(false)
}

// fingerprint names what the state depends on; state written by another
// query is refused.
func (c Config) fingerprint() string {
	return fmt.Sprintf("window=%v slide=%v watermark=%v group_by=%s mode=%v",
		c.Window, c.Slide, c.Watermark, strings.Join(c.GroupBy, ","), c.Mode)
}

// shuffleOf returns the shuffle partition of a key tuple.
func (d *durableState) shuffleOf(keys []window.Value) int32 {
	return d.keys.partition(keys, d.nShuffle)
}

// StateError says the committed state cannot be used.
type StateError struct {
	What string
	Err  error
}

func (e *StateError) Error() string { return fmt.Sprintf("state of %s: %v", e.What, e.Err) }
func (e *StateError) Unwrap() error { return e.Err }

// Hint says how to get going again.
func (e *StateError) Hint() string {
	return "the internal topics hold state of another query or are damaged: run this query under a new --application-id, or delete its state with --reset (it then starts over from --starting-offsets)"
}

// apply brings the state in line with a plan's ownership changes and
// returns the engine to run the batch with: eng itself when no shuffle
// partition changed hands, else a new engine holding the rows of every
// shuffle partition now owned.
func (d *durableState) apply(ch *StateChanges, eng *window.Engine) (*window.Engine, error) {
	if ch.Empty() {
		return eng, nil
	}
	if err := d.applyInputs(ch); err != nil {
		return nil, err
	}
	if !ch.Reset && len(ch.LostShuffle) == 0 && len(ch.GainedShuffle) == 0 {
		return eng, nil
	}
	for _, q := range ch.LostShuffle {
		delete(d.shuffle, q)
	}
	for q := range ch.GainedShuffle {
		delete(d.shuffle, q) // its rows come from the state topic
	}
	// Rebuild the engine: the rows of the shuffle partitions kept, plus
	// those of the gained ones; the progress of all of them.
	var rows []window.Row
	progress := window.Progress{}
	if !ch.Reset {
		progress = eng.Progress()
		for _, r := range eng.Rows() {
			if d.shuffle[d.shuffleOf(r.Keys)] {
				rows = append(rows, r)
			}
		}
	}
	for q, st := range ch.GainedShuffle {
		p, rs, err := d.loadShuffle(st)
		if err != nil {
			return nil, &StateError{What: fmt.Sprintf("shuffle partition %d", q), Err: err}
		}
		for _, r := range rs {
			if got := d.shuffleOf(r.Keys); got != q {
				return nil, &StateError{What: fmt.Sprintf("shuffle partition %d", q),
					Err: fmt.Errorf("holds a row of shuffle partition %d: the number of shuffle partitions changed", got)}
			}
		}
		rows = append(rows, rs...)
		progress = progress.Merge(p)
		d.shuffle[q] = true
	}
	next, err := window.New(d.cfg)
	if err != nil {
		return nil, err
	}
	if err := next.Restore(progress, rows); err != nil {
		return nil, &StateError{What: "the window state", Err: err}
	}
	return next, nil
}

// applyInputs applies the changes of the input partitions (and with
// ch.Reset drops every partition held).
func (d *durableState) applyInputs(ch *StateChanges) error {
	if ch.Reset {
		clear(d.inputs)
		clear(d.shuffle)
		clear(d.partials)
	}
	for _, p := range ch.LostInput {
		delete(d.inputs, p)
	}
	for p, st := range ch.GainedInput {
		part, err := d.loadInput(st)
		if err != nil {
			return &StateError{What: fmt.Sprintf("input partition %d", p), Err: err}
		}
		d.inputs[p] = part
	}
	return nil
}

// loadShuffle decodes a shuffle partition's committed window rows and
// progress.
func (d *durableState) loadShuffle(st PartitionState) (window.Progress, []window.Row, error) {
	var p window.Progress
	if v, ok := st[keyProgress]; ok {
		var pv progressValue
		if err := json.Unmarshal(v, &pv); err != nil {
			return p, nil, fmt.Errorf("progress record: %w", err)
		}
		if pv.Query != d.query {
			return p, nil, fmt.Errorf("it was written by the query %q; this one is %q", pv.Query, d.query)
		}
		p = window.Progress{NextBatchID: pv.NextBatchID, WatermarkForLate: pv.WatermarkForLate,
			Watermark: pv.Watermark, LastRunWatermark: pv.LastRunWatermark, Ran: pv.Ran}
	}
	var rows []window.Row
	for k, v := range st {
		if strings.HasPrefix(k, queryPrefix) {
			return p, nil, fmt.Errorf("it holds the state of named queries (--queries, --preset), not of the one query the flags give")
		}
		if !strings.HasPrefix(k, "w/") {
			continue
		}
		r, err := decodeRow(k, v, d.cfg)
		if err != nil {
			return p, nil, err
		}
		rows = append(rows, r)
	}
	return p, rows, nil
}

// loadInput decodes an input partition's committed de-duplication state.
func (d *durableState) loadInput(st PartitionState) (*inputPart, error) {
	part := newInputPart(true)
	if v, ok := st[keyHorizon]; ok {
		if err := json.Unmarshal(v, &part.hz); err != nil {
			return nil, fmt.Errorf("horizon record: %w", err)
		}
	}
	for k, v := range st {
		rest, ok := strings.CutPrefix(k, "d/")
		if !ok {
			continue
		}
		endS, seqS, ok := strings.Cut(rest, "/")
		end, err1 := strconv.ParseInt(endS, 10, 64)
		seq, err2 := strconv.ParseInt(seqS, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("de-duplication record %q: malformed key", k)
		}
		slot := part.slot(end)
		slot.seqs = append(slot.seqs, seq)
		err := decodeIDs(v, func(id dedupID) {
			if id.s != "" {
				slot.ids.str[id.s] = struct{}{}
			} else {
				slot.ids.old = append(slot.ids.old, id.n)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("de-duplication record %q: malformed: %v", k, err)
		}
	}
	for _, slot := range part.byEnd {
		slot.ids.sortLoaded()
		part.sizeHint = max(part.sizeHint, slot.ids.len())
	}
	return part, nil
}

func (p *inputPart) slot(end int64) *dedupSlot {
	if p.lastSlot != nil && p.lastEnd == end {
		return p.lastSlot
	}
	s := p.byEnd[end]
	if s == nil {
		s = &dedupSlot{ids: newIDSet(p.sizeHint, p.track)}
		p.byEnd[end] = s
	}
	p.lastEnd, p.lastSlot = end, s
	return s
}

// idsRecord returns the state record storing value v, ids of the slot
// ending at end of input partition part.
func (p *inputPart) idsRecord(part int32, end int64, v []byte) StateRecord {
	p.hz.Seq++
	s := p.byEnd[end]
	s.seqs = append(s.seqs, p.hz.Seq)
	return StateRecord{Topic: InputState, Partition: part, Key: dedupKey(end, p.hz.Seq), Value: v}
}

// verdict is what de-duplication decides about a record.
type verdict uint8

const (
	admitted  verdict = iota // count it
	duplicate                // seen before within the horizon
	tooLate                  // beyond the horizon: too late for every window
)

// admit de-duplicates a record of input partition p with event time ts:
// the first record of a message id within the horizon is admitted and
// remembered. A record whose every window ended at or before the horizon is
// too late: its id may have been forgotten, so it cannot be checked. The
// caller decides what to do with it (the engine drops such a record as late
// anyway when its watermark is at least the horizon). Records without a
// message id are always admitted.
func (d *durableState) admit(p int32, msgID string, hasID bool, ts int64) verdict {
	part := d.inputs[p]
	if part == nil {
		if d.src != nil {
			return admitted // not owned: the source does not deliver such records
		}
		part = newInputPart(false)
		d.inputs[p] = part
	}
	if (!part.hasTs || ts > part.maxTs) && ts >= window.MinTimestamp && ts <= window.MaxTimestamp {
		part.maxTs, part.hasTs = ts, true
	}
	if !d.dedup || !hasID || msgID == "" {
		return admitted
	}
	end := d.cfg.WindowEnd(ts)
	if end <= part.hz.Drop {
		return tooLate
	}
	id := toDedupID(msgID)
	slot := part.slot(end)
	if slot.ids.has(id) {
		return duplicate
	}
	if id.s != "" {
		id.s = strings.Clone(id.s) // msgID aliases the record
	}
	slot.ids.add(id)
	slot.touched = true
	if part.track && id.s != "" {
		slot.addedStr = append(slot.addedStr, id.s)
	}
	return admitted
}

// horizon returns input partition p's de-duplication horizon.
func (d *durableState) horizon(p int32) int64 {
	if part := d.inputs[p]; part != nil {
		return part.hz.Drop
	}
	return 0
}

// addPartial counts a record of input partition p for shuffle partition
// q, owned elsewhere.
func (d *durableState) addPartial(p, q int32, ts int64, keys []window.Value) {
	if d.role == RoleMap {
		q = p % d.nShuffle
	}
	m := d.partials[q]
	if m == nil {
		m = map[string]*partial{}
		d.partials[q] = m
	}
	last, k := d.slotOf(ts)
	b := strconv.AppendInt(d.buf[:0], last, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(k), 10)
	b = append(b, '/')
	b = window.AppendKeys(b, keys)
	d.buf = b
	if pt, ok := m[string(b)]; ok {
		pt.Count++
		pt.TS = max(pt.TS, ts)
		return
	}
	m[string(b)] = &partial{TS: ts, Count: 1, Keys: jsonKeys(keys)}
}

// slotOf identifies the set of windows an event at ts belongs to: the start
// of the latest one and how many there are.
func (d *durableState) slotOf(ts int64) (lastStart int64, n int) {
	size, slide := int64(d.cfg.Window/time.Microsecond), int64(d.cfg.Slide/time.Microsecond)
	end := d.cfg.WindowEnd(ts)
	lastStart = end - size
	n = int((end - ts + slide - 1) / slide) // windows whose end is after ts
	return lastStart, n
}

// writeRows writes the window rows a batch changes (updated and evicted,
// as PendingChanges reported them before RunBatch; evicted ones as
// tombstones) to d.src on a goroutine of its own, and returns a function
// that waits for it. Producing a record costs about a microsecond and a
// batch changes tens of thousands of rows: done this way, it overlaps with
// running the batch, writing its outputs and encoding the rest of its state.
// The rows' keys must stay unchanged until the wait returns (RunBatch leaves
// them so).
func (d *durableState) writeRows(ctx context.Context, updated, evicted []window.Row) (wait func()) {
	if len(updated)+len(evicted) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var h keyHasher
		// The keys and values share buffers of up to 256 KiB (one is
		// freed once Kafka has taken its records), and the
		// records are handed over in chunks: allocating each key and value
		// took a third of the time.
		var arena []byte
		chunk := make([]StateRecord, 0, 512)
		flush := func() {
			d.src.Write(ctx, chunk...)
			clear(chunk)
			chunk = chunk[:0]
		}
		put := func(r window.Row, tombstone bool) {
			arena = reserve(arena, len(updated)+len(evicted))
			k := len(arena)
			arena = appendRowKey(arena, r)
			rec := StateRecord{Topic: WindowState, Partition: h.partition(r.Keys, d.nShuffle), Key: arena[k:len(arena):len(arena)]}
			if !tombstone {
				v := len(arena)
				arena = strconv.AppendInt(arena, r.Count, 10)
				rec.Value = arena[v:len(arena):len(arena)]
			}
			if chunk = append(chunk, rec); len(chunk) == cap(chunk) {
				flush()
			}
		}
		for _, r := range updated {
			put(r, false)
		}
		for _, r := range evicted {
			put(r, true)
		}
		flush()
	}()
	return func() { <-done }
}

// records returns the rest of a batch's state records (writeRows writes
// the window rows): the progress, for each owned shuffle partition; the new
// de-duplication sets, the forgotten ones and the horizon, for each owned
// input partition; and the partial counts for shuffle partitions owned
// elsewhere, and with RoleMap a marker per input partition the plan read
// (late is the batch's records too late for every window). It advances
// the horizons. eng has run the batch (not with RoleMap).
func (d *durableState) records(eng *window.Engine, plan Plan, late, records int64) ([]StateRecord, error) {
	out := make([]StateRecord, 0, len(d.shuffle)+16)
	p := eng.Progress()
	pv, err := json.Marshal(progressValue{Query: d.query, NextBatchID: p.NextBatchID, WatermarkForLate: p.WatermarkForLate,
		Watermark: p.Watermark, LastRunWatermark: p.LastRunWatermark, Ran: p.Ran})
	if err != nil {
		return nil, err
	}
	for _, q := range slices.Sorted(maps.Keys(d.shuffle)) {
		out = append(out, StateRecord{Topic: WindowState, Partition: q, Key: []byte(keyProgress), Value: pv})
	}

	in, err := d.endBatch(true)
	if err != nil {
		return nil, err
	}
	out = append(out, in...)

	var batch *int64
	if d.role == RoleMap {
		batch = &plan.Batch
	}
	for _, q := range slices.Sorted(maps.Keys(d.partials)) {
		for _, k := range slices.Sorted(maps.Keys(d.partials[q])) {
			pt := d.partials[q][k]
			pt.Batch = batch
			v, err := json.Marshal(pt)
			if err != nil {
				return nil, err
			}
			out = append(out, StateRecord{Topic: Repartition, Partition: q, Value: v})
		}
	}
	clear(d.partials)
	if d.role == RoleMap {
		// After the partial counts: the leader reads a partition's share up
		// to its marker.
		first := true
		for _, r := range plan.Ranges {
			m := marker{Batch: plan.Batch, Partition: r.Partition}
			if first {
				m.Late, m.Records, first = late, records, false
			}
			v, err := json.Marshal(m)
			if err != nil {
				return nil, err
			}
			out = append(out, StateRecord{Topic: Repartition, Partition: r.Partition % d.nShuffle, Key: []byte(keyMarker), Value: v})
		}
	}
	return out, nil
}

// reserve returns arena, or a new buffer when arena has less than 256 bytes
// free, sized for rows rows (48 bytes each, at most 256 KiB). The
// records already pointing into a full buffer keep it.
func reserve(arena []byte, rows int) []byte {
	if cap(arena)-len(arena) >= 256 {
		return arena
	}
	return make([]byte, 0, min(max(rows, 64)*48, 256<<10))
}

// endBatch ends a batch for the input partitions: it moves the horizons,
// forgets the ids beyond them and, with emit, returns the records that
// store the new ids, drop the forgotten ones and keep the horizons.
func (d *durableState) endBatch(emit bool) ([]StateRecord, error) {
	var out []StateRecord
	delayMs := int64(d.cfg.Watermark / time.Millisecond)
	for _, p := range slices.Sorted(maps.Keys(d.inputs)) {
		part := d.inputs[p]
		// The ids a slot gained are stored in records of at most
		// maxDedupRecordBytes (a batch can add hundreds of thousands of
		// ids, and Kafka refuses records over its max.message.bytes): the
		// numeric ones encoded as the slot's generations were merged, one
		// record per generation, the others here.
		part.sizeHint = 0
		for _, end := range slices.Sorted(maps.Keys(part.byEnd)) {
			slot := part.byEnd[end]
			part.sizeHint = max(part.sizeHint, slot.ids.len())
			if !slot.touched {
				// Its window has passed: keep its ids compactly until the
				// horizon forgets them.
				slot.ids.settle()
				continue
			}
			slot.touched = false
			slot.ids.flush()
			if !d.dedup || !emit {
				continue
			}
			for _, v := range slot.ids.takePending() {
				out = append(out, part.idsRecord(p, end, v))
			}
			for ids := slot.addedStr; len(ids) > 0; {
				v, n := appendIDsChunk(nil, ids, maxDedupRecordBytes)
				out = append(out, part.idsRecord(p, end, v))
				ids = ids[n:]
			}
			slot.addedStr = nil
		}
		// The horizon moves as the engine's watermark does, from this
		// partition's own event times: the next batch drops what the
		// watermark computed a batch ago passed; forget those ids now.
		part.hz.Drop = part.hz.Next
		if part.hasTs {
			if cand := (part.maxTs/1000 - delayMs) * 1000; cand > part.hz.Next {
				part.hz.Next = cand
			}
		}
		part.hasTs, part.maxTs = false, 0
		if !d.dedup {
			continue
		}
		for end, slot := range part.byEnd {
			if end > part.hz.Drop {
				continue
			}
			for _, seq := range slot.seqs {
				out = append(out, StateRecord{Topic: InputState, Partition: p, Key: dedupKey(end, seq)})
			}
			delete(part.byEnd, end)
		}
		part.lastSlot = nil
		if !emit {
			continue
		}
		hv, err := json.Marshal(part.hz)
		if err != nil {
			return nil, err
		}
		out = append(out, StateRecord{Topic: InputState, Partition: p, Key: []byte(keyHorizon), Value: hv})
	}

	return out, nil
}

// decodePartial reads a record of the repartition topic.
func decodePartial(v []byte, keys int) (partial, error) {
	var p partial
	if err := json.Unmarshal(v, &p); err != nil {
		return p, fmt.Errorf("repartition record: %w", err)
	}
	if len(p.Keys) != keys || p.Count <= 0 {
		return p, fmt.Errorf("repartition record: %d keys and count %d, want %d keys and a positive count", len(p.Keys), p.Count, keys)
	}
	return p, nil
}

// decodeMarker reads a marker record of the repartition topic.
func decodeMarker(v []byte) (marker, error) {
	var m marker
	if err := json.Unmarshal(v, &m); err != nil {
		return m, fmt.Errorf("marker record: %w", err)
	}
	if m.Batch < 0 || m.Partition < 0 || m.Late < 0 {
		return m, fmt.Errorf("marker record: batch %d, partition %d, %d late records: negative", m.Batch, m.Partition, m.Late)
	}
	return m, nil
}

func dedupKey(end, seq int64) []byte {
	b := append([]byte("d/"), strconv.FormatInt(end, 10)...)
	b = append(b, '/')
	return strconv.AppendInt(b, seq, 10)
}

// rowKey is a window row's key: "w/<start>/<keys as a JSON array>", the
// keys JSON strings or null, written as encoding/json writes them (keys
// written by earlier versions must stay the same bytes: compaction and
// tombstones match keys byte for byte).
func rowKey(r window.Row) []byte {
	return appendRowKey(make([]byte, 0, 32+16*len(r.Keys)), r)
}

// appendRowKey appends rowKey(r) to b.
func appendRowKey(b []byte, r window.Row) []byte {
	b = append(b, "w/"...)
	b = strconv.AppendInt(b, r.Start, 10)
	b = append(b, '/', '[')
	for i, k := range r.Keys {
		if i > 0 {
			b = append(b, ',')
		}
		if k.Valid {
			b = chat.AppendJSONString(b, k.S)
		} else {
			b = append(b, "null"...)
		}
	}
	return append(b, ']')
}

func decodeRow(k string, v []byte, cfg window.Config) (window.Row, error) {
	bad := func() (window.Row, error) { return window.Row{}, fmt.Errorf("window row %q = %q: malformed", k, v) }
	startS, keysS, ok := strings.Cut(strings.TrimPrefix(k, "w/"), "/")
	if !ok {
		return bad()
	}
	start, err := strconv.ParseInt(startS, 10, 64)
	if err != nil {
		return bad()
	}
	var ks []*string
	if err := json.Unmarshal([]byte(keysS), &ks); err != nil {
		return bad()
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return bad()
	}
	return window.Row{Start: start, End: start + int64(cfg.Window/time.Microsecond), Keys: valueKeys(ks), Count: n}, nil
}

func jsonKeys(keys []window.Value) []*string {
	out := make([]*string, len(keys))
	for i, v := range keys {
		if v.Valid {
			s := v.S
			out[i] = &s
		}
	}
	return out
}

func valueKeys(ks []*string) []window.Value {
	out := make([]window.Value, len(ks))
	for i, s := range ks {
		if s != nil {
			out[i] = window.Value{S: *s, Valid: true}
		}
	}
	return out
}
