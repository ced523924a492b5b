package discord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrHandedOver is the cause with which a shard's context ends when the
// shard is handed over to another process (Shards.Stop): its connection
// closes without ending the Discord session, so that the new holder may
// resume it.
var ErrHandedOver = errors.New("discord: shard handed over")

// Shards starts and stops shards of a Gateway run with Config.Assign. Its
// methods may be called from any goroutine, not after Assign returned.
type Shards struct {
	g     *Gateway
	ctx   context.Context
	count int
	fail  func(error)

	mu      sync.Mutex
	running map[int]*runningShard
	closed  bool
}

type runningShard struct {
	s      *shard
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// Count is the bot's shard count (Config.Shards, or Discord's
// recommendation).
func (ss *Shards) Count() int { return ss.count }

// MaxConcurrency is session_start_limit.max_concurrency from /gateway/bot.
func (ss *Shards) MaxConcurrency() int { return ss.g.maxConc }

// SessionStartLimit is the daily budget /gateway/bot reported when the
// Gateway started.
func (ss *Shards) SessionStartLimit() SessionStartLimit {
	ss.g.budgetMu.Lock()
	defer ss.g.budgetMu.Unlock()
	return ss.g.budget
}

// Running returns the shards running now, ascending.
func (ss *Shards) Running() []int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]int, 0, len(ss.running))
	for id := range ss.running {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Start starts shards in the background (IDENTIFY, paced as usual); a
// shard already running is left as it is.
func (ss *Shards) Start(ids ...int) error { return ss.StartFrom(nil, ids...) }

// StartFrom is Start where shards with a session in from RESUME it first
// (no IDENTIFY, no session start used); when Discord refuses, they
// IDENTIFY. A session recorded elsewhere must be one no connection holds
// any more, and its Seq one up to which every event was handled: Discord
// replays what came after it.
func (ss *Shards) StartFrom(from map[int]Session, ids ...int) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return errors.New("discord: the Gateway has stopped")
	}
	for _, id := range ids {
		if id < 0 || id >= ss.count {
			return fmt.Errorf("discord: shard %d is not between 0 and %d", id, ss.count-1)
		}
	}
	for _, id := range ids {
		if ss.running[id] != nil {
			continue
		}
		// Not ended with Assign's ctx: Assign hands its shards over (Stop)
		// before it returns; those it leaves running are closed then.
		ctx, cancel := context.WithCancelCause(context.WithoutCancel(ss.ctx))
		r := &runningShard{s: newShard(ss.g, id, ss.count), cancel: cancel, done: make(chan struct{})}
		r.s.downSince.Store(ss.g.cfg.Now().UnixNano())
		if st, ok := from[id]; ok && st.ID != "" && st.Seq >= 0 {
			url := st.ResumeURL
			if url != "" {
				if err := checkResumeURL(url, ss.g.gatewayURL); err != nil {
					ss.g.log.Warn("not using a stored resume_gateway_url; resuming on the Gateway URL instead", "shard", id, "err", err)
					url = ""
				}
			}
			r.s.sessionID, r.s.resumeURL = st.ID, url
			r.s.seq.Store(st.Seq)
			r.s.publishSession()
		}
		ss.running[id] = r
		go func() {
			defer close(r.done)
			if err := r.s.run(ctx); err != nil && ctx.Err() == nil {
				ss.fail(fmt.Errorf("shard %d: %w", id, err))
			}
		}()
	}
	ss.publish()
	return nil
}

// Session returns the live session of a running shard (ok false when the
// shard does not run or has no session): Seq is the last event the
// Handler has returned from.
func (ss *Shards) Session(id int) (Session, bool) {
	ss.mu.Lock()
	r := ss.running[id]
	ss.mu.Unlock()
	if r == nil {
		return Session{}, false
	}
	st := r.s.session()
	return st, st.ID != ""
}

// Stop hands shards over: each connection closes without ending its
// Discord session, and Stop returns once every one is closed. Shards not
// running are ignored.
func (ss *Shards) Stop(ids ...int) {
	ss.mu.Lock()
	var stopping []*runningShard
	for _, id := range ids {
		if r := ss.running[id]; r != nil {
			r.cancel(ErrHandedOver)
			stopping = append(stopping, r)
			delete(ss.running, id)
		}
	}
	ss.publish()
	ss.mu.Unlock()
	for _, r := range stopping {
		<-r.done
	}
}

// publish makes the running shards those Health checks; ss.mu is held.
func (ss *Shards) publish() {
	list := make([]*shard, 0, len(ss.running))
	for _, r := range ss.running {
		list = append(list, r.s)
	}
	ss.g.mu.Lock()
	ss.g.shards = list
	ss.g.mu.Unlock()
}

// closeAll stops every shard (ending their sessions when ctx ended: the
// process is shutting down) and waits for them.
func (ss *Shards) closeAll() {
	ss.mu.Lock()
	ss.closed = true
	var all []*runningShard
	for id, r := range ss.running {
		r.cancel(context.Canceled)
		all = append(all, r)
		delete(ss.running, id)
	}
	ss.mu.Unlock()
	for _, r := range all {
		<-r.done
	}
}

// runAssigned is Run with Config.Assign.
func (g *Gateway) runAssigned(ctx context.Context) error {
	gb, n, _, err := g.open(ctx)
	if err != nil || gb == nil {
		return err
	}
	g.log.Info("connected to Discord's REST API; the shards run as assigned", "url", gb.URL, "shards", n,
		"intents", g.cfg.Intents.String(), "max_concurrency", g.maxConc,
		"session_starts_remaining", gb.SessionStartLimit.Remaining, "session_starts_total", gb.SessionStartLimit.Total)
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var failOnce sync.Once
	var failed error
	ss := &Shards{g: g, ctx: actx, count: n, running: map[int]*runningShard{},
		fail: func(err error) {
			failOnce.Do(func() {
				failed = err
				cancel(err)
			})
		}}
	g.mu.Lock()
	g.shards = []*shard{}
	g.mu.Unlock()
	err = g.cfg.Assign(actx, ss)
	ss.closeAll()
	failOnce.Do(func() {}) // no failure recorded after this point
	if failed != nil {
		return failed
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}
