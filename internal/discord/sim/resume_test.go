package sim

import (
	"encoding/json"
	"testing"
	"time"
)

// resume dials the resume URL and sends RESUME.
func resume(t *testing.T, s *Server, path, sessionID string, seq int) *testClient {
	t.Helper()
	c := dial(t, s, path, "")
	c.hello()
	c.send(opResume, map[string]any{"token": s.Token(), "session_id": sessionID, "seq": seq})
	return c
}

// replayed reads dispatches until RESUMED and returns the MESSAGE_CREATE
// contents, checking sequence numbers continue from seq.
func replayed(t *testing.T, c *testClient, seq int) []string {
	t.Helper()
	var got []string
	for {
		p := c.expect(opDispatch, "")
		if *p.S != seq+1 {
			t.Fatalf("replay seq: got %d, want %d", *p.S, seq+1)
		}
		seq = *p.S
		switch eventType(p) {
		case "RESUMED":
			return got
		case "MESSAGE_CREATE":
			var m struct {
				Content string `json:"content"`
			}
			_ = json.Unmarshal(p.D, &m)
			got = append(got, m.Content)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestResumeAfterDropReplaysInOrder(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	r := c.login(s.Token(), allIntents, nil)
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "m1"})
	c.messages(1)
	seq := c.seq
	if n := s.DropConnections(); n != 1 {
		t.Fatalf("DropConnections: %d, want 1", n)
	}
	if _, err := c.next(wait); err == nil {
		t.Fatal("connection still readable after drop")
	}
	want := []string{"m2", "m3", "m4"}
	for _, w := range want {
		post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: w})
	}
	c2 := resume(t, s, "resume", r.SessionID, seq)
	if got := replayed(t, c2, seq); !equal(got, want) {
		t.Fatalf("replayed: got %q, want %q", got, want)
	}
	// Live again.
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "m5"})
	if m := c2.messages(1)[0]; m["content"] != "m5" {
		t.Errorf("after RESUMED: got %v, want m5", m["content"])
	}
	st := s.Stats()
	if st.Resumes != 1 || st.EventsReplayed != 3 || st.Drops != 1 || st.ResumesOnMainURL != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestResumeFromOlderSeqReplaysWhatWasAlreadySent(t *testing.T) {
	// Discord replays every event after the seq the client names, even
	// ones it had already sent: the client de-duplicates by message id.
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	r := c.login(s.Token(), allIntents, nil)
	c.expect(opDispatch, "GUILD_CREATE")
	seq := c.seq
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "a"})
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "b"})
	c.messages(2)
	c.ws.Close()
	c2 := resume(t, s, "resume", r.SessionID, seq)
	if got := replayed(t, c2, seq); !equal(got, []string{"a", "b"}) {
		t.Fatalf("replayed: got %q, want [a b]", got)
	}
}

func TestResumeFailures(t *testing.T) {
	t.Run("unknown session", func(t *testing.T) {
		s := newTestServer(t, Config{})
		c := resume(t, s, "resume", "0123456789abcdef0123456789abcdef", 1)
		if p := c.expect(opInvalidSession, ""); string(p.D) != "false" {
			t.Errorf("got %s, want op 9 false", p)
		}
	})
	t.Run("seq ahead of the session", func(t *testing.T) {
		s := newTestServer(t, Config{})
		c := dial(t, s, "", "")
		r := c.login(s.Token(), allIntents, nil)
		c.ws.Close()
		c2 := resume(t, s, "resume", r.SessionID, 99)
		c2.expectClose(CloseInvalidSeq)
		// 4007 ends the session.
		c3 := resume(t, s, "resume", r.SessionID, 1)
		c3.expect(opInvalidSession, "")
	})
	t.Run("bad token", func(t *testing.T) {
		s := newTestServer(t, Config{})
		c := dial(t, s, "", "")
		r := c.login(s.Token(), allIntents, nil)
		c.ws.Close()
		c2 := dial(t, s, "resume", "")
		c2.hello()
		c2.send(opResume, map[string]any{"token": NewToken(7, nil), "session_id": r.SessionID, "seq": 1})
		c2.expectClose(CloseAuthenticationFailed)
	})
	for _, code := range []int{CloseNormal, CloseGoingAway} {
		t.Run("client closed with "+itoa(code), func(t *testing.T) {
			s := newTestServer(t, Config{})
			c := dial(t, s, "", "")
			r := c.login(s.Token(), allIntents, nil)
			closeWith(t, c, code)
			c2 := resume(t, s, "resume", r.SessionID, 1)
			c2.expect(opInvalidSession, "")
		})
	}
	t.Run("session timed out", func(t *testing.T) {
		s := newTestServer(t, Config{SessionTimeout: 50 * time.Millisecond})
		c := dial(t, s, "", "")
		r := c.login(s.Token(), allIntents, nil)
		c.ws.Close()
		time.Sleep(300 * time.Millisecond)
		c2 := resume(t, s, "resume", r.SessionID, 1)
		c2.expect(opInvalidSession, "")
	})
	t.Run("events no longer buffered", func(t *testing.T) {
		s := newTestServer(t, Config{ReplayBuffer: 2})
		_, ch, u := world(s)
		c := dial(t, s, "", "")
		r := c.login(s.Token(), allIntents, nil)
		c.ws.Close()
		for i := 0; i < 5; i++ {
			post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "x"})
		}
		c2 := resume(t, s, "resume", r.SessionID, 1)
		c2.expect(opInvalidSession, "")
	})
	t.Run("main URL when the resume URL is required", func(t *testing.T) {
		s := newTestServer(t, Config{RequireResumeURL: true})
		c := dial(t, s, "", "")
		r := c.login(s.Token(), allIntents, nil)
		c.ws.Close()
		c2 := resume(t, s, "", r.SessionID, 1)
		c2.expect(opInvalidSession, "")
	})
}

func closeWith(t *testing.T, c *testClient, code int) {
	t.Helper()
	msg := websocketCloseMessage(code)
	if err := c.ws.WriteControl(8, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Wait for the server's answer so the close is processed.
	for {
		if _, err := c.next(wait); err != nil {
			return
		}
	}
}

func TestClientCloseWithOtherCodeKeepsSession(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	r := c.login(s.Token(), allIntents, nil)
	seq := c.seq
	closeWith(t, c, 4000)
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "while away"})
	c2 := resume(t, s, "resume", r.SessionID, seq)
	got := replayed(t, c2, seq)
	if len(got) != 1 || got[0] != "while away" {
		t.Fatalf("replayed: got %q", got)
	}
	if n := s.Stats().ClientCloses[4000]; n != 1 {
		t.Errorf("client closes 4000: %d, want 1", n)
	}
}

func TestZombieConnection(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	r := c.login(s.Token(), allIntents, nil)
	c.expect(opDispatch, "GUILD_CREATE")
	seq := c.seq
	if n := s.StopHeartbeatACKs(true); n != 1 {
		t.Fatalf("StopHeartbeatACKs: %d, want 1", n)
	}
	c.send(opHeartbeat, seq)
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "lost on the zombie"})
	c.expectSilence(300 * time.Millisecond)
	// The client notices the missing ACK, closes with a non-1000 code and resumes.
	closeWith(t, c, 4000)
	c2 := resume(t, s, "resume", r.SessionID, seq)
	if got := replayed(t, c2, seq); !equal(got, []string{"lost on the zombie"}) {
		t.Fatalf("replayed: got %q", got)
	}
	// New connections are healthy.
	c2.send(opHeartbeat, c2.seq)
	c2.expect(opHeartbeatACK, "")
}

func TestZombieRevived(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	c.login(s.Token(), allIntents, nil)
	c.expect(opDispatch, "GUILD_CREATE")
	s.StopHeartbeatACKs(true)
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "held back"})
	c.expectSilence(100 * time.Millisecond)
	s.StopHeartbeatACKs(false)
	if m := c.messages(1)[0]; m["content"] != "held back" {
		t.Errorf("after revival: got %v", m["content"])
	}
}

func TestReconnectOp7(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	r := c.login(s.Token(), allIntents, nil)
	c.expect(opDispatch, "GUILD_CREATE")
	seq := c.seq
	if n := s.SendReconnect(); n != 1 {
		t.Fatalf("SendReconnect: %d", n)
	}
	if p := c.expect(opReconnect, ""); string(p.D) != "null" {
		t.Errorf("op 7 d: got %s, want null", p.D)
	}
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "after op 7"})
	c.expectSilence(100 * time.Millisecond)
	// Resume while the old connection is still open: it is closed, the new one gets the event.
	c2 := resume(t, s, "resume", r.SessionID, seq)
	if got := replayed(t, c2, seq); !equal(got, []string{"after op 7"}) {
		t.Fatalf("replayed: got %q", got)
	}
	c.expectClose(CloseUnknownError)
}

func TestInvalidSessionResumable(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	r := c.login(s.Token(), allIntents, nil)
	c.expect(opDispatch, "GUILD_CREATE")
	seq := c.seq
	s.InvalidateSessions(true)
	if p := c.expect(opInvalidSession, ""); string(p.D) != "true" {
		t.Fatalf("op 9 d: got %s, want true", p.D)
	}
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "kept"})
	closeWith(t, c, 4000)
	c2 := resume(t, s, "resume", r.SessionID, seq)
	if got := replayed(t, c2, seq); !equal(got, []string{"kept"}) {
		t.Fatalf("replayed: got %q", got)
	}
}

func TestInvalidSessionNotResumable(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	r := c.login(s.Token(), allIntents, nil)
	c.expect(opDispatch, "GUILD_CREATE")
	s.InvalidateSessions(false)
	if p := c.expect(opInvalidSession, ""); string(p.D) != "false" {
		t.Fatalf("op 9 d: got %s, want false", p.D)
	}
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "gone"})
	c.expectSilence(100 * time.Millisecond)
	closeWith(t, c, CloseNormal)
	c2 := resume(t, s, "resume", r.SessionID, 1)
	c2.expect(opInvalidSession, "")
	// A new IDENTIFY works and starts from seq 1.
	c3 := dial(t, s, "", "")
	r3 := c3.login(s.Token(), allIntents, nil)
	if r3.SessionID == r.SessionID || c3.seq != 1 {
		t.Errorf("new session %q seq %d; want a new id and seq 1", r3.SessionID, c3.seq)
	}
}

func TestCloseAll(t *testing.T) {
	for _, tt := range []struct {
		code      int
		resumable bool
	}{{4000, true}, {4009, false}, {4014, false}, {1000, true}} {
		t.Run(itoa(tt.code), func(t *testing.T) {
			s := newTestServer(t, Config{})
			c := dial(t, s, "", "")
			r := c.login(s.Token(), allIntents, nil)
			s.CloseAll(tt.code)
			c.expectClose(tt.code)
			c2 := resume(t, s, "resume", r.SessionID, 1)
			p := c2.read()
			if got := p.Op == opDispatch; got != tt.resumable {
				t.Errorf("after close %d: got %s, resumable want %v", tt.code, p, tt.resumable)
			}
		})
	}
}
