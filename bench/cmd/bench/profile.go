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
	bin, err := h.profBin(ctx)
	if err != nil {
		return nil, err
	}
	out, err := filepath.Abs(filepath.Join(h.cfg.out, fmt.Sprintf("analyze-p%d.cpu.pprof", parts)))
	if err != nil {
		return nil, err
	}
	run, err := h.runCordstream(ctx, bin, topic, parts, []string{"BENCH_CPUPROFILE=" + out}, false)
	if err != nil {
		return nil, err
	}
	if err := h.check(run); err != nil {
		return nil, err
	}
	return h.pprofTop(ctx, bin, out)
}

// profBin builds cordstream with a CPU profiler around it
// (bench/cmd/cordstream-prof), once.
func (h *harness) profBin(ctx context.Context) (string, error) {
	bin := filepath.Join(h.work, "cordstream-prof")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/cmd/cordstream-prof")
	cmd.Dir = h.root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the profiling cordstream: %w", err)
	}
	return bin, nil
}

// pprofTop returns `go tool pprof -top` of a profile.
func (h *harness) pprofTop(ctx context.Context, bin, file string) (*Profile, error) {
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=35", bin, file).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof %s: %w", file, err)
	}
	rel, err := filepath.Rel(h.root, file)
	if err != nil {
		rel = file
	}
	return &Profile{File: rel, Top: string(top)}, nil
}
