package sim

import (
	"strconv"
	"strings"
)

// Fault injection. Each call acts on the connections open at that moment and
// returns how many it touched.

// DropConnections closes every gateway connection's TCP socket without a
// close frame (as a network failure would). Sessions survive: a RESUME gets
// every event the client did not receive.
func (s *Server) DropConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.drop()
		n++
	}
	return n
}

// StopHeartbeatACKs(true) turns every open connection into a zombie: it
// still reads, but ACKs no heartbeat and sends no event (events are kept in
// the session for a RESUME), as a half-dead link would. Connections opened
// later are healthy. StopHeartbeatACKs(false) revives the zombies still
// open: they send the events they held back, in order, and ACK again.
func (s *Server) StopHeartbeatACKs(on bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if on && !c.zombie && !c.closing {
			c.zombie = true
			n++
		}
		if !on && c.zombie {
			c.zombie = false
			n++
			if ss := c.sess; ss != nil && !c.draining && !c.closing {
				for _, ev := range ss.buf {
					if ev.seq > c.lastSeq {
						c.enqueue(outFrame{payload: dispatchFrame(ev), zlib: c.perPayload})
						c.lastSeq = ev.seq
						s.stats.EventsDispatched++
					}
				}
			}
		}
	}
	return n
}

// SendReconnect sends op 7 RECONNECT on every open connection; they get no
// further events (the client must reconnect and RESUME to receive them).
func (s *Server) SendReconnect() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.closing {
			continue
		}
		s.sendLocked(c, opFrame(opReconnect, nil))
		c.draining = true
		s.stats.Reconnects++
		n++
	}
	return n
}

// InvalidateSessions sends op 9 INVALID_SESSION with d=resumable on every
// open connection, which then gets no further events. With
// resumable=false every session (attached or not) ends: the client must
// IDENTIFY anew, and what happened meanwhile is not replayed.
func (s *Server) InvalidateSessions(resumable bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.closing {
			continue
		}
		s.sendLocked(c, opFrame(opInvalidSession, resumable))
		s.stats.InvalidSessions++
		c.draining = true
		if !resumable {
			c.authed = false
		}
		n++
	}
	if !resumable {
		for _, ss := range s.sessions {
			s.invalidateLocked(ss)
		}
	}
	return n
}

// CloseAll closes every open connection with close code code (any code:
// 4000, 4004, 4014, 1000 …). Codes after which Discord does not let a
// session resume (4004, 4007, 4009, 4010–4014) also end the sessions.
func (s *Server) CloseAll(code int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.closing {
			continue
		}
		s.closeConnLocked(c, code, "")
		n++
	}
	return n
}

// RequestHeartbeat sends op 1 on every open connection: the client must
// answer with a heartbeat at once.
func (s *Server) RequestHeartbeat() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.closing {
			continue
		}
		var seq any
		if c.sess != nil {
			seq = c.sess.seq
		}
		s.sendLocked(c, opFrame(opHeartbeat, seq))
		n++
	}
	return n
}

// Hostile answers, as no real Discord gives them, to test that a client
// bounds what it is told. The zero value of each field changes nothing.
// Values given as text are written into the JSON as they are, so that
// they may be anything a server could send: "1e300", "-1", "0.001".
type Hostile struct {
	// Shards replaces the shard count GET /gateway/bot recommends (for
	// example 1000000000).
	Shards int
	// MaxConcurrency replaces session_start_limit.max_concurrency.
	MaxConcurrency int
	// GatewayURL replaces the url of GET /gateway and GET /gateway/bot
	// (for example ws://gateway.example.com: plain text to another host).
	GatewayURL string
	// ResumeURL replaces resume_gateway_url in READY (for example a URL
	// on another host).
	ResumeURL string
	// RetryAfter, when set, answers the authenticated REST requests whose
	// path (after /api/v10) starts with RetryAfterOn ("" for all) with 429
	// Too Many Requests, retry_after and Retry-After set to it.
	RetryAfter   string
	RetryAfterOn string
	// HeartbeatInterval, when set, is HELLO's heartbeat_interval (in
	// milliseconds, as text).
	HeartbeatInterval string
}

// SetHostile makes every later answer hostile as h says (Hostile{} ends
// it). It does not touch the connections already open.
func (s *Server) SetHostile(h Hostile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostile = h
}

// SendOversizedFrame sends, on every open connection, one frame of at
// least n bytes: a payload of an opcode no client knows (99), which a
// client that keeps to a size limit below n refuses. Sessions are not
// touched: a RESUME gets every event.
func (s *Server) SendOversizedFrame(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	payload := []byte(`{"t":null,"s":null,"op":99,"d":"` + strings.Repeat("x", max(n, 0)) + `"}`)
	count := 0
	for c := range s.conns {
		if c.closing {
			continue
		}
		s.sendLocked(c, payload)
		count++
	}
	return count
}

// helloFrame is HELLO with the configured interval, or the hostile one.
func (s *Server) helloFrame() []byte {
	interval := strconv.FormatInt(s.cfg.HeartbeatInterval.Milliseconds(), 10)
	if s.hostile.HeartbeatInterval != "" {
		interval = s.hostile.HeartbeatInterval
	}
	return []byte(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":` + interval + `,"_trace":["[\"cordstream-sim\",{\"micros\":0}]"]}}`)
}
