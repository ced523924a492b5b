//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Report is everything one run measured; results.json is this as JSON.
type Report struct {
	Started  string         `json:"started"`
	Finished string         `json:"finished"`
	Machine  Machine        `json:"machine"`
	Config   map[string]any `json:"config"`
	// Build says which cordstream was measured.
	Build   string          `json:"build"`
	Load    *LoadStats      `json:"load,omitempty"`
	Startup []StartupRun    `json:"startup,omitempty"`
	Replays []*ReplayResult `json:"replays,omitempty"`
	Bot     []*BotResult    `json:"bot,omitempty"`
	// SeedProducerErr is the end of the seed producer's output when its
	// measurement failed.
	SeedProducerErr string `json:"seed_producer_error,omitempty"`
	// Agreement compares Kafka Streams' final counts with cordstream's.
	Agreement []*AgreementCheck `json:"agreement,omitempty"`
	E2E       *E2EResult        `json:"e2e,omitempty"`
	Soak      *SoakResult       `json:"soak,omitempty"`
	Targets   []Target          `json:"targets"`
}

// ReplayResult holds (a), (b) and (c) on one topic.
type ReplayResult struct {
	Partitions int          `json:"partitions"`
	Topic      string       `json:"topic"`
	Raw        []ConsumeRun `json:"raw"`
	RawProcess []ConsumeRun `json:"raw_process,omitempty"`
	Cordstream []ConsumeRun `json:"cordstream"`
	// CordstreamMem is cordstream analyze --state none --dedup=false.
	CordstreamMem []ConsumeRun `json:"cordstream_state_none,omitempty"`
	Spark         []ConsumeRun `json:"spark,omitempty"`
	// SparkErrors are Spark runs that failed twice (the end of their output).
	SparkErrors []string `json:"spark_errors,omitempty"`
	// StreamsEOS and StreamsALOS are the Kafka Streams application with
	// exactly_once_v2 and with at_least_once.
	StreamsEOS  []ConsumeRun `json:"kafka_streams_eos,omitempty"`
	StreamsALOS []ConsumeRun `json:"kafka_streams_alos,omitempty"`
	// StreamsErrors are Kafka Streams runs that failed twice.
	StreamsErrors []string `json:"kafka_streams_errors,omitempty"`
	// Medians holds, per kind, the median of every metric over the runs.
	Medians map[string]*ConsumeRun `json:"medians"`
	// Ratios of the medians.
	CordstreamVsRaw   float64  `json:"cordstream_vs_raw_throughput"`
	CordstreamVsSpark float64  `json:"cordstream_vs_spark_throughput,omitempty"`
	SparkRSSOverCS    float64  `json:"spark_peak_rss_over_cordstream,omitempty"`
	SparkCPUOverCS    float64  `json:"spark_cpu_over_cordstream,omitempty"`
	Profile           *Profile `json:"profile,omitempty"`
}

// Target is one goal of the issue and whether this run met it.
type Target struct {
	Goal string `json:"goal"`
	Got  string `json:"got"`
	Met  *bool  `json:"met"` // null: not measured in this run
}

// Machine describes where the numbers come from.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	MemTotal    string `json:"mem_total"`
	Kernel      string `json:"kernel"`
	Go          string `json:"go"`
	Java        string `json:"java"`
	Kafka       string `json:"kafka"`
	LoadAvg     string `json:"loadavg_at_start"`
	LoadAvgEnd  string `json:"loadavg_at_end"`
	SharedNotes string `json:"notes"`
}

func machineInfo(kafkaVersion string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Kafka: kafkaVersion,
		SharedNotes: "the broker, the harness and the measured process share these CPUs"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "MemTotal:")), "%d", &kb)
				m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
		m.Java = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	m.LoadAvg = loadAvg()
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func reportConfig(c config) map[string]any {
	return map[string]any{
		"brokers": c.brokers, "messages": c.messages, "partitions": c.partitions,
		"batch_records": c.batchRecords, "repeat": c.repeat, "spark_repeat": c.sparkRepeat,
		"seed": c.seed, "authors": c.authors, "event_rate": c.eventRate,
		"spark_master": c.sparkMaster, "spark_shuffle_partitions": c.sparkShuffle, "skip_spark": c.skipSpark,
		"skip_streams": c.skipStreams, "streams_guarantees": c.streamsGuarantees, "streams_repeat": c.streamsRepeat, "streams_threads": c.streamsThreads, "streams_jvm_opts": strings.Join(c.streamsJVMOpts, " "),
		"check_messages": c.checkMessages, "check_event_rate": c.checkEventRate, "skip_seed_producer": c.skipSeedProducer,
		"bot_rate": c.botRate, "bot_spool": c.botConfigs, "bot_duration_s": c.botDuration.Seconds(), "bot_burst": c.botBurst,
		"e2e_rate": c.e2eRate, "e2e_duration_s": c.e2eDuration.Seconds(), "e2e_trigger_s": c.e2eTrigger.Seconds(),
		"soak_s": c.soak.Seconds(), "soak_rate": c.soakRate,
	}
}

// medianRun returns a run whose every metric is the median over runs.
func medianRun(runs []ConsumeRun) *ConsumeRun {
	if len(runs) == 0 {
		return nil
	}
	m := runs[0]
	med := func(get func(r *ConsumeRun) float64) float64 {
		xs := make([]float64, len(runs))
		for i := range runs {
			xs[i] = get(&runs[i])
		}
		return median(xs)
	}
	m.RecordsPerS = med(func(r *ConsumeRun) float64 { return r.RecordsPerS })
	m.WallS = med(func(r *ConsumeRun) float64 { return r.WallS })
	m.CPUS = med(func(r *ConsumeRun) float64 { return r.CPUS })
	m.UserS = med(func(r *ConsumeRun) float64 { return r.UserS })
	m.SysS = med(func(r *ConsumeRun) float64 { return r.SysS })
	m.CPUPerRecUS = med(func(r *ConsumeRun) float64 { return r.CPUPerRecUS })
	m.PeakRSS = int64(med(func(r *ConsumeRun) float64 { return float64(r.PeakRSS) }))
	m.MaxHWM = int64(med(func(r *ConsumeRun) float64 { return float64(r.MaxHWM) }))
	m.FirstBatchS = med(func(r *ConsumeRun) float64 { return r.FirstBatchS })
	m.LoadAvg = med(func(r *ConsumeRun) float64 { return r.LoadAvg })
	return &m
}

func boolp(b bool) *bool { return &b }

// finish computes medians, ratios and the targets.
func (r *Report) finish(c config) {
	r.Finished = time.Now().UTC().Format(time.RFC3339)
	r.Machine.LoadAvgEnd = loadAvg()
	r.Targets = nil
	for _, rr := range r.Replays {
		rr.Medians = map[string]*ConsumeRun{}
		for kind, runs := range map[string][]ConsumeRun{KindRaw: rr.Raw, KindRawProcess: rr.RawProcess, KindCordstream: rr.Cordstream,
			KindCordstreamMem: rr.CordstreamMem, KindSpark: rr.Spark, KindStreamsEOS: rr.StreamsEOS, KindStreamsALOS: rr.StreamsALOS} {
			if m := medianRun(runs); m != nil {
				rr.Medians[kind] = m
			}
		}
		raw, cs, sp := rr.Medians[KindRaw], rr.Medians[KindCordstream], rr.Medians[KindSpark]
		if raw != nil && cs != nil && raw.RecordsPerS > 0 {
			rr.CordstreamVsRaw = cs.RecordsPerS / raw.RecordsPerS
		}
		if sp != nil && cs != nil && sp.RecordsPerS > 0 {
			rr.CordstreamVsSpark = cs.RecordsPerS / sp.RecordsPerS
			rr.SparkRSSOverCS = float64(sp.PeakRSS) / float64(cs.PeakRSS)
			rr.SparkCPUOverCS = sp.CPUS / cs.CPUS
		}
		p := fmt.Sprintf(" (%d partition%s)", rr.Partitions, plural(rr.Partitions))
		mem := rr.Medians[KindCordstreamMem]
		// The targets: CPU time per record, which two shared cores can
		// judge (throughput there is bounded by the cores the broker,
		// the consumer and the load generator share).
		if cs != nil && raw != nil && raw.CPUPerRecUS > 0 {
			x := cs.CPUPerRecUS / raw.CPUPerRecUS
			got := fmt.Sprintf("%.2fx (%.2f vs %.2f µs/record)", x, cs.CPUPerRecUS, raw.CPUPerRecUS)
			if mem != nil {
				got += fmt.Sprintf("; --state none: %.2fx", mem.CPUPerRecUS/raw.CPUPerRecUS)
			}
			r.Targets = append(r.Targets, Target{Goal: "analyzer CPU per record <= 1.3x the raw consumer's" + p, Got: got, Met: boolp(x <= 1.3)})
		}
		if cs != nil && sp != nil && cs.CPUPerRecUS > 0 {
			x := sp.CPUPerRecUS / cs.CPUPerRecUS
			r.Targets = append(r.Targets, Target{Goal: "analyzer CPU per record >= 20x less than Spark's" + p,
				Got: fmt.Sprintf("%.1fx (%.2f vs %.2f µs/record)", x, cs.CPUPerRecUS, sp.CPUPerRecUS), Met: boolp(x >= 20)})
		}
		// The former targets, kept for their verdicts.
		if cs != nil && raw != nil {
			got := fmt.Sprintf("%.0f%% (%s vs %s records/s)", rr.CordstreamVsRaw*100, si(cs.RecordsPerS), si(raw.RecordsPerS))
			if mem != nil {
				got += fmt.Sprintf("; --state none: %.0f%%", 100*mem.RecordsPerS/raw.RecordsPerS)
			}
			r.Targets = append(r.Targets, Target{Goal: "former: analyzer throughput >= 80% of raw consume" + p, Got: got,
				Met: boolp(rr.CordstreamVsRaw >= 0.8)})
		}
		if cs != nil && sp != nil {
			got := fmt.Sprintf("%.1fx (%s vs %s records/s)", rr.CordstreamVsSpark, si(cs.RecordsPerS), si(sp.RecordsPerS))
			gotRSS := fmt.Sprintf("1/%.1f (%s vs %s)", rr.SparkRSSOverCS, mib(cs.PeakRSS), mib(sp.PeakRSS))
			if mem != nil {
				got += fmt.Sprintf("; --state none: %.1fx", mem.RecordsPerS/sp.RecordsPerS)
				gotRSS += fmt.Sprintf("; --state none: 1/%.1f", float64(sp.PeakRSS)/float64(mem.PeakRSS))
			}
			r.Targets = append(r.Targets, Target{Goal: "former: >= 20x Spark's throughput" + p, Got: got,
				Met: boolp(rr.CordstreamVsSpark >= 20)})
			r.Targets = append(r.Targets, Target{Goal: "peak RSS <= 1/10 of Spark's" + p, Got: gotRSS,
				Met: boolp(rr.SparkRSSOverCS >= 10)})
		}
	}
	if cs, sp := r.startupMedian(KindCordstream), r.startupMedian(KindSpark); !math.IsNaN(cs) {
		got := fmt.Sprintf("%.2f s", cs)
		if !math.IsNaN(sp) {
			got += fmt.Sprintf(" (Spark: %.1f s)", sp)
		}
		r.Targets = append(r.Targets, Target{Goal: "first batch <= 1 s after start (the seed's settings)", Got: got, Met: boolp(cs <= 1)})
	}
	for i, b := range r.Bot {
		if b.Producer == ProducerSeed {
			continue
		}
		if i == 0 {
			// CPU per message at the highest rate the simulator reaches
			// here (the burst phase), the default spool.
			r.Targets = append(r.Targets, Target{Goal: "bot CPU per message <= 60 µs (--spool-sync " + b.Spool + ", the default)",
				Got: fmt.Sprintf("%.1f µs at %.0f msgs/s (as fast as the simulator posts); %.1f µs at %.0f msgs/s", b.Burst.CPUPerMsgUS, b.Burst.RatePerS, b.Steady.CPUPerMsgUS, b.Steady.RatePerS),
				Met: boolp(b.Burst.CPUPerMsgUS <= 60)})
		}
		s := b.Steady
		met := s.HistUnder20 >= 0.99 && s.External.P99 <= 20
		goal := "bot publish latency p99 <= 20 ms (--spool-sync " + b.Spool
		if i == 0 {
			goal += ", the default"
		}
		r.Targets = append(r.Targets, Target{Goal: goal + ")",
			Got: fmt.Sprintf("bot's histogram: %.2f%% of messages <= 20 ms; post -> broker append p99 %.1f ms; at %.0f msgs/s", 100*s.HistUnder20, s.External.P99, s.RatePerS),
			Met: boolp(met)})
	}
	for _, ac := range r.Agreement {
		if ac.Err != "" {
			r.Targets = append(r.Targets, Target{Goal: fmt.Sprintf("Kafka Streams: final counts equal cordstream's, no late data (%d partition%s)",
				ac.Partitions, plural(ac.Partitions)), Got: "cordstream's run failed: " + firstLine(ac.Err)})
			continue
		}
		for _, pa := range ac.Peers {
			got := fmt.Sprintf("%d of %d rows equal (%d messages, %.0f s of event time)", pa.Equal, ac.Rows, ac.Messages, ac.EventSeconds)
			if pa.Err != "" {
				got = "the run failed: " + firstLine(pa.Err)
			} else if !pa.Agree {
				got += fmt.Sprintf("; %d differ, %d only in cordstream's, %d only in %s's", pa.Differ, pa.OnlyOurs, pa.OnlyPeer, kindLabel(pa.Kind))
			}
			var met *bool
			if pa.Err == "" {
				met = boolp(pa.Agree)
			}
			r.Targets = append(r.Targets, Target{Goal: fmt.Sprintf("%s: final counts equal cordstream's, no late data (%d partition%s)",
				kindLabel(pa.Kind), ac.Partitions, plural(ac.Partitions)), Got: got, Met: met})
		}
	}
	if r.Soak != nil {
		r.Targets = append(r.Targets, Target{Goal: "memory flat over a steady run",
			Got: r.Soak.Verdict, Met: boolp(r.Soak.Flat)})
	}
}

// startupMedian is the median time to the first batch of kind, NaN if not measured.
func (r *Report) startupMedian(kind string) float64 {
	var xs []float64
	for _, s := range r.Startup {
		if s.Kind == kind {
			xs = append(xs, s.FirstBatchS)
		}
	}
	return median(xs)
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func batchLabel(n int64) string {
	if n == 0 {
		return "all"
	}
	return si(float64(n))
}

// si formats a count with k/M suffixes.
func si(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ms(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.Machine
	w("## Results (%s)\n\n", r.Started)
	w("Measured: %s.\n\n", r.Build)
	w("Machine: %d CPUs (%s), %s RAM, Linux %s, %s, %s, Kafka %s; load average %s at start, %s at end.\n\n",
		m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.Go, m.Java, m.Kafka, m.LoadAvg, m.LoadAvgEnd)
	if r.Load != nil {
		w("Data: %d messages per topic (avg %.0f bytes, %.0f s of event time, %v authors), %s-compressed%s.\n\n",
			r.Load.Messages, r.Load.AvgBytes, r.Load.EventSeconds, r.Config["authors"], r.Load.Compression,
			map[bool]string{true: ", topics reused", false: fmt.Sprintf(", loaded in %.0f s", r.Load.Seconds)}[r.Load.Reused])
	}
	if len(r.Startup) > 0 {
		w("### Time to the first batch, with the seed's settings\n\n")
		w("Started on the loaded topic with startingOffsets latest, a 5 s trigger and console output: seconds from process start to the first batch (the empty `Batch: 0`) on the console.\n\n")
		w("| consumer | runs | first batch s (median) | peak RSS (last run) |\n|---|---:|---:|---:|\n")
		for _, kind := range []string{KindCordstream, KindSpark} {
			n, last := 0, StartupRun{}
			for _, s := range r.Startup {
				if s.Kind == kind {
					n, last = n+1, s
				}
			}
			if n > 0 {
				w("| %s | %d | %.2f | %s |\n", kindLabel(kind), n, r.startupMedian(kind), mib(last.Proc.PeakRSS))
			}
		}
		w("\n")
	}
	if len(r.Replays) > 0 {
		w("### (a) raw consume, (b) cordstream analyze, (c) Spark, (f) Kafka Streams: reading the whole topic\n\n")
		w("Medians over %v runs ((c): %v, (f): %v) of each column; micro-batches of %s records ((f) has none: it commits every commit.interval.ms); first batch s: process start to its first result (console line, or row handed to (f)'s output topic); load avg: the machine's 1-minute load average when the run started.\n\n",
			r.Config["repeat"], r.Config["spark_repeat"], r.Config["streams_repeat"], batchLabel(toInt64(r.Config["batch_records"])))
		w("| partitions | consumer | records/s | wall s | CPU s | CPU µs/record | peak RSS | first batch s | batches | vs raw | vs Spark | load avg |\n")
		w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, rr := range r.Replays {
			raw, sp := rr.Medians[KindRaw], rr.Medians[KindSpark]
			for _, kind := range []string{KindRaw, KindRawProcess, KindCordstream, KindCordstreamMem, KindSpark, KindStreamsEOS, KindStreamsALOS} {
				c := rr.Medians[kind]
				if c == nil {
					continue
				}
				batches := strconv.Itoa(c.Batches)
				if kind == KindStreamsEOS || kind == KindStreamsALOS {
					batches = "-"
				}
				vsRaw, vsSpark := "-", "-"
				if raw != nil {
					vsRaw = fmt.Sprintf("%.2f", c.RecordsPerS/raw.RecordsPerS)
				}
				if sp != nil {
					vsSpark = fmt.Sprintf("%.1fx", c.RecordsPerS/sp.RecordsPerS)
				}
				w("| %d | %s | %s | %.2f | %.2f | %.2f | %s | %.2f | %s | %s | %s | %.1f |\n", rr.Partitions, kindLabel(kind),
					si(c.RecordsPerS), c.WallS, c.CPUS, c.CPUPerRecUS, mib(c.PeakRSS), c.FirstBatchS, batches, vsRaw, vsSpark, c.LoadAvg)
			}
		}
		for _, rr := range r.Replays {
			for _, e := range rr.SparkErrors {
				w("\nSpark failed on %d partition(s), twice:\n\n```\n%s\n```\n", rr.Partitions, e)
			}
			for _, e := range rr.StreamsErrors {
				w("\nKafka Streams failed on %d partition(s), twice:\n\n```\n%s\n```\n", rr.Partitions, e)
			}
		}
		w("\n(b) is the analyzer as shipped: state in Kafka, each batch one transaction (--state kafka), duplicates by message_id dropped (--dedup). (b') keeps state in memory and commits offsets after each batch (at-least-once), counting duplicates as Spark does. (a+) is a diagnostic, not a product: the raw consumer with the analyzer's per-record work (chat.Project, window.Engine.Add, a batch end every batch) in its polling loop, without consumer group, planning, output or commits. (f) is the seed's query in Kafka Streams (bench/streams: hopping windows of 1 min advancing by 30 s with 1 min of grace, a repartition by author_name, a RocksDB window store with its changelog, every updated count written to an output topic; %v stream thread(s), Kafka Streams' defaults otherwise: commit.interval.ms 100 with exactly_once_v2, 30,000 with at_least_once, a 10 MB record cache), from the topic's start until it has counted every record, then closed (flush, commit); JVM options: %s.\n\n", r.Config["streams_threads"], jvmOpts(r.Config["streams_jvm_opts"]))
		for _, rr := range r.Replays {
			b, bm, sp := rr.Medians[KindCordstream], rr.Medians[KindCordstreamMem], rr.Medians[KindSpark]
			for _, kind := range []string{KindStreamsEOS, KindStreamsALOS} {
				f := rr.Medians[kind]
				if f == nil {
					continue
				}
				var parts []string
				if b != nil && b.CPUPerRecUS > 0 {
					parts = append(parts, fmt.Sprintf("%.1fx the CPU per record of (b)", f.CPUPerRecUS/b.CPUPerRecUS))
				}
				if bm != nil && bm.CPUPerRecUS > 0 {
					parts = append(parts, fmt.Sprintf("%.1fx that of (b')", f.CPUPerRecUS/bm.CPUPerRecUS))
				}
				if sp != nil && sp.CPUPerRecUS > 0 {
					parts = append(parts, fmt.Sprintf("%.2fx Spark's", f.CPUPerRecUS/sp.CPUPerRecUS))
				}
				w("%s on %d partition(s): %s; %d commits before close, %d records dropped (late for a window, or no timestamp), %d rows written (median run).\n",
					kindLabel(kind), rr.Partitions, strings.Join(parts, ", "), f.Commits, f.Dropped, f.OutputRecords)
			}
		}
		w("\n")
		for _, rr := range r.Replays {
			if rr.Profile != nil {
				w("CPU profile of `cordstream analyze` on %d partition(s) (%s, `go tool pprof -top`):\n\n```\n%s```\n\n", rr.Partitions, rr.Profile.File, rr.Profile.Top)
			}
		}
	}
	if len(r.Bot) > 0 || r.SeedProducerErr != "" {
		w("### (d) the bot: simulated Discord -> cordstream bot -> Kafka, and the seed's producer in its place\n\n")
		w("Spool: `group` is the bot's default (each message written to the spool before the next Discord event is read, a continuous group commit, at most one fsync every 10 ms, each covering everything written before it; reading waits when 1,000 messages await fsync); `always` fsyncs each message before the next event is read; a period fsyncs that often; `off` is `--spool-dir off` (memory only). The seed's producer (bench/seedproducer: discord.py's on_message sending each message with kafka-python's KafkaProducer, default settings) has no spool and no latency histogram; a message it never delivered is lost.\n\n")
		w("| producer | spool | phase | messages | lost | msgs/s | publish latency p50 / p99 (bot's histogram) | <= 20 ms | post -> broker append p50 / p99 | CPU s | CPU µs/msg |\n")
		w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, bt := range r.Bot {
			for _, ph := range []*BotPhase{&bt.Steady, &bt.Burst} {
				hist, under := fmt.Sprintf("%s / %s ms", ms(ph.HistP50Ms), ms(ph.HistP99Ms)), fmt.Sprintf("%.2f%%", 100*ph.HistUnder20)
				if ph.NoHistogram {
					hist, under = "-", "-"
				}
				w("| %s | %s | %s | %d | %d | %s | %s | %s | %s / %s ms | %.2f | %.1f |\n", producerLabel(bt.Producer), bt.Spool, ph.Name, ph.Messages, ph.Lost,
					si(ph.RatePerS), hist, under, ms(ph.External.P50), ms(ph.External.P99), ph.CPUS, ph.CPUPerMsgUS)
			}
		}
		w("\nThe bot's histogram has buckets at 5, 10, 20 and 50 ms: its p50 and p99 are interpolated within a bucket; the share <= 20 ms is exact. Post -> broker append is per message (the broker's LogAppendTime has millisecond resolution); msgs/s is the messages delivered over first post -> last append.\n\n")
		for _, bt := range r.Bot {
			if bt.Producer == ProducerSeed {
				w("The seed's producer: peak RSS %s, %.2f CPU s over %.1f s, ready (discord.py's on_ready) %.2f s after start.\n",
					mib(bt.Proc.PeakRSS), bt.Proc.CPUS, bt.Proc.WallS, bt.ReadyS)
				continue
			}
			w("Bot with spool %s: peak RSS %s, %.2f CPU s over %.1f s, ready (Gateway session up) %.2f s after start.\n", bt.Spool,
				mib(bt.Proc.PeakRSS), bt.Proc.CPUS, bt.Proc.WallS, bt.ReadyS)
		}
		if seed, bot := r.seedProducer(), r.defaultBot(); seed != nil && bot != nil && bot.Steady.CPUPerMsgUS > 0 {
			w("\nCPU per message, the seed's producer against the bot with spool %s: %.1fx at the steady rate, %.1fx as fast as the simulator posts.\n",
				bot.Spool, seed.Steady.CPUPerMsgUS/bot.Steady.CPUPerMsgUS, seed.Burst.CPUPerMsgUS/bot.Burst.CPUPerMsgUS)
		}
		if r.SeedProducerErr != "" {
			w("\nThe seed's producer failed:\n\n```\n%s\n```\n", r.SeedProducerErr)
		}
		w("\n")
		for _, bt := range r.Bot {
			if bt.Profile != nil {
				w("The bot (spool %s) ran under the CPU profiler (%s, `go tool pprof -top`):\n\n```\n%s```\n\n", bt.Spool, bt.Profile.File, bt.Profile.Top)
			}
		}
	}
	if len(r.Agreement) > 0 {
		w("### Kafka Streams' final counts against cordstream's (no late data)\n\n")
		w("The workload without its late messages (event times at most 2 s out of order, far within the 1 minute of watermark delay and of grace), read whole by `cordstream analyze --available-now` as shipped (JSON lines) and by the Kafka Streams application (its output topic, committed records); the last count of every (window, author) compared. Dropped by the peer: Kafka Streams' dropped-records metric (records too late for a window's grace, or without a timestamp).\n\n")
		w("| partitions | messages | event time | peer | cordstream rows | peer rows | equal | differ | only cordstream | only peer | sum of counts (cordstream / peer) | dropped by the peer | agree |\n")
		w("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, ac := range r.Agreement {
			if ac.Err != "" {
				w("| %d | %d | %.0f s | - | cordstream failed: %s | | | | | | | | - |\n", ac.Partitions, ac.Messages, ac.EventSeconds, firstLine(ac.Err))
				continue
			}
			for _, pa := range ac.Peers {
				if pa.Err != "" {
					w("| %d | %d | %.0f s | %s | %d | failed: %s | | | | | | | - |\n", ac.Partitions, ac.Messages, ac.EventSeconds, kindLabel(pa.Kind), ac.Rows, firstLine(pa.Err))
					continue
				}
				w("| %d | %d | %.0f s | %s | %d | %d | %d | %d | %d | %d | %d / %d | %d | %s |\n", ac.Partitions, ac.Messages, ac.EventSeconds, kindLabel(pa.Kind),
					ac.Rows, pa.Rows, pa.Equal, pa.Differ, pa.OnlyOurs, pa.OnlyPeer, ac.Total, pa.Total, pa.Dropped, map[bool]string{true: "yes", false: "**no**"}[pa.Agree])
			}
		}
		for _, ac := range r.Agreement {
			for _, pa := range ac.Peers {
				if len(pa.Examples) > 0 {
					w("\n%s on %d partition(s), rows that differ (window start, end, author: counts):\n\n```\n%s\n```\n", kindLabel(pa.Kind), ac.Partitions, strings.Join(pa.Examples, "\n"))
				}
				if pa.Err != "" {
					w("\n%s on %d partition(s) failed:\n\n```\n%s\n```\n", kindLabel(pa.Kind), ac.Partitions, pa.Err)
				}
			}
		}
		w("\n")
	}
	if r.E2E != nil {
		e := r.E2E
		w("### (e) end to end: simulated Discord -> bot -> Kafka -> cordstream analyze\n\n")
		w("%d messages at %.0f/s, trigger %s; latency of each message until the batch holding it was printed.\n\n", e.Messages, e.RatePerS, e.Trigger)
		w("| latency (ms) | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|\n")
		for _, row := range []struct {
			name string
			d    Dist
		}{{"total (post -> row printed)", e.Total}, {"trigger wait (in Kafka, waiting for the next trigger)", e.TriggerWait},
			{"**total without the trigger wait**", e.NoWait}, {"of which post -> broker append", e.Ingest}, {"of which batch start -> row printed", e.Batch}} {
			w("| %s | %s | %s | %s | %s |\n", row.name, ms(row.d.P50), ms(row.d.P90), ms(row.d.P99), ms(row.d.Max))
		}
		w("\nAnalyzer: peak RSS %s, %.2f CPU s; bot: peak RSS %s, %.2f CPU s.\n\n", mib(e.Analyzer.PeakRSS), e.Analyzer.CPUS, mib(e.Bot.PeakRSS), e.Bot.CPUS)
	}
	if r.Soak != nil {
		s := r.Soak
		w("### Soak: the pipeline at %.0f msgs/s for %s\n\n", s.RatePerS, s.Duration)
		w("| process | RSS first / last after warm-up | min / max after warm-up | slope after warm-up |\n|---|---:|---:|---:|\n")
		for _, p := range []*SoakProc{&s.Analyzer, &s.Bot} {
			w("| %s | %s / %s | %s / %s | %+.2f MiB/h |\n", p.Name, mib(p.First), mib(p.Last), mib(p.Min), mib(p.Max), p.SlopeMiBPerHour)
		}
		w("\n%s\n\n", s.Verdict)
		w("Resident memory over the run (warm-up: the first %.0f s):\n\n| minute | analyzer | bot |\n|---:|---:|---:|\n", s.WarmupS)
		next := 0.0
		for i, t := range s.Analyzer.T {
			if t < next || i >= len(s.Bot.RSS) {
				continue
			}
			w("| %.0f | %s | %s |\n", t/60, mib(s.Analyzer.RSS[i]), mib(s.Bot.RSS[i]))
			next = t + 180
		}
		w("\n")
	}
	if len(r.Targets) > 0 {
		w("### Targets\n\n| goal | measured | met |\n|---|---|---|\n")
		for _, t := range r.Targets {
			met := "not measured"
			if t.Met != nil {
				met = map[bool]string{true: "yes", false: "**no**"}[*t.Met]
			}
			w("| %s | %s | %s |\n", t.Goal, t.Got, met)
		}
		w("\n")
	}
	return b.String()
}

func kindLabel(k string) string {
	switch k {
	case KindRaw:
		return "(a) raw franz-go consume"
	case KindRawProcess:
		return "(a+) raw consume + decode + window in its loop"
	case KindCordstream:
		return "(b) cordstream analyze"
	case KindCordstreamMem:
		return "(b') cordstream analyze --state none --dedup=false"
	case KindSpark:
		return "(c) Spark local[2]"
	case KindStreamsEOS:
		return "(f) Kafka Streams exactly_once_v2"
	case KindStreamsALOS:
		return "(f') Kafka Streams at_least_once"
	}
	return k
}

func jvmOpts(v any) string {
	if s, _ := v.(string); s != "" {
		return "`" + s + "`"
	}
	return "none (the JVM's defaults: a heap of up to a quarter of the RAM)"
}

func producerLabel(p string) string {
	if p == ProducerSeed {
		return "seed: discord.py + kafka-python"
	}
	return "cordstream bot"
}

// seedProducer returns the seed producer's (d), nil if not measured.
func (r *Report) seedProducer() *BotResult {
	for _, b := range r.Bot {
		if b.Producer == ProducerSeed {
			return b
		}
	}
	return nil
}

// defaultBot returns (d) of the bot with the first spool setting measured
// (the default unless --bot-spool says otherwise), nil if not measured.
func (r *Report) defaultBot() *BotResult {
	for _, b := range r.Bot {
		if b.Producer == "" {
			return b
		}
	}
	return nil
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case int:
		return int64(x)
	}
	return 0
}
