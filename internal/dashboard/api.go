package dashboard

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// Page sizes and limits of the API's answers.
const (
	defaultRowLimit = 100
	maxRowLimit     = 1000
	defaultTopN     = 10
	maxTopN         = 100
	// EventTopN is how many rows of the current window a batch event
	// carries: the page's leaderboard.
	EventTopN          = 20
	defaultPointLimit  = 1000
	defaultBatchLimit  = 20
	maxSeriesPoints    = 10_000
	jsonContentType    = "application/json"
	contentSecurityPol = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

func (d *Dashboard) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", serveIndex)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.HandlerFunc(serveAsset)))
	mux.HandleFunc("GET /api/v1/{$}", d.serveAPIIndex)
	mux.HandleFunc("GET /api/v1/queries", d.serveQueries)
	mux.HandleFunc("GET /api/v1/queries/{query}", d.withSnap(d.serveQuery))
	mux.HandleFunc("GET /api/v1/queries/{query}/status", d.withSnap(d.serveStatus))
	mux.HandleFunc("GET /api/v1/queries/{query}/windows", d.withSnap(d.serveWindows))
	mux.HandleFunc("GET /api/v1/queries/{query}/rows", d.withSnap(d.serveRows))
	mux.HandleFunc("GET /api/v1/queries/{query}/top", d.withSnap(d.serveTop))
	mux.HandleFunc("GET /api/v1/queries/{query}/totals", d.withSnap(d.serveTotals))
	mux.HandleFunc("GET /api/v1/queries/{query}/series", d.withSnap(d.serveSeries))
	mux.HandleFunc("GET /api/v1/queries/{query}/batches", d.withSnap(d.serveBatches))
	mux.HandleFunc("GET /api/v1/events", d.serveEvents)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no endpoint %s", r.URL.Path), Hint: "GET /api/v1/ lists the endpoints"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("nothing at %s", r.URL.Path), Hint: "the page is at /, the API at /api/v1/"})
	})
	return d.secure(mux)
}

// secure wraps every answer: GET and HEAD only, the security headers, and
// the Host check. It never sets CORS headers: other sites' pages cannot
// read the answers.
func (d *Dashboard) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPol)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Message: fmt.Sprintf("method %s: the dashboard is read-only", r.Method), Hint: "use GET or HEAD"})
			return
		}
		if len(d.opt.AllowedHosts) > 0 && !slices.Contains(d.opt.AllowedHosts, strings.ToLower(r.Host)) {
			writeError(w, &apiError{Status: http.StatusForbidden, Code: "host_not_allowed",
				Message: fmt.Sprintf("host %q is not served here", r.Host), Hint: "use one of: " + strings.Join(d.opt.AllowedHosts, ", ")})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withSnap resolves the {query} path value to its current snapshot: one
// snapshot per answer.
func (d *Dashboard) withSnap(f func(http.ResponseWriter, *http.Request, *Snapshot)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("query")
		s := d.stores[name]
		if s == nil {
			writeError(w, unknownQuery(name, d.names()))
			return
		}
		f(w, r, s.snapshot())
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "encode answer: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// ---------------------------------------------------------------- handlers

func (d *Dashboard) serveAPIIndex(w http.ResponseWriter, r *http.Request) {
	if _, e := parseParams(r); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, map[string]any{
		"version": "v1",
		"docs":    "docs/API.md",
		"endpoints": []string{
			"GET /api/v1/queries",
			"GET /api/v1/queries/{query}",
			"GET /api/v1/queries/{query}/status",
			"GET /api/v1/queries/{query}/windows?state=&from=&to=",
			"GET /api/v1/queries/{query}/rows?window=&from=&to=&state=&key=&key.<column>=&key_id=&limit=&cursor=",
			"GET /api/v1/queries/{query}/top?window=&n=&measure=",
			"GET /api/v1/queries/{query}/totals?from=&to=&limit=",
			"GET /api/v1/queries/{query}/series?key=&key.<column>=&key_id=&from=&to=&limit=",
			"GET /api/v1/queries/{query}/batches?limit=",
			"GET /api/v1/events?query=",
		},
	})
}

func (d *Dashboard) serveQueries(w http.ResponseWriter, r *http.Request) {
	if _, e := parseParams(r); e != nil {
		writeError(w, e)
		return
	}
	type entry struct {
		queryJSON
		Batch *BatchInfo `json:"batch"`
	}
	out := struct {
		Queries []entry `json:"queries"`
	}{Queries: []entry{}}
	for _, q := range d.queries {
		out.Queries = append(out.Queries, entry{d.queryJSON(q), d.stores[q.Name].snapshot().batch})
	}
	writeJSON(w, out)
}

func (d *Dashboard) serveQuery(w http.ResponseWriter, r *http.Request, snap *Snapshot) {
	if _, e := parseParams(r); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, struct {
		queryJSON
		Batch *BatchInfo `json:"batch"`
	}{d.queryJSON(snap.query), snap.batch})
}

func (d *Dashboard) serveStatus(w http.ResponseWriter, r *http.Request, snap *Snapshot) {
	if _, e := parseParams(r); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, status(snap, d.opt.MaxRows))
}

func (d *Dashboard) serveWindows(w http.ResponseWriter, r *http.Request, snap *Snapshot) {
	p, e := parseParams(r, "state", "from", "to")
	if e != nil {
		writeError(w, e)
		return
	}
	f := rowFilter{}
	if f.from, f.to, f.hasFrom, f.hasTo, e = p.timeRange(); e != nil {
		writeError(w, e)
		return
	}
	if f.state, e = stateParam(p); e != nil {
		writeError(w, e)
		return
	}
	out := struct {
		Query   string       `json:"query"`
		Batch   *batchRef    `json:"batch"`
		Current *time.Time   `json:"current"`
		Windows []windowJSON `json:"windows"`
	}{Query: snap.query.Name, Batch: refOf(snap), Windows: []windowJSON{}}
	if c := snap.current(); c != nil {
		t := usTime(c.start)
		out.Current = &t
	}
	for _, win := range snap.wins {
		if f.window(win) {
			out.Windows = append(out.Windows, heldWindow(snap.query, win))
		}
	}
	writeJSON(w, out)
}

func stateParam(p params) (string, *apiError) {
	s := p.get("state")
	switch s {
	case "", "all":
		return "", nil
	case "open", "closed":
		return s, nil
	}
	return "", badParam("state", fmt.Sprintf("state %q is not open, closed or all", s), "send state=open, state=closed or state=all (default)")
}

func (d *Dashboard) serveRows(w http.ResponseWriter, r *http.Request, snap *Snapshot) {
	p, e := parseParams(r, "window", "from", "to", "state", "key", "key.", "key_id", "limit", "cursor")
	if e != nil {
		writeError(w, e)
		return
	}
	q := snap.query
	f := rowFilter{}
	if f.from, f.to, f.hasFrom, f.hasTo, e = p.timeRange(); e != nil {
		writeError(w, e)
		return
	}
	if p.has("window") {
		if p.has("from") || p.has("to") {
			writeError(w, badParam("window", "window and from/to given together", "send either window=<start> for one window or from/to for a range"))
			return
		}
		start, _, held, e := p.windowStart(snap, "")
		if e != nil {
			writeError(w, e)
			return
		}
		if !held {
			start = -1 << 62 // selects nothing
		}
		f.from, f.to, f.hasFrom, f.hasTo = start, start+1, true, true
	}
	if f.state, e = stateParam(p); e != nil {
		writeError(w, e)
		return
	}
	k, e := p.keyFilter(q)
	if e != nil {
		writeError(w, e)
		return
	}
	f.exact, f.cols = k.exact, k.cols
	if f.limit, e = p.int("limit", 1, maxRowLimit, defaultRowLimit); e != nil {
		writeError(w, e)
		return
	}
	if p.get("cursor") != "" { // an empty cursor is the first page
		c, err := decodeCursor(p.get("cursor"), len(q.GroupBy))
		if err != nil {
			writeError(w, badParam("cursor", fmt.Sprintf("cursor %q was not given by this query's rows answer (%v)", p.get("cursor"), err), "send the next_cursor of the previous page, with the same filters"))
			return
		}
		f.after = c
	}
	refs, more := snap.rows(&f)
	out := struct {
		Query      string    `json:"query"`
		Batch      *batchRef `json:"batch"`
		Rows       []rowJSON `json:"rows"`
		NextCursor string    `json:"next_cursor,omitempty"`
	}{Query: q.Name, Batch: refOf(snap), Rows: make([]rowJSON, len(refs))}
	for i, ref := range refs {
		out.Rows[i] = rowOf(q, ref, 0)
	}
	if more {
		last := refs[len(refs)-1]
		out.NextCursor = cursor{start: last.w.start, keys: last.w.keys[last.i].vals}.encode()
	}
	writeJSON(w, out)
}

// topJSON is the top answer, and the current window of a batch event.
type topJSON struct {
	Query   string      `json:"query"`
	Batch   *batchRef   `json:"batch"`
	Window  *windowJSON `json:"window"`
	Measure string      `json:"measure"`
	Rows    []rowJSON   `json:"rows"`
}

func topOf(snap *Snapshot, w *win, m, n int) topJSON {
	q := snap.query
	out := topJSON{Query: q.Name, Batch: refOf(snap), Measure: q.Measures[m].Name, Rows: []rowJSON{}}
	if w == nil {
		return out
	}
	wj := heldWindow(q, w)
	out.Window = &wj
	for i, ref := range snap.top(w, m, n) {
		out.Rows = append(out.Rows, rowOf(q, ref, i+1))
	}
	return out
}

func (d *Dashboard) serveTop(w http.ResponseWriter, r *http.Request, snap *Snapshot) {
	p, e := parseParams(r, "window", "n", "measure")
	if e != nil {
		writeError(w, e)
		return
	}
	n, e := p.int("n", 1, maxTopN, defaultTopN)
	if e != nil {
		writeError(w, e)
		return
	}
	m, e := p.measure(snap.query)
	if e != nil {
		writeError(w, e)
		return
	}
	start, named, held, e := p.windowStart(snap, "current")
	if e != nil {
		writeError(w, e)
		return
	}
	if named && !held {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "unknown_window", Param: "window",
			Message: fmt.Sprintf("window %s is not held (not yet seen, or dropped)", usTime(start).Format(time.RFC3339Nano)),
			Hint:    "GET /api/v1/queries/" + snap.query.Name + "/windows lists the held windows"})
		return
	}
	var win *win
	if held {
		win = snap.window(start)
	}
	writeJSON(w, topOf(snap, win, m, n))
}

func (d *Dashboard) serveTotals(w http.ResponseWriter, r *http.Request, snap *Snapshot) {
	p, e := parseParams(r, "from", "to", "limit")
	if e != nil {
		writeError(w, e)
		return
	}
	from, to, hasFrom, hasTo, e := p.timeRange()
	if e != nil {
		writeError(w, e)
		return
	}
	limit, e := p.int("limit", 1, d.opt.MaxTotals, min(defaultPointLimit, d.opt.MaxTotals))
	if e != nil {
		writeError(w, e)
		return
	}
	q := snap.query
	out := struct {
		Query    string       `json:"query"`
		Batch    *batchRef    `json:"batch"`
		Measures []string     `json:"measures"`
		Windows  []windowJSON `json:"windows"`
	}{Query: q.Name, Batch: refOf(snap), Measures: []string{}, Windows: []windowJSON{}}
	for _, m := range q.Measures {
		if m.Additive {
			out.Measures = append(out.Measures, m.Name)
		}
	}
	for _, t := range snap.totals(from, to, hasFrom, hasTo, limit) {
		out.Windows = append(out.Windows, windowOf(q, t))
	}
	writeJSON(w, out)
}

func (d *Dashboard) serveSeries(w http.ResponseWriter, r *http.Request, snap *Snapshot) {
	p, e := parseParams(r, "key", "key.", "key_id", "from", "to", "limit")
	if e != nil {
		writeError(w, e)
		return
	}
	q := snap.query
	k, e := p.keyFilter(q)
	if e != nil {
		writeError(w, e)
		return
	}
	if k.exact == nil {
		writeError(w, badParam("key", "a series is of one whole key", keyHint(q)))
		return
	}
	from, to, hasFrom, hasTo, e := p.timeRange()
	if e != nil {
		writeError(w, e)
		return
	}
	limit, e := p.int("limit", 1, maxSeriesPoints, defaultPointLimit)
	if e != nil {
		writeError(w, e)
		return
	}
	type point struct {
		Start  time.Time `json:"window_start"`
		End    time.Time `json:"window_end"`
		Closed bool      `json:"closed"`
		Row    bool      `json:"row"`
		Values object    `json:"values"`
	}
	out := struct {
		Query  string    `json:"query"`
		Batch  *batchRef `json:"batch"`
		Keys   object    `json:"keys"`
		KeyID  string    `json:"key_id"`
		Points []point   `json:"points"`
	}{Query: q.Name, Batch: refOf(snap), Keys: keysObject(q, k.exact), Points: []point{}}
	buf := window.AppendKeys(nil, k.exact)
	out.KeyID = base64.RawURLEncoding.EncodeToString(buf)
	nm := len(q.Measures)
	for _, sp := range snap.series(k.exact, from, to, hasFrom, hasTo, limit) {
		pt := point{Start: usTime(sp.w.start), End: usTime(sp.w.end), Closed: sp.w.closed, Row: sp.row}
		if sp.row {
			pt.Values = valuesObject(q, sp.w.vals[sp.i*nm:(sp.i+1)*nm])
		} else {
			// No row: nothing counted for the key in that window. A sum
			// of nothing is 0; other aggregates have no value.
			pt.Values = object{names: measureNames(q), vals: make([]any, nm)}
			for i, m := range q.Measures {
				if m.Additive {
					pt.Values.vals[i] = 0.0
				}
			}
		}
		out.Points = append(out.Points, pt)
	}
	writeJSON(w, out)
}

func (d *Dashboard) serveBatches(w http.ResponseWriter, r *http.Request, snap *Snapshot) {
	p, e := parseParams(r, "limit")
	if e != nil {
		writeError(w, e)
		return
	}
	limit, e := p.int("limit", 1, d.opt.RecentBatches, min(defaultBatchLimit, d.opt.RecentBatches))
	if e != nil {
		writeError(w, e)
		return
	}
	out := struct {
		Query   string      `json:"query"`
		Batch   *batchRef   `json:"batch"`
		Batches []BatchInfo `json:"batches"`
	}{Query: snap.query.Name, Batch: refOf(snap), Batches: []BatchInfo{}}
	// Newest first.
	for i := len(snap.batches) - 1; i >= 0 && len(out.Batches) < limit; i-- {
		out.Batches = append(out.Batches, snap.batches[i])
	}
	writeJSON(w, out)
}

// batchEvent is the data of the event that announces snap's batch: its
// status, the current window's leaderboard, and the windows it changed.
func batchEvent(snap *Snapshot, touched []int64, maxRows int) ([]byte, error) {
	q := snap.query
	top := topOf(snap, snap.current(), 0, EventTopN)
	ev := struct {
		statusJSON
		Current struct {
			Window  *windowJSON `json:"window"`
			Measure string      `json:"measure"`
			Rows    []rowJSON   `json:"rows"`
		} `json:"current"`
		Windows []windowJSON `json:"windows"`
	}{statusJSON: status(snap, maxRows), Windows: []windowJSON{}}
	ev.Current.Window, ev.Current.Measure, ev.Current.Rows = top.Window, top.Measure, top.Rows
	for _, start := range touched {
		if w := snap.window(start); w != nil {
			ev.Windows = append(ev.Windows, heldWindow(q, w))
		}
	}
	return json.Marshal(ev)
}
