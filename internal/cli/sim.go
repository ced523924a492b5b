package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/discord/sim"
)

const simAbout = `Run a local Discord: the Gateway (v10, WebSocket) and the REST endpoints a bot
uses, with generated message traffic, until Ctrl-C. Point the bot at the REST
URL it prints; the bot finds the gateway through GET /gateway/bot as on Discord.

The token the simulator accepts comes from $DISCORD_TOKEN or --token-file; with
neither, one is generated and printed once on stdout. A simulator token opens
nothing but this simulator: it is not a secret.`

const simExample = `cordstream sim --listen 127.0.0.1:8080 --rate 20 --authors 50 --guilds 3 --seed 1
# in another terminal, with the token the simulator printed:
DISCORD_TOKEN=<token> cordstream bot --discord-api-url http://127.0.0.1:8080/api/v10 --brokers localhost:9092`

var privilegedIntentNames = map[string]uint64{
	"message-content": sim.IntentMessageContent,
	"guild-members":   sim.IntentGuildMembers,
	"guild-presences": sim.IntentGuildPresences,
}

func runSim(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("sim", e, simAbout, simExample)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve REST and the gateway on (port 0 picks a free one)")
	tokenFile := fs.String("token-file", "", "file holding the bot token to accept (default: $DISCORD_TOKEN, else a generated one)")
	rate := fs.Float64("rate", 20, "messages per second, on average (bursts included)")
	count := fs.Int("count", 0, "stop posting after this many messages (0: until Ctrl-C); the server keeps running")
	authors := fs.Int("authors", 50, "number of human authors (activity is skewed: a few write most)")
	guilds := fs.Int("guilds", 3, "number of guilds")
	channels := fs.Int("channels", 3, "text channels per guild")
	dms := fs.Int("dms", 2, "DM channels with the bot (0: none)")
	seed := fs.Int64("seed", 1, "seed of the generated world and traffic (same seed, same messages)")
	heartbeat := fs.Duration("heartbeat-interval", 41250*time.Millisecond, "heartbeat_interval sent in HELLO")
	shards := fs.Int("shards", 1, "shard count recommended by GET /gateway/bot")
	maxConc := fs.Int("max-concurrency", 1, "session_start_limit.max_concurrency: IDENTIFYs per 5 s per rate-limit bucket (shard_id % max_concurrency); beyond it INVALID_SESSION")
	startLimit := fs.Int("session-start-limit", 1000, "session starts (IDENTIFYs) allowed per day; beyond it every session ends and the token is reset, as on Discord")
	largeBot := fs.Int("large-bot-shard-multiple", 0, "large bot sharding: refuse (4010) a shard count that is not a multiple of this (0: off)")
	privileged := fs.String("privileged-intents", "message-content", "privileged intents enabled \"in the Developer Portal\": comma-separated message-content, guild-members, guild-presences, or none (asking for another: close 4014)")
	restLimit := fs.Int("rest-limit", 5, "REST requests per second per route and channel before a 429")
	verbose := fs.Bool("verbose", false, "log every connection")
	var h sim.Hostile
	fs.IntVar(&h.Shards, "hostile-shards", 0, "fault injection: recommend this shard count in GET /gateway/bot (e.g. 1000000000)")
	fs.IntVar(&h.MaxConcurrency, "hostile-max-concurrency", 0, "fault injection: this session_start_limit.max_concurrency in GET /gateway/bot")
	fs.StringVar(&h.GatewayURL, "hostile-gateway-url", "", "fault injection: hand out this Gateway `URL` (e.g. ws://gateway.example.com)")
	fs.StringVar(&h.ResumeURL, "hostile-resume-url", "", "fault injection: send this resume_gateway_url in READY (e.g. wss://resume.example.com)")
	fs.StringVar(&h.RetryAfter, "hostile-retry-after", "", "fault injection: answer REST requests with 429 and this retry_after, written as is (e.g. 1e300, -1)")
	fs.StringVar(&h.RetryAfterOn, "hostile-retry-after-on", "", "with --hostile-retry-after: only for paths under /api/v10 starting with this `prefix` (e.g. /channels/)")
	fs.StringVar(&h.HeartbeatInterval, "hostile-heartbeat-interval", "", "fault injection: HELLO's heartbeat_interval in milliseconds, written as is (e.g. 1e300, 0.001)")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	switch {
	case *rate <= 0:
		return usageErrorf("for a quiet server use a low rate such as 0.1", "--rate must be above 0 (messages per second), got %v", *rate)
	case *count < 0:
		return usageErrorf("", "--count must be 0 (no limit) or more, got %d", *count)
	case *authors < 1 || *guilds < 1 || *channels < 1:
		return usageErrorf("", "--authors, --guilds and --channels must each be at least 1")
	case *dms < 0:
		return usageErrorf("", "--dms must be 0 or more, got %d", *dms)
	case *heartbeat < 10*time.Millisecond:
		return usageErrorf("Discord uses 41.25s; tests use 100ms or more", "--heartbeat-interval %v is too short", *heartbeat)
	case *shards < 1:
		return usageErrorf("", "--shards must be at least 1, got %d", *shards)
	case *maxConc < 1 || *maxConc > 1024:
		return usageErrorf("Discord grants 1, or 16 and multiples of it to large bots", "--max-concurrency must be between 1 and 1024, got %d", *maxConc)
	case *startLimit < 1:
		return usageErrorf("Discord grants 1000 a day", "--session-start-limit must be at least 1, got %d", *startLimit)
	case *largeBot < 0:
		return usageErrorf("", "--large-bot-shard-multiple must be 0 (off) or more, got %d", *largeBot)
	case *restLimit < 1:
		return usageErrorf("", "--rest-limit must be at least 1, got %d", *restLimit)
	}
	if err := hostileText(h); err != nil {
		return err
	}
	var intents uint64
	for _, name := range splitList(*privileged) {
		if name == "none" {
			continue
		}
		bit, ok := privilegedIntentNames[name]
		if !ok {
			return usageErrorf("use message-content, guild-members, guild-presences or none", "unknown privileged intent %q", name)
		}
		intents |= bit
	}

	token, source, err := simToken(e, *tokenFile)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := newLogger(e, level)
	cfg := sim.Config{
		PrivilegedIntents:     intents,
		Shards:                *shards,
		MaxConcurrency:        *maxConc,
		SessionStartLimit:     *startLimit,
		LargeBotShardMultiple: *largeBot,
		HeartbeatInterval:     *heartbeat,
		RESTRouteLimit:        *restLimit,
		HistoryLimit:          20000, // per channel, for REST backfill
		SentLimit:             1,     // nothing reads Sent here
		Logger:                log,
	}
	if token != "" {
		cfg.Tokens = []string{token}
		if _, ok := sim.BotIDFromToken(token); !ok {
			log.Warn("the token does not have Discord's shape (base64 of the bot id, then two more parts separated by dots); clients that check it, such as disgo, will refuse it", "token_source", source)
		}
	}
	srv := sim.New(cfg)
	if h != (sim.Hostile{}) {
		srv.SetHostile(h)
		log.Warn("hostile answers on: this simulator answers as no real Discord would", "hostile", fmt.Sprintf("%+v", h))
	}
	if err := srv.Start(*listen); err != nil {
		return &simError{err: err, hint: "pick another address with --listen, e.g. --listen 127.0.0.1:0 for any free port"}
	}
	defer srv.Close()

	fmt.Fprintf(e.stdout, "Discord simulator listening.\n  REST API: %s\n  Gateway:  %s\n  Start record (IDENTIFY pacing, shards held twice): http://%s/_sim/starts\n",
		srv.APIURL(), srv.GatewayURL(), srv.Addr())
	if token == "" {
		fmt.Fprintf(e.stdout, "Generated bot token (a simulator token, not a secret). Run the bot against it:\n  export DISCORD_TOKEN='%s'\n  cordstream bot --discord-api-url %s --brokers localhost:9092\n", srv.Token(), srv.APIURL())
	} else {
		fmt.Fprintf(e.stdout, "Accepting the token from %s.\nRun the bot against it:\n  cordstream bot --discord-api-url %s --brokers localhost:9092\n", source, srv.APIURL())
	}
	log.Info("generating traffic", "rate", *rate, "authors", *authors, "guilds", *guilds, "seed", *seed)

	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	var wg sync.WaitGroup
	var genErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		genErr = srv.Generate(genCtx, sim.Traffic{
			Rate: *rate, Count: *count, Authors: *authors, Guilds: *guilds,
			ChannelsPerGuild: *channels, DMs: dmsOrNone(*dms), Seed: *seed,
		})
		if genErr == nil && *count > 0 && ctx.Err() == nil {
			log.Info("posted every message asked for; still serving until Ctrl-C", "count", *count)
		}
	}()
	<-ctx.Done()
	stopGen()
	wg.Wait()
	st := srv.Stats()
	starts := srv.StartReport()
	if err := srv.Close(); err != nil {
		log.Warn("closing the simulator", "err", err)
	}
	fmt.Fprintf(e.stdout, "Stopped. Messages posted: %d; connections: %d; identifies: %d; resumes: %d; events sent: %d live, %d replayed.\n",
		st.Messages, st.Connections, st.Identifies, st.Resumes, st.EventsDispatched, st.EventsReplayed)
	if err := starts.Err(); err != nil {
		fmt.Fprintf(e.stdout, "Start limits broken: %v\n", err)
	} else {
		fmt.Fprintf(e.stdout, "Start limits kept: IDENTIFYs paced, daily budget respected, no shard held by two connections at once.\n")
	}
	return genErr
}

// hostileText checks that the values written into JSON as they are hold
// one JSON token (a number, or a word such as NaN), so that the simulator's
// answers stay parseable as far as the test wants.
func hostileText(h sim.Hostile) error {
	for flag, v := range map[string]string{"--hostile-retry-after": h.RetryAfter, "--hostile-heartbeat-interval": h.HeartbeatInterval} {
		if strings.ContainsAny(v, " \t\r\n,{}[]\":") {
			return usageErrorf("give one number, e.g. 1e300 or -1", "%s %q: not a single number", flag, v)
		}
	}
	return nil
}

func dmsOrNone(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// simToken returns the token to accept and where it came from ("" when
// none was given: the simulator generates one).
func simToken(e *env, file string) (token, source string, err error) {
	envTok := strings.TrimSpace(e.getenv("DISCORD_TOKEN"))
	if file != "" && envTok != "" {
		return "", "", usageErrorf("unset $DISCORD_TOKEN or drop --token-file", "the token is given twice: in $DISCORD_TOKEN and in --token-file")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", "", &simError{err: fmt.Errorf("read --token-file: %w", err), hint: "give a file holding the bot token, or set DISCORD_TOKEN, or give neither to get a generated token"}
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", "", usageErrorf("put the token on the file's first line", "--token-file %s is empty", file)
		}
		return strings.TrimPrefix(tok, "Bot "), "--token-file", nil
	}
	if envTok != "" {
		return strings.TrimPrefix(envTok, "Bot "), "$DISCORD_TOKEN", nil
	}
	return "", "", nil
}

// simError is a runtime error of the sim command with a "hint:" line.
type simError struct {
	err  error
	hint string
}

func (h *simError) Error() string { return h.err.Error() }
func (h *simError) Unwrap() error { return h.err }
func (h *simError) Hint() string  { return h.hint }
