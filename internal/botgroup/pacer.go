// Package botgroup holds the pieces of the bot group (docs/ARCHITECTURE.md,
// "The bot group"): bot instances that share one bot's shards through
// Kafka. Member takes part in the group's consumer group and holds the
// shards assigned to it while its lease is valid; Pacer paces IDENTIFYs
// for every instance through claims on a one-partition topic; SessionStore
// keeps Gateway sessions in a compacted topic, and AckFrontier says which
// sequence a session record may carry. `cordstream bot --group` puts them
// together (internal/cli).
package botgroup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/kafka"
)

// Discord's IDENTIFY pacing: one per rate-limit bucket per 5 s, and the
// margin kept for network jitter (a tenth, as a single process keeps).
const (
	DefaultIdentifyInterval = 5 * time.Second
	DefaultIdentifyMargin   = 500 * time.Millisecond
)

// IdentifyTopic is the name of group's claims topic.
func IdentifyTopic(group string) string { return "cordstream-bot." + group + ".identify" }

// PacerConfig configures a Pacer.
type PacerConfig struct {
	// Kafka is where the group's topics live.
	Kafka kafka.Config
	// Topic is the claims topic (IdentifyTopic of the group). It is created
	// when missing: one partition, the broker's clock on every record
	// (message.timestamp.type=LogAppendTime), kept a day.
	Topic string
	// Member names this instance in its claims (for operators).
	Member string
	// MaxConcurrency is session_start_limit.max_concurrency: buckets are
	// shard_id % MaxConcurrency. Every instance must use the same.
	MaxConcurrency int
	// Interval and Margin: claims of one bucket get slots at least
	// Interval+Margin apart (defaults DefaultIdentifyInterval and
	// DefaultIdentifyMargin). Every instance must use the same.
	Interval, Margin time.Duration
	// SessionStartLimit is session_start_limit.total of /gateway/bot: the
	// group makes at most that many claims (each one a session start) in
	// 24 hours; beyond it Wait waits for the oldest claim to age out. 0:
	// not checked here.
	SessionStartLimit int
	// ReplicationFactor of the topic if created (-1: the broker's default).
	ReplicationFactor int16
	Log               *slog.Logger
}

// claim is one record of the claims topic.
type claim struct {
	ID     string `json:"id"`
	Member string `json:"member"`
	Shard  int    `json:"shard"`
	Bucket int    `json:"bucket"`
	Ping   bool   `json:"ping,omitempty"` // not a claim: a reader's start
}

// Slot is when a claim may IDENTIFY, in the broker's time.
type Slot struct {
	ClaimID  string
	Member   string
	Shard    int
	Bucket   int
	Offset   int64
	Appended time.Time // the broker's append time of the claim
	At       time.Time // the slot: at or after Appended
}

// Pacer paces IDENTIFYs across every instance that uses the same claims
// topic. Before an IDENTIFY an instance appends a claim; the schedule is a
// function of the log alone, so every instance computes the same one:
// in offset order, a claim of bucket b gets the slot
// max(its append time, the previous slot of b + Interval + Margin). The
// claimant waits until the broker's clock reaches its slot. Safe for
// concurrent use.
type Pacer struct {
	cfg  PacerConfig
	log  *slog.Logger
	cl   *kgo.Client
	step time.Duration

	mu      sync.Mutex
	last    map[int]time.Time // last slot per bucket
	slots   []Slot            // the schedule, in offset order (a day of claims)
	waiters map[string]chan Slot
	done    chan struct{}
	cancel  context.CancelFunc
}

// NewPacer connects, makes sure the topic exists with the broker's clock
// on its records, and starts reading the schedule from the topic's start.
func NewPacer(ctx context.Context, cfg PacerConfig) (*Pacer, error) {
	if cfg.MaxConcurrency < 1 {
		return nil, fmt.Errorf("botgroup: max_concurrency %d: must be at least 1", cfg.MaxConcurrency)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultIdentifyInterval
	}
	if cfg.Margin < 0 {
		return nil, errors.New("botgroup: negative identify margin")
	}
	if cfg.Margin == 0 {
		cfg.Margin = DefaultIdentifyMargin
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
	log = log.With("component", "botgroup", "topic", cfg.Topic)
	cl, err := kafka.NewClient(ctx, cfg.Kafka, log,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, err
	}
	if _, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{
		Name: cfg.Topic, Partitions: 1, ReplicationFactor: cfg.ReplicationFactor,
		Configs: map[string]string{
			"message.timestamp.type": "LogAppendTime",
			"retention.ms":           "86400000",
			"cleanup.policy":         "delete",
		},
	}); err != nil {
		cl.Close()
		return nil, err
	}
	if err := checkLogAppendTime(ctx, cl, cfg.Topic); err != nil {
		cl.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	p := &Pacer{
		cfg: cfg, log: log, cl: cl, step: cfg.Interval + cfg.Margin,
		last: map[int]time.Time{}, waiters: map[string]chan Slot{},
		done: make(chan struct{}), cancel: cancel,
	}
	go p.read(rctx)
	// Serve claims only once the reader is live: a claim whose slot is
	// read late is wasted (and counts against the budget).
	if err := p.ping(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// ping appends a record that is not a claim and waits until the reader has
// read it.
func (p *Pacer) ping(ctx context.Context) error {
	id := "ping/" + p.cfg.Member + "/" + nonce()
	ch := make(chan Slot, 1)
	p.mu.Lock()
	p.waiters[id] = ch
	p.mu.Unlock()
	b, _ := json.Marshal(claim{ID: id, Member: p.cfg.Member, Ping: true})
	if err := p.cl.ProduceSync(ctx, &kgo.Record{Topic: p.cfg.Topic, Partition: 0, Value: b}).FirstErr(); err != nil {
		return fmt.Errorf("botgroup: write to %q: %w", p.cfg.Topic, err)
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("botgroup: read %q: %w", p.cfg.Topic, ctx.Err())
	}
}

// checkLogAppendTime refuses a claims topic whose records carry their
// producers' clocks: instances' clocks differ, the broker's is one.
func checkLogAppendTime(ctx context.Context, cl *kgo.Client, topic string) error {
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("botgroup: describe the configs of topic %q: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("botgroup: describe the configs of topic %q: %w", topic, err)
	}
	if rc.Err != nil {
		return fmt.Errorf("botgroup: describe the configs of topic %q: %w", topic, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == "message.timestamp.type" && c.MaybeValue() != "LogAppendTime" {
			return fmt.Errorf("botgroup: topic %q stamps records with the producer's clock (message.timestamp.type=%s); "+
				"the group needs the broker's: kafka-configs --alter --entity-type topics --entity-name %s --add-config message.timestamp.type=LogAppendTime",
				topic, c.MaybeValue(), topic)
		}
	}
	return nil
}

// read consumes the claims topic and computes the schedule.
func (p *Pacer) read(ctx context.Context) {
	defer close(p.done)
	for {
		fs := p.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, part int32, err error) {
			p.log.Warn("reading the group's IDENTIFY claims", "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			var c claim
			if err := json.Unmarshal(r.Value, &c); err != nil || c.ID == "" {
				p.log.Warn("not a claim; skipped", "offset", r.Offset)
				return
			}
			if c.Ping {
				p.mu.Lock()
				if ch, ok := p.waiters[c.ID]; ok {
					ch <- Slot{}
					delete(p.waiters, c.ID)
				}
				p.mu.Unlock()
				return
			}
			p.add(c, r.Offset, r.Timestamp)
		})
	}
}

// add schedules claim c, appended at ts (broker time).
func (p *Pacer) add(c claim, offset int64, ts time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := ts
	if last, ok := p.last[c.Bucket]; ok && last.Add(p.step).After(at) {
		at = last.Add(p.step)
	}
	p.last[c.Bucket] = at
	s := Slot{ClaimID: c.ID, Member: c.Member, Shard: c.Shard, Bucket: c.Bucket, Offset: offset, Appended: ts, At: at}
	// Keep a day of the schedule (what the topic keeps).
	if len(p.slots) > 0 && ts.Sub(p.slots[0].Appended) > 25*time.Hour {
		i := 0
		for i < len(p.slots) && ts.Sub(p.slots[i].Appended) > 24*time.Hour {
			i++
		}
		p.slots = append(p.slots[:0:0], p.slots[i:]...)
	}
	p.slots = append(p.slots, s)
	if ch, ok := p.waiters[c.ID]; ok {
		ch <- s
		delete(p.waiters, c.ID)
	}
}

// Wait claims an IDENTIFY for shardID and returns when it may be sent:
// when the broker's clock has reached the claim's slot. It returns the
// slot. Use it as discord.Config.IdentifyGate (see Gate).
//
// A claim whose slot has passed by more than half the margin when its
// holder can act on it (the schedule was read late, or the wait overran)
// is dropped and a new claim made: the next claim of the bucket counts
// from this slot, so identifying late would shorten the gap after it.
func (p *Pacer) Wait(ctx context.Context, shardID int) (Slot, error) {
	if err := p.waitBudget(ctx); err != nil {
		return Slot{}, err
	}
	for attempt := 1; ; attempt++ {
		s, ok, err := p.try(ctx, shardID)
		if err != nil || ok {
			return s, err
		}
		if attempt == maxClaims {
			return Slot{}, fmt.Errorf("botgroup: missed %d IDENTIFY slots in a row for shard %d (Kafka or this process too slow for a margin of %s)",
				attempt, shardID, p.cfg.Margin)
		}
		p.log.Debug("missed the group's IDENTIFY slot; claiming again", "shard", shardID, "slot", s.At, "attempt", attempt)
	}
}

// maxClaims bounds the claims of one Wait.
const maxClaims = 20

// try makes one claim; ok is false when its slot was missed.
func (p *Pacer) try(ctx context.Context, shardID int) (Slot, bool, error) {
	c := claim{ID: p.cfg.Member + "/" + nonce(), Member: p.cfg.Member, Shard: shardID, Bucket: shardID % p.cfg.MaxConcurrency}
	b, _ := json.Marshal(c)
	ch := make(chan Slot, 1)
	p.mu.Lock()
	p.waiters[c.ID] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiters, c.ID)
		p.mu.Unlock()
	}()
	if err := p.cl.ProduceSync(ctx, &kgo.Record{Topic: p.cfg.Topic, Partition: 0, Value: b}).FirstErr(); err != nil {
		return Slot{}, false, fmt.Errorf("claim an IDENTIFY for shard %d: %w", shardID, err)
	}
	// The broker stamped the claim before acked.
	acked := time.Now()
	var s Slot
	select {
	case s = <-ch:
	case <-ctx.Done():
		return Slot{}, false, ctx.Err()
	case <-p.done:
		return Slot{}, false, errors.New("botgroup: the pacer is closed")
	}
	// Waiting from acked for the slot's distance from the stamp reaches
	// the slot at least. The broker's clock is about Appended +
	// time.Since(acked) now (later by at most the produce round trip,
	// which the margin must exceed twice): how late this claim is.
	if wait := s.At.Sub(s.Appended) - time.Since(acked); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return Slot{}, false, ctx.Err()
		}
	}
	late := s.Appended.Add(time.Since(acked)).Sub(s.At)
	return s, late <= p.cfg.Margin/2, nil
}

// budgetWindow is the period of Discord's session-start budget.
const budgetWindow = 24 * time.Hour

// Remaining returns how many session starts the group has left in the
// last 24 hours by its own claims, and when the next one frees up (zero
// when some are left), or -1 when no limit is configured.
func (p *Pacer) Remaining() (int, time.Time) {
	limit := p.cfg.SessionStartLimit
	if limit <= 0 {
		return -1, time.Time{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	since := time.Now().Add(-budgetWindow)
	var inWindow []time.Time
	for _, s := range p.slots {
		if s.Appended.After(since) {
			inWindow = append(inWindow, s.Appended)
		}
	}
	left := limit - len(inWindow)
	if left > 0 {
		return left, time.Time{}
	}
	// The claim that must age out for one start to free up.
	return 0, inWindow[len(inWindow)-limit].Add(budgetWindow)
}

// waitBudget waits while the group has no session start left.
func (p *Pacer) waitBudget(ctx context.Context) error {
	warned := false
	for {
		left, free := p.Remaining()
		if left < 0 || left > 0 {
			if left >= 0 && left <= p.cfg.SessionStartLimit/10 && !warned {
				p.log.Warn("the group's daily session-start budget is running out", "remaining", left, "total", p.cfg.SessionStartLimit)
			}
			return nil
		}
		if !warned {
			p.log.Error("the group's daily session-start budget is used up; waiting for the oldest start to age out before identifying",
				"total", p.cfg.SessionStartLimit, "next_at", free)
			warned = true
		}
		t := time.NewTimer(max(time.Until(free), 100*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// Gate adapts Wait to discord.Config.IdentifyGate.
func (p *Pacer) Gate(ctx context.Context, shardID int) error {
	_, err := p.Wait(ctx, shardID)
	return err
}

// Schedule returns the slots of the claims read so far (a day's worth),
// in offset order.
func (p *Pacer) Schedule() []Slot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Slot(nil), p.slots...)
}

// StartsSince counts the claims appended at or after t: the group's
// session starts (each claim is followed by one IDENTIFY).
func (p *Pacer) StartsSince(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.slots {
		if !s.Appended.Before(t) {
			n++
		}
	}
	return n
}

// Close stops reading and closes the Kafka client.
func (p *Pacer) Close() {
	p.cancel()
	<-p.done
	p.cl.Close()
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
