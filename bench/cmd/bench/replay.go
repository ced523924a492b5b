//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Measured consumers of a loaded topic.
const (
	KindRaw        = "raw"
	KindCordstream = "cordstream"
	KindSpark      = "spark"
	// KindRawProcess is the raw consumer that also decodes each record and
	// counts it in the seed's windows, in its polling loop: what the
	// analyzer's per-record work costs on top of consuming, without its
	// consumer group, batches, output and commits.
	KindRawProcess = "raw+process"
	// KindCordstreamMem is cordstream analyze with --state none
	// --dedup=false: state in memory only, offsets committed after each
	// batch (at-least-once), duplicates counted as Spark counts them.
	KindCordstreamMem = "cordstream-state-none"
)

// ConsumeRun is one measured read of a whole topic.
type ConsumeRun struct {
	Kind        string  `json:"kind"`
	Partitions  int     `json:"partitions"`
	Records     int64   `json:"records"`
	Batches     int     `json:"batches"`
	FirstBatchS float64 `json:"first_batch_s"`
	RecordsPerS float64 `json:"records_per_s"`
	CPUPerRecUS float64 `json:"cpu_us_per_record"`
	// LoadAvg is the machine's 1-minute load average when the run started.
	LoadAvg float64 `json:"loadavg_at_start"`
	// Kafka Streams only: commits (commit-total of its stream threads)
	// before it was closed, records it dropped (late for their windows, or
	// with no timestamp), and the rows it wrote to its output topic.
	Commits       int64 `json:"commits,omitempty"`
	Dropped       int64 `json:"dropped_records,omitempty"`
	OutputRecords int64 `json:"output_records,omitempty"`
	ProcStats
}

func (r *ConsumeRun) finish(st ProcStats) {
	r.ProcStats = st
	if st.WallS > 0 {
		r.RecordsPerS = float64(r.Records) / st.WallS
	}
	if r.Records > 0 {
		r.CPUPerRecUS = st.CPUS / float64(r.Records) * 1e6
	}
}

// load1 is the machine's 1-minute load average.
func load1() float64 {
	var v float64
	fmt.Sscan(loadAvg(), &v)
	return v
}

// waitProc waits for p, killing its group when ctx ends first.
func waitProc(ctx context.Context, p *proc) (ProcStats, error) {
	stop := context.AfterFunc(ctx, p.Kill)
	defer stop()
	st, err := p.Wait()
	if ctx.Err() != nil {
		return st, fmt.Errorf("%s: %w", p.name, ctx.Err())
	}
	return st, err
}

// stderrTail keeps the last lines of a process's stderr for error messages.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
}

func (t *stderrTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > 30 {
		t.lines = t.lines[len(t.lines)-30:]
	}
}

func (t *stderrTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// runRaw measures (a): the raw franz-go consumer, a child process of this
// binary.
func (h *harness) runRaw(ctx context.Context, topic string, parts int, process bool) (ConsumeRun, error) {
	run := ConsumeRun{Kind: KindRaw, Partitions: parts, LoadAvg: load1()}
	args := []string{"consume", "--brokers", h.brokers, "--topic", topic, "--records", strconv.FormatInt(h.cfg.messages, 10)}
	if process {
		run.Kind = KindRawProcess
		args = append(args, "--process")
		if h.cfg.batchRecords > 0 {
			args = append(args, "--batch", strconv.FormatInt(h.cfg.batchRecords, 10))
		}
	}
	var first time.Time
	var result string
	var tail stderrTail
	p, err := startProc(h.self, args, nil,
		func(t time.Time, line string) {
			if line == "first" {
				first = t
			} else {
				result = line
			}
		}, func(_ time.Time, line string) { tail.add(line) })
	if err != nil {
		return run, err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	st, err := waitProc(rctx, p)
	if err != nil {
		return run, fmt.Errorf("%w\n%s", err, tail.String())
	}
	var res rawConsumeResult
	if err := json.Unmarshal([]byte(result), &res); err != nil {
		return run, fmt.Errorf("raw consumer: unreadable result %q: %v", result, err)
	}
	run.Records = res.Records
	if !first.IsZero() {
		run.FirstBatchS = first.Sub(p.start).Seconds()
	}
	run.finish(st)
	return run, nil
}

var (
	reBatchDone = regexp.MustCompile(`msg="batch done".* batch=(\d+) .*records=(\d+) .*took=(\S+)`)
	reInput     = regexp.MustCompile(`/(\d+)\[(\d+),(\d+)\)`)
)

// analyzeArgs are the arguments of `cordstream analyze` for a replay of
// topic with the seed's query; memState adds --state none --dedup=false.
func (h *harness) analyzeArgs(topic, group string, memState bool) []string {
	args := []string{"analyze", "--brokers", h.brokers, "--topic", topic, "--group", group,
		"--starting-offsets", "earliest", "--available-now", "--no-create-topic",
		"--output", "console", "--log-level", "debug"}
	if memState {
		args = append(args, "--state", "none", "--dedup=false")
	}
	if h.cfg.batchRecords > 0 {
		args = append(args, "--max-records-per-batch", strconv.FormatInt(h.cfg.batchRecords, 10))
	}
	return args
}

// runCordstream measures (b): `cordstream analyze --available-now` with the
// seed's query, console output read (and dropped) by the harness. Time to
// first batch is when the first console line arrives; the records come from
// the analyzer's per-batch log lines and must add up to the topic.
func (h *harness) runCordstream(ctx context.Context, bin, topic string, parts int, env []string, memState bool) (ConsumeRun, error) {
	run := ConsumeRun{Kind: KindCordstream, Partitions: parts, LoadAvg: load1()}
	if memState {
		run.Kind = KindCordstreamMem
	}
	var first time.Time
	var mu sync.Mutex
	var tail stderrTail
	group := fmt.Sprintf("bench-%s-%d", topic, time.Now().UnixNano())
	defer h.dropQueryTopics(group)
	p, err := startProc(bin, h.analyzeArgs(topic, group, memState), env,
		func(t time.Time, line string) {
			mu.Lock()
			defer mu.Unlock()
			if first.IsZero() {
				first = t
			}
		}, func(_ time.Time, line string) {
			if m := reBatchDone.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[2], 10, 64)
				mu.Lock()
				run.Records += n
				run.Batches++
				mu.Unlock()
				return
			}
			tail.add(line)
		})
	if err != nil {
		return run, err
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	st, err := waitProc(rctx, p)
	if err != nil {
		return run, fmt.Errorf("%w\n%s", err, tail.String())
	}
	if !first.IsZero() {
		run.FirstBatchS = first.Sub(p.start).Seconds()
	}
	run.finish(st)
	return run, nil
}

// dropQueryTopics deletes the internal topics `cordstream analyze` keeps
// for the query of group (with --state kafka, named after the group).
func (h *harness) dropQueryTopics(group string) {
	var names []string
	for _, suffix := range []string{"-input-state", "-window-state", "-repartition"} {
		names = append(names, group+suffix)
	}
	deleteTopics(h.kcfg, names, h.log)
}

// sparkProgress is the part of a Spark query progress report we read.
type sparkProgress struct {
	BatchID      int64            `json:"batchId"`
	NumInputRows int64            `json:"numInputRows"`
	Timestamp    string           `json:"timestamp"`
	DurationMs   map[string]int64 `json:"durationMs"`
}

// runSpark measures (c): spark/discord_consumer.py with the seed's query,
// availableNow, local[2], console output read by the harness. Records come
// from Spark's progress reports.
func (h *harness) runSpark(ctx context.Context, topic string, parts int) (ConsumeRun, error) {
	run := ConsumeRun{Kind: KindSpark, Partitions: parts, LoadAvg: load1()}
	id := fmt.Sprintf("%s-%d", topic, time.Now().UnixNano())
	progress := filepath.Join(h.work, "spark-progress-"+id+".jsonl")
	// The checkpoint lives in the harness's own directory: a temporary one
	// in /tmp can be swept away by other programs during a long run.
	checkpoint := filepath.Join(h.work, "spark-checkpoint-"+id)
	defer os.RemoveAll(checkpoint)
	args := []string{filepath.Join(h.root, "spark", "discord_consumer.py"),
		"--brokers", h.brokers, "--topic", topic, "--starting-offsets", "earliest", "--available-now",
		"--master", h.cfg.sparkMaster, "--output", "console", "--progress-file", progress,
		"--checkpoint-location", checkpoint}
	if h.cfg.sparkShuffle > 0 {
		args = append(args, "--shuffle-partitions", strconv.Itoa(h.cfg.sparkShuffle))
	}
	if h.cfg.batchRecords > 0 {
		args = append(args, "--max-offsets-per-trigger", strconv.FormatInt(h.cfg.batchRecords, 10))
	}
	var first time.Time
	var mu sync.Mutex
	var tail stderrTail
	p, err := startProc(h.cfg.sparkPython, args, nil,
		func(t time.Time, line string) {
			mu.Lock()
			defer mu.Unlock()
			if first.IsZero() {
				first = t
			}
		}, func(_ time.Time, line string) { tail.add(line) })
	if err != nil {
		return run, err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Hour)
	defer cancel()
	st, err := waitProc(rctx, p)
	if err != nil {
		return run, fmt.Errorf("%w\n%s", err, tail.String())
	}
	f, err := os.Open(progress)
	if err != nil {
		return run, fmt.Errorf("spark wrote no progress reports: %w\n%s", err, tail.String())
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var pr sparkProgress
		if err := json.Unmarshal(sc.Bytes(), &pr); err != nil {
			return run, fmt.Errorf("spark progress report: %w", err)
		}
		run.Records += pr.NumInputRows
		run.Batches++
	}
	if err := sc.Err(); err != nil {
		return run, err
	}
	if !first.IsZero() {
		run.FirstBatchS = first.Sub(p.start).Seconds()
	}
	run.finish(st)
	return run, nil
}
