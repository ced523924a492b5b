//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/bench/workload"
	"github.com/cordstream/cordstream/internal/kafka"
)

// AgreementCheck compares the final count of every (window, author) of a
// peer with cordstream's, on a topic without late data, where the peers'
// semantics and Spark's give the same counts (docs/BENCHMARKS.md says
// where they differ otherwise).
type AgreementCheck struct {
	Partitions   int     `json:"partitions"`
	Topic        string  `json:"topic"`
	Messages     int64   `json:"messages"`
	EventSeconds float64 `json:"event_time_span_s"`
	// Rows and Total are cordstream's: the (window, author) rows of its
	// final counts, and their sum (twice the messages when none was dropped:
	// each message is in two windows).
	Rows  int             `json:"rows"`
	Total int64           `json:"total_count"`
	Peers []PeerAgreement `json:"peers"`
	Err   string          `json:"error,omitempty"`
}

// PeerAgreement is one peer's final counts against cordstream's.
type PeerAgreement struct {
	Kind     string `json:"kind"`
	Rows     int    `json:"rows"`
	Total    int64  `json:"total_count"`
	Equal    int    `json:"equal_rows"`
	Differ   int    `json:"differing_rows"`
	OnlyOurs int    `json:"only_in_cordstream"`
	OnlyPeer int    `json:"only_in_peer"`
	// Dropped is what the peer reported dropping (Kafka Streams: records
	// late for a window's grace, counted once per window).
	Dropped int64 `json:"dropped_records"`
	// Examples are a few rows that do not agree.
	Examples []string `json:"examples,omitempty"`
	Agree    bool     `json:"agree"`
	Err      string   `json:"error,omitempty"`
}

// finalCounts maps a row (window start, window end, author) to its count.
type finalCounts map[string]int64

// row is the JSON of one output row, as cordstream's jsonl output and the
// Kafka Streams application both write it.
type row struct {
	WindowStart  string  `json:"window_start"`
	WindowEnd    string  `json:"window_end"`
	AuthorName   *string `json:"author_name"`
	MessageCount *int64  `json:"message_count"`
}

// add reads one row (a JSON object) into c; a later row of the same window
// and author replaces an earlier one, so c ends with the last, final count.
func (c finalCounts) add(b []byte) error {
	var r row
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("row %q: %w", b, err)
	}
	if r.WindowStart == "" || r.WindowEnd == "" || r.MessageCount == nil {
		return fmt.Errorf("row %q: want window_start, window_end and message_count", b)
	}
	author := "\x00null"
	if r.AuthorName != nil {
		author = *r.AuthorName
	}
	c[r.WindowStart+" "+r.WindowEnd+" "+author] = *r.MessageCount
	return nil
}

func (c finalCounts) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// compare returns how peer's counts agree with ours.
func compare(kind string, ours, peer finalCounts) PeerAgreement {
	a := PeerAgreement{Kind: kind, Rows: len(peer), Total: peer.total()}
	var bad []string
	for k, v := range ours {
		pv, ok := peer[k]
		switch {
		case !ok:
			a.OnlyOurs++
			bad = append(bad, fmt.Sprintf("%s: cordstream %d, %s none", printable(k), v, kind))
		case pv != v:
			a.Differ++
			bad = append(bad, fmt.Sprintf("%s: cordstream %d, %s %d", printable(k), v, kind, pv))
		default:
			a.Equal++
		}
	}
	for k, v := range peer {
		if _, ok := ours[k]; !ok {
			a.OnlyPeer++
			bad = append(bad, fmt.Sprintf("%s: cordstream none, %s %d", printable(k), kind, v))
		}
	}
	slices.Sort(bad)
	a.Examples = bad[:min(len(bad), 5)]
	a.Agree = len(bad) == 0 && len(ours) > 0
	return a
}

func printable(key string) string { return strings.ReplaceAll(key, "\x00null", "null") }

// runAgreement loads, for each partition count, a topic of cfg.checkMessages
// messages without late data (the same workload, its late messages left
// out), computes the final counts with cordstream analyze as shipped and
// with each peer, and compares them. Failures of a peer are reported in the
// result, not returned.
func (h *harness) runAgreement(ctx context.Context) ([]*AgreementCheck, error) {
	cfg := h.cfg
	topics := map[int]string{}
	var names []string
	for _, p := range cfg.partitions {
		t := fmt.Sprintf("%s-nolate-n%d-s%d-p%d-%d", cfg.topicPrefix, cfg.checkMessages, cfg.seed, p, time.Now().Unix())
		topics[p] = t
		names = append(names, t)
	}
	if !cfg.keepTopics {
		defer deleteTopics(h.kcfg, names, h.log)
	}
	h.log.Info("loading the agreement check's topics (no late data)", "messages", cfg.checkMessages, "topics", strings.Join(names, ","))
	ld, err := loadTopics(ctx, h.kcfg, topics, cfg.checkMessages,
		workload.Config{Seed: cfg.seed, Authors: cfg.authors, EventRate: cfg.checkEventRate, LateFraction: -1}, false, h.log)
	if err != nil {
		return nil, fmt.Errorf("load the agreement check's topics: %w", err)
	}
	var out []*AgreementCheck
	for _, p := range cfg.partitions {
		ac := &AgreementCheck{Partitions: p, Topic: topics[p], Messages: cfg.checkMessages, EventSeconds: ld.EventSeconds}
		out = append(out, ac)
		ours, err := h.cordstreamFinalCounts(ctx, topics[p])
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			ac.Err = "cordstream analyze: " + lastLines(err.Error(), 10)
			continue
		}
		ac.Rows, ac.Total = len(ours), ours.total()
		for _, g := range cfg.streamsGuarantees {
			kind := streamsKind(g)
			peer, dropped, err := h.streamsFinalCounts(ctx, topics[p], p, g)
			if err != nil {
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				ac.Peers = append(ac.Peers, PeerAgreement{Kind: kind, Err: lastLines(err.Error(), 10)})
				continue
			}
			pa := compare(kind, ours, peer)
			pa.Dropped = dropped
			ac.Peers = append(ac.Peers, pa)
			h.log.Info("agreement", "partitions", p, "peer", kind, "agree", pa.Agree, "rows", pa.Rows, "equal", pa.Equal,
				"differing", pa.Differ, "only_cordstream", pa.OnlyOurs, "only_peer", pa.OnlyPeer)
		}
	}
	return out, nil
}

// cordstreamFinalCounts runs cordstream analyze as shipped (--state kafka,
// de-duplication) on topic with JSON lines output and returns the last
// count of every row.
func (h *harness) cordstreamFinalCounts(ctx context.Context, topic string) (finalCounts, error) {
	group := fmt.Sprintf("bench-check-%s-%d", topic, time.Now().UnixNano())
	defer h.dropQueryTopics(group)
	file := filepath.Join(h.work, group+".jsonl")
	defer os.Remove(file)
	args := h.analyzeArgs(topic, group, false)
	for i := range args {
		if args[i] == "--output" {
			args[i+1] = "jsonl"
		}
	}
	args = append(args, "--jsonl-file", file)
	var tail stderrTail
	p, err := startProc(h.bin, args, nil, nil, func(_ time.Time, l string) {
		if !reBatchDone.MatchString(l) {
			tail.add(l)
		}
	})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	if _, err := waitProc(rctx, p); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail.String())
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRows(f)
}

// readRows reads JSON lines of rows.
func readRows(r io.Reader) (finalCounts, error) {
	c := finalCounts{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := c.add(sc.Bytes()); err != nil {
			return nil, err
		}
	}
	return c, sc.Err()
}

// streamsFinalCounts runs the Kafka Streams application on topic and reads
// the last count of every row from its output topic; it also returns what
// the application reported dropping.
func (h *harness) streamsFinalCounts(ctx context.Context, topic string, parts int, guarantee string) (finalCounts, int64, error) {
	run, err := h.runStreams(ctx, topic, parts, guarantee, h.cfg.checkMessages, true)
	if run.cleanup != nil {
		defer run.cleanup()
	}
	if err != nil {
		return nil, 0, err
	}
	if run.Records != h.cfg.checkMessages {
		return nil, 0, fmt.Errorf("counted %d records, want %d", run.Records, h.cfg.checkMessages)
	}
	c, err := h.readOutputTopic(ctx, run.output)
	return c, run.Dropped, err
}

// readOutputTopic reads a topic of rows from its start (committed records
// only) until nothing new arrives for 3 s; the writer has exited by then.
func (h *harness) readOutputTopic(ctx context.Context, topic string) (finalCounts, error) {
	cl, err := kafka.NewClient(ctx, h.kcfg, nil, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	c := finalCounts{}
	start := time.Now()
	got := false
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("read %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		if fs.NumRecords() == 0 {
			if got || time.Since(start) > 30*time.Second {
				return c, nil
			}
			continue
		}
		got = true
		var aerr error
		fs.EachRecord(func(r *kgo.Record) {
			if err := c.add(r.Value); err != nil && aerr == nil {
				aerr = fmt.Errorf("%s/%d@%d: %w", topic, r.Partition, r.Offset, err)
			}
		})
		if aerr != nil {
			return nil, aerr
		}
		if time.Since(start) > 10*time.Minute {
			return nil, fmt.Errorf("reading %s took more than 10 minutes", topic)
		}
	}
}
