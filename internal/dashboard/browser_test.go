package dashboard

import (
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cordstream/cordstream/internal/dashboard/dashboardtest"

	"github.com/cordstream/cordstream/internal/window"
)

// The page in a real browser: it shows what the API says for the batch it
// names, and follows the batches as they are published, updating its
// elements in place.
//
// It saves screenshots (desktop and phone) in the test's artifact directory
// (kept with go test -artifacts -outputdir DIR) and, when
// CORDSTREAM_SCREENSHOT_DIR is set, in that directory too.
func TestPageInBrowser(t *testing.T) {
	q := seedQuery(window.Update)
	hq := heatmapQuery()
	d := newDash(t, Options{}, q, hq)
	srv := serve(t, d)
	addr := srv.Listener.Addr().String()
	f := newFeeder(t, d, q)
	names := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy",
		"rupert", "sybil", "trent", "victor", "walter", "xena", "yusuf", "zoe", "amir", "bea", "chen", "dana", "eko", "fatima", "goran", "hana"}
	// Batch 0: 30 authors, 1-13 messages each, at 10:00:10 (windows
	// starting 09:59:30 and 10:00:00; the current one is 09:59:30).
	for i, n := range names {
		for range i*7%13 + 1 {
			f.add(us(10*time.Second), n)
		}
	}
	f.add(us(10*time.Second), "<null>")
	f.run()

	br := dashboardtest.Open(t, 90*time.Second)
	defer br.Close()
	bctx := br.Ctx
	run := br.Run
	waitBatch := func(id int64) { t.Helper(); br.WaitBatch(id, 20*time.Second) }
	read := br.Read
	digits := dashboardtest.Digits
	// check compares the page with the API's answers for the same batch.
	check := func(id int64) dashboardtest.Page {
		t.Helper()
		p := read()
		var top topA
		get(t, srv, "/api/v1/queries/messages_per_author/top?n=20", 200, &top)
		if top.Batch.ID != id || p.Batch != fmt.Sprint(id) {
			t.Fatalf("page at batch %s, API at batch %d, want %d", p.Batch, top.Batch.ID, id)
		}
		if p.Window != top.Window.Start.Format(time.RFC3339) || p.Total != top.Window.Totals["message_count"] || digits(p.Keys) != fmt.Sprint(top.Window.Rows) {
			t.Fatalf("page leaderboard of window %s, total %v, %s keys; API: %s, %v, %d", p.Window, p.Total, p.Keys, top.Window.Start, top.Window.Totals, top.Window.Rows)
		}
		if len(p.Rows) != len(top.Rows) || len(p.Rows) != 20 {
			t.Fatalf("page shows %d rows, API %d", len(p.Rows), len(top.Rows))
		}
		for i, r := range top.Rows {
			label := "null"
			if k := r.Keys["author_name"]; k != nil {
				label = *k
			}
			if g := p.Rows[i]; g.ID != r.KeyID || g.Value != r.Values["message_count"] || g.Rank != r.Rank || g.Label != label {
				t.Fatalf("rank %d: page %+v, API %s %s %v", i+1, g, r.KeyID, label, r.Values)
			}
		}
		var tot struct {
			Windows []windowA `json:"windows"`
		}
		get(t, srv, "/api/v1/queries/messages_per_author/totals?limit=12", 200, &tot)
		if len(p.Totals) != len(tot.Windows) {
			t.Fatalf("page lists %d window totals, API %d", len(p.Totals), len(tot.Windows))
		}
		for i, w := range tot.Windows {
			g := p.Totals[len(p.Totals)-1-i] // newest first on the page
			if g.Start != w.Start.Format(time.RFC3339) || g.Value != w.Totals["message_count"] {
				t.Fatalf("window total %d: page %+v, API %s %v", i, g, w.Start, w.Totals)
			}
		}
		var st struct {
			Lag        struct{ Total int64 } `json:"lag"`
			SinceStart struct {
				Counted     int64 `json:"counted"`
				LateRows    int64 `json:"late_rows"`
				LateRecords int64 `json:"late_records"`
			} `json:"since_start"`
		}
		get(t, srv, "/api/v1/queries/messages_per_author/status", 200, &st)
		if digits(p.Lag) != fmt.Sprint(st.Lag.Total) || digits(p.Counted) != fmt.Sprint(st.SinceStart.Counted) ||
			digits(p.Late) != fmt.Sprint(st.SinceStart.LateRows+st.SinceStart.LateRecords) {
			t.Fatalf("page tiles lag %q counted %q late %q; API %+v", p.Lag, p.Counted, p.Late, st)
		}
		return p
	}

	run("open the page", chromedp.Steps(chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(srv.URL+"/")))
	waitBatch(0)
	p0 := check(0)

	// Batch 1 changes counts in the same window: the page updates the rows
	// it has (the table and a row element stay the same objects).
	run("mark elements", chromedp.Steps(chromedp.Evaluate[chromedp.Void](`window.__board = document.getElementById("board");
		window.__row = document.querySelector('#board tbody tr[data-id="`+p0.Rows[19].ID+`"]'); window.__events = Number(document.body.dataset.events || 0)`)))
	for range 20 {
		f.add(us(20*time.Second), names[len(names)-1]) // the last moves up
	}
	f.run()
	waitBatch(1)
	p1 := check(1)
	kept, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__board === document.getElementById("board") && document.contains(window.__row) && Number(document.body.dataset.events) === window.__events + 1`))
	if err != nil || !kept {
		t.Fatalf("the page was redrawn instead of updated in place (%v)", err)
	}
	if p1.Rows[0].ID == p0.Rows[0].ID {
		t.Fatal("batch 1 did not change the leaderboard's first row: the test does not see an update")
	}

	// Batch 2 moves time on: a new current window (10:01:00) and a
	// watermark (10:00:50); batch 3 has a late event (its windows ended
	// before the watermark batch 2 ran with) and closes the first window.
	for i, n := range names[:25] {
		for range i%5 + 1 {
			f.add(us(110*time.Second), n)
		}
	}
	f.run()
	f.add(us(-2*time.Minute), "late")
	f.add(us(115*time.Second), names[3])
	f.run()
	waitBatch(3)
	p3 := check(3)
	if p3.Window == p0.Window {
		t.Fatal("the current window did not move: the test does not see it")
	}

	// The drill-down: select a row; the key's chart appears with as many
	// windows as the API's series.
	run("select a row", chromedp.Evaluate[chromedp.Void](`document.querySelector("#board tbody tr").click()`))
	sub, err := chromedp.Run(bctx, chromedp.Poll[string](`!document.getElementById("drill-card").hidden && document.querySelector("#drill-chart canvas") && document.getElementById("drill-sub").textContent`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("the drill-down did not open: %v", err)
	}
	var series struct {
		Points []struct{ Row bool } `json:"points"`
	}
	get(t, srv, "/api/v1/queries/messages_per_author/series?key_id="+p3.Rows[0].ID, 200, &series)
	if want := fmt.Sprintf("(%d windows,", len(series.Points)); !strings.Contains(sub, want) {
		t.Fatalf("drill-down says %q, want %q", sub, want)
	}

	shot := br.Shot
	shot("dashboard.png")

	// A restart: the dashboard goes away with its process and comes back on
	// the same address, fed with the state the analyzer restored (a reset
	// batch). The page reconnects by itself, is told to reload, and shows
	// the same counts as before.
	loads, err := chromedp.Run(bctx, chromedp.Evaluate[int](`Number(document.body.dataset.loads)`))
	if err != nil {
		t.Fatal(err)
	}
	d.Close() // ends the event streams, so that the server can close
	srv.Close()
	d = newDash(t, Options{}, q, hq)
	reset := ResetFromEngine(f.eng.Progress(), f.eng.Rows())
	reset.Query, reset.CommittedAt = q.Name, f.at
	if err := d.Publish(&reset); err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewUnstartedServer(d.Handler())
	srv.Listener.Close()
	if srv.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](fmt.Sprintf(`Number(document.body.dataset.loads) > %d && document.getElementById("conn").dataset.state === "live"`, loads),
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the page did not reload after the restart: %v", err)
	}
	waitBatch(3)
	if p := check(3); fmt.Sprint(p.Rows) != fmt.Sprint(p3.Rows) || p.Total != p3.Total || p.Window != p3.Window {
		t.Fatalf("after the restart the leaderboard is %+v, before it %+v", p, p3)
	}
	shot("dashboard-restarted.png")

	// On a phone: no sideways scrolling of the page (wide tables scroll in
	// their own box).
	run("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	fits, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.documentElement.scrollWidth <= window.innerWidth`, chromedp.WithPollingTimeout(5*time.Second)))
	if err != nil || !fits {
		w, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.scrollWidth + " > " + window.innerWidth`))
		t.Errorf("the page is wider than a phone's screen: %s", w)
	}
	shot("dashboard-phone.png")

	// The heatmap of a query whose view asks for it: every cell holds the
	// totals of the windows starting in that day of the week and hour (UTC).
	want := publishHeatmap(t, d, hq)
	run("open the heatmap query", chromedp.Steps(chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(srv.URL+"/?heatmap#query="+hq.Name)))
	cells, err := chromedp.Run(bctx, chromedp.Poll[[]float64](`document.body.dataset.ready === "1" && document.querySelectorAll("#heatmap .cell").length === 168 &&
		!document.getElementById("heatmap-card").hidden && [...document.querySelectorAll("#heatmap .cell")].map((c) => Number(c.dataset.value))`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("the heatmap was not drawn: %v", err)
	}
	if fmt.Sprint(cells) != fmt.Sprint(want[:]) {
		t.Fatalf("heatmap cells %v, want %v", cells, want)
	}
	shot("dashboard-heatmap.png")

	br.CheckConsole()
}

// heatmapQuery is the day-by-hour preset: messages per guild per hour.
func heatmapQuery() Query {
	return Query{
		Name: "messages_per_guild_hourly", Title: "Messages per guild per hour", Input: "discord_messages",
		Window: time.Hour, Slide: time.Hour, Watermark: 10 * time.Minute,
		GroupBy: []string{"guild_id"}, Measures: []Measure{CountMeasure}, View: ViewHeatmap,
	}
}

// publishHeatmap publishes two weeks of hourly rows for two guilds and
// returns the heatmap they make: sums by day of week (Monday first) and hour,
// UTC.
func publishHeatmap(t *testing.T, d *Dashboard, q Query) (cells [7 * 24]float64) {
	var rows []Row
	for h := range 14 * 24 {
		start := t0.Add(time.Duration(h) * time.Hour)
		for g, guild := range []string{"111", "222"} {
			n := float64((h*7+g*3)%11) * float64(1+start.Hour()/6)
			if n == 0 {
				continue
			}
			rows = append(rows, Row{Start: start.UnixMicro(), End: start.Add(time.Hour).UnixMicro(), Keys: []window.Value{{S: guild, Valid: true}}, Values: []float64{n}})
			cells[(int(start.Weekday())+6)%7*24+start.Hour()] += n
		}
	}
	if err := d.Publish(&Batch{Query: q.Name, ID: 0, CommittedAt: t0, Changed: rows}); err != nil {
		t.Fatal(err)
	}
	return cells
}
