package faulttest

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// diskSizes are the sizes of the full-disk tests: messages, and how long
// the broker stays paused. Default: 5000 messages, a 10 s outage. Full size
// (CORDSTREAM_FAULT_FULL=1): 6000 messages and 25 s. Overrides:
// CORDSTREAM_FAULT_MESSAGES, CORDSTREAM_FAULT_OUTAGE.
func diskSizes(t *testing.T) (int, time.Duration) {
	n, outage := 5000, 10*time.Second
	if full() {
		n, outage = 6000, 25*time.Second
	}
	return envInt(t, "CORDSTREAM_FAULT_MESSAGES", n), envDuration(t, "CORDSTREAM_FAULT_OUTAGE", outage)
}

// spoolFSBytes is the size of the file system the spool is put on: far
// less than what arrives during the outage.
const spoolFSBytes = 1 << 20

// TestFaultDiskFull: the spool's file system (1 MiB) fills while the
// broker is paused and messages keep arriving. The bot must stop reading
// from Discord, say why (the cause and the path), report unhealthy on
// /healthz, and resume by itself once Kafka is back and takes the spool:
// at the end every message is in Kafka, any copy a duplicate of the same
// record (same message_id), and no temporary file is left in the spool.
func TestFaultDiskFull(t *testing.T) {
	n, outage := diskSizes(t)
	b := privateBroker(t)
	fs, ok := smallFS(t, spoolFSBytes)
	if !ok {
		return
	}
	spoolDir := filepath.Join(fs, "spool")
	w := newWorld(t)
	topic := topicName(t)
	bot := startBot(t, "bot", w.srv.Token(), botArgs(b, w, topic, spoolDir)...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })

	lead := outage / 4
	rate := float64(n) / (outage + 2*lead).Seconds()
	tr := w.startTraffic(t, rate, n)
	time.Sleep(lead)
	t0 := time.Now()
	b.down(t, "pause")
	t.Logf("broker paused at %d messages sent; %d bytes free on the spool's file system", tr.count(), freeBytes(t, fs))
	minFree := int64(spoolFSBytes)
	unhealthy := ""
	for time.Since(t0) < outage {
		minFree = min(minFree, freeBytes(t, fs))
		if code, body := bot.health(t); code == 503 && strings.Contains(body, "spool") && unhealthy == "" {
			unhealthy = body
		}
		time.Sleep(200 * time.Millisecond)
	}
	sentAtResume := tr.count()
	b.up(t, "pause")
	t.Logf("broker back after %s, %d messages sent, %d bytes free at least", time.Since(t0).Round(time.Millisecond), sentAtResume, minFree)
	<-tr.done
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	sent := tr.messages()
	drainStart := time.Now()
	got := b.waitAllInKafka(t, topic, sent, 3*time.Minute)
	drained := time.Since(drainStart)
	waitFor(t, 30*time.Second, "/healthz to report healthy again", func() bool {
		code, _ := bot.health(t)
		return code == 200
	})
	if code := bot.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("bot exit code %d, want 0", code)
	}
	dups := verdict(t, got, sent)
	if minFree > 64<<10 {
		t.Errorf("the spool's file system never filled (%d bytes free at least): the fault did not engage", minFree)
	}
	if unhealthy == "" {
		t.Error("/healthz never reported the blocked spool while the disk was full")
	} else {
		t.Logf("/healthz while the disk was full: %s", strings.TrimSpace(unhealthy))
	}
	logs := bot.logs()
	if !strings.Contains(logs, "no space left on device") || !strings.Contains(logs, spoolDir) {
		t.Error("the bot's log does not name the cause (no space left on device) and the spool directory")
	}
	if left := tmpFiles(t, spoolDir); len(left) > 0 {
		t.Errorf("temporary files left in the spool: %v", left)
	}
	t.Logf("RESULT full disk: %d messages, broker paused %s with the spool on a %d-byte file system (%d bytes free at least); "+
		"all in Kafka %s after the last was sent; %d records, %d duplicates (same message_id and record)",
		len(sent), outage, spoolFSBytes, minFree, drained.Round(time.Millisecond), len(got), dups)
}

// TestFaultDiskFullRestart: as TestFaultDiskFull, but the bot is killed
// (SIGKILL) while the disk is full, and started again on that full disk
// once the broker is back. The restart must say what is wrong and what to
// do, publish what the spool holds (which frees the disk), then read from
// Discord again and fetch through REST what was sent while it was dead.
func TestFaultDiskFullRestart(t *testing.T) {
	n, outage := diskSizes(t)
	b := privateBroker(t)
	fs, ok := smallFS(t, spoolFSBytes)
	if !ok {
		return
	}
	spoolDir := filepath.Join(fs, "spool")
	w := newWorld(t)
	topic := topicName(t)
	first := startBot(t, "first", w.srv.Token(), botArgs(b, w, topic, spoolDir)...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })

	rate := float64(n) / (outage + outage/2).Seconds()
	tr := w.startTraffic(t, rate, n)
	time.Sleep(outage / 4)
	b.down(t, "pause")
	waitFor(t, 2*outage, "the spool's file system to fill", func() bool { return freeBytes(t, fs) < 64<<10 })
	time.Sleep(time.Second)
	if code := first.stop(t, syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Logf("killed bot exit code %d", code)
	}
	t.Logf("bot killed with %d bytes free on the spool's file system, %d messages sent", freeBytes(t, fs), tr.count())
	b.up(t, "pause")
	time.Sleep(time.Second)
	second := startBot(t, "second", w.srv.Token(), botArgs(b, w, topic, spoolDir)...)
	<-tr.done
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	sent := tr.messages()
	got := b.waitAllInKafka(t, topic, sent, 3*time.Minute)
	if code := second.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("second bot exit code %d, want 0", code)
	}
	dups := verdict(t, got, sent)
	logs := second.logs()
	if !strings.Contains(logs, "no space left on device") || !strings.Contains(logs, spoolDir) {
		t.Error("the restarted bot did not say that the spool's file system is full, naming the spool directory")
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "file system is full") || strings.Contains(l, "takes messages again") {
			t.Logf("restarted bot: %s", l)
		}
	}
	if left := tmpFiles(t, spoolDir); len(left) > 0 {
		t.Errorf("temporary files left in the spool: %v", left)
	}
	t.Logf("RESULT full disk, kill -9 and restart: %d messages; all in Kafka; %d records, %d duplicates (same message_id and record)",
		len(sent), len(got), dups)
}
