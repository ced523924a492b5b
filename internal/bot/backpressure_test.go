package bot

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/testio"
)

// TestBackPressurePausesReadingFromDiscord: with Kafka down and the buffer
// full, the bot stops reading from the Gateway (the simulator keeps the
// events), the paused reader is not mistaken for a zombie connection, and
// once Kafka is back every message is published exactly once.
func TestBackPressurePausesReadingFromDiscord(t *testing.T) {
	fk := newFakeKafka(t)
	srv := newE2ESim(t, nil)
	g := srv.AddGuild("g")
	ch := srv.AddChannel(g.ID, "general")
	alice := srv.AddUser(sim.User{Username: "alice"})

	logs := &testio.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := NewMetrics(nil)
	pub, err := NewPublisher(PublisherConfig{Topic: testTopic, MaxBuffered: 5, StallAfter: 200 * time.Millisecond,
		LogEvery: 200 * time.Millisecond, Metrics: m, Log: log}, fk.newClient())
	if err != nil {
		t.Fatal(err)
	}
	b := New(Config{Filter: Filter{IncludeBots: true, IncludeWebhooks: true}, Log: log, Metrics: m}, pub)
	gw, err := discord.New(discord.Config{Token: srv.Token(), APIURL: srv.APIURL(), Handler: b.Handle, Log: log,
		IdentifyInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, gw, pub.Run) }()
	defer func() {
		cancel()
		<-done
	}()
	waitUntil(t, 5*time.Second, func() bool { return gw.Health(0) == nil && gw.Stats().Identifies == 1 })

	fk.down.Store(true)
	var ids []string
	for i := range 30 {
		msg, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: fmt.Sprint("m", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msg.ID.String())
	}
	time.Sleep(6 * e2eHeartbeat)
	c := m.Counts()
	if c.Published != 0 || c.Buffered != 5 || c.Received != 6 || c.Backpressure != 1 {
		// 5 buffered, the 6th waits for space inside the handler: reading stopped.
		t.Errorf("counts while Kafka is down = %+v, want 6 received, 5 buffered, 1 pause", c)
	}
	if st := gw.Stats(); st.Zombies != 0 || st.Reconnects != 0 {
		t.Errorf("gateway stats while paused = %+v, want no zombie and no reconnect", st)
	}

	fk.down.Store(false)
	waitUntil(t, 15*time.Second, func() bool { return m.Counts().Published == 30 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	done <- nil
	seen := map[string]int{}
	for _, r := range fk.consume(t, 30) {
		msg, err := chat.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		seen[msg.MessageID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("message %s published %d times, want 1", id, seen[id])
		}
	}
	if c := m.Counts(); c.Received != 30 || c.Failed != 0 {
		t.Errorf("final counts = %+v, want 30 received, none failed", c)
	}
}
