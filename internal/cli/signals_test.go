package cli

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logWatch is a slog handler that records messages and tells when one
// containing want is logged.
type logWatch struct {
	mu   *sync.Mutex
	msgs *[]string
	want string
	seen chan struct{}
	once *sync.Once
}

func newLogWatch(want string) *logWatch {
	return &logWatch{mu: &sync.Mutex{}, msgs: &[]string{}, want: want, seen: make(chan struct{}), once: &sync.Once{}}
}

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *logWatch) WithGroup(string) slog.Handler            { return w }
func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	*w.msgs = append(*w.msgs, r.Message)
	w.mu.Unlock()
	if strings.Contains(r.Message, w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return nil
}

func (w *logWatch) logged() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), *w.msgs...)
}

// TestOnSecondStopCutsShort: after the first stop, a second SIGINT (sent to
// this process for real) calls cutShort and logs so.
func TestOnSecondStopCutsShort(t *testing.T) {
	w := newLogWatch("stopping")
	ctx, cancel := context.WithCancel(context.Background())
	cut := make(chan struct{})
	done := onSecondStop(ctx, slog.New(w), "stopping now", "cut short", func() { close(cut) })
	cancel() // the first stop
	select {
	case <-w.seen: // the handler listens for signals from here on
	case <-time.After(10 * time.Second):
		t.Fatal("the first stop was not logged")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cut:
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGINT did not cut the run short")
	}
	done()
	if got := w.logged(); len(got) != 2 || got[0] != "stopping now" || got[1] != "cut short" {
		t.Errorf("logged %q, want the stopping message then the cut one", got)
	}
}

// TestOnSecondStopRunEndsFirst: a run that ends after the first stop, with
// no second signal, is not cut short, and done returns.
func TestOnSecondStopRunEndsFirst(t *testing.T) {
	w := newLogWatch("stopping")
	ctx, cancel := context.WithCancel(context.Background())
	cutCalled := false
	done := onSecondStop(ctx, slog.New(w), "stopping now", "cut short", func() { cutCalled = true })
	cancel()
	select {
	case <-w.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the first stop was not logged")
	}
	done()
	if cutCalled {
		t.Error("cutShort was called without a second signal")
	}
}

// TestOnSecondStopNoStop: a run that ends without any stop logs nothing.
func TestOnSecondStopNoStop(t *testing.T) {
	w := newLogWatch("stopping")
	done := onSecondStop(context.Background(), slog.New(w), "stopping now", "cut short", func() { t.Error("cut short without a stop") })
	done()
	if got := w.logged(); len(got) != 0 {
		t.Errorf("logged %q without a stop", got)
	}
}
