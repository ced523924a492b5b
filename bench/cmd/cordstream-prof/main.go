// Command cordstream-prof is cordstream with a CPU profiler around it, for
// the benchmarks: it runs the same command line as cordstream and, when
// $BENCH_CPUPROFILE names a file, writes a CPU profile of the whole run
// there (and a heap profile at exit to $BENCH_MEMPROFILE).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

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
