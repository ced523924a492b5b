package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// skewedWorkload generates n create messages (plus about 5% copies of
// recent ones, in the same partition, as a redelivery brings them) over
// span of event time, spread over 4 partitions of very different sizes
// whose event times are distributed differently: partition 0 holds half of
// the messages, spread over the whole span; partition 1 a quarter, all in
// the first half; partition 2 15%, all in the second half; partition 3 the
// rest, over the whole span. Spark's rule for a batch's offsets (the cap
// prorated over the partitions' backlogs) then reads partition 1 far
// behind the others in event time: many of its records are late, for
// Spark and for cordstream alike.
func skewedWorkload(rng *rand.Rand, n int, base time.Time, span time.Duration) (parts [4][]message) {
	names := []string{"alice", "bob", "carol", "dmitri", "emma", "fatima", "jose", "li.wei", "minjun", "noah", "olga", "pedro", "quinn", "rosa"}
	type gen struct {
		share    float64
		from, to float64 // fraction of the span
	}
	gens := [4]gen{{0.5, 0, 1}, {0.25, 0, 0.5}, {0.15, 0.5, 1}, {0.10, 0, 1}}
	seq := 0
	for p, g := range gens {
		k := int(float64(n) * g.share)
		times := make([]int64, k)
		for i := range times {
			f := g.from + (g.to-g.from)*rng.Float64()
			times[i] = base.Add(time.Duration(f * float64(span))).Truncate(time.Millisecond).UnixMicro()
		}
		slices.Sort(times) // each partition in event-time order, as a live stream writes it
		for _, ts := range times {
			author := 3*rng.IntN(len(names)) + p%3 // an author's records stay in one partition
			if rng.IntN(100) < 5 && len(parts[p]) > 20 {
				d := parts[p][len(parts[p])-1-rng.IntN(20)]
				d.counted = false
				parts[p] = append(parts[p], d)
			}
			name := names[author%len(names)]
			m := chat.Message{Kind: chat.KindCreate, MessageID: strconv.Itoa(2_000_000 + seq), ChannelID: "c1",
				AuthorID: chat.Ptr(strconv.Itoa(100 + author)), AuthorName: chat.Ptr(name), Content: chat.Ptr("hi"),
				Timestamp: time.UnixMicro(ts).UTC()}
			v, err := chat.Encode(&m)
			if err != nil {
				panic(err)
			}
			parts[p] = append(parts[p], message{key: []byte(*m.AuthorID), value: v, id: m.MessageID, name: name, ts: ts, counted: true})
			seq++
		}
	}
	return parts
}

// sparkPlan splits the offsets of partitions of the given sizes into
// batches as Spark's maxOffsetsPerTrigger does (KafkaMicroBatchStream's
// rateLimit: the cap prorated over the partitions' backlogs, in doubles,
// rounded down, up when below one): written here again from Spark's rule,
// not taken from the analyzer.
func sparkPlan(sizes []int64, limit int64) [][][2]int64 {
	from := make([]int64, len(sizes))
	var out [][][2]int64
	for {
		var total int64
		for p, n := range sizes {
			total += n - from[p]
		}
		if total == 0 {
			return out
		}
		batch := make([][2]int64, len(sizes))
		for p, n := range sizes {
			size := n - from[p]
			to := from[p]
			if size > 0 {
				prorate := float64(limit) * (float64(size) / float64(total))
				k := int64(math.Floor(prorate))
				if prorate < 1 {
					k = int64(math.Ceil(prorate))
				}
				to = min(n, from[p]+k)
			}
			batch[p] = [2]int64{from[p], to}
			from[p] = to
		}
		out = append(out, batch)
	}
}

// sparkCounts is what Spark's query (1 minute windows sliding 30 s, a 1
// minute watermark, update mode, grouped by author_name) leaves as the
// final count of every (window, name) when it runs the batches of plan,
// the first copy of each message_id of a partition counted: in batch N a
// window that ended at or before the watermark of batch N-1 drops the
// record, and a batch's watermark is the latest event time of the batch
// before, minus the delay, never moving back. It also returns how many
// (window, name) additions were dropped as late.
func sparkCounts(parts [4][]message, plan [][][2]int64) (map[string]int64, int) {
	const slide, size, delay = int64(30_000_000), int64(60_000_000), int64(60_000_000)
	out := map[string]int64{}
	seen := [4]map[string]bool{}
	for p := range seen {
		seen[p] = map[string]bool{}
	}
	var wmPrev, wm int64 // the watermark the previous batch ran with, and this one's
	dropped := 0
	for _, batch := range plan {
		late := wmPrev
		var maxTs int64
		has := false
		for p, r := range batch {
			for _, m := range parts[p][r[0]:r[1]] {
				if seen[p][m.id] {
					continue
				}
				seen[p][m.id] = true
				if !has || m.ts > maxTs {
					maxTs, has = m.ts, true
				}
				last := m.ts - ((m.ts%slide)+slide)%slide
				for s := last; s > m.ts-size; s -= slide {
					if s+size <= late {
						dropped++
						continue
					}
					out[rowID(s, m.name)]++
				}
			}
		}
		wmPrev = wm
		if has {
			wm = max(wm, (maxTs/1000)*1000-delay)
		}
	}
	return out, dropped
}

// plansOf reads the plan of every batch of the query app from its batches
// topic (one record per batch; compaction has not run yet), as offset
// ranges per partition.
func plansOf(t *testing.T, app string, parts int) [][][2]int64 {
	t.Helper()
	type planRange struct {
		Partition int32 `json:"partition"`
		From      int64 `json:"from"`
		To        int64 `json:"to"`
	}
	type batchPlan struct {
		Batch  int64       `json:"batch"`
		Ranges []planRange `json:"ranges"`
	}
	plans := map[int64]batchPlan{}
	for _, r := range readCommitted(t, app+"-batches") {
		var bp batchPlan
		if err := json.Unmarshal(r.Value, &bp); err != nil {
			t.Fatalf("plan record %q: %v", r.Value, err)
		}
		plans[bp.Batch] = bp
	}
	var out [][][2]int64
	for id := range int64(len(plans)) {
		bp, ok := plans[id]
		if !ok {
			t.Fatalf("no plan of batch %d among %d", id, len(plans))
		}
		b := make([][2]int64, parts)
		for _, r := range bp.Ranges {
			b[r.Partition] = [2]int64{r.From, r.To}
		}
		out = append(out, b)
	}
	return out
}

// samePlan reports whether the data batches of got are those of want (got
// may end with a batch without data: the no-data batch after the last).
func samePlan(got, want [][][2]int64) bool {
	for len(got) > len(want) {
		empty := true
		for _, r := range got[len(got)-1] {
			empty = empty && r[0] == r[1]
		}
		if !empty {
			return false
		}
		got = got[:len(got)-1]
	}
	return fmt.Sprint(got) == fmt.Sprint(want)
}

// TestInstancesCountAsOne replays a topic of 4 partitions of very
// different sizes, with duplicates, with --available-now and a batch cap:
// once with one instance, once with instances that are killed (-9),
// restarted, joined and stopped (SIGTERM) along the way, and once with two
// instances of which one has another batch cap and is paused (SIGSTOP) for
// a while. Every run must leave in the results topic (read committed, the
// latest count of every window and name) exactly the counts Spark's rule
// gives for the whole group: the batches of the cap prorated over all
// partitions, one watermark.
func TestInstancesCountAsOne(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	n, perBatch := 8_000, 400
	if full() {
		n, perBatch = 150_000, 1000
	}
	n = envInt(t, envMessages, n)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 3))
	span := time.Duration(n) * 40 * time.Millisecond // 150,000 messages: 100 minutes
	parts := skewedWorkload(rng, n, time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC), span)
	topic := kafkatest.Topic(t, 4)
	cl := kafkatest.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sizes := make([]int64, 4)
	var all []message
	for p, msgs := range parts {
		sizes[p] = int64(len(msgs))
		all = append(all, msgs...)
		for i := 0; i < len(msgs); i += 5000 {
			var recs []*kgo.Record
			for _, m := range msgs[i:min(i+5000, len(msgs))] {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Key: m.key, Value: m.value})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	plan := sparkPlan(sizes, int64(perBatch))
	want, dropped := sparkCounts(parts, plan)
	brute := oracle(all)
	under := 0
	for k, w := range brute {
		if want[k] != w {
			under++
		}
	}
	t.Logf("seed %d: partitions of %v records, %d batches of %d; Spark's rule keeps %d of %d rows exact (drops %d window additions as late)",
		seed, sizes, len(plan), perBatch, len(brute)-under, len(brute), dropped)
	if under == 0 {
		t.Fatal("the workload has no late data under Spark's rule: it does not test the watermark")
	}

	dir := t.TempDir()
	adm := kadm.NewClient(kafkatest.Client(t))
	args := func(app, id string, cap int, extra ...string) []string {
		return append([]string{"analyze", "--brokers", brokers, "--topic", topic, "--group", app, "--instance-id", id,
			"--starting-offsets", "earliest", "--available-now", "--max-records-per-batch", strconv.Itoa(cap),
			"--session-timeout", "6s", "--transaction-timeout", "6s", "--dedup",
			"--output", "kafka", "--results-topic", app + "-results",
			"--replication-factor", "1", "--log-level", "info"}, extra...)
	}
	internal := func(app string) []string {
		return []string{app + "-results", app + "-input-state", app + "-window-state", app + "-repartition", app + "-batches"}
	}
	progress := func(app string) int64 { return committedTotal(ctx, adm, app, topic) }
	waitFor := func(app string, frac float64, cs ...*child) {
		goal := int64(frac * float64(len(all)))
		for progress(app) < goal && ctx.Err() == nil {
			for _, c := range cs {
				if c.exited() {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check := func(what, app string, cs ...*child) {
		t.Helper()
		for _, c := range cs {
			if c.err != nil {
				t.Errorf("%s: an instance failed: %v\n%s", what, c.err, tail(c.log))
			}
		}
		if len(cs) > 0 { // several instances: shares went through the repartition topic
			ends, err := adm.ListEndOffsets(ctx, app+"-repartition")
			var shared int64
			ends.Each(func(o kadm.ListedOffset) { shared += o.Offset })
			if err != nil || shared == 0 {
				t.Errorf("%s: nothing went through the repartition topic (%v)", what, err)
			}
			t.Logf("%s: %d records (partial counts, markers, transaction markers) through the repartition topic", what, shared)
		}
		if got := progress(app); got != int64(len(all)) {
			t.Errorf("%s: %d of %d input offsets committed", what, got, len(all))
		}
		got, recs := finalCounts(t, readCommitted(t, app+"-results"))
		compareCounts(t, what+" vs Spark's rule for the group", got, want)
		if !t.Failed() {
			t.Logf("%s: %d rows equal to Spark's rule (%d result records)", what, len(got), len(recs))
		}
	}

	// One instance.
	one := topic + "-one"
	dropTopics(t, internal(one)...)
	began := time.Now()
	start(t, dir, "one", args(one, "solo", perBatch)...).wait(t, 5*time.Minute)
	t.Logf("one instance: %v", time.Since(began).Round(time.Millisecond))
	check("one instance", one)

	// Three instances, killed, restarted, joined, stopped.
	three := topic + "-three"
	dropTopics(t, internal(three)...)
	began = time.Now()
	a := start(t, dir, "three-a", args(three, "a", perBatch)...)
	for { // a creates the internal topics
		if _, err := kafka.DescribeTopic(ctx, kafkatest.Client(t), three+"-batches"); err == nil {
			break
		}
		if a.exited() || ctx.Err() != nil {
			t.Fatalf("the first instance did not start:\n%s", tail(a.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := start(t, dir, "three-b", args(three, "b", perBatch)...)
	c := start(t, dir, "three-c", args(three, "c", perBatch)...)
	waitFor(three, 0.2, a, b, c)
	b.kill()
	t.Logf("killed b at %d of %d offsets; restarted", progress(three), len(all))
	b2 := start(t, dir, "three-b2", args(three, "b", perBatch)...)
	waitFor(three, 0.45, a, b2, c)
	c.cmd.Process.Signal(syscall.SIGTERM)
	t.Logf("stopped c at %d offsets; d joins", progress(three))
	d := start(t, dir, "three-d", args(three, "d", perBatch)...)
	waitFor(three, 0.7, a, b2, d)
	a.kill()
	t.Logf("killed a (which planned the first batches) at %d offsets, not restarted", progress(three))
	for _, x := range []*child{b2, c, d} {
		x.wait(t, 5*time.Minute)
	}
	if got := progress(three); got < int64(len(all)) {
		// Every instance left stopped on its own before the end: the
		// killed one's partitions were still its own when they looked.
		t.Logf("at %d offsets when the instances stopped; one more instance finishes", got)
		start(t, dir, "three-e", args(three, "e", perBatch)...).wait(t, 5*time.Minute)
	}
	t.Logf("three instances: %v", time.Since(began).Round(time.Millisecond))
	check("instances killed, joined and stopped", three, b2, c, d)
	leaders := 0
	for _, x := range []*child{a, b, b2, c, d} {
		if bs, _ := os.ReadFile(x.log); strings.Contains(string(bs), "this instance leads the query") {
			leaders++
		}
	}
	if leaders < 2 {
		t.Errorf("%d instances led the query; killing the first leader should have made another lead", leaders)
	}

	// Two instances, one of them with another cap and paused.
	slow := topic + "-slow"
	dropTopics(t, internal(slow)...)
	began = time.Now()
	p := start(t, dir, "slow-p", args(slow, "p", perBatch)...)
	for {
		if _, err := kafka.DescribeTopic(ctx, kafkatest.Client(t), slow+"-batches"); err == nil {
			break
		}
		if p.exited() || ctx.Err() != nil {
			t.Fatalf("the first instance did not start:\n%s", tail(p.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := start(t, dir, "slow-q", args(slow, "q", perBatch/7)...)
	waitFor(slow, 0.3, p, q)
	q.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(4 * time.Second) // within the 6 s session timeout: q keeps its partitions
	q.cmd.Process.Signal(syscall.SIGCONT)
	t.Logf("paused q for 4 s at %d offsets", progress(slow))
	p.wait(t, 5*time.Minute)
	q.wait(t, 5*time.Minute)
	t.Logf("two instances, one slow: %v", time.Since(began).Round(time.Millisecond))
	// The leader's cap sizes every batch: p's, or q's when the group gave
	// q partition 0.
	slowPlan := plansOf(t, slow, len(sizes))
	switch {
	case samePlan(slowPlan, plan):
		t.Logf("two instances, one slow: p led; the batches are Spark's with p's cap")
	case samePlan(slowPlan, sparkPlan(sizes, int64(perBatch/7))):
		t.Logf("two instances, one slow: q led; the batches are Spark's with q's cap")
	default:
		t.Errorf("two instances, one slow: the %d batches planned are Spark's with neither instance's cap", len(slowPlan))
	}
	wantAll := want
	want, _ = sparkCounts(parts, slowPlan)
	check("two instances, one paused and with another cap", slow, p, q)
	want = wantAll
	logs := ""
	for _, x := range []*child{p, q} {
		bs, _ := os.ReadFile(x.log)
		logs += string(bs)
	}
	// The late records of the whole query, as the leader's log reports them
	// batch by batch.
	var lateTotal int64
	for _, m := range regexp.MustCompile(`late_records_query=(\d+)`).FindAllStringSubmatch(logs, -1) {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		lateTotal += v
	}
	t.Logf("two instances, one slow: %d late records reported for the whole query; the leader waited for the paused instance: %v",
		lateTotal, strings.Contains(logs, "waiting for other instances to run their share"))
	if dropped > 0 && lateTotal == 0 && !strings.Contains(logs, "late_records_query") {
		t.Error("late data was dropped but the leader's log never reported the query's late records")
	}

	// A backlog under a processing-time trigger: batch boundaries depend on
	// timing, so the model runs on the batches as they were planned (every
	// plan is kept in the batches topic, one record per batch).
	live := topic + "-live"
	dropTopics(t, internal(live)...)
	began = time.Now()
	liveArgs := func(id string) []string {
		a := args(live, id, perBatch)
		i := slices.Index(a, "--available-now")
		return slices.Replace(a, i, i+1, "--trigger", "500ms")
	}
	l1 := start(t, dir, "live-1", liveArgs("l1")...)
	for {
		if _, err := kafka.DescribeTopic(ctx, kafkatest.Client(t), live+"-batches"); err == nil {
			break
		}
		if l1.exited() || ctx.Err() != nil {
			t.Fatalf("the first instance did not start:\n%s", tail(l1.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ls := []*child{l1, start(t, dir, "live-2", liveArgs("l2")...), start(t, dir, "live-3", liveArgs("l3")...)}
	waitFor(live, 1, ls...)
	for _, x := range ls {
		x.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, x := range ls {
		x.wait(t, time.Minute)
	}
	t.Logf("three instances, processing time: %v", time.Since(began).Round(time.Millisecond))
	livePlan := plansOf(t, live, len(sizes))
	wantLive, droppedLive := sparkCounts(parts, livePlan)
	if !samePlan(livePlan, plan) {
		t.Logf("processing time: the batches differ from those of available-now (planned as the input arrived)")
	}
	t.Logf("processing time: %d batches planned; Spark's rule on them drops %d window additions as late", len(livePlan), droppedLive)
	want = wantLive
	check("three instances, processing time, a backlog", live, ls...)
}
