//go:build !unix

package window

import "time"

func cpuTime() time.Duration { return 0 }
