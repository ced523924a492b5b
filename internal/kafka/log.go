package kafka

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Logger routes franz-go's log lines to slog (kgo.WithLogger): its warnings
// and errors always, its informational lines when the slog logger is at
// debug level. It is the one adapter between franz-go and slog.
type Logger struct {
	log *slog.Logger
	// watch, when set, sees every franz-go line at info level and above,
	// whether logged or not (franz-go reports some retries at info only).
	watch func(level kgo.LogLevel, msg string, keyvals []any)
	quiet atomic.Bool
}

// NewLogger returns a franz-go logger writing to log. watch, when not nil,
// is called with every franz-go line at info level and above, logged or
// not; it must not block.
func NewLogger(log *slog.Logger, watch func(level kgo.LogLevel, msg string, keyvals []any)) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Logger{log: log, watch: watch}
}

// SetQuiet silences (true) or restores (false) every line, the watch's
// included: NewClient reports connection trouble itself while it waits for a
// broker.
func (l *Logger) SetQuiet(q bool) { l.quiet.Store(q) }

func (l *Logger) debug() bool { return l.log.Enabled(context.Background(), slog.LevelDebug) }

// Level implements kgo.Logger.
func (l *Logger) Level() kgo.LogLevel {
	switch {
	case l.quiet.Load():
		return kgo.LogLevelNone
	case l.watch != nil || l.debug():
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

// Log implements kgo.Logger.
func (l *Logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level > l.Level() {
		return
	}
	if l.watch != nil {
		l.watch(level, msg, keyvals)
		if level >= kgo.LogLevelInfo && !l.debug() {
			return // franz-go's informational lines show from debug level
		}
	}
	sl := slog.LevelInfo
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	case kgo.LogLevelDebug:
		sl = slog.LevelDebug
	}
	l.log.Log(context.Background(), sl, msg, keyvals...)
}

var _ kgo.Logger = (*Logger)(nil)
