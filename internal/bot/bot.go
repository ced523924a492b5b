package bot

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord"
)

// Feed produces message events into a handler until ctx ends (then it
// returns nil) or it fails. *discord.Gateway is the Feed.
type Feed interface {
	Run(ctx context.Context) error
}

// Config configures the pipeline.
type Config struct {
	Filter  Filter
	Content ContentMode // ContentKeep when empty
	Log     *slog.Logger
	Metrics *Metrics // a private set when nil
	// ShutdownTimeout bounds the final flush (10 s when zero).
	ShutdownTimeout time.Duration
	// EmptyContentSample is how many consecutive guild messages with empty
	// content trigger the Message Content intent warning (20 when zero).
	EmptyContentSample int
	// Cursors, when set, tracks per channel which creates were handled,
	// for the REST backfill.
	Cursors *Cursors
	// Recent remembers the create ids taken in this run, to drop a second
	// copy (NewRecentIDs(100000) when nil). Share it with the Spooled outlet
	// so that records replayed from the spool count as taken.
	Recent *RecentIDs
}

// Bot is the pipeline: Handle is the Gateway's handler; Run drives a Feed
// and shuts the Outlet down.
type Bot struct {
	cfg   Config
	out   Outlet
	m     *Metrics
	log   *slog.Logger
	watch contentWatch
	seen  *RecentIDs

	abortCtx context.Context
	abort    context.CancelFunc
}

// New returns a pipeline publishing into out.
func New(cfg Config, out Outlet) *Bot {
	if cfg.Content == "" {
		cfg.Content = ContentKeep
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.EmptyContentSample <= 0 {
		cfg.EmptyContentSample = 20
	}
	if cfg.Recent == nil {
		cfg.Recent = NewRecentIDs(100000)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "bot")
	b := &Bot{cfg: cfg, out: out, m: cfg.Metrics, log: log}
	b.abortCtx, b.abort = context.WithCancel(context.Background())
	b.watch = contentWatch{sample: cfg.EmptyContentSample, log: log, gauge: cfg.Metrics.noContent}
	b.seen = cfg.Recent
	return b
}

// Metrics returns the pipeline's counters.
func (b *Bot) Metrics() *Metrics { return b.m }

// Handle is the discord.Handler: it counts the event, drops a create
// already taken in this run, filters it, applies the content mode and
// publishes it. It blocks while the outlet is full and returns an error only
// when ctx ends first.
func (b *Bot) Handle(ctx context.Context, ev *discord.Event) error {
	b.m.addReceived(string(ev.Message.Kind))
	if ev.Err != nil {
		b.m.addFailed(FailMalformed)
		b.log.Error("cannot read a Discord message event; not published", "type", ev.Type, "shard", ev.Shard,
			"seq", ev.Seq, "message_id", ev.Message.MessageID, "err", ev.Err)
		return nil
	}
	b.cfg.Cursors.Live(&ev.Message)
	b.watch.observe(ev)
	return b.take(ctx, ev)
}

// HandleBackfill takes a message the REST backfill fetched: like Handle,
// but counted as backfilled (not received) and without the content watch.
func (b *Bot) HandleBackfill(ctx context.Context, ev *discord.Event) error {
	b.m.addBackfilled()
	if ev.Err != nil {
		b.m.addFailed(FailMalformed)
		b.log.Error("cannot read a message fetched through REST; not published", "message_id", ev.Message.MessageID,
			"channel_id", ev.Message.ChannelID, "err", ev.Err)
		return nil
	}
	return b.take(ctx, ev)
}

func (b *Bot) take(ctx context.Context, ev *discord.Event) error {
	if ev.Message.Kind == chat.KindCreate && !b.seen.Add(ev.Message.MessageID) {
		b.m.addFiltered(FilterDuplicate)
		return nil
	}
	if reason := b.cfg.Filter.Decide(ev); reason != "" {
		b.m.addFiltered(reason)
		b.cfg.Cursors.Done(&ev.Message)
		return nil
	}
	msg := ev.Message
	b.cfg.Content.Apply(&msg)
	b.cfg.Cursors.Accept(&msg)
	return b.out.Publish(ctx, &msg, ev.ReceivedAt)
}

// RecentIDs remembers the last limit message ids (oldest forgotten first).
// It is safe for concurrent use.
type RecentIDs struct {
	mu    sync.Mutex
	limit int
	set   map[string]struct{}
	ring  []string
	next  int
}

// NewRecentIDs remembers up to limit ids (at least 1).
func NewRecentIDs(limit int) *RecentIDs {
	return &RecentIDs{limit: max(limit, 1), set: map[string]struct{}{}}
}

// Add reports whether id is new, and remembers it.
func (r *RecentIDs) Add(id string) bool {
	if r == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return false
	}
	if len(r.ring) < r.limit {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % r.limit
	}
	r.set[id] = struct{}{}
	return true
}

var _ discord.Handler = (*Bot)(nil).Handle

// Run runs feed until ctx ends or feed fails, then closes the outlet
// (flushing under ShutdownTimeout) and logs the counts. monitors (e.g. the
// Publisher's Run) run alongside until then. It returns feed's error joined
// with the outlet's (records not delivered), or nil.
func (b *Bot) Run(ctx context.Context, feed Feed, monitors ...func(context.Context) error) error {
	mctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, mon := range monitors {
		wg.Go(func() {
			if err := mon(mctx); err != nil {
				b.log.Error("monitor failed", "err", err)
			}
		})
	}
	feedErr := feed.Run(ctx)
	if feedErr != nil && ctx.Err() != nil && errors.Is(feedErr, context.Canceled) {
		feedErr = nil
	}
	c := b.m.Counts()
	b.log.Info("stopped reading from Discord; flushing to Kafka", "waiting", c.Buffered, "deadline", b.cfg.ShutdownTimeout)
	fctx, cancel := context.WithTimeout(b.abortCtx, b.cfg.ShutdownTimeout)
	outErr := b.out.Close(fctx)
	cancel()
	stop()
	wg.Wait()
	c = b.m.Counts()
	b.log.Info("bot stopped", "received", c.Received, "published", c.Published, "failed", c.Failed,
		"filtered", c.Filtered, "backpressure_pauses", c.Backpressure, "backfilled", c.Backfilled,
		"replayed_from_spool", c.Replayed, "left_in_spool", c.Spooled)
	return errors.Join(feedErr, outErr)
}

// Feeds runs several feeds as one (e.g. the Gateway and the REST
// backfill): until ctx ends, or one fails (then the others are stopped and
// its error returned).
func Feeds(fs ...Feed) Feed { return feeds(fs) }

type feeds []Feed

func (s feeds) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(s))
	for _, f := range s {
		go func() { errs <- f.Run(ctx) }()
	}
	var first error
	for range s {
		err := <-errs
		if err != nil && first == nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
			first = err
			cancel()
		}
	}
	return first
}

// Abort cuts the final flush short (a second Ctrl-C): records still
// unacknowledged are failed and counted at once.
func (b *Bot) Abort() { b.abort() }

// contentWatch warns once when guild messages keep arriving without content,
// the sign of a missing Message Content intent.
type contentWatch struct {
	mu     sync.Mutex
	sample int
	empty  int
	done   bool
	log    *slog.Logger
	gauge  interface{ Set(float64) }
}

func (w *contentWatch) observe(ev *discord.Event) {
	m := &ev.Message
	if m.Kind != chat.KindCreate || m.GuildID == nil || ev.FromSelf || ev.MentionsSelf ||
		(ev.MessageType != discord.MessageTypeDefault && ev.MessageType != discord.MessageTypeReply) {
		return // content is either always sent or legitimately empty
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	if (m.Content != nil && *m.Content != "") || ev.HasBody {
		w.done = true // content arrives: the intent is in effect
		return
	}
	w.empty++
	if w.empty >= w.sample {
		w.done = true
		w.gauge.Set(1)
		w.log.Warn("the last guild messages all arrived with empty content and no attachments or embeds: "+
			"the Message Content intent is probably missing; enable it at "+discord.PortalURL+
			" -> your application -> Bot -> Privileged Gateway Intents -> Message Content Intent, then restart the bot",
			"messages", w.empty)
	}
}
