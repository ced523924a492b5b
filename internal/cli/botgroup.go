package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
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

	held      metrics.Gauge
	remaining metrics.Gauge
	fences    metrics.Gauge
}

func newBotGroup(o *botOptions, kcfg kafka.Config, log *slog.Logger, reg *metrics.Registry) *botGroup {
	return &botGroup{o: o, kcfg: kcfg, log: log.With("group", o.flags.group),
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
	m, err := botgroup.NewMember(ctx, botgroup.MemberConfig{
		Kafka: bg.kcfg, Group: f.group, Shards: ss.Count(), Member: member,
		SessionTimeout:    f.groupSessionTimeout,
		ReplicationFactor: int16(f.replicationFactor),
		Log:               bg.log,
		Start: func(ids []int) {
			if err := ss.Start(ids...); err != nil {
				bg.log.Warn("cannot start shards", "shards", ids, "err", err)
			}
			bg.held.Set(float64(len(ss.Running())))
		},
		Stop: func(ids []int, why string) {
			t0 := time.Now()
			ss.Stop(ids...)
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
