package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordstream/cordstream/internal/botgroup"
	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/metrics"
)

// groupBudgetWarn: below this share of the daily session-start budget
// left, the group says so (and says it again every budgetWarnEvery).
const (
	groupBudgetWarn      = 0.2
	groupBudgetWarnEvery = 10 * time.Minute
	groupReportEvery     = 5 * time.Second
)

// checkGroup checks --group and its companions.
func (f *botFlags) checkGroup() error {
	if f.group == "" {
		if f.groupMember != "" {
			return usageErrorf("e.g. --group mybot --group-member host-a", "--group-member needs --group")
		}
		return nil
	}
	if err := kafka.ValidTopicName(botgroup.SessionsTopic(f.group)); err != nil {
		return usageErrorf("use letters, digits, '-', '_' or '.', e.g. --group mybot", "--group %q: %v", f.group, err)
	}
	if f.shardIDs != "" {
		return usageErrorf("drop --shard-ids: a group shares its shards out by itself (keep --shard-count, the same in every instance)",
			"--group and --shard-ids exclude each other")
	}
	if f.groupSessionTimeout < 6*time.Second || f.groupSessionTimeout > 5*time.Minute {
		return usageErrorf("e.g. --group-session-timeout 10s", "--group-session-timeout %s: must be between 6s and 5m", f.groupSessionTimeout)
	}
	return nil
}

// groupMember is this instance's name in the group: --group-member, else
// host name and process id.
func (f *botFlags) groupMemberName() string {
	if f.groupMember != "" {
		return f.groupMember
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "bot"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// botGroup runs this instance's part of a bot group: it is the Gateway's
// Config.Assign.
type botGroup struct {
	o     *botOptions
	kcfg  kafka.Config
	log   *slog.Logger
	pacer atomic.Pointer[botgroup.Pacer]
	// marks are the spool's (nil without a spool: no session is kept,
	// a moved shard identifies and the backfill covers the gap).
	marks func() (next, low uint64)

	// wmu guards the sessions waiting to be written and those written
	// (never held while Kafka is written).
	wmu     sync.Mutex
	pending map[int]pendingSession
	written map[int]discord.Session

	resumes   metrics.Counter
	held      metrics.Gauge
	remaining metrics.Gauge
	fences    metrics.Gauge
}

// pendingSession is a shard's session waiting for Kafka to acknowledge
// every message taken before it was read (spool ids below mark).
type pendingSession struct {
	st   discord.Session
	mark uint64
}

func newBotGroup(o *botOptions, kcfg kafka.Config, log *slog.Logger, reg *metrics.Registry, marks func() (uint64, uint64)) *botGroup {
	return &botGroup{o: o, kcfg: kcfg, log: log.With("group", o.flags.group), marks: marks,
		pending: map[int]pendingSession{}, written: map[int]discord.Session{},
		resumes: reg.NewCounter("cordstream_botgroup_resumes_total",
			"Shards this instance started from a session stored by the group, with a RESUME (cordstream_discord_resumes_total counts those Discord accepted; the others identify)."),
		held: reg.NewGauge("cordstream_botgroup_shards_held", "Shards this instance of the bot group holds and runs now."),
		remaining: reg.NewGauge("cordstream_botgroup_session_starts_remaining",
			"Session starts (IDENTIFYs) the bot group has left in Discord's daily budget, by its own count since this instance started."),
		fences: reg.NewGauge("cordstream_botgroup_fences",
			"Times this instance gave every shard up because its lease on them lapsed (Kafka's group coordinator out of reach)."),
	}
}

// gate paces IDENTIFYs through the group's pacer (discord.Config.IdentifyGate).
func (bg *botGroup) gate(ctx context.Context, shardID int) error {
	p := bg.pacer.Load()
	if p == nil {
		return fmt.Errorf("the group's IDENTIFY pacing is not running")
	}
	return p.Gate(ctx, shardID)
}

// run is the Gateway's Config.Assign: it joins the group and runs the
// shards Kafka assigns this instance until ctx ends.
func (bg *botGroup) run(ctx context.Context, ss *discord.Shards) error {
	f := bg.o.flags
	member := f.groupMemberName()
	started := time.Now()
	lim := ss.SessionStartLimit()
	p, err := botgroup.NewPacer(ctx, botgroup.PacerConfig{Kafka: bg.kcfg, Topic: botgroup.IdentifyTopic(f.group), Member: member,
		MaxConcurrency: max(ss.MaxConcurrency(), 1), SessionStartLimit: lim.Total, ReplicationFactor: int16(f.replicationFactor), Log: bg.log})
	if err != nil {
		return err
	}
	defer p.Close()
	bg.pacer.Store(p)
	var store *botgroup.SessionStore
	if bg.marks != nil {
		if store, err = botgroup.NewSessionStore(ctx, bg.kcfg, f.group, int16(f.replicationFactor), bg.log); err != nil {
			return err
		}
		defer store.Close()
	} else {
		bg.log.Warn("no spool (--spool-dir off): the group keeps no Gateway sessions, so a shard that moves identifies anew and the backfill fetches what it missed")
	}
	m, err := botgroup.NewMember(ctx, botgroup.MemberConfig{
		Kafka: bg.kcfg, Group: f.group, Shards: ss.Count(), Member: member,
		SessionTimeout:    f.groupSessionTimeout,
		ReplicationFactor: int16(f.replicationFactor),
		Log:               bg.log,
		Start: func(ids []int) {
			from := bg.stored(ctx, store, ss.Count(), ids)
			if err := ss.StartFrom(from, ids...); err != nil {
				bg.log.Warn("cannot start shards", "shards", ids, "err", err)
			}
			bg.held.Set(float64(len(ss.Running())))
		},
		Stop: func(ids []int, why string) {
			t0 := time.Now()
			bg.wmu.Lock()
			ss.Stop(ids...)
			for _, id := range ids {
				delete(bg.pending, id)
				delete(bg.written, id)
			}
			bg.wmu.Unlock()
			bg.held.Set(float64(len(ss.Running())))
			bg.log.Info("shards handed over", "shards", ids, "why", why, "took", time.Since(t0).Round(time.Millisecond))
		},
	})
	if err != nil {
		return err
	}
	bg.log.Info("joined the bot group: the shards are shared among its instances through Kafka",
		"member", member, "shards", ss.Count(), "max_concurrency", ss.MaxConcurrency(),
		"session_starts_remaining", lim.Remaining, "session_starts_total", lim.Total,
		"coordination_topic", botgroup.ShardsTopic(f.group), "identify_topic", botgroup.IdentifyTopic(f.group))
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go bg.report(rctx, p, m, lim, started)
	if store != nil {
		go bg.keepSessions(rctx, ss, store, member)
	}
	return m.Run(ctx)
}

// report keeps the group's gauges and warns before the daily session-start
// budget runs out.
func (bg *botGroup) report(ctx context.Context, p *botgroup.Pacer, m *botgroup.Member, lim discord.SessionStartLimit, started time.Time) {
	var warnedAt time.Time
	t := time.NewTicker(groupReportEvery)
	defer t.Stop()
	for {
		// Discord's own count when this instance started, less the group's
		// starts since, and the group's count over 24 hours: the lower.
		left := lim.Remaining - p.StartsSince(started)
		if own, _ := p.Remaining(); own >= 0 && own < left {
			left = own
		}
		bg.remaining.Set(float64(max(left, 0)))
		bg.fences.Set(float64(m.Fences()))
		if lim.Total > 0 && float64(left) < groupBudgetWarn*float64(lim.Total) && time.Since(warnedAt) > groupBudgetWarnEvery {
			warnedAt = time.Now()
			bg.log.Warn("the bot group's daily session-start budget is running out: each shard start and each new session after a failover uses one; "+
				"when none is left, shards wait for the budget to reset (see docs/BOT-OPERATIONS.md)",
				"remaining", left, "total", lim.Total)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stored returns the sessions the group kept for shards ids (none when
// the store cannot be read: the shards then identify).
func (bg *botGroup) stored(ctx context.Context, store *botgroup.SessionStore, count int, ids []int) map[int]discord.Session {
	if store == nil {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, groupLoadTimeout)
	defer cancel()
	all, err := store.Load(lctx, count)
	if err != nil {
		bg.log.Warn("cannot read the group's Gateway sessions; the shards identify anew and the backfill fetches what they missed",
			"shards", ids, "err", err)
		return nil
	}
	from := map[int]discord.Session{}
	var resumed []int
	for _, id := range ids {
		if st, ok := all[id]; ok {
			from[id] = discord.Session{ID: st.SessionID, ResumeURL: st.ResumeURL, Seq: st.Seq}
			resumed = append(resumed, id)
		}
	}
	if len(resumed) > 0 {
		bg.resumes.Add(float64(len(resumed)))
		bg.log.Info("resuming the group's stored Gateway sessions", "shards", resumed)
	}
	return from
}

// Session records: read every second, written once Kafka acknowledged
// every message taken before the read.
const (
	groupSessionEvery = time.Second
	// groupLoadTimeout bounds reading the stored sessions when shards are
	// assigned: the group's member waits for it, so it stays below the
	// lease's margin (3 s at least).
	groupLoadTimeout = 2 * time.Second
	groupPutTimeout  = 3 * time.Second
)

// keepSessions writes the sessions of the shards this instance runs to
// the group's store, each only for a sequence number whose messages Kafka
// has acknowledged: a shard's session and sequence are read, then the
// spool's next id; once the spool's acknowledged prefix passes that id,
// every message of an event up to that sequence is in Kafka.
func (bg *botGroup) keepSessions(ctx context.Context, ss *discord.Shards, store *botgroup.SessionStore, member string) {
	t := time.NewTicker(groupSessionEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Kafka is written outside the lock: a hand-over (Stop) must never
		// wait for Kafka, or a holder cut off from it would keep its shards
		// past its lease. A record that lands after its shard was handed
		// over names the same session at an earlier sequence (the next
		// holder resumed it: more replayed, nothing skipped) or one Discord
		// ended (the resume fails, the shard identifies).
		bg.wmu.Lock()
		_, low := bg.marks()
		var ready []pendingSession
		var readyIDs []int
		for id, p := range bg.pending {
			if low < p.mark {
				continue // Kafka has not acknowledged it all yet
			}
			delete(bg.pending, id)
			if bg.written[id] != p.st {
				ready = append(ready, p)
				readyIDs = append(readyIDs, id)
			}
		}
		bg.wmu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, groupPutTimeout)
		for i, p := range ready {
			id := readyIDs[i]
			err := store.Put(pctx, botgroup.SessionState{Shard: id, ShardCount: ss.Count(), SessionID: p.st.ID, Seq: p.st.Seq,
				ResumeURL: p.st.ResumeURL, Holder: member})
			if err != nil {
				bg.log.Warn("cannot keep a Gateway session in the group's store; a new holder of the shard may replay more, or identify", "shard", id, "err", err)
				continue
			}
			bg.wmu.Lock()
			bg.written[id] = p.st
			bg.wmu.Unlock()
		}
		cancel()
		bg.wmu.Lock()
		for _, id := range ss.Running() {
			if _, waiting := bg.pending[id]; waiting {
				continue
			}
			if st, ok := ss.Session(id); ok && st != bg.written[id] {
				next, _ := bg.marks()
				bg.pending[id] = pendingSession{st: st, mark: next}
			}
		}
		bg.wmu.Unlock()
	}
}
