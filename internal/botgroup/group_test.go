package botgroup

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// shardRunner runs one discord.Gateway per held shard: what a group
// member's Start and Stop would drive.
type shardRunner struct {
	t      *testing.T
	srv    *sim.Server
	count  int
	pacer  *Pacer
	events func(shard int)

	mu      sync.Mutex
	running map[int]func() // shard -> stop and wait
}

func (r *shardRunner) start(shards []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, shard := range shards {
		gw, err := discord.New(discord.Config{
			Token: r.srv.Token(), APIURL: r.srv.APIURL(), Shards: r.count, ShardIDs: []int{shard},
			IdentifyGate: r.pacer.Gate, Log: slog.New(slog.DiscardHandler),
			Handler: func(ctx context.Context, ev *discord.Event) error { r.events(ev.Shard); return nil },
		})
		if err != nil {
			r.t.Error(err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := gw.Run(ctx); err != nil {
				r.t.Errorf("shard %d: %v", shard, err)
			}
		}()
		r.running[shard] = func() { cancel(); <-done }
	}
}

func (r *shardRunner) stop(shards []int, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, shard := range shards {
		if stop, ok := r.running[shard]; ok {
			stop() // returns once the connection is closed
			delete(r.running, shard)
		}
	}
}

// TestGroupAgainstSimulator: three members share 8 shards of a bot with
// max_concurrency 2, each opening a Gateway per shard it holds, paced by
// the group's Pacer. Judged from the simulator's side: every shard held,
// none ever by two connections, no IDENTIFY refused; after a member
// leaves, its shards are held again by the others, with the same verdict;
// messages to every guild are delivered.
func TestGroupAgainstSimulator(t *testing.T) {
	const shards = 8
	group := groupName(t)
	dropGroupTopic(t, group)
	dropTopic(t, IdentifyTopic(group))
	srv := sim.New(sim.Config{PrivilegedIntents: sim.IntentMessageContent, HeartbeatInterval: 200 * time.Millisecond,
		Shards: shards, MaxConcurrency: 2, IdentifyInterval: 500 * time.Millisecond})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	guilds := srv.AddGuilds(32, nil, "general")
	u := srv.AddUser(sim.User{Username: "u"})

	var evMu sync.Mutex
	events := 0
	members := map[string]*runningMember{}
	var pacers []*Pacer
	for _, name := range []string{"a", "b", "c"} {
		pacer := newPacer(t, IdentifyTopic(group), name, 2, 500*time.Millisecond, 250*time.Millisecond)
		pacers = append(pacers, pacer)
		r := &shardRunner{t: t, srv: srv, count: shards, pacer: pacer, running: map[int]func(){},
			events: func(int) { evMu.Lock(); events++; evMu.Unlock() }}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		m, err := NewMember(ctx, MemberConfig{Kafka: kafkatest.Config(t), Group: group, Shards: shards, Member: name,
			SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
			Start: r.start, Stop: r.stop, ReplicationFactor: 1})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(context.Background())
		rm := &runningMember{m: m, cancel: rcancel, done: make(chan struct{})}
		go func() {
			defer close(rm.done)
			_ = m.Run(rctx)
		}()
		t.Cleanup(rm.stop)
		members[name] = rm
	}
	waitShards := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			held := srv.HeldShards()
			full := len(held) == shards
			for _, n := range held {
				full = full && n == 1
			}
			if full {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: held %v; %v", what, held, srv.StartReport().Err())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	dump := func() {
		for _, id := range srv.StartReport().Identifies {
			t.Logf("sim: %s shard %d bucket %d conn %d %s", id.At.Format("15:04:05.000"), id.Shard, id.Bucket, id.Conn, id.Outcome)
		}
		for _, s := range pacers[0].Schedule() {
			t.Logf("slot: %s appended %s shard %d bucket %d %s", s.At.Format("15:04:05.000"), s.Appended.Format("15:04:05.000"), s.Shard, s.Bucket, s.Member)
		}
	}
	waitShards("every shard held")
	if err := srv.StartReport().Err(); err != nil {
		dump()
		t.Fatal(err)
	}
	members["b"].stop()
	waitShards("every shard held after b left")
	// Let the group settle (a later rebalance may move shards again), then
	// deliver a message to every guild.
	time.Sleep(2 * time.Second)
	waitShards("every shard held, settled")
	for _, g := range guilds {
		if _, err := srv.Post(sim.MessageSpec{ChannelID: srv.ChannelsOf(g.ID)[0].ID, AuthorID: u.ID, Content: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evMu.Lock()
		n := events
		evMu.Unlock()
		if n >= len(guilds) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered", n, len(guilds))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := srv.StartReport()
	if err := r.Err(); err != nil {
		dump()
		t.Fatal(err)
	}
	if r.MaxHolders != 1 {
		t.Errorf("max holders %d", r.MaxHolders)
	}
	t.Logf("session starts %d, identifies recorded %d", r.SessionStarts, len(r.Identifies))
}
