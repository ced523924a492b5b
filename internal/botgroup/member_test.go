package botgroup

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// holdTable is what the shards would be in Discord's eyes: who holds each.
// Start of a shard another member holds is a double hold.
type holdTable struct {
	mu      sync.Mutex
	holder  map[int]string
	doubles []string
	stops   map[string][]string // member -> reasons
}

func newHoldTable() *holdTable {
	return &holdTable{holder: map[int]string{}, stops: map[string][]string{}}
}

func (h *holdTable) config(member string) (func([]int), func([]int, string)) {
	start := func(shards []int) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, s := range shards {
			if other, ok := h.holder[s]; ok && other != member {
				h.doubles = append(h.doubles, fmt.Sprintf("shard %d started by %s while %s holds it", s, member, other))
			}
			h.holder[s] = member
		}
	}
	stop := func(shards []int, why string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, s := range shards {
			if h.holder[s] == member {
				delete(h.holder, s)
			}
		}
		h.stops[member] = append(h.stops[member], why)
	}
	return start, stop
}

func (h *holdTable) held() map[string][]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]int{}
	for s, m := range h.holder {
		out[m] = append(out[m], s)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

func (h *holdTable) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.doubles) > 0 {
		t.Fatalf("shards held twice: %v", h.doubles)
	}
}

type runningMember struct {
	m      *Member
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(t *testing.T, h *holdTable, group, name, instance string, shards int) *runningMember {
	t.Helper()
	start, stop := h.config(name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := NewMember(ctx, MemberConfig{Kafka: kafkatest.Config(t), Group: group, Shards: shards, Member: name,
		InstanceID: instance, SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		Start: start, Stop: stop, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rm := &runningMember{m: m, cancel: rcancel, done: make(chan struct{})}
	go func() {
		defer close(rm.done)
		if err := m.Run(rctx); err != nil {
			t.Errorf("member %s: %v", name, err)
		}
	}()
	t.Cleanup(rm.stop)
	return rm
}

func (rm *runningMember) stop() {
	rm.cancel()
	<-rm.done
}

func waitHeld(t *testing.T, h *holdTable, what string, cond func(map[string][]int) bool) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !cond(h.held()) {
		h.check(t)
		if time.Now().After(deadline) {
			t.Fatalf("%s: held %v", what, h.held())
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.check(t)
}

func covers(held map[string][]int, n int, members ...string) bool {
	total := 0
	for _, m := range members {
		if len(held[m]) == 0 {
			return false
		}
		total += len(held[m])
	}
	return total == n && len(held) == len(members)
}

func groupName(t *testing.T) string {
	return strings.TrimPrefix(kafkatest.TopicName(t), "test-")
}

func dropGroupTopic(t *testing.T, group string) { dropTopic(t, ShardsTopic(group)) }

// TestMembersShareShards: two members split 8 shards; when one leaves,
// the other holds all 8; when it comes back, they split again; no shard
// is ever held by both.
func TestMembersShareShards(t *testing.T) {
	group := groupName(t)
	dropGroupTopic(t, group)
	h := newHoldTable()
	a := startMember(t, h, group, "a", "", 8)
	b := startMember(t, h, group, "b", "", 8)
	waitHeld(t, h, "both hold shards", func(held map[string][]int) bool { return covers(held, 8, "a", "b") })
	a.stop()
	waitHeld(t, h, "b holds all after a left", func(held map[string][]int) bool { return covers(held, 8, "b") })
	if got := b.m.Held(); len(got) != 8 {
		t.Errorf("b.Held() = %v", got)
	}
	startMember(t, h, group, "c", "", 8)
	waitHeld(t, h, "b and c split", func(held map[string][]int) bool { return covers(held, 8, "b", "c") })
}

// TestMemberGoneMovesShardsAfterTimeout: a static member that stops
// without leaving (as a killed one would, from the group's side) keeps its
// shards until the session timeout; then the other member takes them.
func TestMemberGoneMovesShardsAfterTimeout(t *testing.T) {
	group := groupName(t)
	dropGroupTopic(t, group)
	h := newHoldTable()
	a := startMember(t, h, group, "a", "instance-a", 4)
	startMember(t, h, group, "b", "instance-b", 4)
	waitHeld(t, h, "both hold shards", func(held map[string][]int) bool { return covers(held, 4, "a", "b") })
	a.stop()
	waitHeld(t, h, "b holds all after a is gone", func(held map[string][]int) bool { return covers(held, 4, "b") })
}

// TestMemberFencesItself: a member that stops hearing the coordinator
// gives up its shards when its lease lapses, then joins again; no shard
// held twice meanwhile.
func TestMemberFencesItself(t *testing.T) {
	group := groupName(t)
	dropGroupTopic(t, group)
	h := newHoldTable()
	a := startMember(t, h, group, "a", "", 4)
	startMember(t, h, group, "b", "", 4)
	waitHeld(t, h, "both hold shards", func(held map[string][]int) bool { return covers(held, 4, "a", "b") })
	a.m.deaf.Store(true)
	waitHeld(t, h, "a gave its shards up", func(held map[string][]int) bool { return len(held["a"]) == 0 })
	if a.m.Fences() == 0 {
		// Fences counts once the membership ended; wait for it.
		deadline := time.Now().Add(10 * time.Second)
		for a.m.Fences() == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if a.m.Fences() != 1 {
		t.Errorf("a fenced itself %d times, want 1", a.m.Fences())
	}
	h.mu.Lock()
	reasons := strings.Join(h.stops["a"], ",")
	h.mu.Unlock()
	if !strings.Contains(reasons, "lease lapsed") {
		t.Errorf("a's stops: %s", reasons)
	}
	a.m.deaf.Store(false)
	waitHeld(t, h, "a and b split again", func(held map[string][]int) bool { return covers(held, 4, "a", "b") })
}

func TestMemberConfigChecked(t *testing.T) {
	noop := func([]int) {}
	stop := func([]int, string) {}
	for _, c := range []struct {
		cfg  MemberConfig
		says string
	}{
		{MemberConfig{Group: "g", Shards: 0, Start: noop, Stop: stop}, "shard count 0"},
		{MemberConfig{Group: "g", Shards: 2}, "Start and Stop are required"},
		{MemberConfig{Group: "g", Shards: 2, Start: noop, Stop: stop, SessionTimeout: 3 * time.Second, HeartbeatInterval: time.Second}, "too short"},
	} {
		if _, err := NewMember(t.Context(), c.cfg); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.says)
		}
	}
}

// TestMemberShardCountMismatch: an instance started with another shard
// count than the group's is refused.
func TestMemberShardCountMismatch(t *testing.T) {
	group := groupName(t)
	dropGroupTopic(t, group)
	h := newHoldTable()
	startMember(t, h, group, "a", "", 4)
	start, stop := h.config("b")
	_, err := NewMember(t.Context(), MemberConfig{Kafka: kafkatest.Config(t), Group: group, Shards: 6, Start: start, Stop: stop, ReplicationFactor: 1})
	if err == nil || !strings.Contains(err.Error(), "runs 4 shards") {
		t.Fatalf("NewMember with 6 shards in a 4-shard group: %v", err)
	}
}
