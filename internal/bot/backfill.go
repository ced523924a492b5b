package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/discord"
)

// History is the REST call the backfill needs; *discord.REST implements it.
type History interface {
	ChannelMessages(ctx context.Context, channelID, after string, limit int) ([]json.RawMessage, error)
}

var _ History = (*discord.REST)(nil)

// BackfillConfig configures a Backfiller.
type BackfillConfig struct {
	// REST fetches channel history. Required; share the Gateway's client
	// (Gateway.REST) so that the global rate limit covers both.
	REST History
	// Cursors says where each channel's backfill starts and holds the
	// cursors while it runs. Required.
	Cursors *Cursors
	// Handle takes each fetched message (Bot.HandleBackfill). Required.
	Handle func(ctx context.Context, ev *discord.Event) error
	// MaxAge: nothing older is fetched (24 h when zero).
	MaxAge time.Duration
	// MaxChannels bounds the channels backfilled per new session of a
	// shard, the most recently active first (0: no limit).
	MaxChannels int
	// Workers is how many channels are fetched at once (4 when zero); each
	// channel has its own rate-limit bucket at Discord.
	Workers int
	// FirstSession also backfills on the first session of the process
	// when no positions were loaded (by default that session has nothing
	// to catch up on: the bot never ran before).
	FirstSession bool
	Now          func() time.Time
	Log          *slog.Logger
	Metrics      *Metrics
	// RetryBackoff caps the wait before a failed channel is tried again
	// (1 min when zero).
	RetryBackoff time.Duration
}

// Backfiller fetches, after each gap, the messages the Gateway did not
// deliver: on every new session of a shard (READY: the bot started, or
// Discord ended the previous session without replaying it), each channel of
// that shard is held (its cursor frozen) and its history after the cursor
// is fetched through REST, page by page in id order, until a page comes
// back short or the first message the live stream delivered since the
// session started. The messages go through the same pipeline as live ones
// (filters, content mode, Kafka), after the live events that arrived
// meanwhile: per channel and per author they are in order among
// themselves, not with the live stream. A message both fetched and
// received live is published once (the pipeline drops the second copy in
// the same run).
//
// Channels come from GUILD_CREATE (those the bot can read) and from the
// saved positions. Without Read Message History (403) a channel is skipped
// with a warning naming the permission; an unknown channel (404) is
// forgotten.
type Backfiller struct {
	cfg BackfillConfig
	log *slog.Logger
	m   *Metrics

	mu       sync.Mutex
	queue    []*bfJob
	pending  map[string]*bfJob // queued or running, by channel
	changed  chan struct{}     // closed and replaced when a job is queued
	selfID   string
	shards   int
	sessions map[int]int // new sessions seen per shard
	started  map[int]int // jobs started in the current session of a shard
	limited  map[int]bool
	lost     map[int]time.Time // per shard: when the stream was lost before its current session
	warned   map[string]bool   // channels already warned about (permissions)
}

type bfJob struct {
	channel, guild string
	shard          int
	last           uint64 // last_message_id from GUILD_CREATE (0: unknown)
	after          uint64 // resume position after a failure or a re-hold (0: the cursor)
	gen            uint64
	attempt        int
	notBefore      time.Time
	running        bool
	again          bool // held again while running
}

// NewBackfiller returns a Backfiller; hook OnReady and OnGuild into the
// Gateway's Config, and run Run alongside it.
func NewBackfiller(cfg BackfillConfig) *Backfiller {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Minute
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backfiller{
		cfg: cfg, log: log.With("component", "backfill"), m: cfg.Metrics,
		pending: map[string]*bfJob{}, changed: make(chan struct{}), shards: 1,
		sessions: map[int]int{}, started: map[int]int{}, limited: map[int]bool{}, warned: map[string]bool{},
		lost: map[int]time.Time{},
	}
}

// OnReady is the Gateway's OnReady hook: a new session on a shard means a
// gap. Every saved channel of the shard is held at once (before any live
// event of the session is handled); those of guilds listed in READY are
// fetched when their GUILD_CREATE arrives, the others (DMs, guilds the bot
// left) now.
func (b *Backfiller) OnReady(r discord.ReadyInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.selfID, b.shards = r.SelfID, max(r.ShardCount, 1)
	b.sessions[r.Shard]++
	b.started[r.Shard] = 0
	b.limited[r.Shard] = false
	b.lost[r.Shard] = r.StreamLostAt
	if b.sessions[r.Shard] == 1 && !b.cfg.FirstSession && !b.cfg.Cursors.Existed() {
		return // the bot never ran before: no gap to fill
	}
	listed := map[string]bool{}
	for _, g := range r.GuildIDs {
		listed[g] = true
	}
	for _, p := range b.cfg.Cursors.Channels() {
		if discord.ShardOf(p.GuildID, b.shards) != r.Shard {
			continue
		}
		gen := b.cfg.Cursors.Hold(p.ChannelID, p.GuildID, r.StreamLostAt)
		if !listed[p.GuildID] {
			b.enqueueLocked(&bfJob{channel: p.ChannelID, guild: p.GuildID, shard: r.Shard, gen: gen})
		}
	}
	if b.sessions[r.Shard] > 1 {
		b.log.Info("new Discord session: fetching what was sent while it was down", "shard", r.Shard)
	}
}

// OnGuild is the Gateway's OnGuild hook.
func (b *Backfiller) OnGuild(g discord.GuildInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !g.InReady {
		return // joined during the session: nothing of it was missed
	}
	if b.sessions[g.Shard] == 1 && !b.cfg.FirstSession && !b.cfg.Cursors.Existed() {
		return
	}
	seen := map[string]bool{}
	for _, ch := range g.Channels {
		seen[ch.ID] = true
		switch ch.Read {
		case discord.ReadNoView:
			b.releaseLocked(ch.ID)
			continue
		case discord.ReadNoHistory:
			b.noPermissionLocked(ch.ID, g.ID, ch.Name, "")
			continue
		}
		var last uint64
		if ch.LastMessageID != "" {
			last, _ = strconv.ParseUint(ch.LastMessageID, 10, 64)
		}
		pos := b.cfg.Cursors.Position(ch.ID)
		if ch.LastMessageID == "" || (last != 0 && last <= pos) {
			// Nothing was sent after the position: no request needed.
			if held, gen := b.cfg.Cursors.Held(ch.ID); held {
				b.cfg.Cursors.Release(ch.ID, gen)
			}
			b.m.bfChannels.With("nothing_new").Inc()
			continue
		}
		// Held since READY if it has a position; hold it now otherwise
		// (before any message of the guild arrives).
		gen := b.cfg.Cursors.Keep(ch.ID, g.ID, b.lost[g.Shard])
		b.enqueueLocked(&bfJob{channel: ch.ID, guild: g.ID, shard: g.Shard, last: last, gen: gen})
	}
	// Saved channels of this guild that GUILD_CREATE no longer lists
	// (deleted, or threads that were archived): try them too.
	for _, p := range b.cfg.Cursors.Channels() {
		if p.GuildID == g.ID && !seen[p.ChannelID] {
			if held, gen := b.cfg.Cursors.Held(p.ChannelID); held {
				b.enqueueLocked(&bfJob{channel: p.ChannelID, guild: g.ID, shard: g.Shard, gen: gen})
			}
		}
	}
}

func (b *Backfiller) releaseLocked(ch string) {
	if held, gen := b.cfg.Cursors.Held(ch); held {
		b.cfg.Cursors.Release(ch, gen)
	}
}

func (b *Backfiller) noPermissionLocked(ch, guild, name, detail string) {
	b.releaseLocked(ch)
	b.m.bfChannels.With("no_permission").Inc()
	if b.warned[ch] {
		return
	}
	b.warned[ch] = true
	args := []any{"channel_id", ch, "guild_id", guild}
	if name != "" {
		args = append(args, "channel", name)
	}
	if detail != "" {
		args = append(args, "discord", detail)
	}
	b.log.Warn("cannot backfill a channel: the bot lacks the Read Message History permission (READ_MESSAGE_HISTORY) there; "+
		"messages sent in it while the bot was away are missing. Grant the bot's role View Channel and Read Message History "+
		"in the channel's or server's settings", args...)
}

// enqueueLocked adds a job, or merges it with the channel's queued or
// running one.
func (b *Backfiller) enqueueLocked(j *bfJob) {
	if old := b.pending[j.channel]; old != nil {
		old.gen = j.gen
		old.last = max(old.last, j.last)
		if old.running {
			old.again = true
		}
		return
	}
	b.pending[j.channel] = j
	b.pushLocked(j)
}

func (b *Backfiller) pushLocked(j *bfJob) {
	b.queue = append(b.queue, j)
	close(b.changed)
	b.changed = make(chan struct{})
}

// Run fetches queued channels with Workers workers until ctx ends. Holds
// of channels not finished stay: their cursors are saved unmoved, and the
// next start fetches them again.
func (b *Backfiller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range b.cfg.Workers {
		wg.Go(func() { b.work(ctx) })
	}
	wg.Wait()
	return nil
}

// next returns the most recently active runnable job, or how long to wait
// and what to wait on.
func (b *Backfiller) next() (*bfJob, time.Duration, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		j, wait := b.pickLocked()
		if j != nil || wait >= 0 {
			return j, wait, b.changed
		}
	}
}

func (b *Backfiller) pickLocked() (*bfJob, time.Duration) {
	now := b.cfg.Now()
	best := -1
	var wait time.Duration = time.Hour
	for i, j := range b.queue {
		if now.Before(j.notBefore) {
			wait = min(wait, j.notBefore.Sub(now))
			continue
		}
		if best < 0 || j.last > b.queue[best].last {
			best = i
		}
	}
	if best < 0 {
		return nil, wait
	}
	j := b.queue[best]
	b.queue = append(b.queue[:best], b.queue[best+1:]...)
	if b.cfg.MaxChannels > 0 && j.attempt == 0 && j.after == 0 {
		if b.started[j.shard] >= b.cfg.MaxChannels {
			delete(b.pending, j.channel)
			b.cfg.Cursors.Release(j.channel, j.gen)
			b.m.bfChannels.With("limited").Inc()
			if !b.limited[j.shard] {
				b.limited[j.shard] = true
				b.log.Warn("backfill limited by --backfill-channels: less active channels are not fetched; "+
					"messages sent in them while the bot was away are missing", "limit", b.cfg.MaxChannels, "shard", j.shard,
					"first_skipped", j.channel)
			}
			return nil, -1 // look again
		}
		b.started[j.shard]++
	}
	j.running = true
	return j, 0
}

func (b *Backfiller) work(ctx context.Context) {
	for {
		j, wait, changed := b.next()
		if j == nil {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-changed:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		b.fetch(ctx, j)
		if ctx.Err() != nil {
			return
		}
	}
}

// fetch pages through one channel.
func (b *Backfiller) fetch(ctx context.Context, j *bfJob) {
	pos := j.after
	if pos == 0 {
		pos = b.cfg.Cursors.Position(j.channel)
		if oldest := SnowflakeAt(b.cfg.Now().Add(-b.cfg.MaxAge)); pos < oldest {
			pos = oldest
			b.m.bfSkippedOld.Inc()
			b.log.Info("backfill limited to --backfill-max-age: older messages of the channel are not fetched",
				"channel_id", j.channel, "max_age", b.cfg.MaxAge)
		}
	}
	var guild *string
	if j.guild != "" {
		g := j.guild
		guild = &g
	}
	b.mu.Lock()
	self := b.selfID
	b.mu.Unlock()
	fetched := 0
	for {
		floor := b.cfg.Cursors.Floor(j.channel)
		if floor != 0 && pos >= floor {
			break
		}
		page, err := b.cfg.REST.ChannelMessages(ctx, j.channel, strconv.FormatUint(pos, 10), discord.MessagesPageLimit)
		b.m.bfRequests.Inc()
		if err != nil {
			b.failed(ctx, j, pos, err)
			return
		}
		stop := len(page) < discord.MessagesPageLimit
		for _, raw := range page {
			ev := discord.MapRESTMessage(raw, guild, self)
			id, perr := strconv.ParseUint(ev.Message.MessageID, 10, 64)
			if perr != nil || id <= pos {
				continue // not a message after pos: nothing to publish, no progress
			}
			if floor != 0 && id >= floor {
				stop = true // the live stream has it and everything after
				break
			}
			if ev.Message.ChannelID == "" {
				ev.Message.ChannelID = j.channel
			}
			ev.ReceivedAt = b.cfg.Now()
			if err := b.cfg.Handle(ctx, &ev); err != nil {
				return // ctx ended: the hold stays, the next start fetches again
			}
			fetched++
			pos = id
		}
		if stop {
			break
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if j.again || !b.cfg.Cursors.Release(j.channel, j.gen) {
		// Held again meanwhile (a new session): continue from here under
		// the new hold.
		_, j.gen = b.cfg.Cursors.Held(j.channel)
		j.after, j.again, j.running = pos, false, false
		b.pushLocked(j)
		return
	}
	delete(b.pending, j.channel)
	b.m.bfChannels.With("done").Inc()
	if fetched > 0 {
		b.log.Info("backfilled a channel", "channel_id", j.channel, "messages", fetched)
	}
}

// failed handles a request error for job j stopped at pos.
func (b *Backfiller) failed(ctx context.Context, j *bfJob, pos uint64, err error) {
	if ctx.Err() != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case discord.IsMissingAccess(err):
		delete(b.pending, j.channel)
		b.noPermissionLocked(j.channel, j.guild, "", err.Error())
		return
	case discord.IsNotFound(err):
		delete(b.pending, j.channel)
		b.cfg.Cursors.Forget(j.channel)
		b.m.bfChannels.With("unknown_channel").Inc()
		b.log.Warn("a channel with a saved position no longer exists; forgetting it", "channel_id", j.channel, "guild_id", j.guild)
		return
	}
	j.attempt++
	wait := min(time.Duration(1<<min(j.attempt-1, 10))*time.Second, b.cfg.RetryBackoff)
	j.after, j.notBefore, j.running = pos, b.cfg.Now().Add(wait), false
	b.pushLocked(j)
	b.m.bfChannels.With("failed").Inc()
	b.log.Error("backfill request failed; trying the channel again later (its position is kept)",
		"channel_id", j.channel, "err", err, "retry_in", wait, "attempt", j.attempt)
}

// Idle reports whether no channel is queued or being fetched.
func (b *Backfiller) Idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending) == 0
}
