package analyzer

// Restoring KafkaState's partitions: what happens when the group assigns
// or revokes them, reading their state back from the state topics, and
// reloading it after a rollback.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
)

// adjust runs when partitions are assigned: it reads their state back and
// says where each starts.
func (s *KafkaState) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var gained []tp
	for topic, parts := range offsets {
		for p := range parts {
			gained = append(gained, tp{topic, p})
		}
	}
	if len(gained) == 0 {
		return offsets, nil
	}
	committed := map[tp]int64{}
	for _, t := range gained {
		committed[t] = offsets[t.topic][t.p].EpochOffset().Offset
	}
	if slices.Contains(gained, tp{s.cfg.Topic, 0}) {
		// The leader: every shuffle partition comes with input partition 0.
		for q := range s.cfg.Shuffle {
			t := tp{s.names[Repartition], q}
			gained = append(gained, t)
			committed[t] = -1
		}
	}
	loaded, pos, err := s.loadPartitions(ctx, gained, committed)
	var co coordState
	if err == nil {
		co, err = s.coordStateOf(loaded, gained)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.loadErr = err
			s.assignedOnce.Do(func() { close(s.assigned) })
		}
		return offsets, nil
	}
	ch := s.changesLocked()
	s.assigns++
	s.applyCoordState(co)
	for _, t := range gained {
		s.assignedAt[t] = s.assigns
		if !s.isRepartition(t.topic) {
			offsets[t.topic][t.p] = kgo.NewOffset().At(pos[t])
		}
		s.pos[t] = pos[t]
		s.rr.forget(t)
		if s.isRepartition(t.topic) {
			ch.GainedShuffle[t.p] = loaded[t]
			ch.LostShuffle = slices.DeleteFunc(ch.LostShuffle, func(p int32) bool { return p == t.p })
		} else {
			ch.GainedInput[t.p] = loaded[t]
			ch.LostInput = slices.DeleteFunc(ch.LostInput, func(p int32) bool { return p == t.p })
		}
		s.log.Info("partition assigned; state restored", "topic", t.topic, "partition", t.p, "start_offset", pos[t], "state_keys", len(loaded[t]))
	}
	s.assignedOnce.Do(func() { close(s.assigned) })
	return offsets, nil
}

func (s *KafkaState) changesLocked() *StateChanges {
	if s.changes == nil {
		s.changes = &StateChanges{GainedInput: map[int32]PartitionState{}, GainedShuffle: map[int32]PartitionState{}}
	}
	return s.changes
}

// revoked forgets partitions taken away by a rebalance or lost.
func (s *KafkaState) revoked(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.changesLocked()
	for topic, parts := range lost {
		for _, p := range parts {
			t := tp{topic, p}
			delete(s.pos, t)
			delete(s.assignedAt, t)
			delete(s.mapped, p)
			s.rr.forget(t)
			delete(ch.GainedInput, p)
			ch.LostInput = append(ch.LostInput, p)
			s.log.Info("partition revoked", "topic", topic, "partition", p)
			if p != 0 || topic != s.cfg.Topic {
				continue
			}
			// No longer the leader: the shuffle partitions go with it.
			for q := range s.cfg.Shuffle {
				t := tp{s.names[Repartition], q}
				if _, ok := s.pos[t]; ok {
					delete(s.pos, t)
					delete(s.assignedAt, t)
					delete(ch.GainedShuffle, q)
					ch.LostShuffle = append(ch.LostShuffle, q)
				}
			}
			s.leader = false
			s.repGen++
			s.log.Info("this instance no longer leads the query (input partition 0 was revoked)")
		}
	}
	s.rr.interrupt()
}

// coordState is what a load says of the coordination: the last batch
// whose share of each loaded input partition was committed, and, when the
// shuffle partitions were loaded (the leader), the next batch's id.
type coordState struct {
	mapped    map[int32]int64
	leads     bool
	nextBatch int64
}

func (s *KafkaState) coordStateOf(loaded map[tp]PartitionState, parts []tp) (coordState, error) {
	co := coordState{mapped: map[int32]int64{}}
	shuffle := map[int32]PartitionState{}
	for _, t := range parts {
		if s.isRepartition(t.topic) {
			shuffle[t.p] = loaded[t]
			continue
		}
		b, err := parseBatch(loaded[t], fmt.Sprintf("input partition %d", t.p))
		if err != nil {
			return co, err
		}
		co.mapped[t.p] = b
	}
	if len(shuffle) > 0 {
		co.leads = true
		next, err := nextBatchOf(shuffle)
		if err != nil {
			return co, err
		}
		co.nextBatch = next
	}
	return co, nil
}

// applyCoordState takes what a load said. mu held.
func (s *KafkaState) applyCoordState(co coordState) {
	maps.Copy(s.mapped, co.mapped)
	if co.leads {
		if !s.leader {
			s.log.Info("this instance leads the query: it plans the batches of every input partition and counts them (it owns input partition 0)")
		}
		s.leader, s.nextBatch = true, co.nextBatch
		s.repGen++
	}
}

// loadPartitions reads the committed state of partitions (of the input or
// repartition topic) from the state topics and decides where each resumes:
// at the offset kept with its state; without one (a new query, or state
// lost), at the group's committed offset, else where StartingOffsets says
// (input) or at the start (repartition).
func (s *KafkaState) loadPartitions(ctx context.Context, parts []tp, committed map[tp]int64) (map[tp]PartitionState, map[tp]int64, error) {
	if s.restoring.Add(1) == 1 {
		s.restoreSince.Store(time.Now().UnixNano())
	}
	defer s.restoring.Add(-1)
	want := map[string][]int32{}
	for _, t := range parts {
		st := s.names[s.stateTopicOf(t.topic)]
		want[st] = append(want[st], t.p)
	}
	states, err := readStateTopics(ctx, s.kcfg, s.adm, want, s.log)
	if err != nil {
		return nil, nil, err
	}
	starts, err := listOffsets(ctx, s.adm.ListStartOffsets, s.cfg.Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := listOffsets(ctx, s.adm.ListEndOffsets, s.cfg.Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	loaded := map[tp]PartitionState{}
	pos := map[tp]int64{}
	for _, t := range parts {
		st := states[tp{s.names[s.stateTopicOf(t.topic)], t.p}]
		if st == nil {
			st = PartitionState{}
		}
		at, fromState := int64(0), false
		if v, ok := st[KeyOffset]; ok {
			o, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || o < 0 {
				return nil, nil, &StateError{What: fmt.Sprintf("%s/%d", t.topic, t.p), Err: fmt.Errorf("offset record %q is malformed", v)}
			}
			at, fromState = o, true
			delete(st, KeyOffset)
		}
		c := committed[t]
		if s.isRepartition(t.topic) {
			if !fromState && c >= 0 {
				at = c
			}
			pos[t], loaded[t] = at, st
			continue
		}
		lo, hi := starts[t.p], ends[t.p]
		switch {
		case fromState && c >= 0 && c != at:
			s.log.Warn("the group's committed offset differs from the one kept with the state; resuming where the state was saved (it is consistent with the counts)",
				"partition", t.p, "state_offset", at, "group_offset", c)
		case !fromState && c >= 0:
			at = c
			if len(st) > 0 {
				s.log.Warn("state without an input offset; resuming at the group's committed offset", "partition", t.p, "offset", c)
			}
		case !fromState:
			at = hi
			if s.cfg.StartingOffsets == StartEarliest || started {
				at = lo
			}
		}
		switch {
		case at < lo:
			s.log.Warn("the resume offset is before the start of the partition: records were deleted (retention) before they were read; resuming at the start",
				"partition", t.p, "offset", at, "log_start", lo, "lost", lo-at)
			at = lo
		case at > hi:
			return nil, nil, &StateError{What: fmt.Sprintf("input partition %d", t.p),
				Err: fmt.Errorf("resume offset %d is past the end of the partition (%d): was the input topic recreated?", at, hi)}
		}
		pos[t], loaded[t] = at, st
	}
	return loaded, pos, nil
}

// waitAssigned waits for the group's first assignment, failing with the
// error of a state load that failed meanwhile.
func (s *KafkaState) waitAssigned(ctx context.Context) error {
	s.mu.Lock()
	assigned := s.assigned
	s.mu.Unlock()
	return waitAssigned(ctx, assigned, s.log, "still waiting for the group to assign partitions (other instances may own them all, or a dead instance's session has not expired yet)", func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.loadErr
	})
}

// reload reads back the committed state of every owned partition and resets
// the reading positions to it, after a rolled-back batch. The next plan
// carries it with Reset set.
func (s *KafkaState) reload(ctx context.Context) error {
	s.mu.Lock()
	owned := slices.Collect(maps.Keys(s.pos))
	assigns := s.assigns
	s.mu.Unlock()
	committed := map[tp]int64{}
	for topic, parts := range s.cl.CommittedOffsets() {
		for p, o := range parts {
			committed[tp{topic, p}] = o.Offset
		}
	}
	for _, t := range owned {
		if _, ok := committed[t]; !ok {
			committed[t] = -1
		}
	}
	loaded, pos, err := s.loadPartitions(ctx, owned, committed)
	var co coordState
	if err == nil {
		co, err = s.coordStateOf(loaded, owned)
	}
	if err != nil {
		return fmt.Errorf("reload the state after a rolled-back batch: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if co.leads && !s.leader {
		co.leads = false // revoked meanwhile
	}
	for p := range co.mapped {
		if _, still := s.pos[tp{s.cfg.Topic, p}]; !still || s.assignedAt[tp{s.cfg.Topic, p}] > assigns {
			delete(co.mapped, p)
		}
	}
	s.applyCoordState(co)
	ch := &StateChanges{Reset: true, GainedInput: map[int32]PartitionState{}, GainedShuffle: map[int32]PartitionState{}}
	set := map[string]map[int32]kgo.EpochOffset{}
	for _, t := range owned {
		if _, still := s.pos[t]; !still || s.assignedAt[t] > assigns {
			continue // revoked meanwhile (and maybe assigned again: its state is in s.changes)
		}
		s.pos[t] = pos[t]
		s.rr.forget(t)
		if s.isRepartition(t.topic) {
			ch.GainedShuffle[t.p] = loaded[t]
			continue // not read through the group
		} else {
			ch.GainedInput[t.p] = loaded[t]
		}
		if set[t.topic] == nil {
			set[t.topic] = map[int32]kgo.EpochOffset{}
		}
		set[t.topic][t.p] = kgo.EpochOffset{Epoch: -1, Offset: pos[t]}
	}
	reloaded := len(ch.GainedInput) + len(ch.GainedShuffle)
	s.changes = keepGained(ch, s.changes, s.pos, s.cfg.Topic, s.names[Repartition])
	if kept := len(ch.GainedInput) + len(ch.GainedShuffle) - reloaded; kept > 0 {
		s.log.Info("state reloaded after the rollback; partitions assigned meanwhile keep the state restored when they were assigned", "partitions", kept)
	}
	s.cl.SetOffsets(set)
	return nil
}

// keepGained returns reset, the changes of a reload, plus the partitions
// that prev (the changes not planned yet) gained while the reload read the
// state back: a rebalance can assign partitions meanwhile, and their state,
// loaded when they were assigned, is only in prev. Without them the reset
// would rebuild the engine without those partitions' state while they are
// read: counts restarted from zero, duplicates counted again. owned holds
// the partitions still owned, of the topics input and repartition.
func keepGained(reset, prev *StateChanges, owned map[tp]int64, input, repartition string) *StateChanges {
	if prev == nil {
		return reset
	}
	for p, st := range prev.GainedInput {
		if _, loaded := reset.GainedInput[p]; !loaded {
			if _, ok := owned[tp{input, p}]; ok {
				reset.GainedInput[p] = st
			}
		}
	}
	for p, st := range prev.GainedShuffle {
		if _, loaded := reset.GainedShuffle[p]; !loaded {
			if _, ok := owned[tp{repartition, p}]; ok {
				reset.GainedShuffle[p] = st
			}
		}
	}
	return reset
}

// readStateTopics reads partitions of compacted state topics from their
// start to their end, read-committed, after every transaction that was open
// on them when it began has ended. It returns the latest value of every key.
func readStateTopics(ctx context.Context, kcfg kafka.Config, adm *kadm.Client, want map[string][]int32, log *slog.Logger) (map[tp]PartitionState, error) {
	out := map[tp]PartitionState{}
	topics := slices.Sorted(maps.Keys(want))
	wanted := map[tp]bool{}
	for topic, parts := range want {
		for _, p := range parts {
			wanted[tp{topic, p}] = true
			out[tp{topic, p}] = PartitionState{}
		}
	}
	list := func(f func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[tp]int64, error) {
		l, err := f(ctx, topics...)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			return nil, err
		}
		m := map[tp]int64{}
		l.Each(func(o kadm.ListedOffset) { m[tp{o.Topic, o.Partition}] = o.Offset })
		return m, nil
	}
	hw, err := list(adm.ListEndOffsets)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of the state topics: %w", err)
	}
	// A transaction still open (a batch of an instance that died) hides
	// everything after it; wait until every one open now has ended.
	began, warned := time.Now(), false
	sayHung := began.Add(hungAfter)
	for {
		lso, err := list(adm.ListCommittedOffsets)
		if err != nil {
			return nil, fmt.Errorf("list stable offsets of the state topics: %w", err)
		}
		var open []tp
		for t := range wanted {
			if lso[t] < hw[t] {
				open = append(open, t)
			}
		}
		if len(open) == 0 {
			break
		}
		if !warned && time.Since(began) > 3*time.Second {
			log.Warn("waiting for transactions left open on the state topics to end (an instance died mid-batch; the broker aborts its transaction after the transaction timeout)",
				"partitions", len(open))
			warned = true
		}
		// Far longer than a transaction timeout: the transaction may be hung
		// on the broker (its end never reached these partitions).
		if now := time.Now(); now.After(sayHung) {
			held := make([]string, len(open))
			for i, t := range open {
				held[i] = fmt.Sprintf("%s/%d@%d", t.topic, t.p, lso[t])
			}
			slices.Sort(held)
			log.Warn("transactions on the state topics are still open: the broker has not ended them, and this instance cannot restore these partitions until it does (see \"When Kafka is unreachable\" in docs/OPERATIONS.md)",
				"for", now.Sub(began).Round(time.Second), "partitions", strings.Join(held, " "))
			sayHung = now.Add(idleSayEvery)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	starts, err := list(adm.ListStartOffsets)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of the state topics: %w", err)
	}
	consume := map[string]map[int32]kgo.Offset{}
	left := map[tp]int64{} // partitions to read: their end
	for t := range wanted {
		if starts[t] < hw[t] {
			if consume[t.topic] == nil {
				consume[t.topic] = map[int32]kgo.Offset{}
			}
			consume[t.topic][t.p] = kgo.NewOffset().At(starts[t])
			left[t] = hw[t]
		}
	}
	if len(left) == 0 {
		return out, nil
	}
	base, err := kcfg.Options()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base,
		kgo.WithLogger(kafka.NewLogger(log.With("component", "kafka"), nil)),
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	idle := 0
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		got := false
		if err := pollErrors(fs); err != nil {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			t := tp{r.Topic, r.Partition}
			end, ok := left[t]
			if !ok || r.Offset >= end {
				return
			}
			got = true
			if !r.Attrs.IsControl() {
				if r.Value == nil {
					delete(out[t], string(r.Key))
				} else {
					out[t][string(r.Key)] = r.Value
				}
			}
			if r.Offset >= end-1 {
				delete(left, t)
			}
		})
		if got {
			idle = 0
			continue
		}
		// Nothing more arrives: what is left was compacted away.
		if idle++; idle >= 3 {
			break
		}
	}
	return out, nil
}
