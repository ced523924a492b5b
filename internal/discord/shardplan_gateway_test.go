package discord

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord/sim"
)

// TestManualShardingTwoGateways: two Gateways share a bot's 8 shards
// (0-3 and 4-7, one rate-limit bucket per shard). Each gets exactly the
// messages of its shards' guilds; together, every message once; from the
// simulator's side no shard was held twice and the pacing held.
func TestManualShardingTwoGateways(t *testing.T) {
	srv := newSim(t, func(c *sim.Config) {
		c.Shards = 8
		c.MaxConcurrency = 8
		c.IdentifyInterval = 200 * time.Millisecond
	})
	gs := srv.AddGuilds(64, nil, "general")
	u := srv.AddUser(sim.User{Username: "alice"})
	colA, colB := newCollector(), newCollector()
	a := startGateway(t, srv, colA.Handle, func(c *Config) { c.Shards = 8; c.ShardIDs = []int{3, 0, 1, 2} })
	b := startGateway(t, srv, colB.Handle, func(c *Config) { c.Shards = 8; c.ShardIDs = []int{4, 5, 6, 7} })
	a.waitReady(t)
	b.waitReady(t)
	var idsA, idsB []string
	for _, g := range gs {
		m, err := srv.Post(sim.MessageSpec{ChannelID: srv.ChannelsOf(g.ID)[0].ID, AuthorID: u.ID, Content: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		if sim.ShardOf(g.ID, 8) < 4 {
			idsA = append(idsA, m.ID.String())
		} else {
			idsB = append(idsB, m.ID.String())
		}
	}
	if len(idsA) == 0 || len(idsB) == 0 {
		t.Fatalf("guilds not spread: %d and %d messages", len(idsA), len(idsB))
	}
	colA.waitIDs(t, 5*time.Second, idsA...)
	colB.waitIDs(t, 5*time.Second, idsB...)
	time.Sleep(100 * time.Millisecond)
	for name, c := range map[string]*collector{"A": colA, "B": colB} {
		seen := map[string]bool{}
		for _, ev := range c.snapshot() {
			if name == "A" && ev.Shard >= 4 || name == "B" && ev.Shard < 4 {
				t.Errorf("gateway %s got an event of shard %d", name, ev.Shard)
			}
			if seen[ev.Message.MessageID] {
				t.Errorf("gateway %s got message %s twice", name, ev.Message.MessageID)
			}
			seen[ev.Message.MessageID] = true
		}
	}
	if n := len(colA.snapshot()) + len(colB.snapshot()); n != len(gs) {
		t.Errorf("%d events, want %d", n, len(gs))
	}
	r := srv.StartReport()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.MaxHolders != 1 || len(srv.HeldShards()) != 8 || r.SessionStarts != 8 {
		t.Errorf("max holders %d, held shards %v, starts %d", r.MaxHolders, srv.HeldShards(), r.SessionStarts)
	}
	if !strings.Contains(a.logs.String(), "running=0-3") || !strings.Contains(a.logs.String(), "runs 4 of 8 shards") {
		t.Errorf("gateway A's log does not say which shards it runs:\n%s", a.logs)
	}
}

// TestManualShardingPacingAcrossProcesses: two Gateways started at once
// whose shards share rate-limit buckets (max_concurrency 1) break the
// pacing: the simulator answers INVALID_SESSION as Discord does, the shard
// retries and connects, and the start record shows the violation (what a
// bot group must prevent by pacing IDENTIFYs for the whole group).
func TestManualShardingPacingAcrossProcesses(t *testing.T) {
	srv := newSim(t, func(c *sim.Config) {
		c.Shards = 2
		c.MaxConcurrency = 1
		c.IdentifyInterval = time.Second
	})
	a := startGateway(t, srv, newCollector().Handle, func(c *Config) {
		c.Shards = 2
		c.ShardIDs = []int{0}
		c.IdentifyInterval = time.Second
	})
	b := startGateway(t, srv, newCollector().Handle, func(c *Config) {
		c.Shards = 2
		c.ShardIDs = []int{1}
		c.IdentifyInterval = time.Second
	})
	a.waitReady(t)
	b.waitReady(t)
	r := srv.StartReport()
	if r.TooSoon == 0 {
		t.Fatalf("no IDENTIFY refused for pacing: %+v", r.Identifies)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "pacing") {
		t.Errorf("Err: %v", err)
	}
	if r.MaxHolders != 1 || r.SessionStarts != 2 {
		t.Errorf("max holders %d, starts %d", r.MaxHolders, r.SessionStarts)
	}
}

func TestGatewayShardIDsChecked(t *testing.T) {
	base := Config{Token: "MTIz.YWJj.ZGVm", Handler: newCollector().Handle}
	for _, c := range []struct {
		shards int
		ids    []int
		says   string
	}{
		{0, []int{0}, "needs Config.Shards"},
		{4, []int{4}, "between 0 and 3"},
		{4, []int{1, 1}, "named once"},
		{4, []int{-1}, "between 0 and 3"},
	} {
		cfg := base
		cfg.Shards, cfg.ShardIDs = c.shards, c.ids
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Shards %d ShardIDs %v: %v; want %q", c.shards, c.ids, err, c.says)
		}
	}
}

// TestGatewayLargeBotShardCount: with large bot sharding (max_concurrency
// 16), a shard count that is no multiple of 16 stops Run before any
// connection, with what to do.
func TestGatewayLargeBotShardCount(t *testing.T) {
	srv := newSim(t, func(c *sim.Config) { c.Shards = 16; c.MaxConcurrency = 16; c.LargeBotShardMultiple = 16 })
	rg := startGateway(t, srv, newCollector().Handle, func(c *Config) { c.Shards = 12 })
	select {
	case err := <-rg.done:
		rg.done <- err // for the cleanup
		if err == nil || !strings.Contains(err.Error(), "multiple of 16") {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if st := srv.Stats(); st.Connections != 0 {
		t.Errorf("%d connections opened", st.Connections)
	}
}

// TestIdentifyGate: with an IdentifyGate, every IDENTIFY waits for it
// (and only for it: no pacing of the Gateway's own); a gate that fails
// makes the shard try again.
func TestIdentifyGate(t *testing.T) {
	srv := newSim(t, func(c *sim.Config) { c.Shards = 2 })
	var mu sync.Mutex
	calls := map[int]int{}
	gate := func(ctx context.Context, shard int) error {
		mu.Lock()
		defer mu.Unlock()
		calls[shard]++
		if shard == 1 && calls[shard] == 1 {
			return errors.New("not yet")
		}
		return nil
	}
	rg := startGateway(t, srv, newCollector().Handle, func(c *Config) {
		c.IdentifyGate = gate
		c.IdentifyInterval = time.Hour // would hold shard 1 for an hour without the gate
	})
	rg.waitReady(t)
	mu.Lock()
	defer mu.Unlock()
	if calls[0] != 1 || calls[1] != 2 {
		t.Errorf("gate calls per shard: %v, want shard 0 once and shard 1 twice", calls)
	}
	if st := srv.Stats(); st.Identifies != 2 {
		t.Errorf("%d identifies, want 2", st.Identifies)
	}
}
