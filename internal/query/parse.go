package query

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cordstream/cordstream/internal/window"
)

// The configuration file (YAML; docs/QUERIES.md):
//
//	queries:
//	  per_channel:                   # the query's name
//	    preset: channel-activity     # optional: start from a preset; keys below override it
//	    window: 5m                   # or Spark's "5 minutes"
//	    slide: 5m                    # default: the window (tumbling)
//	    session_gap: 10m             # instead of window and slide
//	    watermark: 2m
//	    group_by: [channel_id]
//	    aggregates:
//	      - count(*) AS message_count
//	      - avg(length(content)) AS avg_chars
//	      - approx_count_distinct(author_id) AS active_members
//	    mode: update                 # update, append or complete
//	    order_by: [window, message_count DESC]   # complete mode only
//	    outputs: [console, "jsonl:per_channel.jsonl", "kafka:per-channel-results"]

// ParseFile reads a configuration file and returns its queries, in the
// file's order, checked. Errors name the file and line.
func ParseFile(path string) ([]Query, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("queries: %w", err)
	}
	return Parse(path, data)
}

// Parse is ParseFile on data read from the file named name.
func Parse(name string, data []byte) ([]Query, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v (the file must be YAML: see docs/QUERIES.md)", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	p := parser{file: name}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty: want a mapping with the key queries (see docs/QUERIES.md)", name)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, "want a mapping with the key queries")
	}
	var qs *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "queries" {
			return nil, p.errorf(k, "unknown key %q: the file holds queries: (see docs/QUERIES.md)", k.Value)
		}
		qs = v
	}
	if qs == nil || qs.Kind != yaml.MappingNode || len(qs.Content) == 0 {
		at := root
		if qs != nil {
			at = qs
		}
		return nil, p.errorf(at, "queries: want a mapping of query names to their definitions")
	}
	var out []Query
	seen := map[string]int{}
	for i := 0; i+1 < len(qs.Content); i += 2 {
		k, v := qs.Content[i], qs.Content[i+1]
		if l, dup := seen[k.Value]; dup {
			return nil, p.errorf(k, "query %q is defined twice (first on line %d)", k.Value, l)
		}
		seen[k.Value] = k.Line
		q, err := p.query(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

type parser struct {
	file string
}

func (p *parser) errorf(n *yaml.Node, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, n.Line, fmt.Sprintf(format, a...))
}

var queryKeys = []string{"preset", "window", "slide", "session_gap", "watermark", "group_by", "aggregates", "mode", "order_by", "outputs"}

func (p *parser) query(name, def *yaml.Node) (Query, error) {
	q := Query{Name: name.Value}
	if def.Kind != yaml.MappingNode {
		return q, p.errorf(def, "query %s: want a mapping of its settings (%s)", q.Name, strings.Join(queryKeys, ", "))
	}
	lines := map[string]*yaml.Node{"name": name}
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(def.Content); i += 2 {
		k, v := def.Content[i], def.Content[i+1]
		known := false
		for _, w := range queryKeys {
			known = known || w == k.Value
		}
		if !known {
			return q, p.errorf(k, "query %s: unknown setting %q: use %s", q.Name, k.Value, strings.Join(queryKeys, ", "))
		}
		if _, dup := fields[k.Value]; dup {
			return q, p.errorf(k, "query %s: %s given twice", q.Name, k.Value)
		}
		fields[k.Value] = v
		lines[k.Value] = k
	}
	if v := fields["preset"]; v != nil {
		pre, ok := Preset(v.Value)
		if !ok || v.Kind != yaml.ScalarNode {
			return q, p.errorf(v, "query %s: unknown preset %q: use any of %s", q.Name, v.Value, strings.Join(PresetNames(), ", "))
		}
		pre.Name = q.Name
		q = pre
		if fields["window"] != nil || fields["session_gap"] != nil {
			// A new window replaces the preset's, both kinds.
			q.Window, q.Slide, q.SessionGap = 0, 0, 0
		}
	} else {
		q.Mode = window.Update
	}
	dur := func(key string, dst *time.Duration) error {
		v := fields[key]
		if v == nil {
			return nil
		}
		d, err := ParseDuration(v.Value)
		if err != nil || v.Kind != yaml.ScalarNode {
			return p.errorf(v, "query %s: %s: %v", q.Name, key, err)
		}
		*dst = d
		return nil
	}
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{"window", &q.Window}, {"slide", &q.Slide}, {"session_gap", &q.SessionGap}, {"watermark", &q.Watermark}} {
		if err := dur(f.key, f.dst); err != nil {
			return q, err
		}
	}
	if fields["window"] != nil && fields["slide"] == nil {
		q.Slide = q.Window
	}
	if fields["watermark"] == nil && fields["preset"] == nil {
		mode := window.Update
		if v := fields["mode"]; v != nil {
			mode, _ = window.ParseMode(v.Value)
		}
		if mode != window.Complete {
			return q, p.errorf(name, "query %s: no watermark: give one, e.g. watermark: 1m (a window or session closes once the watermark passes its end; Spark's append mode needs one too)", q.Name)
		}
	}
	if v := fields["mode"]; v != nil {
		m, err := window.ParseMode(v.Value)
		if err != nil || v.Kind != yaml.ScalarNode {
			return q, p.errorf(v, "query %s: mode: %v", q.Name, err)
		}
		q.Mode = m
	}
	list := func(key string) ([]*yaml.Node, error) {
		v := fields[key]
		if v == nil {
			return nil, nil
		}
		if v.Kind == yaml.ScalarNode {
			return []*yaml.Node{v}, nil
		}
		if v.Kind != yaml.SequenceNode {
			return nil, p.errorf(v, "query %s: %s: want a list, e.g. [a, b]", q.Name, key)
		}
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				return nil, p.errorf(e, "query %s: %s: want a list of strings", q.Name, key)
			}
		}
		return v.Content, nil
	}
	if fields["group_by"] != nil {
		ns, err := list("group_by")
		if err != nil {
			return q, err
		}
		q.GroupBy = nil
		for _, n := range ns {
			q.GroupBy = append(q.GroupBy, strings.TrimSpace(n.Value))
			lines["group_by"] = n
		}
	}
	if fields["aggregates"] != nil {
		ns, err := list("aggregates")
		if err != nil {
			return q, err
		}
		q.Aggregates = nil
		for _, n := range ns {
			a, err := ParseAggregate(n.Value)
			if err != nil {
				return q, p.errorf(n, "query %s: aggregate %q: %v", q.Name, n.Value, err)
			}
			if err := a.validate(); err != nil {
				return q, p.errorf(n, "query %s: aggregate %q: %v", q.Name, n.Value, err)
			}
			q.Aggregates = append(q.Aggregates, a)
		}
	}
	if fields["order_by"] != nil {
		ns, err := list("order_by")
		if err != nil {
			return q, err
		}
		q.OrderBy = nil
		for _, n := range ns {
			o, err := parseOrder(n.Value)
			if err != nil {
				return q, p.errorf(n, "query %s: order_by %q: %v", q.Name, n.Value, err)
			}
			q.OrderBy = append(q.OrderBy, o)
		}
	}
	if fields["outputs"] != nil {
		ns, err := list("outputs")
		if err != nil {
			return q, err
		}
		q.Outputs = nil
		for _, n := range ns {
			kind, target, _ := strings.Cut(strings.TrimSpace(n.Value), ":")
			q.Outputs = append(q.Outputs, Output{Kind: strings.ToLower(kind), Target: target})
			lines["outputs"] = n
		}
	}
	err := q.validate(func(field string) string {
		n := lines[field]
		if n == nil {
			n = name
		}
		return fmt.Sprintf("%s:%d: ", p.file, n.Line)
	})
	return q, err
}

var (
	aggRe   = regexp.MustCompile(`^(?i)\s*([a-z_]+)\s*\(\s*(.*?)\s*\)\s*(?:as\s+([A-Za-z_][A-Za-z0-9_]*)\s*)?$`)
	lenRe   = regexp.MustCompile(`^(?i)length\s*\(\s*([a-z_]+)\s*\)$`)
	orderRe = regexp.MustCompile(`^(?i)\s*([A-Za-z_][A-Za-z0-9_()*]*)\s*(asc|desc)?\s*$`)
	durRe   = regexp.MustCompile(`^(?i)\s*(\d+)\s*(microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?)\s*`)
)

// ParseAggregate parses "func(arg[, rsd]) [AS alias]": func one of count,
// approx_count_distinct, sum, min, max, avg (any case); arg *, 1, a column
// or length(column). Without an alias the column is named as Spark names it
// (count(1), avg(length(content))).
func ParseAggregate(s string) (Aggregate, error) {
	if strings.Count(s, "(") != strings.Count(s, ")") {
		return Aggregate{}, fmt.Errorf("unbalanced parentheses (in a [a, b] list a comma splits the entry: quote it, \"approx_count_distinct(author_id, 0.01)\", or write the list one entry per line)")
	}
	m := aggRe.FindStringSubmatch(s)
	if m == nil {
		return Aggregate{}, fmt.Errorf("want func(column) [AS name], e.g. count(*) AS message_count or avg(length(content)) AS avg_chars")
	}
	f, ok := window.ParseAggKind(strings.ToLower(m[1]))
	if !ok {
		return Aggregate{}, fmt.Errorf("unknown function %q: use count, approx_count_distinct, sum, min, max or avg", m[1])
	}
	a := Aggregate{Func: f, Alias: m[3]}
	arg := m[2]
	if f == window.ApproxCountDistinct {
		if col, rsd, ok := strings.Cut(arg, ","); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rsd), 64)
			if err != nil || v <= 0 {
				return a, fmt.Errorf("relative standard deviation %q: want a number such as 0.05", strings.TrimSpace(rsd))
			}
			a.RelativeSD, arg = v, strings.TrimSpace(col)
		}
	}
	switch {
	case arg == "*" || arg == "1":
		if f != window.Count {
			return a, fmt.Errorf("%v(%s): only count takes *", f, arg)
		}
	case lenRe.MatchString(arg):
		a.Expr = Expr{Column: strings.ToLower(lenRe.FindStringSubmatch(arg)[1]), Length: true}
	default:
		a.Expr = Expr{Column: arg}
	}
	if a.Alias == "" {
		a.Alias = a.DefaultAlias()
	}
	return a, nil
}

func parseOrder(s string) (Order, error) {
	m := orderRe.FindStringSubmatch(s)
	if m == nil {
		return Order{}, fmt.Errorf("want a column and optionally ASC or DESC, e.g. message_count DESC")
	}
	return Order{Column: m[1], Desc: strings.EqualFold(m[2], "desc")}, nil
}

// ParseDuration parses a Go duration ("1m30s", "500ms") or Spark's interval
// strings ("1 minute", "30 seconds", "1 hour 30 minutes"). It must be
// positive or zero.
func ParseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return d, nil
	}
	if strings.TrimSpace(s) == "" {
		return 0, fmt.Errorf("empty: write 1m, 30s, 500ms, or Spark's 1 minute, 30 seconds")
	}
	rest := s
	var total time.Duration
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		m := durRe.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("%q is not a duration: write 1m, 30s, 500ms, or Spark's 1 minute, 30 seconds", s)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > 1<<40 {
			return 0, fmt.Errorf("%q: number out of range", s)
		}
		unit := strings.TrimSuffix(strings.ToLower(m[2]), "s")
		mult := map[string]time.Duration{"microsecond": time.Microsecond, "millisecond": time.Millisecond, "second": time.Second,
			"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour, "week": 7 * 24 * time.Hour}[unit]
		if time.Duration(n) > (1<<62)/mult {
			return 0, fmt.Errorf("%q is too long", s)
		}
		total += time.Duration(n) * mult
		rest = rest[len(m[0]):]
	}
	return total, nil
}
