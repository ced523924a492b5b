package botgroup

import (
	"strings"
	"sync"
	"testing"

	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// TestSessionStore: the latest record of each shard wins, a forgotten
// session is gone, another shard count's sessions are not mixed in, and a
// second store (another instance) reads the same.
func TestSessionStore(t *testing.T) {
	group := groupName(t)
	dropTopic(t, SessionsTopic(group))
	st, err := NewSessionStore(t.Context(), kafkatest.Config(t), group, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.Load(t.Context(), 4); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v %v", got, err)
	}
	puts := []SessionState{
		{Shard: 0, ShardCount: 4, SessionID: "s0", Seq: 10, ResumeURL: "wss://r0", Holder: "a"},
		{Shard: 1, ShardCount: 4, SessionID: "s1", Seq: 3, Holder: "a"},
		{Shard: 2, ShardCount: 4, SessionID: "s2", Seq: 7, Holder: "b"},
		{Shard: 0, ShardCount: 4, SessionID: "s0", Seq: 42, ResumeURL: "wss://r0", Holder: "a"},
		{Shard: 1, ShardCount: 8, SessionID: "other", Seq: 1, Holder: "c"},
	}
	for _, p := range puts {
		if err := st.Put(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Forget(t.Context(), 2, 4); err != nil {
		t.Fatal(err)
	}
	other, err := NewSessionStore(t.Context(), kafkatest.Config(t), group, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	got, err := other.Load(t.Context(), 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 42 || got[0].ResumeURL != "wss://r0" || got[1].SessionID != "s1" || got[0].WrittenAt.IsZero() {
		t.Errorf("loaded %+v", got)
	}
	if _, ok := got[2]; ok {
		t.Error("a forgotten session came back")
	}
	if got8, _ := other.Load(t.Context(), 8); len(got8) != 1 || got8[1].SessionID != "other" {
		t.Errorf("count 8: %+v", got8)
	}
	for _, bad := range []SessionState{{Shard: 0, ShardCount: 4}, {Shard: 4, ShardCount: 4, SessionID: "x"}, {Shard: 0, ShardCount: 1, SessionID: "x", Seq: -1}} {
		if err := st.Put(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "not a session") {
			t.Errorf("Put(%+v): %v", bad, err)
		}
	}
}

func TestAckFrontier(t *testing.T) {
	f := NewAckFrontier(0)
	f.Track(1, true) // READY
	f.Track(2, true) // GUILD_CREATE
	f.Track(3, false)
	f.Track(4, false)
	f.Track(5, true) // filtered
	f.Track(6, false)
	if got := f.Frontier(); got != 2 {
		t.Fatalf("frontier %d, want 2 (3 not acknowledged)", got)
	}
	f.Ack(4)
	if got := f.Frontier(); got != 2 {
		t.Fatalf("after ack 4: %d, want 2", got)
	}
	f.Ack(3)
	if got := f.Frontier(); got != 5 {
		t.Fatalf("after ack 3: %d, want 5", got)
	}
	f.Track(5, false) // a replayed event: already below the frontier
	f.Track(4, false)
	f.Ack(6)
	if got := f.Frontier(); got != 6 {
		t.Fatalf("after ack 6: %d, want 6", got)
	}
	// A resumed session starts from its recorded seq.
	g := NewAckFrontier(100)
	g.Track(99, false)
	g.Track(101, false)
	if got := g.Frontier(); got != 100 {
		t.Fatalf("resumed: %d, want 100", got)
	}
	// Concurrent acks.
	h := NewAckFrontier(0)
	for i := int64(1); i <= 1000; i++ {
		h.Track(i, false)
	}
	var wg sync.WaitGroup
	for w := int64(0); w < 4; w++ {
		wg.Go(func() {
			for i := 1000 - w; i >= 1; i -= 4 {
				h.Ack(i)
			}
		})
	}
	wg.Wait()
	if got := h.Frontier(); got != 1000 {
		t.Fatalf("after every ack: %d, want 1000", got)
	}
}
