package analyzer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordstream/cordstream/internal/kafka"
)

// Where partitions without a committed offset start.
const (
	StartLatest   = "latest"
	StartEarliest = "earliest"
)

// KafkaSourceConfig says what a KafkaSource reads.
type KafkaSourceConfig struct {
	Topic string
	// Group is the consumer group: it is assigned the topic's partitions and
	// holds the committed offsets that Kafka's tooling shows lag against.
	Group string
	// StartingOffsets (StartLatest or StartEarliest) applies to partitions
	// the group has no committed offset for.
	StartingOffsets string
	// AvailableNow fixes the end of the input to the partitions' end offsets
	// when the first batch is planned.
	AvailableNow bool
	// MaxRecordsPerBatch caps the offsets a batch reads (0: no cap), spread
	// over partitions as Spark's maxOffsetsPerTrigger is.
	MaxRecordsPerBatch int64
}

// Validate checks the settings.
func (c KafkaSourceConfig) Validate() error {
	var errs []error
	if err := kafka.ValidTopicName(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("topic: %w", err))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("group: empty; give a consumer group name, e.g. cordstream-analyze"))
	}
	if c.StartingOffsets != StartLatest && c.StartingOffsets != StartEarliest {
		errs = append(errs, fmt.Errorf("starting-offsets %q: use latest or earliest", c.StartingOffsets))
	}
	if c.MaxRecordsPerBatch < 0 {
		errs = append(errs, fmt.Errorf("max-records-per-batch %d: must not be negative (0 means no cap)", c.MaxRecordsPerBatch))
	}
	return errors.Join(errs...)
}

// KafkaSource reads a topic as a member of a consumer group, batch by batch.
// Each plan is a set of offset ranges fixed from the partitions' high
// watermarks (as Spark's Kafka source plans from the latest offsets), so
// batch boundaries do not depend on how fetches happen to arrive. Offsets
// are committed to the group after each batch.
//
// Starting positions are decided when partitions are assigned: the group's
// committed offset (moved to the log start, with a warning, when retention
// deleted records before they were read), else the latest or earliest offset
// as configured; partitions added to the topic while the query runs are read
// from their start.
// Transaction markers are skipped but count as offsets, as in Spark.
type KafkaSource struct {
	cfg KafkaSourceConfig
	log *slog.Logger
	cl  *kgo.Client
	adm *kadm.Client

	ready        chan struct{} // closed once cl and adm are set
	assigned     chan struct{} // closed at the first assignment
	assignedOnce sync.Once

	mu        sync.Mutex
	pos       map[int32]int64 // owned partitions: next offset to read
	committed map[int32]int64 // owned partitions: offset committed to the group, -1 if none
	started   bool            // a batch was committed
	rr        rangeReader     // guarded by mu where it says so

	ends    map[int32]int64 // available-now: the end offsets of the input
	closeMu sync.Once

	trouble fetchTrouble // the errors of its polls
	reach   *reachWatch
}

var _ Source = (*KafkaSource)(nil)

// NewKafkaSource connects to Kafka and joins the group. The topic must exist.
// Close it when done.
func NewKafkaSource(ctx context.Context, kcfg kafka.Config, cfg KafkaSourceConfig, log *slog.Logger) (*KafkaSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &KafkaSource{
		cfg:       cfg,
		log:       log.With("component", "kafka-source", "topic", cfg.Topic, "group", cfg.Group),
		ready:     make(chan struct{}),
		assigned:  make(chan struct{}),
		pos:       map[int32]int64{},
		committed: map[int32]int64{},
		reach:     newReachWatch(),
	}
	s.rr = newRangeReader(&s.mu)
	s.trouble = fetchTrouble{log: s.log}
	cl, err := kafka.NewClient(ctx, kcfg, log,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(fetchMaxWait),
		// Starting positions are set by adjust; this applies only when a
		// position falls out of range while running (retention).
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(s.adjust),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
		kgo.WithHooks(s.reach),
	)
	if err != nil {
		return nil, err
	}
	s.cl = cl
	s.adm = kadm.NewClient(cl)
	close(s.ready)
	return s, nil
}

// Unreachable returns since when no broker has answered (zero when they
// answer), and the last error.
func (s *KafkaSource) Unreachable() (time.Time, error) { return s.reach.Unreachable() }

// Waiting says whether the source waits for its first partitions.
func (s *KafkaSource) Waiting() string {
	select {
	case <-s.assigned:
		return ""
	default:
		return "waiting for the group to assign partitions to this instance"
	}
}

// Close leaves the group and closes the connections. Offsets are committed
// only by Commit, never here.
func (s *KafkaSource) Close() {
	s.closeMu.Do(func() { s.cl.CloseAllowingRebalance() })
}

// adjust runs when partitions are assigned: it fixes their starting offsets.
func (s *KafkaSource) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	parts := offsets[s.cfg.Topic]
	if len(parts) == 0 {
		return offsets, nil
	}
	select { // the group may assign partitions before NewKafkaSource returns
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	starts, err := listOffsets(ctx, s.adm.ListStartOffsets, s.cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := listOffsets(ctx, s.adm.ListEndOffsets, s.cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, o := range parts {
		lo, hi := starts[p], ends[p]
		at := hi
		if s.cfg.StartingOffsets == StartEarliest || s.started {
			// A partition without a commit that appears once the query runs
			// is new: read from its start, as Spark does with partitions
			// added to a topic.
			at = lo
		}
		committed := int64(-1)
		if c := o.EpochOffset().Offset; c >= 0 {
			committed = c
			switch {
			case c < lo:
				s.log.Warn("committed offset is before the start of the partition: records were deleted (retention) before they were read; resuming at the start",
					"partition", p, "committed", c, "log_start", lo, "lost", lo-c)
				at = lo
			case c > hi:
				s.log.Warn("committed offset is past the end of the partition (was the topic recreated?); starting as for a new group",
					"partition", p, "committed", c, "end", hi, "starting_offsets", s.cfg.StartingOffsets)
			default:
				at = c
			}
		}
		parts[p] = kgo.NewOffset().At(at)
		s.pos[p] = at
		s.committed[p] = committed
		s.rr.forget(tp{s.cfg.Topic, p})
		s.log.Info("partition assigned", "partition", p, "start_offset", at, "committed", committed, "end_offset", hi)
	}
	s.assignedOnce.Do(func() { close(s.assigned) })
	return offsets, nil
}

// revoked forgets partitions taken away by a rebalance or lost.
func (s *KafkaSource) revoked(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range lost[s.cfg.Topic] {
		delete(s.pos, p)
		delete(s.committed, p)
		s.rr.forget(tp{s.cfg.Topic, p})
		s.log.Info("partition revoked", "partition", p)
	}
	s.rr.interrupt()
}

// listOffsets returns one offset per partition of topic.
func listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string) (map[int32]int64, error) {
	listed, err := list(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := listed.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic && o.Partition >= 0 {
			out[o.Partition] = o.Offset
		}
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %s not found", topic)
	}
	return out, nil
}

// Plan implements Source.
func (s *KafkaSource) Plan(ctx context.Context) (Plan, error) {
	s.rr.allowRebalance(s.cl)
	if err := waitAssigned(ctx, s.assigned, s.log, "still waiting for the group to assign partitions (another member of the group may own them all)", nil); err != nil {
		return Plan{}, err
	}
	var ends map[int32]int64
	if s.cfg.AvailableNow && s.ends != nil {
		ends = s.ends
	} else {
		var err error
		if ends, err = listOffsets(ctx, s.adm.ListEndOffsets, s.cfg.Topic); err != nil {
			return Plan{}, fmt.Errorf("list end offsets of %s: %w", s.cfg.Topic, err)
		}
		if s.cfg.AvailableNow {
			s.ends = ends
			s.log.Info("input fixed for available-now", "end_offsets", fmt.Sprint(ends))
		}
	}
	s.mu.Lock()
	from := maps.Clone(s.pos)
	s.mu.Unlock()
	until := make(map[int32]int64, len(from))
	for p, f := range from {
		until[p] = f
		if e, ok := ends[p]; ok {
			until[p] = e
		}
	}
	to := rateLimit(s.cfg.MaxRecordsPerBatch, from, until)
	var plan Plan
	for _, p := range slices.Sorted(maps.Keys(to)) {
		if to[p] > from[p] {
			plan.Ranges = append(plan.Ranges, Range{Topic: s.cfg.Topic, Partition: p, From: from[p], To: to[p]})
		}
		lag := max(until[p]-to[p], 0)
		plan.Lag += lag
		plan.Behind = append(plan.Behind, PartitionLag{Topic: s.cfg.Topic, Partition: p, Lag: lag})
	}
	return plan, nil
}

// Read implements Source.
func (s *KafkaSource) Read(ctx context.Context, plan Plan, fn func(*Record)) error {
	return s.rr.read(ctx, plan, readHooks{
		cl:  s.cl,
		log: s.log,
		owned: func(t tp) bool {
			_, ok := s.pos[t.p]
			return ok && t.topic == s.cfg.Topic
		},
		revoked:     "partition revoked while its batch was being read; the new owner reads it again",
		fetchErrors: s.trouble.check,
	}, fn)
}

// Commit implements Source: it commits the end of every range of plan, and
// the starting positions of partitions that have no committed offset yet (so
// that a restart with latest does not skip what arrived in between).
func (s *KafkaSource) Commit(ctx context.Context, plan Plan) error {
	s.mu.Lock()
	for _, r := range plan.Ranges {
		if _, owned := s.pos[r.Partition]; owned {
			s.pos[r.Partition] = r.To
		}
	}
	offsets := map[int32]kgo.EpochOffset{}
	for p, at := range s.pos {
		if s.committed[p] != at {
			offsets[p] = kgo.EpochOffset{Epoch: -1, Offset: at}
		}
	}
	s.mu.Unlock()
	if len(offsets) > 0 {
		var cerr error
		s.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{s.cfg.Topic: offsets},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err != nil {
					cerr = err
					return
				}
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
							cerr = fmt.Errorf("partition %d: %w", p.Partition, err)
						}
					}
				}
			})
		switch {
		case errors.Is(cerr, kerr.RebalanceInProgress), errors.Is(cerr, kerr.IllegalGeneration),
			errors.Is(cerr, kerr.UnknownMemberID), errors.Is(cerr, kerr.FencedInstanceID):
			// The partitions moved to another member, which reads them again
			// from the last commit (at-least-once).
			s.log.Warn("offsets not committed: the group rebalanced; the batch will be read again by the partitions' new owner", "err", cerr)
		case cerr != nil:
			return fmt.Errorf("commit offsets of group %s: %w", s.cfg.Group, cerr)
		}
		if cerr == nil {
			s.mu.Lock()
			for p, o := range offsets {
				if _, owned := s.pos[p]; owned {
					s.committed[p] = o.Offset
				}
			}
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	s.rr.allowRebalance(s.cl)
	return nil
}
