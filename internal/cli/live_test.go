package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/dashboard/dashboardtest"
	"github.com/cordstream/cordstream/internal/kafka/kafkatest"
)

// liveMsg is one message the test produces: who and when.
type liveMsg struct {
	author string
	at     time.Time
}

// liveProduce writes msgs to topic, keyed by author id as the bot keys them,
// each with a message_id of its own.
func liveProduce(t *testing.T, topic string, first int, msgs []liveMsg) {
	t.Helper()
	var recs []*kgo.Record
	for i, m := range msgs {
		v, err := chat.Encode(&chat.Message{Kind: chat.KindCreate, MessageID: fmt.Sprint(1000 + first + i), ChannelID: "c1",
			AuthorID: chat.Ptr("id-" + m.author), AuthorName: chat.Ptr(m.author), Content: chat.Ptr("hi"), Timestamp: m.at})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("id-" + m.author), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkatest.Client(t).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// liveCount is the brute-force count per author of the messages in the
// window [start, start+size).
func liveCount(msgs []liveMsg, start time.Time, size time.Duration) map[string]float64 {
	n := map[string]float64{}
	for _, m := range msgs {
		if !m.at.Before(start) && m.at.Before(start.Add(size)) {
			n[m.author]++
		}
	}
	return n
}

// consoleRow matches a row of the console's table: window, author, count.
var consoleRow = regexp.MustCompile(`^\|\{(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d), [^}]*\}\|(.*?)\s*\|(\d+)\s*\|$`)

// consoleCounts reads the console's tables up to batch last and returns the
// latest count printed for each author in the window starting at start (UTC):
// in update mode a batch prints the rows it changed, so the latest printed is
// the current count.
func consoleCounts(t *testing.T, out string, start time.Time, last int64) map[string]float64 {
	t.Helper()
	want := start.UTC().Format("2006-01-02 15:04:05")
	n := map[string]float64{}
	batch := int64(-1)
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if id, ok := strings.CutPrefix(line, "Batch: "); ok {
			b, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				t.Fatalf("console: %q", line)
			}
			batch = b
			continue
		}
		m := consoleRow.FindStringSubmatch(line)
		if m == nil || batch > last || m[1] != want {
			continue
		}
		c, _ := strconv.ParseFloat(m[3], 64)
		n[m[2]] = c
	}
	return n
}

// batchLine is the console's line naming a batch.
var batchLine = regexp.MustCompile(`(?m)^Batch: (\d+)$`)

// The dashboard of the real analyzer on the real broker, in a real browser:
// the page shows, for the batch it names, the counts the API gives for that
// batch, the console printed up to that batch, and a brute-force count of the
// messages gives; it follows new batches in place; after a restart of the
// analyzer (state restored from Kafka) it shows the same counts and carries
// on.
func TestDashboardOfTheAnalyzerInBrowser(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.Topic(t, 2)
	app := "live-" + topic
	dropStateTopics(t, app)
	addr := freeAddr(t)
	base := "http://" + addr

	// Ten minutes of traffic from 30 authors, then a burst of each at
	// 10:09:40: one batch reads it all; the current window is the one
	// holding the burst.
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	names := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy",
		"rupert", "sybil", "trent", "victor", "walter", "xena", "yusuf", "zoe", "amir", "bea", "chen", "dana", "eko", "fatima", "goran", "hana"}
	var msgs []liveMsg
	for i, n := range names {
		for j := range 12 {
			msgs = append(msgs, liveMsg{n, t0.Add(time.Duration((i*37+j*53)%540) * time.Second)})
		}
		for range i*7%13 + 1 {
			msgs = append(msgs, liveMsg{n, t0.Add(9*time.Minute + 40*time.Second)})
		}
	}
	liveProduce(t, topic, 0, msgs)

	args := []string{"--brokers", brokers, "--topic", topic, "--group", app, "--starting-offsets", "earliest",
		"--trigger", "1s", "--http", addr, "--rows", "1000"}
	type result struct {
		code           int
		stdout, stderr string
	}
	start := func() (context.CancelFunc, <-chan result) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() {
			code, out, errOut := runAnalyzeCLI(t, ctx, args...)
			done <- result{code, out, errOut}
		}()
		return cancel, done
	}
	stop := func(cancel context.CancelFunc, done <-chan result) result {
		t.Helper()
		cancel()
		select {
		case r := <-done:
			if r.code != 0 {
				t.Fatalf("analyze exited with %d:\n%s", r.code, r.stderr)
			}
			return r
		case <-time.After(60 * time.Second):
			t.Fatal("analyze did not stop within 60s")
		}
		return result{}
	}
	cancel, done := start()
	defer func() { cancel() }()

	br := dashboardtest.Open(t, 4*time.Minute)
	defer br.Close()
	const q = "messages_per_author"
	type topAnswer struct {
		Batch  struct{ ID int64 } `json:"batch"`
		Window struct {
			Start  time.Time          `json:"window_start"`
			Totals map[string]float64 `json:"totals"`
		} `json:"window"`
		Rows []struct {
			KeyID  string             `json:"key_id"`
			Keys   map[string]*string `json:"keys"`
			Values map[string]float64 `json:"values"`
		} `json:"rows"`
	}
	api := func() topAnswer {
		t.Helper()
		resp, err := http.Get(base + "/api/v1/queries/" + q + "/top?n=20")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a topAnswer
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&a) != nil {
			t.Fatalf("top: %s", resp.Status)
		}
		return a
	}
	// settle waits until the page shows the leaderboard the messages give
	// for the current window, then checks it against the API's answer for
	// the same batch; it returns the batch and what the page shows.
	settle := func(what string, msgs []liveMsg) (int64, dashboardtest.Page) {
		t.Helper()
		latest := msgs[len(msgs)-1].at
		deadline := time.Now().Add(90 * time.Second)
		for {
			p := br.Read()
			var id int64 = -1
			if p.Batch != "" {
				id, _ = strconv.ParseInt(p.Batch, 10, 64)
			}
			ws, err := time.Parse(time.RFC3339, p.Window)
			ok := err == nil && id >= 0 && !latest.Before(ws) && latest.Before(ws.Add(time.Minute)) && len(p.Rows) == 20
			if ok {
				want := liveCount(msgs, ws, time.Minute)
				var total float64
				for _, c := range want {
					total += c
				}
				ok = p.Total == total
				for _, r := range p.Rows {
					ok = ok && r.Value == want[r.Label]
				}
				for i := 1; ok && i < len(p.Rows); i++ {
					ok = p.Rows[i-1].Value >= p.Rows[i].Value
				}
				if ok {
					a := api()
					if a.Batch.ID != id {
						continue // a batch committed in between: read both again
					}
					if !a.Window.Start.Equal(ws) || a.Window.Totals["message_count"] != p.Total || len(a.Rows) != len(p.Rows) {
						t.Fatalf("%s: page at batch %d shows window %s total %v, the API %s %v", what, id, ws, p.Total, a.Window.Start, a.Window.Totals)
					}
					for i, r := range a.Rows {
						if g := p.Rows[i]; g.ID != r.KeyID || g.Value != r.Values["message_count"] || r.Keys["author_name"] == nil || g.Label != *r.Keys["author_name"] {
							t.Fatalf("%s: rank %d: page %+v, API %s %v", what, i+1, g, r.KeyID, r.Values)
						}
					}
					return id, p
				}
			}
			if time.Now().After(deadline) {
				br.CheckConsole()
				t.Fatalf("%s: the page never showed the counts of the messages; it shows batch %q window %q total %v rows %+v", what, p.Batch, p.Window, p.Total, p.Rows)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/api/v1/queries"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dashboard does not answer")
		}
	}
	br.Run("open the page", dashboardtest.Navigate(base+"/", 1280, 1000))
	b1, p1 := settle("first batch", msgs)

	// More messages: the page follows without reloading.
	before := p1.Loads
	wave2 := slices.Repeat([]liveMsg{{names[len(names)-1], t0.Add(9*time.Minute + 45*time.Second)}}, 20)
	liveProduce(t, topic, len(msgs), wave2)
	msgs = append(msgs, wave2...)
	b2, p2 := settle("second wave", msgs)
	if b2 <= b1 || p2.Loads != before || p2.Events == p1.Events {
		t.Fatalf("after the second wave the page is at batch %d (was %d), loaded %d times (was %d), %d events (was %d): want a later batch pushed to the same page", b2, b1, p2.Loads, before, p2.Events, p1.Events)
	}
	br.Shot("dashboard.png") // docs/img/dashboard.png: CORDSTREAM_SCREENSHOT_DIR=$PWD/docs/img refreshes it

	// The console printed, up to that batch, the counts the page shows.
	r1 := stop(cancel, done)
	ws, _ := time.Parse(time.RFC3339, p2.Window)
	cons := consoleCounts(t, r1.stdout, ws, b2)
	for _, r := range p2.Rows {
		if cons[r.Label] != r.Value {
			t.Fatalf("batch %d: the page shows %s %v, the console printed %v", b2, r.Label, r.Value, cons[r.Label])
		}
	}

	// A restart: the page reconnects, reloads, and shows the counts the
	// analyzer restored from Kafka, then the next batch.
	cancel, done = start()
	br.Poll("the page did not reload after the restart", fmt.Sprintf(`Number(document.body.dataset.loads) > %d && document.getElementById("conn").dataset.state === "live"`, p2.Loads), 90*time.Second)
	b3, p3 := settle("after the restart", msgs)
	// The restored state is the last batch committed before the stop (a
	// batch without data may have followed the second wave's: its watermark
	// closes old windows, not the current one's rows).
	printed := func(out string) (ids []int64) {
		for _, m := range batchLine.FindAllStringSubmatch(out, -1) {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			ids = append(ids, id)
		}
		return ids
	}
	lastPrinted := slices.Max(printed(r1.stdout))
	if b3 < lastPrinted || fmt.Sprint(p3.Rows) != fmt.Sprint(p2.Rows) {
		t.Fatalf("after the restart the page shows batch %d %+v; before it batch %d %+v, and the last batch printed was %d", b3, p3.Rows, b2, p2.Rows, lastPrinted)
	}
	wave3 := slices.Repeat([]liveMsg{{names[0], t0.Add(9*time.Minute + 50*time.Second)}}, 5)
	liveProduce(t, topic, len(msgs), wave3)
	msgs = append(msgs, wave3...)
	if b4, _ := settle("after the restart, new messages", msgs); b4 <= b3 {
		t.Fatalf("new messages after the restart show as batch %d, not after %d", b4, b3)
	}
	br.Shot("analyzer-dashboard-restarted.png")
	// The batches go on from where they were: the second run's first batch
	// follows the first run's last.
	if r2 := stop(cancel, done); len(printed(r2.stdout)) == 0 || printed(r2.stdout)[0] != lastPrinted+1 {
		t.Fatalf("the first run printed batches %v, the second %v", printed(r1.stdout), printed(r2.stdout))
	}
	br.CheckConsole()
}

// topAPI reads the top n rows of the current window from a dashboard at
// base: the batch, the window's total and each author's count.
func topAPI(t *testing.T, base string, n int) (batch int64, total float64, counts map[string]float64, ok bool) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/queries/messages_per_author/top?n=%d", base, n))
	if err != nil {
		return 0, 0, nil, false
	}
	defer resp.Body.Close()
	var a struct {
		Batch  *struct{ ID int64 } `json:"batch"`
		Window *struct {
			Totals map[string]float64 `json:"totals"`
		} `json:"window"`
		Rows []struct {
			Keys   map[string]*string `json:"keys"`
			Values map[string]float64 `json:"values"`
		} `json:"rows"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&a) != nil || a.Batch == nil || a.Window == nil {
		return 0, 0, nil, false
	}
	counts = map[string]float64{}
	for _, r := range a.Rows {
		if k := r.Keys["author_name"]; k != nil {
			counts[*k] = r.Values["message_count"]
		}
	}
	return a.Batch.ID, a.Window.Totals["message_count"], counts, true
}

// Two analyzer instances share a query: the dashboard of the one leading it
// shows every key, the other's none, and `cordstream dashboard` shows the
// whole query from the results topic, equal to a brute-force count of the
// messages.
func TestDashboardOfTheWholeQuery(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.Topic(t, 4)
	results := kafkatest.TopicName(t)
	dropTopic(t, results)
	app := "whole-" + topic
	dropStateTopics(t, app)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type exit struct {
		who            string
		code           int
		stdout, stderr string
	}
	exits := make(chan exit, 3)
	var bases []string
	for _, id := range []string{"a1", "a2"} {
		addr := freeAddr(t)
		bases = append(bases, "http://"+addr)
		go func() {
			code, out, errOut := runAnalyzeCLI(t, ctx, "--brokers", brokers, "--topic", topic, "--group", app, "--instance-id", id,
				"--starting-offsets", "earliest", "--trigger", "1s", "--output", "kafka", "--results-topic", results, "--http", addr)
			exits <- exit{id, code, out, errOut}
		}()
	}
	defer func() {
		cancel()
		for range 3 {
			if x := <-exits; x.code != 0 {
				t.Errorf("%s exited with %d:\n%s", x.who, x.code, x.stderr)
			}
		}
	}()

	// Messages only once both instances share the input: each then runs its
	// share of every batch, and the leader counts them all.
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
	// Forty authors within 15 s: no window can close while they are read,
	// in whatever order the instances read them.
	t0 := time.Date(2026, 1, 5, 10, 0, 10, 0, time.UTC)
	var msgs []liveMsg
	for i := range 40 {
		for j := range i%9 + 1 {
			msgs = append(msgs, liveMsg{fmt.Sprintf("author-%02d", i), t0.Add(time.Duration(i*3+j*5)%15*time.Second + time.Duration(i)*time.Millisecond)})
		}
	}
	liveProduce(t, topic, 0, msgs)

	whole := freeAddr(t)
	go func() {
		var stdout, stderr strings.Builder
		e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		code := run(ctx, []string{"dashboard", "--brokers", brokers, "--results-topic", results, "--http", whole}, e)
		exits <- exit{"dashboard", code, stdout.String(), stderr.String()}
	}()

	// The current window holds [10:00:00, 10:01:00): every message.
	want := liveCount(msgs, time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC), time.Minute)
	var wantTotal float64
	for _, c := range want {
		wantTotal += c
	}
	var got map[string]float64
	var total float64
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var ok bool
		_, total, got, ok = topAPI(t, "http://"+whole, 100)
		if ok && fmt.Sprint(got) == fmt.Sprint(want) && total == wantTotal {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the whole query's dashboard shows total %v %v, the messages give %v %v", total, got, wantTotal, want)
		}
	}
	// Each instance shows what it counts: the one leading the query runs
	// its only window engine (every key), the other none; together, the
	// whole.
	var shares float64
	seen := map[string]bool{}
	leaders := 0
	for i, base := range bases {
		_, tot, counts, _ := topAPI(t, base, 100) // the other has no batch to show
		if len(counts) != 0 && len(counts) != len(want) {
			t.Fatalf("instance %d's dashboard shows %d of %d keys: want all of them (the leader) or none", i+1, len(counts), len(want))
		}
		if len(counts) == len(want) {
			leaders++
		}
		for k, c := range counts {
			if seen[k] || want[k] != c {
				t.Fatalf("instance %d shows %s %v (seen elsewhere: %v), the messages give %v", i+1, k, c, seen[k], want[k])
			}
			seen[k] = true
		}
		shares += tot
		t.Logf("instance %d counts %d of %d authors", i+1, len(counts), len(want))
	}
	if shares != wantTotal || leaders != 1 {
		t.Fatalf("the instances' totals add up to %v, the whole is %v; %d instances show every key, want 1", shares, wantTotal, leaders)
	}
}

// The demo opens on its dashboard: the first thing it says is the page's
// address, and the page, for the batch it names, shows the counts the
// console printed up to that batch.
func TestDemoOpensOnTheDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline for several seconds")
	}
	br := dashboardtest.Open(t, 2*time.Minute)
	defer br.Close()
	var out, errb lockedBuffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--duration", "90s", "--trigger", "1s", "--rate", "100", "--seed", "11",
			"--rows", "1000", "--http", "127.0.0.1:0"}, e)
	}()
	var url string
	for deadline := time.Now().Add(30 * time.Second); url == ""; time.Sleep(20 * time.Millisecond) {
		first, _, _ := strings.Cut(errb.String(), "\n")
		if m := regexp.MustCompile(`^cordstream demo: dashboard at (http://127\.0\.0\.1:\d+/) `).FindStringSubmatch(first); m != nil {
			url = m[1]
		} else if first != "" && strings.Contains(errb.String(), "\n") {
			t.Fatalf("the demo's first line is %q, not the dashboard's address", first)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not say where its dashboard is:\n%s", errb.String())
		}
	}
	br.Run("open the page", dashboardtest.Navigate(url, 1280, 1000))
	// A batch with a full leaderboard: 20 authors in the current window.
	br.Poll("the page did not show a leaderboard", `document.body.dataset.ready === "1" && document.querySelectorAll("#board tbody tr").length === 20`, 60*time.Second)
	p := br.Read()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("demo exit %d:\n%s", code, errb.String())
	}
	id, err := strconv.ParseInt(p.Batch, 10, 64)
	ws, werr := time.Parse(time.RFC3339, p.Window)
	if err != nil || werr != nil {
		t.Fatalf("the page names batch %q window %q", p.Batch, p.Window)
	}
	cons := consoleCounts(t, out.String(), ws, id)
	var total float64
	for _, c := range cons {
		total += c
	}
	if total != p.Total {
		t.Fatalf("batch %d window %s: the page's total is %v, the console's rows add up to %v", id, ws, p.Total, total)
	}
	for _, r := range p.Rows {
		if cons[r.Label] != r.Value {
			t.Fatalf("batch %d window %s: the page shows %s %v, the console printed %v", id, ws, r.Label, r.Value, cons[r.Label])
		}
	}
	br.CheckConsole()
}
