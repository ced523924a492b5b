//go:build !linux

// Command bench measures cordstream against the broker and against Spark.
// It reads process statistics from /proc and runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: runs on Linux only (it reads process statistics from /proc)")
	os.Exit(2)
}
