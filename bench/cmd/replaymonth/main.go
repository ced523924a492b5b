// Command replaymonth measures how the analyzer's time grows with the size
// of one replay batch: history loaded into a fresh topic, then replayed by
// `cordstream analyze --available-now` in a single batch, de-duplication on,
// state in Kafka (the defaults), side by side with --dedup=false.
//
//	go run ./bench/cmd/replaymonth --brokers 127.0.0.1:9092
//	go run ./bench/cmd/replaymonth --sizes 10000,20000,40000,80000 --month 1000000
//
// Two workloads: "spaced" topics of N records one minute apart (every
// record opens new windows and a new de-duplication slot: the shape that
// made one batch quadratic), loaded in order and again in random order, and a month of history (--month records spread
// evenly over 30 days, from --authors authors). Each run's final counts (the
// last JSON line of every window and author) are checked against a
// brute-force count, so a fast wrong answer does not pass. It prints a
// Markdown table: wall time of the process, time of the replay batch (from
// the analyzer's debug log), microseconds per record and the ratio to the
// smallest topic's.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
)

func main() {
	brokers := flag.String("brokers", envOr("CORDSTREAM_TEST_BROKERS", "127.0.0.1:9092"), "Kafka bootstrap address")
	bin := flag.String("cordstream", "", "cordstream binary (default: built from ./cmd/cordstream)")
	sizes := flag.String("sizes", "10000,20000,40000", "sizes of the topics of records one minute apart, comma-separated")
	month := flag.Int("month", 1_000_000, "records of the month of history (0: skip it)")
	authors := flag.Int("authors", 50, "authors of the month of history")
	noDedupOff := flag.Bool("skip-dedup-off", false, "do not also run each topic with --dedup=false")
	shuffled := flag.Bool("shuffled", true, "also load each spaced topic's records in random order (windows and slots created out of order)")
	keep := flag.Bool("keep-topics", false, "keep the topics afterwards")
	flag.Parse()

	ctx := context.Background()
	work, err := os.MkdirTemp("", "replaymonth-")
	check(err)
	defer os.RemoveAll(work)
	if *bin == "" {
		*bin = filepath.Join(work, "cordstream")
		out, err := exec.Command("go", "build", "-o", *bin, "./cmd/cordstream").CombinedOutput()
		if err != nil {
			fail("build cordstream: %v\n%s", err, out)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(5*time.Millisecond))
	check(err)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	type workload struct {
		name  string
		n     int
		gen   func(i int) (ts time.Time, author int)
		bound bool // also run it without --max-records-per-batch: batches bounded by the transaction timeout
	}
	// History ends a day before now: a record stamped after its own Kafka
	// timestamp (the time it is loaded) by more than an hour would be a bad
	// record (--max-event-time-ahead).
	before := func(span time.Duration) time.Time {
		return time.Now().UTC().Add(-span - 24*time.Hour).Truncate(24 * time.Hour)
	}
	var loads []workload
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fail("--sizes: %q is not a positive number", s)
		}
		base := before(time.Duration(n) * time.Minute)
		loads = append(loads, workload{fmt.Sprintf("%d records, one minute apart", n), n,
			func(i int) (time.Time, int) { return base.Add(time.Duration(i) * time.Minute), i % 7 }, false})
		if *shuffled {
			perm := rand.New(rand.NewPCG(uint64(n), 1)).Perm(n)
			loads = append(loads, workload{fmt.Sprintf("%d records, one minute apart, in random order", n), n,
				func(i int) (time.Time, int) { return base.Add(time.Duration(perm[i]) * time.Minute), perm[i] % 7 }, false})
		}
	}
	if *month > 0 {
		n, a := *month, *authors
		step := 30 * 24 * time.Hour / time.Duration(n)
		base := before(30 * 24 * time.Hour)
		loads = append(loads, workload{fmt.Sprintf("a month: %d records over 30 days, %d authors", n, a), n,
			func(i int) (time.Time, int) { return base.Add(time.Duration(i) * step), (i*7919 + i/13) % a }, true})
	}

	fmt.Printf("| topic | `--dedup` | batches | process wall | replay batches | µs per record (batches) | ratio to the first |\n")
	fmt.Printf("| --- | --- | --- | --- | --- | --- | --- |\n")
	firstPer := map[bool]float64{}
	stamp := time.Now().Unix()
	for li, l := range loads {
		topic := fmt.Sprintf("replaymonth-%d-%d", stamp, li)
		_, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
		check(err)
		want := produce(ctx, cl, topic, l.n, l.gen)
		type mode struct {
			dedup, oneBatch bool
		}
		modes := []mode{{true, true}, {false, true}}
		if *noDedupOff {
			modes = modes[:1]
		}
		if l.bound {
			modes = append(modes, mode{true, false})
		}
		for _, md := range modes {
			dedup := md.dedup
			group := fmt.Sprintf("%s-d%v-%v", topic, dedup, md.oneBatch)
			r := run(*bin, work, *brokers, topic, group, l.n, dedup, md.oneBatch)
			if diff := compare(r.counts, want); diff != "" {
				fail("%s, --dedup=%v: the counts are wrong: %s", l.name, dedup, diff)
			}
			per := float64(r.batch.Microseconds()) / float64(l.n)
			if _, ok := firstPer[dedup]; !ok {
				firstPer[dedup] = per
			}
			name := l.name
			if !md.oneBatch {
				name += ", batches bounded by the transaction (no --max-records-per-batch)"
			}
			fmt.Printf("| %s | %v | %d | %.2f s | %.2f s | %.2f | %.2f |\n", name, dedup, r.batches,
				r.wall.Seconds(), r.batch.Seconds(), per, per/firstPer[dedup])
			if !*keep {
				deleteTopics(ctx, adm, group+"-input-state", group+"-window-state", group+"-repartition")
				adm.DeleteGroup(ctx, group)
			}
		}
		if !*keep {
			deleteTopics(ctx, adm, topic)
		}
	}
}

// produce writes n records and returns the brute-force count of every
// (window start, author) for the seed's windows (1 minute sliding 30 s).
func produce(ctx context.Context, cl *kgo.Client, topic string, n int, gen func(int) (time.Time, int)) map[string]int64 {
	want := map[string]int64{}
	var recs []*kgo.Record
	flush := func() {
		check(cl.ProduceSync(ctx, recs...).FirstErr())
		recs = recs[:0]
	}
	for i := range n {
		ts, a := gen(i)
		name := fmt.Sprintf("author-%03d", a)
		m := chat.Message{Kind: chat.KindCreate, MessageID: strconv.FormatInt(1_400_000_000_000_000_000+int64(i), 10),
			ChannelID: "1100000000000000001", AuthorID: chat.Ptr(strconv.Itoa(100 + a)), AuthorName: chat.Ptr(name),
			Content: chat.Ptr("history"), Timestamp: ts}
		v, err := chat.Encode(&m)
		check(err)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(*m.AuthorID), Value: v})
		us := ts.UnixMicro()
		last := us - us%30_000_000
		for _, s := range []int64{last, last - 30_000_000} {
			want[time.UnixMicro(s).UTC().Format(time.RFC3339)+" "+name]++
		}
		if len(recs) == 10_000 {
			flush()
		}
	}
	flush()
	return want
}

type result struct {
	wall, batch time.Duration
	batches     int
	counts      map[string]int64
}

var (
	batchDone = regexp.MustCompile(`msg="batch done" .*\bbatch=(\d+) kind=data .*\btook=(\S+)`)
	allDone   = regexp.MustCompile(`msg="all available data processed" .*\bbatches=(\d+)`)
)

// run replays topic (in one batch, or in batches bounded by the default
// transaction timeout) and reads back its JSON lines.
func run(bin, work, brokers, topic, group string, n int, dedup, oneBatch bool) result {
	out := filepath.Join(work, group+".jsonl")
	args := []string{"analyze", "--brokers", brokers, "--topic", topic, "--group", group, "--instance-id", "replaymonth",
		"--starting-offsets", "earliest", "--available-now", "--dedup=" + strconv.FormatBool(dedup),
		"--output", "jsonl", "--jsonl-file", out, "--no-create-topic", "--replication-factor", "1", "--log-level", "debug"}
	if oneBatch {
		// One batch for the whole topic, and a transaction that has the time.
		args = append(args, "--max-records-per-batch", strconv.Itoa(n), "--transaction-timeout", "10m")
	}
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(work, group+".log")
	logf, err := os.Create(logPath)
	check(err)
	cmd.Stderr = logf
	began := time.Now()
	err = cmd.Run()
	wall := time.Since(began)
	logf.Close()
	logText, _ := os.ReadFile(logPath)
	if err != nil {
		fail("cordstream %s: %v\n%s", strings.Join(args, " "), err, tailOf(logText))
	}
	r := result{wall: wall, counts: map[string]int64{}}
	for _, line := range strings.Split(string(logText), "\n") {
		if m := batchDone.FindStringSubmatch(line); m != nil {
			d, err := time.ParseDuration(m[2])
			check(err)
			r.batch += d
		}
		if m := allDone.FindStringSubmatch(line); m != nil {
			r.batches, _ = strconv.Atoi(m[1])
		}
	}
	f, err := os.Open(out)
	check(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var row struct {
			Start string `json:"window_start"`
			Name  string `json:"author_name"`
			Count int64  `json:"message_count"`
		}
		check(json.Unmarshal(sc.Bytes(), &row))
		r.counts[row.Start+" "+row.Name] = row.Count
	}
	check(sc.Err())
	return r
}

func compare(got, want map[string]int64) string {
	var bad []string
	for k, w := range want {
		if got[k] != w {
			bad = append(bad, fmt.Sprintf("%s: %d, want %d", k, got[k], w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, k+": a row the input does not have")
		}
	}
	if len(bad) == 0 {
		return ""
	}
	slices.Sort(bad)
	return fmt.Sprintf("%d of %d rows differ, e.g. %s", len(bad), len(want), strings.Join(bad[:min(3, len(bad))], "; "))
}

func deleteTopics(ctx context.Context, adm *kadm.Client, names ...string) {
	adm.DeleteTopics(ctx, names...)
}

func tailOf(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return strings.Split(v, ",")[0]
	}
	return def
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "replaymonth: "+format+"\n", args...)
	os.Exit(1)
}
