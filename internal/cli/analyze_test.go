package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/analyzer"
	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// runAnalyzeCLI runs "cordstream analyze args..." with no environment
// variables and returns the exit code, stdout and stderr.
func runAnalyzeCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	code := run(ctx, append([]string{"analyze"}, args...), e)
	return code, stdout.String(), stderr.String()
}

func TestAnalyzeUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--slide", "2m"}, "slide 2m0s is longer than the window 1m0s"},
		{[]string{"--group-by", "author_name,content"}, `unknown column "content"`},
		{[]string{"--group-by", ","}, "no column given"},
		{[]string{"--mode", "upsert"}, `unknown output mode "upsert"`},
		{[]string{"--trigger", "1s", "--available-now"}, "--trigger and --available-now are both given"},
		{[]string{"--trigger", "0s"}, "trigger 0s: must be positive"},
		{[]string{"--window", "-1m"}, "window -1m0s: must be positive"},
		{[]string{"--watermark", "-1s"}, "watermark -1s: must not be negative"},
		{[]string{"--output", "jsonl,console"}, "would both write to stdout"},
		{[]string{"--output", "csv"}, `--output "csv": unknown output`},
		{[]string{"--output", "jsonl", "--output", "jsonl", "--jsonl-file", "x"}, "--output jsonl given twice"},
		{[]string{"--jsonl-file", "x"}, "--jsonl-file is only used by the jsonl output"},
		{[]string{"--output", "kafka"}, "--output kafka needs --results-topic"},
		{[]string{"--results-topic", "r"}, "--results-topic is only used by the kafka output"},
		{[]string{"--output", "kafka", "--results-topic", "discord_messages"}, "is the input topic"},
		{[]string{"--dead-letter-topic", "bad topic"}, "contains ' '"},
		{[]string{"--output", "kafka", "--results-topic", "r", "--dead-letter-topic", "r"}, "are the same topic"},
		{[]string{"--time-zone", "Mars/Base"}, `--time-zone "Mars/Base": unknown time zone`},
		{[]string{"--rows", "0"}, "--rows 0: must be at least 1"},
		{[]string{"--starting-offsets", "newest"}, `starting-offsets "newest": use latest or earliest`},
		{[]string{"--max-records-per-batch", "-5"}, "must not be negative"},
		{[]string{"--topic", ""}, "empty topic name"},
		{[]string{"--group", ""}, "group: empty"},
		{[]string{"--partitions", "0"}, "--partitions 0"},
		{[]string{"--replication-factor", "0"}, "--replication-factor 0"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--state", "disk"}, `--state "disk": unknown`},
		{[]string{"--application-id", "a/b"}, `--application-id "a/b"`},
		{[]string{"--application-id", "x", "--topic", "x-window-state"}, "is a topic this command reads or writes"},
		{[]string{"--instance-id", "host one"}, `--instance-id "host one": invalid`},
		{[]string{"--session-timeout", "1s"}, "--session-timeout 1s: out of range"},
		{[]string{"--transaction-timeout", "500ms"}, "--transaction-timeout 500ms: out of range"},
		{[]string{"--transaction-timeout", "16m"}, "--transaction-timeout 16m0s: out of range"},
		{[]string{"--max-event-time-ahead", "-1s"}, "max event time ahead -1s: must not be negative"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runAnalyzeCLI(t, context.Background(), tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, stderr)
			}
		})
	}
}

func TestAnalyzeHelpShowsTheSeedQuery(t *testing.T) {
	code, stdout, _ := runAnalyzeCLI(t, context.Background(), "--help")
	if code != exitOK {
		t.Fatalf("exit code %d, want 0", code)
	}
	for _, want := range []string{"cordstream analyze --brokers localhost:9092 --topic discord_messages", "--available-now", "--max-records-per-batch", "--dead-letter-topic"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help does not show %q", want)
		}
	}
}

// analyzeMsg is a wire-format create record.
func analyzeMsg(t *testing.T, author, ts string) []byte {
	t.Helper()
	at, err := chat.ParseTimestamp(ts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := chat.Encode(&chat.Message{Kind: chat.KindCreate, MessageID: "m" + ts, ChannelID: "c1",
		AuthorID: chat.Ptr("id-" + author), AuthorName: chat.Ptr(author), Content: chat.Ptr("hi"), Timestamp: at})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func analyzeProduce(t *testing.T, topic string, values ...[]byte) {
	t.Helper()
	cl := kafkatest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint("key", i)), Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// dropTopic deletes a topic the command created, when the test ends.
func dropTopic(t *testing.T, name string) {
	t.Cleanup(func() {
		cl := kafkatest.Client(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kafka.DeleteTopic(ctx, cl, name); err != nil {
			t.Logf("delete topic %s: %v", name, err)
		}
	})
}

// The seed's query replayed with fixed batch boundaries through the real
// broker, as the Spark comparison runs it: per-batch rows, bad records in the
// dead-letter topic with their reason, and the group's offsets committed to
// the end of the topic (lag 0).
func TestAnalyzeAvailableNowEndToEnd(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.Topic(t, 1)
	dead := kafkatest.TopicName(t)
	dropTopic(t, dead)
	analyzeProduce(t, topic,
		analyzeMsg(t, "alice", "2025-11-07 18:00:05.000"), // batch 0
		analyzeMsg(t, "bob", "2025-11-07 18:00:10.000"),
		[]byte(`{`),
		analyzeMsg(t, "alice", "2025-11-07 18:00:40.000"), // batch 1
		analyzeMsg(t, "alice", "2025-11-07 18:02:10.000"),
		[]byte(`{"author_name":"x"}`),
		analyzeMsg(t, "carol", "2025-11-07 18:03:00.000"), // batch 2, then a no-data batch 3
	)
	group := "g-" + topic
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, stdout, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", group,
		"--starting-offsets", "earliest", "--available-now", "--max-records-per-batch", "3",
		"--output", "jsonl", "--dead-letter-topic", dead, "--log-level", "warn")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}

	type line struct {
		Batch  int64   `json:"batch_id"`
		Start  string  `json:"window_start"`
		End    string  `json:"window_end"`
		Author *string `json:"author_name"`
		Count  int64   `json:"message_count"`
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("stdout line %q: %v", l, err)
		}
		got = append(got, fmt.Sprintf("%d %s %s %s %d", x.Batch, x.Start[11:19], x.End[11:19], *x.Author, x.Count))
	}
	want := []string{
		"0 17:59:30 18:00:30 alice 1", "0 17:59:30 18:00:30 bob 1", "0 18:00:00 18:01:00 alice 1", "0 18:00:00 18:01:00 bob 1",
		"1 18:00:00 18:01:00 alice 2", "1 18:00:30 18:01:30 alice 1", "1 18:01:30 18:02:30 alice 1", "1 18:02:00 18:03:00 alice 1",
		"2 18:02:30 18:03:30 carol 1", "2 18:03:00 18:04:00 carol 1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range []string{"batch 0: 1 bad record (malformed_json=1)", "batch 1: 1 bad record (missing_field=1)"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, stderr)
		}
	}

	cl := kafkatest.Client(t)
	adm := kadm.NewClient(cl)
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatalf("lag of %s: %v", group, err)
	}
	l := lags[group].Lag[topic][0]
	if l.Commit.At != 7 || l.End.Offset != 7 || l.Lag != 0 {
		t.Errorf("group %s: committed %d, end %d, lag %d; want 7, 7, 0", group, l.Commit.At, l.End.Offset, l.Lag)
	}

	dl := kafkatest.Client(t, kgo.ConsumeTopics(dead), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var reasons []string
	for len(reasons) < 2 && ctx.Err() == nil {
		dl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			reasons = append(reasons, fmt.Sprintf("%s@%s:%s", h["reason"], h["source_offset"], r.Key))
		})
	}
	if w := "malformed_json@2:key2 missing_field@5:key5"; strings.Join(reasons, " ") != w {
		t.Errorf("dead letters %v, want %s", reasons, w)
	}
}

// The kafka output: one record per row, keyed by window and key, in a
// compacted topic the command creates.
func TestAnalyzeResultsTopic(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.Topic(t, 1)
	results := kafkatest.TopicName(t)
	dropTopic(t, results)
	analyzeProduce(t, topic, analyzeMsg(t, "alice", "2025-11-07 18:00:05.000"), analyzeMsg(t, "alice", "2025-11-07 18:00:06.000"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, _, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", "g-"+topic,
		"--starting-offsets", "earliest", "--available-now", "--output", "kafka", "--results-topic", results, "--log-level", "warn")
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	cl := kafkatest.Client(t, kgo.ConsumeTopics(results), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)+" => "+string(r.Value)) })
	}
	want := []string{
		`{"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"alice"} => ` +
			`{"batch_id":0,"window_start":"2025-11-07T17:59:30Z","window_end":"2025-11-07T18:00:30Z","author_name":"alice","message_count":2}`,
		`{"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:01:00Z","author_name":"alice"} => ` +
			`{"batch_id":0,"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:01:00Z","author_name":"alice","message_count":2}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	info, err := kafka.DescribeTopic(ctx, kafkatest.Client(t), results)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range info.Configs {
		if c.Key == "cleanup.policy" && c.Value != "compact" {
			t.Errorf("results topic cleanup.policy = %q, want compact", c.Value)
		}
	}
}

// --no-create-topic: a missing input topic is an error that says how to
// create it, not a hang.
func TestAnalyzeNoCreateTopic(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, _, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", kafkatest.TopicName(t), "--no-create-topic", "--available-now")
	if code != exitFailure || !strings.Contains(stderr, "does not exist") || !strings.Contains(stderr, "hint:") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 saying the topic does not exist, with a hint", code, stderr)
	}
}

// analyzeJSONL runs an available-now replay with the given extra flags and
// returns its rows as "window_start author count" lines.
func analyzeJSONL(t *testing.T, ctx context.Context, brokers, topic, group string, extra ...string) []string {
	t.Helper()
	args := append([]string{"--brokers", brokers, "--topic", topic, "--group", group, "--starting-offsets", "earliest",
		"--available-now", "--output", "jsonl", "--log-level", "warn", "--instance-id", "t1"}, extra...)
	code, stdout, stderr := runAnalyzeCLI(t, ctx, args...)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	var rows []string
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if l == "" {
			continue
		}
		var x struct {
			Start  string `json:"window_start"`
			Author string `json:"author_name"`
			Count  int64  `json:"message_count"`
		}
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("stdout line %q: %v", l, err)
		}
		rows = append(rows, fmt.Sprintf("%s %s %d", x.Start[11:19], x.Author, x.Count))
	}
	return rows
}

func dropStateTopics(t *testing.T, app string) {
	for _, n := range analyzer.StateTopicNames(app) {
		dropTopic(t, n)
	}
}

// With --state kafka (the default) a restart continues the counts; a
// duplicate of a message counted before the restart is not counted again.
// With --state none the counts start over.
func TestAnalyzeStateSurvivesRestart(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, state := range []string{"kafka", "none"} {
		t.Run(state, func(t *testing.T) {
			topic := kafkatest.Topic(t, 1)
			group := "g-" + topic
			dropStateTopics(t, group)
			m1 := analyzeMsg(t, "alice", "2025-11-07 18:00:05.000")
			analyzeProduce(t, topic, m1, analyzeMsg(t, "alice", "2025-11-07 18:00:06.000"))
			first := analyzeJSONL(t, ctx, brokers, topic, group, "--state", state)
			if want := "18:00:00 alice 2"; !slices.Contains(first, want) {
				t.Fatalf("first run: %v, want %q", first, want)
			}
			analyzeProduce(t, topic, analyzeMsg(t, "alice", "2025-11-07 18:00:07.000"), m1) // m1 again: a duplicate
			second := analyzeJSONL(t, ctx, brokers, topic, group, "--state", state)
			want := "18:00:00 alice 3" // 2 before the restart, 1 new, the duplicate dropped
			if state == "none" {
				want = "18:00:00 alice 2" // state lost: the new message and the duplicate (nothing remembers m1)
			}
			if !slices.Contains(second, want) {
				t.Errorf("second run: %v, want %q", second, want)
			}
			_, err := kafka.DescribeTopic(ctx, kafkatest.Client(t), group+"-window-state")
			if created := err == nil; created != (state == "kafka") {
				t.Errorf("internal topic %s-window-state exists: %v, want %v", group, created, state == "kafka")
			}
		})
	}
}

// --reset deletes the state and the offsets (refused while an instance
// runs); the next run starts over.
func TestAnalyzeReset(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := kafkatest.Topic(t, 1)
	group := "g-" + topic
	dropStateTopics(t, group)
	analyzeProduce(t, topic, analyzeMsg(t, "alice", "2025-11-07 18:00:05.000"))

	// While an instance runs, --reset refuses.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		code, _, stderr := runAnalyzeCLI(t, runCtx, "--brokers", brokers, "--topic", topic, "--group", group,
			"--instance-id", "t1", "--session-timeout", "6s", "--starting-offsets", "earliest",
			"--trigger", "200ms", "--output", "jsonl", "--log-level", "warn")
		if code != exitOK {
			t.Logf("running instance: %s", stderr)
		}
		done <- code
	}()
	adm := kadm.NewClient(kafkatest.Client(t))
	members := func() int {
		gs, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return -1
		}
		return len(gs[group].Members)
	}
	for members() < 1 {
		if ctx.Err() != nil {
			t.Fatal("the instance did not join its group")
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, _, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", group, "--reset")
	if code != exitFailure || !strings.Contains(stderr, "still has members") || !strings.Contains(stderr, "hint:") {
		t.Errorf("--reset while running: exit %d, stderr:\n%s", code, stderr)
	}
	stop()
	if c := <-done; c != exitOK {
		t.Fatalf("the running instance exited %d", c)
	}
	// A stopped instance stays a (static) member until its session times out.
	for members() != 0 {
		if ctx.Err() != nil {
			t.Fatal("the stopped instance did not leave its group")
		}
		time.Sleep(200 * time.Millisecond)
	}

	code, stdout, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", group, "--reset")
	if code != exitOK {
		t.Fatalf("--reset: exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"deleted the consumer group " + group, "deleted the internal topic " + group + "-window-state"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--reset output does not say %q:\n%s", want, stdout)
		}
	}
	// Starting over: the message is counted again, from 1 (with the offsets
	// kept nothing would be read).
	if rows := analyzeJSONL(t, ctx, brokers, topic, group); !slices.Contains(rows, "18:00:00 alice 1") {
		t.Errorf("after --reset: %v, want alice counted 1 again", rows)
	}
}
