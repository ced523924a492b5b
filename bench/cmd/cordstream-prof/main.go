// Command cordstream-prof is cordstream with profilers around it, for the
// benchmarks: it runs the same command line as cordstream and
//   - when $BENCH_CPUPROFILE names a file, writes a CPU profile of the whole
//     run there;
//   - when $BENCH_MEMPROFILE names a file, writes a heap profile there at
//     exit;
//   - when $BENCH_PEAKHEAP names a file, writes a heap profile there each
//     time the live heap reaches a new high (by 10 %), so that the file
//     holds what was in memory near the peak.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/cordstream/cordstream/internal/cli"
)

func main() { os.Exit(run()) }

func run() int {
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cordstream-prof:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "cordstream-prof:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("BENCH_PEAKHEAP"); path != "" {
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go watchPeak(pctx, path)
	}
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if path := os.Getenv("BENCH_MEMPROFILE"); path != "" {
		runtime.GC()
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	return code
}

// watchPeak samples the heap every 50 ms and writes a heap profile to path
// whenever the heap objects' bytes pass the last high by 10 %.
func watchPeak(ctx context.Context, path string) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var high uint64
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(s)
		v := s[0].Value.Uint64()
		if v < high+high/10 {
			continue
		}
		high = v
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cordstream-prof:", err)
			return
		}
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
}
