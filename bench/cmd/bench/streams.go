//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/cordstream/cordstream/internal/kafka"
)

// Kafka Streams' processing guarantees, as its processing.guarantee takes them.
const (
	GuaranteeEOS  = "exactly_once_v2"
	GuaranteeALOS = "at_least_once"
)

// Measured Kafka Streams runs (bench/streams: the seed's query in Kafka
// Streams, --streams-threads stream threads, its defaults otherwise).
const (
	KindStreamsEOS  = "kafka-streams-eos"
	KindStreamsALOS = "kafka-streams-alos"
)

func streamsKind(guarantee string) string {
	if guarantee == GuaranteeALOS {
		return KindStreamsALOS
	}
	return KindStreamsEOS
}

// streamsSummary is the JSON line the Kafka Streams application prints last.
type streamsSummary struct {
	Records       int64   `json:"records"`
	OutputRecords int64   `json:"output_records"`
	Commits       int64   `json:"commits_before_close"`
	Dropped       int64   `json:"dropped_records"`
	Seconds       float64 `json:"seconds"`
}

// streamsRun is one run of the Kafka Streams application: what it printed
// and the topic its rows went to (deleted by cleanup).
type streamsRun struct {
	ConsumeRun
	output  string
	cleanup func()
}

// runStreams runs the Kafka Streams application (bench/streams) on topic
// with guarantee, from the topic's start until it has counted every record,
// its rows written to a fresh output topic. Time to first result is when it
// hands its first row to that topic. Unless keepOutput, the output topic,
// its internal topics, its group and its state directory are deleted before
// it returns; otherwise the caller calls cleanup.
func (h *harness) runStreams(ctx context.Context, topic string, parts int, guarantee string, want int64, keepOutput bool) (streamsRun, error) {
	run := streamsRun{ConsumeRun: ConsumeRun{Kind: streamsKind(guarantee), Partitions: parts, LoadAvg: load1()}}
	app := fmt.Sprintf("bench-streams-%s-%s-%d", map[string]string{GuaranteeEOS: "eos", GuaranteeALOS: "alos"}[guarantee], topic, time.Now().UnixNano())
	run.output = app + "-results"
	stateDir := filepath.Join(h.work, app+"-state")
	run.cleanup = func() {
		os.RemoveAll(stateDir)
		h.dropStreamsApp(app)
	}
	if !keepOutput {
		defer run.cleanup()
	}
	admin, err := kafka.NewClient(ctx, h.kcfg, nil)
	if err != nil {
		return run, err
	}
	err = createTopic(ctx, admin, run.output, parts, nil)
	admin.Close()
	if err != nil {
		return run, fmt.Errorf("create the Kafka Streams output topic: %w", err)
	}
	args := append(slices.Clone(h.cfg.streamsJVMOpts), "-cp", filepath.Join(h.cfg.streamsLib, "*"), "io.cordstream.bench.streams.CountByAuthor",
		"--brokers", h.brokers, "--topic", topic, "--output-topic", run.output, "--application-id", app,
		"--records", strconv.FormatInt(want, 10), "--guarantee", guarantee, "--state-dir", stateDir,
		"--threads", strconv.Itoa(h.cfg.streamsThreads), "--timeout-s", "3000")
	var first time.Time
	var result string
	var mu sync.Mutex
	var tail stderrTail
	p, err := startProc(javaBin(), args, nil,
		func(t time.Time, line string) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case line == "first":
				if first.IsZero() {
					first = t
				}
			case strings.HasPrefix(line, "{"):
				result = line
			}
		}, func(_ time.Time, line string) { tail.add(line) })
	if err != nil {
		return run, err
	}
	rctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	st, err := waitProc(rctx, p)
	if err != nil {
		return run, fmt.Errorf("%w\n%s", err, tail.String())
	}
	var sum streamsSummary
	if err := json.Unmarshal([]byte(result), &sum); err != nil {
		return run, fmt.Errorf("kafka streams: unreadable summary %q: %v\n%s", result, err, tail.String())
	}
	run.Records = sum.Records
	run.Commits = sum.Commits
	run.Dropped = sum.Dropped
	run.OutputRecords = sum.OutputRecords
	if !first.IsZero() {
		run.FirstBatchS = first.Sub(p.start).Seconds()
	}
	run.finish(st)
	return run, nil
}

// javaBin is $JAVA_HOME/bin/java when JAVA_HOME is set, else java on PATH.
func javaBin() string {
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		if _, err := os.Stat(filepath.Join(jh, "bin", "java")); err == nil {
			return filepath.Join(jh, "bin", "java")
		}
	}
	return "java"
}

// dropStreamsApp deletes what a Kafka Streams application left in Kafka:
// its topics (output, repartition, changelog: all named after it) and its
// consumer group.
func (h *harness) dropStreamsApp(app string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(ctx, h.kcfg, nil)
	if err != nil {
		h.log.Warn("could not delete the Kafka Streams topics", "app", app, "err", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		h.log.Warn("could not list the Kafka Streams topics", "app", app, "err", err)
		return
	}
	var names []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, app+"-") {
			names = append(names, t)
		}
	}
	deleteTopics(h.kcfg, names, h.log)
	if _, err := adm.DeleteGroup(ctx, app); err != nil {
		h.log.Debug("could not delete the Kafka Streams group", "app", app, "err", err)
	}
}
