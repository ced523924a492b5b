package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func open(t *testing.T, dir string, o Options) (*Spool, Recovery, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	o.Log = slog.New(slog.NewTextHandler(lb, nil))
	s, rec, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec, lb
}

// crash abandons s as a killed process would: no fsync, no checkpoint.
func crash(s *Spool) {
	s.mu.Lock()
	s.closed = true
	close(s.dataCh)
	s.dataCh = make(chan struct{})
	s.mu.Unlock()
	close(s.stop)
	<-s.syncDone
	s.rdMu.Lock()
	s.closeFiles()
	s.rdMu.Unlock()
	s.unlock()
}

func payload(i int) []byte {
	return []byte(fmt.Sprintf("entry %d %s", i, strings.Repeat("x", i%37)))
}

func appendN(t *testing.T, s *Spool, from, n int) []uint64 {
	t.Helper()
	var ids []uint64
	for i := from; i < from+n; i++ {
		id, _, err := s.Append(context.Background(), payload(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// readN reads n entries, failing after a second without one.
func readN(t *testing.T, s *Spool, n int) []Entry {
	t.Helper()
	var out []Entry
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		e, err := s.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Next after %d entries: %v", len(out), err)
		}
		out = append(out, e)
	}
	return out
}

func expectNone(t *testing.T, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if e, err := s.Next(ctx); err == nil {
		t.Fatalf("Next = entry %d %q, want none", e.ID, e.Data)
	}
}

func TestAppendNextAck(t *testing.T) {
	dir := t.TempDir()
	s, rec, _ := open(t, dir, Options{})
	if rec.Entries != 0 || rec.Segments != 0 {
		t.Errorf("fresh spool recovery = %+v", rec)
	}
	ids := appendN(t, s, 0, 100)
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("ids not consecutive: %d then %d", ids[i-1], ids[i])
		}
	}
	got := readN(t, s, 100)
	for i, e := range got {
		if e.ID != ids[i] || !bytes.Equal(e.Data, payload(i)) {
			t.Fatalf("entry %d = %d %q, want %d %q", i, e.ID, e.Data, ids[i], payload(i))
		}
	}
	expectNone(t, s)
	if st := s.Stats(); st.Entries != 100 {
		t.Errorf("pending = %d, want 100", st.Entries)
	}
	for _, id := range ids {
		s.Ack(id)
		s.Ack(id) // repeated: ignored
	}
	if st := s.Stats(); st.Entries != 0 {
		t.Errorf("pending after acks = %d, want 0", st.Entries)
	}
}

func TestReopenReplaysUnacknowledgedInOrder(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		t.Run(fmt.Sprint("graceful=", graceful), func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, Options{SegmentBytes: 4 << 10, SyncEvery: 10 * time.Millisecond})
			ids := appendN(t, s, 0, 300)
			readN(t, s, 300)
			// Acknowledge the first 100 and a few later ones out of order.
			for _, id := range ids[:100] {
				s.Ack(id)
			}
			s.Ack(ids[150])
			s.Ack(ids[151])
			if graceful {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				time.Sleep(1100 * time.Millisecond) // one checkpoint period
				crash(s)
			}
			s2, rec, _ := open(t, dir, Options{SegmentBytes: 4 << 10})
			// Entries past the low-water mark that were acknowledged out of
			// order come again (at-least-once); nothing before it does.
			if rec.Entries != 200 {
				t.Errorf("recovered entries = %d, want 200", rec.Entries)
			}
			got := readN(t, s2, 200)
			for i, e := range got {
				if e.ID != ids[100+i] || !bytes.Equal(e.Data, payload(100+i)) {
					t.Fatalf("replayed entry %d = %d %q, want %d", i, e.ID, e.Data, ids[100+i])
				}
			}
			expectNone(t, s2)
			// New entries continue the ids and come after the replay.
			more := appendN(t, s2, 300, 3)
			if more[0] <= ids[len(ids)-1] {
				t.Errorf("new id %d not after the old ones (%d)", more[0], ids[len(ids)-1])
			}
			if e := readN(t, s2, 1)[0]; e.ID != more[0] {
				t.Errorf("next = %d, want %d", e.ID, more[0])
			}
		})
	}
}

func TestSegmentsDeletedOnceAcknowledged(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{SegmentBytes: 2 << 10})
	ids := appendN(t, s, 0, 500)
	readN(t, s, 500)
	if n := countSegs(t, dir); n < 5 {
		t.Fatalf("%d segment files, want several", n)
	}
	before := s.Stats().Bytes
	for _, id := range ids {
		s.Ack(id)
	}
	if n := countSegs(t, dir); n != 1 {
		t.Errorf("%d segment files after acknowledging everything, want 1 (the active one)", n)
	}
	if after := s.Stats().Bytes; after >= before/4 {
		t.Errorf("bytes %d -> %d: space not freed", before, after)
	}
	s.Close()
	s2, rec, _ := open(t, dir, Options{})
	if rec.Entries != 0 {
		t.Errorf("recovered %d entries after everything was acknowledged", rec.Entries)
	}
	expectNone(t, s2)
}

func countSegs(t *testing.T, dir string) int {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	return len(m)
}

func TestBoundBlocksUntilAcknowledged(t *testing.T) {
	dir := t.TempDir()
	const max = 1 << 20
	s, _, _ := open(t, dir, Options{MaxBytes: max, SyncEvery: time.Hour})
	big := bytes.Repeat([]byte("b"), 10<<10)
	var ids []uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		id, _, err := s.Append(ctx, big)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if len(ids) > 1000 {
			t.Fatal("the spool never filled up")
		}
		if st := s.Stats(); st.Bytes > max {
			t.Fatalf("spool holds %d bytes, above its bound %d", st.Bytes, max)
		}
	}
	if len(ids) < 80 {
		t.Fatalf("only %d entries of 10 KiB fit in 1 MiB", len(ids))
	}
	// A blocked Append resumes once entries are acknowledged.
	done := make(chan error, 1)
	var blocked time.Duration
	go func() {
		var err error
		_, blocked, err = s.Append(context.Background(), big)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Append returned %v while the spool is full", err)
	default:
	}
	readN(t, s, len(ids))
	for _, id := range ids {
		s.Ack(id)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if blocked < 50*time.Millisecond {
			t.Errorf("blocked = %v, want the time spent waiting", blocked)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked after every entry was acknowledged")
	}
	if st := s.Stats(); st.Bytes > max {
		t.Errorf("spool holds %d bytes, above its bound", st.Bytes)
	}
	if _, _, err := s.Append(context.Background(), make([]byte, MaxEntry+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Append(too large) = %v, want ErrTooLarge", err)
	}
}

func TestGroupCommitConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{}) // SyncEvery 0: fsync before returning
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id, _, err := s.Append(context.Background(), payload(g*100+i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 400 {
		t.Fatalf("%d distinct ids, want 400", len(seen))
	}
	s.mu.Lock()
	synced, written := s.synced, s.written
	s.mu.Unlock()
	if synced != written {
		t.Errorf("synced %d < written %d after every Append returned", synced, written)
	}
}

func TestLockedByAnotherOpen(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	_, _, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Errorf("second Open = %v, want an in-use error naming the pid", err)
	}
}

// segFiles returns the segment paths in order.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	sort.Strings(m)
	return m
}

func TestTornTailDiscarded(t *testing.T) {
	for _, cut := range []int{1, 7, 16, 17, 30} {
		t.Run(fmt.Sprint("cut ", cut), func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, Options{})
			appendN(t, s, 0, 10)
			crash(s)
			segs := segFiles(t, dir)
			last := segs[len(segs)-1]
			st, _ := os.Stat(last)
			lastLen := int64(entryHeader + len(payload(9)))
			if int64(cut) >= lastLen {
				t.Fatalf("cut %d >= entry size %d", cut, lastLen)
			}
			// A crash in the middle of writing the 10th entry.
			if err := os.Truncate(last, st.Size()-int64(cut)); err != nil {
				t.Fatal(err)
			}
			s2, rec, logs := open(t, dir, Options{})
			if rec.Entries != 9 || rec.TornBytes != lastLen-int64(cut) {
				t.Errorf("recovery = %+v, want 9 entries and %d torn bytes", rec, lastLen-int64(cut))
			}
			if !strings.Contains(logs.String(), "torn") {
				t.Errorf("no warning about the torn write:\n%s", logs)
			}
			got := readN(t, s2, 9)
			for i, e := range got {
				if !bytes.Equal(e.Data, payload(i)) {
					t.Errorf("entry %d = %q", i, e.Data)
				}
			}
			expectNone(t, s2)
			// Appending continues cleanly after the damaged segment.
			appendN(t, s2, 100, 2)
			if e := readN(t, s2, 1)[0]; !bytes.Equal(e.Data, payload(100)) {
				t.Errorf("after the torn tail, next = %q", e.Data)
			}
		})
	}
}

func TestDamagedEntrySkipped(t *testing.T) {
	tests := []struct {
		name   string
		damage func(b []byte, off int)
	}{
		{"payload byte flipped", func(b []byte, off int) { b[off+entryHeader+2] ^= 0x40 }},
		{"crc flipped", func(b []byte, off int) { b[off+5] ^= 1 }},
		{"length garbled", func(b []byte, off int) { b[off+3] = 0x7f }},
		{"zeroed", func(b []byte, off int) {
			for i := off; i < off+entryHeader+4; i++ {
				b[i] = 0
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, Options{})
			appendN(t, s, 0, 20)
			s.Close()
			path := segFiles(t, dir)[0]
			b, _ := os.ReadFile(path)
			// Offset of entry 5.
			off := int(segHeader)
			for i := range 5 {
				off += entryHeader + len(payload(i))
			}
			tt.damage(b, off)
			os.WriteFile(path, b, 0o600)
			s2, rec, logs := open(t, dir, Options{})
			if rec.Entries != 19 || rec.Damaged != 1 {
				t.Errorf("recovery = %+v, want 19 entries, 1 damaged place", rec)
			}
			if !strings.Contains(logs.String(), "damaged") {
				t.Errorf("no warning about the damage:\n%s", logs)
			}
			got := readN(t, s2, 19)
			j := 0
			for i := range 20 {
				if i == 5 {
					continue
				}
				if !bytes.Equal(got[j].Data, payload(i)) {
					t.Errorf("entry %d = %q, want %q", j, got[j].Data, payload(i))
				}
				j++
			}
			expectNone(t, s2)
		})
	}
}

func TestBadSegmentHeaderRenamed(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{SegmentBytes: 1 << 10})
	appendN(t, s, 0, 100)
	s.Close()
	segs := segFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	os.WriteFile(segs[1], []byte("this is not a spool segment at all"), 0o600)
	s2, rec, logs := open(t, dir, Options{})
	if rec.Corrupt != 1 {
		t.Errorf("recovery = %+v, want 1 corrupt segment", rec)
	}
	if _, err := os.Stat(segs[1] + ".corrupt"); err != nil {
		t.Errorf("the bad segment was not kept as .corrupt: %v", err)
	}
	if !strings.Contains(logs.String(), "unreadable") {
		t.Errorf("no warning:\n%s", logs)
	}
	got := readN(t, s2, int(rec.Entries))
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("ids out of order")
		}
	}
	expectNone(t, s2)
}

func TestDamagedCheckpointReplaysEverything(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{})
	ids := appendN(t, s, 0, 10)
	readN(t, s, 10)
	for _, id := range ids[:5] {
		s.Ack(id)
	}
	s.Close()
	b, _ := os.ReadFile(filepath.Join(dir, ackFile))
	b[10] ^= 0xff
	os.WriteFile(filepath.Join(dir, ackFile), b, 0o600)
	s2, rec, logs := open(t, dir, Options{})
	// The acknowledged entries' segment is still there (one active
	// segment), so all ten come back: duplicates, never a loss.
	if rec.Entries != 10 {
		t.Errorf("recovered %d entries, want 10", rec.Entries)
	}
	if !strings.Contains(logs.String(), "checkpoint is damaged") {
		t.Errorf("no warning:\n%s", logs)
	}
	readN(t, s2, 10)
}

// TestRandomDamageNeverFails: whatever happens to the bytes of the segments
// and the checkpoint, Open succeeds, and Next returns only entries that were
// written, intact, in increasing id order.
func TestRandomDamageNeverFails(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			dir := t.TempDir()
			s, _, _ := open(t, dir, Options{SegmentBytes: 1 << 10, SyncEvery: time.Hour})
			ids := appendN(t, s, 0, 120)
			byID := map[uint64][]byte{}
			for i, id := range ids {
				byID[id] = payload(i)
			}
			readN(t, s, 50)
			for _, id := range ids[:r.IntN(50)] {
				s.Ack(id)
			}
			crash(s)
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			for range 1 + r.IntN(6) {
				f := files[r.IntN(len(files))]
				b, err := os.ReadFile(f)
				if err != nil || len(b) == 0 {
					continue
				}
				switch r.IntN(4) {
				case 0: // flip bytes
					for range 1 + r.IntN(5) {
						b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
					}
				case 1: // truncate
					b = b[:r.IntN(len(b))]
				case 2: // garbage appended
					g := make([]byte, r.IntN(200))
					for i := range g {
						g[i] = byte(r.IntN(256))
					}
					b = append(b, g...)
				case 3: // a zeroed block
					o := r.IntN(len(b))
					for i := o; i < min(len(b), o+r.IntN(300)); i++ {
						b[i] = 0
					}
				}
				os.WriteFile(f, b, 0o600)
			}
			s2, rec, _ := open(t, dir, Options{})
			var last uint64
			for range rec.Entries {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				e, err := s2.Next(ctx)
				cancel()
				if err != nil {
					t.Fatalf("Next: %v (recovery %+v) after id %d", err, rec, last)
				}
				if e.ID <= last {
					t.Fatalf("id %d after %d", e.ID, last)
				}
				last = e.ID
				if want, ok := byID[e.ID]; !ok || !bytes.Equal(want, e.Data) {
					t.Fatalf("entry %d = %q, never written as such", e.ID, e.Data)
				}
			}
			expectNone(t, s2)
			// The spool stays usable.
			id, _, err := s2.Append(context.Background(), []byte("after"))
			if err != nil {
				t.Fatal(err)
			}
			if e := readN(t, s2, 1)[0]; e.ID != id {
				t.Errorf("next = %d, want the new entry %d", e.ID, id)
			}
		})
	}
}

// FuzzOpenSegment: a segment with arbitrary bytes never makes Open fail or
// panic, and what Next returns is in id order.
func FuzzOpenSegment(f *testing.F) {
	var seed []byte
	seed = append(seed, segMagic...)
	seed = appendEntry(seed, 1, []byte("hello"))
	seed = appendEntry(seed, 2, []byte("world"))
	f.Add(seed)
	f.Add([]byte(segMagic))
	f.Add(append([]byte(segMagic), 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 1, segSuffix)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, rec, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		var last uint64
		for range rec.Entries {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			e, err := s.Next(ctx)
			cancel()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if e.ID <= last {
				t.Fatalf("id %d after %d", e.ID, last)
			}
			last = e.ID
		}
	})
}

// With MaxUnsynced, one writer appending in a loop does not wait for each
// fsync, yet never leaves more than MaxUnsynced entries unsynced, and the
// fsyncs catch up on their own once it stops.
func TestMaxUnsyncedBoundsTheBacklog(t *testing.T) {
	dir := t.TempDir()
	const max = 5
	s, _, _ := open(t, dir, Options{MaxUnsynced: max})
	waited := 0
	for i := range 300 {
		id, _, err := s.Append(context.Background(), payload(i))
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		synced := s.synced
		s.mu.Unlock()
		if id > synced+max {
			t.Fatalf("entry %d returned with only %d fsynced: more than %d unsynced", id, synced, max)
		}
		if synced >= id {
			waited++
		}
	}
	if waited == 300 {
		t.Errorf("every Append returned with its entry already fsynced: the writer waited for each fsync")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		synced, written := s.synced, s.written
		s.mu.Unlock()
		if synced == written {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fsyncs stopped at %d of %d written", synced, written)
		}
		time.Sleep(time.Millisecond)
	}
}

// With SyncGap, the group commit's fsyncs are spaced: entries appended
// after an fsync began wait for the next one, which comes no sooner than
// the gap (here an hour: none within the test), however many entries
// arrive; Append returns meanwhile (MaxUnsynced), and Close fsyncs them.
func TestSyncGapSpacesTheFsyncs(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{MaxUnsynced: 1000, SyncGap: time.Hour})
	if _, _, err := s.Append(context.Background(), payload(0)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Syncs < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first entry was never fsynced")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 200; i++ {
		if _, _, err := s.Append(context.Background(), payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // room for a (wrong) back-to-back fsync
	if n := s.Stats().Syncs; n != 1 {
		t.Errorf("%d fsyncs within the gap, want 1", n)
	}
	s.mu.Lock()
	synced, written := s.synced, s.written
	s.mu.Unlock()
	if synced >= written {
		t.Fatalf("synced %d of %d: the gap did not hold the second fsync back", synced, written)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, rec, _ := open(t, dir, Options{})
	defer s2.Close()
	if rec.Entries != 201 {
		t.Errorf("reopened with %d entries, want 201: Close must fsync what the gap held back", rec.Entries)
	}
}

// Unread says whether Next would return at once: entries from a previous
// run, or appended after the last one Next returned.
func TestUnread(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{})
	if s.Unread() {
		t.Fatal("an empty spool has unread entries")
	}
	for i := range 2 {
		if _, _, err := s.Append(context.Background(), payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _, _ = open(t, dir, Options{})
	defer s.Close()
	for i := range 2 {
		if !s.Unread() {
			t.Fatalf("entry %d of the previous run not unread", i)
		}
		if _, err := s.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if s.Unread() {
		t.Fatal("unread entries after reading them all")
	}
	if _, _, err := s.Append(context.Background(), payload(2)); err != nil {
		t.Fatal(err)
	}
	if !s.Unread() {
		t.Fatal("an appended entry is not unread")
	}
}
