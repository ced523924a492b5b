package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/analyzer"
	"github.com/cordstream/cordstream/internal/dashboard"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/window"
)

const dashboardAbout = `Serve the live dashboard and its JSON API for the whole query, whatever the
number of analyzer instances, from its results topic.

Each analyze instance holds the windows of its share of the keys, and its own
--http dashboard shows that share. With --output kafka every instance writes
the rows it emits to the results topic, in the same transaction as its state:
the compacted topic holds the latest count of every window and key of the
whole query. This command reads it (read committed: rows of batches that did
not commit are never shown), keeps the latest value of every row, and serves
the same page and API as analyze --http, with the scope "whole".

Give it the query's --window, --slide, --watermark, --group-by and --mode, as
the analyzers have them: rows of another shape are counted as bad and
skipped. A window is shown as closed once the windows seen show that the
watermark has passed its end (the latest window end seen, less the window and
the watermark delay: a watermark at least that far on). The batch a view
names is this command's own update number: each one applies what the topic
received since the previous.`

const dashboardExample = `cordstream dashboard --brokers localhost:9092 --results-topic discord_message_counts
# the analyzers of the query, each with its share:
cordstream analyze --brokers localhost:9092 --output kafka --results-topic discord_message_counts --instance-id a1
cordstream analyze --brokers localhost:9092 --output kafka --results-topic discord_message_counts --instance-id a2`

type dashboardFlags struct {
	results, groupBy, mode, http, logLevel string
	window, slide, watermark               time.Duration
}

func runDashboard(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("dashboard", e, dashboardAbout, dashboardExample)
	kf := addKafkaFlags(fs, e)
	f := &dashboardFlags{}
	fs.StringVar(&f.results, "results-topic", "", "the query's results topic (its analyzers' --results-topic)")
	fs.DurationVar(&f.window, "window", analyzer.DefaultWindow, "the query's window length")
	fs.DurationVar(&f.slide, "slide", analyzer.DefaultSlide, "the query's slide")
	fs.DurationVar(&f.watermark, "watermark", analyzer.DefaultWatermark, "the query's watermark delay")
	fs.StringVar(&f.groupBy, "group-by", analyzer.DefaultGroupBy, "the query's key columns, comma-separated")
	fs.StringVar(&f.mode, "mode", "update", "the query's output mode: update, append or complete")
	fs.StringVar(&f.http, "http", demoHTTP, "serve the dashboard on this port or host:port; a bare port is on 127.0.0.1 (a non-loopback address is readable by anyone who reaches it)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if f.results == "" {
		return usageErrorf("e.g. --results-topic discord_message_counts (the analyzers' --results-topic)", "--results-topic is required")
	}
	if err := kafka.ValidTopicName(f.results); err != nil {
		return usageErrorf("", "--results-topic: %v", err)
	}
	mode, err := window.ParseMode(f.mode)
	if err != nil {
		return usageErrorf("use --mode update, append or complete", "--mode: %v", err)
	}
	cols := splitList(f.groupBy)
	if err := analyzer.ValidateGroupBy(cols); err != nil {
		return usageErrorf("e.g. --group-by author_name or --group-by channel_id,author_name", "--%v", err)
	}
	addr, err := httpAddr("--http", f.http)
	if err != nil {
		return err
	}
	if addr == "" {
		return usageErrorf("e.g. --http 8080", "--http is empty")
	}
	level, err := parseLogLevel(f.logLevel)
	if err != nil {
		return usageErrorf("use debug, info, warn or error", "--log-level: %v", err)
	}
	q := countQuery(f.results, cols, f.window, f.slide, f.watermark, mode, 0)
	q.Scope = dashboard.ScopeWhole
	if err := q.Validate(); err != nil {
		return usageErrorf("check --window, --slide and --watermark", "%v", err)
	}
	kcfg, err := kf.config()
	if err != nil {
		return err
	}
	log := newLogger(e, level).With("command", "dashboard")
	return dashboardRun(ctx, e, q, addr, kcfg, log)
}

// dashboardRun serves the whole query's dashboard from its results topic
// until ctx ends.
func dashboardRun(ctx context.Context, e *env, q dashboard.Query, addr string, kcfg kafka.Config, log *slog.Logger) error {
	cl, err := kafka.NewClient(ctx, kcfg, log,
		kgo.ConsumeTopics(q.Input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	view, err := openLiveView(addr, q, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "cordstream dashboard: %s (the whole query, from the results topic %q)\n", view.URL(), q.Input)
	vctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- view.run(vctx) }()

	r := newResultsReader(q)
	var ferr error
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		var errs []error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", t, p, err))
			}
		})
		if len(errs) > 0 {
			log.Warn("reading the results topic failed; trying again", "err", errors.Join(errs...))
			continue
		}
		b, bad := r.batch(fetches, time.Now())
		for _, why := range bad {
			log.Warn("skipped a results record", "why", why)
		}
		if b == nil {
			continue
		}
		if err := view.d.Publish(b); err != nil {
			log.Warn("the dashboard did not take an update", "err", err)
		}
	}
	stop()
	if werr := <-done; werr != nil {
		ferr = fmt.Errorf("dashboard server: %w", werr)
	}
	return ferr
}

// resultsReader turns the records of a results topic into dashboard batches.
type resultsReader struct {
	q      dashboard.Query
	size   int64 // window length, µs
	delay  int64 // watermark delay, µs
	slide  int64
	next   int64 // the next batch id
	maxEnd int64 // the latest window end seen, µs
	wm     int64 // the watermark the windows seen imply
	said   int   // bad records reported in full so far
	lag    map[int32]int64
}

func newResultsReader(q dashboard.Query) *resultsReader {
	return &resultsReader{q: q, size: q.Window.Microseconds(), delay: q.Watermark.Microseconds(),
		slide: q.Slide.Microseconds(), lag: map[int32]int64{}}
}

// maxBadSaid is how many bad results records are reported one by one;
// later ones only in the count.
const maxBadSaid = 10

// batch applies what one poll returned: the latest value of every row it
// holds, rows of windows the implied watermark passed as closed. Nil when
// the poll held nothing to show.
func (r *resultsReader) batch(fetches kgo.Fetches, now time.Time) (*dashboard.Batch, []string) {
	rows := map[string]dashboard.Row{}
	var order []string
	var bad []string
	var counts dashboard.Counts
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		for _, rec := range p.Records {
			counts.Records++
			row, err := r.row(rec.Value)
			if err != nil {
				if counts.Bad == nil {
					counts.Bad = map[string]int64{}
				}
				counts.Bad["bad_results_record"]++
				if r.said < maxBadSaid {
					r.said++
					bad = append(bad, fmt.Sprintf("%s[%d] offset %d: %v", p.Topic, p.Partition, rec.Offset, err))
				}
				continue
			}
			counts.Counted++
			k := string(rec.Key)
			if _, seen := rows[k]; !seen {
				order = append(order, k)
			}
			rows[k] = row
			r.maxEnd = max(r.maxEnd, row.End)
		}
		if n := len(p.Records); n > 0 {
			r.lag[p.Partition] = max(p.HighWatermark-p.Records[n-1].Offset-1, 0)
		}
	})
	if counts.Records == 0 {
		return nil, bad
	}
	before := r.wm
	// The latest window end seen is at most the latest event time plus the
	// window, so the query's watermark is at least this far on.
	r.wm = max(r.wm, r.maxEnd-r.size-r.delay)
	b := &dashboard.Batch{Query: r.q.Name, ID: r.next, CommittedAt: now, Counts: counts,
		WatermarkForLate: before, Watermark: r.wm, NextWatermark: r.wm}
	r.next++
	for _, k := range order {
		row := rows[k]
		if row.End <= r.wm && r.q.Mode != window.Complete {
			b.Closed = append(b.Closed, row)
		} else {
			b.Changed = append(b.Changed, row)
		}
	}
	for p, l := range r.lag {
		b.Lag = append(b.Lag, dashboard.PartitionLag{Topic: r.q.Input, Partition: p, Lag: l})
	}
	return b, bad
}

// row decodes a results record's value: the JSON line of a row.
func (r *resultsReader) row(v []byte) (dashboard.Row, error) {
	if v == nil {
		return dashboard.Row{}, errors.New("no value (a tombstone)")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return dashboard.Row{}, fmt.Errorf("not a JSON object: %v", err)
	}
	at := func(name string) (int64, error) {
		var s string
		if err := json.Unmarshal(m[name], &s); err != nil {
			return 0, fmt.Errorf("%s: not a string", name)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", name, err)
		}
		return t.UnixMicro(), nil
	}
	var row dashboard.Row
	var err error
	if row.Start, err = at("window_start"); err != nil {
		return row, err
	}
	if row.End, err = at("window_end"); err != nil {
		return row, err
	}
	if row.End-row.Start != r.size || row.Start%r.slide != 0 {
		return row, fmt.Errorf("the window [%s, %s) is not one of this query's (--window %v --slide %v): give the analyzers' settings",
			time.UnixMicro(row.Start).UTC().Format(time.RFC3339), time.UnixMicro(row.End).UTC().Format(time.RFC3339), r.q.Window, r.q.Slide)
	}
	row.Keys = make([]window.Value, len(r.q.GroupBy))
	for i, c := range r.q.GroupBy {
		raw, ok := m[c]
		if !ok {
			return row, fmt.Errorf("no column %s: give the analyzers' --group-by", c)
		}
		if string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, &row.Keys[i].S); err != nil {
			return row, fmt.Errorf("%s: not a string or null", c)
		}
		row.Keys[i].Valid = true
	}
	var n float64
	if err := json.Unmarshal(m[dashboard.CountMeasure.Name], &n); err != nil || n < 0 || n != float64(int64(n)) {
		return row, fmt.Errorf("%s: not a count", dashboard.CountMeasure.Name)
	}
	row.Values = []float64{n}
	return row, nil
}
