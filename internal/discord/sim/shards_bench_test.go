package sim

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPostScale posts messages to random guilds with 64 shard
// sessions, for 1,000 and 100,000 guilds: the cost per message should not
// grow with the number of guilds (compare the two ns/op).
func BenchmarkPostScale(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		b.Run(fmt.Sprintf("guilds=%d", n), func(b *testing.B) {
			s := New(Config{Shards: 64, ReplayBuffer: 64, SentLimit: 64, HistoryLimit: 4})
			gs := s.AddGuilds(n, nil, "general")
			u := s.AddUser(User{Username: "u"})
			s.mu.Lock()
			for i := range 64 {
				ss := &session{id: fmt.Sprint(i), intents: IntentGuildMessages, shardID: i, shardCount: 64,
					hasShard: true, detachedAt: time.Now().Add(time.Hour)}
				s.addSessionLocked(ss)
			}
			chans := make([]ID, len(gs))
			for i, g := range gs {
				chans[i] = s.guildChannels[g.ID][0].ID
			}
			s.mu.Unlock()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Post(MessageSpec{ChannelID: chans[(i*7919)%len(chans)], AuthorID: u.ID, Content: "x"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
