package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/spool"
)

func TestEntryCodecRoundTrip(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	for _, m := range []*chat.Message{
		testMessage(1),
		{Kind: chat.KindCreate, MessageID: "5", ChannelID: "6", AuthorID: chat.Ptr("7"), Content: chat.Ptr("dm"), Timestamp: at}, // DM
		{Kind: chat.KindDelete, MessageID: "5", ChannelID: "6", GuildID: chat.Ptr("1"), Timestamp: at},
		{Kind: chat.KindUpdate, MessageID: "5", ChannelID: "6", GuildID: chat.Ptr("1"), AuthorID: chat.Ptr("7"), Content: chat.Ptr(strings.Repeat("é", 3000)), Timestamp: at},
	} {
		val, _ := chat.Encode(m)
		entry, err := appendEntry([]byte("reused buffer"), m, at)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEntry(entry[len("reused buffer"):])
		if err != nil {
			t.Fatal(err)
		}
		guild := ""
		if m.GuildID != nil {
			guild = *m.GuildID
		}
		if got.kind != m.Kind || got.channelID != m.ChannelID || got.guildID != guild || got.messageID != m.MessageID ||
			string(got.key) != string(m.Key()) || string(got.value) != string(val) || !got.receivedAt.Equal(at) {
			t.Errorf("round trip of %+v = %+v", m, got)
		}
	}
	for _, bad := range [][]byte{nil, {2, 'c', 0, 0, 0, 0, 0, 0, 0, 0}, {1, 'x', 0, 0, 0, 0, 0, 0, 0, 0}, {1, 'c', 0, 0, 0, 0, 0, 0, 0, 0, 50}} {
		if _, err := decodeEntry(bad); err == nil {
			t.Errorf("decodeEntry(%v) accepted", bad)
		}
	}
}

type spooledRig struct {
	fk  *fakeKafka
	m   *Metrics
	sp  *spool.Spool
	s   *Spooled
	dir string
}

func newSpooledRig(t *testing.T, fk *fakeKafka, dir string, maxBytes int64) *spooledRig {
	t.Helper()
	m := NewMetrics(nil)
	pub, err := NewPublisher(PublisherConfig{Topic: testTopic, MaxBuffered: 5, StallAfter: 200 * time.Millisecond, Metrics: m}, fk.newClient())
	if err != nil {
		t.Fatal(err)
	}
	sp, rec, err := spool.Open(dir, spool.Options{MaxBytes: maxBytes, SyncEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSpooled(SpooledConfig{Spool: sp, Publisher: pub, Replayed: rec.Entries, Metrics: m})
	t.Cleanup(func() { s.Close(context.Background()) })
	return &spooledRig{fk: fk, m: m, sp: sp, s: s, dir: dir}
}

// checkKafka reads n records and checks each id appears once and each
// author's ids are in increasing order.
func checkKafka(t *testing.T, fk *fakeKafka, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	last := map[string]int{}
	for _, r := range fk.consume(t, n) {
		m, err := chat.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		seen[m.MessageID]++
		id := mustAtoi(m.MessageID)
		if id <= last[string(r.Key)] {
			t.Errorf("author %s: message %d after %d (per-author order broken)", r.Key, id, last[string(r.Key)])
		}
		last[string(r.Key)] = id
	}
	return seen
}

// TestSpooledKafkaDown: with Kafka down, Publish does not wait for Kafka
// (the spool takes the records, far more than the in-memory bound); once
// Kafka is back every record arrives once, in per-author order, and the
// spool empties.
func TestSpooledKafkaDown(t *testing.T) {
	fk := newFakeKafka(t)
	r := newSpooledRig(t, fk, t.TempDir(), 0)
	fk.down.Store(true)
	const n = 300
	start := time.Now()
	for i := range n {
		if err := r.s.Publish(context.Background(), testMessage(i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("publishing %d records with Kafka down took %v", n, d)
	}
	time.Sleep(300 * time.Millisecond)
	if c := r.m.Counts(); c.Published != 0 || c.Backpressure != 0 {
		t.Errorf("counts while Kafka is down = %+v, want nothing published and no pause", c)
	}
	if got := r.s.Pending(); got != n {
		t.Errorf("spool holds %d records, want %d", got, n)
	}
	fk.down.Store(false)
	waitUntil(t, 20*time.Second, func() bool { return r.m.Counts().Published == n })
	waitUntil(t, 5*time.Second, func() bool { return r.s.Pending() == 0 })
	if err := r.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := checkKafka(t, fk, n)
	for i := range n {
		if id := fmt.Sprint(1000 + i); seen[id] != 1 {
			t.Errorf("message %s in Kafka %d times, want 1", id, seen[id])
		}
	}
	if c := r.m.Counts(); c.Failed != 0 || c.Spooled != 0 {
		t.Errorf("final counts = %+v", c)
	}
}

// TestSpooledFullBackPressure: a full spool blocks Publish (counted) until
// Kafka acknowledges records; the spool stays within its bound.
func TestSpooledFullBackPressure(t *testing.T) {
	fk := newFakeKafka(t)
	r := newSpooledRig(t, fk, t.TempDir(), 1<<20)
	fk.down.Store(true)
	big := func(i int) *chat.Message {
		m := testMessage(i)
		m.Content = chat.Ptr(strings.Repeat("x", 20<<10))
		return m
	}
	accepted := 0
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := r.s.Publish(ctx, big(i), time.Now())
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
		if accepted > 200 {
			t.Fatal("the spool never filled up")
		}
	}
	if st := r.sp.Stats(); st.Bytes > 1<<20 {
		t.Errorf("spool holds %d bytes, above its bound", st.Bytes)
	}
	c := r.m.Counts()
	if c.Backpressure != 1 || c.Failed != 1 {
		t.Errorf("counts = %+v, want one pause and one record failed (shutdown: its context ended)", c)
	}
	done := make(chan error, 1)
	go func() { done <- r.s.Publish(context.Background(), big(1000), time.Now()) }()
	time.Sleep(100 * time.Millisecond)
	fk.down.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Publish still blocked after Kafka came back")
	}
	waitUntil(t, 20*time.Second, func() bool { return r.m.Counts().Published == int64(accepted+1) })
}

// TestSpooledShutdownKeepsAndReplays: records Kafka did not acknowledge by
// the shutdown deadline stay in the spool (not failed, Close returns nil);
// the next start publishes them first, then new ones, each once.
func TestSpooledShutdownKeepsAndReplays(t *testing.T) {
	fk := newFakeKafka(t)
	dir := t.TempDir()
	r := newSpooledRig(t, fk, dir, 0)
	fk.down.Store(true)
	for i := range 40 {
		if err := r.s.Publish(context.Background(), testMessage(i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := r.s.Close(ctx)
	cancel()
	if err != nil {
		t.Fatalf("Close = %v, want nil: the records are safe in the spool", err)
	}
	if c := r.m.Counts(); c.Spooled != 40 || c.Failed != 0 || c.Published != 0 {
		t.Errorf("counts after close = %+v, want 40 left in the spool, none failed", c)
	}

	fk.down.Store(false)
	r2 := newSpooledRig(t, fk, dir, 0)
	for i := 40; i < 50; i++ {
		if err := r2.s.Publish(context.Background(), testMessage(i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 20*time.Second, func() bool { return r2.m.Counts().Published == 50 })
	if err := r2.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := r2.m.Counts(); c.Replayed != 40 || c.Spooled != 0 {
		t.Errorf("counts after the restart = %+v, want 40 replayed, nothing left", c)
	}
	seen := checkKafka(t, fk, 50)
	for i := range 50 {
		if id := fmt.Sprint(1000 + i); seen[id] != 1 {
			t.Errorf("message %s in Kafka %d times, want 1", id, seen[id])
		}
	}
}
