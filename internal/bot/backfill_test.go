package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/testio"
)

// fakeHistory serves channel histories like Discord: the limit messages
// right after "after", and records the requests.
type fakeHistory struct {
	mu       sync.Mutex
	msgs     map[string][]uint64 // channel -> ascending ids
	fail     map[string]error
	requests []string
}

func (f *fakeHistory) ChannelMessages(ctx context.Context, ch, after string, limit int) ([]json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, ch+">"+after)
	if err := f.fail[ch]; err != nil {
		if he, ok := err.(*discord.HTTPError); ok && he.Status >= 500 {
			delete(f.fail, ch) // a server error passes
		}
		return nil, err
	}
	a, _ := strconv.ParseUint(after, 10, 64)
	var out []json.RawMessage
	for _, id := range f.msgs[ch] {
		if id > a && len(out) < limit {
			out = append(out, json.RawMessage(fmt.Sprintf(`{"id":"%d","channel_id":%q,"author":{"id":"42","username":"u"},"content":"m%d","timestamp":"2024-05-01T12:00:00.000000+00:00","type":0}`, id, ch, id)))
		}
	}
	return out, nil
}

// sink records what the backfill hands over.
type handled struct {
	mu  sync.Mutex
	ids map[string][]uint64
	c   *Cursors
}

func (h *handled) handle(_ context.Context, ev *discord.Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !ev.Backfill || ev.Err != nil {
		return fmt.Errorf("unexpected event %+v", ev)
	}
	id, _ := strconv.ParseUint(ev.Message.MessageID, 10, 64)
	h.ids[ev.Message.ChannelID] = append(h.ids[ev.Message.ChannelID], id)
	h.c.Accept(&ev.Message)
	h.c.Done(&ev.Message)
	return nil
}

func ids(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// snow returns a snowflake of time t plus n.
func snow(t time.Time, n uint64) uint64 { return SnowflakeAt(t) + n }

func TestBackfillerPagesHoldsAndStops(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	base := snow(now.Add(-time.Hour), 0)
	c, _ := LoadCursors("", func() time.Time { return now.Add(-2 * time.Hour) }, nil)
	// Positions as a previous run left them.
	c.Done(create("10", fmt.Sprint(base+5))) // busy channel
	c.Done(create("20", fmt.Sprint(base+1))) // the live stream takes over at base+30
	c.Done(create("30", fmt.Sprint(base+9))) // nothing new
	c.Done(create("40", fmt.Sprint(base+1))) // no permission
	c.Done(create("50", fmt.Sprint(base+1))) // deleted
	c.Done(create("60", fmt.Sprint(base+1))) // fails, then works
	dm := create("70", fmt.Sprint(base+1))   // a DM, not in any guild
	dm.GuildID = nil
	c.Done(dm)
	c.existed = true
	hist := &fakeHistory{
		msgs: map[string][]uint64{
			"10": ids(base+1, base+260), "20": ids(base+1, base+100), "30": ids(base+1, base+9),
			"60": ids(base+1, base+3), "70": ids(base+1, base+4),
		},
		fail: map[string]error{
			"40": &discord.HTTPError{Method: "GET", URL: "x", Status: http.StatusForbidden, Body: `{"message":"Missing Access","code":50001}`},
			"50": &discord.HTTPError{Method: "GET", URL: "x", Status: http.StatusNotFound},
			"60": &discord.HTTPError{Method: "GET", URL: "x", Status: 502},
		},
	}
	h := &handled{ids: map[string][]uint64{}, c: c}
	logs := &testio.Buffer{}
	t0 := time.Now()
	clock := func() time.Time { return now.Add(time.Since(t0)) }
	b := NewBackfiller(BackfillConfig{REST: hist, Cursors: c, Handle: h.handle, Now: clock,
		Log: testLogger(logs), RetryBackoff: 50 * time.Millisecond})
	b.OnReady(discord.ReadyInfo{Shard: 0, ShardCount: 1, SelfID: "1", GuildIDs: []string{"7"}})
	for _, ch := range []string{"10", "20", "30", "40", "50", "60", "70"} {
		if held, _ := c.Held(ch); !held {
			t.Errorf("channel %s not held after READY", ch)
		}
	}
	// The live stream delivers channel 20's base+30 before its backfill.
	c.Live(create("20", fmt.Sprint(base+30)))
	last := func(n uint64) string { return fmt.Sprint(n) }
	b.OnGuild(discord.GuildInfo{Shard: 0, ID: "7", InReady: true, Channels: []discord.ChannelInfo{
		{ID: "10", LastMessageID: last(base + 260), Read: discord.ReadOK},
		{ID: "20", LastMessageID: last(base + 100), Read: discord.ReadOK},
		{ID: "30", LastMessageID: last(base + 9), Read: discord.ReadOK},
		{ID: "40", LastMessageID: last(base + 9), Read: discord.ReadOK},
		{ID: "50", LastMessageID: last(base + 9), Read: discord.ReadOK},
		{ID: "60", LastMessageID: last(base + 3), Read: discord.ReadOK},
		{ID: "80", Name: "no-history", LastMessageID: last(base + 9), Read: discord.ReadNoHistory},
		{ID: "90", Name: "empty", Read: discord.ReadOK},
	}})
	// The workers start once everything is queued: the holds above are
	// checked before any fetch can release them.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !b.Idle() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !b.Idle() {
		b.mu.Lock()
		for ch, j := range b.pending {
			t.Logf("pending %s: %+v", ch, *j)
		}
		b.mu.Unlock()
		t.Fatalf("backfill not idle; requests %v\n%s", hist.requests, logs)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	check := func(ch string, want []uint64) {
		t.Helper()
		got := h.ids[ch]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("channel %s: backfilled %d ids %v..., want %d", ch, len(got), head(got), len(want))
		}
	}
	check("10", ids(base+6, base+260)) // three pages, in order
	check("20", ids(base+2, base+29))  // stops where the live stream took over
	check("30", nil)
	check("60", ids(base+2, base+3)) // after a retry
	check("70", ids(base+2, base+4)) // fetched at READY: its guild is not listed
	for ch, want := range map[string]uint64{"10": base + 260, "20": base + 29, "60": base + 3, "70": base + 4, "40": base + 1} {
		if held, _ := c.Held(ch); held {
			t.Errorf("channel %s still held", ch)
		}
		if got := cursorOf(c, ch); got != want {
			t.Errorf("channel %s cursor %d, want %d", ch, got, want-base)
		}
	}
	if cursorOf(c, "50") != 0 {
		t.Error("the deleted channel was not forgotten")
	}
	for _, r := range hist.requests {
		if strings.HasPrefix(r, "30>") || strings.HasPrefix(r, "90>") || strings.HasPrefix(r, "80>") {
			t.Errorf("request %s for a channel with nothing to fetch", r)
		}
	}
	for _, w := range []string{"READ_MESSAGE_HISTORY", "channel_id=40", "channel_id=80", "no longer exists", "trying the channel again later"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
}

func head(s []uint64) []uint64 {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

func TestBackfillerMaxAgeAndChannelLimit(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	old := snow(now.Add(-48*time.Hour), 0)
	recent := snow(now.Add(-time.Hour), 0)
	c, _ := LoadCursors("", func() time.Time { return now }, nil)
	c.existed = true
	for ch := 1; ch <= 5; ch++ {
		c.Done(create(fmt.Sprint(ch), fmt.Sprint(old)))
	}
	hist := &fakeHistory{msgs: map[string][]uint64{}}
	var chans []discord.ChannelInfo
	for ch := 1; ch <= 5; ch++ {
		// Channel 5 is the most active (newest last message).
		hist.msgs[fmt.Sprint(ch)] = append(ids(old+1, old+3), ids(recent+1, recent+uint64(ch))...)
		chans = append(chans, discord.ChannelInfo{ID: fmt.Sprint(ch), LastMessageID: fmt.Sprint(recent + uint64(ch)), Read: discord.ReadOK})
	}
	h := &handled{ids: map[string][]uint64{}, c: c}
	logs := &testio.Buffer{}
	b := NewBackfiller(BackfillConfig{REST: hist, Cursors: c, Handle: h.handle, Now: func() time.Time { return now },
		MaxAge: 24 * time.Hour, MaxChannels: 2, Workers: 1, Log: testLogger(logs)})
	// Queue everything before the worker starts, so the priority shows.
	b.OnReady(discord.ReadyInfo{Shard: 0, ShardCount: 1, GuildIDs: []string{"7"}})
	b.OnGuild(discord.GuildInfo{ID: "7", InReady: true, Channels: chans})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, 10*time.Second, b.Idle)
	h.mu.Lock()
	defer h.mu.Unlock()
	var got []string
	for ch, list := range h.ids {
		got = append(got, ch)
		for _, id := range list {
			if id < recent {
				t.Errorf("channel %s: message %d older than --backfill-max-age fetched", ch, id)
			}
		}
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "4,5" {
		t.Errorf("backfilled channels %v, want the two most active (4,5)", got)
	}
	for ch := 1; ch <= 5; ch++ {
		if held, _ := c.Held(fmt.Sprint(ch)); held {
			t.Errorf("channel %d still held", ch)
		}
	}
	if !strings.Contains(logs.String(), "--backfill-channels") || !strings.Contains(logs.String(), "--backfill-max-age") {
		t.Errorf("limits not logged:\n%s", logs)
	}
}

// TestBackfillerFirstSessionWithoutPositions: the very first start has no
// gap; a later new session does.
func TestBackfillerFirstSessionWithoutPositions(t *testing.T) {
	c, _ := LoadCursors("", nil, nil)
	c.Done(create("1", "5"))
	b := NewBackfiller(BackfillConfig{REST: &fakeHistory{}, Cursors: c, Handle: func(context.Context, *discord.Event) error { return nil }})
	b.OnReady(discord.ReadyInfo{ShardCount: 1})
	if held, _ := c.Held("1"); held {
		t.Error("held on the first session of a bot that never ran")
	}
	b.OnReady(discord.ReadyInfo{ShardCount: 1})
	if held, _ := c.Held("1"); !held {
		t.Error("not held on a later new session")
	}
	// Other shards' channels are not held by this shard's session.
	c2, _ := LoadCursors("", nil, nil)
	c2.existed = true
	g := "81384788765712384"
	c2.Done(create("2", "5"))
	m := create("3", "5")
	m.GuildID = &g
	c2.Done(m)
	b2 := NewBackfiller(BackfillConfig{REST: &fakeHistory{}, Cursors: c2, Handle: func(context.Context, *discord.Event) error { return nil }})
	other := 1 - discord.ShardOf(g, 2)
	b2.OnReady(discord.ReadyInfo{Shard: other, ShardCount: 2})
	if held, _ := c2.Held("3"); held {
		t.Error("a channel of another shard was held")
	}
}
