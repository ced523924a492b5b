//go:build !race

// disgo v0.18.15's gateway has data races of its own (heartbeatCancel is
// written by its heartbeat goroutine and read by CloseWithCode without
// synchronisation), which the race detector reports on every reconnect; so
// this compatibility test runs only without -race (disgo_race_test.go says
// so under -race).

package sim

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/disgoorg/disgo/gateway"
	"github.com/disgoorg/disgo/rest"
	"github.com/disgoorg/snowflake/v2"
)

// disgoEvent is what the disgo gateway handed to its event handler.
type disgoEvent struct {
	t       gateway.EventType
	seq     int
	content string
	id      string
}

// TestDisgoGateway connects disgo v0.18's gateway with its defaults
// (per-payload zlib, resume on resume_gateway_url) and checks it identifies,
// receives messages and gets every message across each fault that Discord
// would replay.
func TestDisgoGateway(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	events := make(chan disgoEvent, 1000)
	handler := func(et gateway.EventType, seq int, shard int, ev gateway.EventData) {
		e := disgoEvent{t: et, seq: seq}
		if m, ok := ev.(gateway.EventMessageCreate); ok {
			e.content, e.id = m.Content, m.ID.String()
		}
		events <- e
	}
	g := gateway.New(s.Token(), handler, nil,
		gateway.WithURL(s.GatewayURL()),
		gateway.WithIntents(gateway.IntentGuilds, gateway.IntentGuildMessages, gateway.IntentDirectMessages, gateway.IntentMessageContent),
		gateway.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())

	waitFor := func(et gateway.EventType) {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e.t == et {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s from disgo", et)
			}
		}
	}
	// expectMessages posts contents and checks disgo hands each over once, in order.
	var last int
	expectMessages := func(before func(), contents ...string) {
		t.Helper()
		if before != nil {
			before()
		}
		for _, c := range contents {
			post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: c})
		}
		for i := 0; i < len(contents); {
			select {
			case e := <-events:
				if e.t != gateway.EventTypeMessageCreate {
					continue
				}
				if e.content != contents[i] {
					t.Fatalf("disgo got %q, want %q", e.content, contents[i])
				}
				if e.seq <= last {
					t.Fatalf("seq %d after %d", e.seq, last)
				}
				last = e.seq
				i++
			case <-ctx.Done():
				t.Fatalf("disgo got %d of %q", i, contents)
			}
		}
	}

	waitFor(gateway.EventTypeReady)
	waitFor(gateway.EventTypeGuildCreate)
	expectMessages(nil, "hello 👋", "世界")
	if st := s.Stats(); st.Identifies != 1 {
		t.Fatalf("identifies: %d", st.Identifies)
	}

	// TCP drop: disgo reconnects to resume_gateway_url and resumes; the
	// messages posted while it was away are replayed.
	expectMessages(func() { s.DropConnections() }, "during drop 1", "during drop 2")
	waitResumes(t, s, 1)

	// op 7: disgo closes with 1012 and resumes.
	expectMessages(func() { s.SendReconnect() }, "after op 7")
	waitResumes(t, s, 2)

	// op 9 true: disgo resumes.
	expectMessages(func() { s.InvalidateSessions(true) }, "after op 9 true")
	waitResumes(t, s, 3)

	// op 9 false: disgo identifies anew (messages meanwhile are not
	// replayed by Discord, so post only once READY came).
	s.InvalidateSessions(false)
	waitFor(gateway.EventTypeReady)
	last = 0
	expectMessages(nil, "after op 9 false")

	st := s.Stats()
	if st.Identifies != 2 || st.Resumes != 3 || st.ResumesOnMainURL != 0 {
		t.Errorf("stats: identifies %d resumes %d (main URL %d), want 2, 3, 0", st.Identifies, st.Resumes, st.ResumesOnMainURL)
	}
	// disgo closes with 1012 on op 7 and op 9 true, with 1000 on op 9 false;
	// after the TCP drop there is nothing left to send a close frame on.
	if st.ClientCloses[1012] != 2 || st.ClientCloses[1000] != 1 {
		t.Errorf("client closes: %v, want 1012 twice and 1000 once", st.ClientCloses)
	}
}

func waitResumes(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Resumes < n {
		if time.Now().After(deadline) {
			t.Fatalf("resumes: %d, want %d", s.Stats().Resumes, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDisgoHeartbeatsAndZombie: disgo heartbeats every interval and gets
// ACKs; when ACKs stop (a zombie connection) disgo v0.18 does not notice
// and does not reconnect — the gap a bot on top of it has to close.
func TestDisgoHeartbeatsAndZombie(t *testing.T) {
	s := newTestServer(t, Config{HeartbeatInterval: 100 * time.Millisecond})
	world(s)
	ready := make(chan struct{}, 10)
	g := gateway.New(s.Token(), func(et gateway.EventType, _ int, _ int, _ gateway.EventData) {
		if et == gateway.EventTypeReady {
			ready <- struct{}{}
		}
	}, nil,
		gateway.WithURL(s.GatewayURL()),
		gateway.WithIntents(gateway.IntentGuilds, gateway.IntentGuildMessages),
		gateway.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err := g.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no READY")
	}
	time.Sleep(450 * time.Millisecond)
	st := s.Stats()
	if st.Heartbeats < 3 || st.HeartbeatACKs != st.Heartbeats {
		t.Fatalf("heartbeats %d acks %d, want at least 3, all ACKed", st.Heartbeats, st.HeartbeatACKs)
	}
	s.StopHeartbeatACKs(true)
	time.Sleep(500 * time.Millisecond)
	st2 := s.Stats()
	if st2.Heartbeats <= st.Heartbeats+2 {
		t.Errorf("heartbeats went from %d to %d while zombie, want disgo to keep sending", st.Heartbeats, st2.Heartbeats)
	}
	if st2.Connections != 1 {
		t.Errorf("connections: %d; disgo v0.18 was expected not to detect the zombie (if it does now, update the notes)", st2.Connections)
	}
}

// TestDisgoREST: disgo's REST client parses the simulator's answers.
func TestDisgoREST(t *testing.T) {
	s := newTestServer(t, Config{Shards: 2})
	_, ch, u := world(s)
	var posted []Message
	for i := 0; i < 5; i++ {
		posted = append(posted, post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "m" + itoa(i)}))
	}
	r := rest.New(rest.NewClient(s.Token(), rest.WithURL(s.APIURL()),
		rest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))))
	gb, err := r.GetGatewayBot()
	if err != nil {
		t.Fatal(err)
	}
	if gb.URL != s.GatewayURL() || gb.Shards != 2 || gb.SessionStartLimit.MaxConcurrency != 1 {
		t.Errorf("gateway/bot: %+v", gb)
	}
	msgs, err := r.GetMessages(snowflake.ID(ch.ID), 0, 0, snowflake.ID(posted[1].ID), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Content != "m3" || msgs[1].Content != "m2" {
		t.Fatalf("messages after m1: %+v", msgs)
	}
	if !msgs[1].CreatedAt.Equal(posted[2].Timestamp) || msgs[1].Author.ID != snowflake.ID(u.ID) || msgs[1].Author.GlobalName == nil {
		t.Errorf("message: %+v", msgs[1])
	}
	if _, err := rest.New(rest.NewClient(NewToken(9, nil), rest.WithURL(s.APIURL()),
		rest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))).GetGatewayBot(); err == nil {
		t.Error("bad token accepted")
	}
}
