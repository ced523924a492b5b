package dashboard

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// Answer shapes as a client reads them.
type (
	batchA struct {
		ID          int64     `json:"id"`
		CommittedAt time.Time `json:"committed_at"`
	}
	rowA struct {
		Rank   int                `json:"rank"`
		Start  time.Time          `json:"window_start"`
		End    time.Time          `json:"window_end"`
		Keys   map[string]*string `json:"keys"`
		KeyID  string             `json:"key_id"`
		Values map[string]float64 `json:"values"`
		Closed bool               `json:"closed"`
	}
	windowA struct {
		Start  time.Time          `json:"window_start"`
		End    time.Time          `json:"window_end"`
		Closed bool               `json:"closed"`
		Held   bool               `json:"held"`
		Rows   int                `json:"rows"`
		Totals map[string]float64 `json:"totals"`
	}
	rowsA struct {
		Batch      *batchA `json:"batch"`
		Rows       []rowA  `json:"rows"`
		NextCursor string  `json:"next_cursor"`
	}
	topA struct {
		Batch  *batchA   `json:"batch"`
		Window *windowA  `json:"window"`
		Rows   []rowA    `json:"rows"`
		Totals []windowA `json:"windows"`
	}
	errorA struct {
		Error struct {
			Code    string `json:"code"`
			Param   string `json:"parameter"`
			Message string `json:"message"`
			Hint    string `json:"hint"`
		} `json:"error"`
	}
)

func get(t testing.TB, srv *httptest.Server, path string, wantStatus int, into any) http.Header {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.Header
}

// seeded returns a dashboard of the seed's query fed by the engine with
// random traffic over several windows, some closed, and its server.
func seeded(t testing.TB) (*Dashboard, *feeder, *httptest.Server) {
	q := seedQuery(window.Update)
	d := newDash(t, Options{}, q)
	f := newFeeder(t, d, q)
	rng := rand.New(rand.NewPCG(7, 8))
	now := time.Duration(0)
	for range 12 {
		randomTraffic(f, rng, now, 150, 30)
		now += 20 * time.Second
		f.run()
	}
	srv := serve(t, d)
	return d, f, srv
}

// allRows lists every held row of snap, in the API's order.
func allRows(snap *Snapshot) []rowA {
	var out []rowA
	for _, w := range snap.wins {
		for i, k := range w.keys {
			out = append(out, rowA{Start: usTime(w.start), KeyID: k.id(), Values: map[string]float64{"message_count": w.vals[i]}, Closed: w.closed})
		}
	}
	return out
}

func sameRows(t *testing.T, what string, got, want []rowA) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Start.Equal(w.Start) || g.KeyID != w.KeyID || g.Values["message_count"] != w.Values["message_count"] || g.Closed != w.Closed {
			t.Fatalf("%s: row %d is %v %s %v closed %v, want %v %s %v closed %v", what, i, g.Start, g.KeyID, g.Values, g.Closed, w.Start, w.KeyID, w.Values, w.Closed)
		}
	}
}

func TestAPIRowsPaging(t *testing.T) {
	d, _, srv := seeded(t)
	snap := d.Snapshot("")
	want := allRows(snap)
	if len(want) < 100 {
		t.Fatalf("only %d rows: the data is too small to page", len(want))
	}
	var got []rowA
	cursor := ""
	pages := 0
	for {
		var page rowsA
		get(t, srv, "/api/v1/queries/messages_per_author/rows?limit=7&cursor="+cursor, 200, &page)
		pages++
		if len(page.Rows) > 7 {
			t.Fatalf("page of %d rows, limit 7", len(page.Rows))
		}
		got = append(got, page.Rows...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	sameRows(t, "pages of 7", got, want)
	if pages != (len(want)+6)/7 {
		t.Errorf("%d pages for %d rows", pages, len(want))
	}
	var one rowsA
	get(t, srv, "/api/v1/queries/messages_per_author/rows?limit=1000", 200, &one)
	sameRows(t, "one page", one.Rows, want)
	if one.NextCursor != "" {
		t.Error("a next cursor after the last row")
	}
	// Every row names its keys by column and its window.
	r := one.Rows[0]
	if r.Keys["author_name"] == nil && r.KeyID != "AA" {
		t.Errorf("row keys %v, key_id %s", r.Keys, r.KeyID)
	}
	if r.End.Sub(r.Start) != time.Minute {
		t.Errorf("row window %v-%v", r.Start, r.End)
	}
	// The default page is 100 rows.
	get(t, srv, "/api/v1/queries/messages_per_author/rows", 200, &one)
	if len(one.Rows) != 100 || one.NextCursor == "" {
		t.Errorf("default page: %d rows, next %q", len(one.Rows), one.NextCursor)
	}
}

func TestAPIRowsFilters(t *testing.T) {
	d, _, srv := seeded(t)
	snap := d.Snapshot("")
	all := allRows(snap)
	filter := func(keep func(rowA, *win) bool) []rowA {
		var out []rowA
		for _, r := range all {
			if keep(r, snap.window(r.Start.UnixMicro())) {
				out = append(out, r)
			}
		}
		return out
	}
	mid := snap.wins[len(snap.wins)/2]
	alice := keyID(window.Value{S: "author03", Valid: true})
	null := keyID(window.Value{})
	for _, c := range []struct {
		query string
		keep  func(rowA, *win) bool
	}{
		{"key=author03", func(r rowA, _ *win) bool { return r.KeyID == alice }},
		{"key.author_name=author03", func(r rowA, _ *win) bool { return r.KeyID == alice }},
		{"key_id=" + alice, func(r rowA, _ *win) bool { return r.KeyID == alice }},
		{"key_id=" + null, func(r rowA, _ *win) bool { return r.KeyID == null }},
		{"key=nobody", func(rowA, *win) bool { return false }},
		{"window=" + usTime(mid.start).Format(time.RFC3339), func(r rowA, _ *win) bool { return r.Start.UnixMicro() == mid.start }},
		{"from=" + usTime(mid.start).Format(time.RFC3339), func(r rowA, _ *win) bool { return r.Start.UnixMicro() >= mid.start }},
		{"to=" + usTime(mid.start).Format(time.RFC3339), func(r rowA, _ *win) bool { return r.Start.UnixMicro() < mid.start }},
		{"from=" + usTime(mid.start-30e6).Format(time.RFC3339) + "&to=" + usTime(mid.start+30e6).Format(time.RFC3339) + "&key=author03",
			func(r rowA, _ *win) bool {
				return r.KeyID == alice && r.Start.UnixMicro() >= mid.start-30e6 && r.Start.UnixMicro() < mid.start+30e6
			}},
		{"state=open", func(_ rowA, w *win) bool { return !w.closed }},
		{"state=closed", func(_ rowA, w *win) bool { return w.closed }},
		{"state=all", func(rowA, *win) bool { return true }},
		{"window=current", func(r rowA, _ *win) bool { return r.Start.UnixMicro() == snap.current().start }},
		{"window=newest", func(r rowA, _ *win) bool { return r.Start.UnixMicro() == snap.wins[len(snap.wins)-1].start }},
		{"window=2020-01-01T00:00:00Z", func(rowA, *win) bool { return false }},
	} {
		t.Run(c.query, func(t *testing.T) {
			want := filter(c.keep)
			if len(want) == 0 && !strings.Contains(c.query, "nobody") && !strings.Contains(c.query, "2020") {
				t.Fatal("the filter selects nothing: the data does not test it")
			}
			// Paged, so that filters and cursors are tested together.
			var got []rowA
			cursor := ""
			for {
				var page rowsA
				get(t, srv, "/api/v1/queries/messages_per_author/rows?limit=5&"+c.query+"&cursor="+cursor, 200, &page)
				got = append(got, page.Rows...)
				if page.NextCursor == "" {
					break
				}
				cursor = page.NextCursor
			}
			sameRows(t, c.query, got, want)
		})
	}
	if closed := filter(func(_ rowA, w *win) bool { return w.closed }); len(closed) == 0 {
		t.Fatal("no closed rows: the data does not test state=closed")
	}
}

func keyID(vals ...window.Value) string {
	s := newStore(&Query{}, limits{})
	return s.intern(vals).id()
}

// A query with two key columns, two measures (one not additive) and NULL
// keys.
func channelQuery() Query {
	return Query{
		Name: "channels", Window: 5 * time.Minute, Slide: 5 * time.Minute,
		GroupBy:  []string{"channel_id", "guild_id"},
		Measures: []Measure{CountMeasure, {Name: "avg_length", Aggregate: "avg(length(content))"}},
	}
}

func TestAPIMultiColumnKeys(t *testing.T) {
	q := channelQuery()
	d := newDash(t, Options{}, q)
	srv := serve(t, d)
	v := func(s string) window.Value { return window.Value{S: s, Valid: s != ""} }
	row := func(start time.Duration, ch, g string, n, avg float64) Row {
		return Row{Start: us(start), End: us(start + 5*time.Minute), Keys: []window.Value{v(ch), v(g)}, Values: []float64{n, avg}}
	}
	err := d.Publish(&Batch{ID: 0, Changed: []Row{
		row(0, "c1", "g1", 5, 10), row(0, "c2", "g1", 9, 20), row(0, "c3", "", 2, 7), row(0, "c1", "g2", 9, 3),
		row(5*time.Minute, "c1", "g1", 1, 4),
	}})
	if err != nil {
		t.Fatal(err)
	}
	var rows rowsA
	get(t, srv, "/api/v1/queries/channels/rows?key.guild_id=g1", 200, &rows)
	if len(rows.Rows) != 3 {
		t.Fatalf("guild g1: %d rows, want 3", len(rows.Rows))
	}
	get(t, srv, "/api/v1/queries/channels/rows?key.channel_id=c1&key.guild_id=g1", 200, &rows)
	if len(rows.Rows) != 2 || rows.Rows[0].Values["avg_length"] != 10 || *rows.Rows[0].Keys["guild_id"] != "g1" {
		t.Fatalf("c1/g1: %+v", rows.Rows)
	}
	get(t, srv, "/api/v1/queries/channels/rows?key.channel_id=c3", 200, &rows)
	if len(rows.Rows) != 1 || rows.Rows[0].Keys["guild_id"] != nil {
		t.Fatalf("c3: %+v, want one row with a null guild", rows.Rows)
	}
	// Top by each measure; ties (9, 9) in key order.
	var top topA
	get(t, srv, "/api/v1/queries/channels/top?window=2026-01-05T10:00:00Z&n=3", 200, &top)
	if got := fmt.Sprint(labels(top.Rows)); got != "[c1/g2 c2/g1 c1/g1]" {
		t.Errorf("top by message_count: %s", got)
	}
	if top.Window.Totals["message_count"] != 25 || top.Window.Totals["avg_length"] != 0 || len(top.Window.Totals) != 1 {
		t.Errorf("window totals %v: want message_count 25 and no total of avg_length", top.Window.Totals)
	}
	get(t, srv, "/api/v1/queries/channels/top?window=2026-01-05T10:00:00Z&measure=avg_length", 200, &top)
	if got := fmt.Sprint(labels(top.Rows)); got != "[c2/g1 c1/g1 c3/null c1/g2]" {
		t.Errorf("top by avg_length: %s", got)
	}
	// The series of a key: 0 where it has no row for a count, null for an
	// average.
	var series struct {
		Points []struct {
			Row    bool                `json:"row"`
			Values map[string]*float64 `json:"values"`
		} `json:"points"`
	}
	get(t, srv, "/api/v1/queries/channels/series?key.channel_id=c2&key.guild_id=g1", 200, &series)
	if len(series.Points) != 2 || !series.Points[0].Row || series.Points[1].Row ||
		*series.Points[1].Values["message_count"] != 0 || series.Points[1].Values["avg_length"] != nil {
		t.Errorf("series of c2/g1: %+v", series.Points)
	}
}

func labels(rows []rowA) []string {
	var out []string
	for _, r := range rows {
		g := "null"
		if r.Keys["guild_id"] != nil {
			g = *r.Keys["guild_id"]
		}
		out = append(out, *r.Keys["channel_id"]+"/"+g)
	}
	return out
}

func TestAPITop(t *testing.T) {
	d, _, srv := seeded(t)
	snap := d.Snapshot("")
	for _, w := range []*win{snap.current(), snap.wins[0], snap.wins[len(snap.wins)-1]} {
		// Brute force: every row, by count descending then key.
		type kv struct {
			id   string
			keys []window.Value
			v    float64
		}
		var all []kv
		for i, k := range w.keys {
			all = append(all, kv{k.id(), k.vals, w.vals[i]})
		}
		slices.SortFunc(all, func(a, b kv) int {
			if c := cmp.Compare(b.v, a.v); c != 0 {
				return c
			}
			return compareKeys(a.keys, b.keys)
		})
		for _, n := range []int{1, 5, 100} {
			var top topA
			get(t, srv, fmt.Sprintf("/api/v1/queries/messages_per_author/top?n=%d&window=%s", n, usTime(w.start).Format(time.RFC3339)), 200, &top)
			want := all[:min(n, len(all))]
			if len(top.Rows) != len(want) {
				t.Fatalf("top %d of %d rows: got %d", n, len(all), len(top.Rows))
			}
			for i, r := range top.Rows {
				if r.KeyID != want[i].id || r.Values["message_count"] != want[i].v || r.Rank != i+1 {
					t.Fatalf("top %d, rank %d: %s=%v (rank %d), want %s=%v", n, i+1, r.KeyID, r.Values, r.Rank, want[i].id, want[i].v)
				}
			}
			if top.Window.Totals["message_count"] != w.sums[0] || top.Window.Rows != len(w.keys) {
				t.Fatalf("window totals %v rows %d, want %v %d", top.Window.Totals, top.Window.Rows, w.sums[0], len(w.keys))
			}
		}
	}
	// The default is the current window and 10 rows.
	var top topA
	get(t, srv, "/api/v1/queries/messages_per_author/top", 200, &top)
	if top.Window.Start.UnixMicro() != snap.current().start || len(top.Rows) != 10 {
		t.Fatalf("default top: window %v, %d rows; current is %v", top.Window.Start, len(top.Rows), usTime(snap.current().start))
	}
}

// The current window: for sliding windows, the window that contains the
// newest window's first slide and started first.
func TestCurrentWindow(t *testing.T) {
	for _, c := range []struct {
		size, slide time.Duration
		want        time.Duration // start of the current window, the newest at 10m
	}{
		{time.Minute, time.Minute, 10 * time.Minute},
		{time.Minute, 30 * time.Second, 9*time.Minute + 30*time.Second},
		{10 * time.Minute, 2 * time.Minute, 2 * time.Minute},
	} {
		q := seedQuery(window.Update)
		q.Window, q.Slide, q.Watermark = c.size, c.slide, time.Hour
		d := newDash(t, Options{}, q)
		f := newFeeder(t, d, q)
		f.add(us(10*time.Minute), "a")
		f.run()
		if got := d.Snapshot("").current().start; got != us(c.want) {
			t.Errorf("window %v slide %v: current starts %v, want %v", c.size, c.slide, usTime(got), usTime(us(c.want)))
		}
	}
}

func TestAPITotalsAndSeries(t *testing.T) {
	d, f, srv := seeded(t)
	snap := d.Snapshot("")
	var tot struct {
		Batch    *batchA   `json:"batch"`
		Measures []string  `json:"measures"`
		Windows  []windowA `json:"windows"`
	}
	get(t, srv, "/api/v1/queries/messages_per_author/totals", 200, &tot)
	if len(tot.Windows) != len(snap.wins) || tot.Batch.ID != f.eng.NextBatchID()-1 || fmt.Sprint(tot.Measures) != "[message_count]" {
		t.Fatalf("%d windows of batch %d, measures %v", len(tot.Windows), tot.Batch.ID, tot.Measures)
	}
	for i, w := range snap.wins {
		var sum float64
		for _, v := range w.vals {
			sum += v
		}
		got := tot.Windows[i]
		if got.Start.UnixMicro() != w.start || got.Totals["message_count"] != sum || got.Rows != len(w.keys) || got.Closed != w.closed || !got.Held {
			t.Fatalf("window %d: %+v, want total %v of %d rows", i, got, sum, len(w.keys))
		}
	}
	get(t, srv, "/api/v1/queries/messages_per_author/totals?limit=3", 200, &tot)
	if len(tot.Windows) != 3 || tot.Windows[2].Start.UnixMicro() != snap.wins[len(snap.wins)-1].start {
		t.Fatalf("limit 3: %d windows, the last %v", len(tot.Windows), tot.Windows[len(tot.Windows)-1].Start)
	}

	var series struct {
		KeyID  string `json:"key_id"`
		Points []struct {
			Start  time.Time          `json:"window_start"`
			Row    bool               `json:"row"`
			Values map[string]float64 `json:"values"`
		} `json:"points"`
	}
	get(t, srv, "/api/v1/queries/messages_per_author/series?key=author07", 200, &series)
	k := []window.Value{{S: "author07", Valid: true}}
	if len(series.Points) != len(snap.wins) || series.KeyID != keyID(k...) {
		t.Fatalf("%d points for %d windows, key_id %s", len(series.Points), len(snap.wins), series.KeyID)
	}
	rows := 0
	for i, p := range series.Points {
		v, ok := snap.Value(snap.wins[i].start, k)
		if p.Row != ok || p.Values["message_count"] != float64(int64(v0(v))) {
			t.Fatalf("point %d: %+v, want row %v value %v", i, p, ok, v)
		}
		if ok {
			rows++
		}
	}
	if rows == 0 {
		t.Fatal("the key has no row: the data does not test the series")
	}
}

func v0(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func TestAPIBatchesAndStatus(t *testing.T) {
	_, f, srv := seeded(t)
	var bs struct {
		Batches []struct {
			ID          int64   `json:"id"`
			Duration    float64 `json:"duration_ms"`
			RowsChanged int     `json:"rows_changed"`
			Lag         int64   `json:"lag"`
			Counts      Counts  `json:"counts"`
		} `json:"batches"`
	}
	get(t, srv, "/api/v1/queries/messages_per_author/batches?limit=5", 200, &bs)
	last := f.eng.NextBatchID() - 1
	if len(bs.Batches) != 5 || bs.Batches[0].ID != last || bs.Batches[4].ID != last-4 {
		t.Fatalf("batches %+v, want the 5 newest from %d", bs.Batches, last)
	}
	if b := bs.Batches[0]; b.Duration != 42 || b.Lag != 10 || b.RowsChanged == 0 || b.Counts.Records != 150 {
		t.Fatalf("batch %+v", b)
	}
	var st struct {
		Batch     batchA    `json:"batch"`
		Watermark time.Time `json:"watermark"`
		Lag       struct {
			Total      int64          `json:"total"`
			Partitions []PartitionLag `json:"partitions"`
		} `json:"lag"`
		SinceStart struct {
			Batches  int64 `json:"batches"`
			Records  int64 `json:"records"`
			LateRows int64 `json:"late_rows"`
		} `json:"since_start"`
		StateRows int64 `json:"state_rows"`
		Held      struct {
			Rows int `json:"rows"`
		} `json:"held"`
	}
	get(t, srv, "/api/v1/queries/messages_per_author/status", 200, &st)
	if st.Batch.ID != last || st.Watermark.UnixMicro() != f.eng.Watermark() || st.Lag.Total != 10 || len(st.Lag.Partitions) != 2 ||
		st.SinceStart.Batches != 12 || st.SinceStart.Records != 12*150 || st.StateRows != int64(f.eng.StateRows()) {
		t.Fatalf("status %+v; engine watermark %v, state rows %d", st, usTime(f.eng.Watermark()), f.eng.StateRows())
	}
	if st.SinceStart.LateRows == 0 {
		t.Error("no late rows counted: the traffic has late events")
	}
}

// Before the first batch every answer is valid and says there is no batch.
func TestAPIBeforeFirstBatch(t *testing.T) {
	d := newDash(t, Options{}, seedQuery(window.Update))
	srv := serve(t, d)
	for _, p := range []string{"", "/status", "/windows", "/rows", "/top", "/totals", "/series?key=a", "/batches"} {
		var m map[string]any
		get(t, srv, "/api/v1/queries/messages_per_author"+p, 200, &m)
		if b, ok := m["batch"]; !ok || b != nil {
			t.Errorf("%s: batch %v, want null", p, b)
		}
	}
	var top topA
	get(t, srv, "/api/v1/queries/messages_per_author/top", 200, &top)
	if top.Window != nil || len(top.Rows) != 0 {
		t.Errorf("top before any batch: %+v", top)
	}
}

func TestAPIBadParameters(t *testing.T) {
	_, _, srv := seeded(t)
	base := "/api/v1/queries/messages_per_author"
	for _, c := range []struct {
		path   string
		status int
		code   string
		param  string
		hint   string // a part of the hint
	}{
		{base + "/rows?limit=0", 400, "bad_parameter", "limit", "limit=1..1000"},
		{base + "/rows?limit=1001", 400, "bad_parameter", "limit", "limit=1..1000"},
		{base + "/rows?limit=ten", 400, "bad_parameter", "limit", "limit=1..1000"},
		{base + "/rows?limt=10", 400, "bad_parameter", "limt", "accepts: window, from"},
		{base + "/rows?limit=1&limit=2", 400, "bad_parameter", "limit", "once"},
		{base + "/rows?from=yesterday", 400, "bad_parameter", "from", "RFC 3339"},
		{base + "/rows?from=2026-01-05T10:00:00+01:00", 400, "bad_parameter", "from", "%2B"},
		{base + "/rows?from=2026-01-05T10:00:00Z&to=2026-01-05T09:00:00Z", 400, "bad_parameter", "to", "from < to"},
		{base + "/rows?window=2026-01-05T10:00:00Z&from=2026-01-05T10:00:00Z", 400, "bad_parameter", "window", "either"},
		{base + "/rows?window=2026-01-05T10:00:10Z", 400, "bad_parameter", "window", "start of a window"},
		{base + "/rows?window=soon", 400, "bad_parameter", "window", "window=current"},
		{base + "/rows?state=shut", 400, "bad_parameter", "state", "state=open"},
		{base + "/rows?cursor=%21%21", 400, "bad_parameter", "cursor", "next_cursor"},
		{base + "/rows?cursor=AAAA", 400, "bad_parameter", "cursor", "next_cursor"},
		{base + "/rows?key_id=zz", 400, "bad_parameter", "key_id", "copy key_id"},
		{base + "/rows?key.channel_id=1", 400, "bad_parameter", "key.channel_id", "key=<author_name value>"},
		{base + "/rows?key=a&key_id=AA", 400, "bad_parameter", "key_id", "key_id=<key_id of a row>"},
		{base + "/top?n=0", 400, "bad_parameter", "n", "n=1..100"},
		{base + "/top?n=101", 400, "bad_parameter", "n", "n=1..100"},
		{base + "/top?measure=bytes", 400, "bad_parameter", "measure", "message_count"},
		{base + "/top?window=2020-01-01T00:00:00Z", 404, "unknown_window", "window", "/windows lists"},
		{base + "/totals?limit=100000", 400, "bad_parameter", "limit", "limit=1..10080"},
		{base + "/series", 400, "bad_parameter", "key", "key="},
		{base + "/series?limit=0&key=a", 400, "bad_parameter", "limit", "limit=1..10000"},
		{base + "/batches?limit=101", 400, "bad_parameter", "limit", "limit=1..100"},
		{base + "/windows?state=x", 400, "bad_parameter", "state", "state=open"},
		{base + "/status?verbose=1", 400, "bad_parameter", "verbose", "accepts"},
		{"/api/v1/queries/nope/rows", 404, "unknown_query", "query", "messages_per_author"},
		{"/api/v1/events?query=nope", 404, "unknown_query", "query", "messages_per_author"},
		{"/api/v1/events?since=1", 400, "bad_parameter", "since", "accepts: query, last_event_id"},
		{"/api/v2/queries", 404, "not_found", "", "/api/v1/"},
		{"/nothing-here", 404, "not_found", "", "the page is at /"},
		{"/assets/nothing.js", 404, "not_found", "", "the page is at /"},
	} {
		var e errorA
		h := get(t, srv, c.path, c.status, &e)
		if e.Error.Code != c.code || e.Error.Param != c.param || e.Error.Message == "" || !strings.Contains(e.Error.Hint, c.hint) {
			t.Errorf("GET %s: %+v; want code %s, parameter %q, a hint with %q", c.path, e.Error, c.code, c.param, c.hint)
		}
		if ct := h.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: content type %q", c.path, ct)
		}
	}
}

// Read-only, no CORS, the security headers on every answer, and the Host
// check when it is on.
func TestSafeByDefault(t *testing.T) {
	d, _, srv := seeded(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, p := range []string{"/", "/api/v1/queries", "/api/v1/events"} {
			req, _ := http.NewRequest(m, srv.URL+p, strings.NewReader("{}"))
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Access-Control-Request-Method", "GET")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d, Allow %q", m, p, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	}
	for _, p := range []string{"/", "/assets/app.js", "/api/v1/queries", "/api/v1/queries/messages_per_author/top", "/api/v1/nothing"} {
		for _, m := range []string{"GET", "HEAD"} {
			req, _ := http.NewRequest(m, srv.URL+p, nil)
			req.Header.Set("Origin", "https://evil.example")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") ||
				!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
				t.Errorf("%s %s: CSP %q", m, p, csp)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s %s: headers %v", m, p, h)
			}
			for k := range h {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s %s: CORS header %s", m, p, k)
				}
			}
		}
	}
	// The Host check: a page of another site that rebinds its name to this
	// machine is refused.
	d.opt.AllowedHosts = LoopbackHosts(srv.Listener.Addr().String())
	get(t, srv, "/api/v1/queries", 200, nil)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/queries", nil)
	req.Host = "rebound.example:80"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("Host rebound.example: %d, want 403", resp.StatusCode)
	}
}

// No answer carries anything that looks like a credential: the query
// description holds no broker address or password, whatever the caller
// passes in Input.
func TestAPIQueryDescription(t *testing.T) {
	q := seedQuery(window.Update)
	q2 := channelQuery()
	q2.View = ViewHeatmap
	d := newDash(t, Options{}, q, q2)
	srv := serve(t, d)
	var list struct {
		Queries []map[string]any `json:"queries"`
	}
	get(t, srv, "/api/v1/queries", 200, &list)
	if len(list.Queries) != 2 || list.Queries[0]["name"] != "messages_per_author" || list.Queries[1]["view"] != "heatmap" {
		t.Fatalf("queries %v", list.Queries)
	}
	var one map[string]any
	get(t, srv, "/api/v1/queries/messages_per_author", 200, &one)
	for k, want := range map[string]any{"window": "1m", "slide": "30s", "watermark": "1m", "output_mode": "update", "trigger": "5s", "view": "leaderboard", "scope": "instance",
		"spark": `withWatermark("message_timestamp", "1 minutes").groupBy(window("message_timestamp", "1 minutes", "30 seconds"), "author_name").agg(count(*).alias("message_count"))`} {
		if one[k] != want {
			t.Errorf("%s = %v, want %v", k, one[k], want)
		}
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s", 61 * time.Second: "1m1s", 1500 * time.Millisecond: "1.5s"} {
		if got := shortDur(d); got != want {
			t.Errorf("shortDur(%v) = %s, want %s", d, got, want)
		}
	}
	var idx map[string]any
	get(t, srv, "/api/v1/", 200, &idx)
	if idx["version"] != "v1" {
		t.Errorf("index %v", idx)
	}
}

func TestAssets(t *testing.T) {
	_, _, srv := seeded(t)
	for p, ct := range map[string]string{
		"/":                                      "text/html; charset=utf-8",
		"/assets/app.js":                         "text/javascript; charset=utf-8",
		"/assets/app.css":                        "text/css; charset=utf-8",
		"/assets/vendor/uplot/uPlot.iife.min.js": "text/javascript; charset=utf-8",
		"/assets/vendor/uplot/uPlot.min.css":     "text/css; charset=utf-8",
		"/assets/vendor/uplot/LICENSE":           "text/plain; charset=utf-8",
	} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct || resp.Header.Get("ETag") == "" {
			t.Errorf("%s: %d %q etag %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"))
			continue
		}
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		resp2, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if resp2.StatusCode != 304 {
			t.Errorf("%s with its ETag: %d, want 304", p, resp2.StatusCode)
		}
	}
	// The page has no inline script or style: the CSP forbids them.
	html := string(assets["index.html"].data)
	if strings.Contains(html, "<script>") || strings.Contains(html, "style=") || strings.Contains(html, "<style") || strings.Contains(html, " on") && strings.Contains(html, "onclick") {
		t.Error("index.html has inline script or style")
	}
	if strings.Contains(html, "http://") || strings.Contains(html, "https://") {
		t.Error("index.html loads something from the network")
	}
}

// The vendored uPlot files are the ones scripts/vendor-uplot checked.
func TestVendoredUPlot(t *testing.T) {
	sums := string(assets["vendor/uplot/SHA256SUMS"].data)
	lines := strings.Split(strings.TrimSpace(sums), "\n")
	if len(lines) != 3 {
		t.Fatalf("SHA256SUMS has %d lines, want 3", len(lines))
	}
	for _, l := range lines {
		sum, name, ok := strings.Cut(l, "  ")
		a, found := assets["vendor/uplot/"+name]
		if !ok || !found {
			t.Fatalf("SHA256SUMS line %q: no such file", l)
		}
		got := sha256.Sum256(a.data)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: sha256 %x, SHA256SUMS says %s (run scripts/vendor-uplot)", name, got, sum)
		}
	}
}
