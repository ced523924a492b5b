package botgroup

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

func newPacer(t *testing.T, topic, member string, mc int, interval, margin time.Duration) *Pacer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := NewPacer(ctx, PacerConfig{Kafka: kafkatest.Config(t), Topic: topic, Member: member,
		MaxConcurrency: mc, Interval: interval, Margin: margin, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func dropTopic(t *testing.T, topic string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = kafka.DeleteTopic(ctx, kafkatest.Client(t), topic)
	})
}

// TestPacerOneScheduleForAll: three instances claim IDENTIFYs for nine
// shards at once. Every instance computes the same schedule, and in each
// bucket the slots are at least Interval+Margin apart in the broker's
// time.
func TestPacerOneScheduleForAll(t *testing.T) {
	topic := kafkatest.TopicName(t)
	dropTopic(t, topic)
	const (
		mc       = 3
		interval = 200 * time.Millisecond
		margin   = 100 * time.Millisecond
	)
	members := []*Pacer{
		newPacer(t, topic, "a", mc, interval, margin),
		newPacer(t, topic, "b", mc, interval, margin),
		newPacer(t, topic, "c", mc, interval, margin),
	}
	var mu sync.Mutex
	got := map[string]Slot{}
	var wg sync.WaitGroup
	for i, p := range members {
		for shard := i * 3; shard < i*3+3; shard++ {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				s, err := p.Wait(ctx, shard)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[s.ClaimID] = s
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if len(got) != 9 {
		t.Fatalf("%d claims served, want 9", len(got))
	}
	// Every instance reads every claim (missed slots are claimed again,
	// so there may be more than nine): the same schedule.
	var want []Slot
	waitSchedules := time.Now().Add(30 * time.Second)
	for {
		a, b, c := members[0].Schedule(), members[1].Schedule(), members[2].Schedule()
		if slices.Equal(a, b) && slices.Equal(b, c) && hasAll(a, got) {
			want = a
			break
		}
		if time.Now().After(waitSchedules) {
			t.Fatalf("schedules differ:\n%v\n%v\n%v", a, b, c)
		}
		time.Sleep(10 * time.Millisecond)
	}
	last := map[int]time.Time{}
	served := map[int]int{}
	for _, s := range want {
		if g, ok := got[s.ClaimID]; ok {
			if g != s {
				t.Errorf("claim %s: served %+v, scheduled %+v", s.ClaimID, g, s)
			}
			served[s.Bucket]++
		}
		if s.Bucket != s.Shard%mc || s.At.Before(s.Appended) {
			t.Errorf("slot %+v", s)
		}
		if prev, ok := last[s.Bucket]; ok && s.At.Sub(prev) < interval+margin {
			t.Errorf("bucket %d: slots %s apart, want at least %s", s.Bucket, s.At.Sub(prev), interval+margin)
		}
		last[s.Bucket] = s.At
	}
	for b := range mc {
		if served[b] != 3 {
			t.Errorf("bucket %d: %d claims served, want 3", b, served[b])
		}
	}
	if n := members[0].StartsSince(time.Now().Add(-time.Hour)); n != len(want) {
		t.Errorf("StartsSince: %d, want %d (every claim counts)", n, len(want))
	}
}

// TestPacerRefusesProducerClock: a claims topic that keeps the producers'
// clocks is refused with the command that fixes it.
func TestPacerRefusesProducerClock(t *testing.T) {
	topic := kafkatest.Topic(t, 1) // CreateTime, the broker's default
	_, err := NewPacer(t.Context(), PacerConfig{Kafka: kafkatest.Config(t), Topic: topic, MaxConcurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "message.timestamp.type=LogAppendTime") {
		t.Fatalf("NewPacer on a CreateTime topic: %v", err)
	}
}

// TestPacerCreatesTopic: the claims topic is made with one partition and
// the broker's clock.
func TestPacerCreatesTopic(t *testing.T) {
	topic := kafkatest.TopicName(t)
	dropTopic(t, topic)
	newPacer(t, topic, "a", 1, time.Second, 0)
	adm := kadm.NewClient(kafkatest.Client(t))
	td, err := adm.ListTopics(t.Context(), topic)
	if err != nil || len(td[topic].Partitions) != 1 {
		t.Fatalf("topic %s: %v %v", topic, td[topic], err)
	}
	rcs, err := adm.DescribeTopicConfigs(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On(topic, nil)
	for _, c := range rc.Configs {
		if c.Key == "message.timestamp.type" && c.MaybeValue() != "LogAppendTime" {
			t.Errorf("message.timestamp.type = %s", c.MaybeValue())
		}
	}
}

// TestPacerTwoGatewaysOneBucket: two Gateways run the two shards of a bot
// whose max_concurrency is 1 (both shards in one rate-limit bucket),
// started at once. Without shared pacing the simulator refuses one
// IDENTIFY (TestManualShardingPacingAcrossProcesses in internal/discord);
// with the group's Pacer as their IdentifyGate, the simulator sees the
// pacing kept and each shard held once.
func TestPacerTwoGatewaysOneBucket(t *testing.T) {
	topic := kafkatest.TopicName(t)
	dropTopic(t, topic)
	srv := sim.New(sim.Config{PrivilegedIntents: sim.IntentMessageContent, HeartbeatInterval: 200 * time.Millisecond,
		Shards: 2, MaxConcurrency: 1, IdentifyInterval: time.Second})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	g := srv.AddGuilds(8, nil, "general")
	u := srv.AddUser(sim.User{Username: "u"})

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); wg.Wait() })
	var mu sync.Mutex
	events := map[int]int{}
	for shard := range 2 {
		p := newPacer(t, topic, fmt.Sprintf("instance-%d", shard), 1, time.Second, 500*time.Millisecond)
		gw, err := discord.New(discord.Config{
			Token: srv.Token(), APIURL: srv.APIURL(), Shards: 2, ShardIDs: []int{shard},
			IdentifyGate: p.Gate, Log: slog.New(slog.DiscardHandler),
			Handler: func(ctx context.Context, ev *discord.Event) error {
				mu.Lock()
				events[ev.Shard]++
				mu.Unlock()
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := gw.Run(ctx); err != nil {
				t.Errorf("gateway of shard %d: %v", shard, err)
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(srv.HeldShards()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("shards held: %v; start record: %+v", srv.HeldShards(), srv.StartReport())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, gu := range g {
		if _, err := srv.Post(sim.MessageSpec{ChannelID: srv.ChannelsOf(gu.ID)[0].ID, AuthorID: u.ID, Content: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		mu.Lock()
		n := events[0] + events[1]
		mu.Unlock()
		if n == len(g) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered", n, len(g))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := srv.StartReport()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.SessionStarts != 2 || r.MaxHolders != 1 {
		t.Errorf("session starts %d, max holders %d; want 2 and 1", r.SessionStarts, r.MaxHolders)
	}
}

func hasAll(schedule []Slot, served map[string]Slot) bool {
	n := 0
	for _, s := range schedule {
		if _, ok := served[s.ClaimID]; ok {
			n++
		}
	}
	return n == len(served)
}

// TestPacerBudget: with a budget of three starts a day, the fourth claim
// waits (here until its context ends) and Remaining says when one frees up.
func TestPacerBudget(t *testing.T) {
	topic := kafkatest.TopicName(t)
	dropTopic(t, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := NewPacer(ctx, PacerConfig{Kafka: kafkatest.Config(t), Topic: topic, Member: "a", MaxConcurrency: 16,
		Interval: 10 * time.Millisecond, Margin: 100 * time.Millisecond, SessionStartLimit: 3, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Claims until the budget is used up (a claim whose slot was missed
	// and claimed again counts too).
	served := 0
	for shard := range 4 {
		short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
		_, err := p.Wait(short, shard)
		cancelShort()
		if err != nil {
			break
		}
		served++
	}
	if served < 1 || served > 3 {
		t.Fatalf("%d starts served with a budget of 3", served)
	}
	left, free := p.Remaining()
	if left != 0 || time.Until(free) < 23*time.Hour {
		t.Fatalf("remaining %d, next free at %s; want 0, in about a day", left, free)
	}
	if n := len(p.Schedule()); n != 3 {
		t.Errorf("%d claims in the log, want 3 (none made while the budget is used up)", n)
	}
}
