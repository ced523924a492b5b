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
//     an OS crash can lose those.
//   - Entries come out of Next in append order, from the oldest entry not
//     yet acknowledged: after a restart the previous run's unacknowledged
//     entries come first. An entry acknowledged shortly before a crash may
//     come out again (the checkpoint of acknowledgements is written at most
//     once a second and at Close), never one that was not appended.
//   - The files never hold more than Options.MaxBytes: Append blocks until
//     acknowledgements free whole segments, or its context ends.
//   - Every entry carries its length, id and a CRC-32C. Opening a spool
//     skips damaged entries and torn writes at the end of a segment (a crash
//     in the middle of a write) with a warning, and never fails or panics
//     because of the content of a segment; a segment with a bad header is
//     renamed to *.corrupt and left for inspection.
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
	// CheckpointEvery is how often the acknowledgement checkpoint is
	// rewritten while it changes (1 s when zero).
	CheckpointEvery time.Duration
	// Log receives the warnings about damaged data (discarded when nil).
	Log *slog.Logger
}

// ErrTooLarge is returned by Append for a payload over MaxEntry or one that
// could never fit in MaxBytes.
var ErrTooLarge = errors.New("spool: entry too large")

// ErrClosed is returned by Append and Next after Close.
var ErrClosed = errors.New("spool: closed")

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
}

type segment struct {
	first   uint64 // id the file is named after
	last    uint64 // id of the last entry (first-1 when empty)
	path    string
	end     int64 // readable end: after the last valid entry
	size    int64 // bytes on disk
	entries int64
	valid1  uint64 // id of the first valid entry (0 when empty)
}

// Spool is an open spool directory. Append, Ack and Next may be called from
// different goroutines; Next from one goroutine at a time.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	mu      sync.Mutex
	segs    []*segment // ascending; the last one is written to
	w       *os.File   // the last segment, open for appending
	nextID  uint64
	used    int64 // bytes of all segment files
	pending int64 // entries appended or recovered and not acknowledged
	closed  bool

	// Acknowledgements: every id below low is acknowledged; acked[i]
	// says whether low+i is.
	low   uint64
	acked []bool

	spaceWaiters int

	// Waiting: closed and replaced when something changes.
	spaceCh chan struct{} // space freed
	dataCh  chan struct{} // entry appended
	syncCh  chan struct{} // an fsync completed

	written  uint64 // last id written
	synced   uint64 // last id known durable
	dirty    bool   // the file w has unsynced writes
	ckptLow  uint64 // low as last written to the checkpoint
	kick     chan struct{}
	stop     chan struct{}
	syncDone chan struct{}
	syncErr  error

	rdMu sync.Mutex // held by Next; Close takes it to close the reader's file
	rd   reader     // rdMu; rd.seg is also written under mu
}

// reader is Next's position.
type reader struct {
	seg  *segment
	f    *os.File
	sc   *scanner
	last uint64 // id of the last entry returned
}

// Open opens (creating it if needed) the spool in dir and recovers its
// content. It fails if another process holds the directory, or if the
// directory cannot be used; damaged content is reported in Recovery, not
// as an error.
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
		s.closeFiles()
		s.unlock()
		return nil, rec, err
	}
	go s.syncLoop()
	return s, rec, nil
}

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
		return nil, fmt.Errorf("spool directory %s is in use by another process (pid %s): each bot needs its own spool directory", dir, holder)
	}
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

	s.low = max(low, 1)
	s.nextID = s.low
	var kept []*segment
	for i, sg := range segs {
		var maxID uint64
		if i+1 < len(segs) {
			maxID = segs[i+1].first
		}
		if err := s.scanSegment(sg, maxID, &rec); err != nil {
			s.log.Warn("spool segment unreadable; renamed and skipped (its entries are lost from the spool; creates among them are recovered by the REST backfill)",
				"segment", sg.path, "err", err)
			_ = os.Rename(sg.path, sg.path+".corrupt")
			rec.Corrupt++
			continue
		}
		s.nextID = max(s.nextID, sg.first, sg.last+1)
		if sg.entries == 0 || sg.last < s.low {
			// Empty, or fully acknowledged before the restart.
			if err := os.Remove(sg.path); err != nil && !os.IsNotExist(err) {
				return rec, fmt.Errorf("spool: remove %s: %w", sg.path, err)
			}
			continue
		}
		kept = append(kept, sg)
	}
	s.nextID = max(s.nextID, s.low)
	// Nothing below the first kept entry exists: start there.
	if len(kept) > 0 {
		s.low = max(s.low, kept[0].valid1)
	} else {
		s.low = s.nextID
	}
	// Ids in [low, nextID) that no kept entry has (damage, gaps) count as
	// acknowledged; pending counts the real entries.
	s.acked = make([]bool, s.nextID-s.low)
	for i := range s.acked {
		s.acked[i] = true
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
				s.acked[id-s.low] = false
				s.pending++
			}
		}
		f.Close()
	}
	s.advanceLow()
	rec.Entries = s.pending
	s.segs = kept
	s.ckptLow = s.low
	if len(kept) > 0 {
		s.rd.seg = kept[0]
	}
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

func (s *Spool) writeCheckpoint(low uint64) error {
	b := make([]byte, 20)
	copy(b, ackMagic)
	binary.LittleEndian.PutUint64(b[8:16], low)
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], castagnoli))
	path := filepath.Join(s.dir, ackFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// roll starts a new segment named after nextID (s.mu held or not yet shared).
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
	path := filepath.Join(s.dir, fmt.Sprintf("%020d%s", s.nextID, segSuffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	if _, err := f.Write([]byte(segMagic)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool: write segment header: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool: fsync segment: %w", err)
	}
	syncDir(s.dir)
	sg := &segment{first: s.nextID, last: s.nextID - 1, path: path, end: segHeader, size: segHeader}
	s.segs = append(s.segs, sg)
	s.used += segHeader
	s.w = f
	if s.rd.seg == nil {
		s.rd.seg = sg
	}
	s.deleteAcked()
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Append adds an entry and returns its id. It blocks while the spool is
// full (reporting how long in blocked) until acknowledgements free space,
// and, with SyncEvery = 0, until the entry is fsynced. It returns ctx's
// error if ctx ends first (the entry is then not appended, or appended but
// perhaps not yet fsynced), ErrTooLarge for an entry that can never fit,
// or the error of a failed write (the entry is then not in the spool).
func (s *Spool) Append(ctx context.Context, data []byte) (id uint64, blocked time.Duration, err error) {
	need := int64(entryHeader + len(data))
	if len(data) > MaxEntry || need+2*segHeader > s.opts.MaxBytes {
		return 0, 0, ErrTooLarge
	}
	buf := make([]byte, 0, need)
	var start time.Time
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return 0, blocked, ErrClosed
		}
		active := s.segs[len(s.segs)-1]
		if active.size > segHeader && (active.size+need > s.opts.SegmentBytes || (s.used+need > s.opts.MaxBytes && active.last < s.low)) {
			if err := s.roll(); err != nil {
				s.mu.Unlock()
				return 0, blocked, err
			}
			continue
		}
		if s.used+need <= s.opts.MaxBytes {
			break
		}
		if start.IsZero() {
			start = time.Now()
		}
		ch := s.spaceCh
		s.spaceWaiters++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.spaceWaiters--
			s.mu.Unlock()
			return 0, time.Since(start), ctx.Err()
		case <-ch:
		}
		s.mu.Lock()
		s.spaceWaiters--
	}
	if !start.IsZero() {
		blocked = time.Since(start)
	}
	id = s.nextID
	buf = appendEntry(buf, id, data)
	active := s.segs[len(s.segs)-1]
	if _, err := s.w.Write(buf); err != nil {
		// Leave no partial entry behind.
		_ = s.w.Truncate(active.size)
		_, _ = s.w.Seek(active.size, 0)
		s.mu.Unlock()
		return 0, blocked, fmt.Errorf("spool: write %s: %w", active.path, err)
	}
	s.nextID++
	s.acked = append(s.acked, false)
	s.pending++
	active.size += need
	active.end = active.size
	active.last = id
	active.entries++
	s.used += need
	s.written = id
	s.dirty = true
	close(s.dataCh)
	s.dataCh = make(chan struct{})
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

// syncLoop is the group commit: it fsyncs the active segment when kicked
// (SyncEvery = 0) or every SyncEvery, and rewrites the checkpoint.
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
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
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
	close(s.syncCh)
	s.syncCh = make(chan struct{})
	s.mu.Unlock()
}

func (s *Spool) checkpoint() {
	s.mu.Lock()
	low := s.low
	if low == s.ckptLow {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if err := s.writeCheckpoint(low); err != nil {
		s.log.Warn("cannot write the spool checkpoint (after a restart, acknowledged entries may be sent again)", "err", err)
		return
	}
	s.mu.Lock()
	s.ckptLow = max(s.ckptLow, low)
	s.mu.Unlock()
}

// Ack marks the entry id as acknowledged: once every entry of a segment is,
// the segment is deleted and its space freed. Unknown or repeated ids are
// ignored.
func (s *Spool) Ack(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < s.low || id >= s.low+uint64(len(s.acked)) || s.acked[id-s.low] {
		return
	}
	s.acked[id-s.low] = true
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

func (s *Spool) advanceLow() {
	i := 0
	for i < len(s.acked) && s.acked[i] {
		i++
	}
	if i == 0 {
		return
	}
	s.low += uint64(i)
	s.acked = s.acked[i:]
	if cap(s.acked) > 1024 && len(s.acked) < cap(s.acked)/4 {
		s.acked = append(make([]bool, 0, 2*len(s.acked)+64), s.acked...)
	}
}

// deleteAcked removes every segment but the active one whose entries are
// all acknowledged.
func (s *Spool) deleteAcked() bool {
	freed := false
	for len(s.segs) > 1 && s.segs[0].last < s.low {
		sg := s.segs[0]
		if err := os.Remove(sg.path); err != nil && !os.IsNotExist(err) {
			s.log.Warn("cannot delete an acknowledged spool segment", "segment", sg.path, "err", err)
			break
		}
		s.used -= sg.size
		s.segs = s.segs[1:]
		freed = true
	}
	if freed {
		close(s.spaceCh)
		s.spaceCh = make(chan struct{})
	}
	return freed
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
		end := sg.end
		var nextSeg *segment // set once sg is sealed: end is then final
		for _, x := range s.segs {
			if x.first > sg.first {
				nextSeg = x
				break
			}
		}
		wait := s.dataCh
		s.mu.Unlock()

		if s.rd.sc == nil {
			f, err := os.Open(sg.path)
			if err != nil {
				if os.IsNotExist(err) && nextSeg != nil {
					// Deleted: every entry in it was acknowledged.
					s.advanceReader(nextSeg)
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
			return Entry{}, fmt.Errorf("spool: read %s: %w", sg.path, err)
		}
		if nextSeg != nil {
			s.advanceReader(nextSeg)
			continue
		}
		select {
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		case <-wait:
		}
	}
}

func (s *Spool) advanceReader(sg *segment) {
	if s.rd.f != nil {
		s.rd.f.Close()
	}
	s.rd.f, s.rd.sc = nil, nil
	s.mu.Lock() // roll reads rd.seg under mu
	s.rd.seg = sg
	s.mu.Unlock()
}

func (s *Spool) isAcked(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < s.low {
		return true
	}
	i := id - s.low
	return i < uint64(len(s.acked)) && s.acked[i]
}

// Stats is a snapshot of the spool.
type Stats struct {
	Bytes    int64 // size of the segment files
	Entries  int64 // entries not yet acknowledged
	Segments int
	MaxBytes int64
}

// Stats returns the current size and backlog.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Bytes: s.used, Entries: s.pending, Segments: len(s.segs), MaxBytes: s.opts.MaxBytes}
}

// Close fsyncs the log, writes the checkpoint, and releases the directory.
// Entries not acknowledged stay for the next Open. Calls after the first
// return nil.
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
		errs = append(errs, fmt.Errorf("spool: checkpoint: %w", err))
	}
	syncDir(s.dir)
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
