package sim

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
