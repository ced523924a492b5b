package bot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/testio"
)

func create(ch, id string) *chat.Message {
	return &chat.Message{Kind: chat.KindCreate, ChannelID: ch, MessageID: id, GuildID: chat.Ptr("7")}
}

func cursorOf(c *Cursors, ch string) uint64 {
	for _, p := range c.Channels() {
		if p.ChannelID == ch {
			return p.Cursor
		}
	}
	return 0
}

func TestCursorsOutOfOrderAcknowledgements(t *testing.T) {
	c, _ := LoadCursors("", nil, nil)
	for _, id := range []string{"10", "11", "12", "13"} {
		c.Accept(create("1", id))
	}
	steps := []struct {
		done string
		want uint64
	}{
		{"12", 9},  // 10 and 11 still wait: just below them
		{"10", 10}, // 11 waits
		{"13", 10},
		{"11", 13}, // everything handled
	}
	for _, s := range steps {
		c.Done(create("1", s.done))
		if got := cursorOf(c, "1"); got != s.want {
			t.Errorf("after %s done: cursor %d, want %d", s.done, got, s.want)
		}
	}
	// Updates and deletes do not move cursors; garbage ids are ignored.
	c.Done(&chat.Message{Kind: chat.KindDelete, ChannelID: "1", MessageID: "99"})
	c.Done(create("1", "not-a-snowflake"))
	if got := cursorOf(c, "1"); got != 13 {
		t.Errorf("cursor %d after a delete and a bad id, want 13", got)
	}
}

func TestCursorsHoldFreezesUntilRelease(t *testing.T) {
	c, _ := LoadCursors("", nil, nil)
	c.Accept(create("1", "5"))
	c.Done(create("1", "5"))
	gen := c.Hold("1", "7", time.Time{})
	// Live messages after the gap are handled, but the gap is not filled
	// yet: the cursor must not pass it.
	c.Live(create("1", "50"))
	c.Accept(create("1", "50"))
	c.Done(create("1", "50"))
	c.Live(create("1", "51"))
	if got := c.Floor("1"); got != 50 {
		t.Errorf("floor = %d, want the first live id 50", got)
	}
	if got := cursorOf(c, "1"); got != 5 {
		t.Fatalf("held cursor moved to %d", got)
	}
	// The backfill takes 6..49; one of them still in flight at release.
	c.Accept(create("1", "6"))
	c.Accept(create("1", "49"))
	c.Done(create("1", "49"))
	// A new session held it again meanwhile: the old release is refused.
	gen2 := c.Hold("1", "7", time.Time{})
	if c.Release("1", gen) {
		t.Error("Release with a stale generation succeeded")
	}
	if !c.Release("1", gen2) {
		t.Error("Release with the current generation failed")
	}
	if got := cursorOf(c, "1"); got != 5 {
		t.Errorf("cursor %d with message 6 in flight, want 5", got)
	}
	c.Done(create("1", "6"))
	if got := cursorOf(c, "1"); got != 50 {
		t.Errorf("cursor %d after everything was handled, want 50", got)
	}
}

func TestCursorsPersist(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, CursorsFile)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	c, err := LoadCursors(path, func() time.Time { return t0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Existed() {
		t.Error("Existed() for a missing file")
	}
	if got, want := c.Position("99"), SnowflakeAt(t0); got != want {
		t.Errorf("position of an unknown channel = %d, want Since's snowflake %d", got, want)
	}
	c.Done(create("100", "1000"))
	c.Done(&chat.Message{Kind: chat.KindCreate, ChannelID: "200", MessageID: "2000"}) // a DM
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadCursors(path, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Existed() || !c2.Since().Equal(t0) {
		t.Errorf("reloaded: existed %v since %v, want true and %v", c2.Existed(), c2.Since(), t0)
	}
	got := c2.Channels()
	if len(got) != 2 || got[0] != (ChannelPosition{"100", "7", 1000}) || got[1] != (ChannelPosition{"200", "", 2000}) {
		t.Errorf("reloaded channels = %+v", got)
	}
	if c2.Position("100") != 1000 {
		t.Errorf("position = %d, want 1000", c2.Position("100"))
	}
	c2.Forget("100")
	c2.Save()
	c3, _ := LoadCursors(path, time.Now, nil)
	if len(c3.Channels()) != 1 {
		t.Errorf("forgotten channel still saved: %+v", c3.Channels())
	}
}

func TestCursorsDamagedFile(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":    "{{{",
		"bad version": `{"version":9,"since":"2024-01-01T00:00:00Z","channels":{}}`,
		"bad id":      `{"version":1,"since":"2024-01-01T00:00:00Z","channels":{"x":{"last_id":"1"}}}`,
		"bad last":    `{"version":1,"since":"2024-01-01T00:00:00Z","channels":{"1":{"last_id":"-"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, CursorsFile)
			os.WriteFile(path, []byte(content), 0o600)
			logs := &testio.Buffer{}
			c, err := LoadCursors(path, nil, testLogger(logs))
			if err != nil {
				t.Fatal(err)
			}
			if c.Existed() || len(c.Channels()) != 0 {
				t.Errorf("a damaged file was used: existed %v, channels %+v", c.Existed(), c.Channels())
			}
			if !strings.Contains(logs.String(), "damaged") {
				t.Errorf("no warning:\n%s", logs)
			}
			if _, err := os.Stat(path + ".corrupt"); err != nil {
				t.Errorf("damaged file not kept: %v", err)
			}
		})
	}
}

func TestSnowflakeAt(t *testing.T) {
	tm := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	id := SnowflakeAt(tm)
	if got := time.UnixMilli(int64(id>>22) + discordEpochMs).UTC(); !got.Equal(tm) {
		t.Errorf("SnowflakeAt round trip = %v, want %v", got, tm)
	}
	if SnowflakeAt(time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)) != 0 {
		t.Error("a time before Discord's epoch is not 0")
	}
}

// positions returns the saved positions of a cursors file, reloaded.
func positions(t *testing.T, path string) map[string]uint64 {
	t.Helper()
	c, err := LoadCursors(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, p := range c.Channels() {
		out[p.ChannelID] = p.Cursor
	}
	return out
}

// TestCursorsJournal: a save writes only the channels that moved, as
// journal lines; the snapshot is rewritten only once the journal
// outgrows it; a reload sees every position either way.
func TestCursorsJournal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, CursorsFile)
	jpath := filepath.Join(dir, CursorsJournal)
	c, _ := LoadCursors(path, nil, nil)
	const chans = 2000
	for ch := 1; ch <= chans; ch++ {
		c.Done(create(fmt.Sprint(ch), fmt.Sprint(1000+ch)))
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	snap, _ := os.ReadFile(path)
	j0, _ := os.Stat(jpath)
	// Three channels move: three lines, the snapshot untouched.
	for _, ch := range []int{5, 77, 1999} {
		c.Done(create(fmt.Sprint(ch), fmt.Sprint(5000+ch)))
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	j1, _ := os.Stat(jpath)
	if grew := j1.Size() - j0.Size(); grew <= 0 || grew > 3*100 {
		t.Errorf("the journal grew by %d bytes for 3 channels", grew)
	}
	if now, _ := os.ReadFile(path); string(now) != string(snap) {
		t.Error("the snapshot was rewritten for 3 channels out of 2000")
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if j2, _ := os.Stat(jpath); j2.Size() != j1.Size() {
		t.Errorf("a save without changes wrote %d bytes", j2.Size()-j1.Size())
	}
	got := positions(t, path)
	if len(got) != chans || got["5"] != 5005 || got["77"] != 5077 || got["1999"] != 6999 || got["6"] != 1006 {
		t.Errorf("reloaded %d channels, 5=%d 77=%d 1999=%d 6=%d", len(got), got["5"], got["77"], got["1999"], got["6"])
	}
	// Many saves: the journal is folded into a new snapshot, and stays
	// bounded.
	dir2 := t.TempDir()
	path2, jpath2 := filepath.Join(dir2, CursorsFile), filepath.Join(dir2, CursorsJournal)
	c2, _ := LoadCursors(path2, nil, nil)
	for ch := 1; ch <= 100; ch++ {
		c2.Done(create(fmt.Sprint(ch), fmt.Sprint(1000+ch)))
	}
	c2.Save()
	first, _ := os.ReadFile(path2)
	maxJournal := int64(0)
	for i := range 3000 {
		c2.Done(create(fmt.Sprint(1+i%50), fmt.Sprint(10000+i)))
		if err := c2.Save(); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(jpath2)
		maxJournal = max(maxJournal, st.Size())
	}
	snap2, _ := os.ReadFile(path2)
	if string(snap2) == string(first) || maxJournal > snapshotMin+200 {
		t.Errorf("after 3000 saves: the snapshot rewritten %v, the journal at most %d bytes", string(snap2) != string(first), maxJournal)
	}
	got = positions(t, path2)
	if got["50"] != 10000+2999 || got["1"] != 10000+2950 || got["100"] != 1100 || len(got) != 100 {
		t.Errorf("after folding: 50=%d 1=%d 100=%d, %d channels", got["50"], got["1"], got["100"], len(got))
	}
	c.Forget("1")
	c.Save()
	if _, ok := positions(t, path)["1"]; ok {
		t.Error("a forgotten channel came back from the journal")
	}
}

// TestCursorsJournalDamage: a torn last line (a crash in the middle of a
// save) and a damaged line are skipped, with a warning; a damaged line
// never yields a higher position. A journal of an older snapshot is
// ignored.
func TestCursorsJournalDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, CursorsFile)
	jpath := filepath.Join(dir, CursorsJournal)
	c, _ := LoadCursors(path, nil, nil)
	c.Done(create("1", "100"))
	c.Done(create("2", "200"))
	c.Save()
	c.Done(create("1", "150"))
	c.Save()
	c.Done(create("2", "250"))
	c.Save()
	good, _ := os.ReadFile(jpath)
	lines := strings.SplitAfter(string(good), "\n")
	// lines: header, channel 1 at 150, channel 2 at 250, "".
	if len(lines) != 4 {
		t.Fatalf("journal lines %q", lines)
	}
	for name, tc := range map[string]struct {
		journal string
		want    map[string]uint64
	}{
		"torn tail":       {lines[0] + lines[1] + lines[2][:len(lines[2])/2], map[string]uint64{"1": 150, "2": 200}},
		"digit changed":   {lines[0] + strings.Replace(lines[1], "150", "950", 1) + lines[2], map[string]uint64{"1": 100, "2": 250}},
		"zeroed line":     {lines[0] + strings.Repeat("\x00", len(lines[1])-1) + "\n" + lines[2], map[string]uint64{"1": 100, "2": 250}},
		"older snapshot":  {strings.Replace(lines[0], `"journal":1`, `"journal":7`, 1) + lines[1] + lines[2], map[string]uint64{"1": 100, "2": 200}},
		"header mangled":  {"garbage\n" + lines[1] + lines[2], map[string]uint64{"1": 100, "2": 200}},
		"all good":        {string(good), map[string]uint64{"1": 150, "2": 250}},
		"no journal file": {"", map[string]uint64{"1": 100, "2": 200}},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.journal == "" {
				os.Remove(jpath)
			} else {
				os.WriteFile(jpath, []byte(tc.journal), 0o600)
			}
			logs := &testio.Buffer{}
			c, err := LoadCursors(path, nil, testLogger(logs))
			if err != nil {
				t.Fatal(err)
			}
			for ch, want := range tc.want {
				if got := cursorOf(c, ch); got != want {
					t.Errorf("channel %s at %d, want %d", ch, got, want)
				}
			}
			damaged := name == "torn tail" || name == "digit changed" || name == "zeroed line"
			if strings.Contains(logs.String(), "damaged lines") != damaged {
				t.Errorf("warning logged: %v, want %v:\n%s", !damaged, damaged, logs)
			}
		})
	}
}

// TestCursorsSavedPositionAllowsForLateArrivals: the saved position of a
// channel active in the last LateArrival is capped to LateArrival ago;
// that of a quiet one is its cursor.
func TestCursorsSavedPositionAllowsForLateArrivals(t *testing.T) {
	t0 := time.Now()
	path := filepath.Join(t.TempDir(), CursorsFile)
	c, _ := LoadCursors(path, func() time.Time { return t0 }, nil)
	busy, quiet := SnowflakeAt(t0.Add(-time.Second)), SnowflakeAt(t0.Add(-time.Minute))
	c.Done(create("1", fmt.Sprint(busy)))
	c.Done(create("2", fmt.Sprint(quiet)))
	c.Save()
	got := positions(t, path)
	if got["1"] != SnowflakeAt(t0.Add(-LateArrival)) || got["2"] != quiet {
		t.Errorf("saved %d and %d; want %d (LateArrival ago) and %d (the cursor)", got["1"], got["2"], SnowflakeAt(t0.Add(-LateArrival)), quiet)
	}
	if cursorOf(c, "1") != busy {
		t.Errorf("the cursor in memory moved back to %d", cursorOf(c, "1"))
	}
}
