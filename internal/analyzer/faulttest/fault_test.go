package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/cli"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
	"github.com/cordstream/cordstream/internal/sink"
)

// Environment variables of these tests.
const (
	envChild    = "CORDSTREAM_ANALYZER_FAULT_CHILD" // "1": this process runs cordstream
	envArgs     = "CORDSTREAM_ANALYZER_FAULT_ARGS"  // its arguments, a JSON list
	envFull     = "CORDSTREAM_FAULT_FULL"
	envMessages = "CORDSTREAM_FAULT_MESSAGES"
	envKills    = "CORDSTREAM_FAULT_KILLS"
	// envKeepLogs names a directory where the logs of a failed test's
	// children are copied (they live in the test's temporary directory).
	envKeepLogs = "CORDSTREAM_FAULT_KEEP_LOGS"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv(envArgs)), &args); err != nil {
			fmt.Fprintln(os.Stderr, "faulttest child:", err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Run(ctx, args, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func full() bool { return os.Getenv(envFull) == "1" }

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("$%s=%q: want a positive number", name, v)
		}
		return n
	}
	return def
}

// child is a `cordstream` process.
type child struct {
	cmd    *exec.Cmd
	log    string
	stdout string // its stdout apart (startOut), or ""
	done   chan struct{}
	err    error
}

// start runs cordstream with args; its output goes to a file in dir.
func start(t *testing.T, dir, name string, args ...string) *child {
	t.Helper()
	return startOut(t, dir, name, false, args...)
}

// startOut is start; with split, stdout goes to a file of its own
// (child.stdout) and the log file holds stderr.
func startOut(t *testing.T, dir, name string, split bool, args ...string) *child {
	t.Helper()
	js, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envArgs+"="+string(js))
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	c := &child{cmd: cmd, log: logPath, done: make(chan struct{})}
	var out *os.File
	if split {
		c.stdout = filepath.Join(dir, name+".stdout")
		if out, err = os.Create(c.stdout); err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = out
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		if out != nil {
			out.Close()
		}
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
		keepLog(t, logPath, name)
	})
	return c
}

// keepLog copies a failed test's child log to $CORDSTREAM_FAULT_KEEP_LOGS.
func keepLog(t *testing.T, path, name string) {
	dir := os.Getenv(envKeepLogs)
	if dir == "" || !t.Failed() {
		return
	}
	b, err := os.ReadFile(path)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		dst := filepath.Join(dir, fmt.Sprintf("%s-%d-%s.log", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().Unix(), name))
		if err = os.WriteFile(dst, b, 0o644); err == nil {
			t.Logf("kept the log of %s: %s", name, dst)
		}
	}
	if err != nil {
		t.Logf("keep the log of %s: %v", name, err)
	}
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// wait waits for the process to exit and fails unless it exits 0.
func (c *child) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.kill()
		t.Fatalf("cordstream did not finish within %v; log:\n%s", timeout, tail(c.log))
	}
	if c.err != nil {
		t.Fatalf("cordstream: %v; log:\n%s", c.err, tail(c.log))
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// message is one produced record and what the oracle needs of it.
type message struct {
	key, value []byte
	id, name   string
	ts         int64 // µs
	counted    bool  // a create message within the watermark
	poison     bool
}

// workload generates n records: authors (more ids than names, so a name
// spans partitions), event times moving forward with jitter, and some
// duplicates, edits, poison records and very late records.
func workload(rng *rand.Rand, n int, base time.Time, step time.Duration) []message {
	names := []string{"alice", "bob", "carol", "dmitri", "emma", "fatima", "jose", "li.wei", "minjun", "noah", "olga", "pedro", "quinn", "rosa"}
	out := make([]message, 0, n)
	now := base
	for i := 0; len(out) < n; i++ {
		now = now.Add(time.Duration(rng.Int64N(int64(2 * step))))
		author := rng.IntN(3 * len(names))
		name := names[author%len(names)]
		ts := now.Add(-time.Duration(rng.Int64N(int64(5 * time.Second))))
		m := chat.Message{Kind: chat.KindCreate, MessageID: fmt.Sprintf("%d", 1_000_000+i), ChannelID: fmt.Sprintf("c%d", author%5),
			AuthorID: chat.Ptr(fmt.Sprintf("%d", 100+author)), AuthorName: chat.Ptr(name), Content: chat.Ptr("hi"), Timestamp: ts}
		msg := message{key: []byte(*m.AuthorID), id: m.MessageID, name: name, counted: true}
		switch r := rng.IntN(1000); {
		case r < 5 && len(out) > 100: // a duplicate of a recent message, as a redelivery or backfill sends it
			d := out[len(out)-1-rng.IntN(100)]
			if !d.poison {
				d.counted = false
				out = append(out, d)
				continue
			}
		case r < 7 && len(out) > n/10: // ten minutes late: too late for every window
			m.Timestamp = ts.Add(-10 * time.Minute)
			msg.counted = false
		case r < 12:
			m.Kind = chat.KindUpdate
			msg.counted = false
		case r < 14:
			msg.value = []byte(fmt.Sprintf(`{"message_id":"%s","author_name":`, m.MessageID))
			msg.poison, msg.counted = true, false
		}
		if msg.value == nil {
			v, err := chat.Encode(&m)
			if err != nil {
				panic(err)
			}
			msg.value = v
		}
		msg.ts = m.Timestamp.UnixMicro()
		out = append(out, msg)
	}
	return out
}

// oracle counts the distinct messages per (window start, author_name) for
// the seed's windows (1 minute, sliding 30 s).
func oracle(msgs []message) map[string]int64 {
	out := map[string]int64{}
	for _, m := range msgs {
		if !m.counted {
			continue
		}
		last := m.ts - ((m.ts%30_000_000)+30_000_000)%30_000_000
		for _, s := range []int64{last, last - 30_000_000} {
			out[rowID(s, m.name)]++
		}
	}
	return out
}

func rowID(startMicros int64, name string) string {
	return time.UnixMicro(startMicros).UTC().Format(time.RFC3339) + " " + name
}

func produceAll(t *testing.T, topic string, msgs []message) {
	t.Helper()
	cl := kafkatest.Client(t, kgo.ProducerBatchMaxBytes(1<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := 0; i < len(msgs); i += 5000 {
		var recs []*kgo.Record
		for _, m := range msgs[i:min(i+5000, len(msgs))] {
			recs = append(recs, &kgo.Record{Topic: topic, Key: m.key, Value: m.value})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// readCommitted reads a topic from its start to its current end with
// read_committed isolation.
func readCommitted(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	return readCommittedWith(t, func(opts ...kgo.Opt) *kgo.Client { return kafkatest.Client(t, opts...) }, topic)
}

// readCommittedWith reads topic's committed records from the start to the
// end offsets listed when it starts, through clients made by client.
func readCommittedWith(t *testing.T, client func(...kgo.Opt) *kgo.Client, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(client())
	var ends kadm.ListedOffsets
	var err error
	for ctx.Err() == nil { // a partition may still be electing its leader after a restart
		if ends, err = adm.ListCommittedOffsets(ctx, topic); err == nil {
			err = ends.Error()
		}
		if err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl := client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: partitions %v not read to their end", topic, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if e, ok := left[r.Partition]; ok && r.Offset >= e-1 {
				delete(left, r.Partition)
			}
		})
	}
	return out
}

// resultRow is a record of the results topic.
type resultRow struct {
	Batch  int64  `json:"batch_id"`
	Start  string `json:"window_start"`
	Name   string `json:"author_name"`
	Count  int64  `json:"message_count"`
	record string
}

// finalCounts keeps the last count of every (window, key) in the results
// topic (all records of a key are in one partition, in order).
func finalCounts(t *testing.T, recs []*kgo.Record) (map[string]int64, []string) {
	t.Helper()
	out := map[string]int64{}
	var all []string
	for _, r := range recs {
		var row resultRow
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatalf("results record %q: %v", r.Value, err)
		}
		out[row.Start+" "+row.Name] = row.Count
		all = append(all, string(r.Value))
	}
	slices.Sort(all)
	return out, all
}

func compareCounts(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	bad := 0
	for k, w := range want {
		if got[k] != w {
			if bad++; bad <= 10 {
				t.Errorf("%s: %s counted %d, want %d", what, k, got[k], w)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad <= 10 {
				t.Errorf("%s: %s counted %d, want no row", what, k, g)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d rows differ", what, bad, len(want))
	}
}

// committedTotal is the sum of the group's committed offsets on topic.
func committedTotal(ctx context.Context, adm *kadm.Client, group, topic string) int64 {
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var n int64
	for _, o := range resp[topic] {
		n += o.At
	}
	return n
}

func dropTopics(t *testing.T, names ...string) {
	t.Cleanup(func() {
		cl := kafkatest.Client(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range names {
			kafka.DeleteTopic(ctx, cl, n)
		}
	})
}

// TestKillNineReplay replays a topic with one analyzer that is killed with
// SIGKILL at random moments, at random points of progress, and restarted
// each time: nothing is lost, nothing is counted twice, nothing is written
// twice.
func TestKillNineReplay(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	n, kills, perBatch := 20_000, 5, 250
	if full() {
		n, kills, perBatch = 200_000, 8, 2000
	}
	n = envInt(t, envMessages, n)
	kills = envInt(t, envKills, kills)
	seed := uint64(time.Now().UnixNano())
	t.Logf("%d messages, %d kills, %d records per batch, seed %d", n, kills, perBatch, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	topic := kafkatest.Topic(t, 3)
	msgs := workload(rng, n, time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC), 10*time.Millisecond)
	produceAll(t, topic, msgs)
	poison := 0
	for _, m := range msgs {
		if m.poison {
			poison++
		}
	}
	dir := t.TempDir()
	run := func(app string) []string {
		dropTopics(t, app+"-results", app+"-dead", app+"-input-state", app+"-window-state", app+"-repartition")
		return []string{"analyze", "--brokers", brokers, "--topic", topic, "--group", app, "--instance-id", "solo",
			"--starting-offsets", "earliest", "--available-now", "--max-records-per-batch", strconv.Itoa(perBatch),
			"--output", "kafka", "--results-topic", app + "-results", "--dead-letter-topic", app + "-dead",
			"--replication-factor", "1", "--log-level", "warn"}
	}

	// The reference: the same query, never interrupted.
	ref := topic + "-ref"
	began := time.Now()
	start(t, dir, "reference", run(ref)...).wait(t, 10*time.Minute)
	t.Logf("uninterrupted run: %v", time.Since(began).Round(time.Millisecond))

	// The same query, killed again and again.
	app := topic + "-killed"
	args := run(app)
	adm := kadm.NewClient(kafkatest.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	targets := make([]float64, kills)
	for i := range targets {
		targets[i] = 0.05 + 0.75*rng.Float64()
	}
	slices.Sort(targets)
	killed, midStream := 0, 0
	for life := 0; ; life++ {
		c := start(t, dir, fmt.Sprintf("life-%02d", life), args...)
		if killed >= kills {
			c.wait(t, 10*time.Minute)
			break
		}
		if life == 2 { // once right after the start: while it restores and joins
			time.Sleep(time.Duration(rng.Int64N(int64(150 * time.Millisecond))))
		} else {
			// At least 5% further than where this life starts, so that
			// every life gets some work done before it is killed.
			goal := max(int64(targets[killed]*float64(n)), committedTotal(ctx, adm, app, topic)+int64(n)/20)
			for committedTotal(ctx, adm, app, topic) < goal && !c.exited() && ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(time.Duration(rng.Int64N(int64(150 * time.Millisecond)))) // anywhere in a batch
		}
		if c.exited() {
			if c.err != nil {
				t.Fatalf("life %d: cordstream failed: %v\n%s", life, c.err, tail(c.log))
			}
			t.Logf("life %d finished before its kill", life)
			break
		}
		c.kill()
		at := committedTotal(ctx, adm, app, topic)
		killed++
		if at > 0 && at < int64(n) {
			midStream++
		}
		t.Logf("kill %d (life %d): committed %d of %d offsets", killed, life, at, n)
		if at >= int64(n) {
			kills = killed // all read: the next life only finishes
		}
	}
	if midStream < 3 {
		t.Errorf("only %d of %d kills landed mid-stream", midStream, killed)
	}

	want := oracle(msgs)
	gotRef, refRecords := finalCounts(t, readCommitted(t, ref+"-results"))
	gotKilled, killedRecords := finalCounts(t, readCommitted(t, app+"-results"))
	compareCounts(t, "uninterrupted run vs the brute-force count", gotRef, want)
	compareCounts(t, "killed run vs the brute-force count", gotKilled, want)
	if !slices.Equal(refRecords, killedRecords) {
		extra, missing := diff(killedRecords, refRecords)
		t.Errorf("results topic (read committed): %d records after %d kills, %d uninterrupted; %d extra (e.g. %v), %d missing (e.g. %v)",
			len(killedRecords), killed, len(refRecords), len(extra), first(extra), len(missing), first(missing))
	}
	for _, app := range []string{ref, app} {
		dead := readCommitted(t, app+"-dead")
		offsets := map[string]bool{}
		for _, r := range dead {
			for _, h := range r.Headers {
				if h.Key == sink.HeaderSourceOffset {
					offsets[string(r.Key)+"@"+string(h.Value)] = true
				}
			}
		}
		if len(dead) != poison || len(offsets) != poison {
			t.Errorf("%s: %d dead letters (%d distinct), want the %d poison records once each", app, len(dead), len(offsets), poison)
		}
	}
	if !t.Failed() {
		t.Logf("%d windows, %d result records, %d dead letters: identical after %d kills (%d mid-stream)", len(want), len(killedRecords), poison, killed, midStream)
	}
}

func diff(a, b []string) (onlyA, onlyB []string) {
	ca := map[string]int{}
	for _, x := range a {
		ca[x]++
	}
	for _, x := range b {
		ca[x]--
	}
	for k, v := range ca {
		for ; v > 0; v-- {
			onlyA = append(onlyA, k)
		}
		for ; v < 0; v++ {
			onlyB = append(onlyB, k)
		}
	}
	return onlyA, onlyB
}

func first(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return xs[0]
}

// TestThreeInstancesOneKilled runs three instances of one query on a live
// stream (event time = the wall clock, as the bot writes it), grouped by
// author_name while records are keyed by author id, so that counts cross
// instances through the repartition topic. One instance is killed with
// SIGKILL and not restarted: its partitions and their state move to the two
// others. The final counts must equal the brute-force count.
func TestThreeInstancesOneKilled(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	n, rate := 10_000, 500
	if full() {
		n, rate = 100_000, 2000
	}
	n = envInt(t, envMessages, n)
	seed := uint64(time.Now().UnixNano())
	t.Logf("%d messages at %d/s, seed %d", n, rate, seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	topic := kafkatest.Topic(t, 6)
	app := topic + "-app"
	results := app + "-results"
	dropTopics(t, results, app+"-dead", app+"-input-state", app+"-window-state", app+"-repartition")
	dir := t.TempDir()
	args := func(id string) []string {
		return []string{"analyze", "--brokers", brokers, "--topic", topic, "--group", app, "--instance-id", id,
			"--starting-offsets", "earliest", "--trigger", "1s", "--session-timeout", "6s",
			"--output", "kafka", "--results-topic", results, "--dead-letter-topic", app + "-dead",
			"--replication-factor", "1", "--log-level", "info"}
	}
	// The first instance creates the internal topics; the others join.
	insts := []*child{start(t, dir, "i1", args("i1")...)}
	adm := kadm.NewClient(kafkatest.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for {
		if _, err := kafka.DescribeTopic(ctx, kafkatest.Client(t), app+"-repartition"); err == nil {
			break
		}
		if insts[0].exited() || ctx.Err() != nil {
			t.Fatalf("the first instance did not start:\n%s", tail(insts[0].log))
		}
		time.Sleep(100 * time.Millisecond)
	}
	insts = append(insts, start(t, dir, "i2", args("i2")...), start(t, dir, "i3", args("i3")...))

	// Produce live: event time is the time of sending.
	cl := kafkatest.Client(t)
	var msgs []message
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	perTick := max(rate/10, 1)
	killAt := n / 3
	logAtKill := map[int]int64{}
	for len(msgs) < n {
		<-tick.C
		var batch []message
		for range perTick {
			batch = append(batch, liveMessage(rng, len(msgs)+len(batch), time.Now()))
		}
		if len(msgs) > 100 && rng.IntN(10) == 0 { // a duplicate of a recent message
			d := msgs[len(msgs)-1-rng.IntN(100)]
			if !d.poison {
				d.counted = false
				batch = append(batch, d)
			}
		}
		var recs []*kgo.Record
		for _, m := range batch {
			recs = append(recs, &kgo.Record{Topic: topic, Key: m.key, Value: m.value})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		msgs = append(msgs, batch...)
		if killAt > 0 && len(msgs) >= killAt {
			insts[1].kill()
			t.Logf("killed instance i2 after %d messages", len(msgs))
			killAt = 0
			for _, i := range []int{0, 2} {
				st, _ := os.Stat(insts[i].log)
				logAtKill[i] = st.Size()
			}
		}
		for i, c := range insts {
			if i != 1 && c.exited() {
				t.Fatalf("instance i%d exited: %v\n%s", i+1, c.err, tail(c.log))
			}
		}
	}
	t.Logf("produced %d records", len(msgs))

	// Wait until the two instances left have read everything, repartition
	// topic included.
	began := time.Now()
	caughtUp := func() bool {
		ends, err := adm.ListCommittedOffsets(ctx, topic, app+"-repartition")
		if err != nil {
			return false
		}
		resp, err := adm.FetchOffsets(ctx, app)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			c, found := resp.Lookup(o.Topic, o.Partition)
			if o.Offset > 0 && (!found || c.At < o.Offset) {
				ok = false
			}
		})
		return ok
	}
	for stable := 0; stable < 3; {
		if ctx.Err() != nil || time.Since(began) > 5*time.Minute {
			t.Fatalf("the instances did not catch up; logs:\n%s\n%s", tail(insts[0].log), tail(insts[2].log))
		}
		if caughtUp() {
			stable++
		} else {
			stable = 0
		}
		time.Sleep(time.Second)
	}
	t.Logf("caught up %v after the last message", time.Since(began).Round(time.Second))
	for _, i := range []int{0, 2} {
		insts[i].cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, i := range []int{0, 2} {
		insts[i].wait(t, time.Minute)
	}

	// The survivors took the killed instance's partitions over, state and
	// all.
	restored := 0
	for _, i := range []int{0, 2} {
		b, _ := os.ReadFile(insts[i].log)
		restored += strings.Count(string(b[logAtKill[i]:]), "state restored")
	}
	if restored == 0 {
		t.Error("no partition was restored by the survivors after the kill")
	}
	t.Logf("the survivors restored %d partitions after the kill", restored)

	rp, err := adm.FetchOffsets(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	var viaRepartition int64
	for _, o := range rp[app+"-repartition"] {
		viaRepartition += o.At
	}
	if viaRepartition == 0 {
		t.Error("nothing went through the repartition topic")
	}
	got, recs := finalCounts(t, readCommitted(t, results))
	compareCounts(t, "three instances, one killed, vs the brute-force count", got, oracle(msgs))
	if !t.Failed() {
		t.Logf("%d windows exact; %d result records; %d partial counts through the repartition topic", len(got), len(recs), viaRepartition)
	}
}

// liveMessage is a message sent now: its event time is within the last two
// seconds; a few are edits (not counted) or poison.
func liveMessage(rng *rand.Rand, seq int, now time.Time) message {
	names := []string{"alice", "bob", "carol", "dmitri", "emma", "fatima", "jose", "li.wei", "minjun", "noah", "olga", "pedro", "quinn", "rosa"}
	author := rng.IntN(3 * len(names))
	m := chat.Message{Kind: chat.KindCreate, MessageID: fmt.Sprintf("live-%d", seq), ChannelID: fmt.Sprintf("c%d", author%5),
		AuthorID: chat.Ptr(fmt.Sprintf("%d", 100+author)), AuthorName: chat.Ptr(names[author%len(names)]), Content: chat.Ptr("hi"),
		Timestamp: now.Add(-time.Duration(rng.Int64N(int64(2 * time.Second)))).UTC()}
	msg := message{key: []byte(*m.AuthorID), id: m.MessageID, name: *m.AuthorName, ts: m.Timestamp.UnixMicro(), counted: true}
	switch r := rng.IntN(1000); {
	case r < 5:
		m.Kind, msg.counted = chat.KindUpdate, false
	case r < 7:
		msg.value = []byte(`{"author_name":`)
		msg.poison, msg.counted = true, false
		return msg
	}
	v, err := chat.Encode(&m)
	if err != nil {
		panic(err)
	}
	msg.value = v
	return msg
}
