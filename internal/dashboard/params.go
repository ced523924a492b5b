package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// apiError is an error answer: {"error": {...}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Param   string `json:"parameter,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Error *apiError `json:"error"`
	}{e})
}

func badParam(name, msg, hint string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "bad_parameter", Param: name, Message: msg, Hint: hint}
}

func unknownQuery(name, known string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "unknown_query", Param: "query",
		Message: fmt.Sprintf("no query named %q", name), Hint: "GET /api/v1/queries lists the queries shown: " + known}
}

// params are a request's query parameters, checked against what an
// endpoint accepts.
type params struct{ v url.Values }

// parseParams accepts the named parameters and, when "key." is among them,
// every key.<column> parameter. Any other parameter, or one given twice
// that may appear once, is an error: a typo should not pass unnoticed.
func parseParams(r *http.Request, accepted ...string) (params, *apiError) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return params{}, badParam("", "the query string cannot be parsed: "+err.Error(), "percent-encode reserved characters (for example + as %2B)")
	}
	for name, vals := range v {
		ok := slices.Contains(accepted, name) || (strings.HasPrefix(name, "key.") && slices.Contains(accepted, "key."))
		if !ok {
			return params{}, badParam(name, fmt.Sprintf("unknown parameter %q", name), "this endpoint accepts: "+strings.Join(accepted, ", "))
		}
		if len(vals) > 1 && name != "query" {
			return params{}, badParam(name, fmt.Sprintf("parameter %q given %d times", name, len(vals)), "give it once")
		}
	}
	return params{v}, nil
}

func (p params) get(name string) string { return p.v.Get(name) }
func (p params) has(name string) bool   { return p.v.Has(name) }
func (p params) all(name string) []string {
	return p.v[name]
}

// int parses a whole number in [lo, hi], def when absent.
func (p params) int(name string, lo, hi, def int) (int, *apiError) {
	if !p.has(name) {
		return def, nil
	}
	s := p.get(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, fmt.Sprintf("%s %q is not a whole number from %d to %d", name, s, lo, hi),
			fmt.Sprintf("send %s=%d..%d (default %d)", name, lo, hi, def))
	}
	return n, nil
}

// time parses an RFC 3339 time into Unix µs.
func (p params) time(name string) (int64, bool, *apiError) {
	if !p.has(name) {
		return 0, false, nil
	}
	s := p.get(name)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		hint := fmt.Sprintf("send %s as an RFC 3339 time, for example %s=2026-01-02T15:04:05Z", name, name)
		if strings.Contains(s, " ") {
			hint += "; a + in a query string reads as a space: send it as %2B"
		}
		return 0, false, badParam(name, fmt.Sprintf("%s %q is not an RFC 3339 time", name, s), hint)
	}
	return t.UnixMicro(), true, nil
}

// timeRange parses from and to (window starts, [from, to)).
func (p params) timeRange() (from, to int64, hasFrom, hasTo bool, e *apiError) {
	if from, hasFrom, e = p.time("from"); e != nil {
		return
	}
	if to, hasTo, e = p.time("to"); e != nil {
		return
	}
	if hasFrom && hasTo && to <= from {
		e = badParam("to", "to is not after from", "send from < to: windows starting at or after from and before to")
	}
	return
}

// windowStart resolves the window parameter against snap: "current" (the
// default), "newest", or a window start as RFC 3339 (named). held is false
// when no window is held (nothing to show yet) or the one named is not held.
func (p params) windowStart(snap *Snapshot, def string) (start int64, named, held bool, e *apiError) {
	s := def
	if p.has("window") {
		s = p.get("window")
	}
	switch s {
	case "":
		return 0, false, false, nil
	case "current":
		if w := snap.current(); w != nil {
			return w.start, false, true, nil
		}
		return 0, false, false, nil
	case "newest":
		if n := len(snap.wins); n > 0 {
			return snap.wins[n-1].start, false, true, nil
		}
		return 0, false, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, true, false, badParam("window", fmt.Sprintf("window %q is neither current, newest nor an RFC 3339 time", s),
			"send window=current (default), window=newest, or a window start such as window=2026-01-02T15:04:00Z (GET .../windows lists them)")
	}
	us := t.UnixMicro()
	if slide := snap.query.Slide.Microseconds(); us%slide != 0 {
		return 0, true, false, badParam("window", fmt.Sprintf("window %s is not a window start: windows start every %v", s, snap.query.Slide),
			"send the start of a window (GET .../windows lists them)")
	}
	return us, true, snap.window(us) != nil, nil
}

// measure resolves the measure parameter (default: the first measure).
func (p params) measure(q *Query) (int, *apiError) {
	if !p.has("measure") {
		return 0, nil
	}
	s := p.get("measure")
	for i, m := range q.Measures {
		if m.Name == s {
			return i, nil
		}
	}
	return 0, badParam("measure", fmt.Sprintf("query %s has no measure %q", q.Name, s), "send one of: "+strings.Join(measureNames(q), ", "))
}

func measureNames(q *Query) []string {
	names := make([]string, len(q.Measures))
	for i, m := range q.Measures {
		names[i] = m.Name
	}
	return names
}

// keySpec is a key filter: a whole key tuple (exact) or values of some
// columns (cols).
type keySpec struct {
	exact []window.Value
	cols  map[int]string
}

func (k keySpec) empty() bool { return k.exact == nil && len(k.cols) == 0 }

// keyFilter parses key (the only column's value), key.<column> (one
// column's value) and key_id (a whole key, as answers give it).
func (p params) keyFilter(q *Query) (keySpec, *apiError) {
	var k keySpec
	n := len(q.GroupBy)
	hint := keyHint(q)
	for name := range p.v {
		col, ok := strings.CutPrefix(name, "key.")
		if !ok {
			continue
		}
		i := slices.Index(q.GroupBy, col)
		if i < 0 {
			return k, badParam(name, fmt.Sprintf("query %s does not group by %q", q.Name, col), hint)
		}
		if k.cols == nil {
			k.cols = make(map[int]string)
		}
		k.cols[i] = p.get(name)
	}
	if p.has("key") {
		if n != 1 {
			return k, badParam("key", fmt.Sprintf("key= names the value of the only group-by column, but query %s groups by %d columns", q.Name, n), hint)
		}
		if k.cols != nil {
			return k, badParam("key", "key and key.<column> given together", hint)
		}
		k.cols = map[int]string{0: p.get("key")}
	}
	if p.has("key_id") {
		if k.cols != nil {
			return k, badParam("key_id", "key_id and key or key.<column> given together", hint)
		}
		vals, err := decodeKeyID(p.get("key_id"), n)
		if err != nil {
			return k, badParam("key_id", fmt.Sprintf("key_id %q is not a key of query %s (%v)", p.get("key_id"), q.Name, err), "copy key_id from a row of an answer")
		}
		k.exact = vals
	}
	if len(k.cols) == n { // every column given: a whole key
		k.exact = make([]window.Value, n)
		for i, s := range k.cols {
			k.exact[i] = window.Value{S: s, Valid: true}
		}
		k.cols = nil
	}
	return k, nil
}

func keyHint(q *Query) string {
	if len(q.GroupBy) == 1 {
		return fmt.Sprintf("send key=<%s value>, or key_id=<key_id of a row> (the only way to name a null key)", q.GroupBy[0])
	}
	cols := make([]string, len(q.GroupBy))
	for i, c := range q.GroupBy {
		cols[i] = "key." + c + "=<value>"
	}
	return "send any of " + strings.Join(cols, ", ") + ", or key_id=<key_id of a row> (the only way to name a null key)"
}
