package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// shard is one Gateway session. Its fields are owned by the run goroutine
// except where atomic.
type shard struct {
	g          *Gateway
	id, count  int
	log        *slog.Logger
	sessionID  string
	resumeURL  string
	selfID     string
	seq        atomic.Int64 // last handled sequence number, 0 = none
	ready      atomic.Bool
	downSince  atomic.Int64 // unix nanos; valid while !ready
	shardLabel string
	// readyGuilds are the guilds READY listed for the current session
	// (their GUILD_CREATE is part of the session start).
	readyGuilds map[string]bool
	// lastFrame is when the last frame of the live session (after READY
	// or RESUMED) was read; lostAt, that of a session Discord ended (zero
	// otherwise), for the next READY.
	lastFrame time.Time
	lostAt    time.Time
	// live is the session as others may read it (Shards.Session).
	liveMu sync.Mutex
	live   Session
}

// Session is what a shard needs to RESUME a Gateway session.
type Session struct {
	ID        string
	ResumeURL string
	Seq       int64
}

// publishSession makes the shard's session readable by other goroutines.
func (s *shard) publishSession() {
	s.liveMu.Lock()
	s.live = Session{ID: s.sessionID, ResumeURL: s.resumeURL}
	s.liveMu.Unlock()
}

// session returns the live session (empty ID: none), with the sequence
// number of the last event the Handler has returned from.
func (s *shard) session() Session {
	s.liveMu.Lock()
	out := s.live
	s.liveMu.Unlock()
	if out.ID != "" {
		out.Seq = s.seq.Load()
	}
	return out
}

func newShard(g *Gateway, id, count int) *shard {
	s := &shard{g: g, id: id, count: count, log: g.log.With("shard", id), shardLabel: strconv.Itoa(id)}
	s.downSince.Store(g.start.UnixNano())
	return s
}

func (s *shard) setReady(ready bool) {
	if s.ready.Swap(ready) == ready {
		return
	}
	if ready {
		s.g.m.connected.Add(1)
	} else {
		s.downSince.Store(s.g.cfg.Now().UnixNano())
		s.g.m.connected.Add(-1)
	}
}

func (s *shard) down() (time.Time, bool) {
	if s.ready.Load() {
		return time.Time{}, false
	}
	return time.Unix(0, s.downSince.Load()), true
}

// outcome is how one connection ended.
type outcome struct {
	reason   string        // metric label for the reconnect
	err      error         // what happened, for the log
	fatal    error         // stop: reconnecting cannot help
	stop     error         // stop: the handler failed
	progress bool          // READY or RESUMED arrived on this connection
	wait     time.Duration // wait at least this long before reconnecting
}

// run connects, and reconnects, until ctx is done or a fatal error.
func (s *shard) run(ctx context.Context) error {
	defer s.setReady(false)
	failures := 0
	for {
		out := s.connect(ctx, failures)
		s.setReady(false)
		if ctx.Err() != nil {
			return nil
		}
		if out.stop != nil {
			return out.stop
		}
		if out.fatal != nil {
			s.log.Error("Discord Gateway closed the session for good; not reconnecting", "err", out.fatal)
			return out.fatal
		}
		s.g.m.reconnects.With(out.reason).Inc()
		s.g.m.reconnectTotal.Inc()
		if out.progress {
			failures = 0
		} else {
			failures++
		}
		delay := out.wait
		if failures > 0 {
			delay = max(delay, backoff(failures, s.g.cfg.MaxBackoff))
		}
		lvl := slog.LevelInfo
		if failures > 1 || out.reason == "zombie" {
			lvl = slog.LevelWarn
		}
		s.log.Log(ctx, lvl, "Gateway connection ended; reconnecting", "reason", out.reason, "err", out.err,
			"resume", s.sessionID != "", "in", delay.Round(time.Millisecond))
		if err := sleepCtx(ctx, delay); err != nil {
			return nil
		}
	}
}

// shuttingDown reports whether ctx ended for good: the session is ended
// with it (not when the shard is handed over, see ErrHandedOver).
func shuttingDown(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), ErrHandedOver)
}

// backoff is the wait before attempt n+1 after n consecutive failures:
// 1 s, 2 s, 4 s ... up to limit, with jitter.
func backoff(n int, limit time.Duration) time.Duration {
	d := time.Second << min(n-1, 16)
	if d > limit {
		d = limit
	}
	return jitter(d/2, d)
}

// gatewayQuery adds v=10&encoding=json to a Gateway URL.
func gatewayQuery(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("v", strconv.Itoa(APIVersion))
	q.Set("encoding", "json")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// connect runs one WebSocket connection from dial to close.
//
// failures is the number of consecutive failed attempts before this one:
// after three, a resume goes to the main Gateway URL instead of
// resume_gateway_url (that node may be gone; any node can resume).
func (s *shard) connect(ctx context.Context, failures int) (out outcome) {
	resuming := s.sessionID != ""
	base := s.g.gatewayURL
	if resuming && s.resumeURL != "" && failures < 3 {
		base = s.resumeURL
	}
	if !resuming {
		if err := s.g.identifySlot(ctx, s.id); err != nil {
			return outcome{reason: "identify_wait", err: err}
		}
	}
	target, err := gatewayQuery(base)
	if err != nil {
		s.sessionID, s.resumeURL = "", "" // a bad resume URL cannot be used again
		s.publishSession()
		return outcome{reason: "dial_failed", err: fmt.Errorf("Gateway URL %q: %w", base, err)}
	}
	hdr := http.Header{"User-Agent": {s.g.cfg.UserAgent}}
	ws, resp, err := s.g.dialer.DialContext(ctx, target, hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return outcome{reason: "dial_failed", err: fmt.Errorf("connect to %s: %w", base, err)}
	}
	ws.SetReadLimit(MaxFrameBytes)
	c := &conn{ws: ws}
	connCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		if shuttingDown(ctx) {
			c.close(websocket.CloseNormalClosure, "shutting down")
		}
		c.close(closeResumable, "reconnecting")
		wg.Wait()
	}()
	wg.Go(func() {
		<-connCtx.Done()
		switch {
		case shuttingDown(ctx):
			// Shutting down: 1000 ends the session cleanly.
			c.close(websocket.CloseNormalClosure, "shutting down")
		case ctx.Err() != nil:
			// Handed over: the session stays open for its next holder.
			c.close(closeResumable, "handed over")
		}
	})
	hello := time.AfterFunc(s.g.cfg.HelloTimeout, func() { c.close(closeResumable, "hello_timeout") })
	defer hello.Stop()

	replaying := false
	var rbuf bytes.Buffer // the frame being handled; nothing keeps it past its turn
	for {
		data, err := readFrame(ws, &rbuf)
		if err != nil {
			out = s.readFailed(ctx, c, err)
			out.progress = out.progress || s.ready.Load()
			return out
		}
		now := s.g.cfg.Now()
		if s.ready.Load() {
			s.lastFrame = now // a frame of the live session
		}
		var f frame
		if !fastFrame(data, &f) {
			f = frame{} // what the fast reader does not take, encoding/json does
			if err := json.Unmarshal(data, &f); err != nil {
				c.close(closeResumable, "decode_error")
				return outcome{reason: "decode_error", err: fmt.Errorf("undecodable Gateway frame: %w", err), progress: s.ready.Load()}
			}
		}
		switch f.Op {
		case opHello:
			hello.Stop()
			var h struct {
				HeartbeatInterval float64 `json:"heartbeat_interval"`
			}
			if err := json.Unmarshal(f.D, &h); err != nil || h.HeartbeatInterval <= 0 {
				c.close(closeResumable, "decode_error")
				return outcome{reason: "decode_error", err: fmt.Errorf("HELLO without a heartbeat_interval: %s", s.g.rest.snippet(f.D))}
			}
			c.interval = heartbeatInterval(h.HeartbeatInterval)
			if ms := float64(c.interval) / float64(time.Millisecond); ms != h.HeartbeatInterval {
				s.log.Warn("HELLO's heartbeat_interval is out of bounds; clamped", "heartbeat_interval_ms", h.HeartbeatInterval,
					"used", c.interval, "min", MinHeartbeat, "max", MaxHeartbeat)
			}
			wg.Go(func() { s.heartbeat(connCtx, c) })
			if resuming {
				replaying = true
				err = c.send(opResume, map[string]any{"token": s.g.cfg.Token, "session_id": s.sessionID, "seq": s.seq.Load()})
			} else {
				// Waiting here holds the reader: suspend the zombie check.
				c.inHandler.Store(true)
				err = s.g.identifyNow(ctx, s.id)
				c.stalled.Store(true)
				c.inHandler.Store(false)
				if err != nil {
					return outcome{reason: "shutdown", err: err}
				}
				err = c.send(opIdentify, s.identifyPayload())
				s.g.m.identifies.Inc()
			}
			if err != nil {
				return outcome{reason: "connection_lost", err: fmt.Errorf("send %s: %w", map[bool]string{true: "RESUME", false: "IDENTIFY"}[resuming], err)}
			}
		case opHeartbeatACK:
			c.acked(now)
			s.g.m.latency.With(s.shardLabel).Set(time.Duration(c.latency.Load()).Seconds())
		case opHeartbeat:
			if err := c.heartbeat(s.seq.Load(), now); err != nil {
				return outcome{reason: "connection_lost", err: fmt.Errorf("send heartbeat: %w", err), progress: s.ready.Load()}
			}
		case opReconnect:
			c.close(closeResumable, "reconnect requested")
			return outcome{reason: "reconnect_requested", progress: s.ready.Load()}
		case opInvalidSession:
			var resumable bool
			_ = json.Unmarshal(f.D, &resumable)
			if resumable && s.sessionID != "" {
				c.close(closeResumable, "invalid session, resumable")
				return outcome{reason: "invalid_session", err: errors.New("INVALID_SESSION (resumable)"), progress: s.ready.Load()}
			}
			s.loseSession("INVALID_SESSION (not resumable)")
			c.close(websocket.CloseNormalClosure, "invalid session")
			return outcome{reason: "invalid_session", err: errors.New("INVALID_SESSION (not resumable)"),
				wait: jitter(s.g.cfg.InvalidSessionMin, s.g.cfg.InvalidSessionMax), progress: s.ready.Load()}
		case opDispatch:
			if f.S == nil || f.T == nil {
				c.close(closeResumable, "decode_error")
				return outcome{reason: "decode_error", err: errors.New("dispatch without s or t"), progress: s.ready.Load()}
			}
			if err := s.dispatch(ctx, c, *f.T, *f.S, f.D, now, &replaying); err != nil {
				return outcome{stop: err}
			}
		}
	}
}

// readFrame reads the next message of ws into buf and returns its bytes,
// valid until the next call: one buffer per connection instead of a new
// one, grown step by step, per frame.
func readFrame(ws *websocket.Conn, buf *bytes.Buffer) ([]byte, error) {
	if buf.Cap() > 1<<20 {
		*buf = bytes.Buffer{} // after a large frame (READY, GUILD_CREATE), let it go
	}
	buf.Reset()
	_, r, err := ws.NextReader()
	if err != nil {
		return nil, err
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// heartbeatInterval converts HELLO's heartbeat_interval (milliseconds)
// into a duration within [MinHeartbeat, MaxHeartbeat].
func heartbeatInterval(ms float64) time.Duration {
	if !(ms <= MaxHeartbeat.Seconds()*1000) { // NaN included
		return MaxHeartbeat
	}
	return max(time.Duration(ms*float64(time.Millisecond)), MinHeartbeat)
}

// readFailed classifies why a read failed.
func (s *shard) readFailed(ctx context.Context, c *conn, err error) outcome {
	if ctx.Err() != nil {
		return outcome{reason: "shutdown"}
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		// The frame is read no further; the connection is closed (1009).
		c.close(websocket.CloseMessageTooBig, "frame too large")
		s.log.Error("the Gateway sent a frame larger than the read limit; reconnecting (Discord's largest frames are a few MiB)",
			"limit_bytes", MaxFrameBytes)
		return outcome{reason: "frame_too_large", err: fmt.Errorf("Gateway frame over %d bytes", MaxFrameBytes)}
	}
	if r := c.closedBy(); r != "" {
		reason := r
		switch r {
		case "zombie", "hello_timeout", "decode_error":
		default:
			reason = "connection_lost"
		}
		return outcome{reason: reason, err: fmt.Errorf("closed by cordstream (%s)", r)}
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		info := closeCodes[ce.Code]
		if info.fatal {
			return outcome{fatal: &CloseError{Code: ce.Code, Text: ce.Text, Shard: s.id, Intents: s.g.cfg.Intents}}
		}
		if info.newSession {
			s.loseSession(fmt.Sprintf("close %d (%s)", ce.Code, closeName(ce.Code)))
		}
		return outcome{reason: "server_close", err: fmt.Errorf("Gateway closed the connection: %d (%s)", ce.Code, closeName(ce.Code))}
	}
	return outcome{reason: "connection_lost", err: err}
}

// loseSession forgets the session: the next connection identifies anew and
// Discord does not replay what was sent in between.
func (s *shard) loseSession(why string) {
	if s.sessionID == "" {
		return
	}
	s.g.m.sessionsLost.Inc()
	s.log.Warn("Discord ended the session; events sent while disconnected will not be replayed",
		"why", why, "last_seq", s.seq.Load())
	s.lostAt = s.lastFrame
	s.sessionID, s.resumeURL = "", ""
	s.publishSession()
	s.seq.Store(0)
}

func (s *shard) identifyPayload() map[string]any {
	return map[string]any{
		"token":           s.g.cfg.Token,
		"intents":         uint64(s.g.cfg.Intents),
		"shard":           [2]int{s.id, s.count},
		"large_threshold": 50,
		"properties":      map[string]string{"os": runtime.GOOS, "browser": "cordstream", "device": "cordstream"},
	}
}

// heartbeat sends heartbeats every interval (the first after a random
// fraction of it) and closes the connection as a zombie when the previous
// heartbeat has not been acknowledged, unless the handler held the reader
// (then the ACK may simply be unread).
func (s *shard) heartbeat(ctx context.Context, c *conn) {
	t := time.NewTimer(time.Duration(rand.Float64() * float64(c.interval)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		paused := c.stalled.Swap(false) || c.inHandler.Load()
		if c.ackPending.Load() && !paused {
			s.log.Warn("no heartbeat ACK from Discord within one interval: zombie connection, reconnecting to resume",
				"interval", c.interval)
			c.close(closeResumable, "zombie")
			return
		}
		if err := c.heartbeat(s.seq.Load(), s.g.cfg.Now()); err != nil {
			c.close(closeResumable, "heartbeat_failed")
			return
		}
		t.Reset(c.interval)
	}
}

// dispatch handles op 0. Only a Handler error is returned.
func (s *shard) dispatch(ctx context.Context, c *conn, typ string, seq int64, d json.RawMessage, now time.Time, replaying *bool) error {
	switch typ {
	case "READY":
		var r struct {
			SessionID        string `json:"session_id"`
			ResumeGatewayURL string `json:"resume_gateway_url"`
			User             struct {
				ID       string `json:"id"`
				Username string `json:"username"`
			} `json:"user"`
			Guilds []json.RawMessage `json:"guilds"`
		}
		if err := json.Unmarshal(d, &r); err != nil || r.SessionID == "" {
			s.log.Warn("READY without a session id; the session cannot be resumed", "err", err)
		}
		if r.ResumeGatewayURL != "" {
			if err := checkResumeURL(r.ResumeGatewayURL, s.g.gatewayURL); err != nil {
				s.log.Warn("not using the resume_gateway_url Discord gave; resuming on the Gateway URL instead", "err", err)
				r.ResumeGatewayURL = ""
			}
		}
		s.seq.Store(seq)
		s.sessionID, s.resumeURL, s.selfID = r.SessionID, r.ResumeGatewayURL, r.User.ID
		s.publishSession()
		s.setReady(true)
		s.log.Info("connected to Discord", "user", r.User.Username, "user_id", r.User.ID, "guilds", len(r.Guilds))
		if len(r.Guilds) > MaxReadyGuilds {
			s.log.Warn("READY lists more guilds than a shard can hold (Discord allows 2,500); using the first ones",
				"guilds", len(r.Guilds), "used", MaxReadyGuilds)
		}
		ids := parseReadyGuilds(r.Guilds)
		s.readyGuilds = make(map[string]bool, len(ids))
		for _, id := range ids {
			s.readyGuilds[id] = true
		}
		if s.g.cfg.OnReady != nil {
			s.g.cfg.OnReady(ReadyInfo{Shard: s.id, ShardCount: s.count, SelfID: r.User.ID, GuildIDs: ids, StreamLostAt: s.lostAt})
		}
		s.lostAt = time.Time{}
		return nil
	case "GUILD_CREATE":
		if s.g.cfg.OnGuild != nil {
			if info, ok := parseGuildCreate(d, s.selfID); ok {
				if info.Dropped > 0 {
					s.log.Warn("GUILD_CREATE lists more channels than a guild can have; using the first ones",
						"guild_id", info.ID, "used", len(info.Channels), "dropped", info.Dropped)
				}
				info.Shard = s.id
				info.InReady = s.readyGuilds[info.ID]
				s.g.cfg.OnGuild(info)
			}
		}
	case "RESUMED":
		*replaying = false
		s.seq.Store(max(s.seq.Load(), seq))
		s.setReady(true)
		s.g.m.resumes.Inc()
		s.log.Info("resumed the Discord session")
		return nil
	}
	if *replaying {
		s.g.m.replayed.Inc()
	}
	if typ == EventMessageCreate || (s.g.cfg.Updates && (typ == EventMessageUpdate || typ == EventMessageDelete || typ == EventMessageDeleteBulk)) {
		evs := mapEvent(typ, d, s.selfID)
		for i := range evs {
			ev := &evs[i]
			ev.Shard, ev.Seq, ev.ReceivedAt = s.id, seq, now
			c.inHandler.Store(true)
			start := time.Now()
			err := s.g.cfg.Handler(ctx, ev)
			if time.Since(start) > c.interval/4 {
				c.stalled.Store(true)
			}
			c.inHandler.Store(false)
			if err != nil {
				return err
			}
		}
	}
	if seq > s.seq.Load() {
		s.seq.Store(seq)
	}
	return nil
}
