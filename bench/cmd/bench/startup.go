//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// StartupRun is one start of a consumer with the seed's live settings
// (startingOffsets latest, a 5 s processing-time trigger, console output)
// on a topic with nothing new: the time from process start to its first
// batch (Spark's and cordstream's empty Batch: 0) on the console.
type StartupRun struct {
	Kind        string    `json:"kind"`
	FirstBatchS float64   `json:"first_batch_s"`
	Proc        ProcStats `json:"process"`
}

// runStartup starts kind on topic, waits for its first console line, then
// stops it (SIGTERM).
func (h *harness) runStartup(ctx context.Context, kind, topic string) (StartupRun, error) {
	run := StartupRun{Kind: kind}
	var name string
	var args []string
	switch kind {
	case KindCordstream:
		group := fmt.Sprintf("bench-startup-%d", time.Now().UnixNano())
		defer h.dropQueryTopics(group)
		name = h.bin
		args = []string{"analyze", "--brokers", h.brokers, "--topic", topic, "--no-create-topic",
			"--group", group, "--output", "console"}
	case KindSpark:
		name = h.cfg.sparkPython
		args = []string{filepath.Join(h.root, "spark", "discord_consumer.py"), "--brokers", h.brokers, "--topic", topic,
			"--master", h.cfg.sparkMaster, "--output", "console"}
		if h.cfg.sparkShuffle > 0 {
			args = append(args, "--shuffle-partitions", strconv.Itoa(h.cfg.sparkShuffle))
		}
	default:
		return run, fmt.Errorf("no startup measurement for %s", kind)
	}
	var once sync.Once
	first := make(chan time.Time, 1)
	var tail stderrTail
	p, err := startProc(name, args, nil, func(t time.Time, _ string) {
		once.Do(func() { first <- t })
	}, func(_ time.Time, l string) { tail.add(l) })
	if err != nil {
		return run, err
	}
	defer p.Kill()
	select {
	case t := <-first:
		run.FirstBatchS = t.Sub(p.start).Seconds()
	case <-p.exit:
		_, err := p.Wait()
		return run, fmt.Errorf("%s exited before its first batch: %v\n%s", kind, err, tail.String())
	case <-time.After(3 * time.Minute):
		return run, fmt.Errorf("%s printed no batch within 3 minutes\n%s", kind, tail.String())
	case <-ctx.Done():
		return run, ctx.Err()
	}
	_ = p.Signal(syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// How it exits once told to stop is not measured here (the exit code
	// is kept in the report).
	run.Proc, _ = waitProc(wctx, p)
	h.log.Info("measured startup", "kind", kind, "first_batch_s", fmt.Sprintf("%.3f", run.FirstBatchS))
	return run, nil
}
