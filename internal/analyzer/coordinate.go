package analyzer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordstream/cordstream/internal/kafka"
)

// One watermark for the whole query (docs/ARCHITECTURE.md). Spark's driver
// plans every micro-batch for every input partition, and the watermark of
// batch N+1 comes from every record of batch N. Here the instance that owns
// input partition 0, the leader, plays the driver:
//
//   - it plans batch N for every input partition with Spark's rule (the
//     same rateLimit a single instance uses) and publishes the plan to
//     <app>-batches before any other instance may run it;
//   - every other instance runs its share of the plan (the ranges of its
//     own input partitions), and sends the share's partial counts, then a
//     marker per input partition, to the leader through the repartition
//     topic, in one transaction with its input offsets;
//   - the leader owns every shuffle partition, so it runs the query's only
//     window engine: it counts batch N once it has read its own partitions'
//     ranges and every other share of N up to its marker. The engine sees
//     every record of the batch (a partial count carries the latest event
//     time of its records), so its watermark is Spark's, for the group.
//
// A leader that owns every input partition (one instance) reads them all
// itself and writes the plan in the batch's own transaction: no round trip
// through Kafka, the batch is the one a single instance always ran.
//
// Plans are durable: a plan published and not yet counted is run again as
// it is by whoever leads next. An input partition's state keeps the last
// batch whose share of it was committed (keyBatch), so a share is never
// run twice: the new owner of a partition whose share is committed leaves
// it to the marker already written.

// Keys of the coordination records.
const (
	keyPlan  = "plan" // Batches: the latest plan
	keyBatch = "b"    // InputState: the last batch whose share of the partition was committed
)

// batchPlanValue is the plan of a batch, as the leader publishes it.
type batchPlanValue struct {
	Batch  int64       `json:"batch"`
	Leader string      `json:"leader"`
	Ranges []planRange `json:"ranges"` // every input partition, empty ranges included
}

type planRange struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from"`
	To        int64 `json:"to"`
}

func (p *batchPlanValue) rangeOf(part int32) (planRange, bool) {
	if p == nil {
		return planRange{}, false
	}
	for _, r := range p.Ranges {
		if r.Partition == part {
			return r, true
		}
	}
	return planRange{}, false
}

func decodePlan(v []byte) (*batchPlanValue, error) {
	var p batchPlanValue
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("plan record: %w", err)
	}
	if p.Batch < 0 {
		return nil, fmt.Errorf("plan record: batch %d", p.Batch)
	}
	for _, r := range p.Ranges {
		if r.Partition < 0 || r.From < 0 || r.To < r.From {
			return nil, fmt.Errorf("plan record of batch %d: range %+v", p.Batch, r)
		}
	}
	return &p, nil
}

// planTail follows the batches topic: the latest plan committed.
type planTail struct {
	cl    *kgo.Client
	topic string
	log   *slog.Logger

	mu   sync.Mutex
	last *batchPlanValue
	read int64 // the offset after the last record read (control records included)
	err  error
	wake chan struct{} // closed when a plan is read
	stop context.CancelFunc
	done chan struct{}
}

func startPlanTail(kcfg kafka.Config, topic string, log *slog.Logger) (*planTail, error) {
	base, err := kcfg.Options()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base,
		kgo.WithLogger(kafka.NewLogger(log.With("component", "kafka"), nil)),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.RequestRetries(1000),
	)...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &planTail{cl: cl, topic: topic, log: log, wake: make(chan struct{}), stop: cancel, done: make(chan struct{})}
	go t.run(ctx)
	return t, nil
}

func (t *planTail) run(ctx context.Context) {
	defer close(t.done)
	var said time.Time
	for ctx.Err() == nil {
		fs := t.cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) && time.Since(said) > time.Minute {
				t.log.Warn("could not read the batch plans; trying again", "topic", t.topic, "err", err)
				said = time.Now()
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.read = r.Offset + 1
			if r.Attrs.IsControl() || string(r.Key) != keyPlan || r.Value == nil {
				return
			}
			p, err := decodePlan(r.Value)
			if err != nil {
				t.err = &StateError{What: fmt.Sprintf("%s/0@%d", t.topic, r.Offset), Err: err}
				return
			}
			t.setLocked(p)
		})
	}
}

// setLocked takes p as the latest plan, unless a later batch's is known.
func (t *planTail) setLocked(p *batchPlanValue) {
	if t.last != nil && t.last.Batch > p.Batch {
		return
	}
	t.last = p
	close(t.wake)
	t.wake = make(chan struct{})
}

func (t *planTail) set(p *batchPlanValue) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setLocked(p)
}

// latest returns the latest plan read (nil: none) and a channel closed when
// another is read.
func (t *planTail) latest() (*batchPlanValue, <-chan struct{}, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last, t.wake, t.err
}

// caughtUp waits until the tail has read the topic up to its stable end as
// listed now: every plan committed before is known.
func (t *planTail) caughtUp(ctx context.Context, s *KafkaState) error {
	end, err := listOffsets(ctx, s.adm.ListCommittedOffsets, t.topic)
	if err != nil {
		return fmt.Errorf("list the end of %s: %w", t.topic, err)
	}
	for {
		t.mu.Lock()
		read, terr := t.read, t.err
		t.mu.Unlock()
		if terr != nil {
			return terr
		}
		if read >= end[0] {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (t *planTail) close() {
	t.stop()
	t.cl.Close()
	<-t.done
}

// repartReader reads the repartition topic for the leader, outside the
// group: the leader owns every one of its partitions. Its positions are kept
// with the window state (the offset record of each window-state partition).
type repartReader struct {
	cl    *kgo.Client
	topic string
	gen   uint64                  // KafkaState.repGen it was started for
	from  map[int32]int64         // the next offset to deliver, per partition
	held  map[int32][]*kgo.Record // polled, not yet delivered (data records)
	seen  map[int32]int64         // the offset after the last record polled
}

func newRepartReader(kcfg kafka.Config, topic string, from map[int32]int64, gen uint64, log *slog.Logger) (*repartReader, error) {
	base, err := kcfg.Options()
	if err != nil {
		return nil, err
	}
	start := map[int32]kgo.Offset{}
	for q, o := range from {
		start[q] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(append(base,
		kgo.WithLogger(kafka.NewLogger(log.With("component", "kafka"), nil)),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequestRetries(1000),
	)...)
	if err != nil {
		return nil, err
	}
	return &repartReader{cl: cl, topic: topic, gen: gen, from: maps.Clone(from), held: map[int32][]*kgo.Record{}, seen: map[int32]int64{}}, nil
}

func (r *repartReader) close() { r.cl.Close() }

// errReassigned ends a wait for other instances: the group's assignment
// changed meanwhile, the batch is planned again.
var errReassigned = errors.New("the group's assignment changed")

// await reads the repartition topic until, for every input partition of
// want, the marker of batch's share of it is there, and returns the ranges
// of repartition partitions that hold those shares. changed reports a new
// assignment; waiting says, now and then, which shares are missing.
func (r *repartReader) await(ctx context.Context, batch int64, want map[int32]bool, nShuffle int32,
	changed func() bool, waiting func(missing []int32, d time.Duration)) ([]Range, error) {
	began := time.Now()
	said := began.Add(-7 * time.Second) // the first time after 3 s, then every 10 s
	for {
		found := map[int32]int64{} // input partition -> offset of its marker
		for q, recs := range r.held {
			for _, rec := range recs {
				if string(rec.Key) != keyMarker {
					continue
				}
				m, err := decodeMarker(rec.Value)
				if err != nil {
					return nil, &StateError{What: fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset), Err: err}
				}
				switch {
				case m.Batch > batch:
					return nil, &StateError{What: fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset),
						Err: fmt.Errorf("a share of batch %d while batch %d is counted", m.Batch, batch)}
				case m.Batch == batch && want[m.Partition] && m.Partition%nShuffle == q:
					found[m.Partition] = rec.Offset
				}
			}
		}
		if len(found) == len(want) {
			to := map[int32]int64{}
			for p, off := range found {
				q := p % nShuffle
				to[q] = max(to[q], off+1)
			}
			// Past the transaction markers that follow (so that the
			// positions, and the lag Kafka's tooling shows, reach the end),
			// unless a data record of a later batch is there.
			for q, seen := range r.seen {
				later := false
				for _, rec := range r.held[q] {
					if rec.Offset >= max(to[q], r.from[q]) {
						later = true
						break
					}
				}
				if !later && seen > max(to[q], r.from[q]) {
					to[q] = seen
				}
			}
			var out []Range
			for _, q := range slices.Sorted(maps.Keys(to)) {
				if to[q] > r.from[q] {
					out = append(out, Range{Topic: r.topic, Partition: q, From: r.from[q], To: to[q]})
				}
			}
			return out, nil
		}
		if changed() {
			return nil, errReassigned
		}
		if now := time.Now(); now.Sub(said) >= 10*time.Second {
			var missing []int32
			for p := range want {
				if _, ok := found[p]; !ok {
					missing = append(missing, p)
				}
			}
			slices.Sort(missing)
			waiting(missing, now.Sub(began))
			said = now
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := r.cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := pollErrors(fs); err != nil {
			return nil, err
		}
		fs.EachRecord(func(rec *kgo.Record) {
			r.seen[rec.Partition] = rec.Offset + 1
			if !rec.Attrs.IsControl() && rec.Offset >= r.from[rec.Partition] {
				r.held[rec.Partition] = append(r.held[rec.Partition], rec)
			}
		})
	}
}

// deliver calls fn for the held records of range rg.
func (r *repartReader) deliver(rg Range, fn func(*Record)) {
	var rec Record
	for _, k := range r.held[rg.Partition] {
		if k.Offset < rg.From || k.Offset >= rg.To {
			continue
		}
		rec = Record{Topic: k.Topic, Partition: k.Partition, Offset: k.Offset, Timestamp: k.Timestamp, Key: k.Key, Value: k.Value, Repartitioned: true}
		fn(&rec)
	}
}

// committed drops what the committed batch read.
func (r *repartReader) committed(next map[int32]int64) {
	for q, o := range next {
		r.from[q] = o
		recs := r.held[q]
		i := 0
		for i < len(recs) && recs[i].Offset < o {
			i++
		}
		r.held[q] = recs[i:]
	}
}

// seek makes the next read of owned input partition t start at from: the
// plan, which every instance follows, says so (a partition without state
// starts where the leader decided). A partition revoked meanwhile is left
// alone (its batch is rolled back).
func (s *KafkaState) seek(t tp, from int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, owned := s.pos[t]; !owned || at == from {
		return
	}
	s.log.Info("the batch plan moves the partition's reading position", "partition", t.p, "from", s.pos[t], "to", from)
	s.pos[t] = from
	s.rr.forget(t)
	s.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{t.topic: {t.p: {Epoch: -1, Offset: from}}})
}

// planLead plans batch next as the leader: the plan published and not
// counted yet, or a new one for every input partition; the ranges of owned
// partitions whose share is not committed are read here, the others are
// awaited (their markers) on the repartition topic.
func (s *KafkaState) planLead(ctx context.Context, plan Plan, pos map[tp]int64, mapped map[int32]int64, next int64, inputEnds map[int32]int64) (Plan, error) {
	plan.Role, plan.Batch = RoleLead, next
	if err := s.tail.caughtUp(ctx, s); err != nil {
		return Plan{}, err
	}
	last, _, err := s.tail.latest()
	if err != nil {
		return Plan{}, err
	}
	var ranges []planRange
	pending := false
	switch {
	case last != nil && last.Batch == next:
		ranges, pending = last.Ranges, true
	case last != nil && last.Batch > next:
		return Plan{}, &StateError{What: s.names[Batches], Err: fmt.Errorf("holds the plan of batch %d, but the window state is at batch %d", last.Batch, next)}
	default:
		from, until := map[int32]int64{}, map[int32]int64{}
		var group map[int32]int64
		for p, end := range inputEnds {
			f, ok := pos[tp{s.cfg.Topic, p}]
			if !ok {
				var r planRange
				if r, ok = last.rangeOf(p); ok {
					f = r.To
				}
			}
			if !ok {
				if group == nil {
					if group, err = s.groupOffsets(ctx); err != nil {
						return Plan{}, err
					}
				}
				if f, ok = group[p]; !ok {
					if f, err = s.startOf(ctx, p, end, last != nil); err != nil {
						return Plan{}, err
					}
				}
			}
			from[p], until[p] = f, max(end, f)
		}
		to := rateLimit(s.bound.limit(s.cfg.MaxRecordsPerBatch), from, until)
		for _, p := range slices.Sorted(maps.Keys(to)) {
			ranges = append(ranges, planRange{Partition: p, From: from[p], To: to[p]})
		}
	}
	for _, r := range ranges {
		lag := max(inputEnds[r.Partition]-r.To, 0)
		plan.Lag += lag
		plan.Behind = append(plan.Behind, PartitionLag{Topic: s.cfg.Topic, Partition: r.Partition, Lag: lag})
	}
	want := map[int32]bool{}
	s.planned = 0
	for _, r := range ranges {
		if r.To <= r.From {
			continue
		}
		t := tp{s.cfg.Topic, r.Partition}
		if _, own := pos[t]; own && mappedOf(mapped, r.Partition) < next {
			s.seek(t, r.From)
			plan.Ranges = append(plan.Ranges, Range{Topic: s.cfg.Topic, Partition: r.Partition, From: r.From, To: r.To})
			s.planned += r.To - r.From
			continue
		}
		want[r.Partition] = true
	}
	if !pending {
		v, err := json.Marshal(batchPlanValue{Batch: next, Leader: s.cfg.InstanceID, Ranges: ranges})
		if err != nil {
			return Plan{}, err
		}
		if len(want) == 0 {
			plan.publish = v // with the batch itself
		} else {
			ok, err := s.publishPlan(ctx, v, pos)
			if err != nil {
				return Plan{}, err
			}
			if !ok {
				return Plan{Changes: plan.Changes, Again: true}, nil
			}
			p, _ := decodePlan(v)
			s.tail.set(p)
			s.log.Debug("published the plan of a batch", "batch", next, "shares_of_others", len(want))
		}
	}
	if len(want) > 0 {
		rr, err := s.repartitionReader()
		if err != nil {
			return Plan{}, err
		}
		s.waitingFor.Store(next + 1)
		began := time.Now()
		got, err := rr.await(ctx, next, want, s.cfg.Shuffle, s.reassigned, func(missing []int32, d time.Duration) {
			s.log.Info("waiting for other instances to run their share of the batch", "batch", next, "input_partitions", fmt.Sprint(missing), "for", d.Round(time.Second))
		})
		s.waitingFor.Store(0)
		switch {
		case errors.Is(err, errReassigned):
			return Plan{Changes: plan.Changes, Again: true}, nil
		case err != nil:
			return Plan{}, err
		}
		plan.Ranges = append(plan.Ranges, got...)
		plan.Waited = time.Since(began)
	}
	return plan, nil
}

// reassigned reports whether the group's assignment changed since the
// last plan took the changes.
func (s *KafkaState) reassigned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changes != nil || s.loadErr != nil
}

// repartitionReader returns the leader's reader of the repartition topic,
// started again from the committed positions when they were reset.
func (s *KafkaState) repartitionReader() (*repartReader, error) {
	s.mu.Lock()
	gen := s.repGen
	from := map[int32]int64{}
	for t, o := range s.pos {
		if s.isRepartition(t.topic) {
			from[t.p] = o
		}
	}
	s.mu.Unlock()
	if s.rep != nil && s.rep.gen == gen {
		return s.rep, nil
	}
	if s.rep != nil {
		s.rep.close()
		s.rep = nil
	}
	r, err := newRepartReader(s.kcfg, s.names[Repartition], from, gen, s.log)
	if err != nil {
		return nil, err
	}
	s.rep = r
	return r, nil
}

// groupOffsets returns the group's committed offsets of the input topic.
func (s *KafkaState) groupOffsets(ctx context.Context) (map[int32]int64, error) {
	resp, err := s.adm.FetchOffsets(ctx, s.cfg.Group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("fetch the group's committed offsets: %w", err)
	}
	out := map[int32]int64{}
	for p, o := range resp[s.cfg.Topic] {
		if o.Err == nil && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out, nil
}

// startOf is where a partition no batch has read yet starts: at its start
// with --starting-offsets earliest or once the query has run (a partition
// added later), else at its end.
func (s *KafkaState) startOf(ctx context.Context, p int32, end int64, ran bool) (int64, error) {
	if s.cfg.StartingOffsets != StartEarliest && !ran {
		return end, nil
	}
	starts, err := listOffsets(ctx, s.adm.ListStartOffsets, s.cfg.Topic)
	if err != nil {
		return 0, fmt.Errorf("list start offsets: %w", err)
	}
	return starts[p], nil
}

// publishPlan commits the plan of a batch in a transaction of its own,
// with the group offsets of the partitions owned, unchanged: a leader that
// lost its partitions without noticing cannot publish (the group refuses
// its generation). It returns false when the group rebalanced meanwhile.
func (s *KafkaState) publishPlan(ctx context.Context, v []byte, pos map[tp]int64) (bool, error) {
	if err := s.Begin(ctx); err != nil {
		return false, err
	}
	s.Write(ctx, StateRecord{Topic: Batches, Partition: 0, Key: []byte(keyPlan), Value: v})
	fctx, cancel := context.WithTimeout(ctx, s.cfg.TransactionTimeout)
	err := s.cl.Flush(fctx)
	cancel()
	if err == nil {
		s.writeMu.Lock()
		err = s.writeErr
		s.writeMu.Unlock()
	}
	if err != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		s.sess.End(actx, kgo.TryAbort)
		cancel()
		s.inTxn = false
		return false, fmt.Errorf("publish the plan of a batch: %w", err)
	}
	ectx, cancel := context.WithTimeout(s.offsetsContext(ctx, pos), s.cfg.SessionTimeout+s.cfg.TransactionTimeout)
	committed, err := s.sess.End(ectx, kgo.TryCommit)
	cancel()
	s.inTxn = false
	if err != nil {
		return false, s.endErr(err)
	}
	return committed, nil
}

// offsetsContext returns ctx with the group offsets a transaction commits
// set to exactly next: every input partition owned, and with the leader's
// every repartition partition (so that Kafka's tooling shows the lag of
// both; the repartition offsets are read back from the window state).
func (s *KafkaState) offsetsContext(ctx context.Context, next map[tp]int64) context.Context {
	return kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		ids := map[string][16]byte{}
		for _, t := range req.Topics {
			ids[t.Topic] = t.TopicID
		}
		req.Topics = req.Topics[:0]
		byTopic := map[string][]int32{}
		for t := range next {
			byTopic[t.topic] = append(byTopic[t.topic], t.p)
		}
		for _, topic := range slices.Sorted(maps.Keys(byTopic)) {
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = topic, ids[topic]
			for _, p := range slices.Sorted(slices.Values(byTopic[topic])) {
				rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = p, next[tp{topic, p}], -1
				rp.Metadata = &req.MemberID
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return nil
	})
}

// planShare plans this instance's share of the latest published batch: the
// ranges of its owned input partitions whose share is not committed yet.
// Without one, it waits for the next plan (available-now: until its
// partitions are read to the end; processing time: until the next trigger).
func (s *KafkaState) planShare(ctx context.Context, plan Plan, inputEnds map[int32]int64) (Plan, error) {
	plan.Role = RoleMap
	deadline := nextTrigger(time.Now(), s.cfg.trigger())
	for {
		last, wake, err := s.tail.latest()
		if err != nil {
			return Plan{}, err
		}
		// The partitions owned and the changes that made them so, taken
		// together: a partition gained since this plan took the changes is
		// planned only after they are applied (its de-duplication state
		// comes with them).
		s.mu.Lock()
		gained := s.changes != nil || s.loadErr != nil
		pos := maps.Clone(s.pos)
		mapped := maps.Clone(s.mapped)
		s.mu.Unlock()
		if gained {
			plan.Again = true
			return plan, nil
		}
		if last != nil {
			for _, r := range last.Ranges {
				t := tp{s.cfg.Topic, r.Partition}
				if _, own := pos[t]; !own || r.To <= r.From || mappedOf(mapped, r.Partition) >= last.Batch {
					continue
				}
				s.seek(t, r.From)
				plan.Ranges = append(plan.Ranges, Range{Topic: s.cfg.Topic, Partition: r.Partition, From: r.From, To: r.To})
			}
			if len(plan.Ranges) > 0 {
				plan.Batch = last.Batch
				return plan, nil
			}
		}
		if plan.Changes != nil {
			plan.Again = true // applied, then planned again
			return plan, nil
		}
		if s.cfg.AvailableNow {
			done := true
			for t, o := range pos {
				if t.topic == s.cfg.Topic && o < inputEnds[t.p] {
					done = false
				}
			}
			if done {
				return plan, nil // nothing left here: the instance stops
			}
		} else if !time.Now().Before(deadline) {
			return plan, nil
		}
		s.waitingFor.Store(-1)
		select {
		case <-ctx.Done():
			s.waitingFor.Store(0)
			return Plan{}, ctx.Err()
		case <-wake:
		case <-time.After(100 * time.Millisecond):
		}
		s.waitingFor.Store(0)
	}
}

// mappedOf returns the last batch whose share of input partition p was
// committed (-1: none known).
func mappedOf(mapped map[int32]int64, p int32) int64 {
	if b, ok := mapped[p]; ok {
		return b
	}
	return -1
}

// parseBatch reads an input partition's keyBatch record (-1 without one).
func parseBatch(st PartitionState, what string) (int64, error) {
	v, ok := st[keyBatch]
	if !ok {
		return -1, nil
	}
	delete(st, keyBatch)
	b, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || b < 0 {
		return 0, &StateError{What: what, Err: fmt.Errorf("batch record %q is malformed", v)}
	}
	return b, nil
}

// nextBatchOf returns the id of the next batch from the progress records of
// window-state partitions (0 without any).
func nextBatchOf(states map[int32]PartitionState) (int64, error) {
	var next int64
	for q, st := range states {
		v, ok := st[keyProgress]
		if !ok {
			continue
		}
		var pv progressValue
		if err := json.Unmarshal(v, &pv); err != nil {
			return 0, &StateError{What: fmt.Sprintf("shuffle partition %d", q), Err: fmt.Errorf("progress record: %w", err)}
		}
		next = max(next, pv.NextBatchID)
	}
	return next, nil
}
