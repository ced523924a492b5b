// Package sim is a local, in-process simulation of Discord's Gateway (v10,
// WebSocket) and of the parts of its REST API (v10) a message-capturing bot
// uses, faithful to the documented protocol, with fault injection. Tests and
// the demo run the real bot against it; `cordstream sim` serves it on a port.
//
// Gateway: HELLO, heartbeats and ACKs (and server-requested heartbeats),
// IDENTIFY with token, intent, shard and concurrency checks, READY with
// resume_gateway_url (/resume on the same port), GUILD_CREATE, then
// MESSAGE_CREATE/UPDATE/DELETE/DELETE_BULK filtered by intents
// (MESSAGE_CONTENT emptying content, embeds, attachments and components
// except in DMs, mentions of the bot and its own messages) and by shard
// ((guild_id >> 22) % num_shards, DMs on shard 0); RESUME with in-order
// replay then RESUMED; RECONNECT (op 7); INVALID_SESSION (op 9); the
// documented close codes; the 120-per-60 s send limit. Compression:
// ?compress=zlib-stream or zstd-stream (one context per connection), or
// per-payload zlib when IDENTIFY says compress:true (disgo v0.18's
// default), else plain JSON text frames.
//
// Start limits (see StartReport): IDENTIFYs paced per max_concurrency
// bucket (op 9 beyond), the daily session-start budget (beyond it every
// session ends and the token is reset), large bot sharding (4010), and a
// record of every shard held by two connections at once; GET /_sim/starts
// serves the record as JSON for tests that run the simulator as a process.
// Guilds, channels and sessions are indexed by shard: 64 shards and
// 100,000 guilds (AddGuilds) cost no scan of every guild per event.
//
// REST (Authorization: Bot <token>): GET /gateway, /gateway/bot,
// /users/@me, /applications/@me, /channels/{id},
// /channels/{id}/messages (around/before/after/limit, newest first) and
// /channels/{id}/messages/{id}, with Discord's error bodies, rate-limit
// headers and 429s.
//
// Faults: DropConnections, StopHeartbeatACKs (zombie), SendReconnect,
// InvalidateSessions, CloseAll, RequestHeartbeat, SendOversizedFrame, and
// hostile answers (SetHostile: absurd shard counts and retry_after, URLs
// a client must refuse, absurd heartbeat intervals). Traffic: Post, Edit,
// Delete, DeleteBulk, or Generate for realistic, reproducible traffic.
//
// Usage:
//
//	srv := sim.New(sim.Config{PrivilegedIntents: sim.IntentMessageContent})
//	if err := srv.Start("127.0.0.1:0"); err != nil { ... }
//	defer srv.Close()
//	g := srv.AddGuild("Café ☕")
//	ch := srv.AddChannel(g.ID, "general")
//	alice := srv.AddUser(sim.User{Username: "alice"})
//	// Run the bot with REST base srv.APIURL() and token srv.Token(); it
//	// finds the gateway through GET /gateway/bot as on Discord.
//	msg, err := srv.Post(sim.MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "hi"})
//	...
//	srv.DropConnections() // the bot must RESUME and get every event it missed
//	_ = srv.Sent()        // what the bot should have captured
//	_ = srv.Stats()       // identifies, resumes, replayed events, closes …
//
// Everything is safe for concurrent use.
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Gateway intents (bits of IDENTIFY's intents).
const (
	IntentGuilds         uint64 = 1 << 0
	IntentGuildMembers   uint64 = 1 << 1 // privileged
	IntentGuildPresences uint64 = 1 << 8 // privileged
	IntentGuildMessages  uint64 = 1 << 9
	IntentDirectMessages uint64 = 1 << 12
	IntentMessageContent uint64 = 1 << 15 // privileged

	// IntentsPrivileged are the intents that must be enabled in the
	// Developer Portal (Config.PrivilegedIntents) before a bot may ask for them.
	IntentsPrivileged = IntentGuildMembers | IntentGuildPresences | IntentMessageContent
	// IntentsValid are all the intent bits Discord defines; any other bit is close 4013.
	IntentsValid uint64 = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<9 |
		1<<10 | 1<<11 | 1<<12 | 1<<13 | 1<<14 | 1<<15 | 1<<16 | 1<<20 | 1<<21 | 1<<24 | 1<<25
)

// Config configures a Server. The zero value works: one generated token, no
// privileged intents enabled, Discord's timings and limits.
type Config struct {
	// Tokens are the accepted bot tokens (all authenticate the same bot
	// user, whose id is read from the first token when it has Discord's
	// shape, see NewToken). Others get close 4004 / REST 401. Empty: one is
	// generated (Server.Token).
	Tokens []string
	// BotName is the bot's username (default "cordstream-sim").
	BotName string
	// PrivilegedIntents are the privileged intents "enabled in the Developer
	// Portal" (IntentMessageContent etc.). Asking for another one: close 4014.
	PrivilegedIntents uint64
	// Shards is the shard count /gateway/bot recommends (default 1).
	Shards int
	// MaxGuildsPerShard: identifying for a shard that would hold more guilds
	// closes with 4011 sharding required (default 2500).
	MaxGuildsPerShard int
	// HeartbeatInterval is sent in HELLO (default 41.25 s).
	HeartbeatInterval time.Duration
	// HeartbeatTimeout: a connection that sends no heartbeat for this long
	// is closed with 4009 session timed out (default 2×interval + 1 s).
	HeartbeatTimeout time.Duration
	// SessionTimeout is how long a session survives without a connection
	// and can still be resumed (default 3 min).
	SessionTimeout time.Duration
	// ReplayBuffer is how many recent events each session keeps for resume
	// (default 20000); resuming from an older seq gets op 9 false.
	ReplayBuffer int
	// HistoryLimit bounds the messages kept per channel for REST history,
	// and SentLimit those kept for Sent: at least the newest that many are
	// kept (0: all, the default). Set them for long runs.
	HistoryLimit int
	SentLimit    int
	// GatewaySendLimit payloads per GatewaySendWindow per connection, then
	// close 4008. Default: Discord's 120 per 60 s plus the heartbeats the
	// HeartbeatInterval calls for in that window (so a short test interval
	// does not eat the budget; with Discord's 41.25 s that is 121).
	GatewaySendLimit  int
	GatewaySendWindow time.Duration
	// MaxConcurrency is session_start_limit.max_concurrency: IDENTIFYs per
	// IdentifyInterval per rate-limit bucket (shard_id % max_concurrency);
	// beyond it the IDENTIFY is answered with op 9 false (default 1 per 5 s;
	// a negative IdentifyInterval disables the check).
	MaxConcurrency   int
	IdentifyInterval time.Duration
	// SessionStartLimit is session_start_limit.total (default 1000): every
	// successful IDENTIFY uses one. An IDENTIFY when none remain gets op 9
	// false, and, as Discord documents, every active session of the bot is
	// terminated (close 4004) and the token reset (Token returns the new
	// one; see StartReport).
	SessionStartLimit int
	// LargeBotShardMultiple, when above 1, is the shard number of "large bot
	// sharding": an IDENTIFY whose shard count is not a multiple of it is
	// closed with 4010 invalid shard.
	LargeBotShardMultiple int
	// RequireResumeURL answers a RESUME sent to the main gateway URL instead
	// of resume_gateway_url with op 9 false.
	RequireResumeURL bool
	// RESTRouteLimit requests per RESTRouteWindow per route and channel,
	// then 429 (default 5 per 1 s).
	RESTRouteLimit  int
	RESTRouteWindow time.Duration
	// RESTGlobalLimit requests per second per bot, then a global 429
	// (default 50; negative disables).
	RESTGlobalLimit int
	// Logger receives connection-level logs (default: discard).
	Logger *slog.Logger
	// Clock gives message timestamps and therefore snowflakes (default time.Now).
	// Heartbeats, sessions and rate limits always use the real clock.
	Clock func() time.Time
}

func (c *Config) setDefaults() {
	if c.BotName == "" {
		c.BotName = "cordstream-sim"
	}
	if c.Shards <= 0 {
		c.Shards = 1
	}
	if c.MaxGuildsPerShard <= 0 {
		c.MaxGuildsPerShard = 2500
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 41250 * time.Millisecond
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = 2*c.HeartbeatInterval + time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 3 * time.Minute
	}
	if c.ReplayBuffer <= 0 {
		c.ReplayBuffer = 20000
	}
	if c.GatewaySendWindow <= 0 {
		c.GatewaySendWindow = 60 * time.Second
	}
	if c.GatewaySendLimit <= 0 {
		c.GatewaySendLimit = 120 + int(c.GatewaySendWindow/c.HeartbeatInterval)
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 1
	}
	if c.IdentifyInterval == 0 {
		c.IdentifyInterval = 5 * time.Second
	}
	if c.SessionStartLimit <= 0 {
		c.SessionStartLimit = 1000
	}
	if c.RESTRouteLimit <= 0 {
		c.RESTRouteLimit = 5
	}
	if c.RESTRouteWindow <= 0 {
		c.RESTRouteWindow = time.Second
	}
	if c.RESTGlobalLimit == 0 {
		c.RESTGlobalLimit = 50
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
}

// Stats counts what happened on a Server. All counters only grow.
type Stats struct {
	Connections       int // WebSocket connections accepted
	OpenConnections   int // currently open
	Identifies        int // successful IDENTIFYs (READY sent)
	Resumes           int // successful RESUMEs (RESUMED sent)
	ResumesOnMainURL  int // of which sent to the main gateway URL, not resume_gateway_url
	FailedResumes     int // RESUMEs answered with op 9 or a close
	Heartbeats        int // op 1 received
	HeartbeatACKs     int // op 11 sent
	InvalidSessions   int // op 9 sent
	Reconnects        int // op 7 sent
	EventsDispatched  int // dispatches written live
	EventsReplayed    int // dispatches re-sent on RESUME
	Messages          int // messages posted
	Edits             int
	Deletes           int
	ServerCloses      map[int]int // close codes sent by the server
	ClientCloses      map[int]int // close codes received from clients
	Drops             int         // connections ended without a close frame
	RESTRequests      int
	RESTRateLimited   int // 429s
	RESTUnauthorized  int // 401s
	InvalidIdentifies int // IDENTIFYs refused (close or op 9)
	// DoubleHolds counts the times a shard became held by two connections
	// at once (see StartReport).
	DoubleHolds int
}

// Server is a simulated Discord. Create it with New, then Start it.
type Server struct {
	cfg   Config
	log   *slog.Logger
	botID ID

	mu       sync.Mutex
	ids      idGen
	bot      User
	guilds   []*Guild
	channels map[ID]*Channel
	users    map[ID]*User
	history  map[ID][]Message // per channel, ascending id
	sent     []Message
	sessions map[string]*session
	conns    map[*conn]struct{}
	tokens   atomic.Pointer[[]string] // accepted tokens (replaced when reset)

	// Indexes (see shards.go): no hot path scans every guild or session.
	guildByID     map[ID]*Guild
	guildChannels map[ID][]*Channel                  // per guild, ascending id
	shardGuilds   map[int][][]*Guild                 // per shard count: guilds per shard
	routes        map[shardKey]map[*session]struct{} // live sessions per shard
	routeCounts   map[int]int                        // shard count -> live sessions
	holders       map[shardKey]int                   // connections holding each shard
	lastPrune     time.Time
	bulkGuilds    int64 // guilds AddGuilds made
	starts        StartReport
	nextConn      int64
	stats         Stats
	zombies       bool
	hostile       Hostile
	identify      identifyLimiter
	rest          restLimiter
	closed        bool

	ln      net.Listener
	httpSrv *http.Server
	base    string // http://host:port
	wg      sync.WaitGroup
}

// New returns a Server with an empty world (the bot user only). It does not
// listen until Start; Handler can be used with httptest instead.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "discord-sim"),
		channels: map[ID]*Channel{},
		users:    map[ID]*User{},
		history:  map[ID][]Message{},
		sessions: map[string]*session{},
		conns:    map[*conn]struct{}{},

		guildByID:     map[ID]*Guild{},
		guildChannels: map[ID][]*Channel{},
		shardGuilds:   map[int][][]*Guild{},
		routes:        map[shardKey]map[*session]struct{}{},
		routeCounts:   map[int]int{},
		holders:       map[shardKey]int{},
	}
	s.stats.ServerCloses = map[int]int{}
	s.stats.ClientCloses = map[int]int{}
	var botID ID
	if len(cfg.Tokens) > 0 {
		botID, _ = BotIDFromToken(cfg.Tokens[0])
	}
	if botID == 0 {
		botID = IDFromTime(time.Date(2023, 3, 14, 15, 9, 26, 0, time.UTC)) | simWorker<<17 | simProcess<<12
	}
	if len(s.cfg.Tokens) == 0 {
		secret := make([]byte, 16)
		_, _ = rand.Read(secret)
		s.cfg.Tokens = []string{NewToken(botID, secret)}
	}
	tokens := slices.Clone(s.cfg.Tokens)
	s.tokens.Store(&tokens)
	s.botID = botID
	s.bot = User{ID: botID, Username: cfg.BotName, Bot: true}
	s.users[botID] = &s.bot
	s.identify.init(s.cfg)
	s.rest.init(s.cfg)
	return s
}

// Token returns the first accepted token (the generated one when
// Config.Tokens was empty).
func (s *Server) Token() string { return (*s.tokens.Load())[0] }

// Bot returns the bot user every accepted token authenticates as.
func (s *Server) Bot() User { return s.bot }

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves REST
// under /api/v10 and the gateway WebSocket at / (resume_gateway_url is
// /resume on the same port). It returns once listening.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("discord simulator: listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.closed || s.ln != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("discord simulator: already started or closed")
	}
	s.ln = ln
	s.base = "http://" + ln.Addr().String()
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("listening", "api_url", s.APIURL(), "gateway_url", s.GatewayURL())
	return nil
}

// Close stops listening, drops every gateway connection and waits for
// every goroutine the Server started.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.httpSrv
	for c := range s.conns {
		c.drop()
	}
	s.mu.Unlock()
	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(ctx)
		cancel()
	}
	s.wg.Wait()
	return err
}

// Addr returns host:port once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// APIURL returns the REST base the bot's --discord-api-url takes, e.g.
// http://127.0.0.1:PORT/api/v10 (empty before Start).
func (s *Server) APIURL() string {
	a := s.Addr()
	if a == "" {
		return ""
	}
	return "http://" + a + "/api/v10"
}

// GatewayURL returns the gateway URL /gateway/bot hands out, e.g.
// ws://127.0.0.1:PORT (empty before Start).
func (s *Server) GatewayURL() string {
	a := s.Addr()
	if a == "" {
		return ""
	}
	return "ws://" + a
}

// Handler serves REST and the gateway; URLs handed out are built from each
// request's Host, so it also works under httptest.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v10/", s.serveREST)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Message: "404: Not Found"})
	})
	mux.HandleFunc("/_sim/starts", s.serveStartReport)
	mux.HandleFunc("/resume", func(w http.ResponseWriter, r *http.Request) { s.serveGateway(w, r, true) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.serveGateway(w, r, false) })
	return mux
}

// now is the real clock (heartbeats, sessions, rate limits).
func (s *Server) now() time.Time { return time.Now() }

func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// World.

// AddGuild adds a guild the bot is a member of and returns it. Sessions
// already connected receive no GUILD_CREATE for it (the bot sees it at its
// next IDENTIFY).
func (s *Server) AddGuild(name string) Guild {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := s.ids.next(s.cfg.Clock())
	g := &Guild{ID: id, Name: name}
	s.indexGuildLocked(g)
	return *g
}

// Guilds returns the guilds in creation order.
func (s *Server) Guilds() []Guild {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Guild, len(s.guilds))
	for i, g := range s.guilds {
		out[i] = *g
	}
	return out
}

// AddChannel adds a text channel to guild guildID. It panics if the guild
// does not exist (a programming error in the test or demo).
func (s *Server) AddChannel(guildID ID, name string) Channel {
	return s.AddChannelSpec(Channel{GuildID: guildID, Name: name, Type: ChannelGuildText})
}

// AddChannelSpec adds a channel as described (ID assigned when zero). A DM
// channel needs Recipient; a guild channel needs an existing GuildID.
func (s *Server) AddChannelSpec(ch Channel) Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch.Type == ChannelDM {
		if _, ok := s.users[ch.Recipient]; !ok {
			panic(fmt.Sprintf("sim: AddChannelSpec: DM recipient %s is not a known user", ch.Recipient))
		}
		ch.GuildID = 0
	} else if s.guildLocked(ch.GuildID) == nil {
		panic(fmt.Sprintf("sim: AddChannel: unknown guild %s", ch.GuildID))
	}
	if ch.ID == 0 {
		ch.ID, _ = s.ids.next(s.cfg.Clock())
	}
	c := ch
	s.channels[c.ID] = &c
	s.indexChannelLocked(&c)
	return c
}

// AddDM adds the DM channel between the bot and user userID.
func (s *Server) AddDM(userID ID) Channel {
	return s.AddChannelSpec(Channel{Type: ChannelDM, Recipient: userID})
}

// Channels returns every channel, ordered by id.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AddUser adds a user (ID assigned when zero) and returns it.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == 0 {
		u.ID, _ = s.ids.next(s.cfg.Clock())
	}
	uc := u
	s.users[u.ID] = &uc
	return u
}

// AddWebhook adds a webhook "user" named name; post with its ID as author.
func (s *Server) AddWebhook(name string) User {
	return s.AddUser(User{Username: name, Webhook: true, Bot: true})
}

func (s *Server) guildLocked(id ID) *Guild { return s.guildByID[id] }

// Messages.

// Post creates a message: a fresh snowflake consistent with its timestamp,
// stored for REST history, recorded in Sent, and dispatched as
// MESSAGE_CREATE to every session whose intents and shard should get it
// (buffered for replay in sessions that are between connections).
func (s *Server) Post(spec MessageSpec) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.channels[spec.ChannelID]
	if !ok {
		return Message{}, fmt.Errorf("post: unknown channel %s (add it with AddChannel or AddDM)", spec.ChannelID)
	}
	author, ok := s.users[spec.AuthorID]
	if !ok {
		return Message{}, fmt.Errorf("post: unknown author %s (add it with AddUser)", spec.AuthorID)
	}
	if author.Webhook && ch.GuildID == 0 {
		return Message{}, errors.New("post: a webhook cannot post in a DM")
	}
	t := spec.Time
	if t.IsZero() {
		t = s.cfg.Clock()
	}
	id, ms := s.ids.next(t)
	ts := t.UTC().Truncate(time.Microsecond)
	if ts.UnixMilli() != ms {
		ts = time.UnixMilli(ms).UTC()
	}
	m := Message{
		ID: id, ChannelID: ch.ID, GuildID: ch.GuildID, Author: *author,
		Content: spec.Content, Timestamp: ts, Type: spec.Type, Flags: spec.Flags,
		Embeds: append([]Embed(nil), spec.Embeds...),
	}
	for _, uid := range spec.Mentions {
		u, ok := s.users[uid]
		if !ok {
			return Message{}, fmt.Errorf("post: unknown mentioned user %s", uid)
		}
		m.Mentions = append(m.Mentions, *u)
	}
	for _, a := range spec.Attachments {
		if a.ID == 0 {
			a.ID, _ = s.ids.next(t)
		}
		m.Attachments = append(m.Attachments, a)
	}
	if spec.ReplyTo != 0 {
		ref, ok := s.findLocked(ch.ID, spec.ReplyTo)
		if !ok {
			return Message{}, fmt.Errorf("post: reply to unknown message %s in channel %s", spec.ReplyTo, ch.ID)
		}
		ref.Referenced = nil
		m.Reference = ref.ID
		m.Referenced = &ref
		if m.Type == TypeDefault {
			m.Type = TypeReply
		}
	}
	s.history[ch.ID] = trimOldest(append(s.history[ch.ID], m), s.cfg.HistoryLimit)
	s.sent = trimOldest(append(s.sent, m), s.cfg.SentLimit)
	s.stats.Messages++
	s.broadcastMessageLocked("MESSAGE_CREATE", ch, m)
	return m, nil
}

// trimOldest drops the oldest messages once ms holds a quarter more than
// limit (amortised: not a copy per message); limit 0 keeps everything.
func trimOldest(ms []Message, limit int) []Message {
	if limit <= 0 || len(ms) <= limit+limit/4 {
		return ms
	}
	return append(ms[:0:0], ms[len(ms)-limit:]...)
}

// Edit changes a message's content, sets edited_timestamp and dispatches
// MESSAGE_UPDATE with the full message.
func (s *Server) Edit(channelID, messageID ID, content string) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.channels[channelID]
	if !ok {
		return Message{}, fmt.Errorf("edit: unknown channel %s", channelID)
	}
	h := s.history[channelID]
	for i := range h {
		if h[i].ID == messageID {
			h[i].Content = content
			h[i].EditedTimestamp = s.cfg.Clock().UTC().Truncate(time.Microsecond)
			s.stats.Edits++
			s.broadcastMessageLocked("MESSAGE_UPDATE", ch, h[i])
			return h[i], nil
		}
	}
	return Message{}, fmt.Errorf("edit: unknown message %s in channel %s", messageID, channelID)
}

// Delete removes a message from the history and dispatches MESSAGE_DELETE.
func (s *Server) Delete(channelID, messageID ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.channels[channelID]
	if !ok {
		return fmt.Errorf("delete: unknown channel %s", channelID)
	}
	h := s.history[channelID]
	for i := range h {
		if h[i].ID == messageID {
			s.history[channelID] = append(h[:i:i], h[i+1:]...)
			s.stats.Deletes++
			s.broadcastDeleteLocked(ch, messageID)
			return nil
		}
	}
	return fmt.Errorf("delete: unknown message %s in channel %s", messageID, channelID)
}

// DeleteBulk removes several messages of one channel and dispatches one
// MESSAGE_DELETE_BULK {ids, channel_id, guild_id?}. Unknown ids are an
// error and nothing is deleted.
func (s *Server) DeleteBulk(channelID ID, ids []ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.channels[channelID]
	if !ok {
		return fmt.Errorf("delete bulk: unknown channel %s", channelID)
	}
	if len(ids) == 0 {
		return errors.New("delete bulk: no message ids")
	}
	drop := map[ID]bool{}
	for _, id := range ids {
		if _, ok := s.findLocked(channelID, id); !ok {
			return fmt.Errorf("delete bulk: unknown message %s in channel %s", id, channelID)
		}
		drop[id] = true
	}
	h := s.history[channelID]
	kept := h[:0:0]
	for _, m := range h {
		if !drop[m.ID] {
			kept = append(kept, m)
		}
	}
	s.history[channelID] = kept
	s.stats.Deletes += len(drop)
	if ch.NoAccess {
		return nil
	}
	d := map[string]any{"ids": ids, "channel_id": ch.ID}
	if ch.GuildID != 0 {
		d["guild_id"] = ch.GuildID
	}
	b, _ := json.Marshal(d)
	s.routeLocked(ch.GuildID, func(ss *session) {
		if s.deliversLocked(ss, ch) {
			s.dispatchLocked(ss, "MESSAGE_DELETE_BULK", b)
		}
	})
	return nil
}

func (s *Server) findLocked(channelID, id ID) (Message, bool) {
	h := s.history[channelID]
	i := sort.Search(len(h), func(i int) bool { return h[i].ID >= id })
	if i < len(h) && h[i].ID == id {
		return h[i], true
	}
	return Message{}, false
}

// Sent returns every message posted, in posting order, as created (edits and
// deletes do not change it). It includes messages no session was given
// (NoAccess channels, DMs or guild messages the intents exclude).
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.sent...)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ServerCloses = make(map[int]int, len(s.stats.ServerCloses))
	for k, v := range s.stats.ServerCloses {
		st.ServerCloses[k] = v
	}
	st.ClientCloses = make(map[int]int, len(s.stats.ClientCloses))
	for k, v := range s.stats.ClientCloses {
		st.ClientCloses[k] = v
	}
	st.OpenConnections = len(s.conns)
	return st
}
