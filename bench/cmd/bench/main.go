//go:build linux

// Command bench measures cordstream against the broker's own limit and
// against Spark Structured Streaming, side by side in one run, on a real
// local Kafka broker:
//
//	(a) raw consume: a franz-go consumer that only counts records;
//	(b) cordstream analyze --available-now with the seed's query;
//	(c) the seed's query in Spark (spark/discord_consumer.py, local[2],
//	    availableNow);
//	(f) the seed's query in Kafka Streams (bench/streams), exactly-once v2
//	    and at-least-once;
//	(d) the bot: simulated Discord -> cordstream bot -> Kafka, and the
//	    seed's own producer (bench/seedproducer: discord.py + kafka-python)
//	    in its place;
//	(e) end to end: simulated Discord -> bot -> Kafka -> analyzer.
//
// It loads --messages generated messages (bench/workload) into a topic of
// each --partitions count, measures, and writes a Markdown table and a JSON
// file. On smaller topics without late data it checks that Kafka Streams'
// final counts agree with cordstream's. --soak runs the demo-like pipeline
// at a steady rate instead and samples memory. See docs/BENCHMARKS.md;
// bench/run is the entry point.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cordstream/cordstream/bench/workload"
	"github.com/cordstream/cordstream/internal/kafka"
)

type config struct {
	brokers           string
	messages          int64
	partitions        []int
	batchRecords      int64
	repeat            int
	sparkRepeat       int
	skipSpark         bool
	skipStreams       bool
	streamsLib        string
	streamsRepeat     int
	streamsJVMOpts    []string
	streamsThreads    int
	streamsGuarantees []string
	checkMessages     int64
	checkEventRate    float64
	skipSeedProducer  bool
	seedPython        string
	skipBot           bool
	skipE2E           bool
	skipReplay        bool
	skipDiagnose      bool
	skipStateNone     bool
	reuseTopics       bool
	keepTopics        bool
	topicPrefix       string
	seed              uint64
	authors           int
	eventRate         float64
	cordstream        string
	sparkPython       string
	sparkMaster       string
	sparkShuffle      int
	botRate           float64
	botDuration       time.Duration
	botBurst          int
	botConfigs        []string
	e2eRate           float64
	e2eDuration       time.Duration
	e2eTrigger        time.Duration
	soak              time.Duration
	soakRate          float64
	soakEvery         time.Duration
	soakWarmup        time.Duration
	out               string
	profile           bool
	kafkaVersion      string
}

// harness holds what every measurement needs.
type harness struct {
	cfg     config
	brokers string
	kcfg    kafka.Config
	root    string // repository root
	self    string // this binary, for the raw consumer child
	work    string // scratch directory
	bin     string // the cordstream binary
	log     *slog.Logger
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "consume" {
		if err := runRawConsume(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench consume:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `Usage: bench/run [flags]

bench/run starts a broker, installs what Spark, Kafka Streams and the seed's
producer need (cached), then runs this command (bench/cmd/bench) with the
same flags.

Loads --messages generated messages into a real Kafka topic of each
--partitions count, then measures, side by side: a raw franz-go consumer,
cordstream analyze --available-now, the Spark job and the Kafka Streams
application (all three with the seed's query), the bot (simulated Discord ->
bot -> Kafka) beside the seed's producer (discord.py + kafka-python), and the
pipeline end to end. Checks that Kafka Streams' final counts agree with
cordstream's on topics without late data. Writes <out>/results.md and
<out>/results.json.

Quick run:   bench/run --messages 200000 --skip-spark --repeat 1
Soak:        bench/run --soak 30m

Flags:
`

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	def := os.Getenv("CORDSTREAM_BENCH_BROKERS")
	if def == "" {
		def = "127.0.0.1:9092"
	}
	fs.StringVar(&c.brokers, "brokers", def, "Kafka bootstrap brokers (also $CORDSTREAM_BENCH_BROKERS)")
	fs.Int64Var(&c.messages, "messages", 5_000_000, "messages to load into each topic")
	parts := fs.String("partitions", "1,4", "partition counts of the loaded topics, comma-separated")
	fs.Int64Var(&c.batchRecords, "batch-records", 500_000, "records per micro-batch for cordstream (--max-records-per-batch) and Spark (maxOffsetsPerTrigger); 0: one batch for everything")
	fs.IntVar(&c.repeat, "repeat", 3, "runs of the raw consumer and of cordstream per topic (the median is reported)")
	fs.IntVar(&c.sparkRepeat, "spark-repeat", 1, "runs of Spark per topic")
	fs.BoolVar(&c.skipSpark, "skip-spark", false, "do not run Spark")
	fs.BoolVar(&c.skipStreams, "skip-streams", false, "do not run Kafka Streams (nor the agreement check)")
	fs.StringVar(&c.streamsLib, "streams-lib", os.Getenv("CORDSTREAM_BENCH_STREAMS_LIB"), "directory of the Kafka Streams application's jars (default $CORDSTREAM_BENCH_STREAMS_LIB, which bench/run sets from bench/streams/setup.sh)")
	fs.IntVar(&c.streamsRepeat, "streams-repeat", 1, "runs of Kafka Streams per topic and guarantee")
	fs.IntVar(&c.streamsThreads, "streams-threads", 1, "Kafka Streams' num.stream.threads (its default: 1)")
	jvmOpts := fs.String("streams-jvm-opts", "", "options for the Kafka Streams application's JVM, space-separated, e.g. -Xmx512m (default none: the JVM's own, a heap of up to a quarter of the RAM)")
	guarantees := fs.String("streams-guarantee", GuaranteeEOS+","+GuaranteeALOS, "Kafka Streams processing guarantees to measure, comma-separated: "+GuaranteeEOS+", "+GuaranteeALOS)
	fs.Int64Var(&c.checkMessages, "check-messages", 300_000, "messages of the agreement check's topics (the workload without late messages); 0: no check")
	fs.Float64Var(&c.checkEventRate, "check-event-rate", 1_000, "messages per second of event time in the agreement check's topics (1,000: 300,000 messages span 5 minutes, ten windows)")
	fs.BoolVar(&c.skipSeedProducer, "skip-seed-producer", false, "do not measure the seed's producer (discord.py + kafka-python) in (d)")
	fs.StringVar(&c.seedPython, "seed-python", os.Getenv("CORDSTREAM_BENCH_SEED_PYTHON"), "Python with discord.py and kafka-python (default $CORDSTREAM_BENCH_SEED_PYTHON, which bench/run sets from bench/seedproducer/setup.sh)")
	fs.BoolVar(&c.skipBot, "skip-bot", false, "do not measure the bot (d)")
	fs.BoolVar(&c.skipE2E, "skip-e2e", false, "do not measure end to end (e)")
	fs.BoolVar(&c.skipDiagnose, "skip-diagnose", false, "do not run the raw consumer with decode + window in its loop (the cost of the per-record work alone)")
	fs.BoolVar(&c.skipStateNone, "skip-state-none", false, "do not also measure cordstream analyze --state none --dedup=false")
	fs.BoolVar(&c.skipReplay, "skip-replay", false, "do not load topics nor measure (a), (b), (c), (f) nor check agreement")
	fs.BoolVar(&c.reuseTopics, "reuse-topics", false, "keep using loaded topics of the same size (named by --topic-prefix, --messages, --seed) instead of loading them again")
	fs.BoolVar(&c.keepTopics, "keep-topics", false, "do not delete the loaded topics at the end")
	fs.StringVar(&c.topicPrefix, "topic-prefix", "cordstream-bench", "prefix of the topics the benchmark creates")
	fs.Uint64Var(&c.seed, "seed", 1, "workload seed")
	fs.IntVar(&c.authors, "authors", 10_000, "distinct authors (activity Zipf-skewed)")
	fs.Float64Var(&c.eventRate, "event-rate", 5_000, "messages per second of event time in the loaded data")
	fs.StringVar(&c.cordstream, "cordstream", "", "cordstream binary to measure (default: built from this tree)")
	fs.StringVar(&c.sparkPython, "spark-python", os.Getenv("CORDSTREAM_SPARK_PYTHON"), "Python with pyspark (default $CORDSTREAM_SPARK_PYTHON, set by spark/setup.sh's env file)")
	fs.StringVar(&c.sparkMaster, "spark-master", "local[2]", "Spark master")
	fs.IntVar(&c.sparkShuffle, "spark-shuffle-partitions", 2, "spark.sql.shuffle.partitions (Spark's default is 200; 0 keeps it)")
	fs.Float64Var(&c.botRate, "bot-rate", 1000, "messages/s of the steady phase of (d) (its latency is the target)")
	fs.DurationVar(&c.botDuration, "bot-duration", 20*time.Second, "length of the steady phase of (d)")
	fs.IntVar(&c.botBurst, "bot-burst", 30_000, "messages posted as fast as possible in the throughput phase of (d)")
	botConfigs := fs.String("bot-spool", "group,always,100ms,off", "the bot's spool settings to measure in (d), comma-separated: group (the default: a continuous group commit, at most one fsync every 10 ms, while reading goes on), always (fsync before the next event), a period such as 100ms, or off (no spool); the first is also used in (e) and --soak")
	fs.Float64Var(&c.e2eRate, "e2e-rate", 1000, "messages/s of (e)")
	fs.DurationVar(&c.e2eDuration, "e2e-duration", 30*time.Second, "length of (e)")
	fs.DurationVar(&c.e2eTrigger, "e2e-trigger", 5*time.Second, "analyzer trigger in (e) and --soak (the seed's 5 s)")
	fs.DurationVar(&c.soak, "soak", 0, "run only the soak: the pipeline at --soak-rate for this long, sampling memory")
	fs.Float64Var(&c.soakRate, "soak-rate", 500, "messages/s of the soak")
	fs.DurationVar(&c.soakEvery, "soak-interval", 10*time.Second, "memory sampling interval of the soak")
	fs.DurationVar(&c.soakWarmup, "soak-warmup", 0, "samples left out of the soak's slope while state fills up (the bot's 100,000 recent ids, the analyzer's windows); 0: a third of --soak, at least 3m")
	fs.StringVar(&c.out, "out", "bench/results", "directory for results.md, results.json and profiles")
	fs.BoolVar(&c.profile, "profile", false, "also run the analyzer once per topic under a CPU profile (written to <out>; pprof -top in the results)")
	fs.StringVar(&c.kafkaVersion, "kafka-version", os.Getenv("CORDSTREAM_KAFKA_VERSION"), "broker version, for the report")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	for _, b := range strings.Split(*botConfigs, ",") {
		b = strings.TrimSpace(b)
		if _, err := time.ParseDuration(b); err != nil && b != "group" && b != "always" && b != "off" {
			return c, usageError{fmt.Sprintf("--bot-spool %q: want group, always, off or a period such as 100ms", b)}
		}
		c.botConfigs = append(c.botConfigs, b)
	}
	c.streamsJVMOpts = strings.Fields(*jvmOpts)
	for _, g := range strings.Split(*guarantees, ",") {
		g = strings.TrimSpace(g)
		if g != GuaranteeEOS && g != GuaranteeALOS {
			return c, usageError{fmt.Sprintf("--streams-guarantee %q: want %s, %s or both", g, GuaranteeEOS, GuaranteeALOS)}
		}
		if !slices.Contains(c.streamsGuarantees, g) {
			c.streamsGuarantees = append(c.streamsGuarantees, g)
		}
	}
	for _, p := range strings.Split(*parts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 64 {
			return c, usageError{fmt.Sprintf("--partitions %q: want counts from 1 to 64, e.g. 1,4", *parts)}
		}
		if !slices.Contains(c.partitions, n) {
			c.partitions = append(c.partitions, n)
		}
	}
	switch {
	case c.messages < 1:
		return c, usageError{"--messages must be at least 1"}
	case c.repeat < 1 || c.sparkRepeat < 1 || c.streamsRepeat < 1 || c.streamsThreads < 1:
		return c, usageError{"--repeat, --spark-repeat, --streams-repeat and --streams-threads must be at least 1"}
	case c.checkMessages < 0 || c.checkEventRate <= 0:
		return c, usageError{"--check-messages must not be negative and --check-event-rate must be positive"}
	case c.batchRecords < 0:
		return c, usageError{"--batch-records must not be negative"}
	case c.botRate <= 0 || c.e2eRate <= 0 || c.soakRate <= 0:
		return c, usageError{"--bot-rate, --e2e-rate and --soak-rate must be positive"}
	case c.soak < 0 || c.soakEvery <= 0:
		return c, usageError{"--soak and --soak-interval must be positive"}
	}
	if !c.skipSpark && !c.skipReplay && c.soak == 0 && c.sparkPython == "" {
		return c, usageError{"no Python with pyspark: run spark/setup.sh and source its env file (. \"$(spark/setup.sh --env-file)\"), pass --spark-python, or --skip-spark"}
	}
	if !c.skipStreams && !c.skipReplay && c.soak == 0 && c.streamsLib == "" {
		return c, usageError{"no Kafka Streams application: build it with bench/streams/setup.sh and pass the directory it prints with --streams-lib (bench/run does both), or --skip-streams"}
	}
	if !c.skipSeedProducer && !c.skipBot && c.soak == 0 && c.seedPython == "" {
		return c, usageError{"no Python with discord.py and kafka-python: run bench/seedproducer/setup.sh and pass the Python it prints with --seed-python (bench/run does both), or --skip-seed-producer"}
	}
	return c, nil
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "bench")
	h := &harness{cfg: cfg, brokers: cfg.brokers, log: log}
	h.kcfg = kafka.Config{Brokers: strings.Split(cfg.brokers, ","), ClientID: "cordstream-bench"}
	if err := h.kcfg.Validate(); err != nil {
		return usageError{fmt.Sprintf("--brokers: %v", err)}
	}
	if h.root, err = repoRoot(); err != nil {
		return err
	}
	if h.self, err = os.Executable(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	if h.work, err = os.MkdirTemp("", "cordstream-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(h.work)
	if h.bin, err = h.buildCordstream(ctx); err != nil {
		return err
	}

	rep := &Report{Started: time.Now().UTC().Format(time.RFC3339), Machine: machineInfo(cfg.kafkaVersion), Config: reportConfig(cfg),
		Build: h.buildInfo()}
	if cfg.soak > 0 {
		s, err := h.runSoak(ctx)
		rep.Soak = s
		if werr := h.writeReport(rep, true); werr != nil && err == nil {
			err = werr
		}
		return err
	}
	if !cfg.skipReplay {
		if err := h.runReplays(ctx, rep); err != nil {
			_ = h.writeReport(rep, true)
			return err
		}
	}
	if !cfg.skipBot {
		for _, sc := range cfg.botConfigs {
			b, err := h.runBot(ctx, sc)
			if err != nil {
				_ = h.writeReport(rep, true)
				return fmt.Errorf("bot (--spool-sync %s): %w", sc, err)
			}
			rep.Bot = append(rep.Bot, b)
		}
		if !cfg.skipSeedProducer {
			// The seed's producer is a peer: its failure is reported, and
			// the benchmark goes on.
			b, err := h.runSeedProducer(ctx)
			if ctx.Err() != nil {
				_ = h.writeReport(rep, true)
				return ctx.Err()
			}
			if err != nil {
				h.log.Warn("the seed's producer failed", "err", lastLines(err.Error(), 5))
				rep.SeedProducerErr = lastLines(err.Error(), 20)
			} else {
				rep.Bot = append(rep.Bot, b)
			}
		}
	}
	if !cfg.skipE2E {
		e, err := h.runE2E(ctx)
		if err != nil {
			_ = h.writeReport(rep, true)
			return fmt.Errorf("end to end: %w", err)
		}
		rep.E2E = e
	}
	return h.writeReport(rep, true)
}

// runReplays loads the topics and runs (a), (b) and (c) on each.
func (h *harness) runReplays(ctx context.Context, rep *Report) error {
	cfg := h.cfg
	topics := map[int]string{}
	var names []string
	for _, p := range cfg.partitions {
		t := fmt.Sprintf("%s-n%d-s%d-p%d", cfg.topicPrefix, cfg.messages, cfg.seed, p)
		if !cfg.reuseTopics {
			t += fmt.Sprintf("-%d", time.Now().Unix())
		}
		topics[p] = t
		names = append(names, t)
	}
	if !cfg.keepTopics && !cfg.reuseTopics {
		defer deleteTopics(h.kcfg, names, h.log)
	}
	h.log.Info("loading", "messages", cfg.messages, "topics", strings.Join(names, ","))
	ld, err := loadTopics(ctx, h.kcfg, topics, cfg.messages,
		workload.Config{Seed: cfg.seed, Authors: cfg.authors, EventRate: cfg.eventRate}, cfg.reuseTopics, h.log)
	if err != nil {
		return err
	}
	rep.Load = &ld
	h.log.Info("loaded", "seconds", fmt.Sprintf("%.1f", ld.Seconds), "avg_bytes", int(ld.AvgBytes), "reused", ld.Reused)

	// Time to the first batch with the seed's live settings.
	for range cfg.repeat {
		st, err := h.runStartup(ctx, KindCordstream, topics[cfg.partitions[0]])
		if err != nil {
			return fmt.Errorf("startup of cordstream: %w", err)
		}
		rep.Startup = append(rep.Startup, st)
	}
	if !cfg.skipSpark {
		st, err := h.runStartup(ctx, KindSpark, topics[cfg.partitions[0]])
		if err != nil {
			return fmt.Errorf("startup of Spark: %w", err)
		}
		rep.Startup = append(rep.Startup, st)
	}

	for _, p := range cfg.partitions {
		topic := topics[p]
		// A first read warms the page cache and the broker; not reported.
		if _, err := h.runRaw(ctx, topic, p, false); err != nil {
			return fmt.Errorf("warm-up read of %s: %w", topic, err)
		}
		res := &ReplayResult{Partitions: p, Topic: topic}
		rep.Replays = append(rep.Replays, res)
		for i := range cfg.repeat {
			// measure runs one consumer, checks it read everything and
			// keeps the run.
			measure := func(what string, into *[]ConsumeRun, run func() (ConsumeRun, error)) error {
				r, err := run()
				if err != nil {
					return fmt.Errorf("%s %s: %w", what, topic, err)
				}
				if err := h.check(r); err != nil {
					return err
				}
				*into = append(*into, r)
				h.logRun(r, i)
				return nil
			}
			if err := measure("raw consume", &res.Raw, func() (ConsumeRun, error) { return h.runRaw(ctx, topic, p, false) }); err != nil {
				return err
			}
			if !cfg.skipDiagnose {
				if err := measure("raw consume with processing", &res.RawProcess, func() (ConsumeRun, error) { return h.runRaw(ctx, topic, p, true) }); err != nil {
					return err
				}
			}
			if err := measure("cordstream analyze", &res.Cordstream, func() (ConsumeRun, error) { return h.runCordstream(ctx, h.bin, topic, p, nil, false) }); err != nil {
				return err
			}
			if !cfg.skipStateNone {
				if err := measure("cordstream analyze --state none", &res.CordstreamMem, func() (ConsumeRun, error) { return h.runCordstream(ctx, h.bin, topic, p, nil, true) }); err != nil {
					return err
				}
			}
		}
		if !cfg.skipSpark {
			for i := range cfg.sparkRepeat {
				// A failed Spark run is retried once, then reported, and
				// the benchmark goes on without it.
				var sp ConsumeRun
				var err error
				for try := range 2 {
					if sp, err = h.runSpark(ctx, topic, p); err == nil {
						err = h.check(sp)
					}
					if err == nil || ctx.Err() != nil {
						break
					}
					h.log.Warn("spark run failed", "topic", topic, "try", try+1, "err", lastLines(err.Error(), 5))
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					res.SparkErrors = append(res.SparkErrors, lastLines(err.Error(), 20))
					continue
				}
				res.Spark = append(res.Spark, sp)
				h.logRun(sp, i)
			}
		}
		if !cfg.skipStreams {
			for _, g := range cfg.streamsGuarantees {
				for i := range cfg.streamsRepeat {
					// Like Spark's, a failed Kafka Streams run is retried
					// once, then reported.
					var r streamsRun
					var err error
					for try := range 2 {
						if r, err = h.runStreams(ctx, topic, p, g, cfg.messages, false); err == nil {
							err = h.check(r.ConsumeRun)
						}
						if err == nil || ctx.Err() != nil {
							break
						}
						h.log.Warn("kafka streams run failed", "topic", topic, "guarantee", g, "try", try+1, "err", lastLines(err.Error(), 5))
					}
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if err != nil {
						res.StreamsErrors = append(res.StreamsErrors, g+": "+lastLines(err.Error(), 20))
						continue
					}
					if g == GuaranteeALOS {
						res.StreamsALOS = append(res.StreamsALOS, r.ConsumeRun)
					} else {
						res.StreamsEOS = append(res.StreamsEOS, r.ConsumeRun)
					}
					h.logRun(r.ConsumeRun, i)
				}
			}
		}
		if cfg.profile {
			prof, err := h.profileAnalyzer(ctx, topic, p)
			if err != nil {
				return fmt.Errorf("profile: %w", err)
			}
			res.Profile = prof
		}
		if err := h.writeReport(rep, false); err != nil {
			return err
		}
	}
	if !cfg.skipStreams && cfg.checkMessages > 0 {
		checks, err := h.runAgreement(ctx)
		rep.Agreement = checks
		if err != nil {
			return err
		}
	}
	return nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append(lines[:1], lines[len(lines)-n+1:]...)
	}
	return strings.Join(lines, "\n")
}

// check verifies that a run read every record.
func (h *harness) check(r ConsumeRun) error {
	if r.Records != h.cfg.messages {
		return fmt.Errorf("%s on %d partitions processed %d records, want %d", r.Kind, r.Partitions, r.Records, h.cfg.messages)
	}
	return nil
}

func (h *harness) logRun(r ConsumeRun, i int) {
	h.log.Info("measured", "kind", r.Kind, "partitions", r.Partitions, "run", i+1,
		"records_per_s", int(r.RecordsPerS), "wall_s", fmt.Sprintf("%.2f", r.WallS), "cpu_s", fmt.Sprintf("%.2f", r.CPUS),
		"peak_rss_mib", r.PeakRSS>>20, "first_batch_s", fmt.Sprintf("%.3f", r.FirstBatchS), "batches", r.Batches)
}

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/cordstream/cordstream\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark from inside the cordstream repository")
		}
		dir = parent
	}
}

// buildCordstream builds the binary to measure, unless --cordstream names one.
func (h *harness) buildCordstream(ctx context.Context) (string, error) {
	if h.cfg.cordstream != "" {
		return h.cfg.cordstream, nil
	}
	bin := filepath.Join(h.work, "cordstream")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/cordstream")
	cmd.Dir = h.root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build cordstream: %w", err)
	}
	return bin, nil
}

// buildInfo describes the measured cordstream: a given binary, or the
// commit it was built from.
func (h *harness) buildInfo() string {
	if h.cfg.cordstream != "" {
		return "cordstream binary " + h.cfg.cordstream
	}
	out, err := exec.Command("git", "-C", h.root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "cordstream built from a tree outside git"
	}
	s := "cordstream built from commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", h.root, "status", "--porcelain", "--", "cmd", "internal", "go.mod").Output(); err == nil && len(st) > 0 {
		s += " with uncommitted changes"
	}
	return s
}

// writeReport writes results.json and results.md; the final call also
// prints the Markdown.
func (h *harness) writeReport(rep *Report, final bool) error {
	rep.finish(h.cfg)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.cfg.out, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	md := rep.Markdown()
	if err := os.WriteFile(filepath.Join(h.cfg.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if final {
		fmt.Print(md)
	}
	return nil
}
