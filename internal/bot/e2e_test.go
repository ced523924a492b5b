package bot

// End-to-end tests: the Discord simulator -> the Gateway adapter -> this
// pipeline -> the real Kafka broker (scripts/test starts it), then the topic
// is read back and compared with what the simulator sent.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
	"github.com/cordstream/cordstream/internal/metrics"
	"github.com/cordstream/cordstream/internal/testio"
)

const e2eHeartbeat = 200 * time.Millisecond

func newE2ESim(t *testing.T, mod func(*sim.Config)) *sim.Server {
	t.Helper()
	cfg := sim.Config{
		PrivilegedIntents: sim.IntentMessageContent,
		HeartbeatInterval: e2eHeartbeat,
		GatewaySendLimit:  100000,
		IdentifyInterval:  -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv := sim.New(cfg)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// pipeline is a running bot: gateway, pipeline and publisher.
type pipeline struct {
	gw     *discord.Gateway
	bot    *Bot
	reg    *metrics.Registry
	logs   *testio.Buffer
	cancel context.CancelFunc
	done   chan error
	topic  string
}

type pipelineOpts struct {
	filter  *Filter
	content ContentMode
	updates bool
}

func startPipeline(t *testing.T, srv *sim.Server, topic string, o pipelineOpts) *pipeline {
	t.Helper()
	logs := &testio.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := metrics.NewRegistry()
	m := NewMetrics(reg)
	kcfg := kafkatest.Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	pub, err := NewPublisher(PublisherConfig{Topic: topic, Metrics: m, Log: log},
		func(opts ...kgo.Opt) (*kgo.Client, error) { return kafka.NewClient(ctx, kcfg, log, opts...) })
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	f := Filter{IncludeBots: true, IncludeWebhooks: true}
	if o.filter != nil {
		f = *o.filter
	}
	b := New(Config{Filter: f, Content: o.content, Log: log, Metrics: m, ShutdownTimeout: 10 * time.Second}, pub)
	gw, err := discord.New(discord.Config{
		Token: srv.Token(), APIURL: srv.APIURL(), Intents: discord.DefaultIntents | discord.IntentDirectMessages,
		Handler: b.Handle, Updates: o.updates, Log: log, Metrics: reg,
		IdentifyInterval: 10 * time.Millisecond, InvalidSessionMin: 10 * time.Millisecond,
		InvalidSessionMax: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &pipeline{gw: gw, bot: b, reg: reg, logs: logs, cancel: cancel, done: make(chan error, 1), topic: topic}
	go func() { p.done <- b.Run(ctx, gw, pub.Run) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop cancels the bot and returns Run's error (once; later calls return nil).
func (p *pipeline) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	select {
	case err, ok := <-p.done:
		if ok {
			close(p.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("bot did not stop within 20s")
	}
	return nil
}

func (p *pipeline) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.gw.Health(0) != nil || p.gw.Stats().Identifies == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v\nlast log lines:\n%s", p.gw.Health(0), tail(p.logs.String(), 40))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPublished waits until n records were acknowledged.
func (p *pipeline) waitPublished(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for p.bot.Metrics().Counts().Published < n {
		if time.Now().After(deadline) {
			t.Fatalf("published %d, want %d (counts %+v, gateway %+v); last log lines:\n%s",
				p.bot.Metrics().Counts().Published, n, p.bot.Metrics().Counts(), p.gw.Stats(), tail(p.logs.String(), 40))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readTopic returns every record of topic.
func readTopic(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), want, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// decodeAll decodes records, checks their keys, and indexes them by id.
func decodeAll(t *testing.T, recs []*kgo.Record) (map[string][]chat.Message, map[string][]string) {
	t.Helper()
	byID := map[string][]chat.Message{}
	raw := map[string][]string{}
	for _, r := range recs {
		m, err := chat.Decode(r.Value)
		if err != nil {
			t.Fatalf("record %s does not decode: %v", r.Value, err)
		}
		if string(r.Key) != string(m.Key()) {
			t.Errorf("record key %q, want %q", r.Key, m.Key())
		}
		byID[m.MessageID] = append(byID[m.MessageID], m)
		raw[m.MessageID] = append(raw[m.MessageID], string(r.Value))
	}
	return byID, raw
}

func strp(s string) *string { return &s }

// expected is the record a posted message must become.
func expected(m sim.Message) chat.Message {
	want := chat.Message{
		Kind: chat.KindCreate, MessageID: m.ID.String(), ChannelID: m.ChannelID.String(),
		AuthorID: strp(m.Author.ID.String()), AuthorName: strp(m.Author.Username),
		AuthorIsBot: m.Author.Bot || m.Author.Webhook, Content: strp(m.Content), Timestamp: m.Timestamp,
	}
	if m.GuildID != 0 {
		want.GuildID = strp(m.GuildID.String())
	}
	if m.Author.GlobalName != "" && !m.Author.Webhook {
		want.AuthorGlobalName = strp(m.Author.GlobalName)
	}
	if m.Author.Webhook {
		want.WebhookID = strp(m.Author.ID.String())
	}
	return want
}

func encode(t *testing.T, m chat.Message) string {
	t.Helper()
	b, err := chat.Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEndToEndEveryPayloadShape(t *testing.T) {
	topic := kafkatest.Topic(t, 3)
	srv := newE2ESim(t, nil)
	g := srv.AddGuild("Café ☕ 日本")
	ch := srv.AddChannel(g.ID, "general")
	alice := srv.AddUser(sim.User{Username: "alice", GlobalName: "Alice ✨"})
	bob := srv.AddUser(sim.User{Username: "bob"}) // global_name null, discriminator "0"
	robot := srv.AddUser(sim.User{Username: "robot", Bot: true})
	hook := srv.AddWebhook("Deploy Hook")
	dm := srv.AddDM(alice.ID)
	p := startPipeline(t, srv, topic, pipelineOpts{})
	p.waitReady(t)

	long := strings.Repeat("日本語のテキスト 🎉👩‍👩‍👧 ação naïve שלום \u2028 \"quoted\" back\\slash\nnew line\t", 30)
	first, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "hello world"})
	if err != nil {
		t.Fatal(err)
	}
	specs := []sim.MessageSpec{
		{ChannelID: ch.ID, AuthorID: hook.ID, Content: "deployed v1.2.3"},                                                                  // webhook
		{ChannelID: dm.ID, AuthorID: alice.ID, Content: "a DM, no guild_id"},                                                               // DM
		{ChannelID: ch.ID, AuthorID: bob.ID, Content: "agreed", ReplyTo: first.ID},                                                         // reply, global_name null
		{ChannelID: ch.ID, AuthorID: bob.ID, Type: sim.TypeMemberJoin},                                                                     // system message
		{ChannelID: ch.ID, AuthorID: alice.ID, Attachments: []sim.Attachment{{Filename: "cat.png", Size: 1234, ContentType: "image/png"}}}, // attachment, empty content
		{ChannelID: ch.ID, AuthorID: alice.ID, Content: long},                                                                              // long Unicode
		{ChannelID: ch.ID, AuthorID: robot.ID, Content: "beep boop"},                                                                       // bot account
		{ChannelID: ch.ID, AuthorID: alice.ID, Content: "<@" + srv.Bot().ID.String() + "> hi", Mentions: []sim.ID{srv.Bot().ID}},
	}
	for _, s := range specs {
		if _, err := srv.Post(s); err != nil {
			t.Fatal(err)
		}
	}
	sent := srv.Sent()
	p.waitPublished(t, int64(len(sent)))
	if err := p.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	recs := readTopic(t, topic)
	if len(recs) != len(sent) {
		t.Errorf("topic holds %d records, sim sent %d messages", len(recs), len(sent))
	}
	byID, raw := decodeAll(t, recs)
	for _, m := range sent {
		got := raw[m.ID.String()]
		if len(got) != 1 {
			t.Errorf("message %s (%q): %d records, want 1", m.ID, m.Content, len(got))
			continue
		}
		if want := encode(t, expected(m)); got[0] != want {
			t.Errorf("message %s:\n got %s\nwant %s", m.ID, got[0], want)
		}
	}
	if dmRec := byID[sent[2].ID.String()]; len(dmRec) == 1 && dmRec[0].GuildID != nil {
		t.Errorf("DM record has guild_id %v, want null", *dmRec[0].GuildID)
	}
	c := p.bot.Metrics().Counts()
	if c.Received != int64(len(sent)) || c.Published != int64(len(sent)) || c.Failed != 0 || c.Filtered != 0 {
		t.Errorf("counts = %+v, want %d received and published", c, len(sent))
	}
	if !strings.Contains(p.logs.String(), "bot stopped") {
		t.Error("no final counts in the log")
	}
}

// TestEndToEndFaults: under each fault, every message Discord replays reaches
// Kafka exactly once; after a non-resumable INVALID_SESSION what was sent in
// the gap is not replayed by Discord (the loss is counted), and everything
// before and after it arrives exactly once.
func TestEndToEndFaults(t *testing.T) {
	tests := []struct {
		name     string
		inject   func(*sim.Server)
		replayed bool
	}{
		{"TCP drop", func(s *sim.Server) { s.DropConnections() }, true},
		{"zombie heartbeat", func(s *sim.Server) { s.StopHeartbeatACKs(true) }, true},
		{"op 7 reconnect", func(s *sim.Server) { s.SendReconnect() }, true},
		{"op 9 resumable", func(s *sim.Server) { s.InvalidateSessions(true) }, true},
		{"op 9 not resumable", func(s *sim.Server) { s.InvalidateSessions(false) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := kafkatest.Topic(t, 2)
			srv := newE2ESim(t, nil)
			g := srv.AddGuild("g")
			ch := srv.AddChannel(g.ID, "general")
			users := []sim.User{srv.AddUser(sim.User{Username: "a"}), srv.AddUser(sim.User{Username: "b", GlobalName: "B"})}
			p := startPipeline(t, srv, topic, pipelineOpts{})
			p.waitReady(t)
			postN := func(n int, label string) []sim.Message {
				var out []sim.Message
				for i := range n {
					m, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: users[i%2].ID, Content: fmt.Sprint(label, " ", i)})
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, m)
				}
				return out
			}
			before := postN(20, "before")
			p.waitPublished(t, 20)
			identifies := srv.Stats().Identifies
			tt.inject(srv)
			during := postN(20, "during")
			if tt.replayed {
				p.waitPublished(t, 40)
			} else {
				deadline := time.Now().Add(10 * time.Second)
				for srv.Stats().Identifies == identifies || p.gw.Health(0) != nil {
					if time.Now().After(deadline) {
						t.Fatalf("no new session; last log lines:\n%s", tail(p.logs.String(), 40))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			published := p.bot.Metrics().Counts().Published
			after := postN(20, "after")
			p.waitPublished(t, published+20)
			if err := p.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}

			_, raw := decodeAll(t, readTopic(t, topic))
			must := append(append([]sim.Message{}, before...), after...)
			if tt.replayed {
				must = append(must, during...)
			}
			for _, m := range must {
				got := raw[m.ID.String()]
				if len(got) != 1 {
					t.Errorf("message %q: %d records, want 1", m.Content, len(got))
					continue
				}
				if want := encode(t, expected(m)); got[0] != want {
					t.Errorf("message %s:\n got %s\nwant %s", m.ID, got[0], want)
				}
			}
			sentIDs := map[string]bool{}
			for _, m := range srv.Sent() {
				sentIDs[m.ID.String()] = true
			}
			for id, recs := range raw {
				if !sentIDs[id] {
					t.Errorf("record for message %s that the simulator never sent", id)
				}
				if len(recs) > 1 {
					t.Errorf("message %s published %d times; the simulator sent it once", id, len(recs))
				}
			}
			st := p.gw.Stats()
			if tt.replayed && st.SessionsLost != 0 {
				t.Errorf("SessionsLost = %d, want 0", st.SessionsLost)
			}
			if !tt.replayed && st.SessionsLost != 1 {
				t.Errorf("SessionsLost = %d, want 1 (the gap must be counted)", st.SessionsLost)
			}
			if tt.name == "zombie heartbeat" && st.Zombies < 1 {
				t.Errorf("Zombies = %d, want >= 1", st.Zombies)
			}
		})
	}
}

func TestEndToEndEditsDeletesAndPrivacy(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	srv := newE2ESim(t, nil)
	g := srv.AddGuild("g")
	ch := srv.AddChannel(g.ID, "general")
	other := srv.AddChannel(g.ID, "random")
	alice := srv.AddUser(sim.User{Username: "alice"})
	hook := srv.AddWebhook("hook")
	robot := srv.AddUser(sim.User{Username: "robot", Bot: true})
	f := Filter{IncludeBots: false, IncludeWebhooks: false, ExcludeChannels: map[string]bool{other.ID.String(): true}}
	p := startPipeline(t, srv, topic, pipelineOpts{filter: &f, content: ContentHash, updates: true})
	p.waitReady(t)

	m, _ := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "hello"})
	srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: hook.ID, Content: "hook"})
	srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: robot.ID, Content: "bot"})
	srv.Post(sim.MessageSpec{ChannelID: other.ID, AuthorID: alice.ID, Content: "elsewhere"})
	if _, err := srv.Edit(ch.ID, m.ID, "hello, edited"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Delete(ch.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	p.waitPublished(t, 3)
	deadline := time.Now().Add(10 * time.Second)
	for p.bot.Metrics().Counts().Filtered < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.stop(t)
	recs := readTopic(t, topic)
	if len(recs) != 3 {
		t.Fatalf("topic holds %d records, want 3 (create, update, delete)", len(recs))
	}
	var kinds []chat.Kind
	for _, r := range recs {
		msg, _ := chat.Decode(r.Value)
		kinds = append(kinds, msg.Kind)
		if msg.MessageID != m.ID.String() {
			t.Errorf("record for %s, want only %s", msg.MessageID, m.ID)
		}
		switch msg.Kind {
		case chat.KindCreate, chat.KindUpdate:
			if msg.Content == nil || !strings.HasPrefix(*msg.Content, "sha256:") || len(*msg.Content) != 7+64 {
				t.Errorf("%s content = %v, want a sha256 hash", msg.Kind, msg.Content)
			}
			if string(r.Key) != alice.ID.String() {
				t.Errorf("%s key %q, want author id", msg.Kind, r.Key)
			}
		case chat.KindDelete:
			if msg.AuthorID != nil || msg.Content != nil || string(r.Key) != m.ID.String() {
				t.Errorf("delete = %+v key %q, want no author or content, keyed by message id", msg, r.Key)
			}
			if !msg.Timestamp.Equal(m.Timestamp.Truncate(time.Millisecond)) {
				t.Errorf("delete timestamp %v, want the creation time %v from the snowflake", msg.Timestamp, m.Timestamp)
			}
		}
	}
	if len(kinds) != 3 || kinds[0] != chat.KindCreate || kinds[1] != chat.KindUpdate || kinds[2] != chat.KindDelete {
		t.Errorf("kinds in order = %v, want create, update, delete", kinds)
	}
	c := p.bot.Metrics().Counts()
	if c.Filtered != 3 || c.Received != 6 {
		t.Errorf("counts = %+v, want 6 received, 3 filtered (webhook, bot, excluded channel)", c)
	}
}

// TestEndToEndFatalAndNoTokenLeak: fatal closes end the pipeline with the
// clear error and no reconnect; the token is in no log line, error or metric.
func TestEndToEndFatalAndNoTokenLeak(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*sim.Config)
		inject func(*sim.Server)
		want   string
	}{
		{"4014 without the Message Content intent", func(c *sim.Config) { c.PrivilegedIntents = 0 }, nil, "Privileged Gateway Intents"},
		{"4004 mid-session", nil, func(s *sim.Server) { s.CloseAll(4004) }, "rejected the token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := kafkatest.Topic(t, 1)
			srv := newE2ESim(t, tt.mod)
			g := srv.AddGuild("g")
			ch := srv.AddChannel(g.ID, "general")
			alice := srv.AddUser(sim.User{Username: "alice"})
			p := startPipeline(t, srv, topic, pipelineOpts{})
			if tt.inject != nil {
				p.waitReady(t)
				srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "one"})
				p.waitPublished(t, 1)
				tt.inject(srv)
			}
			var err error
			select {
			case err = <-p.done:
				close(p.done)
			case <-time.After(10 * time.Second):
				t.Fatal("bot did not stop after a fatal close")
			}
			if err == nil {
				t.Fatal("Run = nil, want the fatal error")
			}
			var h interface{ Hint() string }
			text := err.Error()
			if errorsAs(err, &h) {
				text += " hint: " + h.Hint()
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("error %q does not mention %q", text, tt.want)
			}
			identifies := srv.Stats().Identifies + srv.Stats().InvalidIdentifies
			time.Sleep(3 * e2eHeartbeat)
			if got := srv.Stats().Identifies + srv.Stats().InvalidIdentifies; got != identifies {
				t.Errorf("identify attempts went from %d to %d after the fatal close", identifies, got)
			}
			var metricsText strings.Builder
			p.reg.WriteTo(&metricsText)
			for what, s := range map[string]string{"logs": p.logs.String(), "error": text, "metrics": metricsText.String()} {
				if strings.Contains(s, srv.Token()) {
					t.Errorf("the token appears in the %s", what)
				}
			}
		})
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
