// Package spool is a durable, bounded, append-only log on local disk: the
// bot writes every record it accepts here before it reads the next event
// from Discord, and removes it only after Kafka acknowledged it.
//
// Guarantees:
//
//   - Append writes the entry with write(2) before it returns, so a crash of
//     the process (kill -9, a panic, the OOM killer) loses nothing that
//     Append returned for. With Options.SyncEvery = 0 Append also waits for
//     fsync(2) (group commit: concurrent appends share one fsync), so a
//     power loss or kernel crash loses nothing either. With SyncEvery > 0
//     the log is fsynced that often, and an OS crash can lose the entries
//     appended in the last SyncEvery. With SyncEvery = 0 and MaxUnsynced > 0
//     Append waits only while more than MaxUnsynced entries await fsync, and
//     an OS crash can lose those. Options.SyncGap spaces the fsyncs of the
//     group commit (at most one per gap, each covering everything written
//     before it).
//   - Entries come out of Next in append order, from the oldest entry not
//     yet acknowledged: after a restart the previous run's unacknowledged
//     entries come first. An entry acknowledged shortly before a crash may
//     come out again (the checkpoint of acknowledgements is written at most
//     once a second and at Close), never one that was not appended.
//   - The files never hold more than Options.MaxBytes: Append blocks until
//     acknowledgements free whole segments, or its context ends.
//   - A full file system is an outage, not a loss: when a write fails for
//     lack of space (ENOSPC, EDQUOT), Append blocks (Stats.Blocked says why)
//     until acknowledgements free space, the segment being written
//     included, or space returns from elsewhere (it tries again every
//     second). Open on a full file system succeeds and says so
//     (Recovery.NoSpace): acknowledging the entries it holds frees space.
//   - Every entry carries its length, id and a CRC-32C. Opening a spool
//     skips damaged entries and torn writes at the end of a segment (a crash
//     in the middle of a write) with a warning, and never fails or panics
//     because of the content of a segment; a segment with a bad header is
//     renamed to *.corrupt and left for inspection. Ids are taken from valid
//     entries only, never from a file's name, and what Open allocates grows
//     with the entries found, not with the ids they carry.
//   - One process at a time: Open takes an exclusive lock on the directory.
//
// See format.go for the bytes on disk.
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cordstream/cordstream/internal/atomicfile"
)

// Options configure a spool.
type Options struct {
	// MaxBytes bounds the size of the segment files (at least 1 MiB;
	// 1 GiB when zero).
	MaxBytes int64
	// SegmentBytes is the size at which a new segment is started
	// (MaxBytes/16 clamped to [64 KiB, 64 MiB] when zero).
	SegmentBytes int64
	// SyncEvery is the group-commit period; 0 makes Append wait for fsync
	// (fsyncs then run back to back, each covering every entry written
	// before it started).
	SyncEvery time.Duration
	// MaxUnsynced, with SyncEvery = 0, lets Append return once its entry is
	// written while at most this many entries await fsync: the writer does
	// not wait for each fsync, and a machine crash loses at most the
	// entries of the fsync in flight and those queued behind it. 0 makes
	// every Append wait for its fsync.
	MaxUnsynced int
	// SyncGap, with SyncEvery = 0, is the least time from the start of one
	// fsync to the start of the next (0: back to back). Each fsync costs
	// the same CPU whether it covers one entry or a hundred: a gap makes
	// one cover all the entries of the gap, at the price of waiting up to
	// SyncGap longer for it (Append waits for it only beyond MaxUnsynced).
	SyncGap time.Duration
	// CheckpointEvery is how often the acknowledgement checkpoint is
	// rewritten while it changes (1 s when zero).
	CheckpointEvery time.Duration
	// Log receives the warnings about damaged data (discarded when nil).
	Log *slog.Logger

	// beforeWrite, in tests, is called before every write of n bytes to
	// the spool's files; an error fails the write as the file system
	// would.
	beforeWrite func(n int) error
}

// ErrTooLarge is returned by Append for a payload over MaxEntry or one that
// could never fit in MaxBytes.
var ErrTooLarge = errors.New("spool: entry too large")

// ErrClosed is returned by Append and Next after Close.
var ErrClosed = errors.New("spool: closed")

// ErrFull is Stats.Blocked while Append waits because the spool holds
// MaxBytes of entries not yet acknowledged.
var ErrFull = errors.New("spool: full: its bound on disk is reached by entries not yet acknowledged")

// ErrLocked is what Open's error wraps when another process holds the
// directory.
var ErrLocked = errors.New("spool: directory in use by another process")

// IsNoSpace reports whether err is the file system's "no space left" (or
// quota exceeded): a condition acknowledgements, or space freed elsewhere,
// end.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// FreeBytes returns the space left to an unprivileged user on the file
// system holding path.
func FreeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Entry is one record read back.
type Entry struct {
	ID   uint64
	Data []byte
}

// Recovery describes what Open found.
type Recovery struct {
	Segments     int   // segment files found
	Entries      int64 // entries not yet acknowledged (they come out of Next first)
	Bytes        int64 // size of the segment files kept
	Damaged      int   // places where damaged bytes were skipped between valid entries
	DamagedBytes int64
	TornBytes    int64 // bytes after the last valid entry of a segment, discarded
	Corrupt      int   // segment files renamed to *.corrupt
	// NoSpace is set when no segment could be started for lack of space
	// on the file system (it wraps syscall.ENOSPC or EDQUOT): Append blocks
	// until acknowledging the recovered entries, or space freed elsewhere,
	// makes room.
	NoSpace error
}

type segment struct {
	first   uint64 // id the file is named after
	last    uint64 // id of the last entry (first-1 when empty)
	path    string
	end     int64 // readable end: after the last valid entry
	size    int64 // bytes on disk
	entries int64
	valid1  uint64 // id of the first valid entry (0 when empty)
	deleted bool   // removed (every entry acknowledged); s.mu
}

// Spool is an open spool directory. Append, Ack and Next may be called from
// different goroutines; Next from one goroutine at a time.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	mu       sync.Mutex
	segs     []*segment // ascending; while w is open, the last one is written to
	w        *os.File   // nil when no segment could be started (no space)
	rollNext bool       // the segment written to holds only acknowledged entries and the disk is full
	nextID   uint64
	used     int64 // bytes of all segment files
	pending  int64 // entries appended or recovered and not acknowledged
	closed   bool

	// Acknowledgements: every id below low is acknowledged; acks says,
	// for the entries from low on, which are.
	low  uint64
	acks ackRuns

	spaceWaiters int
	blocked      error     // why Append cannot write (nil: it can)
	blockedSince time.Time // when that began

	// Waiting: closed and replaced when something changes.
	spaceCh chan struct{} // space freed
	dataCh  chan struct{} // entry appended, or a segment deleted
	// dataWait: the reader may be waiting on dataCh (Append closes it only
	// then, so that a reader keeping up costs no channel per entry).
	dataWait bool
	wbuf     []byte        // Append's entry buffer (s.mu held)
	syncCh   chan struct{} // an fsync completed

	written  uint64 // last id written
	synced   uint64 // last id known durable
	syncs    int64  // fsyncs of the group commit done
	dirty    bool   // the file w has unsynced writes
	ckptLow  uint64 // low as last written to the checkpoint
	ckptErr  bool   // the last checkpoint write failed (logged once)
	kick     chan struct{}
	stop     chan struct{}
	syncDone chan struct{}
	syncErr  error

	rdMu sync.Mutex // held by Next; Close takes it to close the reader's file
	rd   reader     // rdMu; rd.seg is also read under mu
}

// reader is Next's position.
type reader struct {
	seg  *segment // nil: before the first segment
	f    *os.File
	sc   *scanner
	last uint64 // id of the last entry returned
}

// ackRun is a run of consecutive ids with entries, from first on, and
// which of them are acknowledged.
type ackRun struct {
	first uint64
	acked []bool
}

// ackRuns are the entries from low on, in ascending runs of consecutive
// ids. Ids that no entry has (gaps left by damaged data, or between
// segments) are in no run and count as acknowledged, so the memory they
// take grows with the entries, whatever ids the entries carry.
type ackRuns []ackRun

// add records a new unacknowledged entry; ids come in ascending order.
func (a *ackRuns) add(id uint64) {
	if n := len(*a); n > 0 {
		r := &(*a)[n-1]
		if r.first+uint64(len(r.acked)) == id {
			r.acked = append(r.acked, false)
			return
		}
	}
	*a = append(*a, ackRun{first: id, acked: []bool{false}})
}

// find returns the acknowledgement flag of id, or nil when no entry has it.
func (a ackRuns) find(id uint64) *bool {
	i := sort.Search(len(a), func(i int) bool { return a[i].first+uint64(len(a[i].acked)) > id })
	if i == len(a) || id < a[i].first {
		return nil
	}
	return &a[i].acked[id-a[i].first]
}

// trim drops the acknowledged entries at the front and returns the first
// unacknowledged id (ok false when none is left).
func (a *ackRuns) trim() (uint64, bool) {
	for len(*a) > 0 {
		r := &(*a)[0]
		i := 0
		for i < len(r.acked) && r.acked[i] {
			i++
		}
		if i < len(r.acked) {
			if i > 0 {
				r.first += uint64(i)
				r.acked = r.acked[i:]
				if cap(r.acked) > 1024 && len(r.acked) < cap(r.acked)/4 {
					r.acked = append(make([]bool, 0, 2*len(r.acked)+64), r.acked...)
				}
			}
			return r.first, true
		}
		*a = (*a)[1:]
	}
	*a = nil
	return 0, false
}

// Open opens (creating it if needed) the spool in dir and recovers its
// content. It fails if another process holds the directory (the error
// wraps ErrLocked), or if the directory cannot be used; damaged content is
// reported in Recovery, not as an error, and so is a file system too full
// to start a segment (Recovery.NoSpace).
func Open(dir string, o Options) (*Spool, Recovery, error) {
	if o.MaxBytes == 0 {
		o.MaxBytes = 1 << 30
	}
	if o.MaxBytes < 1<<20 {
		return nil, Recovery{}, fmt.Errorf("spool: MaxBytes %d is below 1 MiB", o.MaxBytes)
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(max(o.MaxBytes/16, 64<<10), 64<<20)
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = time.Second
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, Recovery{}, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, Recovery{}, err
	}
	s := &Spool{
		dir: dir, opts: o, log: log, lock: lock,
		spaceCh: make(chan struct{}), dataCh: make(chan struct{}), syncCh: make(chan struct{}),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), syncDone: make(chan struct{}),
	}
	rec, err := s.recover()
	if err != nil {
		s.unlock()
		return nil, rec, err
	}
	if err := s.roll(); err != nil {
		if !IsNoSpace(err) {
			s.closeFiles()
			s.unlock()
			return nil, rec, err
		}
		// Append waits for space; acknowledging what was recovered frees it.
		rec.NoSpace = err
		s.setBlocked(err)
	}
	go s.syncLoop()
	return s, rec, nil
}

type lockedError struct{ msg string }

func (e *lockedError) Error() string        { return e.msg }
func (e *lockedError) Is(target error) bool { return target == ErrLocked }

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		holder := strings.TrimSpace(string(b[:n]))
		if holder == "" {
			holder = "unknown"
		}
		return nil, &lockedError{fmt.Sprintf("spool directory %s is in use by another process (pid %s): each bot needs its own spool directory", dir, holder)}
	}
	// The pid is for the message above only: on a full file system it may
	// not be written, which is no reason to stop.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func (s *Spool) unlock() {
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
		s.lock = nil
	}
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// recover scans the directory: checkpoint, then every segment.
func (s *Spool) recover() (Recovery, error) {
	var rec Recovery
	low, ok := readCheckpoint(filepath.Join(s.dir, ackFile))
	if !ok {
		if _, err := os.Stat(filepath.Join(s.dir, ackFile)); err == nil {
			s.log.Warn("the spool's acknowledgement checkpoint is damaged; replaying every entry (Kafka may receive some twice, with the same message_id)",
				"file", filepath.Join(s.dir, ackFile))
		}
		low = 0
	}
	// A checkpoint left by an interrupted write.
	_ = os.Remove(filepath.Join(s.dir, ackFile+tmpSuffix))
	names, err := os.ReadDir(s.dir)
	if err != nil {
		return rec, fmt.Errorf("spool: read %s: %w", s.dir, err)
	}
	var segs []*segment
	for _, de := range names {
		name := de.Name()
		if !strings.HasSuffix(name, segSuffix) || !de.Type().IsRegular() {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || first == 0 {
			continue
		}
		segs = append(segs, &segment{first: first, path: filepath.Join(s.dir, name)})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	rec.Segments = len(segs)

	// From the last segment to the first: a segment's ids must stay below
	// the first valid id of the next segment that has entries (a name
	// alone, of an empty or foreign file, bounds nothing).
	var bound uint64
	corrupt := make([]bool, len(segs))
	for i := len(segs) - 1; i >= 0; i-- {
		sg := segs[i]
		if err := s.scanSegment(sg, bound, &rec); err != nil {
			s.log.Warn("spool segment unreadable; renamed and skipped (its entries are lost from the spool; creates among them are recovered by the REST backfill)",
				"segment", sg.path, "err", err)
			_ = os.Rename(sg.path, sg.path+".corrupt")
			rec.Corrupt++
			corrupt[i] = true
			continue
		}
		if sg.entries > 0 {
			bound = sg.valid1
		}
	}

	s.low = max(low, 1)
	s.nextID = s.low
	var kept []*segment
	for i, sg := range segs {
		if corrupt[i] {
			continue
		}
		if sg.entries > 0 {
			s.nextID = max(s.nextID, sg.last+1) // from entries, never from the name
		}
		if sg.entries == 0 || sg.last < s.low {
			// Empty, or fully acknowledged before the restart.
			if err := os.Remove(sg.path); err != nil && !os.IsNotExist(err) {
				return rec, fmt.Errorf("spool: remove %s: %w", sg.path, err)
			}
			continue
		}
		kept = append(kept, sg)
	}
	for _, sg := range kept {
		s.used += sg.size
		rec.Bytes += sg.size
		f, err := os.Open(sg.path)
		if err != nil {
			return rec, fmt.Errorf("spool: open %s: %w", sg.path, err)
		}
		sc := newScanner(f, sg.first, 0, sg.end)
		for {
			id, _, ok := sc.next()
			if !ok {
				break
			}
			if id >= s.low {
				s.acks.add(id)
				s.pending++
			}
		}
		f.Close()
	}
	s.advanceLow()
	rec.Entries = s.pending
	s.segs = kept
	s.ckptLow = s.low
	s.rd.last = s.low - 1
	return rec, nil
}

// scanSegment validates sg's header and entries, setting last, end, size
// and entries; torn or damaged bytes are counted in rec and logged.
func (s *Spool) scanSegment(sg *segment, maxID uint64, rec *Recovery) error {
	f, err := os.Open(sg.path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	sg.size = st.Size()
	magic := make([]byte, segHeader)
	if n, _ := f.ReadAt(magic, 0); n < len(magic) || string(magic) != segMagic {
		if sg.size == 0 || (n < len(magic) && string(magic[:n]) == segMagic[:n]) {
			// Created but its header never fully written: a crash right
			// after a roll. Nothing in it.
			sg.last, sg.end = sg.first-1, sg.size
			return nil
		}
		return errors.New("no spool segment header")
	}
	sc := newScanner(f, sg.first, maxID, sg.size)
	sg.last = sg.first - 1
	for {
		id, _, ok := sc.next()
		if !ok {
			break
		}
		if sg.entries == 0 {
			sg.valid1 = id
		}
		sg.last = id
		sg.entries++
	}
	sg.end = sc.off - sc.tail
	if sc.damages > 0 {
		rec.Damaged += sc.damages
		rec.DamagedBytes += sc.skipped
		s.log.Warn("damaged data in a spool segment skipped; the entries in it are lost from the spool (creates among them are recovered by the REST backfill)",
			"segment", sg.path, "places", sc.damages, "bytes", sc.skipped)
	}
	if sc.tail > 0 {
		rec.TornBytes += sc.tail
		s.log.Warn("torn or damaged end of a spool segment discarded (a write interrupted by a crash)",
			"segment", sg.path, "bytes", sc.tail, "kept_entries", sg.entries)
	}
	return nil
}

func readCheckpoint(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 20 || string(b[:8]) != ackMagic {
		return 0, false
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:20]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]), true
}

const tmpSuffix = atomicfile.TmpSuffix

// writeCheckpoint replaces the checkpoint atomically (atomicfile.Write:
// the rename and the directory fsynced too). A failed write leaves no
// temporary file.
func (s *Spool) writeCheckpoint(low uint64) error {
	b := make([]byte, 20)
	copy(b, ackMagic)
	binary.LittleEndian.PutUint64(b[8:16], low)
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], castagnoli))
	return atomicfile.Write(filepath.Join(s.dir, ackFile), b, s.write)
}

// write writes b to f (after the test hook, if any).
func (s *Spool) write(f *os.File, b []byte) error {
	if s.opts.beforeWrite != nil {
		if err := s.opts.beforeWrite(len(b)); err != nil {
			return &os.PathError{Op: "write", Path: f.Name(), Err: err}
		}
	}
	_, err := f.Write(b)
	return err
}

// roll seals the segment being written (if any), deletes every segment
// whose entries are all acknowledged, and starts a new segment named after
// nextID. The deletions come first: on a full file system they make the
// room the new segment needs. If it cannot be created, no segment is open
// for writing and the next Append tries again. s.mu held, or the spool not
// yet shared.
func (s *Spool) roll() error {
	if s.w != nil {
		if err := s.w.Sync(); err != nil {
			return fmt.Errorf("spool: fsync %s: %w", s.w.Name(), err)
		}
		s.w.Close()
		s.w = nil
		s.dirty = false
		s.synced = s.written
		close(s.syncCh)
		s.syncCh = make(chan struct{})
	}
	s.rollNext = false
	s.deleteAcked()
	path := filepath.Join(s.dir, fmt.Sprintf("%020d%s", s.nextID, segSuffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	err = s.write(f, []byte(segMagic))
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool: start segment %s: %w", path, err)
	}
	_ = atomicfile.SyncDir(s.dir)
	sg := &segment{first: s.nextID, last: s.nextID - 1, path: path, end: segHeader, size: segHeader}
	s.segs = append(s.segs, sg)
	s.used += segHeader
	s.w = f
	return nil
}

// setBlocked records why Append cannot write (s.mu held).
func (s *Spool) setBlocked(err error) {
	if s.blocked == nil {
		s.blockedSince = time.Now()
	}
	s.blocked = err
}

// Append adds an entry and returns its id. It blocks while the spool is
// full or its file system has no space left (reporting how long in blocked,
// and why in Stats.Blocked) until acknowledgements free space, and, with
// SyncEvery = 0, until the entry is fsynced. It returns ctx's error if ctx
// ends first (the entry is then not appended, or appended but perhaps not
// yet fsynced), ErrTooLarge for an entry that can never fit, or the error
// of a write that failed otherwise (the entry is then not in the spool).
func (s *Spool) Append(ctx context.Context, data []byte) (id uint64, blocked time.Duration, err error) {
	need := int64(entryHeader + len(data))
	if len(data) > MaxEntry || need+2*segHeader > s.opts.MaxBytes {
		return 0, 0, ErrTooLarge
	}
	var start time.Time
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return 0, blocked, ErrClosed
		}
		poll := false // wait for space to return from elsewhere too
		if s.w == nil || s.rollNext || s.activeFull(need) {
			err := s.roll()
			if err == nil {
				continue
			}
			s.setBlocked(err)
			if !IsNoSpace(err) {
				s.mu.Unlock()
				return 0, blocked, err
			}
			poll = true
		} else if s.used+need > s.opts.MaxBytes {
			s.setBlocked(ErrFull)
		} else {
			id = s.nextID
			s.wbuf = appendEntry(s.wbuf[:0], id, data)
			active := s.segs[len(s.segs)-1]
			werr := s.write(s.w, s.wbuf)
			if cap(s.wbuf) > 1<<20 {
				s.wbuf = nil // one large entry: do not keep its buffer
			}
			if werr == nil {
				break
			}
			// Leave no partial entry behind.
			_ = s.w.Truncate(active.size)
			_, _ = s.w.Seek(active.size, 0)
			werr = fmt.Errorf("spool: write %s: %w", active.path, werr)
			s.setBlocked(werr)
			if !IsNoSpace(werr) {
				s.mu.Unlock()
				return 0, blocked, werr
			}
			if active.entries > 0 && active.last < s.low {
				// It holds only acknowledged entries: a new segment
				// frees them.
				s.rollNext = true
				continue
			}
			poll = true
		}
		if start.IsZero() {
			start = time.Now()
		}
		ch := s.spaceCh
		s.spaceWaiters++
		s.mu.Unlock()
		var retry <-chan time.Time
		var timer *time.Timer
		if poll {
			timer = time.NewTimer(time.Second)
			retry = timer.C
		}
		select {
		case <-ctx.Done():
		case <-ch:
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			s.mu.Lock()
			s.spaceWaiters--
			s.mu.Unlock()
			return 0, time.Since(start), ctx.Err()
		}
		s.mu.Lock()
		s.spaceWaiters--
	}
	if !start.IsZero() {
		blocked = time.Since(start)
	}
	s.blocked, s.blockedSince = nil, time.Time{}
	active := s.segs[len(s.segs)-1]
	s.nextID++
	s.acks.add(id)
	s.pending++
	active.size += need
	active.end = active.size
	active.last = id
	active.entries++
	s.used += need
	s.written = id
	s.dirty = true
	if s.dataWait {
		s.dataWait = false
		close(s.dataCh)
		s.dataCh = make(chan struct{})
	}
	if s.opts.SyncEvery > 0 {
		s.mu.Unlock()
		return id, blocked, nil
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	durable := id // the entry that must be fsynced before Append returns
	if n := uint64(s.opts.MaxUnsynced); n > 0 {
		if id <= n {
			durable = 0
		} else {
			durable = id - n
		}
	}
	for s.synced < durable && s.syncErr == nil && !s.closed {
		ch := s.syncCh
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return id, blocked, ctx.Err()
		case <-ch:
		}
		s.mu.Lock()
	}
	err = s.syncErr
	s.mu.Unlock()
	return id, blocked, err
}

// activeFull reports whether the segment being written must be sealed
// before an entry of need bytes: it would pass SegmentBytes, or the spool
// is full and the segment holds only acknowledged entries (sealing it
// lets it be deleted). s.mu held, s.w open.
func (s *Spool) activeFull(need int64) bool {
	active := s.segs[len(s.segs)-1]
	return active.size > segHeader &&
		(active.size+need > s.opts.SegmentBytes || (s.used+need > s.opts.MaxBytes && active.last < s.low))
}

// syncLoop is the group commit: it fsyncs the active segment when kicked
// (SyncEvery = 0; no sooner than SyncGap after the previous fsync began) or
// every SyncEvery, and rewrites the checkpoint.
func (s *Spool) syncLoop() {
	defer close(s.syncDone)
	var tick <-chan time.Time
	if s.opts.SyncEvery > 0 {
		t := time.NewTicker(s.opts.SyncEvery)
		defer t.Stop()
		tick = t.C
	}
	ck := time.NewTicker(s.opts.CheckpointEvery)
	defer ck.Stop()
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	var last time.Time // when the last kicked fsync began
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			if wait := s.opts.SyncGap - time.Since(last); s.opts.SyncGap > 0 && wait > 0 {
				gap.Reset(wait)
				select {
				case <-s.stop:
					return // Close fsyncs what is written
				case <-gap.C:
				}
			}
			last = time.Now()
			s.syncOnce()
		case <-tick:
			s.syncOnce()
		case <-ck.C:
			s.checkpoint()
		}
	}
}

func (s *Spool) syncOnce() {
	s.mu.Lock()
	if !s.dirty || s.w == nil {
		s.mu.Unlock()
		return
	}
	f, upto := s.w, s.written
	s.dirty = false
	s.mu.Unlock()
	err := f.Sync()
	s.mu.Lock()
	if err != nil && s.w == f {
		// A sync of a segment closed by roll (which synced it) in
		// between may fail harmlessly; any other failure is reported.
		s.syncErr = fmt.Errorf("spool: fsync %s: %w", f.Name(), err)
		s.log.Error("cannot fsync the spool", "err", err)
	}
	if err == nil || s.w != f {
		s.synced = max(s.synced, upto)
	}
	s.syncs++
	close(s.syncCh)
	s.syncCh = make(chan struct{})
	s.mu.Unlock()
}

// checkpoint writes the acknowledgement checkpoint if it changed. A
// failure (a full disk) costs duplicates after a restart, not data: it is
// logged once, and once more when a write succeeds again.
func (s *Spool) checkpoint() {
	s.mu.Lock()
	low := s.low
	if low == s.ckptLow {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	err := s.writeCheckpoint(low)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if !s.ckptErr {
			s.ckptErr = true
			s.log.Warn("cannot write the spool checkpoint; retrying every second (after a restart, acknowledged entries may be sent again)", "err", err)
		}
		return
	}
	if s.ckptErr {
		s.ckptErr = false
		s.log.Info("the spool checkpoint is written again")
	}
	s.ckptLow = max(s.ckptLow, low)
}

// Ack marks the entry id as acknowledged: once every entry of a segment is,
// the segment is deleted and its space freed. Unknown or repeated ids are
// ignored.
func (s *Spool) Ack(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < s.low {
		return
	}
	p := s.acks.find(id)
	if p == nil || *p {
		return
	}
	*p = true
	s.pending--
	if id == s.low {
		s.advanceLow()
		if !s.deleteAcked() && s.spaceWaiters > 0 {
			// The active segment may now be fully acknowledged: a
			// blocked Append can start a new one and free it.
			close(s.spaceCh)
			s.spaceCh = make(chan struct{})
		}
	}
}

// advanceLow moves low to the first entry not acknowledged, or to nextID.
func (s *Spool) advanceLow() {
	if l, ok := s.acks.trim(); ok {
		s.low = l
	} else {
		s.low = max(s.low, s.nextID)
	}
}

// deleteAcked removes every segment whose entries are all acknowledged,
// except the one being written. Each is truncated before it is removed:
// the reader may still hold it open, and an open file's blocks are freed
// only when it is closed, unless it is empty.
func (s *Spool) deleteAcked() bool {
	freed := false
	for len(s.segs) > 0 && s.segs[0].last < s.low && (s.w == nil || len(s.segs) > 1) {
		sg := s.segs[0]
		_ = os.Truncate(sg.path, 0)
		if err := os.Remove(sg.path); err != nil && !os.IsNotExist(err) {
			s.log.Warn("cannot delete an acknowledged spool segment", "segment", sg.path, "err", err)
			break
		}
		sg.deleted = true
		s.used -= sg.size
		s.segs = s.segs[1:]
		freed = true
	}
	if freed {
		close(s.spaceCh)
		s.spaceCh = make(chan struct{})
		// The reader lets go of deleted segments when it wakes.
		close(s.dataCh)
		s.dataCh = make(chan struct{})
	}
	return freed
}

// segAfter returns the first segment after sg (the first one when sg is
// nil), or nil. s.mu held.
func (s *Spool) segAfter(sg *segment) *segment {
	for _, x := range s.segs {
		if sg == nil || x.first > sg.first {
			return x
		}
	}
	return nil
}

// Next returns the next entry after the last one it returned, in id order,
// skipping acknowledged ones; it blocks until one is appended, ctx ends, or
// the spool is closed. The first entries after Open are the unacknowledged
// ones found on disk. Only one goroutine may call Next at a time.
func (s *Spool) Next(ctx context.Context) (Entry, error) {
	s.rdMu.Lock()
	defer s.rdMu.Unlock()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Entry{}, ErrClosed
		}
		sg := s.rd.seg
		wait, seen := s.dataCh, s.written
		if sg == nil || sg.deleted {
			// At the start, or the segment was deleted (every entry in it
			// acknowledged): on to the next one, if any.
			next := s.segAfter(sg)
			s.mu.Unlock()
			s.advanceReader(next)
			if next == nil {
				if err := s.waitData(ctx, wait, seen); err != nil {
					return Entry{}, err
				}
			}
			continue
		}
		end := sg.end
		nextSeg := s.segAfter(sg) // set once sg is sealed: end is then final
		s.mu.Unlock()

		if s.rd.sc == nil {
			f, err := os.Open(sg.path)
			if err != nil {
				if os.IsNotExist(err) && s.isDeleted(sg) {
					continue
				}
				return Entry{}, fmt.Errorf("spool: open %s: %w", sg.path, err)
			}
			s.rd.f = f
			s.rd.sc = newScanner(f, sg.first, 0, end)
		}
		sc := s.rd.sc
		sc.end = end
		id, p, ok := sc.next()
		if ok {
			if id <= s.rd.last {
				continue // returned before a reopen, or acknowledged before Open
			}
			s.rd.last = id
			if s.isAcked(id) {
				continue
			}
			return Entry{ID: id, Data: append([]byte(nil), p...)}, nil
		}
		if err := sc.readErr; err != nil {
			s.rd.f.Close()
			s.rd.f, s.rd.sc = nil, nil
			if s.isDeleted(sg) {
				continue
			}
			return Entry{}, fmt.Errorf("spool: read %s: %w", sg.path, err)
		}
		if nextSeg != nil {
			s.advanceReader(nextSeg)
			continue
		}
		if err := s.waitData(ctx, wait, seen); err != nil {
			return Entry{}, err
		}
	}
}

// Unread reports whether entries were appended after the last one Next
// returned: the next call to Next does not wait (unless they were all
// acknowledged meanwhile).
func (s *Spool) Unread() bool {
	s.rdMu.Lock()
	last := s.rd.last
	s.rdMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextID-1 > last
}

// waitData blocks the reader until an entry is appended or a segment
// deleted after it took wait and seen (s.dataCh and s.written) under s.mu,
// or ctx ends.
func (s *Spool) waitData(ctx context.Context, wait chan struct{}, seen uint64) error {
	s.mu.Lock()
	if s.written != seen || s.dataCh != wait {
		s.mu.Unlock()
		return nil // something changed meanwhile: look again
	}
	s.dataWait = true
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wait:
		return nil
	}
}

func (s *Spool) isDeleted(sg *segment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sg.deleted
}

func (s *Spool) advanceReader(sg *segment) {
	if s.rd.f != nil {
		s.rd.f.Close()
	}
	s.rd.f, s.rd.sc = nil, nil
	s.mu.Lock()
	s.rd.seg = sg
	s.mu.Unlock()
}

func (s *Spool) isAcked(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < s.low {
		return true
	}
	p := s.acks.find(id)
	return p == nil || *p
}

// Stats is a snapshot of the spool.
type Stats struct {
	Bytes    int64 // size of the segment files
	Entries  int64 // entries not yet acknowledged
	Segments int
	MaxBytes int64
	// Blocked says why Append cannot write, since BlockedSince: ErrFull,
	// or the error of the last write or segment creation (on a full file
	// system it wraps syscall.ENOSPC, see IsNoSpace). Nil once an entry is
	// written again.
	Blocked      error
	BlockedSince time.Time
	// Syncs is how many fsyncs the group commit has done.
	Syncs int64
}

// Marks returns the id the next appended entry gets and the lowest id
// not yet acknowledged: every entry appended before a call that returned
// next is acknowledged once a later call returns low >= next.
func (s *Spool) Marks() (next, low uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextID, s.low
}

// Stats returns the current size and backlog.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Bytes: s.used, Entries: s.pending, Segments: len(s.segs), MaxBytes: s.opts.MaxBytes,
		Blocked: s.blocked, BlockedSince: s.blockedSince, Syncs: s.syncs}
}

// Close fsyncs the log, writes the checkpoint, and releases the directory.
// Entries not acknowledged stay for the next Open. It returns an error only
// when the log could not be fsynced; a checkpoint that cannot be written
// (a full disk) is logged: acknowledged entries may then come out again
// after the next Open. Calls after the first return nil.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.dataCh)
	s.dataCh = make(chan struct{})
	close(s.spaceCh)
	s.spaceCh = make(chan struct{})
	close(s.syncCh)
	s.syncCh = make(chan struct{})
	s.mu.Unlock()
	close(s.stop)
	<-s.syncDone
	var errs []error
	s.mu.Lock()
	if s.w != nil {
		if err := s.w.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("spool: fsync: %w", err))
		}
	}
	low := s.low
	s.mu.Unlock()
	if err := s.writeCheckpoint(low); err != nil {
		s.log.Warn("cannot write the spool checkpoint at close; the next start may send acknowledged entries again (same ids)", "err", err)
	}
	_ = atomicfile.SyncDir(s.dir)
	s.rdMu.Lock()
	s.closeFiles()
	s.rdMu.Unlock()
	s.unlock()
	return errors.Join(errs...)
}

func (s *Spool) closeFiles() {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
	if s.rd.f != nil {
		s.rd.f.Close()
		s.rd.f = nil
	}
}
