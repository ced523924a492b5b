package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/testio"
)

// TestMissingMessageContentWarns: connected without the Message Content
// intent, Discord (here the simulator) sends guild messages with empty
// content; the bot says once how to enable the intent, and still publishes.
func TestMissingMessageContentWarns(t *testing.T) {
	fk := newFakeKafka(t)
	srv := newE2ESim(t, nil)
	g := srv.AddGuild("g")
	ch := srv.AddChannel(g.ID, "general")
	alice := srv.AddUser(sim.User{Username: "alice"})
	logs := &testio.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	m := NewMetrics(nil)
	pub, err := NewPublisher(PublisherConfig{Topic: testTopic, Metrics: m, Log: log}, fk.newClient())
	if err != nil {
		t.Fatal(err)
	}
	b := New(Config{Log: log, Metrics: m, Filter: Filter{IncludeBots: true, IncludeWebhooks: true}}, pub)
	gw, err := discord.New(discord.Config{Token: srv.Token(), APIURL: srv.APIURL(), Handler: b.Handle, Log: log,
		Intents: discord.IntentGuilds | discord.IntentGuildMessages})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, gw, pub.Run) }()
	for i := range 25 {
		waitUntil(t, 5*time.Second, func() bool { return gw.Health(0) == nil })
		if _, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: fmt.Sprint("secret ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, func() bool { return m.Counts().Published == 25 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "Message Content intent is probably missing"); n != 1 {
		t.Errorf("%d warnings, want 1; logs:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "Bot -> Privileged Gateway Intents -> Message Content Intent") {
		t.Error("the warning does not say where to enable the intent")
	}
}
