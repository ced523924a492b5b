package faulttest

import (
	"fmt"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"
)

func topicName(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, strings.ToLower(strings.TrimPrefix(t.Name(), "TestFault")))
	return fmt.Sprintf("fault-%s-%d", name, time.Now().UnixNano())
}

// botArgs are the command's arguments for the private broker, the
// simulator and a spool directory.
func botArgs(b *broker, w *world, topic, spoolDir string, extra ...string) []string {
	return append([]string{"--brokers", b.addr, "--topic", topic, "--partitions", "3", "--discord-api-url", w.srv.APIURL(),
		"--spool-dir", spoolDir, "--metrics", "127.0.0.1:0", "--shutdown-timeout", "30s", "--log-level", "info"}, extra...)
}

// TestFaultBrokerOutage (issue 7, fault b): the broker is unreachable
// while messages arrive; afterwards every message is in Kafka exactly once
// by message_id, and the spool carried them.
//
// Default: 2000 messages, the broker paused (SIGSTOP) for 5 s. Full size
// (CORDSTREAM_FAULT_FULL=1): 10 000 messages, the broker stopped
// (scripts/kafka stop) for 30 s, then started again. Overrides:
// CORDSTREAM_FAULT_MESSAGES, CORDSTREAM_FAULT_OUTAGE (a duration),
// CORDSTREAM_FAULT_OUTAGE_MODE (pause or stop).
func TestFaultBrokerOutage(t *testing.T) {
	n, outage, mode := 2000, 5*time.Second, "pause"
	if full() {
		n, outage, mode = 10000, 30*time.Second, "stop"
	}
	n = envInt(t, "CORDSTREAM_FAULT_MESSAGES", n)
	outage = envDuration(t, "CORDSTREAM_FAULT_OUTAGE", outage)
	if v := strings.TrimSpace(getenv("CORDSTREAM_FAULT_OUTAGE_MODE")); v != "" {
		mode = v
	}
	b := privateBroker(t)
	w := newWorld(t)
	topic := topicName(t)
	bot := startBot(t, "bot", w.srv.Token(), botArgs(b, w, topic, t.TempDir())...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })

	// The messages arrive steadily over a quarter of the outage before it,
	// the outage, and a quarter after.
	lead := outage / 4
	rate := float64(n) / (outage + 2*lead).Seconds()
	tr := w.startTraffic(t, rate, n)
	time.Sleep(lead)
	t0 := time.Now()
	b.down(t, mode)
	t.Logf("broker %s at %d messages sent", map[string]string{"pause": "paused", "stop": "stopped"}[mode], tr.count())
	maxSpool := 0.0
	for time.Since(t0) < outage {
		if v := bot.metric(t, "cordstream_bot_spool_entries"); v > maxSpool {
			maxSpool = v
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.up(t, mode)
	down := time.Since(t0)
	t.Logf("broker back after %s, %d messages sent, up to %.0f waiting in the spool", down.Round(time.Millisecond), tr.count(), maxSpool)
	<-tr.done
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	sent := tr.messages()
	drainStart := time.Now()
	waitFor(t, 3*time.Minute, "every message published", func() bool {
		return bot.metric(t, "cordstream_bot_messages_published_total") >= float64(len(sent))
	})
	drained := time.Since(drainStart)
	if code := bot.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("bot exit code %d, want 0", code)
	}
	got := b.readTopic(t, topic)
	dups := verdict(t, got, sent)
	if dups != 0 {
		t.Errorf("%d duplicates by message_id, want none", dups)
	}
	if maxSpool < 1 {
		t.Errorf("the spool never held a message during the outage (max %.0f): the fault did not engage", maxSpool)
	}
	// The bot calls Kafka unreachable after 5 s without acknowledgements.
	if logs := bot.logs(); outage >= 10*time.Second && !strings.Contains(logs, "Kafka unreachable") {
		t.Error("the bot never said Kafka was unreachable")
	}
	t.Logf("RESULT fault b: %d messages, broker %s for %s, up to %.0f in the spool, all in Kafka %s after the broker returned, %d in Kafka, %d duplicates",
		len(sent), mode, down.Round(time.Millisecond), maxSpool, drained.Round(time.Millisecond), len(got), dups)
}

// TestFaultBotDown (issue 7, fault c): the bot is stopped while messages
// keep coming; the restarted bot fetches the missed ones through REST.
//
// Default: down 5 s at 100 messages/s. Full size (CORDSTREAM_FAULT_FULL=1):
// down 2 minutes at 50 messages/s. Overrides: CORDSTREAM_FAULT_DOWN,
// CORDSTREAM_FAULT_RATE (messages per second).
func TestFaultBotDown(t *testing.T) {
	downFor, rate := 5*time.Second, 100
	if full() {
		downFor, rate = 2*time.Minute, 50
	}
	downFor = envDuration(t, "CORDSTREAM_FAULT_DOWN", downFor)
	rate = envInt(t, "CORDSTREAM_FAULT_RATE", rate)
	b := privateBroker(t)
	w := newWorld(t)
	topic := topicName(t)
	dir := t.TempDir()
	first := startBot(t, "first", w.srv.Token(), botArgs(b, w, topic, dir)...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })
	tr := w.startTraffic(t, float64(rate), 0)
	waitFor(t, 30*time.Second, "messages published", func() bool {
		return first.metric(t, "cordstream_bot_messages_published_total") >= float64(rate)
	})
	if code := first.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Fatalf("first bot exit code %d, want 0", code)
	}
	stoppedAt := tr.count()
	time.Sleep(downFor)
	gapEnd := tr.count()
	second := startBot(t, "second", w.srv.Token(), botArgs(b, w, topic, dir)...)
	waitFor(t, 60*time.Second, "the bot to reconnect", func() bool { return w.srv.Stats().Identifies >= 2 })
	time.Sleep(2 * time.Second)
	tr.stop()
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	sent := tr.messages()
	got := b.waitAllInKafka(t, topic, sent, 3*time.Minute)
	backfilled := second.metric(t, "cordstream_bot_backfilled_messages_total")
	rateLimited := w.srv.Stats().RESTRateLimited
	if code := second.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("second bot exit code %d, want 0", code)
	}
	dups := verdict(t, got, sent)
	if gap := gapEnd - stoppedAt; math.IsNaN(backfilled) || backfilled < float64(gap) {
		t.Errorf("backfilled %v messages, want at least the %d sent while the bot was down", backfilled, gap)
	}
	if rateLimited != 0 {
		t.Errorf("the simulator answered 429 %d times: Discord's rate limits were not kept", rateLimited)
	}
	t.Logf("RESULT fault c (stopped): %d messages, bot down %s while %d were sent, %v backfilled, all in Kafka, %d duplicates, %d REST 429s",
		len(sent), downFor, gapEnd-stoppedAt, backfilled, dups, rateLimited)
}

// TestFaultBotKilled (issue 7, fault c, kill -9): Kafka is unreachable so
// that messages wait in the spool, the bot is killed with SIGKILL, Kafka
// comes back, messages keep coming while the bot is dead, and the restarted
// bot publishes the spool first, then backfills the gap: every message is
// in Kafka; duplicates (same message_id, same record) are counted.
//
// Default: dead for 5 s at 100 messages/s. Full size
// (CORDSTREAM_FAULT_FULL=1): dead for 2 minutes at 50 messages/s.
// Overrides: CORDSTREAM_FAULT_DOWN, CORDSTREAM_FAULT_RATE.
func TestFaultBotKilled(t *testing.T) {
	downFor, rate := 5*time.Second, 100
	if full() {
		downFor, rate = 2*time.Minute, 50
	}
	downFor = envDuration(t, "CORDSTREAM_FAULT_DOWN", downFor)
	rate = envInt(t, "CORDSTREAM_FAULT_RATE", rate)
	b := privateBroker(t)
	w := newWorld(t)
	topic := topicName(t)
	dir := t.TempDir()
	first := startBot(t, "first", w.srv.Token(), botArgs(b, w, topic, dir)...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })
	tr := w.startTraffic(t, float64(rate), 0)
	waitFor(t, 30*time.Second, "messages published", func() bool {
		return first.metric(t, "cordstream_bot_messages_published_total") >= float64(rate)
	})
	b.down(t, "pause")
	waitFor(t, 30*time.Second, "messages waiting in the spool", func() bool {
		return first.metric(t, "cordstream_bot_spool_entries") >= float64(rate)
	})
	inSpool := first.metric(t, "cordstream_bot_spool_entries")
	if code := first.stop(t, syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Logf("killed bot exit code %d", code)
	}
	killedAt := tr.count()
	b.up(t, "pause")
	time.Sleep(downFor)
	gapEnd := tr.count()
	second := startBot(t, "second", w.srv.Token(), botArgs(b, w, topic, dir)...)
	waitFor(t, 60*time.Second, "the bot to reconnect", func() bool { return w.srv.Stats().Identifies >= 2 })
	time.Sleep(2 * time.Second)
	tr.stop()
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	sent := tr.messages()
	got := b.waitAllInKafka(t, topic, sent, 3*time.Minute)
	replayed := second.metric(t, "cordstream_bot_spool_replayed_total")
	backfilled := second.metric(t, "cordstream_bot_backfilled_messages_total")
	if code := second.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("second bot exit code %d, want 0", code)
	}
	dups := verdict(t, got, sent)
	if math.IsNaN(replayed) || replayed < 1 {
		t.Errorf("replayed %v records from the spool, want the ones the killed bot left (%.0f waited at the kill)", replayed, inSpool)
	}
	if math.IsNaN(backfilled) || backfilled < float64(gapEnd-killedAt) {
		t.Errorf("backfilled %v, want at least the %d messages sent while the bot was dead", backfilled, gapEnd-killedAt)
	}
	if !strings.Contains(second.logs(), "messages_from_previous_run") {
		t.Error("the restarted bot did not report the spool it found")
	}
	t.Logf("RESULT fault c (kill -9): %d messages, %.0f in the spool at the kill, dead %s while %d were sent; "+
		"restart replayed %.0f from the spool and backfilled %.0f; all in Kafka; %d duplicates (same message_id and record)",
		len(sent), inSpool, downFor, gapEnd-killedAt, replayed, backfilled, dups)
}
