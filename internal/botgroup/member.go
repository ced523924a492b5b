package botgroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordstream/cordstream/internal/kafka"
)

// ShardsTopic is the name of a group's coordination topic: one partition
// per shard.
func ShardsTopic(group string) string { return "cordstream-bot." + group + ".shards" }

// ConsumerGroup is the Kafka consumer group of a bot group.
func ConsumerGroup(group string) string { return "cordstream-bot." + group }

// Group timings: Kafka's session timeout is the lease on the coordinator's
// side; a member holds shards only while its last answered group request
// was sent less than the lease ago (see MemberConfig.lease).
const (
	DefaultSessionTimeout    = 10 * time.Second
	DefaultHeartbeatInterval = time.Second
)

// MemberConfig configures a Member.
type MemberConfig struct {
	Kafka kafka.Config
	// Group names the bot group: its coordination topic (ShardsTopic) and
	// consumer group (ConsumerGroup).
	Group string
	// Shards is the group's shard count: the coordination topic's
	// partitions. A topic that exists with another count is refused.
	Shards int
	// Member names this instance (for logs); InstanceID, when set, makes
	// it a static member (a restart under the same id gets its shards back
	// without a rebalance, and closing it does not hand them over before
	// the session timeout).
	Member, InstanceID string
	// SessionTimeout and HeartbeatInterval of the consumer group (defaults
	// DefaultSessionTimeout, DefaultHeartbeatInterval).
	SessionTimeout, HeartbeatInterval time.Duration
	// Start is called with shards this member now holds; it must return
	// quickly (start them in the background). Stop is called with shards it
	// must give up, and must return only once they are stopped: no
	// connection of theirs open to Discord. Neither is called concurrently
	// with the other.
	Start func(shards []int)
	Stop  func(shards []int, why string)
	// ReplicationFactor of the topic if created (-1: the broker's default).
	ReplicationFactor int16
	Log               *slog.Logger
}

// lease is how long after sending its last answered group request a member
// keeps its shards: session timeout - 2 heartbeats - 1 s. The coordinator
// expels a member a session timeout after the last request it received,
// which it received after the member sent it: the member lets go first.
func (c MemberConfig) lease() time.Duration {
	return c.SessionTimeout - 2*c.HeartbeatInterval - time.Second
}

// Member is one instance of a bot group: it takes part in the group's
// consumer group and holds the shards Kafka assigns it, fenced by its lease.
type Member struct {
	cfg MemberConfig
	log *slog.Logger

	mu       sync.Mutex // serialises Start and Stop, guards what follows
	cur      *membership
	held     map[int]bool
	assigned map[int]bool // what the current membership was assigned
	fences   int

	// deaf makes the member ignore the coordinator's answers (tests: a
	// coordinator that stopped answering).
	deaf atomic.Bool
}

// membership is one Kafka client in the group (one member id). Callbacks
// of a membership that ended are ignored: a client being closed may still
// call them.
type membership struct {
	m       *Member
	started time.Time
	// leaseFrom is when its last answered group request was sent (unix
	// nanos); 0 before any.
	leaseFrom atomic.Int64
}

// NewMember checks the config and makes sure the coordination topic exists
// with one partition per shard.
func NewMember(ctx context.Context, cfg MemberConfig) (*Member, error) {
	if cfg.Shards < 1 {
		return nil, fmt.Errorf("botgroup: shard count %d: must be at least 1", cfg.Shards)
	}
	if cfg.Start == nil || cfg.Stop == nil {
		return nil, errors.New("botgroup: MemberConfig.Start and Stop are required")
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.HeartbeatInterval < 0 || cfg.lease()-cfg.HeartbeatInterval < time.Second {
		return nil, fmt.Errorf("botgroup: session timeout %s is too short for heartbeats every %s: "+
			"it must be at least 3 heartbeat intervals plus 2 s, so that a member lets its shards go before the group can move them",
			cfg.SessionTimeout, cfg.HeartbeatInterval)
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	if cfg.Member == "" {
		cfg.Member = "member-" + nonce()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Member{cfg: cfg, log: log.With("component", "botgroup", "group", cfg.Group, "member", cfg.Member),
		held: map[int]bool{}, assigned: map[int]bool{}}
	cl, err := kafka.NewClient(ctx, cfg.Kafka, m.log)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	topic := ShardsTopic(cfg.Group)
	if _, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{Name: topic, Partitions: int32(cfg.Shards),
		ReplicationFactor: cfg.ReplicationFactor, Configs: map[string]string{"cleanup.policy": "compact"}}); err != nil {
		return nil, err
	}
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("botgroup: describe topic %q: %w", topic, err)
	}
	if n := len(td[topic].Partitions); n != cfg.Shards {
		return nil, fmt.Errorf("botgroup: the group %q runs %d shards (topic %q has %d partitions), not %d: "+
			"every instance of a group uses the same shard count; to change it, start a new group", cfg.Group, n, topic, n, cfg.Shards)
	}
	return m, nil
}

// Held returns the shards this member holds now, ascending.
func (m *Member) Held() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.held)
}

// Fences counts the times this member gave its shards up because its
// lease lapsed.
func (m *Member) Fences() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fences
}

// LeaseValid reports whether the member may hold shards now.
func (m *Member) LeaseValid() bool {
	m.mu.Lock()
	cur := m.cur
	m.mu.Unlock()
	return cur != nil && m.leaseValid(cur)
}

func (m *Member) leaseValid(ms *membership) bool {
	from := ms.leaseFrom.Load()
	return from != 0 && time.Since(time.Unix(0, from)) < m.cfg.lease()
}

// Run takes part in the group until ctx ends; then it stops every shard
// and leaves. When its lease lapses (the coordinator unreachable for
// longer than the lease), it stops every shard, drops its membership and
// joins again as a new member once Kafka answers.
func (m *Member) Run(ctx context.Context) error {
	for {
		err := m.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		m.log.Warn("left the bot group; joining again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.cfg.HeartbeatInterval):
		}
	}
}

// errFenced ends a session whose lease lapsed.
var errFenced = errors.New("the lease lapsed: no group heartbeat answered in time")

// session is one membership: one Kafka client, one member id.
func (m *Member) session(ctx context.Context) error {
	topic := ShardsTopic(m.cfg.Group)
	ms := &membership{m: m, started: time.Now()}
	m.mu.Lock()
	m.cur = ms
	m.mu.Unlock()
	opts := []kgo.Opt{
		kgo.ConsumerGroup(ConsumerGroup(m.cfg.Group)),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(m.cfg.SessionTimeout),
		kgo.HeartbeatInterval(m.cfg.HeartbeatInterval),
		// A join that waits longer than the lease would fence this member
		// for nothing: the group waits for slow members less than that.
		kgo.RebalanceTimeout(m.cfg.lease() - m.cfg.HeartbeatInterval),
		kgo.DisableAutoCommit(),
		kgo.WithHooks(leaseHook{ms}),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.assign(ms, a[topic])
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.revoke(ms, r[topic], "revoked by the group")
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.revoke(ms, l[topic], "lost: the group expelled this member")
		}),
	}
	if m.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(m.cfg.InstanceID))
	}
	cl, err := kafka.NewClient(ctx, m.cfg.Kafka, m.log, opts...)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	fenced := make(chan struct{})
	wg.Go(func() {
		if m.watch(sctx, ms) {
			close(fenced)
			cancel()
		}
	})
	wg.Go(func() {
		for sctx.Err() == nil {
			cl.PollFetches(sctx) // records are not used; polling keeps the consumer going
		}
	})
	<-sctx.Done()
	cancel()
	wg.Wait()
	// Stop every shard before the membership ends: after it, the group may
	// give them to another member at once. Later callbacks of this client
	// are ignored.
	m.mu.Lock()
	m.cur = nil
	m.mu.Unlock()
	m.stopAll("leaving the group")
	select {
	case <-fenced:
		// The coordinator may not answer: do not wait for a clean leave.
		go cl.Close()
		m.mu.Lock()
		m.fences++
		m.mu.Unlock()
		return errFenced
	default:
	}
	cl.Close()
	return ctx.Err()
}

// watch checks the lease; it returns true when the lease lapsed while the
// member held shards (or had been given some).
func (m *Member) watch(ctx context.Context, ms *membership) bool {
	t := time.NewTicker(min(m.cfg.HeartbeatInterval/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		ref := ms.started // no answer yet: count from the start
		if from := ms.leaseFrom.Load(); from != 0 {
			ref = time.Unix(0, from)
		}
		if time.Since(ref) >= m.cfg.lease() {
			m.mu.Lock()
			holding := len(m.held) > 0 || len(m.assigned) > 0
			m.mu.Unlock()
			if holding {
				m.mu.Lock()
				if m.cur == ms {
					m.cur = nil // later callbacks of this client are ignored
				}
				m.mu.Unlock()
				m.log.Warn("no group heartbeat answered within the lease: giving up every shard before the group can move them",
					"lease", m.cfg.lease())
				m.stopAll("lease lapsed")
				return true
			}
		}
	}
}

func (m *Member) assign(ms *membership, parts []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur != ms {
		return
	}
	var start []int
	for _, p := range parts {
		m.assigned[int(p)] = true
		if !m.held[int(p)] {
			start = append(start, int(p))
		}
	}
	if len(start) == 0 {
		return
	}
	if !m.leaseValid(ms) {
		// Assigned by a coordinator we cannot hear from any more: wait for
		// the watch to fence.
		m.log.Warn("shards assigned while the lease is not valid; not starting them", "shards", start)
		return
	}
	slices.Sort(start)
	for _, s := range start {
		m.held[s] = true
	}
	m.log.Info("holding shards", "shards", start)
	m.cfg.Start(start)
}

func (m *Member) revoke(ms *membership, parts []int32, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur != ms {
		return // its shards were stopped when it ended
	}
	var stop []int
	for _, p := range parts {
		delete(m.assigned, int(p))
		if m.held[int(p)] {
			stop = append(stop, int(p))
			delete(m.held, int(p))
		}
	}
	if len(stop) == 0 {
		return
	}
	slices.Sort(stop)
	m.log.Info("giving shards up", "shards", stop, "why", why)
	m.cfg.Stop(stop, why)
}

func (m *Member) stopAll(why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	stop := sortedKeys(m.held)
	clear(m.held)
	clear(m.assigned)
	if len(stop) > 0 {
		m.log.Info("giving shards up", "shards", stop, "why", why)
		m.cfg.Stop(stop, why)
	}
}

// leaseHook renews the lease on every answered group request: its send
// time is when the coordinator could at the earliest have restarted the
// member's session timer.
type leaseHook struct{ ms *membership }

func (h leaseHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	switch kmsg.Key(key) {
	case kmsg.Heartbeat, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.ConsumerGroupHeartbeat:
	default:
		return
	}
	if e2e.Err() != nil || h.ms.m.deaf.Load() {
		return
	}
	sent := time.Now().Add(-e2e.DurationE2E()).UnixNano()
	for {
		old := h.ms.leaseFrom.Load()
		if sent <= old || h.ms.leaseFrom.CompareAndSwap(old, sent) {
			return
		}
	}
}

func sortedKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
