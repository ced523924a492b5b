package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord"
)

// runBackfill runs b until it is idle.
func runBackfill(t *testing.T, b *Backfiller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, 10*time.Second, b.Idle)
}

// TestBackfillLateArrivalAcrossRestart: message L is created before
// message H of the same channel but reaches the bot after it (Discord
// delivers a channel's messages in about, not exactly, their order). H is
// published and its position saved; the bot stops before L arrives. The
// next start must fetch L, though its id is below the saved position.
func TestBackfillLateArrivalAcrossRestart(t *testing.T) {
	t0 := time.Now()
	path := filepath.Join(t.TempDir(), CursorsFile)
	c, err := LoadCursors(path, func() time.Time { return t0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, l := snow(t0.Add(-time.Second), 0), snow(t0.Add(-1500*time.Millisecond), 0)
	c.Accept(create("10", fmt.Sprint(h)))
	c.Done(create("10", fmt.Sprint(h)))
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	// The bot stops here; it starts again a minute later.
	later := func() time.Time { return t0.Add(time.Minute) }
	c2, err := LoadCursors(path, later, nil)
	if err != nil {
		t.Fatal(err)
	}
	hist := &fakeHistory{msgs: map[string][]uint64{"10": {l, h}}}
	got := &handled{ids: map[string][]uint64{}, c: c2}
	b := NewBackfiller(BackfillConfig{REST: hist, Cursors: c2, Handle: got.handle, Now: later})
	b.OnReady(discord.ReadyInfo{ShardCount: 1, GuildIDs: []string{"7"}})
	b.OnGuild(discord.GuildInfo{ID: "7", InReady: true, Channels: []discord.ChannelInfo{{ID: "10", LastMessageID: fmt.Sprint(h), Read: discord.ReadOK}}})
	runBackfill(t, b)
	if !slices.Contains(got.ids["10"], l) {
		t.Errorf("the late message was not fetched after the restart (fetched %v, requests %v)", got.ids["10"], hist.requests)
	}
}

// TestBackfillLateArrivalInRun: the same within a run. Discord ends the
// session (INVALID_SESSION) right after delivering H; L, created before H,
// was on its way. The backfill of the new session must fetch L.
func TestBackfillLateArrivalInRun(t *testing.T) {
	t0 := time.Now()
	c, _ := LoadCursors("", func() time.Time { return t0 }, nil)
	h, l := snow(t0.Add(-time.Second), 0), snow(t0.Add(-1500*time.Millisecond), 0)
	hist := &fakeHistory{msgs: map[string][]uint64{"10": {l, h}}}
	got := &handled{ids: map[string][]uint64{}, c: c}
	clock := func() time.Time { return t0.Add(time.Minute) }
	b := NewBackfiller(BackfillConfig{REST: hist, Cursors: c, Handle: got.handle, Now: clock})
	b.OnReady(discord.ReadyInfo{ShardCount: 1, GuildIDs: []string{"7"}}) // the first session: no gap
	c.Live(create("10", fmt.Sprint(h)))
	c.Accept(create("10", fmt.Sprint(h)))
	c.Done(create("10", fmt.Sprint(h)))
	// The session ends 100 ms after H; a new one starts a minute later.
	b.OnReady(discord.ReadyInfo{ShardCount: 1, GuildIDs: []string{"7"}, StreamLostAt: t0.Add(-900 * time.Millisecond)})
	b.OnGuild(discord.GuildInfo{ID: "7", InReady: true, Channels: []discord.ChannelInfo{{ID: "10", LastMessageID: fmt.Sprint(h), Read: discord.ReadOK}}})
	runBackfill(t, b)
	if !slices.Contains(got.ids["10"], l) {
		t.Errorf("the late message was not fetched in the new session (fetched %v, requests %v)", got.ids["10"], hist.requests)
	}
	if pos := cursorOf(c, "10"); pos != h {
		t.Errorf("cursor %d after the backfill, want %d", pos, h)
	}
}

// TestBackfillQuietChannelNotRefetched: a channel whose last message is
// older than LateArrival at the save is not fetched again after a
// restart: the margin costs duplicates only for channels active just
// before the stop.
func TestBackfillQuietChannelNotRefetched(t *testing.T) {
	t0 := time.Now()
	path := filepath.Join(t.TempDir(), CursorsFile)
	c, _ := LoadCursors(path, func() time.Time { return t0 }, nil)
	h := snow(t0.Add(-time.Hour), 0)
	c.Accept(create("10", fmt.Sprint(h)))
	c.Done(create("10", fmt.Sprint(h)))
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c2, _ := LoadCursors(path, time.Now, nil)
	hist := &fakeHistory{msgs: map[string][]uint64{"10": {h}}}
	got := &handled{ids: map[string][]uint64{}, c: c2}
	b := NewBackfiller(BackfillConfig{REST: hist, Cursors: c2, Handle: got.handle})
	b.OnReady(discord.ReadyInfo{ShardCount: 1, GuildIDs: []string{"7"}})
	b.OnGuild(discord.GuildInfo{ID: "7", InReady: true, Channels: []discord.ChannelInfo{{ID: "10", LastMessageID: fmt.Sprint(h), Read: discord.ReadOK}}})
	runBackfill(t, b)
	if len(hist.requests) != 0 || len(got.ids["10"]) != 0 {
		t.Errorf("a quiet channel was fetched again: requests %v, messages %v", hist.requests, got.ids["10"])
	}
}
