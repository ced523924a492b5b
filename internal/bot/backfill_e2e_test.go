package bot

// End-to-end tests of the spool and the REST backfill: the Discord
// simulator -> Gateway + REST -> spool -> the real Kafka broker.

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
	"github.com/cordstream/cordstream/internal/metrics"
	"github.com/cordstream/cordstream/internal/spool"
	"github.com/cordstream/cordstream/internal/testio"
)

// durable is a running bot wired like the command: spool (when dir is
// set), positions, Kafka publisher, Gateway and backfill.
type durable struct {
	*pipeline
	bf      *Backfiller
	cursors *Cursors
}

func startDurable(t *testing.T, srv *sim.Server, topic, dir string) *durable {
	t.Helper()
	logs := &testio.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := metrics.NewRegistry()
	m := NewMetrics(reg)
	kcfg := kafkatest.Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	var sp *spool.Spool
	var rec spool.Recovery
	cpath := ""
	if dir != "" {
		var err error
		sp, rec, err = spool.Open(dir, spool.Options{Log: log})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		cpath = filepath.Join(dir, CursorsFile)
	}
	cursors, err := LoadCursors(cpath, nil, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pcfg := PublisherConfig{Topic: topic, Metrics: m, Log: log}
	if sp == nil {
		pcfg.Cursors = cursors
	}
	pub, err := NewPublisher(pcfg, func(opts ...kgo.Opt) (*kgo.Client, error) { return kafka.NewClient(ctx, kcfg, log, opts...) })
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var out Outlet = pub
	monitors := []func(context.Context) error{pub.Run, func(ctx context.Context) error { return cursors.Run(ctx, 100*time.Millisecond) }}
	if sp != nil {
		s := NewSpooled(SpooledConfig{Spool: sp, Publisher: pub, Replayed: rec.Entries, Cursors: cursors, Log: log, Metrics: m})
		out = s
		monitors = append(monitors, s.Run)
	}
	b := New(Config{Filter: Filter{IncludeBots: true, IncludeWebhooks: true}, Log: log, Metrics: m, ShutdownTimeout: 10 * time.Second, Cursors: cursors}, out)
	var bf *Backfiller
	gw, err := discord.New(discord.Config{
		Token: srv.Token(), APIURL: srv.APIURL(), Intents: discord.DefaultIntents | discord.IntentDirectMessages,
		Handler: b.Handle, Log: log, Metrics: reg,
		IdentifyInterval: 10 * time.Millisecond, InvalidSessionMin: 300 * time.Millisecond,
		InvalidSessionMax: 400 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		OnReady: func(r discord.ReadyInfo) { bf.OnReady(r) },
		OnGuild: func(g discord.GuildInfo) { bf.OnGuild(g) },
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	bf = NewBackfiller(BackfillConfig{REST: gw.REST(), Cursors: cursors, Handle: b.HandleBackfill, Log: log, Metrics: m})
	p := &pipeline{gw: gw, bot: b, reg: reg, logs: logs, cancel: cancel, done: make(chan error, 1), topic: topic}
	go func() { p.done <- b.Run(ctx, Feeds(gw, bf), monitors...) }()
	t.Cleanup(func() { p.stop(t) })
	return &durable{pipeline: p, bf: bf, cursors: cursors}
}

// waitIdle waits until the backfill has nothing left to do.
func (d *durable) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !d.bf.Idle() {
		if time.Now().After(deadline) {
			t.Fatalf("backfill still busy; last log lines:\n%s", tail(d.logs.String(), 40))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func postMany(t *testing.T, srv *sim.Server, ch sim.Channel, users []sim.User, n int, label string) []sim.Message {
	t.Helper()
	var out []sim.Message
	for i := range n {
		m, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: users[i%len(users)].ID, Content: fmt.Sprint(label, " ", i)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// checkExactlyOnce checks that each message is in the topic exactly once,
// as the record it must become, and that each author's records are in
// increasing id order within one pass (live, or backfilled).
func checkTopic(t *testing.T, topic string, want []sim.Message) (dups int) {
	t.Helper()
	_, raw := decodeAll(t, readTopic(t, topic))
	wantIDs := map[string]bool{}
	for _, m := range want {
		wantIDs[m.ID.String()] = true
		got := raw[m.ID.String()]
		if len(got) == 0 {
			t.Errorf("message %s (%q) missing from Kafka", m.ID, m.Content)
			continue
		}
		dups += len(got) - 1
		if w := encode(t, expected(m)); got[0] != w {
			t.Errorf("message %s:\n got %s\nwant %s", m.ID, got[0], w)
		}
	}
	for id := range raw {
		if !wantIDs[id] {
			t.Errorf("record for message %s that was not expected", id)
		}
	}
	return dups
}

// TestEndToEndBackfillAfterSessionLoss: Discord ends the session without
// replaying it (INVALID_SESSION false) and messages are sent before the
// new session starts: the backfill fetches them; every message is in
// Kafka once.
func TestEndToEndBackfillAfterSessionLoss(t *testing.T) {
	topic := kafkatest.Topic(t, 2)
	srv := newE2ESim(t, nil)
	g := srv.AddGuild("g")
	ch := srv.AddChannel(g.ID, "general")
	users := []sim.User{srv.AddUser(sim.User{Username: "a"}), srv.AddUser(sim.User{Username: "b"})}
	d := startDurable(t, srv, topic, "")
	d.waitReady(t)
	before := postMany(t, srv, ch, users, 20, "before")
	d.waitPublished(t, 20)
	identifies := srv.Stats().Identifies
	srv.InvalidateSessions(false)
	during := postMany(t, srv, ch, users, 20, "during") // the bot waits 300 ms before identifying
	waitUntil(t, 10*time.Second, func() bool { return srv.Stats().Identifies > identifies && d.gw.Health(0) == nil })
	after := postMany(t, srv, ch, users, 20, "after")
	d.waitPublished(t, 60)
	d.waitIdle(t)
	if err := d.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	all := append(append(append([]sim.Message{}, before...), during...), after...)
	if dups := checkTopic(t, topic, all); dups != 0 {
		t.Errorf("%d duplicates within one run, want 0", dups)
	}
	c := d.bot.Metrics().Counts()
	if c.Backfilled < 20 {
		t.Errorf("backfilled %d, want at least the 20 sent in the gap (counts %+v)", c.Backfilled, c)
	}
	if st := d.gw.Stats(); st.SessionsLost != 1 {
		t.Errorf("SessionsLost = %d, want 1", st.SessionsLost)
	}
	if st := srv.Stats(); st.RESTRateLimited != 0 {
		t.Errorf("the simulator answered 429 %d times", st.RESTRateLimited)
	}
}

// TestEndToEndBackfillAfterRestart: the bot is stopped while messages keep
// coming (in a busy channel, a channel that had none before, and a channel
// the bot may not read); the restarted bot fetches them within the
// simulator's rate limits and names the missing permission.
func TestEndToEndBackfillAfterRestart(t *testing.T) {
	topic := kafkatest.Topic(t, 3)
	srv := newE2ESim(t, func(c *sim.Config) { c.RESTRouteLimit = 2; c.RESTRouteWindow = 500 * time.Millisecond })
	g := srv.AddGuild("g")
	busy := srv.AddChannel(g.ID, "busy")
	quiet := srv.AddChannel(g.ID, "quiet")
	hidden := srv.AddChannelSpec(sim.Channel{GuildID: g.ID, Name: "hidden", NoAccess: true})
	users := []sim.User{srv.AddUser(sim.User{Username: "a"}), srv.AddUser(sim.User{Username: "b", GlobalName: "B"}), srv.AddUser(sim.User{Username: "c"})}
	dir := t.TempDir()

	d := startDurable(t, srv, topic, dir)
	d.waitReady(t)
	first := postMany(t, srv, busy, users, 10, "first")
	d.waitPublished(t, 10)
	if err := d.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	// The bot is down.
	gap := postMany(t, srv, busy, users, 250, "gap")
	gap = append(gap, postMany(t, srv, quiet, users, 5, "quiet")...)
	postMany(t, srv, hidden, users, 3, "hidden") // the bot cannot read these, live or later

	d2 := startDurable(t, srv, topic, dir)
	d2.waitReady(t)
	later := postMany(t, srv, busy, users, 5, "later")
	d2.waitPublished(t, int64(len(gap)+len(later)))
	d2.waitIdle(t)
	if err := d2.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	all := append(append(append([]sim.Message{}, first...), gap...), later...)
	// The first messages were written less than LateArrival before the
	// stop: the restart fetches them again, in case one was still on its
	// way (duplicates with the same message_id); nothing else twice.
	dups := checkTopic(t, topic, all)
	if dups > len(first) {
		t.Errorf("%d duplicates after a graceful restart, want at most the %d messages of the last LateArrival", dups, len(first))
	}
	if c := d2.bot.Metrics().Counts(); c.Backfilled != int64(len(gap)+dups) {
		t.Errorf("backfilled %d, want %d (the gap) + %d (fetched again)", c.Backfilled, len(gap), dups)
	}
	if st := srv.Stats(); st.RESTRateLimited != 0 {
		t.Errorf("the simulator answered 429 %d times: the rate limits were not kept", st.RESTRateLimited)
	}
	if !strings.Contains(d2.logs.String(), "READ_MESSAGE_HISTORY") || !strings.Contains(d2.logs.String(), hidden.ID.String()) {
		t.Errorf("no warning naming the missing permission and the channel:\n%s", tail(d2.logs.String(), 30))
	}
	var metricsText strings.Builder
	d2.reg.WriteTo(&metricsText)
	for _, w := range []string{fmt.Sprint("cordstream_bot_backfilled_messages_total ", len(gap)+dups), "cordstream_bot_backfill_requests_total",
		"cordstream_bot_spool_bytes", "cordstream_bot_spool_entries 0", `cordstream_discord_rest_requests_total{route="GET /channels/{channel.id}/messages",code="200"}`,
		`cordstream_discord_rest_ratelimit_waits_total{scope="bucket"}`} {
		if !strings.Contains(metricsText.String(), w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}
