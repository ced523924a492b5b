// Command queries measures what N queries cost on one read of the topic
// (one `cordstream analyze --queries FILE` of N named queries) against N
// analyzer processes (one `cordstream analyze --preset NAME` each, all at
// once), side by side in one run, on the same topic: the records are
// produced first, then each run replays them (--available-now,
// --starting-offsets earliest, a batch cap, --state kafka) and exits. It
// prints a Markdown table: the wall time from the start to the last
// process's exit, the CPU time the processes used (their rusage) and per
// record and query. Every query's JSON lines from the N processes must
// equal its lines from the one process, so a fast wrong answer does not
// pass.
//
//	go run ./bench/cmd/queries --brokers 127.0.0.1:9092
//	go run ./bench/cmd/queries --messages 400000 --queries 1,3,6
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/analyzer"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/query"
)

func main() {
	brokers := flag.String("brokers", envOr("CORDSTREAM_TEST_BROKERS", "127.0.0.1:9092"), "Kafka bootstrap address")
	bin := flag.String("cordstream", "", "cordstream binary (default: built from ./cmd/cordstream)")
	messages := flag.Int("messages", 400_000, "messages in the topic")
	parts := flag.Int("partitions", 1, "partitions of the topic")
	limit := flag.Int("cap", 50_000, "--max-records-per-batch")
	list := flag.String("queries", "1,3,6", "numbers of queries (the first N presets), comma-separated")
	keep := flag.Bool("keep", false, "keep the outputs and logs (their directory is printed)")
	flag.Parse()

	ctx := context.Background()
	work, err := os.MkdirTemp("", "queries-")
	check(err)
	if *keep {
		fmt.Fprintf(os.Stderr, "outputs and logs in %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	if *bin == "" {
		*bin = filepath.Join(work, "cordstream")
		out, err := exec.Command("go", "build", "-o", *bin, "./cmd/cordstream").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ProducerBatchMaxBytes(1<<20))
	check(err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var drop []string
	defer func() { adm.DeleteTopics(context.Background(), drop...) }()

	// Messages 50 ms apart in event time, a pause of 15 minutes after every
	// 20,000 (so that members' sessions end), a few hours in all (every
	// preset's windows close); 200 authors in 20 channels of 3 guilds,
	// contents of 1 to 80 characters.
	topic := fmt.Sprintf("bench-queries-%d", time.Now().UnixNano())
	_, err = adm.CreateTopic(ctx, int32(*parts), 1, nil, topic)
	check(err)
	drop = append(drop, topic)
	base := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range *messages {
		a := i * 7919 % 200
		m := chat.Message{Kind: chat.KindCreate, MessageID: strconv.Itoa(10_000_000 + i), ChannelID: fmt.Sprintf("c%02d", i*31%20),
			GuildID: chat.Ptr(fmt.Sprintf("g%d", i*13%3)), AuthorID: chat.Ptr(strconv.Itoa(1000 + a)),
			AuthorName: chat.Ptr(fmt.Sprintf("author-%03d", a)), Content: chat.Ptr(strings.Repeat("x", 1+i*17%80)),
			Timestamp: base.Add(time.Duration(i)*50*time.Millisecond + time.Duration(i/20_000)*15*time.Minute)}
		v, err := chat.Encode(&m)
		check(err)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(*m.AuthorID), Value: v})
	}
	for i := 0; i < len(recs); i += 10_000 {
		check(cl.ProduceSync(ctx, recs[i:min(i+10_000, len(recs))]...).FirstErr())
	}

	presets := query.PresetNames()
	fmt.Printf("| queries | run | processes | wall time | CPU (all processes) | CPU per record | CPU per record and query |\n")
	fmt.Printf("| --- | --- | --- | --- | --- | --- | --- |\n")
	run := 0
	for _, f := range strings.Split(*list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		check(err)
		if n < 1 || n > len(presets) {
			fmt.Fprintf(os.Stderr, "--queries: %d: from 1 to %d presets\n", n, len(presets))
			os.Exit(1)
		}
		names := presets[:n]
		// Each run its own application id (state topics), group and output
		// files.
		start := func(label string, qs []string) *exec.Cmd {
			run++
			app := fmt.Sprintf("%s-r%d", topic, run)
			names := analyzer.StateTopicNames(app)
			drop = append(drop, names[analyzer.InputState], names[analyzer.WindowState], names[analyzer.Repartition], names[analyzer.Batches])
			var body strings.Builder
			body.WriteString("queries:\n")
			for _, q := range qs {
				fmt.Fprintf(&body, "  %s:\n    preset: %s\n    outputs: [%q]\n", q, q, "jsonl:"+filepath.Join(work, label+"-"+q+".jsonl"))
			}
			qfile := filepath.Join(work, fmt.Sprintf("%s-%s.yaml", label, strings.Join(qs, "+")))
			check(os.WriteFile(qfile, []byte(body.String()), 0o644))
			cmd := exec.Command(*bin, "analyze", "--brokers", *brokers, "--topic", topic, "--group", app,
				"--starting-offsets", "earliest", "--available-now", "--max-records-per-batch", strconv.Itoa(*limit),
				"--dedup=false", "--replication-factor", "1", "--log-level", "warn", "--queries", qfile)
			lf, err := os.Create(filepath.Join(work, fmt.Sprintf("%s-%d.log", label, run)))
			check(err)
			cmd.Stdout, cmd.Stderr = lf, lf
			check(cmd.Start())
			return cmd
		}
		wait := func(cmds []*exec.Cmd) time.Duration {
			var cpu time.Duration
			for _, c := range cmds {
				if err := c.Wait(); err != nil {
					fmt.Fprintf(os.Stderr, "%v failed: %v (logs in %s; run with --keep)\n", c.Args, err, work)
					os.Exit(1)
				}
				cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
			}
			return cpu
		}
		report := func(how string, procs int, wall, cpu time.Duration) {
			perRec := float64(cpu.Nanoseconds()) / 1e3 / float64(*messages)
			fmt.Printf("| %d | %s | %d | %.2f s | %.2f s | %.2f µs | %.2f µs |\n", n, how, procs, wall.Seconds(), cpu.Seconds(), perRec, perRec/float64(n))
		}

		one := fmt.Sprintf("one%d", n)
		began := time.Now()
		cpu := wait([]*exec.Cmd{start(one, names)})
		report("one read (`--queries`)", 1, time.Since(began), cpu)

		each := fmt.Sprintf("each%d", n)
		began = time.Now()
		var cmds []*exec.Cmd
		for _, q := range names {
			cmds = append(cmds, start(each, []string{q}))
		}
		cpu = wait(cmds)
		report("one process per query", n, time.Since(began), cpu)

		for _, q := range names {
			a, err := os.ReadFile(filepath.Join(work, one+"-"+q+".jsonl"))
			check(err)
			b, err := os.ReadFile(filepath.Join(work, each+"-"+q+".jsonl"))
			check(err)
			if !bytes.Equal(a, b) || len(a) == 0 {
				fmt.Fprintf(os.Stderr, "%s: the rows of one read (%d bytes) and of its own process (%d bytes) differ\n", q, len(a), len(b))
				os.Exit(1)
			}
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
