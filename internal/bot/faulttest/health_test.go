package faulttest

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFaultHealthKafkaIdle: the broker stops answering while Discord is
// quiet (no message waits for Kafka). /healthz turns unhealthy with the
// reason within a minute, and healthy again once the broker is back.
func TestFaultHealthKafkaIdle(t *testing.T) {
	b := privateBroker(t)
	w := newWorld(t)
	bot := startBot(t, "bot", w.srv.Token(), botArgs(b, w, topicName(t), t.TempDir())...)
	waitFor(t, 60*time.Second, "the bot to connect", func() bool { return w.srv.Stats().Identifies >= 1 })
	waitFor(t, 10*time.Second, "/healthz to answer 200", func() bool { code, _ := bot.health(t); return code == 200 })
	b.down(t, "pause")
	t0 := time.Now()
	var body string
	waitFor(t, 90*time.Second, "/healthz to report Kafka unhealthy", func() bool {
		code, h := bot.health(t)
		body = h
		return code == 503 && strings.Contains(h, `"name":"kafka","ok":false`)
	})
	took := time.Since(t0)
	if !strings.Contains(body, "no Kafka broker has answered") {
		t.Errorf("/healthz reason: %s", body)
	}
	b.up(t, "pause")
	waitFor(t, 60*time.Second, "/healthz to report healthy again", func() bool { code, _ := bot.health(t); return code == 200 })
	if code := bot.stop(t, syscall.SIGINT, time.Minute); code != 0 {
		t.Errorf("exit code %d", code)
	}
	t.Logf("RESULT Kafka outage with Discord quiet: /healthz unhealthy %s after the broker stopped: %s", took.Round(time.Second), strings.TrimSpace(body))
}
