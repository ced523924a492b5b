package bot

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/atomicfile"
	"github.com/cordstream/cordstream/internal/chat"
)

// Cursors keeps, per channel, the position up to which every message has
// been handled: published (Kafka acknowledged it), filtered, or refused by
// Kafka for good. After a gap (the bot was down, or Discord ended a session
// without replaying it) the REST backfill fetches each channel's messages
// after its position.
//
// The cursor is the highest id up to which every message delivered so far
// is handled, or (records a previous run left) waits in the spool. Three
// rules keep it:
//
//   - messages accepted but not yet handled hold the cursor below them
//     (acknowledgements arrive out of order across partitions);
//   - while a channel is held (a gap is being backfilled), its cursor does
//     not move at all, even when live messages after the gap are handled;
//   - the cursor never moves back.
//
// Discord delivers a channel's messages in about, not exactly, the order of
// their ids: a message may arrive after one created later. So the position
// a backfill starts from is the cursor capped to LateArrival before the
// moment the stream was lost (the last save, for a restart; the last frame
// of the lost session, within a run): everything at or below it was
// delivered before the loss. The messages between that cap and the cursor
// are fetched again (duplicates, with the same message_id).
//
// The positions are saved every second while they change, and at the end of
// Run: a snapshot (channels.json, replaced atomically: write, fsync, rename,
// directory fsync) and a journal (channels.log) to which each save appends
// only the channels whose position moved, one line each with a CRC-32C. The
// journal is folded into a new snapshot once it outgrows twice the
// snapshot, so the bytes written grow with the channels that are active,
// not with all the channels the bot knows.
type Cursors struct {
	path string
	now  func() time.Time
	log  *slog.Logger

	mu      sync.Mutex
	since   time.Time // the bot has been responsible for every message since
	chans   map[string]*chanCursor
	dirty   bool // a snapshot is due (first save, a damaged or missing file)
	existed bool // the file existed when loaded

	// The journal (saves are serialised by saveMu).
	saveMu      sync.Mutex
	gen         uint64 // generation of the snapshot; the journal's must match
	journalSize int64  // bytes of the journal; 0: none yet (a snapshot is due)
	snapSize    int64
	forgotten   map[string]bool // channels dropped since the last save
}

// LateArrival is how long after a later-created message of the same
// channel Discord may still deliver a message, as far as the backfill
// allows for.
const LateArrival = 5 * time.Second

type chanCursor struct {
	guild    string // "" for DMs or unknown
	cursor   uint64
	maxDone  uint64
	inflight map[uint64]int
	pending  idHeap
	held     bool
	gen      uint64
	floor    uint64 // first live create seen while held
	cap      uint64 // while held after a lost session: the position may not pass it
	saved    uint64 // position last saved (0: none)
}

// cursorFile is the snapshot.
type cursorFile struct {
	Version  int                    `json:"version"`
	Since    time.Time              `json:"since"`
	Journal  uint64                 `json:"journal,omitempty"` // generation the journal must carry
	Channels map[string]cursorEntry `json:"channels"`
}

type cursorEntry struct {
	GuildID string `json:"guild_id,omitempty"`
	LastID  string `json:"last_id"`
}

// journalLine is one line of the journal after its CRC: a channel's new
// position, or (Forget) its removal. The first line holds only Journal.
type journalLine struct {
	Journal uint64 `json:"journal,omitempty"`
	Channel string `json:"c,omitempty"`
	GuildID string `json:"g,omitempty"`
	LastID  string `json:"l,omitempty"`
	Forget  bool   `json:"x,omitempty"`
}

// CursorsFile is the file name of the positions inside a spool directory;
// CursorsJournal is that of their journal.
const (
	CursorsFile    = "channels.json"
	CursorsJournal = "channels.log"
)

// LoadCursors reads the positions from path and its journal ("" keeps them
// in memory only). A missing file starts empty, with the bot responsible
// from now on; a damaged one is renamed to *.corrupt with a warning and also
// starts empty (the backfill then cannot know what was missed before);
// damaged journal lines are skipped with a warning (an older position is
// used: duplicates, not losses). It fails only when a file cannot be read
// at all.
func LoadCursors(path string, now func() time.Time, log *slog.Logger) (*Cursors, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cursors{path: path, now: now, log: log.With("component", "backfill"), chans: map[string]*chanCursor{},
		since: now().UTC(), forgotten: map[string]bool{}}
	if path == "" {
		return c, nil
	}
	// A snapshot whose write was interrupted.
	_ = os.Remove(path + atomicfile.TmpSuffix)
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
			c.chans[id] = &chanCursor{guild: e.GuildID, cursor: n, maxDone: n, saved: n}
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
	c.since, c.existed, c.gen, c.snapSize = f.Since.UTC(), true, f.Journal, int64(len(b))
	if err := c.replayJournal(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cursors) journalPath() string { return filepath.Join(filepath.Dir(c.path), CursorsJournal) }

// replayJournal applies the journal's lines to the snapshot just loaded,
// if the journal belongs to it (one left from before the last snapshot
// does not).
func (c *Cursors) replayJournal() error {
	b, err := os.ReadFile(c.journalPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the backfill positions' journal: %w", err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	var head journalLine
	if len(lines) == 0 || !parseJournalLine(lines[0], &head) || head.Journal != c.gen {
		return nil // an older journal, already in the snapshot, or an empty one
	}
	damaged, applied := 0, 0
	for _, l := range lines[1:] {
		var jl journalLine
		if !parseJournalLine(l, &jl) {
			if len(l) > 0 {
				damaged++
			}
			continue
		}
		n, err := strconv.ParseUint(jl.LastID, 10, 64)
		if _, err2 := strconv.ParseUint(jl.Channel, 10, 64); err2 != nil || (!jl.Forget && err != nil) {
			damaged++
			continue
		}
		applied++
		if jl.Forget {
			delete(c.chans, jl.Channel)
			continue
		}
		c.chans[jl.Channel] = &chanCursor{guild: jl.GuildID, cursor: n, maxDone: n, saved: n}
	}
	c.journalSize = int64(len(b))
	if damaged > 0 {
		// A torn last line is what a crash in the middle of a save leaves.
		c.log.Warn("damaged lines of the backfill positions' journal skipped; the channels concerned start from older positions (messages may be published twice, with the same message_id)",
			"file", c.journalPath(), "lines", damaged, "applied", applied)
	}
	return nil
}

// parseJournalLine checks a line's CRC and decodes it.
func parseJournalLine(l []byte, jl *journalLine) bool {
	if len(l) < 10 || l[len(l)-1] != '\n' || l[8] != ' ' {
		return false
	}
	want, err := strconv.ParseUint(string(l[:8]), 16, 32)
	body := l[9 : len(l)-1]
	if err != nil || crc32.Checksum(body, castagnoli) != uint32(want) {
		return false
	}
	return json.Unmarshal(body, jl) == nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendJournalLine(b []byte, jl journalLine) []byte {
	body, _ := json.Marshal(jl)
	b = fmt.Appendf(b, "%08x ", crc32.Checksum(body, castagnoli))
	b = append(b, body...)
	return append(b, '\n')
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
// generation. lost, when set, is when the stream was lost (the last frame
// of a session Discord ended): the backfill then starts no later than
// LateArrival before it.
func (c *Cursors) Hold(ch, guild string, lost time.Time) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.get(ch)
	if guild != "" {
		cc.guild = guild
	}
	cc.held = true
	cc.floor = 0
	cc.cap = 0
	if !lost.IsZero() {
		cc.cap = SnowflakeAt(lost.Add(-LateArrival))
	}
	cc.gen++
	return cc.gen
}

// Keep holds a channel unless it is held already (then the hold, its
// generation and its floor stay as they are), and returns the generation.
func (c *Cursors) Keep(ch, guild string, lost time.Time) uint64 {
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
	return c.Hold(ch, guild, lost)
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
	cc.cap = 0
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

// Position is where a backfill of ch starts: its cursor (capped while held
// after a lost session, see Hold), or for a channel without one the first
// id of Since.
func (c *Cursors) Position(ch string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.chans[ch]; cc != nil && cc.cursor > 0 {
		if cc.held && cc.cap > 0 {
			return min(cc.cursor, cc.cap)
		}
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
		c.forgotten[ch] = true
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

// saved returns the position to save for cc: its cursor, capped to
// limit (LateArrival before now) and, while held after a lost session, to
// the hold's cap. c.mu held.
func (cc *chanCursor) toSave(limit uint64) uint64 {
	p := min(cc.cursor, limit)
	if cc.held && cc.cap > 0 {
		p = min(p, cc.cap)
	}
	return p
}

// snapshotMin is the journal size below which it is never folded.
const snapshotMin = 64 << 10

// Save writes the positions that changed since the last Save: as lines
// appended to the journal, or as a new snapshot when one is due (the first
// save, or a journal twice the snapshot's size).
func (c *Cursors) Save() error {
	if c == nil || c.path == "" {
		return nil
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	limit := SnowflakeAt(c.now().Add(-LateArrival))
	type saving struct {
		cc  *chanCursor
		pos uint64
	}
	var lines []journalLine
	var saved []saving
	for id, cc := range c.chans {
		if p := cc.toSave(limit); p != cc.saved {
			lines = append(lines, journalLine{Channel: id, GuildID: cc.guild, LastID: strconv.FormatUint(p, 10)})
			saved = append(saved, saving{cc, p})
		}
	}
	forgotten := make([]string, 0, len(c.forgotten))
	for id := range c.forgotten {
		lines = append(lines, journalLine{Channel: id, Forget: true})
		forgotten = append(forgotten, id)
	}
	snapshot := c.dirty || c.journalSize == 0 || c.journalSize+int64(80*len(lines)) > max(snapshotMin, 2*c.snapSize)
	if !snapshot && len(lines) == 0 {
		c.mu.Unlock()
		return nil
	}
	var snap []byte
	if snapshot {
		f := cursorFile{Version: 1, Since: c.since, Journal: c.gen + 1, Channels: make(map[string]cursorEntry, len(c.chans))}
		saved = saved[:0]
		for id, cc := range c.chans {
			p := cc.toSave(limit)
			saved = append(saved, saving{cc, p})
			if p > 0 {
				f.Channels[id] = cursorEntry{GuildID: cc.guild, LastID: strconv.FormatUint(p, 10)}
			}
		}
		snap, _ = json.MarshalIndent(f, "", " ")
		snap = append(snap, '\n')
	}
	gen := c.gen
	c.mu.Unlock()

	var err error
	written := int64(0)
	if snapshot {
		written, err = c.writeSnapshot(snap, gen+1)
	} else {
		written, err = c.appendJournal(lines)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save the backfill positions: %w", err)
	}
	for _, sv := range saved {
		sv.cc.saved = sv.pos
	}
	for _, id := range forgotten {
		delete(c.forgotten, id)
	}
	if snapshot {
		c.dirty, c.gen, c.snapSize, c.journalSize = false, gen+1, int64(len(snap)), written
	} else {
		c.journalSize += written
	}
	return nil
}

// writeSnapshot replaces the snapshot, then starts the journal of its
// generation. A crash in between leaves the previous journal, whose
// generation no longer matches: it is ignored, the snapshot holding all of
// it. It returns the journal's new size.
func (c *Cursors) writeSnapshot(snap []byte, gen uint64) (int64, error) {
	if err := atomicfile.Write(c.path, snap, nil); err != nil {
		return 0, err
	}
	head := appendJournalLine(nil, journalLine{Journal: gen})
	err := writeFileSynced(c.journalPath(), head)
	if err != nil {
		// The next save writes a snapshot again: appending to a journal of
		// another generation would be in vain.
		return 0, nil
	}
	return int64(len(head)), nil
}

// appendJournal appends lines to the journal and fsyncs it; a failed
// write is cut off again, so that no torn line stays in the middle.
func (c *Cursors) appendJournal(lines []journalLine) (int64, error) {
	var b []byte
	for _, l := range lines {
		b = appendJournalLine(b, l)
	}
	f, err := os.OpenFile(c.journalPath(), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if terr := os.Truncate(c.journalPath(), c.journalSize); terr != nil {
			c.mu.Lock()
			c.dirty = true // start over with a snapshot
			c.mu.Unlock()
		}
		return 0, err
	}
	return int64(len(b)), nil
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

// writeFileSynced replaces the content of path with b and fsyncs it (the
// journal's first line; a crash in the middle leaves a journal that does
// not match the snapshot, which is ignored).
func writeFileSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
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
		err = atomicfile.SyncDir(filepath.Dir(path))
	}
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
