package analyzer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordstream/cordstream/internal/kafka"
)

// Defaults of a durable query's group membership and transactions.
const (
	// DefaultSessionTimeout is how long the group waits for a silent
	// instance (killed, or cut off) before giving its partitions to the
	// others.
	DefaultSessionTimeout = 10 * time.Second
	// DefaultTransactionTimeout is how long the broker lets a transaction
	// stay open: after an instance died mid-batch, its partitions can be
	// taken over by another instance once this has passed (an instance
	// restarted with the same instance id takes over at once). Short, so
	// that a failover (the session timeout, then this) stays under the
	// seed's 1 minute watermark delay; batches are bounded to fit in it
	// (batchBound).
	DefaultTransactionTimeout = 15 * time.Second
	// OutageTolerance is how long a durable query keeps retrying a request
	// while Kafka is unreachable before it gives up with an error (and
	// exits: its next start resumes from the last committed batch).
	OutageTolerance = 2 * time.Minute
)

// StateTopicNames returns the internal topics of the query named appID:
// input state, window state and repartition.
func StateTopicNames(appID string) map[StateTopic]string {
	return map[StateTopic]string{
		InputState:  appID + "-input-state",
		WindowState: appID + "-window-state",
		Repartition: appID + "-repartition",
		Batches:     appID + "-batches",
	}
}

// TransactionalID returns the transactional id of an instance of the query.
func TransactionalID(appID, instanceID string) string { return appID + "-" + instanceID }

// Configs of the internal topics. The state topics are compacted (the latest
// value of each key is the state); the repartition topic keeps records until
// the owner of their partition has committed them (then they are deleted).
var (
	stateTopicConfigs = map[string]string{
		"cleanup.policy":            "compact",
		"segment.ms":                "600000",
		"min.cleanable.dirty.ratio": "0.1",
	}
	repartitionTopicConfigs = map[string]string{
		"cleanup.policy": "delete",
		"retention.ms":   "-1",
	}
)

// EnsureStateTopics creates the internal topics of appID that are missing,
// for an input topic of inputParts partitions (the shuffle partitions are as
// many as the input had when the query first ran), grows the input state
// topic when the input grew, and returns the number of shuffle partitions.
func EnsureStateTopics(ctx context.Context, cl *kgo.Client, appID string, inputParts int32, replicas int16, log *slog.Logger) (int32, error) {
	names := StateTopicNames(appID)
	for _, t := range []StateTopic{InputState, WindowState, Repartition, Batches} {
		if err := kafka.ValidTopicName(names[t]); err != nil {
			return 0, fmt.Errorf("application id %q: %w", appID, err)
		}
	}
	parts := func(name string) (int32, error) {
		info, err := kafka.DescribeTopic(ctx, cl, name)
		var nf *kafka.TopicNotFoundError
		if errors.As(err, &nf) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return int32(len(info.Partitions)), nil
	}
	create := func(name string, n int32, configs map[string]string) error {
		created, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{Name: name, Partitions: n, ReplicationFactor: replicas, Configs: configs})
		if created {
			log.Info("created internal topic", "topic", name, "partitions", n)
		}
		return err
	}

	shuffle, err := parts(names[WindowState])
	if err != nil {
		return 0, err
	}
	if shuffle == 0 {
		shuffle = inputParts
		if err := create(names[WindowState], shuffle, stateTopicConfigs); err != nil {
			return 0, err
		}
	}
	rp, err := parts(names[Repartition])
	if err != nil {
		return 0, err
	}
	if rp == 0 {
		if err := create(names[Repartition], shuffle, repartitionTopicConfigs); err != nil {
			return 0, err
		}
	} else if rp != shuffle {
		return 0, &StateError{What: "the internal topics", Err: fmt.Errorf("%s has %d partitions and %s %d: they must be equal",
			names[Repartition], rp, names[WindowState], shuffle)}
	}
	bp, err := parts(names[Batches])
	if err != nil {
		return 0, err
	}
	if bp == 0 {
		if err := create(names[Batches], 1, stateTopicConfigs); err != nil {
			return 0, err
		}
	}
	in, err := parts(names[InputState])
	if err != nil {
		return 0, err
	}
	switch {
	case in == 0:
		if err := create(names[InputState], inputParts, stateTopicConfigs); err != nil {
			return 0, err
		}
	case in < inputParts:
		resp, err := kadm.NewClient(cl).CreatePartitions(ctx, int(inputParts-in), names[InputState])
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return 0, fmt.Errorf("grow %s to the input's %d partitions: %w", names[InputState], inputParts, err)
		}
		log.Info("grew the input state topic with the input topic", "topic", names[InputState], "partitions", inputParts)
	}
	return shuffle, nil
}

// KafkaStateConfig says what a KafkaState reads and where it keeps state.
type KafkaStateConfig struct {
	KafkaSourceConfig
	// ApplicationID names the internal topics and prefixes the
	// transactional id.
	ApplicationID string
	// InstanceID identifies this instance among those of the query (and
	// across its restarts): it is the group's static member id and the
	// suffix of the transactional id. Two live instances must not share it.
	InstanceID string
	// Shuffle is the number of shuffle partitions (EnsureStateTopics).
	Shuffle int32
	// SessionTimeout and TransactionTimeout: DefaultSessionTimeout and
	// DefaultTransactionTimeout when zero.
	SessionTimeout, TransactionTimeout time.Duration
	// Trigger is the processing-time trigger's interval (5 s when zero):
	// how long an instance waits for the leader's next plan before its
	// trigger finds nothing to do.
	Trigger time.Duration
}

func (c KafkaStateConfig) trigger() time.Duration {
	if c.Trigger <= 0 {
		return 5 * time.Second
	}
	return c.Trigger
}

// Validate checks the settings.
func (c KafkaStateConfig) Validate() error {
	errs := []error{c.KafkaSourceConfig.Validate()}
	if c.ApplicationID == "" {
		errs = append(errs, errors.New("application id: empty"))
	} else {
		for _, n := range StateTopicNames(c.ApplicationID) {
			if err := kafka.ValidTopicName(n); err != nil {
				errs = append(errs, fmt.Errorf("application id %q: %w", c.ApplicationID, err))
				break
			}
		}
	}
	if err := kafka.ValidTopicName(c.InstanceID); err != nil {
		errs = append(errs, fmt.Errorf("instance id %q: use letters, digits, '.', '_' and '-' (1-249 of them)", c.InstanceID))
	}
	if c.Shuffle < 1 {
		errs = append(errs, fmt.Errorf("shuffle partitions %d: must be positive", c.Shuffle))
	}
	if c.SessionTimeout < 0 || c.TransactionTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	return errors.Join(errs...)
}

// tp is a topic partition.
type tp struct {
	topic string
	p     int32
}

// KafkaState is a Durable reading the input topic and the repartition topic
// as a member of a consumer group, in Kafka transactions: each batch's
// state records, outputs and dead letters, and the input and shuffle
// offsets it consumed (committed to the group and to the state topics) are
// committed in one transaction, or not at all. A rebalance during a batch
// rolls it back.
//
// When partitions are assigned, their state is read back from the state
// topics (waiting for transactions still open on them to end) before the
// partitions are read; the offsets kept with the state say where reading
// resumes.
type KafkaState struct {
	cfg   KafkaStateConfig
	kcfg  kafka.Config
	log   *slog.Logger
	sess  *kgo.GroupTransactSession
	cl    *kgo.Client
	adm   *kadm.Client
	names map[StateTopic]string

	opts  []kgo.Opt
	txnID string

	mu           sync.Mutex // also guards ready, assigned and assignedOnce
	ready        chan struct{}
	assigned     chan struct{}
	assignedOnce *sync.Once

	pos     map[tp]int64  // owned partitions of both topics: next offset to read
	rr      rangeReader   // guarded by mu where it says so
	changes *StateChanges // since the last plan
	// assigns counts the assignments adjust has handled, assignedAt says
	// which one last gave a partition: a reload leaves alone a partition
	// assigned while it read the state back.
	assigns    uint64
	assignedAt map[tp]uint64
	loadErr    error // a failed load while partitions were assigned
	started    bool

	ends map[int32]int64 // available-now: the input's end offsets

	// Coordination of the instances (coordinate.go). leader: this
	// instance owns input partition 0, and with it every shuffle partition
	// (their positions on the repartition topic are in pos). mapped: the
	// last batch whose share of each owned input partition is committed.
	// nextBatch: the leader's next batch id. repGen changes whenever the
	// repartition positions are reset (rep is then started again).
	leader         bool
	mapped         map[int32]int64
	nextBatch      int64
	repGen         uint64
	tail           *planTail
	rep            *repartReader
	waitingFor     atomic.Int64 // batch+1 whose shares the leader awaits; -1: waiting for a plan
	idle           idleWatch    // Plan's: how long no partition was owned
	lastPurge      time.Time
	lastTransient  time.Time
	transientSince time.Time
	inTxn          bool
	began          time.Time  // when the batch's transaction began
	planned        int64      // input offsets of the last plan
	bound          batchBound // what a batch may read to fit its transaction
	reach          *reachWatch
	restoring      atomic.Int32 // state loads in progress
	restoreSince   atomic.Int64 // when the first of them began (Unix ns)
	writeMu        sync.Mutex
	writeErr       error
	closeMu        sync.Once
}

var _ Durable = (*KafkaState)(nil)

// NewKafkaState joins the group and prepares the transactional producer.
// The input topic and the internal topics must exist (EnsureStateTopics).
// Close it when done.
func NewKafkaState(ctx context.Context, kcfg kafka.Config, cfg KafkaStateConfig, log *slog.Logger) (*KafkaState, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.TransactionTimeout == 0 {
		cfg.TransactionTimeout = DefaultTransactionTimeout
	}
	names := StateTopicNames(cfg.ApplicationID)
	s := &KafkaState{
		cfg:        cfg,
		kcfg:       kcfg,
		log:        log.With("component", "kafka-state", "topic", cfg.Topic, "group", cfg.Group, "instance", cfg.InstanceID),
		names:      names,
		pos:        map[tp]int64{},
		assignedAt: map[tp]uint64{},
		mapped:     map[int32]int64{},
		txnID:      TransactionalID(cfg.ApplicationID, cfg.InstanceID),
		bound:      newBatchBound(cfg.TransactionTimeout),
		reach:      newReachWatch(),
	}
	s.rr = newRangeReader(&s.mu)
	base, err := kcfg.Options()
	if err != nil {
		return nil, err
	}
	s.opts = append(base,
		kgo.WithLogger(unstableLogger(log.With("component", "kafka"), &unstableWatch{now: time.Now})),
		kgo.ConsumerGroup(cfg.Group),
		kgo.InstanceID(cfg.InstanceID),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(s.adjust),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
		kgo.TransactionalID(s.txnID),
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		// A broker that restarts or is unreachable for a while stalls the
		// batch instead of failing it: requests are retried for up to
		// OutageTolerance (group membership keeps its own timeouts: an
		// instance cut off longer than the session timeout loses its
		// partitions and rolls its batch back).
		kgo.RequestRetries(1000),
		kgo.RetryTimeoutFn(func(key int16) time.Duration {
			switch kmsg.Key(key) {
			case kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat:
				return cfg.SessionTimeout
			}
			return OutageTolerance
		}),
		kgo.RecordDeliveryTimeout(OutageTolerance),
		kgo.RecordPartitioner(internalPartitioner{internal: map[string]bool{names[InputState]: true, names[WindowState]: true, names[Repartition]: true, names[Batches]: true}}),
		kgo.WithHooks(s.reach),
	)
	tail, err := startPlanTail(kcfg, names[Batches], s.log)
	if err != nil {
		return nil, err
	}
	s.tail = tail
	if err := s.open(ctx); err != nil {
		tail.close()
		return nil, err
	}
	return s, nil
}

// open creates the transactional group client. Initialising the producer
// id fences an earlier process with the same transactional id and aborts
// the transaction it left open.
func (s *KafkaState) open(ctx context.Context) error {
	s.mu.Lock()
	s.ready = make(chan struct{})
	s.assigned = make(chan struct{})
	s.assignedOnce = &sync.Once{}
	s.mu.Unlock()
	sess, err := kgo.NewGroupTransactSession(s.opts...)
	if err != nil {
		return fmt.Errorf("create the transactional Kafka client: %w", err)
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, _, err := sess.Client().ProducerID(ictx); err != nil {
		sess.Close()
		return &TransactionsError{TxnID: s.txnID, Err: err}
	}
	s.mu.Lock()
	s.sess, s.cl, s.adm = sess, sess.Client(), kadm.NewClient(sess.Client())
	close(s.ready)
	s.mu.Unlock()
	return nil
}

// TransactionsError says the broker did not start transactions for us.
type TransactionsError struct {
	TxnID string
	Err   error
}

func (e *TransactionsError) Error() string {
	return fmt.Sprintf("start Kafka transactions (transactional id %s): %v", e.TxnID, e.Err)
}
func (e *TransactionsError) Unwrap() error { return e.Err }

// Hint says what to check.
func (e *TransactionsError) Hint() string {
	if errors.Is(e.Err, kerr.InvalidTransactionTimeout) {
		return "--transaction-timeout is longer than the broker allows (its transaction.max.timeout.ms, 15m by default): lower it, or raise the broker's setting"
	}
	return "durable state needs Kafka transactions: the broker's transaction.state.log.replication.factor and " +
		"transaction.state.log.min.isr must not exceed its number of brokers, and a SASL user needs the " +
		"TransactionalId ACLs; or run with --state none (state is then lost on restart)"
}

// ShufflePartitions implements Durable.
func (s *KafkaState) ShufflePartitions() int32 { return s.cfg.Shuffle }

// Client returns the transactional client: outputs and dead letters that
// produce with it while a batch runs are part of the batch's transaction.
func (s *KafkaState) Client() *kgo.Client { return s.cl }

// Close leaves the group. A transaction still open is aborted by the broker.
func (s *KafkaState) Close() {
	s.closeMu.Do(func() {
		if s.inTxn {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.sess.End(ctx, kgo.TryAbort)
			cancel()
		}
		s.sess.CloseAllowingRebalance()
		s.tail.close()
		if s.rep != nil {
			s.rep.close()
		}
	})
}

func (s *KafkaState) isRepartition(topic string) bool { return topic == s.names[Repartition] }

// stateTopicOf is the state topic holding a partition's state and offset.
func (s *KafkaState) stateTopicOf(topic string) StateTopic {
	if s.isRepartition(topic) {
		return WindowState
	}
	return InputState
}

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

// waitAssigned waits for the group to assign partitions for the first time.
func (s *KafkaState) waitAssigned(ctx context.Context) error {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	s.mu.Lock()
	assigned := s.assigned
	s.mu.Unlock()
	for {
		select {
		case <-assigned:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			s.mu.Lock()
			err := s.loadErr
			s.mu.Unlock()
			if err != nil {
				return err
			}
			s.log.Warn("still waiting for the group to assign partitions (other instances may own them all, or a dead instance's session has not expired yet)")
		}
	}
}

// Plan implements Source. Its Changes carry the partitions gained (with
// their state) and lost since the previous plan. The leader plans the batch
// for every input partition and waits for the other instances' shares of
// it; another instance plans its share of the latest plan (coordinate.go).
func (s *KafkaState) Plan(ctx context.Context) (Plan, error) {
	s.rr.allowRebalance(s.cl)
	if err := s.waitAssigned(ctx); err != nil {
		return Plan{}, err
	}
	inputEnds, err := listOffsets(ctx, s.adm.ListCommittedOffsets, s.cfg.Topic)
	if err != nil {
		return Plan{}, fmt.Errorf("list end offsets of %s: %w", s.cfg.Topic, err)
	}
	if s.cfg.AvailableNow {
		if s.ends == nil {
			s.ends = inputEnds
			s.log.Info("input fixed for available-now", "end_offsets", fmt.Sprint(inputEnds))
		}
		inputEnds = s.ends
	}

	s.mu.Lock()
	if err := s.loadErr; err != nil {
		s.mu.Unlock()
		return Plan{}, err
	}
	ch := s.changes
	s.changes = nil
	pos := maps.Clone(s.pos)
	mapped := maps.Clone(s.mapped)
	leader, next := s.leader, s.nextBatch
	s.mu.Unlock()
	if d, say := s.idle.note(time.Now(), len(pos) == 0); say {
		s.log.Info("this instance owns no partition: the group gave them all to other instances of the query, or has not assigned them again since Kafka was unreachable (if no other instance runs, see \"When Kafka is unreachable\" in docs/OPERATIONS.md)", "for", d.Round(time.Second))
	}
	plan := Plan{Changes: ch}
	if leader {
		plan, err = s.planLead(ctx, plan, pos, mapped, next, inputEnds)
	} else {
		plan, err = s.planShare(ctx, plan, inputEnds)
	}
	if err != nil {
		return Plan{}, err
	}
	slices.SortFunc(plan.Ranges, func(a, b Range) int {
		if a.Topic != b.Topic {
			if a.Topic == s.cfg.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return plan, nil
}

// Unreachable returns since when no broker has answered the state's
// client (zero when they answer), and the last error.
func (s *KafkaState) Unreachable() (time.Time, error) { return s.reach.Unreachable() }

// Waiting says why no batch can run now that is not a stall: state being
// restored, or the group not having assigned partitions yet.
func (s *KafkaState) Waiting() string {
	if s.restoring.Load() > 0 {
		return fmt.Sprintf("restoring state from the state topics (for %v)",
			time.Since(time.Unix(0, s.restoreSince.Load())).Round(time.Second))
	}
	switch w := s.waitingFor.Load(); {
	case w > 0:
		return fmt.Sprintf("waiting for the other instances' shares of batch %d", w-1)
	case w < 0:
		return "waiting for the leader's next batch plan"
	}
	s.mu.Lock()
	assigned := s.assigned
	s.mu.Unlock()
	select {
	case <-assigned:
		return ""
	default:
		return "waiting for the group to assign partitions to this instance"
	}
}

// Begin implements Durable.
func (s *KafkaState) Begin(ctx context.Context) error {
	if err := s.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	s.transientSince = time.Time{}
	s.inTxn = true
	s.began = time.Now()
	s.writeMu.Lock()
	s.writeErr = nil
	s.writeMu.Unlock()
	return nil
}

// Write implements Durable.
func (s *KafkaState) Write(ctx context.Context, recs ...StateRecord) {
	for _, r := range recs {
		rec := &kgo.Record{Topic: s.names[r.Topic], Partition: r.Partition, Key: r.Key, Value: r.Value}
		s.cl.Produce(ctx, rec, s.produced)
	}
}

func (s *KafkaState) produced(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.writeErr == nil {
		s.writeErr = fmt.Errorf("write %s/%d: %w", r.Topic, r.Partition, err)
	}
}

// Read implements Source. Records of the repartition topic have
// Repartitioned set.
func (s *KafkaState) Read(ctx context.Context, plan Plan, fn func(*Record)) error {
	// The other instances' shares (the leader's): read while the plan
	// awaited them.
	input := plan
	input.Ranges = nil
	for _, r := range plan.Ranges {
		if !s.isRepartition(r.Topic) {
			input.Ranges = append(input.Ranges, r)
		} else if s.rep != nil {
			s.rep.deliver(r, fn)
		} else {
			return fmt.Errorf("read %s/%d: the repartition topic is not being read", r.Topic, r.Partition)
		}
	}
	return s.rr.read(ctx, input, readHooks{
		cl:  s.cl,
		log: s.log,
		owned: func(t tp) bool {
			_, ok := s.pos[t]
			return ok
		},
		revoked:     "partition revoked while its batch was being read; the batch will be rolled back",
		fetchErrors: s.fetchErrors,
		repartition: s.isRepartition,
	}, fn)
}

func (s *KafkaState) fetchErrors(fetches kgo.Fetches, need map[tp]Range) error {
	var errs []error
	transient := false
	fetches.EachError(func(topic string, p int32, err error) {
		var loss *kgo.ErrDataLoss
		switch {
		case errors.As(err, &loss):
			s.log.Warn("records lost before they were read", "topic", topic, "partition", p, "consumed_to", loss.ConsumedTo, "reset_to", loss.ResetTo)
			if r, ok := need[tp{topic, p}]; ok && loss.ResetTo >= r.To {
				delete(need, tp{topic, p})
			}
		case topic == "":
			// The client's own trouble (the group session cannot be joined
			// while Kafka is unreachable): it keeps trying; a partition
			// lost meanwhile is revoked, which ends its read.
			transient = true
			if s.transientSince.IsZero() {
				s.transientSince = time.Now()
			} else if time.Since(s.transientSince) > OutageTolerance {
				errs = append(errs, fmt.Errorf("Kafka unreachable for %v: %w", OutageTolerance, err))
			}
			if time.Since(s.lastTransient) > 5*time.Second {
				s.lastTransient = time.Now()
				s.log.Warn("Kafka unreachable while reading; waiting", "err", err)
			}
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, kgo.ErrClientClosed):
			errs = append(errs, errors.New("kafka client closed"))
		default:
			errs = append(errs, fmt.Errorf("fetch %s/%d: %w", topic, p, err))
		}
	})
	if transient && len(errs) == 0 && fetches.NumRecords() == 0 {
		time.Sleep(200 * time.Millisecond) // no busy loop while the client recovers
	}
	return errors.Join(errs...)
}

// Commit implements Source: it records the next offset of every owned
// partition with its state, commits the same offsets to the group, and
// commits the transaction. It returns ErrRolledBack when the transaction had
// to be rolled back (the group rebalanced); the next plan then reloads
// every owned partition.
func (s *KafkaState) Commit(ctx context.Context, plan Plan) error {
	if !s.inTxn {
		return errors.New("commit without a transaction")
	}
	s.mu.Lock()
	next := maps.Clone(s.pos)
	s.mu.Unlock()
	for _, r := range plan.Ranges {
		if _, owned := next[tp{r.Topic, r.Partition}]; owned {
			next[tp{r.Topic, r.Partition}] = r.To
		} else if plan.Role != RoleAlone {
			// A batch of a plan that every instance follows commits all
			// its ranges or nothing: the next plan starts where this one
			// ends (revoked after planning, before the transaction began,
			// the group session cannot tell).
			return s.rollBack(ctx, fmt.Errorf("%s/%d was revoked while its batch ran", r.Topic, r.Partition))
		}
	}
	for t, o := range next {
		s.Write(ctx, StateRecord{Topic: s.stateTopicOf(t.topic), Partition: t.p, Key: []byte(KeyOffset), Value: strconv.AppendInt(nil, o, 10)})
	}
	// The shares of the batch committed here (coordinate.go).
	shares := map[int32]bool{}
	if plan.Role != RoleAlone {
		for _, r := range plan.Ranges {
			if r.Topic == s.cfg.Topic {
				shares[r.Partition] = true
				s.Write(ctx, StateRecord{Topic: InputState, Partition: r.Partition, Key: []byte(keyBatch), Value: strconv.AppendInt(nil, plan.Batch, 10)})
			}
		}
	}
	if plan.publish != nil {
		s.Write(ctx, StateRecord{Topic: Batches, Partition: 0, Key: []byte(keyPlan), Value: plan.publish})
	}
	// The broker aborts a transaction open longer than its timeout: a
	// flush that takes longer (Kafka unreachable) cannot commit anyway.
	fctx, cancel := context.WithTimeout(ctx, s.cfg.TransactionTimeout+10*time.Second)
	err := s.cl.Flush(fctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return s.abortWith(ctx, fmt.Errorf("write the batch: %w", err))
		}
		return s.rollBack(ctx, fmt.Errorf("write the batch: %w", err))
	}
	s.writeMu.Lock()
	werr := s.writeErr
	s.writeMu.Unlock()
	if werr != nil {
		if refusedForGood(werr) {
			// Running the batch again would write the same records.
			return s.abortWith(ctx, &WriteRefusedError{Err: werr})
		}
		return s.rollBack(ctx, werr)
	}
	// The group's offsets for exactly this batch, for every input partition
	// owned (so that an instance that lost its partitions without noticing
	// cannot commit: the group refuses its generation).
	octx := s.offsetsContext(ctx, next)
	// Bounded: while the group session is lost (Kafka was unreachable for
	// longer than the session timeout), ending waits for a heartbeat that
	// cannot happen before the next plan lets the group rejoin.
	ectx, cancel := context.WithTimeout(octx, s.cfg.SessionTimeout+s.cfg.TransactionTimeout)
	committed, err := s.sess.End(ectx, kgo.TryCommit)
	cancel()
	s.inTxn = false
	took := time.Since(s.began)
	if err != nil {
		if took >= s.cfg.TransactionTimeout && epochError(err) {
			// Not another instance taking over: the broker aborted the
			// transaction for time (its coordinator bumped the epoch).
			return s.abortedForTime(ctx, took, err)
		}
		// The outcome is unknown (Kafka unreachable for too long): the
		// next start restores whatever was committed.
		return s.endErr(err)
	}
	if !committed {
		s.log.Warn("batch rolled back: the group rebalanced during the batch; its input will be read again")
		if err := s.reload(ctx); err != nil {
			return err
		}
		return ErrRolledBack
	}
	s.mu.Lock()
	for t, o := range next {
		if _, owned := s.pos[t]; owned {
			s.pos[t] = o
		}
	}
	for p := range shares {
		if _, owned := s.pos[tp{s.cfg.Topic, p}]; owned {
			s.mapped[p] = plan.Batch
		}
	}
	if plan.Role == RoleLead {
		s.nextBatch = plan.Batch + 1
	}
	s.started = true
	s.mu.Unlock()
	if plan.publish != nil {
		if p, err := decodePlan(plan.publish); err == nil {
			s.tail.set(p)
		}
	}
	if s.rep != nil {
		rp := map[int32]int64{}
		for t, o := range next {
			if s.isRepartition(t.topic) {
				rp[t.p] = o
			}
		}
		s.rep.committed(rp)
	}
	s.bound.committed(s.planned, took)
	s.purge(ctx, next)
	return nil
}

// idleWatch tells, plan after plan, how long an instance has owned no
// partition, so that an instance left without work says so instead of
// idling in silence.
type idleWatch struct{ since, said time.Time }

// idleSayEvery is how often an instance that owns no partition says so.
const idleSayEvery = time.Minute

// hungAfter is how long a transaction may keep state partitions from being
// restored before the wait is reported as a transaction the broker has not
// ended (far longer than a transaction timeout of the default 15 s).
var hungAfter = 2 * time.Minute // a variable for tests

// note records whether the instance owns no partition at now; it returns
// how long that has lasted when it is time to say so (idleSayEvery after it
// began, then every idleSayEvery).
func (w *idleWatch) note(now time.Time, none bool) (time.Duration, bool) {
	switch {
	case !none:
		*w = idleWatch{}
		return 0, false
	case w.since.IsZero():
		w.since, w.said = now, now
		return 0, false
	case now.Sub(w.said) < idleSayEvery:
		return 0, false
	}
	w.said = now
	return now.Sub(w.since), true
}

// purgeEvery is how often the repartition records already counted are
// deleted.
const purgeEvery = 30 * time.Second

// purge deletes, now and then, the records of the owned repartition
// partitions that committed batches have counted: the topic keeps them
// until then (retention.ms=-1), not longer.
func (s *KafkaState) purge(ctx context.Context, committed map[tp]int64) {
	if time.Since(s.lastPurge) < purgeEvery {
		return
	}
	s.lastPurge = time.Now()
	var os kadm.Offsets
	for t, o := range committed {
		if s.isRepartition(t.topic) && o > 0 {
			os.AddOffset(t.topic, t.p, o, -1)
		}
	}
	if len(os) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := s.adm.DeleteRecords(pctx, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		s.log.Warn("could not delete counted records of the repartition topic; trying again later", "err", err)
	}
}

// refusedForGood reports whether Kafka refused a record for a reason that
// writing it again cannot change.
func refusedForGood(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage,
		kerr.PolicyViolation, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// WriteRefusedError is a batch whose state, results or dead letters Kafka
// refused for good: the query stops rather than retry the same batch.
type WriteRefusedError struct{ Err error }

func (e *WriteRefusedError) Error() string {
	return fmt.Sprintf("Kafka refused a record of the batch: %v; the batch was rolled back", e.Err)
}
func (e *WriteRefusedError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *WriteRefusedError) Hint() string {
	switch {
	case errors.Is(e.Err, kerr.MessageTooLarge), errors.Is(e.Err, kerr.RecordListTooLarge):
		return "a record is larger than the topic accepts (a very long group-by value, or a large bad record sent to the dead-letter topic): raise max.message.bytes of the topic named above, or leave the record out of the input; the batch is read again on the next start"
	case errors.Is(e.Err, kerr.TopicAuthorizationFailed), errors.Is(e.Err, kerr.ClusterAuthorizationFailed), errors.Is(e.Err, kerr.TransactionalIDAuthorizationFailed):
		return "grant the analyzer's Kafka user write access to its state, results and dead-letter topics and its transactional id; the batch is read again on the next start"
	}
	return "the batch is read again on the next start"
}

// endErr explains a failure to end a transaction.
func (s *KafkaState) endErr(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		return &FencedError{InstanceID: s.cfg.InstanceID, Err: err}
	}
	return &EndError{Err: err}
}

// EndError says a batch's transaction could not be ended (Kafka was
// unreachable for too long): whether it committed is unknown; the next
// start restores whatever was committed.
type EndError struct{ Err error }

func (e *EndError) Error() string { return fmt.Sprintf("end the batch's transaction: %v", e.Err) }
func (e *EndError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *EndError) Hint() string {
	return "start the analyzer again once Kafka answers (run it under a supervisor that restarts it): it resumes from the last committed batch; nothing is lost or counted twice"
}

// FencedError says another process took over this instance's transactional
// id: it runs with the same instance id.
type FencedError struct {
	InstanceID string
	Err        error
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("another analyzer runs with instance id %q and took over; this one stops (its last batch was rolled back): %v", e.InstanceID, e.Err)
}
func (e *FencedError) Unwrap() error { return e.Err }

// Hint says what to change.
func (e *FencedError) Hint() string {
	return "give every instance of the query its own --instance-id (it defaults to the host name)"
}

// rollBack aborts the batch after a failure to write it and returns
// ErrRolledBack (a *TxnTimeoutError when the transaction ran out of time),
// or the failure when even the abort fails.
func (s *KafkaState) rollBack(ctx context.Context, cause error) error {
	err := s.Abort(ctx, cause)
	switch {
	case errors.Is(err, ErrRolledBack):
		return err
	case err != nil:
		return errors.Join(cause, err)
	}
	s.log.Warn("rolled the batch back", "err", cause)
	return ErrRolledBack
}

func (s *KafkaState) abortWith(ctx context.Context, cause error) error {
	if err := s.Abort(ctx, cause); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// Abort implements Durable. When the transaction was open longer than the
// transaction timeout and cause (or the abort itself) is Kafka saying the
// producer's transaction was ended, the broker aborted it for time: Abort
// then returns a *TxnTimeoutError and the next plans are smaller.
func (s *KafkaState) Abort(ctx context.Context, cause error) error {
	if !s.inTxn {
		return nil
	}
	took := time.Since(s.began)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	_, err := s.sess.End(actx, kgo.TryAbort)
	s.inTxn = false
	if ctx.Err() == nil && took >= s.cfg.TransactionTimeout && (epochError(cause) || epochError(err)) {
		if cause == nil || !epochError(cause) {
			cause = err
		}
		return s.abortedForTime(actx, took, cause)
	}
	if err != nil {
		return s.endErr(err)
	}
	if ctx.Err() != nil {
		return nil // stopping: the next start restores the state anyway
	}
	return s.reload(actx)
}

// abortedForTime handles a batch whose transaction the broker aborted
// because it stayed open longer than the transaction timeout: the state is
// reloaded as for any rollback, the next batches are planned smaller, and
// the error says so (it wraps ErrRolledBack: the batch runs again).
func (s *KafkaState) abortedForTime(ctx context.Context, took time.Duration, cause error) error {
	te := &TxnTimeoutError{Took: took, Timeout: s.cfg.TransactionTimeout, Offsets: s.planned, Err: cause}
	te.Next = s.bound.abortedForTime(s.planned, took)
	s.log.Warn("the batch ran out of time: "+te.Error(), "hint", te.Hint())
	if err := s.reload(ctx); err != nil {
		return err
	}
	return te
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
		var errs []error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("read %s/%d: %w", topic, p, err))
			}
		})
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
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

// internalPartitioner sends records of the internal topics to the partition
// they name, and hashes the keys of others as Kafka's Java client does.
type internalPartitioner struct {
	internal map[string]bool
}

func (p internalPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.internal[topic] {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

// unstableLogger is the group client's franz-go logger: it also watches
// the offset fetches franz-go retries quietly (at info) while the broker
// holds the offsets for a transaction it has not completed.
func unstableLogger(log *slog.Logger, u *unstableWatch) *kafka.Logger {
	return kafka.NewLogger(log, func(level kgo.LogLevel, _ string, keyvals []any) {
		if level == kgo.LogLevelInfo {
			u.check(log, keyvals)
		}
	})
}

// unstableWatch tells when the group's committed offsets have stayed
// unstable (UNSTABLE_OFFSET_COMMIT) for a while: the broker holds them for a
// transaction it has not completed, and the group's partitions cannot be
// read until it does. franz-go waits for that without limit, as the protocol
// requires, and logs each retry at info only.
type unstableWatch struct {
	mu   sync.Mutex
	now  func() time.Time
	w    idleWatch
	last time.Time
}

// unstableGap is how long without an unstable fetch ends a spell of them.
const unstableGap = 10 * time.Second

// check looks for an UNSTABLE_OFFSET_COMMIT error among a franz-go log
// line's key-values and warns, once the offsets have stayed unstable for
// idleSayEvery, every idleSayEvery.
func (u *unstableWatch) check(log *slog.Logger, keyvals []any) {
	var topic any
	var partition any
	found := false
	for i := 0; i+1 < len(keyvals); i += 2 {
		switch keyvals[i] {
		case "topic":
			topic = keyvals[i+1]
		case "partition":
			partition = keyvals[i+1]
		case "err":
			if err, ok := keyvals[i+1].(error); ok && errors.Is(err, kerr.UnstableOffsetCommit) {
				found = true
			}
		}
	}
	if !found {
		return
	}
	u.mu.Lock()
	now := u.now()
	if !u.last.IsZero() && now.Sub(u.last) > unstableGap {
		u.w.note(now, false)
	}
	u.last = now
	d, say := u.w.note(now, true)
	u.mu.Unlock()
	if say {
		log.Warn("the group's committed offsets stay unstable: the broker holds them for a transaction it has not completed, and this instance cannot read its partitions until it does (see \"When Kafka is unreachable\" in docs/OPERATIONS.md)",
			"for", d.Round(time.Second), "topic", topic, "partition", partition)
	}
}
