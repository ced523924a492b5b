package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/analyzer"
	"github.com/cordstream/cordstream/internal/dashboard"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/query"
	"github.com/cordstream/cordstream/internal/sink"
	"github.com/cordstream/cordstream/internal/window"
)

// The flags a named query (--queries, --preset) fixes itself.
var queryShapeFlags = []string{"window", "slide", "watermark", "group-by", "mode"}

// The flags of the one query's outputs, which --queries sets per query.
var queryOutputFlags = []string{"output", "jsonl-file", "results-topic"}

// namedQueries reads --queries or --preset into o.queries, compiled, and
// refuses the flags they conflict with. Without either it leaves o as the
// flags' one query.
func (f *analyzeFlags) namedQueries(o *analyzeOptions) error {
	if f.queriesFile == "" && f.preset == "" {
		return nil
	}
	if f.queriesFile != "" && f.preset != "" {
		return usageErrorf("give one of them; a query in a --queries file can start from a preset (preset: NAME)",
			"--queries and --preset are both given")
	}
	which := "--queries"
	if f.preset != "" {
		which = "--preset"
	}
	for _, fl := range queryShapeFlags {
		if f.given[fl] {
			return usageErrorf("drop --"+fl+", or write a query file (docs/QUERIES.md) with preset: NAME and the keys to change",
				"--%s is the one-query shorthand: %s queries set their own window, slide, watermark, group-by and mode", fl, which)
		}
	}
	if f.given["dedup"] && f.dedup {
		return usageErrorf("drop --dedup (or give --dedup=false)",
			"--dedup: not available with %s yet: named queries count a repeated message_id again, as Spark does", which)
	}
	o.query.Dedup = false
	var qs []query.Query
	if f.preset != "" {
		q, ok := query.Preset(f.preset)
		if !ok {
			return usageErrorf("use one of "+strings.Join(query.PresetNames(), ", "), "--preset %q: no such preset", f.preset)
		}
		for _, out := range o.outputs {
			switch out {
			case analyzeOutConsole:
				q.Outputs = append(q.Outputs, query.Output{Kind: "console"})
			case analyzeOutJSONL:
				t := o.jsonl
				if t == "" {
					t = "-"
				}
				q.Outputs = append(q.Outputs, query.Output{Kind: "jsonl", Target: t})
			case analyzeOutKafka:
				q.Outputs = append(q.Outputs, query.Output{Kind: "kafka", Target: o.results})
			}
		}
		qs = []query.Query{q}
	} else {
		for _, fl := range queryOutputFlags {
			if f.given[fl] {
				return usageErrorf(`give each query its outputs in the file: outputs: [console, "jsonl:FILE", "kafka:TOPIC"]`,
					"--%s is the one-query shorthand's output: with --queries each query names its own", fl)
			}
		}
		var err error
		if qs, err = query.ParseFile(f.queriesFile); err != nil {
			return usageErrorf("see docs/QUERIES.md for the file's format", "--queries: %v", err)
		}
		o.outputs, o.jsonl, o.results = nil, "", ""
	}
	if err := checkQueryOutputs(qs, f, o); err != nil {
		return err
	}
	for _, q := range qs {
		c, err := query.Compile(q)
		if err != nil {
			return usageErrorf("see docs/QUERIES.md", "%s: %v", which, err)
		}
		o.queries = append(o.queries, c)
	}
	return nil
}

// checkQueryOutputs checks the outputs of every query together: standard
// output written by one output at most (consoles may share it), no file or
// topic written by two queries, topics that are not the input, the
// dead-letter or an internal topic.
func checkQueryOutputs(qs []query.Query, f *analyzeFlags, o *analyzeOptions) error {
	consoles := 0
	stdoutBy := ""
	files := map[string]string{}
	topics := map[string]string{}
	for i := range qs {
		q := &qs[i]
		if len(q.Outputs) == 0 {
			q.Outputs = []query.Output{{Kind: "console"}}
		}
		for _, out := range q.Outputs {
			switch out.Kind {
			case "console":
				consoles++
			case "jsonl":
				if out.Target == "-" {
					if stdoutBy != "" {
						return usageErrorf("write the JSON lines of all but one query to files (jsonl:FILE)",
							"queries %s and %s both write JSON lines to standard output", stdoutBy, q.Name)
					}
					stdoutBy = q.Name
					continue
				}
				if other, ok := files[out.Target]; ok {
					return usageErrorf("give each query a file of its own", "queries %s and %s both write to the file %s", other, q.Name, out.Target)
				}
				files[out.Target] = q.Name
			case "kafka":
				if other, ok := topics[out.Target]; ok {
					return usageErrorf("give each query a results topic of its own", "queries %s and %s both write to the topic %s", other, q.Name, out.Target)
				}
				topics[out.Target] = q.Name
				if err := kafka.ValidTopicName(out.Target); err != nil {
					return usageErrorf("", "query %s: results topic: %v", q.Name, err)
				}
				switch {
				case out.Target == f.topic:
					return usageErrorf("use a topic of its own", "query %s: results topic %q is the input topic", q.Name, out.Target)
				case out.Target == o.dead:
					return usageErrorf("use a topic of its own for each", "query %s: results topic %q is the dead-letter topic", q.Name, out.Target)
				case isStateTopic(o.stateTopics, out.Target):
					return usageErrorf("use another topic", "query %s: results topic %q is an internal topic of the query", q.Name, out.Target)
				}
				o.resultTopics = append(o.resultTopics, out.Target)
			}
		}
	}
	if consoles > 0 && stdoutBy != "" {
		return usageErrorf("write the JSON lines to a file (jsonl:FILE)", "the console and the JSON lines of query %s would both write to standard output", stdoutBy)
	}
	return nil
}

// queryRuns builds each named query's outputs: the console (each table
// headed by the query's name when there are several), JSON Lines, the
// results topic (produced with producer). Files opened are added to closers.
func queryRuns(stdout io.Writer, o *analyzeOptions, producer *kgo.Client, closers *[]func() error) ([]analyzer.Query, error) {
	var out []analyzer.Query
	for _, c := range o.queries {
		q := c.Query
		cols := sink.Columns{Keys: q.GroupBy, Values: c.Values}
		for _, a := range q.Aggregates {
			cols.Aggs = append(cols.Aggs, a.Alias)
		}
		if len(o.queries) > 1 {
			cols.Title = q.Name
		}
		run := analyzer.Query{Compiled: c}
		for _, dst := range q.Outputs {
			switch dst.Kind {
			case "console":
				run.Outputs = append(run.Outputs, sink.NewConsoleColumns(stdout, cols, o.rows, o.loc))
			case "jsonl":
				w := stdout
				if dst.Target != "-" {
					fh, err := os.OpenFile(dst.Target, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
					if err != nil {
						return nil, fmt.Errorf("query %s: open its JSON Lines file: %w", q.Name, err)
					}
					*closers = append(*closers, fh.Close)
					w = fh
				}
				run.Outputs = append(run.Outputs, sink.NewJSONLinesColumns(w, cols))
			case "kafka":
				run.Outputs = append(run.Outputs, sink.NewKafkaResultsColumns(producer, dst.Target, cols))
			}
		}
		out = append(out, run)
	}
	return out, nil
}

// namedDashboardQueries describes the named queries for the dashboard, and
// which of o.queries each is (-1: not shown). Session windows are not
// shown: the dashboard draws fixed windows (a note is logged).
func namedDashboardQueries(o *analyzeOptions, log *slog.Logger) ([]dashboard.Query, []int) {
	trigger := o.query.Trigger
	if o.query.AvailableNow {
		trigger = 0
	}
	var out []dashboard.Query
	index := make([]int, len(o.queries))
	for i, c := range o.queries {
		index[i] = -1
		q := c.Query
		if q.SessionGap != 0 {
			log.Info("the dashboard does not show this query: it draws fixed windows, not session windows", "query", q.Name)
			continue
		}
		dq := dashboard.Query{
			Name:      strings.ToLower(q.Name),
			Title:     q.Name,
			Input:     o.source.Topic,
			Window:    q.Window,
			Slide:     q.Slide,
			Watermark: q.Watermark,
			GroupBy:   q.GroupBy,
			Mode:      q.Mode,
			Trigger:   trigger,
		}
		for _, a := range q.Aggregates {
			dq.Measures = append(dq.Measures, dashboard.Measure{
				Name:      strings.ToLower(a.Alias),
				Aggregate: a.DefaultAlias(),
				Additive:  a.Func == window.Count || a.Func == window.Sum,
			})
		}
		if heatmapShape(q) {
			dq.View = dashboard.ViewHeatmap
		}
		if err := dq.Validate(); err != nil {
			log.Info("the dashboard does not show this query", "query", q.Name, "why", err)
			continue
		}
		index[i] = len(out)
		out = append(out, dq)
	}
	return out, index
}

// heatmapShape reports whether q is drawn as a heatmap: the guild-heatmap
// preset's shape, tumbling windows of an hour whose first aggregate is a
// count.
func heatmapShape(q query.Query) bool {
	return q.SessionGap == 0 && q.Window == time.Hour && q.Slide == time.Hour &&
		len(q.Aggregates) > 0 && q.Aggregates[0].Func == window.Count
}

// isStateTopic reports whether topic is one of the query's internal topics
// (their names as StateTopicNames gives them).
func isStateTopic(names map[analyzer.StateTopic]string, topic string) bool {
	for _, n := range names {
		if n == topic {
			return true
		}
	}
	return false
}
