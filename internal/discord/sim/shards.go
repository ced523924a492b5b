package sim

// Scale and start limits: the indexes that keep every hot path independent
// of the number of guilds (routing an event, finding a guild or its
// channels, building READY and GUILD_CREATE), and the record of how clients
// started their shards (IDENTIFY pacing, the daily budget, shards held by
// two connections at once) that tests assert on.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"
)

// shardKey is a shard as an IDENTIFY names it: [id, count].
type shardKey struct{ count, id int }

func (ss *session) key() shardKey { return shardKey{count: ss.shardCount, id: ss.shardID} }

// Bounds of the start record (a misbehaving client must not grow it
// without limit).
const (
	maxIdentifyRecords = 10000
	maxDoubleHolds     = 1000
)

// IdentifyOutcome is what the Server answered to an IDENTIFY.
type IdentifyOutcome string

// IDENTIFY outcomes recorded in StartReport.
const (
	// IdentifyReady: the session started (READY sent).
	IdentifyReady IdentifyOutcome = "ready"
	// IdentifyTooSoon: another IDENTIFY of the same rate-limit bucket
	// (shard_id % max_concurrency) started a session less than
	// IdentifyInterval before: op 9 INVALID_SESSION false, as Discord answers.
	IdentifyTooSoon IdentifyOutcome = "too_soon"
	// IdentifyOverBudget: the daily session-start budget was used up. As
	// Discord documents it, every active session of the bot is terminated
	// (connections closed with 4004) and the token is reset (the old one
	// gets 4004 and REST 401; Server.Token returns the new one). The
	// IDENTIFY itself gets op 9 false.
	IdentifyOverBudget IdentifyOutcome = "over_budget"
	// IdentifyInvalidShard: the shard count is not a multiple of
	// Config.LargeBotShardMultiple: close 4010.
	IdentifyInvalidShard IdentifyOutcome = "invalid_shard"
	// IdentifyShardingRequired: the shard would hold more than
	// MaxGuildsPerShard guilds: close 4011.
	IdentifyShardingRequired IdentifyOutcome = "sharding_required"
)

// IdentifyRecord is one IDENTIFY with a valid token, intents and shard.
type IdentifyRecord struct {
	At         time.Time       `json:"at"`   // when the IDENTIFY arrived
	Conn       int64           `json:"conn"` // connection number, counted from 1 in order of connection
	Shard      int             `json:"shard"`
	ShardCount int             `json:"shard_count"`
	Bucket     int             `json:"bucket"` // Shard % max_concurrency
	Outcome    IdentifyOutcome `json:"outcome"`
	SessionID  string          `json:"session_id,omitempty"` // for IdentifyReady
}

// DoubleHold is a moment a shard was held by more than one connection: a
// session attached to a connection started (IDENTIFY or RESUME) while
// another session of the same [shard_id, num_shards] was attached to an
// open connection. Discord allows it (both sessions get the shard's
// events: each event is delivered twice); a bot that shares its shards
// among instances must never do it.
type DoubleHold struct {
	At         time.Time `json:"at"`
	Shard      int       `json:"shard"`
	ShardCount int       `json:"shard_count"`
	Conns      []int64   `json:"conns"` // the connections holding the shard then, ascending
}

// StartReport is what the Server saw of how clients started their shards.
type StartReport struct {
	// Identifies are the IDENTIFYs that passed the token, intents and
	// shard checks, in the order the Server handled them (the newest
	// 10,000); At is when each arrived, which may be out of that order by
	// the time a connection waits for the Server's lock.
	Identifies []IdentifyRecord `json:"identifies"`
	// TooSoon counts IDENTIFYs refused because their bucket's pacing was
	// broken, OverBudget those beyond the daily budget (each of which
	// terminated every session and reset the token).
	TooSoon    int `json:"too_soon"`
	OverBudget int `json:"over_budget"`
	// TokenResets counts the token resets that followed (see
	// IdentifyOverBudget).
	TokenResets int `json:"token_resets"`
	// DoubleHolds lists the first 1,000 double holds; DoubleHoldCount
	// counts them all.
	DoubleHolds     []DoubleHold `json:"double_holds"`
	DoubleHoldCount int          `json:"double_hold_count"`
	// MaxHolders is the most connections that held one shard at once
	// (1 when every shard was held by one connection at a time).
	MaxHolders int `json:"max_holders"`
	// SessionStarts is how many sessions were started in the current
	// daily window, SessionStartLimit the budget.
	SessionStarts     int `json:"session_starts"`
	SessionStartLimit int `json:"session_start_limit"`
}

// Err is nil when no IDENTIFY broke the pacing or the daily budget and no
// shard was ever held twice at once; otherwise it describes what happened.
func (r StartReport) Err() error {
	var errs []error
	if r.TooSoon > 0 {
		first := ""
		for _, id := range r.Identifies {
			if id.Outcome == IdentifyTooSoon {
				first = fmt.Sprintf(" (first: shard %d/%d, bucket %d, at %s)", id.Shard, id.ShardCount, id.Bucket, id.At.Format(time.RFC3339Nano))
				break
			}
		}
		errs = append(errs, fmt.Errorf("%d IDENTIFY(s) broke the max_concurrency pacing and got INVALID_SESSION%s", r.TooSoon, first))
	}
	if r.OverBudget > 0 {
		errs = append(errs, fmt.Errorf("%d IDENTIFY(s) beyond the daily session-start budget of %d: every session was terminated and the token reset", r.OverBudget, r.SessionStartLimit))
	}
	if r.DoubleHoldCount > 0 {
		d := r.DoubleHolds[0]
		errs = append(errs, fmt.Errorf("%d time(s) a shard was held by two connections at once (first: shard %d/%d by connections %v at %s)",
			r.DoubleHoldCount, d.Shard, d.ShardCount, d.Conns, d.At.Format(time.RFC3339Nano)))
	}
	return errors.Join(errs...)
}

// StartReport returns a copy of the start record.
func (s *Server) StartReport() StartReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.starts
	r.Identifies = slices.Clone(r.Identifies)
	r.DoubleHolds = slices.Clone(r.DoubleHolds)
	for i := range r.DoubleHolds {
		r.DoubleHolds[i].Conns = slices.Clone(r.DoubleHolds[i].Conns)
	}
	r.SessionStarts = s.identify.used
	r.SessionStartLimit = s.identify.total
	return r
}

// ShardHolders returns how many open connections hold shard [id, count]
// now (a session attached: identified or resumed, not yet ended).
func (s *Server) ShardHolders(id, count int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holders[shardKey{count: count, id: id}]
}

// HeldShards returns every shard held by at least one connection now,
// with the number of connections holding it.
func (s *Server) HeldShards() map[[2]int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[[2]int]int, len(s.holders))
	for k, n := range s.holders {
		out[[2]int{k.id, k.count}] = n
	}
	return out
}

func (s *Server) recordIdentifyLocked(c *conn, ss *session, bucket int, out IdentifyOutcome, at time.Time) {
	r := &s.starts
	if len(r.Identifies) >= maxIdentifyRecords+maxIdentifyRecords/4 {
		r.Identifies = append(r.Identifies[:0:0], r.Identifies[len(r.Identifies)-maxIdentifyRecords:]...)
	}
	r.Identifies = append(r.Identifies, IdentifyRecord{
		At: at, Conn: c.id, Shard: ss.shardID, ShardCount: ss.shardCount, Bucket: bucket,
		Outcome: out, SessionID: ss.id,
	})
	switch out {
	case IdentifyTooSoon:
		r.TooSoon++
	case IdentifyOverBudget:
		r.OverBudget++
	}
}

// Sessions and their routes.

// addSessionLocked registers a new session for routing.
func (s *Server) addSessionLocked(ss *session) {
	s.sessions[ss.id] = ss
	k := ss.key()
	m := s.routes[k]
	if m == nil {
		m = map[*session]struct{}{}
		s.routes[k] = m
	}
	m[ss] = struct{}{}
	s.routeCounts[k.count]++
}

// removeSessionLocked forgets a session (invalidated or timed out).
func (s *Server) removeSessionLocked(ss *session) {
	if s.sessions[ss.id] != ss {
		return
	}
	delete(s.sessions, ss.id)
	k := ss.key()
	if m := s.routes[k]; m != nil {
		delete(m, ss)
		if len(m) == 0 {
			delete(s.routes, k)
		}
	}
	if s.routeCounts[k.count]--; s.routeCounts[k.count] <= 0 {
		delete(s.routeCounts, k.count)
	}
}

// expiredLocked reports whether ss stayed detached longer than SessionTimeout.
func (s *Server) expiredLocked(ss *session, now time.Time) bool {
	return ss.conn == nil && now.Sub(ss.detachedAt) > s.cfg.SessionTimeout
}

// liveSessionLocked returns the session with this id unless it is gone or
// timed out.
func (s *Server) liveSessionLocked(id string) (*session, bool) {
	ss, ok := s.sessions[id]
	if !ok {
		return nil, false
	}
	if s.expiredLocked(ss, s.now()) {
		s.removeSessionLocked(ss)
		return nil, false
	}
	return ss, true
}

// pruneEvery spaces the full scans for timed-out sessions; in between,
// routing and RESUME check the sessions they touch.
const pruneEvery = time.Second

// routeLocked calls fn for every live session that receives the events of
// guild guildID (0: a DM, delivered on shard 0): for each shard count in
// use, the sessions of the shard Discord's formula gives. The cost is that
// of the sessions reached, not of the guilds or of all sessions.
func (s *Server) routeLocked(guildID ID, fn func(*session)) {
	s.pruneLocked()
	now := s.now()
	for count := range s.routeCounts {
		id := 0
		if guildID != 0 {
			id = shardOf(guildID, count)
		}
		for ss := range s.routes[shardKey{count: count, id: id}] {
			if s.expiredLocked(ss, now) {
				s.removeSessionLocked(ss)
				continue
			}
			fn(ss)
		}
	}
}

// Holding: a shard is held by a connection while a session of that shard
// is attached to it.

// attachLocked attaches session ss to connection c and records a double
// hold when another connection holds the same shard.
func (s *Server) attachLocked(ss *session, c *conn) {
	ss.conn = c
	c.sess = ss
	k := ss.key()
	s.holders[k]++
	n := s.holders[k]
	s.starts.MaxHolders = max(s.starts.MaxHolders, n)
	if n < 2 {
		return
	}
	s.starts.DoubleHoldCount++
	s.stats.DoubleHolds++
	var conns []int64
	for other := range s.routes[k] {
		if other.conn != nil {
			conns = append(conns, other.conn.id)
		}
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i] < conns[j] })
	if len(s.starts.DoubleHolds) < maxDoubleHolds {
		s.starts.DoubleHolds = append(s.starts.DoubleHolds, DoubleHold{At: s.now(), Shard: k.id, ShardCount: k.count, Conns: conns})
	}
	s.log.Warn("a shard is held by two connections at once: each of its events goes to both",
		"shard", k.id, "shard_count", k.count, "conns", conns)
}

// detachConnLocked detaches ss from its connection, if any.
func (s *Server) detachConnLocked(ss *session) {
	c := ss.conn
	if c == nil {
		return
	}
	c.sess = nil
	ss.conn = nil
	k := ss.key()
	if s.holders[k]--; s.holders[k] <= 0 {
		delete(s.holders, k)
	}
}

// Guilds by shard.

// guildsOfShardLocked returns the guilds of shard [id, count] in creation
// order. The partition for a shard count is built once, at the first
// IDENTIFY that uses it, and kept up to date by AddGuild.
func (s *Server) guildsOfShardLocked(id, count int) []*Guild {
	if count < 1 {
		count = 1
	}
	parts, ok := s.shardGuilds[count]
	if !ok {
		parts = make([][]*Guild, count)
		for _, g := range s.guilds {
			i := shardOf(g.ID, count)
			parts[i] = append(parts[i], g)
		}
		s.shardGuilds[count] = parts
	}
	if id < 0 || id >= len(parts) {
		return nil
	}
	return parts[id]
}

// indexGuildLocked adds a new guild to the indexes.
func (s *Server) indexGuildLocked(g *Guild) {
	s.guilds = append(s.guilds, g)
	s.guildByID[g.ID] = g
	for count, parts := range s.shardGuilds {
		i := shardOf(g.ID, count)
		parts[i] = append(parts[i], g)
	}
}

// indexChannelLocked adds a guild channel to its guild's list, kept in id order.
func (s *Server) indexChannelLocked(ch *Channel) {
	if ch.Type == ChannelDM {
		return
	}
	list := s.guildChannels[ch.GuildID]
	i := sort.Search(len(list), func(i int) bool { return list[i].ID >= ch.ID })
	s.guildChannels[ch.GuildID] = slices.Insert(list, i, ch)
}

// Bulk guilds.

// bulkProcess marks the snowflakes AddGuilds makes (the live ones use
// simProcess), so that the two never collide.
const bulkProcess = 8

// bulkGuildEpoch is when the guilds AddGuilds makes were created: one per
// millisecond from then on, so that their ids spread over the shards as
// real guilds' do.
var bulkGuildEpoch = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)

// AddGuilds adds n guilds the bot is a member of, as a bot in many guilds
// has them: created in the past, one per millisecond, so that Discord's
// formula spreads them evenly over any number of shards (AddGuild's ids
// come from the clock, and guilds added in one burst would all share a
// shard). name(i) names the i-th (nil: "guild <i>"). Each gets a text
// channel per name in channels. Like AddGuild, sessions already connected
// get no GUILD_CREATE for them. Cost: O(n) in all.
func (s *Server) AddGuilds(n int, name func(i int) string, channels ...string) []Guild {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Guild, 0, max(n, 0))
	for i := 0; i < n; i++ {
		ms := bulkGuildEpoch.UnixMilli() - DiscordEpoch + s.bulkGuilds
		s.bulkGuilds++
		id := ID(uint64(ms)<<22 | simWorker<<17 | bulkProcess<<12)
		nm := fmt.Sprintf("guild %d", i)
		if name != nil {
			nm = name(i)
		}
		g := &Guild{ID: id, Name: nm}
		s.indexGuildLocked(g)
		for _, cn := range channels {
			cid, _ := s.ids.next(s.cfg.Clock())
			ch := &Channel{ID: cid, GuildID: id, Name: cn, Type: ChannelGuildText}
			s.channels[cid] = ch
			s.indexChannelLocked(ch)
		}
		out = append(out, *g)
	}
	return out
}

// ChannelsOf returns the channels of guild guildID, ordered by id.
func (s *Server) ChannelsOf(guildID ID) []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.guildChannels[guildID]
	out := make([]Channel, len(list))
	for i, ch := range list {
		out[i] = *ch
	}
	return out
}

// ShardOf returns the shard Discord delivers the events of guild guildID
// to, among numShards: (guild_id >> 22) % num_shards.
func ShardOf(guildID ID, numShards int) int { return shardOf(guildID, numShards) }

// budgetExceededLocked does what Discord documents when a bot goes beyond
// its daily session starts: every active session is terminated and the
// token is reset (the owner gets a new one by mail: Server.Token).
func (s *Server) budgetExceededLocked(by *conn) {
	for c := range s.conns {
		if c != by && c.sess != nil {
			s.closeConnLocked(c, CloseAuthenticationFailed, "Authentication failed: the token was reset (daily session-start limit exceeded).")
		}
	}
	for _, ss := range s.sessions {
		s.invalidateLocked(ss)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	tokens := []string{NewToken(s.botID, secret)}
	s.tokens.Store(&tokens)
	s.starts.TokenResets++
	s.log.Warn("the daily session-start limit was exceeded: every session terminated and the token reset")
}

// serveStartReport answers GET /_sim/starts with the StartReport as JSON,
// plus "ok" and "error" (StartReport.Err), for tests that run the
// simulator as a separate process. It is not part of Discord's API.
func (s *Server) serveStartReport(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	rep := s.StartReport()
	out := struct {
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
		StartReport
	}{OK: true, StartReport: rep}
	if err := rep.Err(); err != nil {
		out.OK, out.Error = false, err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}
