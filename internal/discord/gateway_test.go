package discord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord/sim"
)

type world struct {
	guild   sim.Guild
	channel sim.Channel
	alice   sim.User
}

func newWorld(srv *sim.Server) world {
	g := srv.AddGuild("Café ☕")
	return world{guild: g, channel: srv.AddChannel(g.ID, "general"), alice: srv.AddUser(sim.User{Username: "alice", GlobalName: "Alice"})}
}

func post(t *testing.T, srv *sim.Server, w world, n int, prefix string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		m, err := srv.Post(sim.MessageSpec{ChannelID: w.channel.ID, AuthorID: w.alice.ID, Content: fmt.Sprintf("%s %d", prefix, i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID.String())
	}
	return ids
}

func TestGatewayDeliversEveryMessageInOrder(t *testing.T) {
	srv := newSim(t, nil)
	w := newWorld(srv)
	col := newCollector()
	rg := startGateway(t, srv, col.Handle, nil)
	rg.waitReady(t)

	ids := post(t, srv, w, 30, "hello")
	col.waitIDs(t, 5*time.Second, ids...)
	evs := col.snapshot()
	if len(evs) != len(ids) {
		t.Fatalf("got %d events, want %d", len(evs), len(ids))
	}
	sent := srv.Sent()
	var lastSeq int64
	for i, ev := range evs {
		if ev.Message.MessageID != ids[i] {
			t.Errorf("event %d is message %s, want %s (order)", i, ev.Message.MessageID, ids[i])
		}
		if ev.Seq <= lastSeq {
			t.Errorf("event %d seq %d not after %d", i, ev.Seq, lastSeq)
		}
		lastSeq = ev.Seq
		m := ev.Message
		want := sent[i]
		if m.Kind != chat.KindCreate || *m.AuthorID != want.Author.ID.String() || *m.AuthorName != "alice" ||
			m.AuthorGlobalName == nil || *m.AuthorGlobalName != "Alice" || *m.Content != want.Content ||
			*m.GuildID != w.guild.ID.String() || m.ChannelID != w.channel.ID.String() ||
			!m.Timestamp.Equal(want.Timestamp) {
			t.Errorf("event %d = %+v, want fields of %+v", i, m, want)
		}
		if ev.ReceivedAt.IsZero() {
			t.Errorf("event %d has no ReceivedAt", i)
		}
	}
	if st := srv.Stats(); st.Identifies != 1 || st.Connections != 1 {
		t.Errorf("sim saw %d identifies over %d connections, want 1 and 1", st.Identifies, st.Connections)
	}
}

// TestGatewayFaults checks, for each fault the Gateway can suffer, that every
// message Discord would replay arrives, and none twice.
func TestGatewayFaults(t *testing.T) {
	tests := []struct {
		name       string
		inject     func(srv *sim.Server)
		replayed   bool // messages posted right after the fault are replayed
		wantResume bool
		check      func(t *testing.T, rg *runningGateway)
	}{
		{name: "TCP drop", inject: func(s *sim.Server) { s.DropConnections() }, replayed: true, wantResume: true},
		{name: "zombie (no heartbeat ACKs)", inject: func(s *sim.Server) { s.StopHeartbeatACKs(true) }, replayed: true, wantResume: true,
			check: func(t *testing.T, rg *runningGateway) {
				if z := rg.g.Stats().Zombies; z < 1 {
					t.Errorf("Stats().Zombies = %d, want >= 1", z)
				}
			}},
		{name: "op 7 reconnect", inject: func(s *sim.Server) { s.SendReconnect() }, replayed: true, wantResume: true},
		{name: "op 9 resumable", inject: func(s *sim.Server) { s.InvalidateSessions(true) }, replayed: true, wantResume: true},
		{name: "op 9 not resumable", inject: func(s *sim.Server) { s.InvalidateSessions(false) }, replayed: false,
			check: func(t *testing.T, rg *runningGateway) {
				if n := rg.g.Stats().SessionsLost; n != 1 {
					t.Errorf("Stats().SessionsLost = %d, want 1", n)
				}
			}},
		{name: "close 4000", inject: func(s *sim.Server) { s.CloseAll(4000) }, replayed: true, wantResume: true},
		{name: "close 4009 session timed out", inject: func(s *sim.Server) { s.CloseAll(4009) }, replayed: false},
		{name: "server requests a heartbeat", inject: func(s *sim.Server) { s.RequestHeartbeat() }, replayed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSim(t, nil)
			w := newWorld(srv)
			col := newCollector()
			rg := startGateway(t, srv, col.Handle, nil)
			rg.waitReady(t)

			before := post(t, srv, w, 10, "before")
			col.waitIDs(t, 5*time.Second, before...)
			identifies := srv.Stats().Identifies
			tt.inject(srv)
			during := post(t, srv, w, 10, "during")
			// Wait until the bot is back (a fresh READY or RESUMED).
			if tt.replayed {
				col.waitIDs(t, 10*time.Second, during...)
			} else {
				waitFor(t, 10*time.Second, "new session", func() bool { return srv.Stats().Identifies > identifies })
				rg.waitReady(t)
			}
			after := post(t, srv, w, 10, "after")
			col.waitIDs(t, 10*time.Second, after...)

			counts := map[string]int{}
			for _, ev := range col.snapshot() {
				counts[ev.Message.MessageID]++
			}
			for _, id := range append(append(before, during...), after...) {
				if counts[id] > 1 {
					t.Errorf("message %s delivered %d times", id, counts[id])
				}
			}
			st := srv.Stats()
			if tt.wantResume && st.Resumes < 1 {
				t.Errorf("sim saw %d resumes, want >= 1", st.Resumes)
			}
			if tt.wantResume && st.Identifies != 1 {
				t.Errorf("sim saw %d identifies, want 1 (the session must be resumed, not replaced)", st.Identifies)
			}
			if st.ResumesOnMainURL != 0 {
				t.Errorf("%d resumes went to the main gateway URL instead of resume_gateway_url", st.ResumesOnMainURL)
			}
			if tt.check != nil {
				tt.check(t, rg)
			}
			if c := st.ClientCloses[1000] + st.ClientCloses[1001]; c != 0 && tt.wantResume {
				t.Errorf("client closed %d times with 1000/1001, which ends the session", c)
			}
		})
	}
}

func TestGatewayFatalCloseCodes(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*sim.Config)
		inject  func(*sim.Server)
		code    int
		is      error
		wantErr string
	}{
		{name: "4014 message content not enabled", mod: func(c *sim.Config) { c.PrivilegedIntents = 0 }, code: 4014, is: ErrDisallowedIntents, wantErr: "Message Content"},
		{name: "4004 token rejected mid-session", inject: func(s *sim.Server) { s.CloseAll(4004) }, code: 4004, is: ErrTokenRejected, wantErr: "rejected the token"},
		{name: "4010 invalid shard", inject: func(s *sim.Server) { s.CloseAll(4010) }, code: 4010},
		{name: "4011 sharding required", inject: func(s *sim.Server) { s.CloseAll(4011) }, code: 4011},
		{name: "4012 invalid API version", inject: func(s *sim.Server) { s.CloseAll(4012) }, code: 4012},
		{name: "4013 invalid intents", inject: func(s *sim.Server) { s.CloseAll(4013) }, code: 4013},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSim(t, tt.mod)
			newWorld(srv)
			col := newCollector()
			rg := startGateway(t, srv, col.Handle, nil)
			if tt.inject != nil {
				rg.waitReady(t)
				tt.inject(srv)
			}
			var err error
			select {
			case err = <-rg.done:
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after a fatal close")
			}
			rg.done <- err // for the cleanup
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != tt.code {
				t.Fatalf("Run() = %v, want a *CloseError with code %d", err, tt.code)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			conns := srv.Stats().Connections
			time.Sleep(3 * testHeartbeat)
			if got := srv.Stats().Connections; got != conns {
				t.Errorf("the Gateway reconnected after a fatal close: %d connections, then %d", conns, got)
			}
			if strings.Contains(rg.logs.String()+err.Error(), srv.Token()) {
				t.Error("the token appears in the logs or the error")
			}
		})
	}
}

func TestGatewayTokenRejectedByREST(t *testing.T) {
	srv := newSim(t, nil)
	rg := startGateway(t, srv, newCollector().Handle, func(c *Config) {
		c.Token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.AAAAAA.wrong-token-for-this-simulator"
	})
	var err error
	select {
	case err = <-rg.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	rg.done <- err
	if !errors.Is(err, ErrTokenRejected) {
		t.Fatalf("Run() = %v, want ErrTokenRejected", err)
	}
	if st := srv.Stats(); st.Connections != 0 || st.RESTUnauthorized != 1 {
		t.Errorf("sim saw %d gateway connections and %d REST 401s, want 0 and 1", st.Connections, st.RESTUnauthorized)
	}
	if strings.Contains(rg.logs.String()+err.Error(), "wrong-token-for-this-simulator") {
		t.Error("the token appears in the logs or the error")
	}
}

// TestGatewayBackPressure blocks the handler for several heartbeat intervals:
// the unread ACKs must not be mistaken for a zombie connection, and nothing
// is lost or duplicated.
func TestGatewayBackPressure(t *testing.T) {
	srv := newSim(t, nil)
	w := newWorld(srv)
	col := newCollector()
	rg := startGateway(t, srv, col.Handle, nil)
	rg.waitReady(t)
	release := make(chan struct{})
	col.mu.Lock()
	col.block = release
	col.mu.Unlock()
	ids := post(t, srv, w, 20, "held")
	time.Sleep(5 * testHeartbeat)
	if n := len(col.snapshot()); n != 0 {
		t.Fatalf("%d events delivered while the handler was blocked", n)
	}
	close(release)
	col.waitIDs(t, 5*time.Second, ids...)
	if n := len(col.snapshot()); n != len(ids) {
		t.Errorf("got %d events, want %d", n, len(ids))
	}
	if z := rg.g.Stats().Zombies; z != 0 {
		t.Errorf("Stats().Zombies = %d while the handler held the reader, want 0", z)
	}
}

func TestGatewayShardsAndDMs(t *testing.T) {
	srv := newSim(t, func(c *sim.Config) { c.Shards = 3; c.MaxConcurrency = 1; c.IdentifyInterval = 100 * time.Millisecond })
	var channels []sim.Channel
	for i := range 9 {
		time.Sleep(2 * time.Millisecond) // distinct snowflake times spread guilds over shards
		g := srv.AddGuild(fmt.Sprintf("guild %d", i))
		channels = append(channels, srv.AddChannel(g.ID, "general"))
	}
	bob := srv.AddUser(sim.User{Username: "bob"})
	dm := srv.AddDM(bob.ID)
	col := newCollector()
	// The client keeps a wider gap than the server enforces, as against
	// Discord (network jitter under -race is several milliseconds).
	rg := startGateway(t, srv, col.Handle, func(c *Config) { c.IdentifyInterval = 130 * time.Millisecond })
	rg.waitReady(t)
	var ids []string
	for i, ch := range append(channels, dm) {
		m, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: bob.ID, Content: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID.String())
	}
	col.waitIDs(t, 5*time.Second, ids...)
	st := srv.Stats()
	if st.Identifies != 3 || st.InvalidIdentifies != 0 {
		t.Errorf("sim saw %d identifies (%d refused), want 3 and 0", st.Identifies, st.InvalidIdentifies)
	}
	shards := map[int]bool{}
	for _, ev := range col.snapshot() {
		shards[ev.Shard] = true
		if ev.Message.GuildID == nil && ev.Shard != 0 {
			t.Errorf("DM arrived on shard %d, want 0", ev.Shard)
		}
	}
	if len(shards) < 2 {
		t.Errorf("events came from shards %v, want several", shards)
	}
}

func TestGatewayShutdownClosesCleanly(t *testing.T) {
	srv := newSim(t, nil)
	rg := startGateway(t, srv, newCollector().Handle, nil)
	rg.waitReady(t)
	if err := rg.g.Health(time.Second); err != nil {
		t.Errorf("Health = %v while connected", err)
	}
	rg.cancel()
	var err error
	select {
	case err = <-rg.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	rg.done <- err
	if err != nil {
		t.Errorf("Run() = %v after cancel, want nil", err)
	}
	waitFor(t, 2*time.Second, "client close", func() bool { return srv.Stats().ClientCloses[1000] == 1 })
	if st := srv.Stats(); st.OpenConnections != 0 {
		t.Errorf("%d connections still open", st.OpenConnections)
	}
}

func TestGatewayHealthWhileDown(t *testing.T) {
	srv := newSim(t, nil)
	addr := srv.APIURL()
	srv.Close()
	now := time.Now()
	g, err := New(Config{Token: "MTIz.a.b", APIURL: addr, Handler: newCollector().Handle, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Health(time.Minute); err != nil {
		t.Errorf("Health = %v right after start", err)
	}
	now = now.Add(2 * time.Minute)
	if err := g.Health(time.Minute); err == nil {
		t.Error("Health = nil after two minutes without a connection")
	}
}

func TestGatewayUpdatesAndDeletes(t *testing.T) {
	srv := newSim(t, nil)
	w := newWorld(srv)
	col := newCollector()
	rg := startGateway(t, srv, col.Handle, nil)
	rg.waitReady(t)
	ids := post(t, srv, w, 1, "v1")
	id, _ := sim.ParseID(ids[0])
	if _, err := srv.Edit(w.channel.ID, id, "v2"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Delete(w.channel.ID, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "3 events", func() bool { return len(col.snapshot()) == 3 })
	evs := col.snapshot()
	kinds := []chat.Kind{evs[0].Message.Kind, evs[1].Message.Kind, evs[2].Message.Kind}
	if kinds[0] != chat.KindCreate || kinds[1] != chat.KindUpdate || kinds[2] != chat.KindDelete {
		t.Fatalf("kinds = %v, want create, update, delete", kinds)
	}
	if u := evs[1].Message; *u.Content != "v2" || u.EditedTimestamp == nil {
		t.Errorf("update = %+v, want content v2 and an edited timestamp", u)
	}
	if d := evs[2].Message; d.AuthorID != nil || d.Content != nil || !d.Timestamp.Equal(evs[0].Message.Timestamp.Truncate(time.Millisecond)) {
		t.Errorf("delete = %+v, want no author or content and the creation time", d)
	}
}

func TestGatewayUpdatesOffByDefault(t *testing.T) {
	srv := newSim(t, nil)
	w := newWorld(srv)
	col := newCollector()
	rg := startGateway(t, srv, col.Handle, func(c *Config) { c.Updates = false })
	rg.waitReady(t)
	ids := post(t, srv, w, 1, "v1")
	id, _ := sim.ParseID(ids[0])
	srv.Edit(w.channel.ID, id, "v2")
	srv.Delete(w.channel.ID, id)
	marker := post(t, srv, w, 1, "marker")
	col.waitIDs(t, 5*time.Second, marker...)
	for _, ev := range col.snapshot() {
		if ev.Message.Kind != chat.KindCreate {
			t.Errorf("got a %s event with Updates off", ev.Message.Kind)
		}
	}
}

var _ = context.Background
