package faulttest

import (
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord/sim"
)

// waitExit waits for the bot to exit by itself and returns its exit code.
func (p *botProc) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("the bot still runs after %s; log:\n%s", timeout, p.tail(30))
	}
	return -1
}

// noSecret fails the test if the token, or any 8-character piece of it,
// is in the bot's output.
func noSecret(t *testing.T, p *botProc, token string) {
	t.Helper()
	logs := p.logs()
	for i := 0; i+8 <= len(token); i++ {
		if strings.Contains(logs, token[i:i+8]) {
			t.Errorf("the bot's output holds part of the token (%q at offset %d)", token[i:i+8], i)
			return
		}
	}
}

// TestFaultHostileShardCount: /gateway/bot recommends a billion shards.
// The bot refuses within seconds, names the cause, opens no connection
// and allocates nothing per shard.
func TestFaultHostileShardCount(t *testing.T) {
	b := privateBroker(t)
	w := newWorld(t)
	w.srv.SetHostile(sim.Hostile{Shards: 1_000_000_000})
	start := time.Now()
	bot := startBot(t, "bot", w.srv.Token(), botArgs(b, w, topicName(t), t.TempDir())...)
	var rss int64
	for done := false; !done; {
		select {
		case <-bot.done:
			done = true
		case <-time.After(20 * time.Millisecond):
			if r, err := readPeakRSS(bot.cmd.Process.Pid); err == nil {
				rss = max(rss, r)
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("the bot still runs 30 s after a billion shards were recommended; log:\n%s", bot.tail(20))
			}
		}
	}
	took := time.Since(start)
	if bot.code == 0 {
		t.Errorf("exit code 0, want a failure")
	}
	if logs := bot.logs(); !strings.Contains(logs, "1000000000 shards") {
		t.Errorf("the bot did not say why it stopped:\n%s", bot.tail(10))
	}
	if st := w.srv.Stats(); st.Connections != 0 {
		t.Errorf("%d Gateway connections opened", st.Connections)
	}
	if rss > 256<<20 {
		t.Errorf("memory peaked at %d MiB", rss>>20)
	}
	noSecret(t, bot, w.srv.Token())
	t.Logf("RESULT absurd shard count: refused after %s (start-up included), exit code %d, %d MiB at most seen, no Gateway connection",
		took.Round(time.Millisecond), bot.code, rss>>20)
}

// TestFaultHostileRetryAfter: Discord answers 429 with an absurd
// retry_after. At start-up (GET /gateway/bot) the bot stops at once with
// the cause, after one request; during the backfill it keeps running, its
// live messages flow, and the history requests stay few.
func TestFaultHostileRetryAfter(t *testing.T) {
	b := privateBroker(t)
	t.Run("start-up", func(t *testing.T) {
		w := newWorld(t)
		w.srv.SetHostile(sim.Hostile{RetryAfter: "1e300"})
		bot := startBot(t, "bot", w.srv.Token(), botArgs(b, w, topicName(t), t.TempDir())...)
		code := bot.waitExit(t, 30*time.Second)
		n := w.srv.Stats().RESTRequests
		if code == 0 || n > 2 || !strings.Contains(bot.logs(), "no real rate limit") {
			t.Errorf("exit code %d after %d REST requests; want a failure after one, naming the wait:\n%s", code, n, bot.tail(10))
		}
		noSecret(t, bot, w.srv.Token())
		t.Logf("RESULT retry_after 1e300 at start-up: exit code %d after %d REST request(s)", code, n)
	})
	for _, ra := range []string{"1e300", "-1"} {
		t.Run("backfill "+ra, func(t *testing.T) {
			w := newWorld(t)
			topic := topicName(t)
			dir := t.TempDir()
			first := startBot(t, "first", w.srv.Token(), botArgs(b, w, topic, dir)...)
			waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })
			tr := w.startTraffic(t, 50, 0)
			waitFor(t, 30*time.Second, "messages published", func() bool {
				return first.metric(t, "cordstream_bot_messages_published_total") >= 50
			})
			if code := first.stop(t, syscall.SIGINT, time.Minute); code != 0 {
				t.Fatalf("first bot exit code %d", code)
			}
			time.Sleep(time.Second) // messages the backfill must fetch
			w.srv.SetHostile(sim.Hostile{RetryAfter: ra, RetryAfterOn: "/channels/"})
			before := w.srv.Stats().RESTRequests
			second := startBot(t, "second", w.srv.Token(), botArgs(b, w, topic, dir)...)
			waitFor(t, 60*time.Second, "the bot to reconnect", func() bool { return w.srv.Stats().Identifies >= 2 })
			published := second.metric(t, "cordstream_bot_messages_published_total")
			const watch = 10 * time.Second
			time.Sleep(watch)
			n := w.srv.Stats().RESTRequests - before
			live := second.metric(t, "cordstream_bot_messages_published_total") - published
			tr.stop()
			if code := second.stop(t, syscall.SIGINT, time.Minute); code != 0 {
				t.Errorf("second bot exit code %d", code)
			}
			// Three channels, each retried by the backfill's own backoff
			// (1 s, 2 s, 4 s, ...) or waiting out growing 429 waits.
			if n > 40 {
				t.Errorf("%d REST requests in %s of 429s: a request storm", n, watch)
			}
			if live < 100 {
				t.Errorf("%.0f live messages published while the backfill was refused, want the traffic to flow", live)
			}
			noSecret(t, second, w.srv.Token())
			t.Logf("RESULT retry_after %s on the history: %d REST requests in %s (3 channels), %.0f live messages published meanwhile", ra, n, watch, live)
		})
	}
}

// TestFaultHostileFrame: the Gateway sends a frame larger than the read
// limit in the middle of the traffic. The bot drops the connection
// without reading the frame whole, resumes, and every message reaches
// Kafka.
func TestFaultHostileFrame(t *testing.T) {
	b := privateBroker(t)
	w := newWorld(t)
	topic := topicName(t)
	bot := startBot(t, "bot", w.srv.Token(), botArgs(b, w, topic, t.TempDir())...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })
	tr := w.startTraffic(t, 100, 1000)
	time.Sleep(3 * time.Second)
	if n := w.srv.SendOversizedFrame(17 << 20); n != 1 {
		t.Fatalf("oversized frame sent on %d connections", n)
	}
	<-tr.done
	sent := tr.messages()
	got := b.waitAllInKafka(t, topic, sent, 2*time.Minute)
	rss, _ := readPeakRSS(bot.cmd.Process.Pid)
	tooLarge := bot.metric(t, `cordstream_discord_reconnects_total{reason="frame_too_large"}`)
	if code := bot.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("exit code %d", code)
	}
	dups := verdict(t, got, sent)
	st := w.srv.Stats()
	if st.Resumes < 1 || tooLarge != 1 {
		t.Errorf("resumes %d, reconnects for a frame too large %v; want one, and a resume", st.Resumes, tooLarge)
	}
	if !strings.Contains(bot.logs(), "larger than the read limit") {
		t.Error("the bot did not log the oversized frame")
	}
	noSecret(t, bot, w.srv.Token())
	t.Logf("RESULT oversized frame (17 MiB): connection dropped unread and resumed; %d messages all in Kafka, %d duplicates; memory peak %d MiB",
		len(sent), dups, rss>>20)
}

// TestFaultHostileResumeURL: READY's resume_gateway_url points at another
// host (a listener of the test's, where one can be opened on an address of
// this machine that is not loopback). The bot does not send RESUME, which
// carries the token, there: it resumes on the Gateway URL and loses
// nothing.
func TestFaultHostileResumeURL(t *testing.T) {
	b := privateBroker(t)
	w := newWorld(t)
	resume := "ws://192.0.2.1:9/resume" // TEST-NET-1: never routed
	var trapped atomic.Int64
	if ip := nonLoopbackIP(); ip != "" {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err == nil {
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					trapped.Add(1)
					c.Close()
				}
			}()
			resume = "ws://" + ln.Addr().String() + "/resume"
		}
	}
	w.srv.SetHostile(sim.Hostile{ResumeURL: resume})
	topic := topicName(t)
	bot := startBot(t, "bot", w.srv.Token(), botArgs(b, w, topic, t.TempDir())...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })
	tr := w.startTraffic(t, 100, 600)
	time.Sleep(2 * time.Second)
	w.srv.DropConnections()
	<-tr.done
	sent := tr.messages()
	got := b.waitAllInKafka(t, topic, sent, 2*time.Minute)
	if code := bot.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("exit code %d", code)
	}
	dups := verdict(t, got, sent)
	st := w.srv.Stats()
	if st.Resumes < 1 || st.ResumesOnMainURL != st.Resumes || st.Identifies != 1 {
		t.Errorf("resumes %d (%d on the Gateway URL), identifies %d; want the session resumed on the Gateway URL", st.Resumes, st.ResumesOnMainURL, st.Identifies)
	}
	if n := trapped.Load(); n > 0 {
		t.Errorf("the bot connected %d times to the resume URL on another host", n)
	}
	if !strings.Contains(bot.logs(), "not using the resume_gateway_url") {
		t.Error("the bot did not say it refused the resume URL")
	}
	noSecret(t, bot, w.srv.Token())
	t.Logf("RESULT resume URL on another host (%s): refused, resumed %d time(s) on the Gateway URL, %d connections to it; %d messages all in Kafka, %d duplicates",
		resume, st.Resumes, trapped.Load(), len(sent), dups)
}

// nonLoopbackIP returns an IPv4 address of this machine that is not
// loopback, or "".
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}
