//go:build unix

package window

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used: benchmarks report it per
// operation because wall time is unreliable on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
