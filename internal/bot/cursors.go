package bot

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
)

// Cursors keeps, per channel, the position up to which every message has
// been handled: published (Kafka acknowledged it), filtered, or refused by
// Kafka for good. After a gap (the bot was down, or Discord ended a session
// without replaying it) the REST backfill fetches each channel's messages
// after its cursor.
//
// Invariant: every message of a channel with an id at or below its cursor
// is handled, or (records a previous run left) waits in the spool. Three
// rules keep it:
//
//   - messages accepted but not yet handled hold the cursor below them
//     (acknowledgements arrive out of order across partitions);
//   - while a channel is held (a gap is being backfilled), its cursor does
//     not move at all, even when live messages after the gap are handled;
//   - the cursor never moves back.
//
// The positions are written to a JSON file (atomically: write, fsync,
// rename) every second while they change, and at the end of Run.
type Cursors struct {
	path string
	now  func() time.Time
	log  *slog.Logger

	mu      sync.Mutex
	since   time.Time // the bot has been responsible for every message since
	chans   map[string]*chanCursor
	dirty   bool
	existed bool // the file existed when loaded
}

type chanCursor struct {
	guild    string // "" for DMs or unknown
	cursor   uint64
	maxDone  uint64
	inflight map[uint64]int
	pending  idHeap
	held     bool
	gen      uint64
	floor    uint64 // first live create seen while held
}

// cursorFile is the persisted form.
type cursorFile struct {
	Version  int                    `json:"version"`
	Since    time.Time              `json:"since"`
	Channels map[string]cursorEntry `json:"channels"`
}

type cursorEntry struct {
	GuildID string `json:"guild_id,omitempty"`
	LastID  string `json:"last_id"`
}

// CursorsFile is the file name of the positions inside a spool directory.
const CursorsFile = "channels.json"

// LoadCursors reads the positions from path ("" keeps them in memory only).
// A missing file starts empty, with the bot responsible from now on; a
// damaged one is renamed to *.corrupt with a warning and also starts empty
// (the backfill then cannot know what was missed before). It fails only
// when the file cannot be read at all.
func LoadCursors(path string, now func() time.Time, log *slog.Logger) (*Cursors, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cursors{path: path, now: now, log: log.With("component", "backfill"), chans: map[string]*chanCursor{}, since: now().UTC()}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		c.dirty = true
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the backfill positions: %w", err)
	}
	var f cursorFile
	bad := json.Unmarshal(b, &f)
	if bad == nil && (f.Version != 1 || f.Since.IsZero()) {
		bad = fmt.Errorf("version %d, since %v", f.Version, f.Since)
	}
	if bad == nil {
		for id, e := range f.Channels {
			n, err := strconv.ParseUint(e.LastID, 10, 64)
			if _, err2 := strconv.ParseUint(id, 10, 64); err != nil || err2 != nil {
				bad = fmt.Errorf("channel %q: last_id %q", id, e.LastID)
				break
			}
			c.chans[id] = &chanCursor{guild: e.GuildID, cursor: n, maxDone: n}
		}
	}
	if bad != nil {
		c.chans = map[string]*chanCursor{}
		_ = os.Rename(path, path+".corrupt")
		log.Warn("the backfill positions file is damaged; renamed, starting without positions "+
			"(messages sent while the bot was down cannot be fetched this time)", "file", path, "err", bad)
		c.dirty = true
		return c, nil
	}
	c.since, c.existed = f.Since.UTC(), true
	return c, nil
}

// Existed reports whether positions were loaded from a file.
func (c *Cursors) Existed() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.existed
}

// Since is the time from which the bot is responsible for every message:
// a channel without a position is backfilled from there.
func (c *Cursors) Since() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.since
}

func (c *Cursors) get(ch string) *chanCursor {
	cc := c.chans[ch]
	if cc == nil {
		cc = &chanCursor{}
		c.chans[ch] = cc
	}
	return cc
}

// ids returns the channel, guild and message id of a create; ok false for
// other kinds or unparsable ids.
func createIDs(m *chat.Message) (ch, guild string, id uint64, ok bool) {
	if m == nil || m.Kind != chat.KindCreate {
		return "", "", 0, false
	}
	n, err := strconv.ParseUint(m.MessageID, 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	if _, err := strconv.ParseUint(m.ChannelID, 10, 64); err != nil {
		return "", "", 0, false
	}
	if m.GuildID != nil {
		guild = *m.GuildID
	}
	return m.ChannelID, guild, n, true
}

// Accept records that m (a create) entered the pipeline: until Done, the
// channel's cursor stays below it.
func (c *Cursors) Accept(m *chat.Message) {
	ch, guild, id, ok := createIDs(m)
	if c == nil || !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.get(ch)
	if guild != "" {
		cc.guild = guild
	}
	if cc.inflight == nil {
		cc.inflight = map[uint64]int{}
	}
	if cc.inflight[id] == 0 {
		heap.Push(&cc.pending, id)
	}
	cc.inflight[id]++
}

// Done records that m (a create) is handled: acknowledged by Kafka,
// filtered, or refused for good.
func (c *Cursors) Done(m *chat.Message) {
	ch, guild, id, ok := createIDs(m)
	if c == nil || !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.get(ch)
	if guild != "" {
		cc.guild = guild
	}
	if n := cc.inflight[id]; n > 1 {
		cc.inflight[id] = n - 1
	} else if n == 1 {
		delete(cc.inflight, id)
	}
	cc.maxDone = max(cc.maxDone, id)
	c.advance(cc)
}

func (c *Cursors) advance(cc *chanCursor) {
	if cc.held {
		return
	}
	for cc.pending.Len() > 0 && cc.inflight[cc.pending[0]] == 0 {
		heap.Pop(&cc.pending)
	}
	next := cc.maxDone
	if cc.pending.Len() > 0 {
		next = min(next, cc.pending[0]-1)
	}
	if next > cc.cursor {
		cc.cursor = next
		c.dirty = true
	}
}

// Live records a create received from the Gateway: while the channel is
// held, the first one marks where the live stream took over (the backfill
// stops there).
func (c *Cursors) Live(m *chat.Message) {
	ch, _, id, ok := createIDs(m)
	if c == nil || !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.chans[ch]; cc != nil && cc.held && cc.floor == 0 {
		cc.floor = id
	}
}

// Hold freezes a channel's cursor for a backfill (a gap began) and returns
// the hold's generation for Release. Holding a held channel starts a new
// generation.
func (c *Cursors) Hold(ch, guild string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.get(ch)
	if guild != "" {
		cc.guild = guild
	}
	cc.held = true
	cc.floor = 0
	cc.gen++
	return cc.gen
}

// Keep holds a channel unless it is held already (then the hold, its
// generation and its floor stay as they are), and returns the generation.
func (c *Cursors) Keep(ch, guild string) uint64 {
	c.mu.Lock()
	held := c.chans[ch] != nil && c.chans[ch].held
	var gen uint64
	if held {
		gen = c.chans[ch].gen
	}
	c.mu.Unlock()
	if held {
		return gen
	}
	return c.Hold(ch, guild)
}

// Held reports whether the channel is held, and its generation.
func (c *Cursors) Held(ch string) (bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.chans[ch]; cc != nil {
		return cc.held, cc.gen
	}
	return false, 0
}

// Release ends a hold of generation gen: the cursor moves again. It
// returns false (and keeps the hold) when the channel was held again since:
// the backfill must run once more.
func (c *Cursors) Release(ch string, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.chans[ch]
	if cc == nil || !cc.held {
		return true
	}
	if cc.gen != gen {
		return false
	}
	cc.held = false
	cc.floor = 0
	c.advance(cc)
	return true
}

// Floor is the first live message id seen in a held channel (0: none yet).
func (c *Cursors) Floor(ch string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.chans[ch]; cc != nil {
		return cc.floor
	}
	return 0
}

// Position is where a backfill of ch starts: its cursor, or for a channel
// without one the first id of Since.
func (c *Cursors) Position(ch string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.chans[ch]; cc != nil && cc.cursor > 0 {
		return cc.cursor
	}
	return SnowflakeAt(c.since)
}

// Forget drops a channel that no longer exists.
func (c *Cursors) Forget(ch string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.chans[ch]; ok {
		delete(c.chans, ch)
		c.dirty = true
	}
}

// ChannelPosition is one channel's persisted state.
type ChannelPosition struct {
	ChannelID, GuildID string
	Cursor             uint64
}

// Channels returns every channel with a position, ordered by id.
func (c *Cursors) Channels() []ChannelPosition {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ChannelPosition, 0, len(c.chans))
	for id, cc := range c.chans {
		if cc.cursor > 0 {
			out = append(out, ChannelPosition{ChannelID: id, GuildID: cc.guild, Cursor: cc.cursor})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChannelID < out[j].ChannelID })
	return out
}

// Save writes the positions if they changed since the last Save.
func (c *Cursors) Save() error {
	if c == nil || c.path == "" {
		return nil
	}
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	f := cursorFile{Version: 1, Since: c.since, Channels: make(map[string]cursorEntry, len(c.chans))}
	for id, cc := range c.chans {
		if cc.cursor > 0 {
			f.Channels[id] = cursorEntry{GuildID: cc.guild, LastID: strconv.FormatUint(cc.cursor, 10)}
		}
	}
	c.dirty = false
	c.mu.Unlock()
	b, err := json.MarshalIndent(f, "", " ")
	if err == nil {
		err = writeFileAtomic(c.path, append(b, '\n'))
	}
	if err != nil {
		c.mu.Lock()
		c.dirty = true
		c.mu.Unlock()
		return fmt.Errorf("save the backfill positions: %w", err)
	}
	return nil
}

// Run saves the positions every interval (1 s when zero) while they
// change, and once more when ctx ends.
func (c *Cursors) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return c.Save()
		case <-t.C:
			err := c.Save()
			switch {
			case err != nil && !failing:
				// Once: a full disk would repeat it every interval.
				c.log.Warn("cannot save the backfill positions; retrying (meanwhile a restart backfills from older positions: duplicates, not losses)", "err", err)
			case err == nil && failing:
				c.log.Info("the backfill positions are saved again")
			}
			failing = err != nil
		}
	}
}

// writeFileAtomic replaces path with b: a temporary file, fsynced, renamed
// over it, then the directory fsynced so that the rename survives a
// machine crash. A failed write (a full disk) leaves no temporary file.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	d.Close()
	return err
}

// discordEpochMs is the first millisecond of 2015, Discord's snowflake epoch.
const discordEpochMs = 1420070400000

// SnowflakeAt returns the smallest snowflake id of time t (0 before 2015):
// "after=SnowflakeAt(t)" lists the messages created at or after t.
func SnowflakeAt(t time.Time) uint64 {
	ms := t.UnixMilli() - discordEpochMs
	if ms <= 0 {
		return 0
	}
	return uint64(ms) << 22
}

// idHeap is a min-heap of message ids.
type idHeap []uint64

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
