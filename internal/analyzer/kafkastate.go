package analyzer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
//
// Its concerns are in files of their own: planning and reading here,
// restoring partitions in kafkastate_restore.go, ending batches in
// kafkastate_commit.go, the watchers in kafkastate_watch.go, the
// coordination of instances in coordinate.go.
//
// # Goroutines and locks
//
// Four kinds of goroutine touch a KafkaState:
//
//   - the analyzer's loop, the only caller of Plan, Read, Begin, Write,
//     Commit and Abort (one at a time, in that order);
//   - franz-go's group callbacks: adjust (when partitions are assigned,
//     before they are fetched) and revoked (revoked or lost), which may run
//     while the loop is inside any of the above;
//   - the producer's promises (produced), one per record written;
//   - readers of its health (Waiting, Unreachable), from the HTTP server.
//
// What guards what:
//
//   - mu guards what the callbacks change and the loop reads: ready,
//     assigned, assignedOnce; pos, assigns, assignedAt, changes, loadErr,
//     started; the coordination's leader, mapped, nextBatch and repGen; and
//     rr's held, paused and wake (rangeReader shares mu). sess, cl and adm are
//     set under mu by open before ready is closed; adjust waits for ready,
//     and everything else reads them without mu.
//   - writeMu guards writeErr: the first error a promise reported in the
//     current transaction.
//   - waitingFor, restoring and restoreSince are atomics: written by the
//     loop and adjust, read by Waiting.
//   - reach has its own lock (reachWatch).
//   - closeMu makes Close run once.
//   - Everything else (ends, idle, tail, rep, inTxn, began, planned, bound,
//     lastPurge, trouble, rr.polled) belongs to the
//     loop alone and needs no lock.
//
// Lock order: mu and writeMu are never held together, and neither is held
// across a call into franz-go that can wait for a callback (a poll, a
// flush, ending a transaction): the callbacks take mu, so holding it there
// would deadlock a rebalance (SetOffsets and pausing or resuming fetches
// do not wait, and are called with mu held). A callback holds mu only while it updates the
// fields above; reading the state back (loadPartitions) happens before it
// takes mu.
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

	mu           sync.Mutex // see "Goroutines and locks" above
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
	leader       bool
	mapped       map[int32]int64
	nextBatch    int64
	repGen       uint64
	tail         *planTail
	rep          *repartReader
	waitingFor   atomic.Int64 // batch+1 whose shares the leader awaits; -1: waiting for a plan
	idle         idleWatch    // Plan's: how long no partition was owned
	lastPurge    time.Time
	trouble      fetchTrouble // the errors of its polls; reset by Begin
	inTxn        bool
	began        time.Time  // when the batch's transaction began
	planned      int64      // input offsets of the last plan
	bound        batchBound // what a batch may read to fit its transaction
	reach        *reachWatch
	restoring    atomic.Int32 // state loads in progress
	restoreSince atomic.Int64 // when the first of them began (Unix ns)
	writeMu      sync.Mutex
	writeErr     error
	closeMu      sync.Once
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
	s.trouble = fetchTrouble{log: s.log, giveUpAfter: OutageTolerance, severalTopics: true}
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
		fetchErrors: s.trouble.check,
		repartition: s.isRepartition,
	}, fn)
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
