package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

func TestBotShardFlagErrors(t *testing.T) {
	tok := map[string]string{envDiscordToken: botTestToken}
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"ids without count", []string{"--shard-ids", "0-3"}, []string{"shard ids need a shard count", "--shard-count 16 --shard-ids 0-7"}},
		{"id beyond count", []string{"--shard-count", "4", "--shard-ids", "2-4"}, []string{"shard 4 does not exist with a shard count of 4"}},
		{"twice", []string{"--shard-count", "4", "--shard-ids", "0,1,1"}, []string{"shard 1 is named twice"}},
		{"backwards", []string{"--shard-count", "8", "--shard-ids", "5-2"}, []string{"runs backwards", "2-5"}},
		{"not a number", []string{"--shard-count", "8", "--shard-ids", "one"}, []string{`"one"`, "not a shard id"}},
		{"negative count", []string{"--shard-count", "-2"}, []string{"shard count -2"}},
		{"group and ids", []string{"--group", "g", "--shard-count", "4", "--shard-ids", "0-1"}, []string{"--group and --shard-ids exclude each other", "drop --shard-ids"}},
		{"group name", []string{"--group", "a/b"}, []string{`--group "a/b"`, "e.g. --group mybot"}},
		{"member without group", []string{"--group-member", "x"}, []string{"--group-member needs --group"}},
		{"group timeout", []string{"--group", "g", "--group-session-timeout", "2s"}, []string{"--group-session-timeout 2s: must be between 6s and 5m"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errb := runBotCLI(context.Background(), tok, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, errb)
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errb)
				}
			}
		})
	}
}

// TestBotManualSharding runs two bot processes, --shard-ids 0-1 and 2-3 of
// --shard-count 4, against the simulator and the real broker: every
// message reaches the topic, each process captured only its shards', and
// the simulator saw no shard held twice and the pacing kept.
func TestBotManualSharding(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.TopicName(t)
	t.Cleanup(func() { dropTopic(t, topic) })
	srv := botSim(t, func(c *sim.Config) { c.Shards = 4; c.MaxConcurrency = 4 })
	gs := srv.AddGuilds(16, nil, "general")
	alice := srv.AddUser(sim.User{Username: "alice"})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		errb *lockedBuffer
	}
	done := make(chan result, 2)
	for _, ids := range []string{"0-1", "2,3"} {
		spool := filepath.Join(t.TempDir(), "spool")
		go func() {
			code, _, errb := runBotCLI(ctx, map[string]string{envDiscordToken: srv.Token()},
				"--brokers", brokers, "--topic", topic, "--discord-api-url", srv.APIURL(), "--spool-dir", spool,
				"--shard-count", "4", "--shard-ids", ids)
			done <- result{code, errb}
		}()
	}
	waitUntil(t, 20*time.Second, func() bool { return len(srv.HeldShards()) == 4 })
	want := map[string]int{} // message id -> shard
	for i := range 40 {
		g := gs[i%len(gs)]
		m, err := srv.Post(sim.MessageSpec{ChannelID: srv.ChannelsOf(g.ID)[0].ID, AuthorID: alice.ID, Content: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		want[m.ID.String()] = sim.ShardOf(g.ID, 4)
	}
	recs := consumeN(t, topic, len(want))
	got := map[string]int{}
	for _, r := range recs {
		m, err := chat.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[m.MessageID]++
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("message %s reached the topic %d times, want once", id, got[id])
		}
	}
	cancel()
	for range 2 {
		select {
		case res := <-done:
			if res.code != exitOK {
				t.Errorf("exit code %d; stderr:\n%s", res.code, res.errb)
			}
			stderr := res.errb.String()
			if !strings.Contains(stderr, "running=0-1") && !strings.Contains(stderr, "running=2-3") {
				t.Errorf("the process does not log which shards it runs:\n%s", stderr)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a bot did not stop within 20s of Ctrl-C")
		}
	}
	r := srv.StartReport()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.MaxHolders != 1 || r.SessionStarts != 4 {
		t.Errorf("max holders %d, session starts %d; want 1 and 4", r.MaxHolders, r.SessionStarts)
	}
}
