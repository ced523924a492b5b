package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/bot"
	"github.com/cordstream/cordstream/internal/botgroup"
	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/httpserve"
	"github.com/cordstream/cordstream/internal/kafka"
	"github.com/cordstream/cordstream/internal/metrics"
	"github.com/cordstream/cordstream/internal/spool"
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

Manual sharding: --shard-count N --shard-ids 0-7 runs only shards 0 to 7
of N (a list such as 0,2,4 or 0-3,8 works too); run the others in other
processes with the same --shard-count and each its own --spool-dir. Each
process paces only its own IDENTIFYs: start them one after another, about
5 s per shard of a rate-limit bucket apart. With large bot sharding
(max_concurrency above 1) N must be a multiple of max_concurrency.

Bot group: --group NAME makes the process one instance of a group; every
instance started with the same NAME against the same Kafka shares the
shards (N from --shard-count, the same everywhere, else Discord's
recommendation) through a Kafka consumer group, one connection per shard
at a time. IDENTIFYs are paced for the whole group and counted against the
daily session-start budget. When an instance stops or dies, its shards move
to the others within seconds and resume their Discord sessions, kept in
Kafka once the messages up to them are acknowledged; where Discord refuses
the resume, the backfill fetches the gap. Each instance needs its own
--spool-dir. See docs/BOT-OPERATIONS.md.

Delivery: a message counts as published once Kafka acknowledged it
(idempotent producer, acks=all). Every message is first written to a spool on
local disk (--spool-dir; by default
$XDG_STATE_HOME/cordstream/spool/<topic>, else
~/.local/state/cordstream/spool/<topic>) before the bot reads the next event
from Discord, and leaves the spool only once Kafka acknowledged it. While
Kafka is unreachable the bot keeps retrying, says so every few seconds, and
the spool grows up to --spool-max-bytes; when it is full, the bot stops
reading from Discord until Kafka catches up (Discord holds the events and
replays them on resume). The same when the spool's file system is full: the
bot says so, /healthz reports it, and reading resumes by itself once Kafka
has taken what the spool holds (which frees its space) or space is freed.
After a crash or a restart, what the spool holds is published first, in
order, on a full disk too. With --spool-dir off, up to --max-buffered
messages wait in memory instead, and a crash loses them.

Backfill: the bot saves, per channel, the last message it published
(channels.json and its journal channels.log in the spool directory). When it
starts again, or when Discord ends a session without replaying it, the bot
fetches the messages sent meanwhile through the REST API (GET
/channels/{id}/messages?after=..., within Discord's rate limits) and
publishes them like live ones, older than --backfill-max-age excepted. It
starts at the last message published, or 5 s before the stream was lost if
that is earlier: Discord may deliver a message after one written later. It
needs the Read Message History permission in each channel. The very first
start fetches nothing (there is no gap yet).

Duplicates: a message can reach Kafka twice, always with the same
message_id: when the bot dies after Kafka acknowledged it but before the
spool or the positions recorded that, the messages of the last 5 s before a
stop in each channel active then, or when Discord itself sends an event
twice across sessions. Consumers de-duplicate by message_id.

Secrets: the token travels only over https and wss (plain http and ws only
to a loopback address, such as cordstream sim's); no part of it is ever
logged; a --token-file that others may read is warned about.

Bot and webhook messages are captured by default, as the original producer
did; every record says author_is_bot and webhook_id, so consumers can filter.
Use --include-bots=false or --include-webhooks=false to drop them here.

Ctrl-C or SIGTERM stops reading from Discord, waits up to --shutdown-timeout
for Kafka to acknowledge what is buffered, logs the counts and exits 0. What
Kafka did not acknowledge by then stays in the spool for the next start
(without a spool: the ids are logged and the exit code is 1). A second
Ctrl-C stops waiting.`

const botExample = `export DISCORD_TOKEN=...   # Developer Portal -> your application -> Bot -> Reset Token
cordstream bot --brokers localhost:9092 --topic discord_messages
# only two channels, text hashed, edits and deletes too, metrics on 127.0.0.1:9091:
cordstream bot --brokers localhost:9092 --token-file /run/secrets/discord_token \
    --channels 81384788765712384,81384788765712385 --content hash --edits-and-deletes --metrics 127.0.0.1:9091`

// Health thresholds of /healthz.
const (
	botGatewayDownUnhealthy  = time.Minute      // a shard disconnected this long
	botKafkaStallUnhealthy   = 30 * time.Second // records waiting without any ack this long
	botSpoolBlockedUnhealthy = 2 * time.Second  // the spool taking no message this long (reading from Discord paused)
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
	spoolDir                      string
	spoolMaxBytes                 byteSize
	spoolSync                     string
	backfill                      bool
	backfillMaxAge                time.Duration
	backfillChannels              int
	// Manual sharding.
	shardCount int
	shardIDs   string
	// Bot group.
	group, groupMember  string
	groupSessionTimeout time.Duration
}

func addBotFlags(fs *flagSet) *botFlags {
	f := &botFlags{}
	fs.StringVar(&f.topic, "topic", chat.DefaultTopic, "Kafka topic the messages go to")
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
	fs.IntVar(&f.maxBuffered, "max-buffered", bot.DefaultMaxBuffered, "messages sent to Kafka and not yet acknowledged at most; without a spool also the in-memory buffer: when that many wait, reading from Discord pauses")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to wait at exit for Kafka to acknowledge buffered messages")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics, /healthz and /readyz on this address, e.g. 127.0.0.1:9091 (a non-loopback address is readable by anyone who reaches it)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.spoolDir, "spool-dir", "", "`directory` of the durable spool and the backfill positions, one per topic and bot; \"off\" keeps messages in memory only (default $XDG_STATE_HOME/cordstream/spool/<topic>, else ~/.local/state/cordstream/spool/<topic>)")
	f.spoolMaxBytes = 1 << 30
	fs.Var(&f.spoolMaxBytes, "spool-max-bytes", "`size` bound of the spool on disk, e.g. 512MiB or 2GB; when full, reading from Discord pauses")
	fs.StringVar(&f.spoolSync, "spool-sync", "group", "when the spool is fsynced: group (a continuous group commit, at most one fsync every 10ms, while reading from Discord goes on; a machine crash can lose the last ~10 milliseconds, which the backfill fetches again), always (before the next Discord event is read; slower), or a period such as 100ms")
	fs.BoolVar(&f.backfill, "backfill", true, "after a gap (the bot was down, or Discord ended a session) fetch the missed messages through the REST API (--backfill=false: do not)")
	fs.DurationVar(&f.backfillMaxAge, "backfill-max-age", 24*time.Hour, "do not fetch messages older than this")
	fs.IntVar(&f.backfillChannels, "backfill-channels", 0, "fetch at most this many channels per gap, the most recently active first (0: all)")
	fs.IntVar(&f.shardCount, "shard-count", 0, "total number of shards of the bot, the same in every process (0: as many as Discord recommends)")
	fs.StringVar(&f.shardIDs, "shard-ids", "", "run only these shards, e.g. 0-7 or 0,2,4 or 0-3,8 (needs --shard-count; run the others in other processes, one after another)")
	fs.StringVar(&f.group, "group", "", "run as one instance of the bot group `name`: instances with the same group (and Kafka) share the shards among them, and take over those of an instance that stops or dies (see docs/BOT-OPERATIONS.md)")
	fs.StringVar(&f.groupMember, "group-member", "", "this instance's `name` in the group's logs and IDENTIFY claims (default: host name and process id)")
	fs.DurationVar(&f.groupSessionTimeout, "group-session-timeout", botgroup.DefaultSessionTimeout, "with --group: how long the group waits for an instance that stopped answering before moving its shards (it lets them go itself a few seconds earlier)")
	return f
}

// byteSize is a flag holding a size in bytes: 1048576, 512KiB, 64MiB, 2GB.
type byteSize int64

func (b *byteSize) String() string {
	v := int64(*b)
	for _, u := range []struct {
		s string
		n int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.n && v%u.n == 0 {
			return fmt.Sprintf("%d%s", v/u.n, u.s)
		}
	}
	return fmt.Sprint(v)
}

func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	mult, ok := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[strings.TrimSpace(s[i:])]
	n, err := strconv.ParseInt(strings.TrimSpace(s[:i]), 10, 64)
	if !ok || err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size: use bytes or a unit, e.g. 512MiB, 2GB", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// botOptions are the checked settings.
type botOptions struct {
	flags    *botFlags
	filter   bot.Filter
	content  bot.ContentMode
	intents  discord.Intents
	logLevel slog.Level
	token    string
	// spoolDir is the spool directory ("" off); spoolSync 0 means always
	// or group (then spoolUnsynced > 0).
	spoolDir      string
	spoolSync     time.Duration
	spoolUnsynced int
	shards        discord.ShardPlan
	// tokenWarning is said once the log exists: the token file is
	// readable by others.
	tokenWarning string
}

// groupMaxUnsynced is how many spool entries --spool-sync group lets await
// fsync before reading from Discord waits.
const groupMaxUnsynced = 1000

// groupSyncGap spaces the fsyncs of --spool-sync group: each costs about
// the same CPU whatever it covers, so back to back at 1,000 messages/s they
// cost more than the rest of the bot's work per message together.
const groupSyncGap = 10 * time.Millisecond

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
		dst  *bot.Snowflakes
	}{
		{"--guilds", f.guilds, &o.filter.Guilds},
		{"--exclude-guilds", f.excludeGuilds, &o.filter.ExcludeGuilds},
		{"--channels", f.channels, &o.filter.Channels},
		{"--exclude-channels", f.excludeChannels, &o.filter.ExcludeChannels},
	}
	for _, l := range lists {
		if *l.dst, err = bot.ParseSnowflakes(l.flag, l.ids); err != nil {
			return nil, usageErrorf("", "%v", err)
		}
	}
	if f.maxBuffered < 1 || f.maxBuffered > 10_000_000 {
		return nil, usageErrorf(fmt.Sprintf("e.g. --max-buffered %d", bot.DefaultMaxBuffered), "--max-buffered %d: must be between 1 and 10000000", f.maxBuffered)
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
	switch f.spoolDir {
	case "off", "none":
	case "":
		o.spoolDir = defaultSpoolDir(e, f.topic)
	default:
		o.spoolDir = f.spoolDir
	}
	if f.spoolMaxBytes < 1<<20 {
		return nil, usageErrorf("e.g. --spool-max-bytes 1GiB", "--spool-max-bytes %s: must be at least 1MiB", f.spoolMaxBytes.String())
	}
	switch f.spoolSync {
	case "always":
	case "group":
		o.spoolUnsynced = groupMaxUnsynced
	default:
		d, err := time.ParseDuration(f.spoolSync)
		if err != nil || d <= 0 || d > time.Minute {
			return nil, usageErrorf("use group, always, or a period such as 100ms", "--spool-sync %q: not group, always, nor a period up to 1m", f.spoolSync)
		}
		o.spoolSync = d
	}
	if f.backfillMaxAge <= 0 {
		return nil, usageErrorf("e.g. --backfill-max-age 24h", "--backfill-max-age must be positive, not %s", f.backfillMaxAge)
	}
	if f.backfillChannels < 0 {
		return nil, usageErrorf("use 0 for no limit", "--backfill-channels %d: must not be negative", f.backfillChannels)
	}
	if o.shards, err = discord.NewShardPlan(f.shardCount, f.shardIDs); err != nil {
		return nil, usageErrorf("e.g. --shard-count 16 --shard-ids 0-7 in one process and --shard-count 16 --shard-ids 8-15 in another", "--shard-count/--shard-ids: %v", err)
	}
	if err := f.checkGroup(); err != nil {
		return nil, err
	}
	if o.token, err = f.readToken(e); err != nil {
		return nil, err
	}
	if f.tokenFile != "" {
		o.tokenWarning = secretFileWarning(f.tokenFile)
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
	log := slog.New(newRedactHandler(newLogger(e, o.logLevel).Handler(), o.token)).With("command", "bot")
	if o.tokenWarning != "" {
		log.Warn(o.tokenWarning, "file", f.tokenFile)
	}
	err = botRun(ctx, o, kcfg, log, nil)
	return redactErr(botError(err), o.token)
}

// defaultSpoolDir is $XDG_STATE_HOME/cordstream/spool/<topic>, else
// $HOME/.local/state/cordstream/spool/<topic>; "" (no spool) when neither
// variable is set.
func defaultSpoolDir(e *env, topic string) string {
	if d := e.getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "cordstream", "spool", topic)
	}
	if h := e.getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "cordstream", "spool", topic)
	}
	return ""
}

// botRun connects to Kafka, then to Discord, and runs until ctx ends or a
// fatal error. Metrics are registered on reg (a new registry when nil).
func botRun(ctx context.Context, o *botOptions, kcfg kafka.Config, log *slog.Logger, reg *metrics.Registry) error {
	f := o.flags
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	m := bot.NewMetrics(reg)

	// The spool first: it is the one thing another bot may hold.
	var sp *spool.Spool
	var recovered int64
	cursorsPath := ""
	if o.spoolDir != "" {
		var rec spool.Recovery
		var err error
		sopts := spool.Options{MaxBytes: int64(f.spoolMaxBytes), SyncEvery: o.spoolSync, MaxUnsynced: o.spoolUnsynced, Log: log.With("component", "spool")}
		if o.spoolUnsynced > 0 {
			sopts.SyncGap = groupSyncGap
		}
		sp, rec, err = spool.Open(o.spoolDir, sopts)
		if err != nil {
			hint := "check that --spool-dir names a directory this user can create and write, on a local file system (or use --spool-dir off to keep messages in memory only)"
			if errors.Is(err, spool.ErrLocked) {
				hint = "give each bot its own --spool-dir (or --spool-dir off to keep messages in memory only)"
			}
			return &botHintError{err: err, hint: hint}
		}
		m.SpoolRecovered(rec.Damaged + rec.Corrupt + map[bool]int{true: 1}[rec.TornBytes > 0])
		recovered = rec.Entries
		sync := "always (fsync before the next Discord event is read)"
		switch {
		case o.spoolSync > 0:
			sync = "every " + o.spoolSync.String()
		case o.spoolUnsynced > 0:
			sync = fmt.Sprintf("group (at most one fsync every %s; reading waits when %d messages await fsync)", groupSyncGap, o.spoolUnsynced)
		}
		log.Info("spool opened", "dir", o.spoolDir, "max_bytes", f.spoolMaxBytes.String(), "fsync", sync,
			"messages_from_previous_run", rec.Entries)
		if err := spoolSpace(sp, rec, int64(f.spoolMaxBytes), log); err != nil {
			sp.Close()
			return err
		}
		cursorsPath = filepath.Join(o.spoolDir, bot.CursorsFile)
	} else if f.spoolDir == "off" || f.spoolDir == "none" {
		log.Info("no spool (--spool-dir off): messages wait for Kafka in memory only; a crash loses them")
	} else {
		log.Warn("no spool: neither $XDG_STATE_HOME nor $HOME is set; messages wait for Kafka in memory only and a crash loses them (set --spool-dir)")
	}
	closeSpool := func() {
		if sp != nil {
			sp.Close()
		}
	}
	cursors, err := bot.LoadCursors(cursorsPath, nil, log)
	if err != nil {
		closeSpool()
		return err
	}
	// Written at once: from now on the bot is responsible for every message,
	// and a crash in the next second must not make the next start think it
	// never ran.
	if err := cursors.Save(); err != nil {
		if !spool.IsNoSpace(err) {
			closeSpool()
			return err
		}
		log.Warn("cannot save the backfill positions yet: the spool's file system is full; retrying every second", "err", err)
	}
	pcfg := bot.PublisherConfig{Topic: f.topic, MaxBuffered: f.maxBuffered, Log: log, Metrics: m}
	if sp != nil {
		pcfg.Linger = bot.SpooledLinger // the spool's forwarder gathers the batches
	}
	if sp == nil {
		pcfg.Cursors = cursors
	}
	pub, err := bot.NewPublisher(pcfg,
		func(opts ...kgo.Opt) (*kgo.Client, error) { return kafka.NewClient(ctx, kcfg, log, opts...) })
	if err != nil {
		closeSpool()
		return err
	}
	if err := botTopic(ctx, pub.Client(), o, log); err != nil {
		pub.Close(context.Background())
		closeSpool()
		return err
	}
	var out bot.Outlet = pub
	monitors := []func(context.Context) error{pub.Run}
	recent := bot.NewRecentIDs(100000)
	var spooled *bot.Spooled
	if sp != nil {
		if recovered > 0 {
			log.Info("publishing the messages the previous run left in the spool first", "messages", recovered)
		}
		spooled = bot.NewSpooled(bot.SpooledConfig{Spool: sp, Publisher: pub, Replayed: recovered, Cursors: cursors, Recent: recent, Log: log, Metrics: m})
		out = spooled
		monitors = append(monitors, spooled.Run)
	}
	monitors = append(monitors, func(ctx context.Context) error { return cursors.Run(ctx, time.Second) })
	b := bot.New(bot.Config{Filter: o.filter, Content: o.content, Log: log, Metrics: m, ShutdownTimeout: f.shutdownTimeout, Cursors: cursors, Recent: recent}, out)
	var bf *bot.Backfiller
	gcfg := discord.Config{
		Token:     o.token,
		APIURL:    f.apiURL,
		Intents:   o.intents,
		Handler:   b.Handle,
		Updates:   f.editsAndDeletes,
		Log:       log,
		Metrics:   reg,
		UserAgent: "DiscordBot (https://github.com/cordstream/cordstream, " + Version + ")",
		Shards:    o.shards.Count,
		ShardIDs:  o.shards.IDs,
	}
	var group *botGroup
	if f.group != "" {
		var marks func() (uint64, uint64)
		if spooled != nil {
			marks = spooled.Marks
		}
		group = newBotGroup(o, kcfg, log, reg, marks)
		gcfg.Assign = group.run
		gcfg.IdentifyGate = group.gate
	}
	if f.backfill {
		// The hooks run only once the Gateway runs, after bf is set.
		gcfg.OnReady = func(r discord.ReadyInfo) { bf.OnReady(r) }
		gcfg.OnGuild = func(g discord.GuildInfo) { bf.OnGuild(g) }
	}
	gw, err := discord.New(gcfg)
	if err != nil {
		out.Close(context.Background())
		return err
	}
	var feed bot.Feed = gw
	if f.backfill {
		// In a group, a shard's first session in this instance may follow
		// another instance's: fetch from this instance's positions, or
		// from when it started, what that one may not have delivered.
		bf = bot.NewBackfiller(bot.BackfillConfig{REST: gw.REST(), Cursors: cursors, Handle: b.HandleBackfill,
			MaxAge: f.backfillMaxAge, MaxChannels: f.backfillChannels, Log: log, Metrics: m, FirstSession: group != nil})
		feed = bot.Feeds(gw, bf)
	}

	var wg sync.WaitGroup
	srvCtx, stopSrv := context.WithCancel(context.Background())
	defer func() {
		stopSrv()
		wg.Wait()
	}()
	if f.metrics != "" {
		health := metrics.NewHealth()
		health.Live("gateway", func() error { return gw.Health(botGatewayDownUnhealthy) })
		health.Live("kafka", func() error { return pub.Healthy(botKafkaStallUnhealthy) })
		if spooled != nil {
			health.Live("spool", func() error { return spooled.SpoolHealthy(botSpoolBlockedUnhealthy) })
		}
		srv, err := httpserve.Listen(f.metrics, reg.Handler(health), httpserve.Limits{}, log, "metrics", "/metrics /healthz /readyz")
		if err != nil {
			out.Close(context.Background())
			return usageErrorf("use a free host:port, e.g. --metrics 127.0.0.1:9091 (or 127.0.0.1:0 for any free port)", "--metrics: %v", err)
		}
		wg.Go(func() {
			if err := srv.Run(srvCtx); err != nil {
				log.Error("metrics server stopped", "err", err)
			}
		})
	}

	// The first Ctrl-C (ctx) stops reading and flushes; a second one cuts
	// the flush short.
	watched := onSecondStop(ctx, log,
		"stopping: delivering buffered messages to Kafka (press Ctrl-C again to stop waiting)",
		"not waiting for Kafka any longer; unacknowledged messages are counted as failed", b.Abort)
	err = b.Run(ctx, feed, monitors...)
	watched()
	return err
}

// spoolSpace says what the spool's file system allows: a restart on a
// full one publishes what the spool holds first (which frees space), or,
// when the spool holds nothing, fails saying what to do; a file system
// with less room than --spool-max-bytes is worth a warning.
func spoolSpace(sp *spool.Spool, rec spool.Recovery, maxBytes int64, log *slog.Logger) error {
	limit := byteSize(maxBytes)
	free, ferr := spool.FreeBytes(sp.Dir())
	if rec.NoSpace != nil {
		if rec.Entries == 0 {
			return &botHintError{
				err: fmt.Errorf("the spool's file system is full (%w), and the spool %s holds no message whose delivery would free space", rec.NoSpace, sp.Dir()),
				hint: "free space on the file system holding --spool-dir, or point --spool-dir at another one; the spool uses up to --spool-max-bytes (" +
					limit.String() + ")",
			}
		}
		log.Error("the spool's file system is full: the bot publishes the messages the spool holds first, and reads from Discord "+
			"once Kafka has taken them and their space is free; to avoid this, give the spool a file system with more free space "+
			"than --spool-max-bytes, or lower --spool-max-bytes",
			"dir", sp.Dir(), "messages_waiting", rec.Entries, "free_bytes", free, "err", rec.NoSpace)
		return nil
	}
	if ferr == nil && free+rec.Bytes < maxBytes {
		log.Warn("the spool's file system has less free space than --spool-max-bytes: a long Kafka outage can fill it first; "+
			"the bot then pauses reading from Discord until Kafka is back (nothing is lost)",
			"dir", sp.Dir(), "free_bytes", free, "max_bytes", limit.String())
	}
	return nil
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

// redactErr makes sure no part of the token appears in an error's text or
// hint.
func redactErr(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	r := discord.NewRedactor(secret)
	hint := ""
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		hint = h.Hint()
	}
	if r.Redact(err.Error()) == err.Error() && r.Redact(hint) == hint {
		return err
	}
	return &redactedError{err: err, r: r}
}

type redactedError struct {
	err error
	r   *discord.Redactor
}

func (e *redactedError) Error() string { return e.r.Redact(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }
func (e *redactedError) Hint() string {
	var h interface{ Hint() string }
	if errors.As(e.err, &h) {
		return e.r.Redact(h.Hint())
	}
	return ""
}

// redactHandler removes every part of the secret from every log message
// and value: a safety net, since no code path is meant to log it.
type redactHandler struct {
	h slog.Handler
	r *discord.Redactor
}

func newRedactHandler(h slog.Handler, secret string) *redactHandler {
	return &redactHandler{h: h, r: discord.NewRedactor(secret)}
}

func (r *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.r.Redact(rec.Message), rec.PC)
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
		return slog.String(a.Key, r.r.Redact(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, g := range as {
			out[i] = r.redact(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		s := fmt.Sprint(v.Any())
		if red := r.r.Redact(s); red != s {
			return slog.String(a.Key, red)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (r *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.redact(a)
	}
	return &redactHandler{h: r.h.WithAttrs(out), r: r.r}
}

func (r *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: r.h.WithGroup(name), r: r.r}
}
