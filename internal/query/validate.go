package query

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// Validate checks the query as Spark would check it at start(), and what
// the engine needs, and says what to change.
func (q Query) Validate() error {
	return q.validate(func(string) string { return "" })
}

// validate reports the first problem; at gives a field's position
// ("file:line: ") for the message.
func (q Query) validate(at func(field string) string) error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%squery %s: %s", at(field), q.Name, fmt.Sprintf(format, a...))
	}
	if !validName(q.Name) {
		return fmt.Errorf("%squery name %q: use letters, digits, '-' and '_' (at most 64)", at("name"), q.Name)
	}
	sessions := q.SessionGap != 0
	switch {
	case sessions && (q.Window != 0 || q.Slide != 0):
		return bad("session_gap", "give either a window (window, slide) or a session gap (session_gap), not both")
	case !sessions && q.Window == 0:
		return bad("window", "no window: give window (and slide, default the window: tumbling), or session_gap")
	}
	if len(q.GroupBy) == 0 && sessions {
		return bad("group_by", "session windows need at least one group-by column (Spark has no global aggregation with session windows in a streaming query)")
	}
	for i, g := range q.GroupBy {
		if !slices.Contains(GroupColumns, g) {
			return bad("group_by", "unknown group-by column %q: use any of %s", g, strings.Join(GroupColumns, ", "))
		}
		if slices.Contains(q.GroupBy[:i], g) {
			return bad("group_by", "group-by column %q given twice", g)
		}
	}
	if len(q.Aggregates) == 0 {
		return bad("aggregates", "no aggregate: give at least one, e.g. count(*) AS message_count")
	}
	names := map[string]bool{"window": true}
	for _, g := range q.GroupBy {
		names[g] = true
	}
	for _, a := range q.Aggregates {
		if err := a.validate(); err != nil {
			return bad("aggregates", "%v", err)
		}
		if names[a.Alias] {
			return bad("aggregates", "column name %q used twice: give each aggregate its own alias (… AS name)", a.Alias)
		}
		names[a.Alias] = true
	}
	if len(q.OrderBy) > 0 && q.Mode != window.Complete {
		// UnsupportedOperationChecker: "Sorting is not supported on streaming
		// DataFrames/Datasets, unless it is on aggregated DataFrame/Dataset
		// in Complete output mode".
		return bad("order_by", "order_by needs complete mode (Spark sorts a streaming aggregation only in complete output mode): set mode: complete, or drop order_by (rows are then sorted by window start, then keys)")
	}
	for _, o := range q.OrderBy {
		if !names[o.Column] {
			return bad("order_by", "cannot sort by %q: use window, a group-by column or an aggregate's name", o.Column)
		}
	}
	for _, o := range q.Outputs {
		switch o.Kind {
		case "console":
			if o.Target != "" {
				return bad("outputs", "console takes no target (got %q)", o.Target)
			}
		case "jsonl", "kafka":
			if o.Target == "" {
				return bad("outputs", "%s needs a target: jsonl:FILE (- for standard output) or kafka:TOPIC", o.Kind)
			}
		default:
			return bad("outputs", "unknown output %q: use console, jsonl:FILE or kafka:TOPIC", o)
		}
	}
	cfg := window.Config{Window: q.Window, Slide: q.Slide, Gap: q.SessionGap, Watermark: q.Watermark, Mode: q.Mode, Keys: len(q.GroupBy)}
	if err := cfg.Validate(); err != nil {
		field := "window"
		switch {
		case strings.Contains(err.Error(), "output mode"):
			field = "mode"
		case strings.Contains(err.Error(), "watermark"):
			field = "watermark"
		case strings.Contains(err.Error(), "slide"):
			field = "slide"
		case sessions:
			field = "session_gap"
		}
		return bad(field, "%v", err)
	}
	return nil
}

func (a Aggregate) validate() error {
	want := func(what string) error {
		return fmt.Errorf("%v: %s", a.Func, what)
	}
	if a.Alias == "" || !validColumnName(a.Alias) {
		return fmt.Errorf("%v: column name %q: use letters, digits and '_'", a.Func, a.Alias)
	}
	x := a.Expr
	if x.Column != "" && !slices.Contains(InputColumns, x.Column) {
		return fmt.Errorf("%v: unknown column %q: use any of %s", a.Func, x.Column, strings.Join(InputColumns, ", "))
	}
	switch a.Func {
	case window.Count:
	case window.ApproxCountDistinct:
		if x.Column == "" {
			return want("give a column, e.g. approx_count_distinct(author_id)")
		}
	case window.Sum, window.Min, window.Max, window.Avg:
		if !x.Length {
			return want(fmt.Sprintf("needs a number: %v(length(%s))", a.Func, orDefault(x.Column, "content")))
		}
	default:
		return errors.New("unknown aggregate: use count, approx_count_distinct, sum, min, max or avg")
	}
	if a.RelativeSD != 0 && a.Func != window.ApproxCountDistinct {
		return want("takes no relative standard deviation")
	}
	agg := window.Aggregate{Kind: a.Func, Input: x.Type(), RelativeSD: a.RelativeSD}
	return window.Config{Window: time.Minute, Slide: time.Minute, Aggs: []window.Aggregate{agg}}.Validate()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validColumnName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9' || c == '(' || c == ')' || c == '*') {
			return false
		}
	}
	return true
}
