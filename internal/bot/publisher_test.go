package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/testio"
)

const testTopic = "discord_messages"

// fakeKafka is an in-process cluster whose produce requests can be made to
// fail, as if the broker were unreachable.
type fakeKafka struct {
	c    *kfake.Cluster
	down atomic.Bool
}

func newFakeKafka(t *testing.T) *fakeKafka {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	fk := &fakeKafka{c: c}
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if fk.down.Load() {
			return nil, errors.New("broker down"), true // closes the connection
		}
		return nil, nil, false
	})
	return fk
}

func (fk *fakeKafka) newClient(extra ...kgo.Opt) func(opts ...kgo.Opt) (*kgo.Client, error) {
	return func(opts ...kgo.Opt) (*kgo.Client, error) {
		all := append([]kgo.Opt{kgo.SeedBrokers(fk.c.ListenAddrs()...), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
			// A failed produce waits for a metadata refresh, at most every 5 s by default.
			kgo.MetadataMinAge(50 * time.Millisecond)}, opts...)
		return kgo.NewClient(append(all, extra...)...)
	}
}

func (fk *fakeKafka) consume(t *testing.T, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fk.c.ListenAddrs()...), kgo.ConsumeTopics(testTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records, want %d", len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func testMessage(i int) *chat.Message {
	return &chat.Message{Kind: chat.KindCreate, MessageID: fmt.Sprint(1000 + i), ChannelID: "10", GuildID: chat.Ptr("1"),
		AuthorID: chat.Ptr(fmt.Sprint(i % 3)), AuthorName: chat.Ptr("u"), Content: chat.Ptr(fmt.Sprint("m", i)),
		Timestamp: time.Date(2024, 5, 1, 12, 0, 0, i*int(time.Millisecond), time.UTC)}
}

func TestPublisherDeliversKeyedRecords(t *testing.T) {
	fk := newFakeKafka(t)
	m := NewMetrics(nil)
	p, err := NewPublisher(PublisherConfig{Topic: testTopic, Metrics: m}, fk.newClient())
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		if err := p.Publish(context.Background(), testMessage(i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := m.Counts()
	if c.Published != n || c.Failed != 0 || c.Buffered != 0 {
		t.Errorf("counts = %+v, want %d published", c, n)
	}
	if got := m.latency.Count(); got != n {
		t.Errorf("latency observations = %d, want %d", got, n)
	}
	recs := fk.consume(t, n)
	seen := map[string]bool{}
	for _, r := range recs {
		msg, err := chat.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != *msg.AuthorID {
			t.Errorf("record key %q, want author id %q", r.Key, *msg.AuthorID)
		}
		want, _ := chat.Encode(testMessage(int(mustAtoi(msg.MessageID)) - 1000))
		if string(r.Value) != string(want) {
			t.Errorf("value %s, want %s", r.Value, want)
		}
		seen[msg.MessageID] = true
	}
	if len(seen) != n || len(recs) != n {
		t.Errorf("%d records with %d distinct ids, want %d", len(recs), len(seen), n)
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

func TestCheckDurability(t *testing.T) {
	fk := newFakeKafka(t)
	tests := []struct {
		name string
		opt  kgo.Opt
		want string
	}{
		{"leader acks", kgo.RequiredAcks(kgo.LeaderAck()), "acks"},
		{"no idempotence", kgo.DisableIdempotentWrite(), "idempotent"},
		{"delivery timeout", kgo.RecordDeliveryTimeout(time.Minute), "delivery timeout"},
		{"retry limit", kgo.RecordRetries(10), "record retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPublisher(PublisherConfig{Topic: testTopic}, fk.newClient(tt.opt))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewPublisher err = %v, want one about %q", err, tt.want)
			}
		})
	}
	p, err := NewPublisher(PublisherConfig{Topic: testTopic}, fk.newClient())
	if err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	p.Close(context.Background())
}

// TestPublisherKafkaDown: while the broker fails every produce, records wait
// (none is failed), a full buffer blocks Publish, the pipeline says Kafka is
// unreachable, and everything is delivered once the broker is back.
func TestPublisherKafkaDown(t *testing.T) {
	fk := newFakeKafka(t)
	logs := &testio.Buffer{}
	m := NewMetrics(nil)
	p, err := NewPublisher(PublisherConfig{Topic: testTopic, MaxBuffered: 5, StallAfter: 200 * time.Millisecond,
		LogEvery: 200 * time.Millisecond, Metrics: m, Log: testLogger(logs)}, fk.newClient())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mon := make(chan error, 1)
	go func() { mon <- p.Run(ctx) }()

	fk.down.Store(true)
	for i := range 5 {
		if err := p.Publish(ctx, testMessage(i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	blocked := make(chan error, 1)
	go func() { blocked <- p.Publish(ctx, testMessage(5), time.Now()) }()
	time.Sleep(600 * time.Millisecond)
	select {
	case err := <-blocked:
		t.Fatalf("Publish returned %v with a full buffer and Kafka down, want it to block", err)
	default:
	}
	if !strings.Contains(logs.String(), "Kafka unreachable, 5 messages waiting") {
		t.Errorf("no 'Kafka unreachable' log; logs:\n%s", logs)
	}
	if err := p.Healthy(100 * time.Millisecond); err == nil {
		t.Error("Healthy = nil while Kafka is down")
	}
	c := m.Counts()
	if c.Failed != 0 || c.Published != 0 || c.Buffered != 5 || c.Backpressure != 1 {
		t.Errorf("counts while down = %+v, want 5 buffered, 1 back-pressure pause, nothing failed", c)
	}

	fk.down.Store(false)
	upAt := time.Now()
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still blocked after Kafka came back")
	}
	t.Logf("blocked Publish returned %s after Kafka came back", time.Since(upAt))
	waitUntil(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "Kafka reachable again") })
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-mon
	if c := m.Counts(); c.Published != 6 || c.Failed != 0 {
		t.Errorf("counts after recovery = %+v, want 6 published", c)
	}
	if got := len(fk.consume(t, 6)); got != 6 {
		t.Errorf("consumed %d records, want 6", got)
	}
}

// TestPublisherShutdownDeadline: records Kafka never acknowledged are failed
// (counted, logged, reported), never silently dropped.
func TestPublisherShutdownDeadline(t *testing.T) {
	fk := newFakeKafka(t)
	logs := &testio.Buffer{}
	m := NewMetrics(nil)
	p, err := NewPublisher(PublisherConfig{Topic: testTopic, MaxBuffered: 3, Metrics: m, Log: testLogger(logs)}, fk.newClient())
	if err != nil {
		t.Fatal(err)
	}
	fk.down.Store(true)
	for i := range 3 {
		p.Publish(context.Background(), testMessage(i), time.Now())
	}
	// A fourth waits for space; shutdown begins.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Publish(ctx, testMessage(3), time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked Publish = %v, want the context's error", err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer ccancel()
	err = p.Close(cctx)
	if err == nil || !strings.Contains(err.Error(), "3 messages were not acknowledged") {
		t.Errorf("Close = %v, want an error counting 3 undelivered messages", err)
	}
	c := m.Counts()
	if c.Failed != 4 || c.Published != 0 || c.Buffered != 0 {
		t.Errorf("counts = %+v, want 4 failed (3 at the deadline, 1 while waiting)", c)
	}
	if got := m.failed.With(FailShutdownTimeout).Value(); got != 3 {
		t.Errorf("failed{shutdown_timeout} = %v, want 3", got)
	}
	if got := m.failed.With(FailShutdown).Value(); got != 1 {
		t.Errorf("failed{shutdown} = %v, want 1", got)
	}
	for i := range 3 {
		if !strings.Contains(logs.String(), fmt.Sprint("message_id=", 1000+i)) {
			t.Errorf("message %d not logged as undelivered", 1000+i)
		}
	}
}

func waitUntil(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPublisherIdleOutage: with no record waiting, an outage still shows
// in Healthy (Run probes the brokers), and clears once they answer.
func TestPublisherIdleOutage(t *testing.T) {
	fk := newFakeKafka(t)
	var down atomic.Bool
	fk.c.ControlKey(kmsg.Metadata.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		fk.c.KeepControl()
		if down.Load() {
			return nil, errors.New("broker down"), true
		}
		return nil, nil, false
	})
	logs := &testio.Buffer{}
	p, err := NewPublisher(PublisherConfig{Topic: testTopic, StallAfter: 100 * time.Millisecond, ProbeEvery: 50 * time.Millisecond,
		Log: testLogger(logs)}, fk.newClient())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	mon := make(chan error, 1)
	go func() { mon <- p.Run(ctx) }()
	defer func() { cancel(); <-mon }()
	time.Sleep(200 * time.Millisecond)
	if err := p.Healthy(100 * time.Millisecond); err != nil {
		t.Fatalf("Healthy = %v with Kafka up", err)
	}
	down.Store(true)
	waitUntil(t, 5*time.Second, func() bool { return p.Healthy(300*time.Millisecond) != nil })
	if err := p.Healthy(300 * time.Millisecond); !strings.Contains(err.Error(), "no Kafka broker has answered") {
		t.Errorf("Healthy = %v", err)
	}
	if !strings.Contains(logs.String(), "Kafka does not answer") {
		t.Errorf("no log of the idle outage:\n%s", logs)
	}
	down.Store(false)
	waitUntil(t, 5*time.Second, func() bool { return p.Healthy(300*time.Millisecond) == nil })
}
