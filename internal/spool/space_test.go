package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// quota is a file system of limit bytes for the spool's directory: a write
// that would take the files past it fails with ENOSPC, as a full disk does.
type quota struct {
	dir   string
	limit atomic.Int64
	fails atomic.Int64
}

func newQuota(dir string, limit int64) *quota {
	q := &quota{dir: dir}
	q.limit.Store(limit)
	return q
}

func (q *quota) used() int64 {
	des, _ := os.ReadDir(q.dir)
	var n int64
	for _, de := range des {
		if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

func (q *quota) beforeWrite(n int) error {
	if q.used()+int64(n) > q.limit.Load() {
		q.fails.Add(1)
		return syscall.ENOSPC
	}
	return nil
}

// appendBlocks appends until Append blocks (it is then left running in the
// background); it returns the ids appended and the blocked call's result.
func appendBlocks(t *testing.T, s *Spool, data []byte) ([]uint64, chan error) {
	t.Helper()
	var ids []uint64
	for range 100000 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		id, _, err := s.Append(ctx, data)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			done := make(chan error, 1)
			go func() {
				_, _, err := s.Append(context.Background(), data)
				done <- err
			}()
			return ids, done
		}
		if err != nil {
			t.Fatalf("Append after %d entries: %v", len(ids), err)
		}
		ids = append(ids, id)
	}
	t.Fatal("Append never blocked")
	return nil, nil
}

func stillBlocked(t *testing.T, done chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Append returned (%v) %s", err, what)
	case <-time.After(300 * time.Millisecond):
	}
}

func unblocked(t *testing.T, done chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Append after %s: %v", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Append still blocked after %s", what)
	}
}

// TestDiskFullBlocksThenResumes: on a full file system Append blocks, says
// why, and resumes once Kafka acknowledges what the spool holds, even when
// it is all in the segment being written (it is then replaced, freeing
// it). Nothing appended is lost.
func TestDiskFullBlocksThenResumes(t *testing.T) {
	dir := t.TempDir()
	q := newQuota(dir, 64<<10)
	s, _, _ := open(t, dir, Options{SyncEvery: time.Hour, beforeWrite: q.beforeWrite})
	data := make([]byte, 1000)
	ids, done := appendBlocks(t, s, data)
	if len(ids) < 50 {
		t.Fatalf("only %d entries of 1000 bytes fit in 64 KiB", len(ids))
	}
	st := s.Stats()
	if !IsNoSpace(st.Blocked) || st.BlockedSince.IsZero() {
		t.Fatalf("Stats while blocked: Blocked=%v since %v; want ENOSPC", st.Blocked, st.BlockedSince)
	}
	if st.Segments != 1 {
		t.Fatalf("%d segments, want one (the one being written)", st.Segments)
	}
	got := readN(t, s, len(ids))
	// Acknowledging part of the segment frees nothing.
	for _, e := range got[:len(got)/2] {
		s.Ack(e.ID)
	}
	stillBlocked(t, done, "with half the segment acknowledged")
	for _, e := range got[len(got)/2:] {
		s.Ack(e.ID)
	}
	unblocked(t, done, "every entry was acknowledged")
	if st := s.Stats(); st.Blocked != nil || st.Entries != 1 {
		t.Errorf("after resuming: %+v, want not blocked and one entry", st)
	}
	e := readN(t, s, 1)[0]
	if e.ID != ids[len(ids)-1]+1 {
		t.Errorf("the entry appended after the block has id %d, want %d", e.ID, ids[len(ids)-1]+1)
	}
	if used := q.used(); used > 8<<10 {
		t.Errorf("%d bytes still used: the acknowledged segment was not freed", used)
	}
}

// TestDiskFullSpaceReturns: space freed by someone else unblocks Append
// within about a second, without any acknowledgement.
func TestDiskFullSpaceReturns(t *testing.T) {
	dir := t.TempDir()
	q := newQuota(dir, 32<<10)
	s, _, _ := open(t, dir, Options{SyncEvery: time.Hour, beforeWrite: q.beforeWrite})
	_, done := appendBlocks(t, s, make([]byte, 500))
	stillBlocked(t, done, "on a full disk")
	q.limit.Store(1 << 20)
	unblocked(t, done, "space returned")
}

// TestOpenOnFullDisk: a restart on a full file system opens the spool,
// says so, hands out what it holds, and takes new entries once their
// acknowledgement freed space.
func TestOpenOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	q := newQuota(dir, 48<<10)
	s, _, _ := open(t, dir, Options{SyncEvery: time.Hour, beforeWrite: q.beforeWrite})
	ids, done := appendBlocks(t, s, make([]byte, 700))
	s.Close()
	<-done
	q.limit.Store(q.used()) // not one byte more
	s2, rec, _ := open(t, dir, Options{SyncEvery: time.Hour, beforeWrite: q.beforeWrite})
	if !IsNoSpace(rec.NoSpace) || rec.Entries != int64(len(ids)) {
		t.Fatalf("recovery on a full disk = %+v, want NoSpace and %d entries", rec, len(ids))
	}
	if !IsNoSpace(s2.Stats().Blocked) {
		t.Errorf("Stats().Blocked = %v, want ENOSPC", s2.Stats().Blocked)
	}
	newDone := make(chan error, 1)
	go func() {
		_, _, err := s2.Append(context.Background(), []byte("after the restart"))
		newDone <- err
	}()
	stillBlocked(t, newDone, "on a full disk")
	for _, e := range readN(t, s2, len(ids)) {
		s2.Ack(e.ID)
	}
	unblocked(t, newDone, "the recovered entries were acknowledged")
	if e := readN(t, s2, 1)[0]; string(e.Data) != "after the restart" {
		t.Errorf("next entry %q", e.Data)
	}
	if _, err := os.Stat(filepath.Join(dir, ackFile+tmpSuffix)); err == nil {
		t.Error("a temporary checkpoint file was left behind")
	}
}

// TestCheckpointOnFullDiskLeavesNoTemporaryFile: a checkpoint that cannot
// be written is retried (logged once), is written once space returns, and
// leaves no temporary file, at Close neither.
func TestCheckpointOnFullDiskLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	q := newQuota(dir, 1<<20)
	s, _, logs := open(t, dir, Options{SyncEvery: time.Hour, CheckpointEvery: 20 * time.Millisecond, beforeWrite: q.beforeWrite})
	ids := appendN(t, s, 0, 10)
	readN(t, s, 10)
	q.limit.Store(q.used())
	for _, id := range ids[:5] {
		s.Ack(id)
	}
	time.Sleep(200 * time.Millisecond)
	if q.fails.Load() == 0 {
		t.Fatal("no checkpoint write failed: the fault did not engage")
	}
	q.limit.Store(1 << 20)
	time.Sleep(200 * time.Millisecond)
	if low, ok := readCheckpoint(filepath.Join(dir, ackFile)); !ok || low != ids[5] {
		t.Errorf("checkpoint = %d, %v; want %d once space returned", low, ok, ids[5])
	}
	if c := strings.Count(logs.String(), "cannot write the spool checkpoint"); c != 1 {
		t.Errorf("the failing checkpoint was logged %d times, want once:\n%s", c, logs)
	}
	q.limit.Store(q.used())
	for _, id := range ids[5:] {
		s.Ack(id)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close on a full disk: %v (a checkpoint costs duplicates, not data)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix)); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// TestStraySegmentFiles: files named like segments, with numbers far
// above the real ones, neither make Open allocate by their name or their
// ids, nor lose the real entries.
func TestStraySegmentFiles(t *testing.T) {
	huge := uint64(1) << 40
	cases := map[string]func(dir string){
		"empty": func(dir string) {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", huge, segSuffix)), nil, 0o600)
		},
		"header only": func(dir string) {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", huge, segSuffix)), []byte(segMagic), 0o600)
		},
		"garbage": func(dir string) {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", huge, segSuffix)), []byte("not a segment"), 0o600)
		},
		"valid entries with far ids": func(dir string) {
			b := appendEntry([]byte(segMagic), huge, []byte("stray 1"))
			b = appendEntry(b, huge+1, []byte("stray 2"))
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", huge, segSuffix)), b, 0o600)
		},
		"a small number between real segments": func(dir string) {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d%s", 2, segSuffix)), []byte(segMagic), 0o600)
		},
	}
	for name, stray := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, Options{SegmentBytes: 1 << 10})
			appendN(t, s, 0, 40)
			s.Close()
			stray(dir)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s2, rec, _ := open(t, dir, Options{})
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("Open allocated %d MiB", grew>>20)
			}
			got := readN(t, s2, int(rec.Entries))
			real := 0
			for _, e := range got {
				if e.ID < huge {
					real++
				}
			}
			if real != 40 {
				t.Errorf("%d of the 40 real entries came back (recovery %+v)", real, rec)
			}
			id, _, err := s2.Append(context.Background(), []byte("new"))
			if err != nil {
				t.Fatal(err)
			}
			if e := readN(t, s2, 1)[0]; e.ID != id {
				t.Errorf("next = %d, want the new entry %d", e.ID, id)
			}
			s2.Close()
			if _, rec, _ := open(t, dir, Options{}); rec.Entries != int64(len(got))+1 {
				t.Errorf("reopened with %d entries, want %d", rec.Entries, len(got)+1)
			}
		})
	}
}

// TestAckRuns checks the sparse acknowledgement set against a plain map.
func TestAckRuns(t *testing.T) {
	var a ackRuns
	want := map[uint64]bool{}
	ids := []uint64{1, 2, 3, 10, 11, 1 << 50, 1<<50 + 1, 1<<50 + 5}
	for _, id := range ids {
		a.add(id)
		want[id] = false
	}
	if len(a) != 4 {
		t.Fatalf("%d runs, want 4", len(a))
	}
	for _, id := range []uint64{0, 4, 9, 12, 1<<50 + 2, 1 << 60} {
		if a.find(id) != nil {
			t.Errorf("find(%d) found an entry that was never added", id)
		}
	}
	for _, id := range []uint64{2, 1, 10, 11, 3} {
		*a.find(id) = true
	}
	if low, ok := a.trim(); !ok || low != 1<<50 {
		t.Errorf("trim = %d, %v; want %d", low, ok, uint64(1)<<50)
	}
	for _, id := range ids[5:] {
		*a.find(id) = true
	}
	if _, ok := a.trim(); ok || len(a) != 0 {
		t.Errorf("trim after acknowledging everything: %v, %d runs", ok, len(a))
	}
}
