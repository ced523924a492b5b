package analyzer

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
)

// memCluster is a Kafka in memory for Durable tests: an input topic, the
// state topics (compacted: only the latest value per key) and the
// repartition topic. Transactions apply all their records at once.
type memCluster struct {
	input   map[int32][]Record
	state   map[StateTopic]map[int32]PartitionState
	repart  map[int32][]Record
	shuffle int32
}

func newMemCluster(inputParts, shuffle int32) *memCluster {
	c := &memCluster{input: map[int32][]Record{}, repart: map[int32][]Record{}, shuffle: shuffle,
		state: map[StateTopic]map[int32]PartitionState{InputState: {}, WindowState: {}}}
	for p := range inputParts {
		c.input[p] = nil
		c.state[InputState][p] = PartitionState{}
	}
	for q := range shuffle {
		c.state[WindowState][q] = PartitionState{}
	}
	return c
}

func (c *memCluster) produce(p int32, value []byte) {
	c.input[p] = append(c.input[p], Record{Topic: "in", Partition: p, Offset: int64(len(c.input[p])), Value: value})
}

// ftp is a partition of the input ("in") or repartition ("rp") topic.
type ftp struct {
	topic string
	p     int32
}

// fakeDurable is one instance's Durable over a memCluster. The test decides
// which partitions it owns (assign); like KafkaState, it restores their
// state and offsets when they are gained.
type fakeDurable struct {
	c     *memCluster
	limit int64 // offsets per batch over the input partitions (0: no cap)

	pos     map[ftp]int64
	changes *StateChanges
	txn     []StateRecord
	inTxn   bool

	// rollbackNext makes the next Commit roll back (a rebalance);
	// rollBack, when set, is asked for every Commit (numbered from 0).
	rollbackNext bool
	rollBack     func(call int) bool
	calls        int
	commits      int
}

func newFakeDurable(c *memCluster, limit int64) *fakeDurable {
	return &fakeDurable{c: c, limit: limit, pos: map[ftp]int64{}}
}

func (f *fakeDurable) changesOrNew() *StateChanges {
	if f.changes == nil {
		f.changes = &StateChanges{GainedInput: map[int32]PartitionState{}, GainedShuffle: map[int32]PartitionState{}}
	}
	return f.changes
}

// load returns a copy of a partition's committed state and its offset.
func (f *fakeDurable) load(t StateTopic, p int32) (PartitionState, int64) {
	st := maps.Clone(f.c.state[t][p])
	if st == nil {
		st = PartitionState{}
	}
	var at int64
	if v, ok := st[KeyOffset]; ok {
		at, _ = strconv.ParseInt(string(v), 10, 64)
		delete(st, KeyOffset)
	}
	return st, at
}

// assign makes the instance own exactly these partitions, as a rebalance
// would: lost ones are dropped, gained ones restored.
func (f *fakeDurable) assign(input, shuffle []int32) {
	ch := f.changesOrNew()
	want := map[ftp]bool{}
	for _, p := range input {
		want[ftp{"in", p}] = true
	}
	for _, q := range shuffle {
		want[ftp{"rp", q}] = true
	}
	for t := range f.pos {
		if !want[t] {
			delete(f.pos, t)
			if t.topic == "in" {
				ch.LostInput = append(ch.LostInput, t.p)
			} else {
				ch.LostShuffle = append(ch.LostShuffle, t.p)
			}
		}
	}
	for t := range want {
		if _, ok := f.pos[t]; ok {
			continue
		}
		if t.topic == "in" {
			st, at := f.load(InputState, t.p)
			ch.GainedInput[t.p], f.pos[t] = st, at
		} else {
			st, at := f.load(WindowState, t.p)
			ch.GainedShuffle[t.p], f.pos[t] = st, at
		}
	}
}

func (f *fakeDurable) ShufflePartitions() int32 { return f.c.shuffle }

func (f *fakeDurable) Plan(ctx context.Context) (Plan, error) {
	if err := ctx.Err(); err != nil {
		return Plan{}, err
	}
	plan := Plan{Changes: f.changes}
	f.changes = nil
	from, until := map[int32]int64{}, map[int32]int64{}
	for t, at := range f.pos {
		if t.topic == "rp" {
			if n := int64(len(f.c.repart[t.p])); n > at {
				plan.Ranges = append(plan.Ranges, Range{Topic: "rp", Partition: t.p, From: at, To: n})
			}
			continue
		}
		from[t.p], until[t.p] = at, int64(len(f.c.input[t.p]))
	}
	to := rateLimit(f.limit, from, until)
	for _, p := range slices.Sorted(maps.Keys(to)) {
		if to[p] > from[p] {
			plan.Ranges = append(plan.Ranges, Range{Topic: "in", Partition: p, From: from[p], To: to[p]})
		}
		plan.Lag += until[p] - to[p]
	}
	return plan, nil
}

func (f *fakeDurable) Read(ctx context.Context, p Plan, fn func(*Record)) error {
	for _, r := range p.Ranges {
		src := f.c.input[r.Partition]
		if r.Topic == "rp" {
			src = f.c.repart[r.Partition]
		}
		for i := r.From; i < r.To; i++ {
			rec := src[i]
			fn(&rec)
		}
	}
	return nil
}

func (f *fakeDurable) Begin(context.Context) error {
	if f.inTxn {
		return errors.New("fake: Begin in a transaction")
	}
	f.inTxn, f.txn = true, nil
	return nil
}

func (f *fakeDurable) Write(_ context.Context, recs ...StateRecord) { f.txn = append(f.txn, recs...) }

func (f *fakeDurable) Commit(ctx context.Context, p Plan) error {
	if !f.inTxn {
		return errors.New("fake: Commit without Begin")
	}
	f.inTxn = false
	call := f.calls
	f.calls++
	if f.rollbackNext || (f.rollBack != nil && f.rollBack(call)) {
		f.rollbackNext = false
		f.reload()
		return ErrRolledBack
	}
	next := maps.Clone(f.pos)
	for _, r := range p.Ranges {
		next[ftp{r.Topic, r.Partition}] = r.To
	}
	for t, at := range next {
		st := InputState
		if t.topic == "rp" {
			st = WindowState
		}
		f.txn = append(f.txn, StateRecord{Topic: st, Partition: t.p, Key: []byte(KeyOffset), Value: strconv.AppendInt(nil, at, 10)})
	}
	for _, r := range f.txn {
		switch r.Topic {
		case Repartition:
			f.c.repart[r.Partition] = append(f.c.repart[r.Partition],
				Record{Topic: "rp", Partition: r.Partition, Offset: int64(len(f.c.repart[r.Partition])), Value: r.Value, Repartitioned: true})
		default:
			st := f.c.state[r.Topic][r.Partition]
			if r.Value == nil {
				delete(st, string(r.Key))
			} else {
				st[string(r.Key)] = r.Value
			}
		}
	}
	f.pos = next
	f.txn = nil
	f.commits++
	return nil
}

func (f *fakeDurable) Abort(context.Context, error) error {
	f.inTxn, f.txn = false, nil
	f.reload()
	return nil
}

// reload restores every owned partition, as after a rolled-back batch.
func (f *fakeDurable) reload() {
	ch := &StateChanges{Reset: true, GainedInput: map[int32]PartitionState{}, GainedShuffle: map[int32]PartitionState{}}
	for t := range f.pos {
		if t.topic == "in" {
			ch.GainedInput[t.p], f.pos[t] = f.load(InputState, t.p)
		} else {
			ch.GainedShuffle[t.p], f.pos[t] = f.load(WindowState, t.p)
		}
	}
	f.changes = ch
}
