//go:build linux

package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// E2EResult is (e): per message, from the simulator's post to the console
// output of the analyzer batch that counted it.
type E2EResult struct {
	Messages int     `json:"messages"`
	RatePerS float64 `json:"rate_per_s"`
	Trigger  string  `json:"trigger"`
	Batches  int     `json:"batches"`
	// Total is post -> printed; TriggerWait is broker append -> start of
	// the batch (time spent waiting for the next trigger); NoWait is Total
	// minus TriggerWait, which is Ingest (post -> broker append) plus Batch
	// (batch start -> printed).
	Total       Dist      `json:"total"`
	TriggerWait Dist      `json:"trigger_wait"`
	NoWait      Dist      `json:"total_without_trigger_wait"`
	Ingest      Dist      `json:"post_to_append"`
	Batch       Dist      `json:"batch_start_to_printed"`
	Analyzer    ProcStats `json:"analyzer"`
	Bot         ProcStats `json:"bot"`
	// BatchList is every batch: records read and batch start -> printed.
	BatchList []E2EBatch `json:"batch_list"`
}

// E2EBatch is one analyzer batch of (e).
type E2EBatch struct {
	ID        int64   `json:"id"`
	Records   int64   `json:"records"`
	PrintedMs float64 `json:"start_to_printed_ms"`
}

// batchSeen is one analyzer batch as the harness saw it.
type batchSeen struct {
	id      int64
	ranges  [][3]int64 // partition, from, to
	start   time.Time  // log line read - took
	printed time.Time  // its "Batch: N" console line read
	records int64
}

// batchLog collects the analyzer's batches from its output.
type batchLog struct {
	mu       sync.Mutex
	batches  map[int64]*batchSeen
	assigned chan struct{}
	once     sync.Once
	tail     stderrTail
	group    string // the analyzer's consumer group
}

var reConsoleBatch = regexp.MustCompile(`^Batch: (\d+)$`)

func newBatchLog() *batchLog {
	return &batchLog{batches: map[int64]*batchSeen{}, assigned: make(chan struct{})}
}

func (l *batchLog) get(id int64) *batchSeen {
	b := l.batches[id]
	if b == nil {
		b = &batchSeen{id: id}
		l.batches[id] = b
	}
	return b
}

func (l *batchLog) stdout(t time.Time, line string) {
	if m := reConsoleBatch.FindStringSubmatch(line); m != nil {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		l.mu.Lock()
		l.get(id).printed = t
		l.mu.Unlock()
	}
}

func (l *batchLog) stderr(t time.Time, line string) {
	if m := reBatchDone.FindStringSubmatch(line); m != nil {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		recs, _ := strconv.ParseInt(m[2], 10, 64)
		took, _ := time.ParseDuration(m[3])
		l.mu.Lock()
		b := l.get(id)
		b.start = t.Add(-took)
		b.records = recs
		if i := strings.Index(line, ` input=`); i >= 0 {
			// slog quotes the value only when it holds spaces (several ranges).
			in := line[i+7:]
			if strings.HasPrefix(in, `"`) {
				in = in[1:]
				in = in[:max(strings.IndexByte(in, '"'), 0)]
			} else if j := strings.IndexByte(in, ' '); j >= 0 {
				in = in[:j]
			}
			for _, r := range reInput.FindAllStringSubmatch(in, -1) {
				p, _ := strconv.ParseInt(r[1], 10, 64)
				from, _ := strconv.ParseInt(r[2], 10, 64)
				to, _ := strconv.ParseInt(r[3], 10, 64)
				b.ranges = append(b.ranges, [3]int64{p, from, to})
			}
		}
		l.mu.Unlock()
		return
	}
	if strings.Contains(line, `msg="partition assigned`) { // "partition assigned" or "partition assigned; state restored"
		l.once.Do(func() { close(l.assigned) })
	}
	l.tail.add(line)
}

// covered returns how many records the batches read.
func (l *batchLog) covered() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, b := range l.batches {
		n += b.records
	}
	return n
}

// find returns the batch that read offset of partition.
func (l *batchLog) find(partition int32, offset int64) *batchSeen {
	for _, b := range l.batches {
		for _, r := range b.ranges {
			if r[0] == int64(partition) && offset >= r[1] && offset < r[2] {
				return b
			}
		}
	}
	return nil
}

// startAnalyzer runs cordstream analyze on topic with a processing-time
// trigger, console output and per-batch debug lines.
func (h *harness) startAnalyzer(topic string, l *batchLog, every time.Duration) (*proc, error) {
	group := fmt.Sprintf("%s-%d", topic, time.Now().UnixNano())
	l.group = group
	return startProcEvery(h.bin, []string{"analyze", "--brokers", h.brokers, "--topic", topic, "--group", group,
		"--starting-offsets", "earliest", "--trigger", h.cfg.e2eTrigger.String(), "--no-create-topic",
		"--output", "console", "--log-level", "debug"}, nil, l.stdout, l.stderr, every)
}

// runE2E measures (e).
func (h *harness) runE2E(ctx context.Context) (*E2EResult, error) {
	topic, err := h.newTopic(ctx, "e2e")
	if err != nil {
		return nil, err
	}
	defer h.dropTopic(topic)
	world, err := newSimWorld(h.cfg.seed, h.cfg.authors)
	if err != nil {
		return nil, err
	}
	defer world.Close()
	wt, err := startWatcher(ctx, h.kcfg, topic)
	if err != nil {
		return nil, err
	}
	defer wt.Close()
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	var botTail stderrTail
	bot, err := h.startBot(world, topic, addr, h.cfg.botConfigs[0], &botTail, 100*time.Millisecond, "", "")
	if err != nil {
		return nil, err
	}
	defer bot.Kill()
	bl := newBatchLog()
	an, err := h.startAnalyzer(topic, bl, 100*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer h.dropQueryTopics(bl.group)
	defer an.Kill()
	if err := waitMetric(ctx, "http://"+addr+"/metrics", "cordstream_discord_shards_connected", 1, time.Minute, bot); err != nil {
		return nil, fmt.Errorf("bot not ready: %w\n%s", err, botTail.String())
	}
	select {
	case <-bl.assigned:
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("the analyzer was assigned no partition within a minute\n%s", bl.tail.String())
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	n, err := world.traffic(ctx, h.cfg.e2eRate, 0, h.cfg.e2eDuration)
	if err != nil {
		return nil, err
	}
	if err := wt.waitFor(ctx, n, time.Minute); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, botTail.String())
	}
	deadline := time.Now().Add(2*h.cfg.e2eTrigger + time.Minute)
	for bl.covered() < int64(n) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the analyzer read %d of %d records\n%s", bl.covered(), n, bl.tail.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the last "Batch: N" line
	_ = an.Signal(syscall.SIGTERM)
	_ = bot.Signal(syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res := &E2EResult{Messages: n, RatePerS: h.cfg.e2eRate, Trigger: h.cfg.e2eTrigger.String()}
	if res.Analyzer, err = waitProc(wctx, an); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, bl.tail.String())
	}
	if res.Bot, err = waitProc(wctx, bot); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, botTail.String())
	}

	var total, wait, noWait, ingest, batch []float64
	bl.mu.Lock()
	res.Batches = len(bl.batches)
	for id := range int64(len(bl.batches)) {
		if b := bl.batches[id]; b != nil {
			res.BatchList = append(res.BatchList, E2EBatch{ID: id, Records: b.records, PrintedMs: float64(b.printed.Sub(b.start)) / 1e6})
		}
	}
	world.mu.Lock()
	for id, posted := range world.sent {
		s, ok := wt.get(id)
		if !ok {
			continue
		}
		b := bl.find(s.partition, s.offset)
		if b == nil || b.printed.IsZero() || b.start.IsZero() {
			continue
		}
		app := s.appended.Add(500 * time.Microsecond) // ms resolution, unbiased
		msf := func(d time.Duration) float64 { return float64(d) / 1e6 }
		tw := max(b.start.Sub(app), 0)
		total = append(total, msf(b.printed.Sub(posted)))
		wait = append(wait, msf(tw))
		noWait = append(noWait, msf(b.printed.Sub(posted)-tw))
		ingest = append(ingest, msf(app.Sub(posted)))
		batch = append(batch, msf(b.printed.Sub(b.start)))
	}
	world.mu.Unlock()
	bl.mu.Unlock()
	if len(total) < n {
		return nil, fmt.Errorf("only %d of %d messages could be traced to a printed batch", len(total), n)
	}
	res.Total, res.TriggerWait, res.NoWait = distOf(total), distOf(wait), distOf(noWait)
	res.Ingest, res.Batch = distOf(ingest), distOf(batch)
	h.log.Info("end to end", "messages", n, "total_p50_ms", ms(res.Total.P50), "total_p99_ms", ms(res.Total.P99),
		"no_wait_p50_ms", ms(res.NoWait.P50), "no_wait_p99_ms", ms(res.NoWait.P99))
	return res, nil
}
