//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Profile is a CPU profile of the analyzer during a replay.
type Profile struct {
	File string `json:"file"`
	Top  string `json:"pprof_top"`
}

// profileAnalyzer runs the replay of topic once more with the analyzer
// built with a CPU profiler around it (bench/cmd/cordstream-prof) and
// returns `go tool pprof -top` of the profile. This run is not timed.
func (h *harness) profileAnalyzer(ctx context.Context, topic string, parts int) (*Profile, error) {
	bin := filepath.Join(h.work, "cordstream-prof")
	if _, err := os.Stat(bin); err != nil {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/cmd/cordstream-prof")
		cmd.Dir = h.root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("build the profiling analyzer: %w", err)
		}
	}
	out, err := filepath.Abs(filepath.Join(h.cfg.out, fmt.Sprintf("analyze-p%d.cpu.pprof", parts)))
	if err != nil {
		return nil, err
	}
	run, err := h.runCordstream(ctx, bin, topic, parts, []string{"BENCH_CPUPROFILE=" + out})
	if err != nil {
		return nil, err
	}
	if err := h.check(run); err != nil {
		return nil, err
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=35", bin, out).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	rel, _ := filepath.Rel(h.root, out)
	return &Profile{File: rel, Top: string(top)}, nil
}
