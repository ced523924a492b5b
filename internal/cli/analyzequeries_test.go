package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

func TestAnalyzeNamedQueriesUsageErrors(t *testing.T) {
	dir := t.TempDir()
	n := 0
	file := func(body string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("q%d.yaml", n))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	two := file("queries:\n  a:\n    preset: seed\n  b:\n    preset: guild-heatmap\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--queries", two, "--preset", "seed"}, "--queries and --preset are both given"},
		{[]string{"--preset", "seed", "--window", "2m", "--state", "none"}, "--window is the one-query shorthand"},
		{[]string{"--queries", two, "--group-by", "guild_id", "--state", "none"}, "--group-by is the one-query shorthand"},
		{[]string{"--queries", two, "--output", "jsonl", "--state", "none"}, "--output is the one-query shorthand's output"},
		{[]string{"--preset", "seed", "--state", "none", "--dedup"}, "--dedup: not available with --preset"},
		{[]string{"--preset", "nope", "--state", "none"}, `--preset "nope": no such preset`},
		{[]string{"--queries", filepath.Join(dir, "missing.yaml"), "--state", "none"}, "missing.yaml"},
		{[]string{"--queries", file("queries:\n  a:\n    window: 1m\n    watermark: 1m\n    group_by: [nope]\n    aggregates: [count(*)]\n"), "--state", "none"}, `q2.yaml:5: query a: unknown group-by column "nope"`},
		{[]string{"--queries", file("queries:\n  a:\n    preset: seed\n    outputs: [\"jsonl:-\"]\n  b:\n    preset: seed\n"), "--state", "none"}, "would both write to standard output"},
		{[]string{"--queries", file("queries:\n  a:\n    preset: seed\n    outputs: [\"kafka:r1\"]\n  b:\n    preset: seed\n    outputs: [\"kafka:r1\"]\n"), "--state", "none"}, "both write to the topic r1"},
		{[]string{"--queries", file("queries:\n  a:\n    preset: seed\n    outputs: [\"kafka:discord_messages\"]\n"), "--state", "none"}, "is the input topic"},
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

// analyzeQueriesInput is the input of the named-query tests: five messages
// in one channel, two bad records, read three offsets per batch.
func analyzeQueriesInput(t *testing.T) string {
	topic := kafkatest.Topic(t, 1)
	analyzeProduce(t, topic,
		analyzeMsg(t, "alice", "2025-11-07 18:00:05.000"), // batch 0
		analyzeMsg(t, "bob", "2025-11-07 18:00:10.000"),
		[]byte(`{`),
		analyzeMsg(t, "alice", "2025-11-07 18:00:40.000"), // batch 1
		analyzeMsg(t, "alice", "2025-11-07 18:02:10.000"),
		[]byte(`{"author_name":"x"}`),
		analyzeMsg(t, "carol", "2025-11-07 18:03:00.000"), // batch 2
	)
	return topic
}

// --preset seed prints, byte for byte, what the flags' one query prints.
func TestAnalyzePresetSeedIsTheFlagsQuery(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := analyzeQueriesInput(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	common := []string{"--brokers", brokers, "--topic", topic, "--starting-offsets", "earliest", "--available-now",
		"--max-records-per-batch", "3", "--state", "none", "--log-level", "warn", "--dedup=false"}
	code, flags, stderr := runAnalyzeCLI(t, ctx, append(common, "--group", "g1-"+topic)...)
	if code != exitOK {
		t.Fatalf("flags: exit code %d; stderr:\n%s", code, stderr)
	}
	code, preset, stderr := runAnalyzeCLI(t, ctx, append(common, "--group", "g2-"+topic, "--preset", "seed")...)
	if code != exitOK {
		t.Fatalf("--preset seed: exit code %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(flags, "Batch: 3") || !strings.Contains(flags, "|{2025-11-07 18:00:00, 2025-11-07 18:01:00}|alice      |2            |") {
		t.Fatalf("the flags' query printed:\n%s", flags)
	}
	if preset != flags {
		t.Errorf("--preset seed printed:\n%s\nthe flags' query:\n%s", preset, flags)
	}
}

// Three queries on one read: each its own outputs, the console's tables
// headed by the query's name, aggregates printed as Spark prints them.
func TestAnalyzeNamedQueriesEndToEnd(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := analyzeQueriesInput(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "channels.jsonl")
	qfile := filepath.Join(dir, "queries.yaml")
	body := "queries:\n" +
		"  authors:\n    preset: seed\n" +
		"  channels:\n    preset: channel-activity\n    outputs: [\"jsonl:" + jsonl + "\"]\n" +
		"  sessions:\n    preset: member-sessions\n    watermark: 0s\n"
	if err := os.WriteFile(qfile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, stdout, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", "g-"+topic,
		"--starting-offsets", "earliest", "--available-now", "--max-records-per-batch", "3", "--state", "none",
		"--log-level", "warn", "--queries", qfile)
	if code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	for _, w := range []string{"batch 0: 1 bad record (malformed_json=1)", "batch 1: 1 bad record (missing_field=1)"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, stderr)
		}
	}
	// authors: the seed's batches 0-3, each headed by its query's name.
	if n := strings.Count(stdout, "Query: authors\n-------------------------------------------\nBatch: "); n != 4 {
		t.Errorf("%d tables of authors, want 4:\n%s", n, stdout)
	}
	if strings.Contains(stdout, "Query: channels") {
		t.Errorf("channels writes JSON lines only, yet the console shows it:\n%s", stdout)
	}
	// sessions (gap 10m, watermark 0): no session ends before the
	// watermark (18:03:00 at most), so the append mode emits nothing; the
	// watermark moved in batch 2, so it runs the no-data batch 3 too.
	if n := strings.Count(stdout, "Query: sessions\n"); n != 4 {
		t.Errorf("%d tables of sessions, want 4:\n%s", n, stdout)
	}
	if !strings.Contains(stdout, "Query: sessions\n-------------------------------------------\nBatch: 3\n-------------------------------------------\n+------+-----------+-------------+\n|window|author_name|message_count|\n") {
		t.Errorf("the sessions' last table is not Spark's:\n%s", stdout)
	}
	got, err := os.ReadFile(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"batch_id":0,"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:05:00Z","channel_id":"c1","message_count":2,"total_chars":4,"avg_chars":2.0,"min_chars":2,"max_chars":2}
{"batch_id":1,"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:05:00Z","channel_id":"c1","message_count":4,"total_chars":8,"avg_chars":2.0,"min_chars":2,"max_chars":2}
{"batch_id":2,"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:05:00Z","channel_id":"c1","message_count":5,"total_chars":10,"avg_chars":2.0,"min_chars":2,"max_chars":2}
`
	if string(got) != want {
		t.Errorf("channels' JSON lines:\n%s\nwant:\n%s", got, want)
	}
}

// queryMsg is a create record with its channel and content.
func queryMsg(t *testing.T, id, author, channel, content, ts string) []byte {
	t.Helper()
	at, err := chat.ParseTimestamp(ts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := chat.Encode(&chat.Message{Kind: chat.KindCreate, MessageID: id, ChannelID: channel, GuildID: chat.Ptr("g1"),
		AuthorID: chat.Ptr("id-" + author), AuthorName: chat.Ptr(author), Content: chat.Ptr(content), Timestamp: at})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lastBatch returns the rows of the last batch of a JSON Lines file,
// without their batch id.
func lastBatch(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	last := ""
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		id, rest, ok := strings.Cut(strings.TrimPrefix(l, `{"batch_id":`), ",")
		if !ok {
			t.Fatalf("%s: line %q", path, l)
		}
		if id != last {
			rows, last = nil, id
		}
		rows = append(rows, rest)
	}
	return rows
}

// With --state kafka the named queries' state (aggregates, distinct-count
// sketches, sessions) survives a restart: a run stopped after the first
// records and started again ends with the rows of a run that read
// everything at once.
func TestAnalyzeNamedQueriesStateSurvivesRestart(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.Topic(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	queries := func(run string) string {
		p := filepath.Join(dir, run+".yaml")
		body := "queries:\n"
		for _, q := range []string{"channel-activity", "active-members", "member-sessions"} {
			body += fmt.Sprintf("  %s:\n    preset: %s\n    mode: complete\n    outputs: [\"jsonl:%s\"]\n", q, q, filepath.Join(dir, run+"-"+q+".jsonl"))
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(group, file string) {
		t.Helper()
		code, _, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", group,
			"--starting-offsets", "earliest", "--available-now", "--max-records-per-batch", "3",
			"--log-level", "warn", "--queries", file)
		if code != exitOK {
			t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
		}
	}
	before := []([]byte){
		queryMsg(t, "1", "alice", "c1", "hello", "2025-11-07 18:00:00.000"),
		queryMsg(t, "2", "bob", "c1", "hi", "2025-11-07 18:00:30.000"),
		queryMsg(t, "3", "alice", "c2", "a longer message", "2025-11-07 18:05:00.000"),
	}
	after := []([]byte){
		queryMsg(t, "4", "alice", "c2", "merges alice's sessions", "2025-11-07 18:12:00.000"),
		queryMsg(t, "5", "bob", "c1", "a new session", "2025-11-07 18:30:00.000"),
		queryMsg(t, "6", "carol", "c1", "é", "2025-11-07 18:31:00.000"),
		queryMsg(t, "7", "dave", "c1", "late, within the session", "2025-11-07 18:02:00.000"),
	}
	dropStateTopics(t, "r-"+topic)
	dropStateTopics(t, "u-"+topic)
	analyzeProduce(t, topic, before...)
	run("r-"+topic, queries("restarted1"))
	analyzeProduce(t, topic, after...)
	run("r-"+topic, queries("restarted2"))
	run("u-"+topic, queries("whole"))
	for _, q := range []string{"channel-activity", "active-members", "member-sessions"} {
		got := lastBatch(t, filepath.Join(dir, "restarted2-"+q+".jsonl"))
		want := lastBatch(t, filepath.Join(dir, "whole-"+q+".jsonl"))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: after the restart:\n%s\nread at once:\n%s", q, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// The restored state is in the rows: the first window of c1 counts
	// alice and bob (before the restart) and dave (after).
	got := strings.Join(lastBatch(t, filepath.Join(dir, "restarted2-channel-activity.jsonl")), "\n")
	if w := `"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:05:00Z","channel_id":"c1","message_count":3,"total_chars":31,"avg_chars":10.333333333333334,"min_chars":2,"max_chars":24}`; !strings.Contains(got, w) {
		t.Errorf("channel-activity after the restart:\n%s\nwant a row %s", got, w)
	}
	got = strings.Join(lastBatch(t, filepath.Join(dir, "restarted2-member-sessions.jsonl")), "\n")
	if w := `"window_start":"2025-11-07T18:00:00Z","window_end":"2025-11-07T18:22:00Z","author_name":"alice","message_count":3}`; !strings.Contains(got, w) {
		t.Errorf("member-sessions after the restart:\n%s\nwant a row %s", got, w)
	}
}

// --http shows every named query that has fixed windows, with its
// aggregates as measures (the heatmap preset drawn as a heatmap), each
// with the values its engine computes; session windows are not shown.
func TestAnalyzeNamedQueriesDashboard(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.Topic(t, 1)
	analyzeProduce(t, topic,
		queryMsg(t, "1", "alice", "c1", "hello", "2025-11-07 18:00:00.000"),
		queryMsg(t, "2", "bob", "c1", "hi", "2025-11-07 18:00:30.000"),
		queryMsg(t, "3", "alice", "c2", "a longer message", "2025-11-07 18:05:00.000"))
	dir := t.TempDir()
	qfile := filepath.Join(dir, "q.yaml")
	body := "queries:\n  channel-activity:\n    preset: channel-activity\n  guild-heatmap:\n    preset: guild-heatmap\n  member-sessions:\n    preset: member-sessions\n"
	if err := os.WriteFile(qfile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan string, 1)
	go func() {
		code, _, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", "g-"+topic,
			"--starting-offsets", "earliest", "--trigger", "1s", "--state", "none", "--queries", qfile, "--http", addr)
		done <- fmt.Sprintf("exit %d\n%s", code, stderr)
	}()
	defer func() {
		cancel()
		if out := <-done; !strings.HasPrefix(out, "exit 0\n") {
			t.Errorf("the analyzer: %s", out)
		}
	}()
	type apiQuery struct {
		Name     string
		View     string
		Measures []struct {
			Name     string
			Additive bool
		}
		Batch *struct{ ID int64 }
	}
	var list struct{ Queries []apiQuery }
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/api/v1/queries")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
		}
		if err == nil && len(list.Queries) == 2 && list.Queries[0].Batch != nil && list.Queries[1].Batch != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard lists %+v (err %v)", list, err)
		}
	}
	got := fmt.Sprintf("%+v", list.Queries)
	for _, w := range []string{"Name:channel-activity View:leaderboard Measures:[{Name:message_count Additive:true} {Name:total_chars Additive:true} {Name:avg_chars Additive:false} {Name:min_chars Additive:false} {Name:max_chars Additive:false}]",
		"Name:guild-heatmap View:heatmap Measures:[{Name:message_count Additive:true}]"} {
		if !strings.Contains(got, w) {
			t.Errorf("the dashboard lists %s, want %s", got, w)
		}
	}
	resp, err := http.Get("http://" + addr + "/api/v1/queries/channel-activity/rows?window=2025-11-07T18:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows struct {
		Rows []struct {
			Keys   map[string]*string
			Values map[string]float64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil || len(rows.Rows) != 1 {
		t.Fatalf("rows of channel-activity: %+v (err %v)", rows, err)
	}
	if v := rows.Rows[0].Values; fmt.Sprint(v) != "map[avg_chars:3.5 max_chars:5 message_count:2 min_chars:2 total_chars:7]" {
		t.Errorf("channel-activity's row of c1 at 18:00: %v", v)
	}
}

// rowsByKey reduces JSON lines (or results-topic values) to the latest row
// of each window and key, without its batch id: what a query ends with.
func rowsByKey(t *testing.T, lines []string, keys []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("row %q: %v", l, err)
		}
		k := fmt.Sprint(m["window_start"], m["window_end"])
		for _, c := range keys {
			k += fmt.Sprintf(" %v", m[c])
		}
		_, rest, _ := strings.Cut(l, ",")
		out[k] = rest
	}
	return out
}

// readResults reads a results topic, read committed, to its end.
func readResults(t *testing.T, ctx context.Context, topic string) []string {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	rd := kafkatest.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var out []string
	for len(left) > 0 && ctx.Err() == nil {
		rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, string(r.Value))
			}
			if e, ok := left[r.Partition]; ok && r.Offset >= e-1 {
				delete(left, r.Partition)
			}
		})
	}
	return out
}

// Two instances of named queries count as one: the instance leading the
// query runs every query's engine, the other sends partial aggregates
// (counts, sums, distinct-count sketches, sessions by exact event time);
// each query ends with the rows one instance gives on the same records.
func TestAnalyzeNamedQueriesSeveralInstances(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.Topic(t, 4)
	app := "several-" + topic
	dropStateTopics(t, app)
	dir := t.TempDir()
	presets := []string{"channel-activity", "active-members", "member-sessions"}
	groupBy := map[string][]string{"channel-activity": {"channel_id"}, "active-members": {"channel_id"}, "member-sessions": {"author_name"}}
	file := func(name string, out func(q string) string) string {
		body := "queries:\n"
		for _, q := range presets {
			body += fmt.Sprintf("  %s:\n    preset: %s\n", q, q)
			if q == "member-sessions" {
				body += "    mode: complete\n"
			}
			body += fmt.Sprintf("    outputs: [%q]\n", out(q))
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	results := map[string]string{}
	for _, q := range presets {
		results[q] = kafkatest.TopicName(t) + "-" + q
		dropTopic(t, results[q])
	}
	shared := file("shared.yaml", func(q string) string { return "kafka:" + results[q] })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type exit struct {
		who    string
		code   int
		stderr string
	}
	exits := make(chan exit, 2)
	ictx, stop := context.WithCancel(ctx)
	for _, id := range []string{"a1", "a2"} {
		go func() {
			code, _, stderr := runAnalyzeCLI(t, ictx, "--brokers", brokers, "--topic", topic, "--group", app, "--instance-id", id,
				"--starting-offsets", "earliest", "--trigger", "1s", "--queries", shared, "--log-level", "debug")
			exits <- exit{id, code, stderr}
		}()
	}
	stopped := false
	var logs []string
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		for range 2 {
			x := <-exits
			if x.code != exitOK {
				t.Errorf("%s exited with %d:\n%s", x.who, x.code, x.stderr)
			}
			logs = append(logs, x.stderr)
		}
	}
	defer stopAll()
	adm := kadm.NewClient(kafkatest.Client(t))
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		gs, err := adm.DescribeGroups(ctx, app)
		if err == nil && gs[app].State == "Stable" && len(gs[app].Members) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two instances did not share the group: %v %+v", err, gs)
		}
	}
	// 40 authors in 5 channels within 15 s, keyed by author (each
	// author's messages in one partition, in order): no window or
	// session closes while they are read.
	t0 := time.Date(2026, 1, 5, 10, 0, 10, 0, time.UTC)
	var recs []*kgo.Record
	n := 0
	for i := range 40 {
		author := fmt.Sprintf("author-%02d", i)
		for j := range i%7 + 1 {
			n++
			at := t0.Add(time.Duration(i%5)*time.Second + time.Duration(j)*time.Second + time.Duration(i)*time.Millisecond)
			v, err := chat.Encode(&chat.Message{Kind: chat.KindCreate, MessageID: fmt.Sprint(5000 + n), ChannelID: fmt.Sprintf("c%d", (i+j)%5),
				AuthorID: chat.Ptr("id-" + author), AuthorName: chat.Ptr(author), Content: chat.Ptr(strings.Repeat("é", 1+(i*j)%9)), Timestamp: at})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("id-" + author), Value: v})
		}
	}
	if err := kafkatest.Client(t).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// One instance on the same records: the reference.
	ref := file("alone.yaml", func(q string) string { return "jsonl:" + filepath.Join(dir, "alone-"+q+".jsonl") })
	code, _, stderr := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", "alone-"+topic,
		"--starting-offsets", "earliest", "--available-now", "--state", "none", "--dedup=false", "--queries", ref)
	if code != exitOK {
		t.Fatalf("one instance: exit %d:\n%s", code, stderr)
	}
	for _, q := range presets {
		data, err := os.ReadFile(filepath.Join(dir, "alone-"+q+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if q == "member-sessions" {
			lines = nil
			for _, r := range lastBatch(t, filepath.Join(dir, "alone-"+q+".jsonl")) {
				lines = append(lines, `{"batch_id":0,`+r)
			}
		}
		want := rowsByKey(t, lines, groupBy[q])
		if len(want) == 0 {
			t.Fatalf("%s: one instance gave no rows", q)
		}
		var got map[string]string
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			got = rowsByKey(t, readResults(t, ctx, results[q]), groupBy[q])
			if fmt.Sprint(got) == fmt.Sprint(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: two instances give\n%v\none instance\n%v", q, got, want)
			}
		}
		t.Logf("%s: %d rows as one instance gives", q, len(want))
	}
	// The other instance did send partial aggregates.
	stopAll()
	shares := regexp.MustCompile(`msg="share of batch done".* sent=([1-9]\d*)`)
	sent := 0
	for _, l := range logs {
		for _, m := range shares.FindAllStringSubmatch(l, -1) {
			k, _ := strconv.Atoi(m[1])
			sent += k
		}
	}
	if sent == 0 || sent >= n {
		t.Errorf("the instances' shares sent %d of the %d records' partial aggregates; want some, not all", sent, n)
	}
	t.Logf("shares sent the partial aggregates of %d of %d records", sent, n)
}
