package cli

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The demo runs the whole pipeline on the embedded broker and stops by itself
// with --duration; every message the simulator sent is published, and the
// analyzer shows Spark-format tables with counts.
func TestDemoRunsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline for several seconds")
	}
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	start := time.Now()
	code := run(context.Background(), []string{"demo", "--duration", "7s", "--trigger", "2s", "--rate", "50", "--seed", "7"}, e)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errb.String())
	}
	if d := time.Since(start); d > 60*time.Second { // a stop that hangs, not a slow machine
		t.Errorf("demo took %v to stop", d)
	}
	if !strings.Contains(out.String(), "Batch: 0\n") || !strings.Contains(out.String(), "|window") {
		t.Errorf("no Spark-format batch in the output:\n%s", out.String())
	}
	if !regexp.MustCompile(`\|\{\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\}\|[^|]+\|\d+ *\|`).MatchString(out.String()) {
		t.Errorf("no window row with a count:\n%s", out.String())
	}
	m := regexp.MustCompile(`(\d+) messages sent by the simulator, (\d+) received by the bot, (\d+) published to Kafka`).FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("no summary:\n%s", errb.String())
	}
	sent, _ := strconv.Atoi(m[1])
	published, _ := strconv.Atoi(m[3])
	if sent == 0 || published != sent {
		t.Errorf("sent %d, published %d: want every sent message published", sent, published)
	}
}

func TestDemoUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--rate", "0"},
		{"demo", "--duration", "-1s"},
		{"demo", "--authors", "0"},
		{"demo", "--mode", "sideways", "--duration", "1s"},
		{"demo", "extra"},
	} {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := run(context.Background(), args, e); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, errb.String())
		}
	}
}
