package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// onSecondStop handles a second Ctrl-C or SIGTERM: once ctx is done (the
// first one, which stops gracefully), it logs stopping and waits; a second
// signal then logs cut and calls cutShort. The returned function ends the
// watch (call it when the run has returned) and waits for it.
func onSecondStop(ctx context.Context, log *slog.Logger, stopping, cut string, cutShort func()) (done func()) {
	runDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-runDone:
			return
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		log.Info(stopping)
		select {
		case <-sig:
			log.Warn(cut)
			cutShort()
		case <-runDone:
		}
	})
	return func() {
		close(runDone)
		wg.Wait()
	}
}
