package kafka

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/testio"
)

// TestLoggerLevels: warnings and errors reach slog; franz-go's
// informational lines only at debug level, though a watch sees them; quiet
// silences everything.
func TestLoggerLevels(t *testing.T) {
	for _, debug := range []bool{false, true} {
		var buf testio.Buffer
		level := slog.LevelInfo
		if debug {
			level = slog.LevelDebug
		}
		var watched []string
		l := NewLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})),
			func(_ kgo.LogLevel, msg string, _ []any) { watched = append(watched, msg) })
		if l.Level() != kgo.LogLevelInfo {
			t.Fatalf("debug %v: level %v, want info (the watch needs franz-go's info lines)", debug, l.Level())
		}
		l.Log(kgo.LogLevelWarn, "a warning", "broker", 1)
		l.Log(kgo.LogLevelInfo, "an info line")
		out := buf.String()
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "a warning") || !strings.Contains(out, "broker=1") {
			t.Errorf("debug %v: warning not logged: %q", debug, out)
		}
		if strings.Contains(out, "an info line") != debug {
			t.Errorf("debug %v: info line logged = %v: %q", debug, !debug, out)
		}
		if len(watched) != 2 {
			t.Errorf("debug %v: watched %q, want both lines", debug, watched)
		}
		l.SetQuiet(true)
		l.Log(kgo.LogLevelError, "while quiet")
		if l.Level() != kgo.LogLevelNone || strings.Contains(buf.String(), "while quiet") || len(watched) != 2 {
			t.Errorf("debug %v: quiet logger passed a line: %q %q", debug, buf.String(), watched)
		}
	}
	var buf testio.Buffer
	l := NewLogger(slog.New(slog.NewTextHandler(&buf, nil)), nil)
	if l.Level() != kgo.LogLevelWarn {
		t.Errorf("level %v without a watch at info, want warn", l.Level())
	}
}
