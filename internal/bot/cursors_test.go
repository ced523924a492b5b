package bot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
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
	gen := c.Hold("1", "7")
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
	gen2 := c.Hold("1", "7")
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
			logs := &syncBuffer{}
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
