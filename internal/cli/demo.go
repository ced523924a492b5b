package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cordstream/cordstream/internal/analyzer"
	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/metrics"
)

const demoAbout = `Run the whole pipeline in one process, with no Discord token and no Kafka:
the Discord simulator posts realistic traffic, the real bot captures it
through the Gateway into an embedded Kafka broker (in-process, loopback
only), and the real analyzer prints the seed's windowed count per author
every trigger interval, in Spark's console format.

--brokers uses a real Kafka instead of the embedded one (the demo then writes
to --topic there). Ctrl-C, or --duration, stops it with a summary: messages
sent, published, analysed, dropped as late, rejected as bad.`

const demoExample = `cordstream demo --duration 1m
cordstream demo --rate 200 --authors 500 --trigger 2s
cordstream demo --brokers localhost:9092 --topic cordstream_demo`

// demoHTTP is where the demo serves its dashboard unless told otherwise.
const demoHTTP = "127.0.0.1:8080"

type demoFlags struct {
	duration                        time.Duration
	rate                            float64
	authors, guilds, channels, dms  int
	seed                            int64
	brokers, topic, mode, logLevel  string
	trigger, window, slide, wmDelay time.Duration
	rows                            int
	http                            string
	httpGiven                       bool
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("demo", e, demoAbout, demoExample)
	f := &demoFlags{}
	fs.DurationVar(&f.duration, "duration", 0, "stop after this long (0: run until Ctrl-C)")
	fs.Float64Var(&f.rate, "rate", 20, "simulated messages per second, on average (bursty)")
	fs.IntVar(&f.authors, "authors", 40, "simulated human authors; activity is skewed: a few write most messages")
	fs.IntVar(&f.guilds, "guilds", 3, "simulated guilds (servers)")
	fs.IntVar(&f.channels, "channels-per-guild", 3, "text channels per guild")
	fs.IntVar(&f.dms, "dms", 2, "direct-message channels with the bot")
	fs.Int64Var(&f.seed, "seed", 0, "traffic seed: the same seed gives the same names and message sequence (0: random)")
	fs.StringVar(&f.brokers, "brokers", "", "a real Kafka's bootstrap brokers (default: an embedded broker); TLS and SASL are not offered here: use bot and analyze for those")
	fs.StringVar(&f.topic, "topic", chat.DefaultTopic, "topic the bot writes and the analyzer reads")
	fs.DurationVar(&f.trigger, "trigger", 5*time.Second, "analyzer trigger interval (the seed's 5 s)")
	fs.DurationVar(&f.window, "window", time.Minute, "window length")
	fs.DurationVar(&f.slide, "slide", 30*time.Second, "window slide")
	fs.DurationVar(&f.wmDelay, "watermark", time.Minute, "watermark delay")
	fs.StringVar(&f.mode, "mode", "update", "output mode: update, append or complete")
	fs.IntVar(&f.rows, "rows", 20, "rows the console shows per batch")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level of the bot and analyzer: debug, info, warn or error")
	fs.StringVar(&f.http, "http", demoHTTP, "serve the live dashboard on this port or host:port (a bare port is on 127.0.0.1; another free port when the default is taken); off: do not")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	fs.Visit(func(fl *flag.Flag) { f.httpGiven = f.httpGiven || fl.Name == "http" })
	f.httpGiven = f.httpGiven || e.getenv(envName("http")) != ""
	if f.http == "off" {
		f.http = ""
	} else {
		addr, err := httpAddr("--http", f.http)
		if err != nil {
			return err
		}
		f.http = addr
	}
	if f.duration < 0 {
		return usageErrorf("give a positive duration such as --duration 1m, or 0 to run until Ctrl-C", "--duration %v is negative", f.duration)
	}
	if f.rate <= 0 || f.rate > 100000 {
		return usageErrorf("use a rate between 0 and 100000 messages per second", "--rate %v is out of range", f.rate)
	}
	if f.authors < 1 || f.guilds < 1 || f.channels < 1 {
		return usageErrorf("the simulated world needs at least one author, guild and channel", "--authors, --guilds and --channels-per-guild must be at least 1")
	}
	if f.seed == 0 {
		f.seed = rand.Int64N(1<<31) + 1
	}
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	return demoRun(ctx, e, f)
}

// demoRun wires the parts and runs them until ctx ends.
func demoRun(ctx context.Context, e *env, f *demoFlags) error {
	level, err := parseLogLevel(f.logLevel)
	if err != nil {
		return usageErrorf("use debug, info, warn or error", "--log-level: %v", err)
	}
	log := newLogger(e, level).With("command", "demo")

	// Kafka: embedded unless --brokers.
	kcfg := kafka.Config{ClientID: "cordstream-demo"}
	where := ""
	if f.brokers == "" {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return fmt.Errorf("start the embedded Kafka broker: %w", err)
		}
		defer cluster.Close()
		kcfg.Brokers = cluster.ListenAddrs()
		where = "embedded Kafka at " + strings.Join(kcfg.Brokers, ",")
	} else {
		kcfg.Brokers = splitList(f.brokers)
		where = "Kafka at " + strings.Join(kcfg.Brokers, ",")
	}
	if err := kcfg.Validate(); err != nil {
		return usageErrorf("", "--brokers: %v", err)
	}

	// Discord: the simulator.
	srv := sim.New(sim.Config{PrivilegedIntents: sim.IntentMessageContent, SentLimit: 1, HistoryLimit: 1000})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		return fmt.Errorf("start the Discord simulator: %w", err)
	}
	defer srv.Close()

	// The bot and the analyzer, configured as their commands would be: each
	// command's defaults, with the demo's values set and checked by the
	// same code as the flags'.
	childEnv := &env{stdout: e.stdout, stderr: e.stderr, getenv: func(k string) string {
		if k == envDiscordToken {
			return srv.Token()
		}
		return "" // the demo's settings, not the caller's CORDSTREAM_* variables
	}}
	botF := addBotFlags(newFlagSet("bot", childEnv, "", ""))
	botF.apiURL, botF.topic, botF.directMessages, botF.logLevel = srv.APIURL(), f.topic, true, f.logLevel
	// No spool or backfill: the demo's Discord and (embedded) Kafka live and
	// die with this process.
	botF.spoolDir, botF.backfill = "off", false
	botOpts, err := botF.options(childEnv)
	if err != nil {
		return err
	}
	anF := addAnalyzeFlags(newFlagSet("analyze", childEnv, "", ""))
	anF.topic = f.topic
	anF.starting = analyzer.StartEarliest // the embedded topic is new: read all of it
	if f.brokers != "" {
		anF.starting = analyzer.StartLatest // a real topic may hold older messages; the demo shows its own
	}
	anF.group = fmt.Sprintf("cordstream-demo-%d", time.Now().UnixNano())
	anF.trigger, anF.window, anF.slide, anF.watermark = f.trigger, f.window, f.slide, f.wmDelay
	anF.mode, anF.rows, anF.logLevel = f.mode, f.rows, f.logLevel
	anOpts, err := anF.options()
	if err != nil {
		return err
	}
	botReg, anReg := metrics.NewRegistry(), metrics.NewRegistry()
	anOpts.registry = anReg

	// The dashboard listens first, so that its address is the first thing
	// said.
	if f.http != "" {
		view, err := openLiveView(f.http, dashboardQuery(anOpts), slog.New(log.Handler()).With("command", "analyze"))
		if err != nil && !f.httpGiven {
			// The default port is taken: any free one will do.
			view, err = openLiveView("127.0.0.1:0", dashboardQuery(anOpts), slog.New(log.Handler()).With("command", "analyze"))
		}
		if err != nil {
			return err
		}
		anOpts.view = view
		fmt.Fprintf(e.stderr, "cordstream demo: dashboard at %s (open it in a browser; --http off to not serve it)\n", view.URL())
	}
	fmt.Fprintf(e.stderr, "cordstream demo: simulated Discord at %s -> bot -> %s, topic %q -> analyzer\n", srv.APIURL(), where, f.topic)
	fmt.Fprintf(e.stderr, "cordstream demo: %.0f messages/s from %d authors in %d guilds (seed %d); a table every %v; Ctrl-C to stop\n",
		f.rate, f.authors, f.guilds, f.seed, f.trigger)

	// Stop order: traffic first, then the bot (it flushes what it holds),
	// then the analyzer (it finishes its batch in flight).
	trafficCtx, stopTraffic := context.WithCancel(context.Background())
	botCtx, stopBot := context.WithCancel(context.Background())
	anCtx, stopAn := context.WithCancel(context.Background())
	defer stopTraffic()
	defer stopBot()
	defer stopAn()

	var wg sync.WaitGroup
	var botErr, anErr, trafficErr error
	botDone, anDone := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		defer close(botDone)
		botErr = botRun(botCtx, botOpts, kcfg, slog.New(log.Handler()).With("command", "bot"), botReg)
	})
	wg.Go(func() {
		defer close(anDone)
		anErr = analyzeRun(anCtx, e, anOpts, kcfg, slog.New(log.Handler()).With("command", "analyze"))
	})
	// Traffic starts once the bot is connected, so that the analyzer (with
	// latest offsets on a real broker) has planned its first batch too.
	wg.Go(func() {
		if !demoWaitConnected(trafficCtx, botReg, botDone) {
			return
		}
		trafficErr = srv.Generate(trafficCtx, sim.Traffic{Rate: f.rate, Authors: f.authors, Guilds: f.guilds,
			ChannelsPerGuild: f.channels, DMs: f.dms, Seed: f.seed})
	})

	select {
	case <-ctx.Done():
	case <-botDone:
	case <-anDone:
	}
	stopTraffic()
	demoWaitReceived(srv, botReg, botDone, 15*time.Second) // returns as soon as the bot has them all
	stopBot()
	<-botDone
	stopAn()
	wg.Wait()

	demoSummary(e.stderr, srv, botReg, anReg)
	if err := errors.Join(demoErr("bot", botErr), demoErr("analyzer", anErr), demoErr("traffic", trafficErr)); err != nil {
		return err
	}
	return nil
}

// demoWaitConnected waits until the bot's gateway has a live shard.
func demoWaitConnected(ctx context.Context, reg *metrics.Registry, done <-chan struct{}) bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if n, _ := reg.Sum("cordstream_discord_shards_connected"); n > 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-done:
			return false
		case <-t.C:
		}
	}
}

// demoWaitReceived gives the bot up to limit to receive what the simulator
// has sent, so that stopping does not cut off the last messages in flight.
func demoWaitReceived(srv *sim.Server, reg *metrics.Registry, done <-chan struct{}, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		got, _ := reg.Sum("cordstream_bot_messages_received_total")
		if int(got) >= srv.Stats().Messages {
			return
		}
		select {
		case <-done:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func demoErr(part string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("%s: %w", part, err)
}

// demoSummary prints what happened to the messages.
func demoSummary(w io.Writer, srv *sim.Server, botReg, anReg *metrics.Registry) {
	sum := func(r *metrics.Registry, name string) int64 {
		v, _ := r.Sum(name)
		return int64(v)
	}
	sent := int64(srv.Stats().Messages)
	received := sum(botReg, "cordstream_bot_messages_received_total")
	published := sum(botReg, "cordstream_bot_messages_published_total")
	failed := sum(botReg, "cordstream_bot_messages_failed_total")
	filtered := sum(botReg, "cordstream_bot_messages_filtered_total")
	analysed := sum(anReg, "cordstream_analyze_records_counted_total")
	late := sum(anReg, "cordstream_analyze_late_rows_dropped_total")
	bad := sum(anReg, "cordstream_analyze_bad_records_total")
	fmt.Fprintf(w, "\ncordstream demo: %d messages sent by the simulator, %d received by the bot, %d published to Kafka",
		sent, received, published)
	if filtered > 0 || failed > 0 {
		fmt.Fprintf(w, " (%d filtered, %d failed)", filtered, failed)
	}
	fmt.Fprintf(w, ", %d analysed, %d window rows dropped as late, %d records rejected as bad\n", analysed, late, bad)
	if waiting := published - analysed - bad; waiting > 0 {
		fmt.Fprintf(w, "cordstream demo: %d published messages arrived after the analyzer's last batch\n", waiting)
	}
}
