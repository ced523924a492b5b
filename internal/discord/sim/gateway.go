package sim

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway opcodes.
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opPresenceUpdate = 3
	opVoiceState     = 4
	opResume         = 6
	opReconnect      = 7
	opRequestMembers = 8
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatACK   = 11
	opSoundboard     = 31
)

// Gateway close codes (Discord's, plus the WebSocket normal closures).
const (
	CloseNormal               = 1000
	CloseGoingAway            = 1001
	CloseUnknownError         = 4000
	CloseUnknownOpcode        = 4001
	CloseDecodeError          = 4002
	CloseNotAuthenticated     = 4003
	CloseAuthenticationFailed = 4004
	CloseAlreadyAuthenticated = 4005
	CloseInvalidSeq           = 4007
	CloseRateLimited          = 4008
	CloseSessionTimedOut      = 4009
	CloseInvalidShard         = 4010
	CloseShardingRequired     = 4011
	CloseInvalidAPIVersion    = 4012
	CloseInvalidIntents       = 4013
	CloseDisallowedIntents    = 4014
)

var closeText = map[int]string{
	CloseNormal:               "Normal closure",
	CloseGoingAway:            "Going away",
	CloseUnknownError:         "Unknown error",
	CloseUnknownOpcode:        "Unknown opcode.",
	CloseDecodeError:          "Error while decoding payload.",
	CloseNotAuthenticated:     "Not authenticated.",
	CloseAuthenticationFailed: "Authentication failed.",
	CloseAlreadyAuthenticated: "Already authenticated.",
	CloseInvalidSeq:           "Invalid seq.",
	CloseRateLimited:          "Rate limited.",
	CloseSessionTimedOut:      "Session timed out.",
	CloseInvalidShard:         "Invalid shard.",
	CloseShardingRequired:     "Sharding required.",
	CloseInvalidAPIVersion:    "Invalid API version.",
	CloseInvalidIntents:       "Invalid intent(s).",
	CloseDisallowedIntents:    "Disallowed intent(s).",
}

// invalidatesSession reports whether a server close with code ends the
// session (no RESUME possible afterwards).
func invalidatesSession(code int) bool {
	switch code {
	case CloseAuthenticationFailed, CloseInvalidSeq, CloseSessionTimedOut, CloseInvalidShard,
		CloseShardingRequired, CloseInvalidAPIVersion, CloseInvalidIntents, CloseDisallowedIntents:
		return true
	}
	return false
}

// maxPayload is the largest client payload Discord accepts (bytes).
const maxPayload = 4096

type event struct {
	seq int
	t   string
	d   []byte
}

// session is a gateway session: it outlives connections until invalidated
// or timed out, and keeps recent events for RESUME.
type session struct {
	id         string
	intents    uint64
	shardID    int
	shardCount int
	hasShard   bool
	compress   bool
	seq        int
	buf        []event
	conn       *conn
	detachedAt time.Time
}

func (ss *session) firstBuffered() int {
	if len(ss.buf) == 0 {
		return ss.seq + 1
	}
	return ss.buf[0].seq
}

type outFrame struct {
	payload   []byte
	zlib      bool // per-payload zlib (IDENTIFY compress:true)
	closeCode int  // > 0: a close frame
	closeText string
}

// conn is one WebSocket connection.
type conn struct {
	s           *Server
	id          int64
	ws          *websocket.Conn
	onResumeURL bool
	mode        compression
	resumeURL   string

	// Guarded by Server.mu.
	sess       *session
	authed     bool
	zombie     bool // no ACKs, no dispatches (fault injection)
	draining   bool // after op 7 / op 9: no more dispatches
	closing    bool // the server sent (queued) a close frame
	perPayload bool
	lastSeq    int // last seq queued on this connection

	qmu     sync.Mutex
	queue   []outFrame
	stopped bool
	wake    chan struct{}

	readerDone chan struct{}
	writerDone chan struct{}
}

func (c *conn) enqueue(f outFrame) {
	c.qmu.Lock()
	if !c.stopped {
		c.queue = append(c.queue, f)
	}
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stop discards pending frames and ends the writer.
func (c *conn) stop() {
	c.qmu.Lock()
	c.stopped = true
	c.queue = nil
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// drop closes the TCP connection without a close frame.
func (c *conn) drop() { _ = c.ws.NetConn().Close() }

func (c *conn) writeLoop() {
	defer close(c.writerDone)
	enc, err := newEncoder(c.mode)
	if err != nil {
		c.s.log.Error("compression", "err", err)
		c.drop()
		return
	}
	defer enc.close()
	for {
		c.qmu.Lock()
		frames := c.queue
		c.queue = nil
		stopped := c.stopped
		c.qmu.Unlock()
		if stopped {
			return
		}
		if len(frames) == 0 {
			<-c.wake
			continue
		}
		for _, f := range frames {
			if f.closeCode > 0 {
				msg := websocket.FormatCloseMessage(f.closeCode, f.closeText)
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second))
				select {
				case <-c.readerDone:
				case <-time.After(time.Second):
				}
				c.drop()
				return
			}
			mt, data, err := enc.encode(f.payload, f.zlib)
			if err == nil {
				_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
				err = c.ws.WriteMessage(mt, data)
			}
			if err != nil {
				c.drop()
				return
			}
		}
	}
}

var upgrader = websocket.Upgrader{
	CheckOrigin:     func(*http.Request) bool { return true },
	ReadBufferSize:  4096,
	WriteBufferSize: 16384,
}

func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request, onResumeURL bool) {
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUpgradeRequired)
		fmt.Fprintln(w, "Discord gateway simulator: connect a WebSocket client to the url returned by GET /api/v10/gateway/bot, e.g. ws://"+r.Host+"/?v=10&encoding=json")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	q := r.URL.Query()
	mode, modeOK := parseCompression(q.Get("compress"))
	c := &conn{
		s: s, ws: ws, onResumeURL: onResumeURL, mode: mode,
		resumeURL:  "ws://" + r.Host + "/resume",
		wake:       make(chan struct{}, 1),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	ws.SetCloseHandler(func(code int, text string) error { return nil }) // answered when the reader ends
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	s.nextConn++
	c.id = s.nextConn
	s.conns[c] = struct{}{}
	s.stats.Connections++
	switch {
	case q.Get("v") != "10":
		s.closeConnLocked(c, CloseInvalidAPIVersion, "Invalid API version: this simulator speaks v=10.")
	case q.Get("encoding") != "" && q.Get("encoding") != "json":
		s.closeConnLocked(c, CloseDecodeError, "Only encoding=json is simulated.")
	case !modeOK:
		s.closeConnLocked(c, CloseDecodeError, "Unknown compress value; use zlib-stream or zstd-stream.")
	default:
		c.enqueue(outFrame{payload: s.helloFrame()})
	}
	s.mu.Unlock()
	s.log.Debug("connection opened", "conn", c.id, "resume_url", onResumeURL, "compress", q.Get("compress"))

	go c.writeLoop()
	err = c.readLoop()
	s.connEnded(c, err)
}

// readLoop reads client payloads until the connection fails.
func (c *conn) readLoop() error {
	s := c.s
	var sends []time.Time
	_ = c.ws.SetReadDeadline(time.Now().Add(s.cfg.HeartbeatTimeout))
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(r, maxPayload+1))
		if err != nil {
			return err
		}
		now := time.Now() // before waiting for the lock: when it arrived
		s.mu.Lock()
		closing := c.closing
		s.mu.Unlock()
		if closing {
			continue
		}
		cut := now.Add(-s.cfg.GatewaySendWindow)
		for len(sends) > 0 && !sends[0].After(cut) {
			sends = sends[1:]
		}
		sends = append(sends, now)
		switch {
		case len(sends) > s.cfg.GatewaySendLimit:
			s.closeConn(c, CloseRateLimited, "")
		case len(data) > maxPayload:
			s.closeConn(c, CloseDecodeError, "Payload too large (max 4096 bytes).")
		case mt != websocket.TextMessage:
			s.closeConn(c, CloseDecodeError, "Binary payloads are not accepted with encoding=json.")
		default:
			if s.handlePayload(c, data, now) {
				_ = c.ws.SetReadDeadline(time.Now().Add(s.cfg.HeartbeatTimeout))
			}
		}
	}
}

// connEnded cleans up after the reader stopped with err.
func (s *Server) connEnded(c *conn, err error) {
	var ce *websocket.CloseError
	var ne net.Error
	s.mu.Lock()
	switch {
	case errors.As(err, &ce):
		if !c.closing {
			s.stats.ClientCloses[ce.Code]++
		}
		if !c.closing && c.sess != nil && (ce.Code == CloseNormal || ce.Code == CloseGoingAway) {
			s.invalidateLocked(c.sess)
		}
		if !c.closing {
			// Answer the close handshake.
			c.enqueue(outFrame{closeCode: ce.Code, closeText: ""})
			c.closing = true
		}
	case errors.As(err, &ne) && ne.Timeout() && !c.closing:
		s.closeConnLocked(c, CloseSessionTimedOut, "")
	case !c.closing:
		s.stats.Drops++
	}
	if c.sess != nil {
		s.detachLocked(c.sess)
	}
	delete(s.conns, c)
	closing := c.closing
	s.mu.Unlock()
	close(c.readerDone)
	if !closing {
		c.stop()
		c.drop()
	}
	<-c.writerDone
	_ = c.ws.Close()
	s.log.Debug("connection closed", "conn", c.id, "err", err)
}

func (s *Server) closeConn(c *conn, code int, text string) {
	s.mu.Lock()
	s.closeConnLocked(c, code, text)
	s.mu.Unlock()
}

// closeConnLocked queues a close frame and applies its effect on the session.
func (s *Server) closeConnLocked(c *conn, code int, text string) {
	if c.closing {
		return
	}
	if text == "" {
		text = closeText[code]
	}
	c.closing = true
	s.stats.ServerCloses[code]++
	if c.sess != nil && invalidatesSession(code) {
		s.invalidateLocked(c.sess)
	}
	c.enqueue(outFrame{closeCode: code, closeText: text})
}

func (s *Server) invalidateLocked(ss *session) {
	s.removeSessionLocked(ss)
	s.detachConnLocked(ss)
	ss.buf = nil
}

func (s *Server) detachLocked(ss *session) {
	s.detachConnLocked(ss)
	ss.detachedAt = s.now()
}

// pruneLocked forgets sessions that stayed detached longer than
// SessionTimeout; a full scan at most every pruneEvery.
func (s *Server) pruneLocked() {
	now := s.now()
	if now.Sub(s.lastPrune) < pruneEvery {
		return
	}
	s.lastPrune = now
	for _, ss := range s.sessions {
		if s.expiredLocked(ss, now) {
			s.removeSessionLocked(ss)
		}
	}
}

func opFrame(op int, d any) []byte {
	db, _ := json.Marshal(d)
	return []byte(`{"t":null,"s":null,"op":` + strconv.Itoa(op) + `,"d":` + string(db) + `}`)
}

func dispatchFrame(ev event) []byte {
	b := make([]byte, 0, len(ev.d)+64)
	b = append(b, `{"t":"`...)
	b = append(b, ev.t...)
	b = append(b, `","s":`...)
	b = strconv.AppendInt(b, int64(ev.seq), 10)
	b = append(b, `,"op":0,"d":`...)
	b = append(b, ev.d...)
	return append(b, '}')
}

// send queues a non-dispatch payload on c.
func (s *Server) sendLocked(c *conn, payload []byte) {
	if c.closing {
		return
	}
	c.enqueue(outFrame{payload: payload, zlib: c.perPayload})
}

// handlePayload handles one client payload, received at 'at'; it reports
// whether it was a heartbeat.
func (s *Server) handlePayload(c *conn, data []byte, at time.Time) (heartbeat bool) {
	var p struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.Op == nil {
		s.closeConn(c, CloseDecodeError, "")
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch *p.Op {
	case opHeartbeat:
		var seq *int64
		if len(p.D) > 0 {
			if err := json.Unmarshal(p.D, &seq); err != nil {
				s.closeConnLocked(c, CloseDecodeError, "")
				return false
			}
		}
		s.stats.Heartbeats++
		if !c.zombie {
			s.sendLocked(c, opFrame(opHeartbeatACK, nil))
			s.stats.HeartbeatACKs++
		}
		return true
	case opIdentify:
		s.identifyLocked(c, p.D, at)
	case opResume:
		s.resumeLocked(c, p.D)
	case opPresenceUpdate, opVoiceState, opRequestMembers, opSoundboard:
		if !c.authed {
			s.closeConnLocked(c, CloseNotAuthenticated, "")
		}
	default:
		s.closeConnLocked(c, CloseUnknownOpcode, "")
	}
	return false
}

type identifyData struct {
	Token      *string          `json:"token"`
	Properties *json.RawMessage `json:"properties"`
	Intents    *int64           `json:"intents"`
	Shard      []int            `json:"shard"`
	Compress   bool             `json:"compress"`
}

func (s *Server) tokenOK(tok string) bool {
	for _, t := range *s.tokens.Load() {
		if tok == t {
			return true
		}
	}
	return false
}

// identifyLocked handles an IDENTIFY received at 'at' (the pacing is
// measured as Discord measures it: by when IDENTIFYs arrive, not by when
// the Server gets to them).
func (s *Server) identifyLocked(c *conn, raw json.RawMessage, at time.Time) {
	var d identifyData
	if err := json.Unmarshal(raw, &d); err != nil || d.Token == nil || d.Properties == nil {
		s.stats.InvalidIdentifies++
		s.closeConnLocked(c, CloseDecodeError, "")
		return
	}
	fail := func(code int, text string) {
		s.stats.InvalidIdentifies++
		s.closeConnLocked(c, code, text)
	}
	switch {
	case c.authed:
		fail(CloseAlreadyAuthenticated, "")
		return
	case !s.tokenOK(*d.Token):
		fail(CloseAuthenticationFailed, "")
		return
	case d.Intents == nil:
		fail(CloseInvalidIntents, "Intents are required in v10.")
		return
	case *d.Intents < 0 || uint64(*d.Intents)&^IntentsValid != 0:
		fail(CloseInvalidIntents, "")
		return
	case uint64(*d.Intents)&IntentsPrivileged&^s.cfg.PrivilegedIntents != 0:
		fail(CloseDisallowedIntents, "")
		return
	}
	ss := &session{intents: uint64(*d.Intents), shardCount: 1, compress: d.Compress}
	if d.Shard != nil {
		if len(d.Shard) != 2 || d.Shard[1] < 1 || d.Shard[0] < 0 || d.Shard[0] >= d.Shard[1] {
			fail(CloseInvalidShard, "")
			return
		}
		ss.shardID, ss.shardCount, ss.hasShard = d.Shard[0], d.Shard[1], true
	}
	bucket := ss.shardID % s.identify.maxConc
	if m := s.cfg.LargeBotShardMultiple; m > 1 && ss.shardCount%m != 0 {
		s.recordIdentifyLocked(c, ss, bucket, IdentifyInvalidShard, at)
		fail(CloseInvalidShard, fmt.Sprintf("Invalid shard: this bot uses large bot sharding; the shard count must be a multiple of %d.", m))
		return
	}
	guilds := s.guildsOfShardLocked(ss.shardID, ss.shardCount)
	if len(guilds) > s.cfg.MaxGuildsPerShard {
		s.recordIdentifyLocked(c, ss, bucket, IdentifyShardingRequired, at)
		fail(CloseShardingRequired, "")
		return
	}
	switch s.identify.allow(ss.shardID, at) {
	case limitPaced:
		s.recordIdentifyLocked(c, ss, bucket, IdentifyTooSoon, at)
		s.stats.InvalidIdentifies++
		s.stats.InvalidSessions++
		s.sendLocked(c, opFrame(opInvalidSession, false))
		return
	case limitBudget:
		s.recordIdentifyLocked(c, ss, bucket, IdentifyOverBudget, at)
		s.stats.InvalidIdentifies++
		s.stats.InvalidSessions++
		s.sendLocked(c, opFrame(opInvalidSession, false))
		s.budgetExceededLocked(c)
		return
	}
	s.pruneLocked()
	ss.id = newSessionID()
	s.addSessionLocked(ss)
	s.attachLocked(ss, c)
	s.recordIdentifyLocked(c, ss, bucket, IdentifyReady, at)
	c.authed = true
	c.perPayload = d.Compress && c.mode == compressNone
	s.stats.Identifies++

	ready := map[string]any{
		"v":                       10,
		"user":                    s.botUserObject(),
		"user_settings":           map[string]any{},
		"session_type":            "normal",
		"session_id":              ss.id,
		"resume_gateway_url":      cmp.Or(s.hostile.ResumeURL, c.resumeURL),
		"guilds":                  unavailableGuilds(guilds),
		"private_channels":        []any{},
		"relationships":           []any{},
		"presences":               []any{},
		"guild_join_requests":     []any{},
		"geo_ordered_rtc_regions": []string{"local"},
		"application":             map[string]any{"id": s.botID, "flags": s.applicationFlags()},
		"_trace":                  []string{"[\"cordstream-sim\",{\"micros\":0}]"},
	}
	if ss.hasShard {
		ready["shard"] = []int{ss.shardID, ss.shardCount}
	}
	rb, _ := json.Marshal(ready)
	s.dispatchLocked(ss, "READY", rb)
	if ss.intents&IntentGuilds != 0 {
		botUser, _ := json.Marshal(s.botUserObject())
		for _, g := range guilds {
			gb := s.appendGuildCreateLocked(make([]byte, 0, 1536), g, botUser)
			s.dispatchLocked(ss, "GUILD_CREATE", gb)
		}
	}
}

type resumeData struct {
	Token     *string `json:"token"`
	SessionID *string `json:"session_id"`
	Seq       *int    `json:"seq"`
}

func (s *Server) resumeLocked(c *conn, raw json.RawMessage) {
	var d resumeData
	if err := json.Unmarshal(raw, &d); err != nil || d.Token == nil || d.SessionID == nil {
		s.stats.FailedResumes++
		s.closeConnLocked(c, CloseDecodeError, "")
		return
	}
	invalid := func() {
		s.stats.FailedResumes++
		s.stats.InvalidSessions++
		s.sendLocked(c, opFrame(opInvalidSession, false))
	}
	switch {
	case c.authed:
		s.stats.FailedResumes++
		s.closeConnLocked(c, CloseAlreadyAuthenticated, "")
		return
	case !s.tokenOK(*d.Token):
		s.stats.FailedResumes++
		s.closeConnLocked(c, CloseAuthenticationFailed, "")
		return
	case s.cfg.RequireResumeURL && !c.onResumeURL:
		invalid()
		return
	}
	ss, ok := s.liveSessionLocked(*d.SessionID)
	if !ok {
		invalid()
		return
	}
	seq := 0
	if d.Seq != nil {
		seq = *d.Seq
	}
	if seq < 0 || seq > ss.seq {
		s.invalidateLocked(ss)
		s.stats.FailedResumes++
		s.closeConnLocked(c, CloseInvalidSeq, "")
		return
	}
	if seq+1 < ss.firstBuffered() {
		// Events the client missed are no longer kept.
		s.invalidateLocked(ss)
		invalid()
		return
	}
	if old := ss.conn; old != nil && old != c {
		// The session moves here; the old connection is told to go away.
		s.detachConnLocked(ss)
		s.closeConnLocked(old, CloseUnknownError, "Session resumed on another connection.")
	}
	s.attachLocked(ss, c)
	c.authed = true
	c.perPayload = ss.compress && c.mode == compressNone
	for _, ev := range ss.buf {
		if ev.seq > seq {
			c.enqueue(outFrame{payload: dispatchFrame(ev), zlib: c.perPayload})
			c.lastSeq = ev.seq
			s.stats.EventsReplayed++
		}
	}
	s.stats.Resumes++
	if !c.onResumeURL {
		s.stats.ResumesOnMainURL++
	}
	rb, _ := json.Marshal(map[string]any{"_trace": []string{"[\"cordstream-sim\",{\"micros\":0}]"}})
	s.dispatchLocked(ss, "RESUMED", rb)
}
