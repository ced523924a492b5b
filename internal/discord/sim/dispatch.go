package sim

// Event delivery: which session gets what, sequence numbers, replay buffers.

import (
	"encoding/json"
	"time"
)

// dispatchLocked gives ss the next sequence number for event t with data d,
// keeps it for replay and writes it to the session's connection when that
// connection is healthy.
func (s *Server) dispatchLocked(ss *session, t string, d []byte) {
	ss.seq++
	ev := event{seq: ss.seq, t: t, d: d}
	ss.buf = append(ss.buf, ev)
	if over := len(ss.buf) - s.cfg.ReplayBuffer; over > 0 {
		ss.buf = append(ss.buf[:0:0], ss.buf[over:]...)
	}
	if c := ss.conn; c != nil && !c.zombie && !c.draining && !c.closing {
		c.enqueue(outFrame{payload: dispatchFrame(ev), zlib: c.perPayload})
		c.lastSeq = ev.seq
		s.stats.EventsDispatched++
	}
}

// deliversLocked reports whether session ss gets message events of channel ch.
func (s *Server) deliversLocked(ss *session, ch *Channel) bool {
	if ch.NoAccess {
		return false
	}
	if ch.GuildID == 0 {
		return ss.intents&IntentDirectMessages != 0 && ss.shardID == 0
	}
	return ss.intents&IntentGuildMessages != 0 && shardOf(ch.GuildID, ss.shardCount) == ss.shardID
}

func (s *Server) mentionsBot(m Message) bool {
	for _, u := range m.Mentions {
		if u.ID == s.botID {
			return true
		}
	}
	return false
}

func (s *Server) broadcastMessageLocked(t string, ch *Channel, m Message) {
	var full, stripped []byte
	s.routeLocked(ch.GuildID, func(ss *session) {
		if !s.deliversLocked(ss, ch) {
			return
		}
		strip := ss.intents&IntentMessageContent == 0 && ch.GuildID != 0 &&
			m.Author.ID != s.botID && !s.mentionsBot(m)
		var d []byte
		if strip {
			if stripped == nil {
				stripped, _ = json.Marshal(m.wire(wireOptions{gateway: true, stripContent: true}))
			}
			d = stripped
		} else {
			if full == nil {
				full, _ = json.Marshal(m.wire(wireOptions{gateway: true}))
			}
			d = full
		}
		s.dispatchLocked(ss, t, d)
	})
}

func (s *Server) broadcastDeleteLocked(ch *Channel, id ID) {
	d := map[string]any{"id": id, "channel_id": ch.ID}
	if ch.GuildID != 0 {
		d["guild_id"] = ch.GuildID
	}
	b, _ := json.Marshal(d)
	s.routeLocked(ch.GuildID, func(ss *session) {
		if s.deliversLocked(ss, ch) {
			s.dispatchLocked(ss, "MESSAGE_DELETE", b)
		}
	})
}

// identifyLimiter enforces max_concurrency per IdentifyInterval and the
// session start limit.
type identifyLimiter struct {
	interval time.Duration
	maxConc  int
	// last holds, per bucket, the arrival times of the sessions started
	// recently. IDENTIFYs are judged by arrival time, and connections take
	// the Server's lock in any order, so one may be judged after a later
	// one: the gap is checked against each recent start, before or after.
	last   map[int][]time.Time
	total  int
	used   int
	window time.Time
}

func (l *identifyLimiter) init(cfg Config) {
	l.interval, l.maxConc, l.total = cfg.IdentifyInterval, cfg.MaxConcurrency, cfg.SessionStartLimit
	l.last = map[int][]time.Time{}
}

func (l *identifyLimiter) roll(now time.Time) {
	if l.window.IsZero() || now.Sub(l.window) >= 24*time.Hour {
		l.window, l.used = now, 0
	}
}

// Answers of identifyLimiter.allow.
const (
	limitOK     = iota
	limitPaced  // the bucket started a session less than interval ago
	limitBudget // the daily budget is used up
)

// allow decides on an IDENTIFY of shardID and, when it is allowed, counts
// it against the budget and the bucket.
func (l *identifyLimiter) allow(shardID int, now time.Time) int {
	l.roll(now)
	if l.used >= l.total {
		return limitBudget
	}
	key := shardID % l.maxConc
	if l.interval > 0 {
		for _, t := range l.last[key] {
			if d := now.Sub(t); d < l.interval && d > -l.interval {
				return limitPaced
			}
		}
		recent := l.last[key][:0]
		for _, t := range l.last[key] {
			if now.Sub(t) < 4*l.interval { // keep what a late one may still meet
				recent = append(recent, t)
			}
		}
		l.last[key] = append(recent, now)
	}
	l.used++
	return limitOK
}

// remaining returns session_start_limit.remaining and reset_after (ms).
func (l *identifyLimiter) remaining(now time.Time) (int, int64) {
	l.roll(now)
	return l.total - l.used, (24*time.Hour - now.Sub(l.window)).Milliseconds()
}
