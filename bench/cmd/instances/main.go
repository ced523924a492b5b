// Command instances measures what several `cordstream analyze` instances of
// one query cost and give: 1, 2 and 3 instances (each run a query and a
// topic of its own, 4 partitions) are started on an empty topic with a
// 100 ms processing-time trigger and a batch cap; once the group has given
// every instance partitions, the messages are produced, and it measures the
// time from the first message produced to the last input offset committed.
// It prints a Markdown table: records per second, that time, the CPU time
// all the processes used meanwhile and per record (from /proc), and how
// long the leader's batches waited for the other instances' shares (from
// its debug log). Each run's results
// topic (read committed, the latest count of every window and author) must
// equal the one-instance run's, so a fast wrong answer does not pass.
//
//	go run ./bench/cmd/instances --brokers 127.0.0.1:9092
//	go run ./bench/cmd/instances --messages 1000000 --cap 50000 --instances 1,2,3
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/cordstream/cordstream/internal/analyzer"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
)

func main() {
	brokers := flag.String("brokers", envOr("CORDSTREAM_TEST_BROKERS", "127.0.0.1:9092"), "Kafka bootstrap address")
	bin := flag.String("cordstream", "", "cordstream binary (default: built from ./cmd/cordstream)")
	messages := flag.Int("messages", 400_000, "messages in the topic")
	parts := flag.Int("partitions", 4, "partitions of the topic")
	limit := flag.Int("cap", 20_000, "--max-records-per-batch")
	list := flag.String("instances", "1,2,3", "numbers of instances to run, comma-separated")
	authors := flag.Int("authors", 200, "authors (record keys)")
	keepLogs := flag.Bool("keep-logs", false, "keep the instances' logs (their directory is printed)")
	flag.Parse()

	ctx := context.Background()
	work, err := os.MkdirTemp("", "instances-")
	check(err)
	if *keepLogs {
		fmt.Fprintf(os.Stderr, "logs in %s\n", work)
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

	// Messages 1 ms apart in event time, keyed by author as the bot keys
	// them; produced once every instance has its partitions.
	base := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC)
	var values []*kgo.Record
	for i := range *messages {
		a := i * 7919 % *authors
		m := chat.Message{Kind: chat.KindCreate, MessageID: strconv.Itoa(10_000_000 + i), ChannelID: "c1",
			AuthorID: chat.Ptr(strconv.Itoa(1000 + a)), AuthorName: chat.Ptr(fmt.Sprintf("author-%03d", a)), Content: chat.Ptr("hello"),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		v, err := chat.Encode(&m)
		check(err)
		values = append(values, &kgo.Record{Key: []byte(*m.AuthorID), Value: v})
	}

	fmt.Printf("| instances | records/s | first produced to last committed | of which producing | CPU (all processes) | CPU per record | batches | leader's wait for shares: mean | max |\n")
	fmt.Printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	var ref map[string]int64
	waitRe := regexp.MustCompile(`msg="batch done".* kind=data .*waited_for_shares=(\S+)`)
	for _, f := range strings.Split(*list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		check(err)
		topic := fmt.Sprintf("bench-instances-%d", time.Now().UnixNano())
		_, err = adm.CreateTopic(ctx, int32(*parts), 1, nil, topic)
		check(err)
		app := topic + "-app"
		names := analyzer.StateTopicNames(app)
		drop = append(drop, topic, app+"-results", names[analyzer.InputState], names[analyzer.WindowState], names[analyzer.Repartition], names[analyzer.Batches])
		var cmds []*exec.Cmd
		var logs []string
		for i := range n {
			logPath := filepath.Join(work, fmt.Sprintf("%s-%d.log", app, i))
			lf, err := os.Create(logPath)
			check(err)
			cmd := exec.Command(*bin, "analyze", "--brokers", *brokers, "--topic", topic, "--group", app,
				"--instance-id", fmt.Sprintf("i%d", i), "--starting-offsets", "earliest", "--trigger", "100ms",
				"--max-records-per-batch", strconv.Itoa(*limit), "--output", "kafka", "--results-topic", app+"-results",
				"--replication-factor", "1", "--log-level", "debug")
			cmd.Stdout, cmd.Stderr = lf, lf
			check(cmd.Start())
			cmds = append(cmds, cmd)
			logs = append(logs, logPath)
			if i == 0 {
				// The first creates the internal topics.
				for {
					if d, err := adm.ListEndOffsets(ctx, names[analyzer.Batches]); err == nil && d.Error() == nil {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		// Every instance owns partitions.
		for deadline := time.Now().Add(2 * time.Minute); ; {
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "the group did not give every instance partitions within 2 minutes")
				os.Exit(1)
			}
			gs, err := adm.DescribeGroups(ctx, app)
			ok := err == nil
			if ok {
				g := gs[app]
				ok = g.State == "Stable" && len(g.Members) == n
				for _, m := range g.Members {
					if a, isC := m.Assigned.AsConsumer(); !isC || len(a.Topics) == 0 || len(a.Topics[0].Partitions) == 0 {
						ok = false
					}
				}
			}
			if ok {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second)
		cpu0 := cpuOf(cmds)
		began := time.Now()
		for i := 0; i < len(values); i += 10_000 {
			batch := values[i:min(i+10_000, len(values))]
			for _, r := range batch {
				r.Topic = topic
			}
			check(cl.ProduceSync(ctx, batch...).FirstErr())
		}
		produced := time.Since(began)
		for {
			resp, err := adm.FetchOffsets(ctx, app)
			var done int64
			if err == nil {
				for _, o := range resp[topic] {
					done += o.At
				}
			}
			if done >= int64(*messages) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		wall := time.Since(began)
		cpu := cpuOf(cmds) - cpu0
		for _, cmd := range cmds {
			cmd.Process.Signal(os.Interrupt)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				fmt.Fprintf(os.Stderr, "instance %d of %d failed: %v (log %s)\n", i, n, err, logs[i])
				os.Exit(1)
			}
		}
		var waits []time.Duration
		for _, l := range logs {
			b, err := os.ReadFile(l)
			check(err)
			for _, m := range waitRe.FindAllStringSubmatch(string(b), -1) {
				d, err := time.ParseDuration(m[1])
				check(err)
				waits = append(waits, d)
			}
		}
		var sum, most time.Duration
		for _, w := range waits {
			sum += w
			most = max(most, w)
		}
		mean := time.Duration(0)
		if len(waits) > 0 {
			mean = sum / time.Duration(len(waits))
		}
		got := finalCounts(ctx, strings.Split(*brokers, ","), adm, app+"-results")
		if ref == nil {
			ref = got
		} else if !mapsEqual(ref, got) {
			fmt.Fprintf(os.Stderr, "%d instances: the results differ from one instance's\n", n)
			os.Exit(1)
		}
		fmt.Printf("| %d | %.0f | %.2f s | %.2f s | %.2f s | %.1f µs | %d | %v | %v |\n", n, float64(*messages)/wall.Seconds(), wall.Seconds(),
			produced.Seconds(), cpu.Seconds(), float64(cpu.Microseconds())/float64(*messages), len(waits), mean.Round(time.Millisecond), most.Round(time.Millisecond))
	}
}

// cpuOf sums the CPU time (user and system) the processes have used so far,
// from /proc.
func cpuOf(cmds []*exec.Cmd) time.Duration {
	var ticks int64
	for _, c := range cmds {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
		check(err)
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// finalCounts reads the results topic, read committed, to its end: the
// latest count of every window and author.
func finalCounts(ctx context.Context, brokers []string, adm *kadm.Client, topic string) map[string]int64 {
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	check(err)
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	check(err)
	defer rd.Close()
	out := map[string]int64{}
	for len(left) > 0 {
		fs := rd.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				var row struct {
					Start string `json:"window_start"`
					Name  string `json:"author_name"`
					Count int64  `json:"message_count"`
				}
				check(json.Unmarshal(r.Value, &row))
				out[row.Start+" "+row.Name] = row.Count
			}
			if e, ok := left[r.Partition]; ok && r.Offset >= e-1 {
				delete(left, r.Partition)
			}
		})
	}
	return out
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if b[k] != a[k] {
			return false
		}
	}
	return true
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
