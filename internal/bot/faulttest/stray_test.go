package faulttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peakRSS is the highest resident set size of process pid so far (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	n, err := readPeakRSS(pid)
	if err != nil {
		t.Fatalf("read the bot's memory use: %v", err)
	}
	return n
}

func readPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// TestFaultStraySegment: files named like spool segments with numbers far
// above the real ones (an empty one, one with only a segment header, one
// of garbage) lie in the spool directory of a bot killed with messages in
// its spool. The restarted bot neither allocates by those numbers nor
// loses the spool's messages: every message reaches Kafka, and its memory
// stays small.
func TestFaultStraySegment(t *testing.T) {
	b := privateBroker(t)
	w := newWorld(t)
	topic := topicName(t)
	dir := t.TempDir()
	first := startBot(t, "first", w.srv.Token(), botArgs(b, w, topic, dir)...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })
	tr := w.startTraffic(t, 100, 0)
	waitFor(t, 30*time.Second, "messages published", func() bool {
		return first.metric(t, "cordstream_bot_messages_published_total") >= 50
	})
	b.down(t, "pause")
	waitFor(t, 30*time.Second, "messages waiting in the spool", func() bool {
		return first.metric(t, "cordstream_bot_spool_entries") >= 100
	})
	if code := first.stop(t, syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Logf("killed bot exit code %d", code)
	}
	b.up(t, "pause")
	// Far above the real segments' numbers: a spool that allocated by the
	// name would need gigabytes. "CSSPOOL1" is a segment's header.
	const stray = 2_000_000_000
	for name, content := range map[string]string{
		fmt.Sprintf("%020d.seg", stray):   "",
		fmt.Sprintf("%020d.seg", stray+1): "CSSPOOL1",
		fmt.Sprintf("%020d.seg", stray+2): "not a spool segment",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second := startBot(t, "second", w.srv.Token(), botArgs(b, w, topic, dir)...)
	waitFor(t, 60*time.Second, "the restarted bot to connect", func() bool { return w.srv.Stats().Identifies >= 2 })
	time.Sleep(time.Second)
	tr.stop()
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	sent := tr.messages()
	got := b.waitAllInKafka(t, topic, sent, 3*time.Minute)
	rss := peakRSS(t, second.cmd.Process.Pid)
	replayed := second.metric(t, "cordstream_bot_spool_replayed_total")
	if code := second.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("second bot exit code %d, want 0", code)
	}
	dups := verdict(t, got, sent)
	if rss > 256<<20 {
		t.Errorf("the restarted bot's memory peaked at %d MiB: it allocated by a file name", rss>>20)
	}
	if replayed < 100 {
		t.Errorf("replayed %v messages from the spool, want the 100 or more the killed bot left", replayed)
	}
	t.Logf("RESULT stray segment files: %d messages, %v replayed from the spool past 3 stray files named up to %d; "+
		"the restarted bot peaked at %d MiB; all in Kafka, %d duplicates (same message_id and record)",
		len(sent), replayed, stray+2, rss>>20, dups)
}
