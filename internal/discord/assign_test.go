package discord

import (
	"context"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord/sim"
)

// assigned runs a Gateway with Config.Assign and hands its Shards out.
func assigned(t *testing.T, srv *sim.Server, h Handler) (*runningGateway, *Shards) {
	t.Helper()
	got := make(chan *Shards, 1)
	rg := startGateway(t, srv, h, func(c *Config) {
		c.Shards = 4
		c.Assign = func(ctx context.Context, s *Shards) error {
			got <- s
			<-ctx.Done()
			return nil
		}
	})
	select {
	case s := <-got:
		return rg, s
	case <-time.After(5 * time.Second):
		t.Fatal("Assign was not called")
	}
	return nil, nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAssignHandOverAndResume: a shard started on one Gateway is handed
// over without ending its session; a message sent while no one holds it
// reaches the second Gateway, which resumes the session from the first
// one's sequence (Discord replays it): no IDENTIFY, no shard held twice.
func TestAssignHandOverAndResume(t *testing.T) {
	srv := newSim(t, func(c *sim.Config) { c.Shards = 4; c.MaxConcurrency = 4 })
	gs := srv.AddGuilds(4, nil, "general")
	u := srv.AddUser(sim.User{Username: "alice"})
	var g0 sim.Guild
	for _, g := range gs {
		if sim.ShardOf(g.ID, 4) == 0 {
			g0 = g
		}
	}
	ch := srv.ChannelsOf(g0.ID)[0]
	colA, colB := newCollector(), newCollector()
	_, a := assigned(t, srv, colA.Handle)
	_, b := assigned(t, srv, colB.Handle)
	if a.Count() != 4 || a.MaxConcurrency() != 4 {
		t.Fatalf("count %d, max_concurrency %d", a.Count(), a.MaxConcurrency())
	}
	if err := a.Start(0, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(4); err == nil {
		t.Error("shard 4 of 4 was accepted")
	}
	waitUntil(t, "shards 0 and 1 held", func() bool { return srv.ShardHolders(0, 4) == 1 && srv.ShardHolders(1, 4) == 1 })
	m1, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "one"})
	if err != nil {
		t.Fatal(err)
	}
	colA.waitIDs(t, 5*time.Second, m1.ID.String())
	var seq1 int64
	for _, ev := range colA.snapshot() {
		if ev.Message.MessageID == m1.ID.String() {
			seq1 = ev.Seq
		}
	}
	// The sequence moves once the Handler has returned.
	var st Session
	waitUntil(t, "shard 0's sequence at the first message", func() bool {
		var ok bool
		st, ok = a.Session(0)
		return ok && st.Seq >= seq1
	})
	a.Stop(0)
	// Stop returns once the connection is closed on this side; the
	// simulator notices as it reads the close.
	waitUntil(t, "shard 0 released", func() bool { return srv.ShardHolders(0, 4) == 0 })
	if got := a.Running(); len(got) != 1 || got[0] != 1 {
		t.Errorf("running %v, want [1]", got)
	}
	m2, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "two"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.StartFrom(map[int]Session{0: st}, 0); err != nil {
		t.Fatal(err)
	}
	colB.waitIDs(t, 5*time.Second, m2.ID.String())
	for _, ev := range colB.snapshot() {
		if ev.Message.MessageID == m1.ID.String() {
			t.Error("the resumed session replayed a message from before its sequence")
		}
	}
	rep := srv.StartReport()
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.SessionStarts != 2 || rep.MaxHolders != 1 {
		t.Errorf("session starts %d (want 2: the resume is not one), max holders %d", rep.SessionStarts, rep.MaxHolders)
	}
	// The sequence moves once the Handler has returned.
	waitUntil(t, "the resumed session past the stored sequence", func() bool {
		st2, ok := b.Session(0)
		return ok && st2.ID == st.ID && st2.Seq > st.Seq
	})
}
