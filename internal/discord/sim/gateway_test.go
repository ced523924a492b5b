package sim

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const allIntents = IntentGuilds | IntentGuildMessages | IntentDirectMessages | IntentMessageContent

func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.PrivilegedIntents == 0 {
		cfg.PrivilegedIntents = IntentMessageContent
	}
	if cfg.IdentifyInterval == 0 {
		cfg.IdentifyInterval = -1
	}
	s := New(cfg)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// world adds one guild with one channel and one author.
func world(s *Server) (Guild, Channel, User) {
	g := s.AddGuild("Café ☕")
	ch := s.AddChannel(g.ID, "general")
	u := s.AddUser(User{Username: "alice", GlobalName: "Alice 🌸"})
	return g, ch, u
}

func post(t *testing.T, s *Server, spec MessageSpec) Message {
	t.Helper()
	m, err := s.Post(spec)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	return m
}

func TestHelloAndHeartbeat(t *testing.T) {
	s := newTestServer(t, Config{HeartbeatInterval: 1234 * time.Millisecond})
	c := dial(t, s, "", "")
	p := c.read()
	if p.Op != opHello || p.S != nil || p.T != nil {
		t.Fatalf("first payload: got %s (s=%v t=%v), want HELLO with s and t null", p, p.S, p.T)
	}
	var d struct {
		HeartbeatInterval int `json:"heartbeat_interval"`
	}
	if err := json.Unmarshal(p.D, &d); err != nil || d.HeartbeatInterval != 1234 {
		t.Fatalf("heartbeat_interval: got %d (%v), want 1234", d.HeartbeatInterval, err)
	}
	// Heartbeats are allowed before IDENTIFY and answered with op 11.
	c.send(opHeartbeat, nil)
	if p := c.read(); p.Op != opHeartbeatACK {
		t.Fatalf("after heartbeat: got %s, want op 11", p)
	}
	c.send(opIdentify, identifyPayload(s.Token(), allIntents))
	c.expect(opDispatch, "READY")
	c.send(opHeartbeat, c.seq)
	c.expect(opHeartbeatACK, "")
	// Server-requested heartbeat: op 1 from the server.
	if n := s.RequestHeartbeat(); n != 1 {
		t.Fatalf("RequestHeartbeat touched %d connections, want 1", n)
	}
	p = c.expect(opHeartbeat, "")
	if string(p.D) != itoa(c.seq) {
		t.Errorf("server heartbeat d: got %s, want %d", p.D, c.seq)
	}
	st := s.Stats()
	if st.Heartbeats != 2 || st.HeartbeatACKs != 2 {
		t.Errorf("stats: heartbeats %d acks %d, want 2 and 2", st.Heartbeats, st.HeartbeatACKs)
	}
}

func TestCloseCodes(t *testing.T) {
	other := NewToken(42, []byte("x"))
	big := strings.Repeat("x", 5000)
	tests := []struct {
		name  string
		cfg   Config
		query string
		steps func(c *testClient, s *Server)
		want  int
	}{
		{"bad token", Config{}, "", func(c *testClient, s *Server) {
			c.send(opIdentify, identifyPayload(other, allIntents))
		}, CloseAuthenticationFailed},
		{"invalid intent bit", Config{}, "", func(c *testClient, s *Server) {
			c.send(opIdentify, identifyPayload(s.Token(), IntentGuilds|1<<17))
		}, CloseInvalidIntents},
		{"missing intents", Config{}, "", func(c *testClient, s *Server) {
			d := identifyPayload(s.Token(), 0)
			delete(d, "intents")
			c.send(opIdentify, d)
		}, CloseInvalidIntents},
		{"privileged intent not enabled", Config{PrivilegedIntents: IntentGuildMembers}, "", func(c *testClient, s *Server) {
			c.send(opIdentify, identifyPayload(s.Token(), IntentGuilds|IntentMessageContent))
		}, CloseDisallowedIntents},
		{"shard id out of range", Config{}, "", func(c *testClient, s *Server) {
			d := identifyPayload(s.Token(), allIntents)
			d["shard"] = []int{1, 1}
			c.send(opIdentify, d)
		}, CloseInvalidShard},
		{"shard count zero", Config{}, "", func(c *testClient, s *Server) {
			d := identifyPayload(s.Token(), allIntents)
			d["shard"] = []int{0, 0}
			c.send(opIdentify, d)
		}, CloseInvalidShard},
		{"sharding required", Config{MaxGuildsPerShard: 1}, "", func(c *testClient, s *Server) {
			s.AddGuild("a")
			s.AddGuild("b")
			c.send(opIdentify, identifyPayload(s.Token(), allIntents))
		}, CloseShardingRequired},
		{"payload over 4096 bytes", Config{}, "", func(c *testClient, s *Server) {
			c.send(opHeartbeat, big)
		}, CloseDecodeError},
		{"not JSON", Config{}, "", func(c *testClient, s *Server) {
			c.sendRaw([]byte("{nope"))
		}, CloseDecodeError},
		{"no op", Config{}, "", func(c *testClient, s *Server) {
			c.sendRaw([]byte(`{"d":null}`))
		}, CloseDecodeError},
		{"heartbeat with a string", Config{}, "", func(c *testClient, s *Server) {
			c.send(opHeartbeat, "seven")
		}, CloseDecodeError},
		{"identify without properties", Config{}, "", func(c *testClient, s *Server) {
			d := identifyPayload(s.Token(), allIntents)
			delete(d, "properties")
			c.send(opIdentify, d)
		}, CloseDecodeError},
		{"unknown opcode", Config{}, "", func(c *testClient, s *Server) {
			c.send(5, nil)
		}, CloseUnknownOpcode},
		{"receive-only opcode", Config{}, "", func(c *testClient, s *Server) {
			c.send(opHeartbeatACK, nil)
		}, CloseUnknownOpcode},
		{"presence before identify", Config{}, "", func(c *testClient, s *Server) {
			c.send(opPresenceUpdate, map[string]any{"status": "online"})
		}, CloseNotAuthenticated},
		{"identify twice", Config{}, "", func(c *testClient, s *Server) {
			c.send(opIdentify, identifyPayload(s.Token(), allIntents))
			c.expect(opDispatch, "READY")
			c.send(opIdentify, identifyPayload(s.Token(), allIntents))
		}, CloseAlreadyAuthenticated},
		{"resume after identify", Config{}, "", func(c *testClient, s *Server) {
			c.send(opIdentify, identifyPayload(s.Token(), allIntents))
			p := c.expect(opDispatch, "READY")
			var r readyData
			_ = json.Unmarshal(p.D, &r)
			c.send(opResume, map[string]any{"token": s.Token(), "session_id": r.SessionID, "seq": 1})
		}, CloseAlreadyAuthenticated},
		{"send rate limit", Config{GatewaySendLimit: 5}, "", func(c *testClient, s *Server) {
			for i := 0; i < 6; i++ {
				c.send(opHeartbeat, nil)
			}
		}, CloseRateLimited},
		{"heartbeat timeout", Config{HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}, "", func(c *testClient, s *Server) {
		}, CloseSessionTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, tt.cfg)
			c := dial(t, s, "", tt.query)
			c.hello()
			tt.steps(c, s)
			c.expectClose(tt.want)
			if got := s.Stats().ServerCloses[tt.want]; got != 1 {
				t.Errorf("stats: %d closes with %d, want 1", got, tt.want)
			}
		})
	}
}

func TestConnectQuery(t *testing.T) {
	tests := []struct {
		query string
		want  int
	}{
		{"v=9&encoding=json", CloseInvalidAPIVersion},
		{"encoding=json&v=", CloseInvalidAPIVersion},
		{"v=10&encoding=etf", CloseDecodeError},
		{"v=10&encoding=json&compress=gzip", CloseDecodeError},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			s := newTestServer(t, Config{})
			c := dial(t, s, "", tt.query)
			c.expectClose(tt.want)
		})
	}
}

func TestReadyAndGuildCreate(t *testing.T) {
	s := newTestServer(t, Config{})
	g1, ch, _ := world(s)
	g2 := s.AddGuild("ゲーム部")
	c := dial(t, s, "", "")
	r := c.login(s.Token(), allIntents, nil)
	if r.V != 10 {
		t.Errorf("v: got %d, want 10", r.V)
	}
	if r.User["id"] != s.Bot().ID.String() || r.User["bot"] != true || r.User["discriminator"] != "0" {
		t.Errorf("user: got %v", r.User)
	}
	if len(r.SessionID) != 32 {
		t.Errorf("session_id: got %q, want 32 hex chars", r.SessionID)
	}
	if want := s.GatewayURL() + "/resume"; r.ResumeGatewayURL != want {
		t.Errorf("resume_gateway_url: got %q, want %q", r.ResumeGatewayURL, want)
	}
	if r.Shard != nil {
		t.Errorf("shard: got %v, want absent when IDENTIFY had none", r.Shard)
	}
	if r.Application["id"] != s.Bot().ID.String() {
		t.Errorf("application: got %v", r.Application)
	}
	if len(r.Guilds) != 2 || r.Guilds[0]["id"] != g1.ID.String() || r.Guilds[0]["unavailable"] != true || r.Guilds[1]["id"] != g2.ID.String() {
		t.Errorf("guilds: got %v", r.Guilds)
	}
	if c.seq != 1 {
		t.Errorf("READY seq: got %d, want 1", c.seq)
	}
	for i, want := range []Guild{g1, g2} {
		p := c.expect(opDispatch, "GUILD_CREATE")
		var gc struct {
			ID          string           `json:"id"`
			Name        string           `json:"name"`
			Unavailable bool             `json:"unavailable"`
			Channels    []map[string]any `json:"channels"`
		}
		if err := json.Unmarshal(p.D, &gc); err != nil {
			t.Fatal(err)
		}
		if gc.ID != want.ID.String() || gc.Name != want.Name || gc.Unavailable {
			t.Errorf("GUILD_CREATE %d: got %+v, want %v", i, gc, want)
		}
		if *p.S != i+2 {
			t.Errorf("GUILD_CREATE %d seq: got %d, want %d", i, *p.S, i+2)
		}
		if i == 0 && (len(gc.Channels) != 1 || gc.Channels[0]["id"] != ch.ID.String()) {
			t.Errorf("GUILD_CREATE channels: got %v", gc.Channels)
		}
	}
	// With a shard: READY carries it.
	c2 := dial(t, s, "", "")
	r2 := c2.login(s.Token(), allIntents, map[string]any{"shard": []int{0, 1}})
	if len(r2.Shard) != 2 || r2.Shard[0] != 0 || r2.Shard[1] != 1 {
		t.Errorf("shard: got %v, want [0 1]", r2.Shard)
	}
	// Without GUILDS there is no GUILD_CREATE: the next dispatch is a message.
	c3 := dial(t, s, "", "")
	c3.login(s.Token(), IntentGuildMessages|IntentMessageContent, nil)
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: s.Bot().ID, Content: "x"})
	if p := c3.read(); eventType(p) != "MESSAGE_CREATE" || *p.S != 2 {
		t.Errorf("without GUILDS: got %s seq %v, want MESSAGE_CREATE seq 2", p, *p.S)
	}
}

func TestIdentifyConcurrencyLimit(t *testing.T) {
	s := newTestServer(t, Config{IdentifyInterval: time.Hour})
	c := dial(t, s, "", "")
	c.login(s.Token(), allIntents, nil)
	c2 := dial(t, s, "", "")
	c2.hello()
	c2.send(opIdentify, identifyPayload(s.Token(), allIntents))
	p := c2.expect(opInvalidSession, "")
	if string(p.D) != "false" {
		t.Errorf("op 9 d: got %s, want false", p.D)
	}
	// Another shard's bucket with max_concurrency 2 is free.
	s2 := newTestServer(t, Config{IdentifyInterval: time.Hour, MaxConcurrency: 2})
	a := dial(t, s2, "", "")
	a.login(s2.Token(), allIntents, map[string]any{"shard": []int{0, 2}})
	b := dial(t, s2, "", "")
	b.login(s2.Token(), allIntents, map[string]any{"shard": []int{1, 2}})
}

func TestSessionStartLimit(t *testing.T) {
	s := newTestServer(t, Config{SessionStartLimit: 1})
	c := dial(t, s, "", "")
	c.login(s.Token(), allIntents, nil)
	c2 := dial(t, s, "", "")
	c2.hello()
	c2.send(opIdentify, identifyPayload(s.Token(), allIntents))
	if p := c2.expect(opInvalidSession, ""); string(p.D) != "false" {
		t.Errorf("op 9 d: got %s, want false", p.D)
	}
}

func TestCompression(t *testing.T) {
	for _, mode := range []string{"zlib-stream", "zstd-stream", "payload"} {
		t.Run(mode, func(t *testing.T) {
			s := newTestServer(t, Config{})
			_, ch, u := world(s)
			q := "v=10&encoding=json&compress=" + mode
			extra := map[string]any(nil)
			if mode == "payload" {
				q = ""
				extra = map[string]any{"compress": true}
			}
			c := dial(t, s, "", q)
			c.login(s.Token(), allIntents, extra)
			post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "héllo 👋 " + strings.Repeat("ab", 500)})
			m := c.messages(1)[0]
			if !strings.HasPrefix(m["content"].(string), "héllo 👋 abab") {
				t.Errorf("content: got %q", m["content"])
			}
			c.send(opHeartbeat, c.seq)
			c.expect(opHeartbeatACK, "")
			frames := c.binaryFrames()
			if len(frames) < 3 {
				t.Fatalf("got %d binary frames, want every payload after IDENTIFY compressed", len(frames))
			}
			for i, f := range frames {
				switch mode {
				case "zlib-stream":
					if !bytes.HasSuffix(f, []byte{0, 0, 0xff, 0xff}) {
						t.Errorf("frame %d does not end with Z_SYNC_FLUSH 00 00 ff ff: % x", i, f[max(0, len(f)-8):])
					}
					if i == 0 && f[0] != 0x78 {
						t.Errorf("first frame starts with %x, want a zlib header 78", f[0])
					}
					if i > 0 && f[0] == 0x78 && f[1] == 0x9c {
						t.Errorf("frame %d starts a new zlib stream; want one stream per connection", i)
					}
				case "payload":
					if f[0] != 0x78 {
						t.Errorf("frame %d: want a complete zlib stream per payload, got % x", i, f[:2])
					}
				}
			}
		})
	}
}

func TestSequenceNumbersIncrease(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, u := world(s)
	c := dial(t, s, "", "")
	c.login(s.Token(), allIntents, nil)
	c.expect(opDispatch, "GUILD_CREATE")
	last := c.seq
	for i := 0; i < 20; i++ {
		post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "n"})
	}
	for i := 0; i < 20; i++ {
		p := c.expect(opDispatch, "MESSAGE_CREATE")
		if *p.S != last+1 {
			t.Fatalf("seq: got %d, want %d", *p.S, last+1)
		}
		last = *p.S
	}
}

func TestDefaultSendLimit(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		sends    int
		closed   bool
	}{
		{"Discord's interval: 121 allowed", 0, 121, false},
		{"Discord's interval: 122 closes", 0, 122, true},
		{"short interval leaves room for its heartbeats", 100 * time.Millisecond, 700, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Config{HeartbeatInterval: tt.interval})
			c := dial(t, s, "", "")
			c.hello()
			for i := 0; i < tt.sends; i++ {
				c.send(opHeartbeat, nil)
			}
			if tt.closed {
				c.expectClose(CloseRateLimited)
				return
			}
			for i := 0; i < tt.sends; i++ {
				c.expect(opHeartbeatACK, "")
			}
		})
	}
}
