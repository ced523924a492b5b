package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // --time-zone works where the system has no zoneinfo

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/analyzer"
	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/dashboard"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/metrics"
	"github.com/cordstream/cordstream/internal/query"
	"github.com/cordstream/cordstream/internal/sink"
	"github.com/cordstream/cordstream/internal/window"
)

const analyzeAbout = `Count messages per author in sliding event-time windows: the seed's Spark
Structured Streaming query, with Spark's semantics, in one process.

By default: windows of 1m sliding every 30s on message_timestamp, a 1m
watermark, a count per author_name, update output mode, a batch every 5s
(processing time, aligned to the wall clock), printed as Spark's console sink
prints.

State survives restarts (--state kafka, the default): every batch is one Kafka
transaction that commits the input offsets, the changed window counts (to
compacted internal topics named after --application-id), the results topic
records and the dead letters together. After a crash, even kill -9, the next
start restores the counts and continues where the last committed batch ended:
nothing is lost, nothing is counted twice. Several instances with the same
--group (each with its own --instance-id) share the partitions; a partition's
state moves with it. The console and jsonl outputs are not transactional: a
batch interrupted by a crash may be printed again when it is re-run (with the
same counts for the same input). --state none keeps state in memory only and
commits offsets after each batch's output is written (at-least-once, Spark's
console query without a checkpoint); --reset deletes a query's state and
offsets (stop every instance first).

Records with a message_id already counted within the watermark horizon are
dropped as duplicates (--dedup=false counts them again, as Spark does).

Records whose event_kind is update or delete are not counted (they are edits
and deletions of messages already counted). Bad records (malformed JSON, a
missing or unparseable message_timestamp, wrong types, a null value) never
stop the query: they are counted per reason, summarised on stderr per batch,
and copied to --dead-letter-topic when given. So is a record whose
message_timestamp is more than --max-event-time-ahead (1h) ahead of its own
Kafka timestamp (future_timestamp): Spark would move the watermark to it and
drop every record behind it as late. --max-event-time-ahead 0 counts it, as
Spark does.

--available-now processes what the topic holds at start, in batches of at
most --max-records-per-batch offsets, then exits, as Spark's
Trigger.AvailableNow with maxOffsetsPerTrigger does: with one partition read
from offset S and a cap K, batch N holds offsets [S+N*K, S+(N+1)*K).

--preset NAME runs a ready query instead (messages and characters per channel,
distinct active members, the heatmap's data, the most active channels, member
sessions), and --queries FILE the named queries of a YAML file, each with its
own window or session gap, aggregates, mode and outputs, all on one read of the
topic and in one transaction per batch (docs/QUERIES.md). The flags stay the
one-query shorthand.

With --state kafka each batch is a Kafka transaction, which the broker aborts
when it stays open longer than --transaction-timeout (15s). Without
--max-records-per-batch a batch therefore reads what the batches before it
show fits in a third of that time (at least 100,000 offsets); a batch aborted
for time all the same is said so and runs again in smaller batches.`

const analyzeExample = `cordstream analyze --brokers localhost:9092 --topic discord_messages
# a second instance of the same query on another machine (or with its own id):
cordstream analyze --brokers localhost:9092 --topic discord_messages --instance-id analyzer-2
# forget the query's state and offsets (every instance stopped), then start over:
cordstream analyze --brokers localhost:9092 --reset
# messages and characters per channel every 5 minutes, as JSON Lines:
cordstream analyze --brokers localhost:9092 --preset channel-activity --output jsonl
# several named queries on one read of the topic (docs/QUERIES.md):
cordstream analyze --brokers localhost:9092 --queries queries.yaml --http 8080
# replay the whole topic as JSON Lines, 1000 records per batch, then exit:
cordstream analyze --brokers localhost:9092 --group replay-1 --starting-offsets earliest \
    --available-now --max-records-per-batch 1000 --output jsonl --jsonl-file counts.jsonl`

// State kinds for --state.
const (
	analyzeStateKafka = "kafka"
	analyzeStateNone  = "none"
)

// Output names for --output.
const (
	analyzeOutConsole = "console"
	analyzeOutJSONL   = "jsonl"
	analyzeOutKafka   = "kafka"
)

// analyzeOptions are the analyze command's settings, once parsed and checked.
type analyzeOptions struct {
	query    analyzer.Config
	source   analyzer.KafkaSourceConfig
	outputs  []string
	rows     int
	loc      *time.Location
	jsonl    string // file for jsonl output; "" or "-" is stdout
	results  string // results topic
	dead     string // dead-letter topic
	create   bool
	parts    int
	replicas int
	metrics  string
	http     string    // the dashboard's address; "" for none
	view     *liveView // the dashboard already listening (the demo opens it first), or nil
	logLevel slog.Level
	registry *metrics.Registry // where the analyzer registers its metrics (a new one when nil)

	state string // analyzeStateKafka or analyzeStateNone
	appID string
	// stateTopics are the names of the query's internal topics, computed
	// from appID once.
	stateTopics    map[analyzer.StateTopic]string
	instanceID     string
	sessionTimeout time.Duration
	txnTimeout     time.Duration
	reset          bool

	// queries are the named queries of --queries or --preset (nil: the
	// flags' one query); resultTopics the topics their outputs write.
	queries      []*query.Compiled
	resultTopics []string
}

// analyzeFlags holds the raw flag values.
type analyzeFlags struct {
	topic, group, starting                 string
	noCreate                               bool
	partitions, replicationFactor          int
	window, slide, watermark, trigger      time.Duration
	maxAhead                               time.Duration
	groupBy, mode                          string
	availableNow                           bool
	maxRecords                             int64
	rows                                   int
	outputs                                stringList
	jsonlFile, resultsTopic, deadTopic, tz string
	metrics, logLevel, http                string
	state, appID, instanceID               string
	dedup, reset                           bool
	sessionTimeout, txnTimeout             time.Duration
	queriesFile, preset                    string
	given                                  map[string]bool
}

func addAnalyzeFlags(fs *flagSet) *analyzeFlags {
	f := &analyzeFlags{}
	fs.StringVar(&f.queriesFile, "queries", "", "run the named queries of this YAML `file` (docs/QUERIES.md) on one read of the topic, each with its own outputs, instead of the flags' one query")
	fs.StringVar(&f.preset, "preset", "", "run the preset query of this `name` instead of the flags' one query: "+strings.Join(query.PresetNames(), ", "))
	fs.StringVar(&f.topic, "topic", chat.DefaultTopic, "input topic")
	fs.StringVar(&f.group, "group", "cordstream-analyze", "consumer group: holds the committed offsets")
	fs.StringVar(&f.starting, "starting-offsets", analyzer.StartLatest, "where to start when the group has no committed offset: latest or earliest")
	fs.BoolVar(&f.noCreate, "no-create-topic", false, "fail instead of creating missing topics (input, results, dead-letter)")
	fs.IntVar(&f.partitions, "partitions", 1, "partitions of topics this command creates")
	fs.IntVar(&f.replicationFactor, "replication-factor", -1, "replication factor of topics this command creates (-1: the broker's default)")
	fs.DurationVar(&f.window, "window", analyzer.DefaultWindow, "window length")
	fs.DurationVar(&f.slide, "slide", analyzer.DefaultSlide, "slide between window starts (equal to --window for tumbling windows)")
	fs.DurationVar(&f.watermark, "watermark", analyzer.DefaultWatermark, "watermark delay: how late an event may be and still count")
	fs.DurationVar(&f.maxAhead, "max-event-time-ahead", analyzer.DefaultMaxEventTimeAhead, "a record whose message_timestamp is further ahead of its Kafka timestamp is a bad record (future_timestamp) instead of moving the watermark; 0 turns the check off, as in Spark")
	fs.StringVar(&f.groupBy, "group-by", analyzer.DefaultGroupBy, "key columns, comma-separated: any of "+strings.Join(analyzer.GroupColumns(), ", "))
	fs.StringVar(&f.mode, "mode", "update", "output mode: update (changed rows), append (final rows once the watermark passes) or complete (all rows)")
	fs.DurationVar(&f.trigger, "trigger", analyzer.DefaultTrigger, "processing-time trigger: a batch at every multiple of this interval")
	fs.BoolVar(&f.availableNow, "available-now", false, "process what the topic holds at start, in batches, then exit")
	fs.Int64Var(&f.maxRecords, "max-records-per-batch", 0, "cap on the offsets one batch reads (Spark's maxOffsetsPerTrigger); 0: with --state kafka, what fits in the batch's transaction (--transaction-timeout), else no cap")
	fs.IntVar(&f.rows, "rows", sink.DefaultMaxRows, "rows the console shows per batch")
	fs.Var(&f.outputs, "output", "where rows go, a `kind`: console, jsonl or kafka (repeatable or comma-separated; default console)")
	fs.StringVar(&f.jsonlFile, "jsonl-file", "", "file the jsonl output appends to (default stdout)")
	fs.StringVar(&f.resultsTopic, "results-topic", "", "topic of the kafka output (created compacted: the latest count of every window and key)")
	fs.StringVar(&f.deadTopic, "dead-letter-topic", "", "topic bad records are copied to, with reason, field, error and source headers")
	fs.StringVar(&f.tz, "time-zone", "UTC", "time zone of the console's window times (an IANA name such as Europe/Lisbon, or Local)")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics, /healthz and /readyz on this address, e.g. 127.0.0.1:9090 (a non-loopback address is readable by anyone who reaches it)")
	fs.StringVar(&f.http, "http", "", "serve the live dashboard (/) and its JSON API (/api/v1/, docs/API.md) on this port or host:port; a bare port is on 127.0.0.1 (a non-loopback address is readable by anyone who reaches it)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.state, "state", analyzeStateKafka, "where state lives: kafka (internal topics, exactly-once across restarts and instances) or none (memory only, at-least-once)")
	fs.StringVar(&f.appID, "application-id", "", "names the query's internal topics (<id>-input-state, <id>-window-state, <id>-repartition) and transactional ids (default: --group)")
	fs.StringVar(&f.instanceID, "instance-id", "", "this instance's id among the query's instances, stable across its restarts; unique per running instance (default: the host name)")
	fs.BoolVar(&f.dedup, "dedup", true, "count a message_id once within the watermark horizon (false: count duplicates, as Spark does)")
	fs.BoolVar(&f.reset, "reset", false, "delete the query's state (internal topics) and committed offsets, then exit; stop every instance first")
	fs.DurationVar(&f.sessionTimeout, "session-timeout", analyzer.DefaultSessionTimeout, "with --state kafka: how long the group waits for a silent instance before moving its partitions")
	fs.DurationVar(&f.txnTimeout, "transaction-timeout", analyzer.DefaultTransactionTimeout, "with --state kafka: how long a batch's transaction may stay open before the broker aborts it; batches are sized to fit in it, and a dead instance's partitions wait this long before another instance takes them over")
	return f
}

// options checks every flag and returns the settings, or a usage error.
func (f *analyzeFlags) options() (*analyzeOptions, error) {
	o := &analyzeOptions{rows: f.rows, jsonl: f.jsonlFile, results: f.resultsTopic, dead: f.deadTopic,
		create: !f.noCreate, parts: f.partitions, replicas: f.replicationFactor, metrics: f.metrics}

	mode, err := window.ParseMode(f.mode)
	if err != nil {
		return nil, usageErrorf("use --mode update, append or complete", "--mode: %v", err)
	}
	if f.availableNow && f.given["trigger"] {
		return nil, usageErrorf("give one of them: --trigger runs forever, --available-now stops when done",
			"--trigger and --available-now are both given")
	}
	cols := splitList(f.groupBy)
	if err := analyzer.ValidateGroupBy(cols); err != nil {
		return nil, usageErrorf("e.g. --group-by author_name or --group-by channel_id,author_name", "--%v", err)
	}
	o.query = analyzer.Config{
		Window: f.window, Slide: f.slide, Watermark: f.watermark, GroupBy: cols,
		Mode: mode, Trigger: f.trigger, AvailableNow: f.availableNow, Dedup: f.dedup,
		MaxEventTimeAhead: f.maxAhead,
	}
	if err := o.query.Validate(); err != nil {
		return nil, usageErrorf("check --window, --slide, --watermark, --trigger and --max-event-time-ahead", "%v", err)
	}
	o.source = analyzer.KafkaSourceConfig{
		Topic: f.topic, Group: f.group, StartingOffsets: f.starting,
		AvailableNow: f.availableNow, MaxRecordsPerBatch: f.maxRecords,
	}
	if err := o.source.Validate(); err != nil {
		return nil, usageErrorf("", "%v", err)
	}
	if f.rows < 1 {
		return nil, usageErrorf("e.g. --rows 20", "--rows %d: must be at least 1", f.rows)
	}
	if err := f.stateOptions(o); err != nil {
		return nil, err
	}
	if o.loc, err = time.LoadLocation(f.tz); err != nil || f.tz == "" {
		return nil, usageErrorf("use an IANA time zone name such as UTC, Europe/Lisbon or America/Sao_Paulo",
			"--time-zone %q: unknown time zone", f.tz)
	}
	if o.logLevel, err = parseLogLevel(f.logLevel); err != nil {
		return nil, usageErrorf("use debug, info, warn or error", "--log-level: %v", err)
	}
	if o.http, err = httpAddr("--http", f.http); err != nil {
		return nil, err
	}
	if o.http != "" && o.http == o.metrics {
		return nil, usageErrorf("give each its own port", "--http and --metrics are the same address %s", o.http)
	}
	if f.partitions < 1 || f.partitions > 1<<20 {
		return nil, usageErrorf("e.g. --partitions 1", "--partitions %d: must be at least 1", f.partitions)
	}
	if f.replicationFactor == 0 || f.replicationFactor < -1 || f.replicationFactor > 1<<14 {
		return nil, usageErrorf("use -1 for the broker's default, or 1 up to the number of brokers",
			"--replication-factor %d: invalid", f.replicationFactor)
	}

	o.outputs = f.outputs
	if len(o.outputs) == 0 {
		o.outputs = []string{analyzeOutConsole}
	}
	seen := map[string]bool{}
	for _, out := range o.outputs {
		switch out {
		case analyzeOutConsole, analyzeOutJSONL, analyzeOutKafka:
		default:
			return nil, usageErrorf("use --output console, jsonl or kafka", "--output %q: unknown output", out)
		}
		if seen[out] {
			return nil, usageErrorf("", "--output %s given twice", out)
		}
		seen[out] = true
	}
	toStdout := o.jsonl == "" || o.jsonl == "-"
	switch {
	case seen[analyzeOutConsole] && seen[analyzeOutJSONL] && toStdout:
		return nil, usageErrorf("write the JSON lines to a file with --jsonl-file FILE",
			"--output console and --output jsonl would both write to stdout")
	case o.jsonl != "" && !seen[analyzeOutJSONL]:
		return nil, usageErrorf("add --output jsonl", "--jsonl-file is only used by the jsonl output")
	case seen[analyzeOutKafka] && o.results == "":
		return nil, usageErrorf("e.g. --results-topic discord_message_counts", "--output kafka needs --results-topic")
	case o.results != "" && !seen[analyzeOutKafka]:
		return nil, usageErrorf("add --output kafka", "--results-topic is only used by the kafka output")
	}
	for _, t := range []struct{ flag, name string }{{"--results-topic", o.results}, {"--dead-letter-topic", o.dead}} {
		if t.name == "" {
			continue
		}
		if err := kafka.ValidTopicName(t.name); err != nil {
			return nil, usageErrorf("", "%s: %v", t.flag, err)
		}
		if t.name == f.topic {
			return nil, usageErrorf("use a topic of its own", "%s %q is the input topic", t.flag, t.name)
		}
	}
	if o.results != "" && o.results == o.dead {
		return nil, usageErrorf("use a topic of its own for each", "--results-topic and --dead-letter-topic are the same topic")
	}
	if err := f.namedQueries(o); err != nil {
		return nil, err
	}
	return o, nil
}

// stateOptions checks --state, --application-id, --instance-id,
// --session-timeout and --reset.
func (f *analyzeFlags) stateOptions(o *analyzeOptions) error {
	o.state, o.reset, o.sessionTimeout, o.txnTimeout = f.state, f.reset, f.sessionTimeout, f.txnTimeout
	switch f.state {
	case analyzeStateKafka, analyzeStateNone:
	default:
		return usageErrorf("use --state kafka (durable, exactly-once) or --state none (memory only)", "--state %q: unknown", f.state)
	}
	o.appID = f.appID
	if o.appID == "" {
		o.appID = f.group
	}
	o.stateTopics = analyzer.StateTopicNames(o.appID)
	for _, n := range o.stateTopics {
		if err := kafka.ValidTopicName(n); err != nil {
			return usageErrorf("use letters, digits, '.', '_' and '-', e.g. --application-id discord-counts",
				"--application-id %q: it names internal topics: %v", o.appID, err)
		}
	}
	for _, n := range o.stateTopics {
		if n == f.topic || n == f.resultsTopic || n == f.deadTopic {
			return usageErrorf("use another --application-id", "--application-id %q: its internal topic %s is a topic this command reads or writes", o.appID, n)
		}
	}
	o.instanceID = f.instanceID
	if o.instanceID == "" {
		h, err := os.Hostname()
		if err != nil || kafka.ValidTopicName(h) != nil {
			h = "analyzer"
		}
		o.instanceID = h
	}
	if err := kafka.ValidTopicName(o.instanceID); err != nil {
		return usageErrorf("use letters, digits, '.', '_' and '-', e.g. --instance-id analyzer-1", "--instance-id %q: invalid", o.instanceID)
	}
	if f.sessionTimeout < 6*time.Second || f.sessionTimeout > 30*time.Minute {
		return usageErrorf("e.g. --session-timeout 10s (Kafka accepts 6s to 30m by default)", "--session-timeout %v: out of range", f.sessionTimeout)
	}
	if f.txnTimeout < time.Second || f.txnTimeout > 15*time.Minute {
		return usageErrorf("e.g. --transaction-timeout 15s (at least 1s; Kafka accepts up to its transaction.max.timeout.ms, 15m by default)", "--transaction-timeout %v: out of range", f.txnTimeout)
	}
	return nil
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func runAnalyze(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("analyze", e, analyzeAbout, analyzeExample)
	kf := addKafkaFlags(fs, e)
	f := addAnalyzeFlags(fs)
	if err := parse(fs, e, args); err != nil {
		return err
	}
	f.given = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
	o, err := f.options()
	if err != nil {
		return err
	}
	kcfg, err := kf.config()
	if err != nil {
		return err
	}
	log := newLogger(e, o.logLevel).With("command", "analyze")
	if o.reset {
		return analyzeReset(ctx, e, o, kcfg, log)
	}
	return analyzeRun(ctx, e, o, kcfg, log)
}

// analyzeRun connects, prepares the topics and runs the query until it ends.
// A stop requested before the query started is not an error.
func analyzeRun(ctx context.Context, e *env, o *analyzeOptions, kcfg kafka.Config, log *slog.Logger) (err error) {
	started := false
	defer func() {
		if err != nil && !started && ctx.Err() != nil {
			log.Info("stopped before the query started", "err", err)
			err = nil
		}
	}()
	view := o.view
	var shown []int // with named queries: each one's place on the dashboard
	var qs []dashboard.Query
	if view == nil && o.http != "" {
		qs = []dashboard.Query{dashboardQuery(o)}
		if o.queries != nil {
			qs, shown = namedDashboardQueries(o, log)
		}
		if len(qs) == 0 {
			log.Warn("--http: no query can be shown on the dashboard; it is not served")
		} else {
			if view, err = openLiveViews(o.http, qs, log); err != nil {
				return err
			}
			log.Info("dashboard", "url", view.URL())
		}
	}
	if view != nil {
		// Served from the start: the page says it waits for the first batch.
		vctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- view.run(vctx) }()
		defer func() {
			stop()
			if verr := <-done; verr != nil && err == nil {
				err = fmt.Errorf("dashboard server: %w", verr)
			}
		}()
	}
	// One client for administration and for the outputs that produce.
	cl, err := kafka.NewClient(ctx, kcfg, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := analyzeTopics(ctx, cl, o, log); err != nil {
		return err
	}

	var closers []func() error
	defer func() {
		for _, c := range closers {
			if cerr := c(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	d := analyzer.Deps{Log: log, Stderr: e.stderr, MetricsAddr: o.metrics, Metrics: o.registry}
	if view != nil {
		d.Dashboard, d.QueryName = view.d, view.q.Name
	}
	for _, out := range o.outputs {
		switch out {
		case analyzeOutConsole:
			d.Outputs = append(d.Outputs, sink.NewConsole(e.stdout, o.query.GroupBy, o.rows, o.loc))
		case analyzeOutJSONL:
			var w io.Writer = e.stdout
			if o.jsonl != "" && o.jsonl != "-" {
				fh, err := os.OpenFile(o.jsonl, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
				if err != nil {
					return fmt.Errorf("open --jsonl-file: %w", err)
				}
				closers = append(closers, fh.Close)
				w = fh
			}
			d.Outputs = append(d.Outputs, sink.NewJSONLines(w, o.query.GroupBy))
		case analyzeOutKafka: // below, once the producing client is known
		}
	}
	// With durable state the results and dead letters are produced in each
	// batch's transaction, by the transactional client.
	producer := cl
	if o.state == analyzeStateKafka {
		st, err := analyzeState(ctx, cl, o, kcfg, log)
		if err != nil {
			return err
		}
		defer st.Close()
		d.Source, producer = st, st.Client()
	} else {
		src, err := analyzer.NewKafkaSource(ctx, kcfg, o.source, log)
		if err != nil {
			return err
		}
		defer src.Close()
		d.Source = src
	}
	if o.results != "" {
		d.Outputs = append(d.Outputs, sink.NewKafkaResults(producer, o.results, o.query.GroupBy))
	}
	if o.queries != nil {
		d.Outputs = nil
		if d.Queries, err = queryRuns(e.stdout, o, producer, &closers); err != nil {
			return err
		}
		for i := range d.Queries {
			if view != nil && shown != nil && shown[i] >= 0 {
				d.Queries[i].Dashboard, d.Queries[i].DashboardName = view.d, qs[shown[i]].Name
			}
		}
	}
	query := o.query
	if query.MaxKeyBytes, err = analyzeKeyLimit(ctx, producer, o); err != nil {
		return err
	}
	if o.dead != "" {
		limit, err := analyzer.RecordLimit(ctx, producer, o.dead)
		if err != nil {
			return fmt.Errorf("read the record size limit of the dead-letter topic: %w", err)
		}
		d.DeadLetters = sink.NewDeadLetter(producer, o.dead, limit)
	}
	a, err := analyzer.New(query, d)
	if err != nil {
		return err
	}

	// The first Ctrl-C (ctx) stops gracefully: the batch in flight finishes
	// and commits. A second one aborts it.
	watched := onSecondStop(ctx, log,
		"stopping: a batch in flight finishes and commits first (press Ctrl-C again to abort it)",
		"aborting the batch in flight; its input will be read again", a.Abort)
	started = true
	err = a.Run(ctx)
	watched()
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// dashboardQuery describes the query of o for its dashboard.
func dashboardQuery(o *analyzeOptions) dashboard.Query {
	q := o.query
	trigger := q.Trigger
	if q.AvailableNow {
		trigger = 0
	}
	return countQuery(o.source.Topic, q.GroupBy, q.Window, q.Slide, q.Watermark, q.Mode, trigger)
}

// countQuery describes a count of messages per key for a dashboard. Its
// name says what it counts: messages_per_author for --group-by author_name,
// messages_per_channel_and_author for channel_id,author_name.
func countQuery(input string, cols []string, size, slide, delay time.Duration, mode window.Mode, trigger time.Duration) dashboard.Query {
	words := make([]string, len(cols))
	for i, c := range cols {
		words[i] = strings.TrimSuffix(strings.TrimSuffix(c, "_name"), "_id")
	}
	name := "messages_per_" + strings.Join(words, "_and_")
	if len(name) > 64 {
		name = "messages"
	}
	return dashboard.Query{
		Name:      name,
		Title:     "Messages per " + strings.Join(words, " and "),
		Input:     input,
		Window:    size,
		Slide:     slide,
		Watermark: delay,
		GroupBy:   cols,
		Measures:  []dashboard.Measure{dashboard.CountMeasure},
		Mode:      mode,
		Trigger:   trigger,
	}
}

// analyzeKeyLimit reads how long the group-by values of a record may be
// for the records that hold them (window state, partial counts, results
// rows) to fit in what Kafka accepts; 0 when none is written to Kafka.
func analyzeKeyLimit(ctx context.Context, producer *kgo.Client, o *analyzeOptions) (int, error) {
	var stores []string
	if o.results != "" {
		stores = append(stores, o.results)
	}
	stores = append(stores, o.resultTopics...)
	if o.state == analyzeStateKafka {
		stores = append(stores, o.stateTopics[analyzer.WindowState], o.stateTopics[analyzer.Repartition])
	}
	if len(stores) == 0 {
		return 0, nil
	}
	limit, err := analyzer.RecordLimit(ctx, producer, stores...)
	if err != nil {
		return 0, fmt.Errorf("read the record size limit of the topics that store counts: %w", err)
	}
	return analyzer.KeyLimit(limit), nil
}

// analyzeTopics creates the missing topics, or with --no-create-topic checks
// that they exist.
func analyzeTopics(ctx context.Context, cl *kgo.Client, o *analyzeOptions, log *slog.Logger) error {
	specs := []kafka.TopicSpec{{Name: o.source.Topic}}
	if o.results != "" {
		specs = append(specs, kafka.TopicSpec{Name: o.results, Configs: sink.ResultsTopicConfigs})
	}
	for _, t := range o.resultTopics {
		specs = append(specs, kafka.TopicSpec{Name: t, Configs: sink.ResultsTopicConfigs})
	}
	if o.dead != "" {
		specs = append(specs, kafka.TopicSpec{Name: o.dead})
	}
	for _, s := range specs {
		s.Partitions, s.ReplicationFactor = int32(o.parts), int16(o.replicas)
		if !o.create {
			if _, err := kafka.DescribeTopic(ctx, cl, s.Name); err != nil {
				return err
			}
			continue
		}
		created, err := kafka.EnsureTopic(ctx, cl, s)
		if err != nil {
			return err
		}
		if created {
			log.Info("created topic", "topic", s.Name, "partitions", s.Partitions, "replication_factor", s.ReplicationFactor, "configs", fmt.Sprint(s.Configs))
		}
	}
	if o.results != "" {
		info, err := kafka.DescribeTopic(ctx, cl, o.results)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(info.Configs, func(c kafka.TopicConfig) bool { return c.Key == "cleanup.policy" })
		if i < 0 || !strings.Contains(info.Configs[i].Value, "compact") {
			log.Warn("the results topic is not compacted: it keeps every update of every row, not just the latest",
				"topic", o.results, "fix", "kafka-configs --alter --entity-type topics --entity-name "+o.results+" --add-config cleanup.policy=compact")
		}
	}
	return nil
}

// analyzeState prepares the internal topics and joins the group with the
// transactional state backend.
func analyzeState(ctx context.Context, cl *kgo.Client, o *analyzeOptions, kcfg kafka.Config, log *slog.Logger) (*analyzer.KafkaState, error) {
	info, err := kafka.DescribeTopic(ctx, cl, o.source.Topic)
	if err != nil {
		return nil, err
	}
	shuffle, err := analyzer.EnsureStateTopics(ctx, cl, o.appID, int32(len(info.Partitions)), int16(o.replicas), log)
	if err != nil {
		return nil, err
	}
	return analyzer.NewKafkaState(ctx, kcfg, analyzer.KafkaStateConfig{
		KafkaSourceConfig:  o.source,
		ApplicationID:      o.appID,
		InstanceID:         o.instanceID,
		Shuffle:            shuffle,
		SessionTimeout:     o.sessionTimeout,
		TransactionTimeout: o.txnTimeout,
		Trigger:            o.query.Trigger,
	}, log)
}

// analyzeReset deletes a query's committed offsets (the consumer group) and
// its internal topics.
func analyzeReset(ctx context.Context, e *env, o *analyzeOptions, kcfg kafka.Config, log *slog.Logger) error {
	cl, err := kafka.NewClient(ctx, kcfg, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.DeleteGroup(ctx, o.source.Group)
	switch {
	case err == nil:
		fmt.Fprintf(e.stdout, "deleted the consumer group %s (its committed offsets)\n", o.source.Group)
	case errors.Is(err, kerr.GroupIDNotFound):
		fmt.Fprintf(e.stdout, "no consumer group %s (no committed offsets)\n", o.source.Group)
	case errors.Is(err, kerr.NonEmptyGroup):
		return &resetError{fmt.Errorf("consumer group %s still has members: an instance of the query is running", o.source.Group)}
	default:
		if resp.Err != nil {
			err = resp.Err
		}
		return fmt.Errorf("delete consumer group %s: %w", o.source.Group, err)
	}
	names := o.stateTopics
	for _, t := range []analyzer.StateTopic{analyzer.InputState, analyzer.WindowState, analyzer.Repartition, analyzer.Batches} {
		err := kafka.DeleteTopic(ctx, cl, names[t])
		var nf *kafka.TopicNotFoundError
		switch {
		case err == nil:
			fmt.Fprintf(e.stdout, "deleted the internal topic %s\n", names[t])
		case errors.As(err, &nf):
		default:
			return err
		}
	}
	fmt.Fprintf(e.stdout, "the query %s starts over at its next start (from --starting-offsets); its results and dead-letter topics are kept\n", o.appID)
	return nil
}

// resetError is a reset refused because the query runs.
type resetError struct{ err error }

func (e *resetError) Error() string { return e.err.Error() }
func (e *resetError) Unwrap() error { return e.err }
func (e *resetError) Hint() string {
	return "stop every instance of the query (same --group), wait for the session timeout, then run --reset again"
}
