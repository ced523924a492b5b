package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/cordstream/cordstream/internal/metrics"
)

// Handler receives message events. It is called from one goroutine per
// shard: in order within a shard, concurrently across shards. While it runs,
// that shard reads nothing more from Discord; the event's sequence number is
// acknowledged for resuming only once Handler returns nil. A non-nil error
// (normally ctx's) stops the Gateway: Run returns it.
type Handler func(ctx context.Context, ev *Event) error

// Config configures a Gateway. Zero durations mean Discord's documented
// values.
type Config struct {
	// Token is the bot token (without the "Bot " prefix). Required.
	Token string
	// APIURL is the REST base, DefaultAPIURL when empty. The Gateway URL is
	// read from its /gateway/bot.
	APIURL string
	// Intents sent in IDENTIFY; DefaultIntents when zero.
	Intents Intents
	// Handler receives the message events. Required.
	Handler Handler
	// Updates also delivers MESSAGE_UPDATE, MESSAGE_DELETE and
	// MESSAGE_DELETE_BULK; otherwise only MESSAGE_CREATE.
	Updates bool
	// Shards overrides the shard count; 0 uses Discord's recommendation.
	Shards int
	// ShardIDs, when set, are the only shards this Gateway opens (manual
	// sharding: the other shards of the bot run elsewhere); it needs
	// Shards, the total every process uses. See ShardPlan.
	ShardIDs []int
	// OnReady, when set, is called for every new session (READY, not
	// RESUMED), and OnGuild for every GUILD_CREATE, on the shard's reader
	// before any later event of that shard reaches the Handler. They must
	// return quickly.
	OnReady func(ReadyInfo)
	OnGuild func(GuildInfo)
	// RESTGlobalLimit is the global REST limit in requests per second
	// (DefaultGlobalLimit when zero, none when negative).
	RESTGlobalLimit int

	Log        *slog.Logger      // scoped with component=discord; discarded when nil
	Metrics    *metrics.Registry // gateway metrics are registered here when set
	HTTPClient *http.Client      // REST client; a 30 s timeout client when nil
	Dialer     *websocket.Dialer // WebSocket dialer; a 30 s handshake timeout when nil
	UserAgent  string            // sent on REST and WebSocket requests
	Now        func() time.Time  // wall clock; time.Now when nil

	// IdentifyInterval is the gap between IDENTIFYs in one max_concurrency
	// bucket (Discord: 5 s).
	IdentifyInterval time.Duration
	// IdentifyGate, when set, paces IDENTIFYs instead of this Gateway's own
	// per-bucket pacing (for pacing shared with other processes, such as
	// a bot group's): it is called on the connection, after HELLO, right
	// before each IDENTIFY is sent, and returns when the IDENTIFY may go
	// (an error, ctx's included, ends the attempt; the shard retries). The
	// daily session-start budget is still kept here.
	IdentifyGate func(ctx context.Context, shardID int) error
	// Assign, when set, lets the caller choose which shards run, and
	// change them while the Gateway runs (a bot group: the shards come
	// and go with the group's assignment). Run reads /gateway/bot, checks
	// the shard count, then calls Assign and opens no shard by itself;
	// Assign starts and hands over shards through the Shards it is given
	// and returns when ctx ends (Run then closes the remaining shards) or
	// with an error. A shard that fails fatally ends ctx, and Run returns
	// its error. ShardIDs must be empty.
	Assign func(ctx context.Context, s *Shards) error
	// HelloTimeout is how long to wait for HELLO after connecting (20 s).
	HelloTimeout time.Duration
	// MaxBackoff caps the wait between failed connection attempts (60 s).
	MaxBackoff time.Duration
	// InvalidSessionMin/Max bound the random wait after a non-resumable
	// INVALID_SESSION before identifying again (Discord: 1-5 s).
	InvalidSessionMin, InvalidSessionMax time.Duration
}

// Gateway connects a bot to the Discord Gateway with every shard Discord
// recommends and delivers message events to the Handler.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	rest   *REST
	dialer *websocket.Dialer
	m      gatewayMetrics

	mu     sync.Mutex
	shards []*shard
	start  time.Time

	gatewayURL string

	budgetMu sync.Mutex
	budget   SessionStartLimit

	idMu         sync.Mutex
	nextIdentify map[int]time.Time // reservations, per bucket
	lastIdentify map[int]time.Time // IDENTIFYs actually sent, per bucket
	maxConc      int
}

// New validates cfg and returns a Gateway; nothing connects before Run.
func New(cfg Config) (*Gateway, error) {
	if err := ValidateToken(cfg.Token); err != nil {
		return nil, err
	}
	if cfg.Handler == nil {
		return nil, errors.New("discord: Config.Handler is required")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.Intents == 0 {
		cfg.Intents = DefaultIntents
	}
	if cfg.Shards < 0 || cfg.Shards > MaxShards {
		return nil, fmt.Errorf("discord: shard count %d is not between 0 (Discord's recommendation) and %d", cfg.Shards, MaxShards)
	}
	if cfg.Assign != nil && len(cfg.ShardIDs) > 0 {
		return nil, errors.New("discord: Config.Assign and Config.ShardIDs exclude each other")
	}
	if len(cfg.ShardIDs) > 0 {
		ids := slices.Clone(cfg.ShardIDs)
		slices.Sort(ids)
		if cfg.Shards == 0 {
			return nil, errors.New("discord: Config.ShardIDs needs Config.Shards, the total number of shards of the bot")
		}
		for i, id := range ids {
			if id < 0 || id >= cfg.Shards || (i > 0 && ids[i-1] == id) {
				return nil, fmt.Errorf("discord: shard ids %v: each must be named once and be between 0 and %d", cfg.ShardIDs, cfg.Shards-1)
			}
		}
		cfg.ShardIDs = ids
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "DiscordBot (https://github.com/cordstream/cordstream, dev)"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.IdentifyInterval, 5*time.Second)
	def(&cfg.HelloTimeout, 20*time.Second)
	def(&cfg.MaxBackoff, 60*time.Second)
	def(&cfg.InvalidSessionMin, time.Second)
	def(&cfg.InvalidSessionMax, 5*time.Second)
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "discord")
	rest, err := NewREST(cfg.APIURL, cfg.Token, cfg.HTTPClient, cfg.UserAgent, log)
	if err != nil {
		return nil, err
	}
	if cfg.RESTGlobalLimit != 0 {
		rest.SetGlobalLimit(cfg.RESTGlobalLimit)
	}
	dialer := cfg.Dialer
	if dialer == nil {
		dialer = &websocket.Dialer{HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment}
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	rest.SetMetrics(reg)
	return &Gateway{
		cfg: cfg, log: log, rest: rest, dialer: dialer, m: newGatewayMetrics(reg),
		start: cfg.Now(), nextIdentify: map[int]time.Time{}, lastIdentify: map[int]time.Time{},
	}, nil
}

// REST returns the Gateway's REST client: use it for every other call with
// the same token, so that Discord's global rate limit is kept.
func (g *Gateway) REST() *REST { return g.rest }

// ValidateToken checks that s looks like a bot token: three dot-separated
// parts, no spaces. Its errors never contain the token.
func ValidateToken(s string) error {
	if s == "" {
		return errors.New("no Discord bot token")
	}
	if strings.HasPrefix(s, "Bot ") {
		return errors.New(`the Discord token starts with "Bot ": give the token alone`)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("the Discord token contains spaces or control characters")
	}
	if parts := strings.Split(s, "."); len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return errors.New("the Discord token does not look like a bot token (three parts separated by dots)")
	}
	return nil
}

// Run fetches /gateway/bot, connects every shard and delivers events until
// ctx is done (then it closes the connections and returns nil) or a shard
// fails fatally (then it closes the others and returns that error: a
// *CloseError, an *HTTPError, or the Handler's error).
func (g *Gateway) Run(ctx context.Context) error {
	if g.cfg.Assign != nil {
		return g.runAssigned(ctx)
	}
	gb, n, ids, err := g.open(ctx)
	if err != nil || gb == nil {
		return err
	}
	g.log.Info("connecting to the Discord Gateway", "url", gb.URL, "shards", n, "running", shardRange(ids),
		"intents", g.cfg.Intents.String(), "max_concurrency", g.maxConc,
		"session_starts_remaining", gb.SessionStartLimit.Remaining)

	shards := make([]*shard, len(ids))
	for i, id := range ids {
		shards[i] = newShard(g, id, n)
	}
	g.mu.Lock()
	g.shards = shards
	g.mu.Unlock()

	eg, ectx := errgroup.WithContext(ctx)
	for _, s := range shards {
		eg.Go(func() error { return s.run(ectx) })
	}
	err = eg.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

// open reads /gateway/bot and checks the shard plan; a nil GatewayBot
// with a nil error means ctx ended.
func (g *Gateway) open(ctx context.Context) (*GatewayBot, int, []int, error) {
	gb, err := g.rest.GatewayBot(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, nil, nil
		}
		return nil, 0, nil, fmt.Errorf("ask Discord for the Gateway URL: %w", err)
	}
	plan := ShardPlan{Count: g.cfg.Shards, IDs: g.cfg.ShardIDs}
	warnings, err := plan.Check(gb)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("shards: %w", err)
	}
	for _, w := range warnings {
		g.log.Warn("shards: " + w)
	}
	n, ids := plan.Shards(gb.Shards)
	g.gatewayURL = gb.URL
	g.maxConc = gb.SessionStartLimit.MaxConcurrency
	g.budget = gb.SessionStartLimit
	return &gb, n, ids, nil
}

// Health returns nil while every shard is connected, or has been
// disconnected for less than maxDown; otherwise an error naming the shard.
func (g *Gateway) Health(maxDown time.Duration) error {
	g.mu.Lock()
	shards, start := g.shards, g.start
	g.mu.Unlock()
	now := g.cfg.Now()
	if shards == nil {
		if now.Sub(start) > maxDown {
			return fmt.Errorf("Discord Gateway not connected after %s", now.Sub(start).Round(time.Second))
		}
		return nil
	}
	for _, s := range shards {
		if since, down := s.down(); down && now.Sub(since) > maxDown {
			return fmt.Errorf("Discord Gateway shard %d down for %s", s.id, now.Sub(since).Round(time.Second))
		}
	}
	return nil
}

// Stats are counters since New.
type Stats struct {
	Identifies   int64 // IDENTIFYs sent (new sessions)
	Resumes      int64 // sessions resumed (RESUMED received)
	Reconnects   int64 // connections ended and retried, any reason
	Zombies      int64 // connections closed for a missing heartbeat ACK
	SessionsLost int64 // sessions Discord invalidated: events in the gap are not replayed
	Replayed     int64 // events replayed by Discord between RESUME and RESUMED
}

// Stats returns the counters.
func (g *Gateway) Stats() Stats {
	return Stats{
		Identifies:   int64(g.m.identifies.Value()),
		Resumes:      int64(g.m.resumes.Value()),
		Reconnects:   int64(g.m.reconnectTotal.Value()),
		Zombies:      int64(g.m.reconnects.With("zombie").Value()),
		SessionsLost: int64(g.m.sessionsLost.Value()),
		Replayed:     int64(g.m.replayed.Value()),
	}
}

// identifySlot waits until this shard may IDENTIFY: within the daily
// session-start budget, and one IDENTIFY per max_concurrency bucket per
// IdentifyInterval.
func (g *Gateway) identifySlot(ctx context.Context, shardID int) error {
	if err := g.takeBudget(ctx); err != nil {
		return err
	}
	if g.cfg.IdentifyGate != nil {
		return nil // paced by the gate, right before sending
	}
	g.idMu.Lock()
	bucket := shardID % g.maxConc
	now := g.cfg.Now()
	at := g.nextIdentify[bucket]
	if at.Before(now) {
		at = now
	}
	g.nextIdentify[bucket] = at.Add(g.cfg.IdentifyInterval)
	g.idMu.Unlock()
	return sleepCtx(ctx, at.Sub(now))
}

// identifyNow waits, if needed, until IdentifyInterval has passed since the
// last IDENTIFY sent in this shard's bucket (connection set-up times vary, so
// the reservation made before dialing is not enough), and records the send.
func (g *Gateway) identifyNow(ctx context.Context, shardID int) error {
	if g.cfg.IdentifyGate != nil {
		return g.cfg.IdentifyGate(ctx, shardID)
	}
	bucket := shardID % g.maxConc
	for {
		g.idMu.Lock()
		now := g.cfg.Now()
		// A tenth of the interval as margin for network jitter: Discord
		// measures the gap between IDENTIFYs as it receives them.
		wait := g.lastIdentify[bucket].Add(g.cfg.IdentifyInterval + g.cfg.IdentifyInterval/10).Sub(now)
		if wait <= 0 {
			g.lastIdentify[bucket] = now
			g.idMu.Unlock()
			return nil
		}
		g.idMu.Unlock()
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

func (g *Gateway) takeBudget(ctx context.Context) error {
	g.budgetMu.Lock()
	defer g.budgetMu.Unlock()
	for n := 0; g.budget.Remaining <= 0; n++ {
		gb, err := g.rest.GatewayBot(ctx)
		if err != nil {
			return fmt.Errorf("refresh the session-start budget: %w", err)
		}
		g.budget = gb.SessionStartLimit
		if g.budget.Remaining > 0 {
			break
		}
		// reset_after is clamped to MaxRetryAfter; a budget still empty
		// after it waits longer each time (1 s, 2 s, 4 s ... 5 min).
		wait := max(time.Duration(g.budget.ResetAfter)*time.Millisecond, min(time.Second<<min(n, 9), 5*time.Minute))
		g.log.Error("Discord's daily session-start budget is used up; waiting for it to reset before identifying",
			"total", g.budget.Total, "resets_in", wait)
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
	g.budget.Remaining--
	return nil
}

type gatewayMetrics struct {
	identifies     metrics.Counter
	resumes        metrics.Counter
	reconnects     metrics.CounterVec
	reconnectTotal metrics.Counter
	sessionsLost   metrics.Counter
	replayed       metrics.Counter
	connected      metrics.Gauge
	latency        metrics.GaugeVec
}

func newGatewayMetrics(r *metrics.Registry) gatewayMetrics {
	return gatewayMetrics{
		identifies: r.NewCounter("cordstream_discord_identifies_total", "IDENTIFYs sent to the Gateway (new sessions)."),
		resumes:    r.NewCounter("cordstream_discord_resumes_total", "Sessions resumed (RESUMED received)."),
		reconnects: r.NewCounterVec("cordstream_discord_reconnects_total",
			"Gateway connections ended and retried, by reason.", "reason"),
		reconnectTotal: r.NewCounter("cordstream_discord_reconnects_all_total", "Gateway connections ended and retried, any reason."),
		sessionsLost: r.NewCounter("cordstream_discord_sessions_lost_total",
			"Sessions Discord invalidated; events sent while disconnected were not replayed."),
		replayed:  r.NewCounter("cordstream_discord_replayed_events_total", "Events Discord replayed on RESUME."),
		connected: r.NewGauge("cordstream_discord_shards_connected", "Shards with a live, identified or resumed session."),
		latency: r.NewGaugeVec("cordstream_discord_heartbeat_latency_seconds",
			"Time between the last heartbeat and its ACK.", "shard"),
	}
}
