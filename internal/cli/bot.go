package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/bot"
	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/metrics"
)

// envDiscordToken holds the bot token; it has no flag on purpose.
const envDiscordToken = "DISCORD_TOKEN"

const botAbout = `Capture Discord messages into a Kafka topic: one JSON record per message
(the wire format of schema/discord_message.schema.json), keyed by author id so
that each author's messages stay in order.

The bot token comes from $DISCORD_TOKEN or --token-file, never from a flag
value. Get one at https://discord.com/developers/applications (your
application -> Bot -> Reset Token) and enable Bot -> Privileged Gateway
Intents -> Message Content Intent there. The bot connects with the intents
GUILDS, GUILD_MESSAGES and MESSAGE_CONTENT (plus DIRECT_MESSAGES with
--direct-messages), with as many shards as Discord recommends.

Delivery: a message counts as published once Kafka acknowledged it
(idempotent producer, acks=all). While Kafka is unreachable the bot keeps
retrying and says so every few seconds; up to --max-buffered messages wait in
memory. When that many wait, the bot stops reading from Discord until Kafka
catches up: nothing is dropped. Discord holds the events meanwhile; if it
drops the connection, the bot resumes the session and Discord replays them;
if the session expired (Discord keeps it a few minutes), Discord does not
replay what was sent in the gap, and the bot logs it and counts it in
cordstream_discord_sessions_lost_total.

Bot and webhook messages are captured by default, as the original producer
did; every record says author_is_bot and webhook_id, so consumers can filter.
Use --include-bots=false or --include-webhooks=false to drop them here.

Ctrl-C or SIGTERM stops reading from Discord, waits up to --shutdown-timeout
for Kafka to acknowledge what is buffered, logs the counts and exits 0 (1 if
messages could not be delivered; their ids are logged). A second Ctrl-C stops
waiting.`

const botExample = `export DISCORD_TOKEN=...   # Developer Portal -> your application -> Bot -> Reset Token
cordstream bot --brokers localhost:9092 --topic discord_messages
# only two channels, text hashed, edits and deletes too, metrics on :9091:
cordstream bot --brokers localhost:9092 --token-file /run/secrets/discord_token \
    --channels 81384788765712384,81384788765712385 --content hash --edits-and-deletes --metrics :9091`

// Health thresholds of /healthz.
const (
	botGatewayDownUnhealthy = time.Minute      // a shard disconnected this long
	botKafkaStallUnhealthy  = 30 * time.Second // records waiting without any ack this long
)

type botFlags struct {
	topic, tokenFile, apiURL      string
	directMessages                bool
	includeBots, includeWebhooks  bool
	guilds, excludeGuilds         stringList
	channels, excludeChannels     stringList
	content                       string
	editsAndDeletes               bool
	noCreate                      bool
	partitions, replicationFactor int
	maxBuffered                   int
	shutdownTimeout               time.Duration
	metrics, logLevel             string
}

func addBotFlags(fs *flagSet) *botFlags {
	f := &botFlags{}
	fs.StringVar(&f.topic, "topic", "discord_messages", "Kafka topic the messages go to")
	fs.StringVar(&f.tokenFile, "token-file", "", "`file` holding the Discord bot token (or set $"+envDiscordToken+")")
	fs.StringVar(&f.apiURL, "discord-api-url", discord.DefaultAPIURL, "Discord REST API base `URL`; the Gateway URL is read from its /gateway/bot (point it at the URL of cordstream sim to try the bot without Discord)")
	fs.BoolVar(&f.directMessages, "direct-messages", false, "also capture direct messages to the bot (adds the DIRECT_MESSAGES intent)")
	fs.BoolVar(&f.includeBots, "include-bots", true, "capture messages from bot accounts (--include-bots=false drops them)")
	fs.BoolVar(&f.includeWebhooks, "include-webhooks", true, "capture messages sent by webhooks (--include-webhooks=false drops them)")
	fs.Var(&f.guilds, "guilds", "capture only these guild (server) `ids`, comma-separated or repeated; direct messages are then dropped")
	fs.Var(&f.excludeGuilds, "exclude-guilds", "never capture these guild `ids`")
	fs.Var(&f.channels, "channels", "capture only these channel `ids`")
	fs.Var(&f.excludeChannels, "exclude-channels", "never capture these channel `ids`")
	fs.StringVar(&f.content, "content", "keep", "message text: keep, drop (null) or hash (\"sha256:<hex>\")")
	fs.BoolVar(&f.editsAndDeletes, "edits-and-deletes", false, "also publish edits and deletions, as records with event_kind update and delete")
	fs.BoolVar(&f.noCreate, "no-create-topic", false, "fail instead of creating the topic when it is missing")
	fs.IntVar(&f.partitions, "partitions", 1, "partitions of the topic, if the bot creates it")
	fs.IntVar(&f.replicationFactor, "replication-factor", -1, "replication factor of the topic, if the bot creates it (-1: the broker's default)")
	fs.IntVar(&f.maxBuffered, "max-buffered", 10000, "messages that may wait for Kafka before reading from Discord pauses")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to wait at exit for Kafka to acknowledge buffered messages")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics and /healthz on this address, e.g. :9091")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return f
}

// botOptions are the checked settings.
type botOptions struct {
	flags    *botFlags
	filter   bot.Filter
	content  bot.ContentMode
	intents  discord.Intents
	logLevel slog.Level
	token    string
}

func (f *botFlags) options(e *env) (*botOptions, error) {
	o := &botOptions{flags: f, intents: discord.DefaultIntents}
	if f.directMessages {
		o.intents |= discord.IntentDirectMessages
	}
	var err error
	if err := kafka.ValidTopicName(f.topic); err != nil {
		return nil, usageErrorf("", "--topic: %v", err)
	}
	if o.content, err = bot.ParseContentMode(f.content); err != nil {
		return nil, usageErrorf("use --content keep, drop or hash", "--%v", err)
	}
	if o.logLevel, err = parseLogLevel(f.logLevel); err != nil {
		return nil, usageErrorf("use debug, info, warn or error", "--log-level: %v", err)
	}
	o.filter = bot.Filter{IncludeBots: f.includeBots, IncludeWebhooks: f.includeWebhooks}
	lists := []struct {
		flag string
		ids  []string
		dst  *map[string]bool
	}{
		{"--guilds", f.guilds, &o.filter.Guilds},
		{"--exclude-guilds", f.excludeGuilds, &o.filter.ExcludeGuilds},
		{"--channels", f.channels, &o.filter.Channels},
		{"--exclude-channels", f.excludeChannels, &o.filter.ExcludeChannels},
	}
	for _, l := range lists {
		if *l.dst, err = bot.IDSet(l.flag, l.ids); err != nil {
			return nil, usageErrorf("", "%v", err)
		}
	}
	if f.maxBuffered < 1 || f.maxBuffered > 10_000_000 {
		return nil, usageErrorf("e.g. --max-buffered 10000", "--max-buffered %d: must be between 1 and 10000000", f.maxBuffered)
	}
	if f.shutdownTimeout <= 0 {
		return nil, usageErrorf("e.g. --shutdown-timeout 10s", "--shutdown-timeout must be positive, not %s", f.shutdownTimeout)
	}
	if f.partitions < 1 || f.partitions > 1<<20 {
		return nil, usageErrorf("e.g. --partitions 1", "--partitions %d: must be at least 1", f.partitions)
	}
	if f.replicationFactor == 0 || f.replicationFactor < -1 || f.replicationFactor > 1<<14 {
		return nil, usageErrorf("use -1 for the broker's default, or 1 up to the number of brokers",
			"--replication-factor %d: invalid", f.replicationFactor)
	}
	if _, err := discord.NewREST(f.apiURL, "", nil, "", nil); err != nil {
		return nil, usageErrorf("the default is "+discord.DefaultAPIURL, "--discord-api-url: %v", err)
	}
	if o.token, err = f.readToken(e); err != nil {
		return nil, err
	}
	return o, nil
}

const tokenWhere = "get a bot token at " + discord.PortalURL + " (your application -> Bot -> Reset Token) " +
	"and pass it in $" + envDiscordToken + " or in a file named by --token-file"

// readToken reads the token from $DISCORD_TOKEN or --token-file (one of
// them), trimming surrounding whitespace. No error repeats the token.
func (f *botFlags) readToken(e *env) (string, error) {
	tok := e.getenv(envDiscordToken)
	if f.tokenFile != "" {
		if tok != "" {
			return "", usageErrorf("unset $"+envDiscordToken+" or drop --token-file",
				"the Discord token is given twice: in $%s and in --token-file", envDiscordToken)
		}
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", usageErrorf(tokenWhere, "read the Discord token: %v", err)
		}
		tok = string(b)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		where := "$" + envDiscordToken + " is not set"
		if f.tokenFile != "" {
			where = "--token-file " + f.tokenFile + " is empty"
		}
		return "", usageErrorf(tokenWhere, "no Discord bot token: %s", where)
	}
	if err := discord.ValidateToken(tok); err != nil {
		return "", usageErrorf(tokenWhere, "%v", err)
	}
	return tok, nil
}

func runBot(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("bot", e, botAbout, botExample)
	kf := addKafkaFlags(fs, e)
	f := addBotFlags(fs)
	if err := parse(fs, e, args); err != nil {
		return err
	}
	o, err := f.options(e)
	if err != nil {
		return err
	}
	kcfg, err := kf.config()
	if err != nil {
		return err
	}
	log := slog.New(&redactHandler{h: newLogger(e, o.logLevel).Handler(), secret: o.token}).With("command", "bot")
	err = botRun(ctx, o, kcfg, log, nil)
	return redactErr(botError(err), o.token)
}

// botRun connects to Kafka, then to Discord, and runs until ctx ends or a
// fatal error. Metrics are registered on reg (a new registry when nil).
func botRun(ctx context.Context, o *botOptions, kcfg kafka.Config, log *slog.Logger, reg *metrics.Registry) error {
	f := o.flags
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	m := bot.NewMetrics(reg)
	pub, err := bot.NewPublisher(bot.PublisherConfig{Topic: f.topic, MaxBuffered: f.maxBuffered, Log: log, Metrics: m},
		func(opts ...kgo.Opt) (*kgo.Client, error) { return kafka.NewClient(ctx, kcfg, log, opts...) })
	if err != nil {
		return err
	}
	if err := botTopic(ctx, pub.Client(), o, log); err != nil {
		pub.Close(context.Background())
		return err
	}
	b := bot.New(bot.Config{Filter: o.filter, Content: o.content, Log: log, Metrics: m, ShutdownTimeout: f.shutdownTimeout}, pub)
	gw, err := discord.New(discord.Config{
		Token:     o.token,
		APIURL:    f.apiURL,
		Intents:   o.intents,
		Handler:   b.Handle,
		Updates:   f.editsAndDeletes,
		Log:       log,
		Metrics:   reg,
		UserAgent: "DiscordBot (https://github.com/cordstream/cordstream, " + Version + ")",
	})
	if err != nil {
		pub.Close(context.Background())
		return err
	}

	var wg sync.WaitGroup
	srvCtx, stopSrv := context.WithCancel(context.Background())
	defer func() {
		stopSrv()
		wg.Wait()
	}()
	if f.metrics != "" {
		healthy := func() error {
			return errors.Join(gw.Health(botGatewayDownUnhealthy), pub.Healthy(botKafkaStallUnhealthy))
		}
		srv, err := bot.ListenHTTP(f.metrics, reg.Handler(healthy), log)
		if err != nil {
			pub.Close(context.Background())
			return usageErrorf("use a free host:port, e.g. --metrics :9091 (or :0 for any free port)", "--metrics: %v", err)
		}
		wg.Go(func() {
			if err := srv.Run(srvCtx); err != nil {
				log.Error("metrics server stopped", "err", err)
			}
		})
	}

	// The first Ctrl-C (ctx) stops reading and flushes; a second one cuts
	// the flush short.
	runDone := make(chan struct{})
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-runDone:
			return
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		log.Info("stopping: delivering buffered messages to Kafka (press Ctrl-C again to stop waiting)")
		select {
		case <-sig:
			log.Warn("not waiting for Kafka any longer; unacknowledged messages are counted as failed")
			b.Abort()
		case <-runDone:
		}
	})
	err = b.Run(ctx, gw, pub.Run)
	close(runDone)
	return err
}

// botTopic creates the topic when missing, or with --no-create-topic checks
// that it exists.
func botTopic(ctx context.Context, cl *kgo.Client, o *botOptions, log *slog.Logger) error {
	f := o.flags
	if f.noCreate {
		_, err := kafka.DescribeTopic(ctx, cl, f.topic)
		return err
	}
	spec := kafka.TopicSpec{Name: f.topic, Partitions: int32(f.partitions), ReplicationFactor: int16(f.replicationFactor)}
	created, err := kafka.EnsureTopic(ctx, cl, spec)
	if err != nil {
		return err
	}
	if created {
		log.Info("created topic", "topic", f.topic, "partitions", f.partitions, "replication_factor", f.replicationFactor)
	}
	return nil
}

// botHintError is an error with a "hint:" line.
type botHintError struct {
	err  error
	hint string
}

func (h *botHintError) Error() string { return h.err.Error() }
func (h *botHintError) Unwrap() error { return h.err }
func (h *botHintError) Hint() string  { return h.hint }

// botError rewords the failures an operator must act on.
func botError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, discord.ErrTokenRejected):
		// The innermost error says how (REST 401 or close 4004).
		var he *discord.HTTPError
		var ce *discord.CloseError
		switch {
		case errors.As(err, &he):
			err = he
		case errors.As(err, &ce):
			err = ce
		}
		return &botHintError{err: err, hint: tokenWhere}
	}
	return err
}

// redactErr makes sure the token appears in no error text.
func redactErr(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	if !strings.Contains(err.Error(), secret) {
		var h interface{ Hint() string }
		if !errors.As(err, &h) || !strings.Contains(h.Hint(), secret) {
			return err
		}
	}
	return &redactedError{err: err, secret: secret}
}

type redactedError struct {
	err    error
	secret string
}

func (r *redactedError) Error() string {
	return strings.ReplaceAll(r.err.Error(), r.secret, "[REDACTED]")
}
func (r *redactedError) Unwrap() error { return r.err }
func (r *redactedError) Hint() string {
	var h interface{ Hint() string }
	if errors.As(r.err, &h) {
		return strings.ReplaceAll(h.Hint(), r.secret, "[REDACTED]")
	}
	return ""
}

// redactHandler replaces the secret in every log message and string value: a
// safety net, since no code path is meant to log it.
type redactHandler struct {
	h      slog.Handler
	secret string
}

func (r *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	if r.secret == "" {
		return r.h.Handle(ctx, rec)
	}
	out := slog.NewRecord(rec.Time, rec.Level, strings.ReplaceAll(rec.Message, r.secret, "[REDACTED]"), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.redact(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r *redactHandler) redact(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, strings.ReplaceAll(v.String(), r.secret, "[REDACTED]"))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, g := range as {
			out[i] = r.redact(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		s := fmt.Sprint(v.Any())
		if strings.Contains(s, r.secret) {
			return slog.String(a.Key, strings.ReplaceAll(s, r.secret, "[REDACTED]"))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (r *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.redact(a)
	}
	return &redactHandler{h: r.h.WithAttrs(out), secret: r.secret}
}

func (r *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: r.h.WithGroup(name), secret: r.secret}
}
