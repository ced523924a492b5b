package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// shardLogin identifies client c for shard [id, count].
func shardLogin(c *testClient, s *Server, intents uint64, id, count int) readyData {
	c.t.Helper()
	return c.login(s.Token(), intents, map[string]any{"shard": []int{id, count}})
}

// TestAddGuildsSpreadOverShards: guilds made in one burst spread over the
// shards by Discord's formula, and READY of each shard lists exactly its
// guilds.
func TestAddGuildsSpreadOverShards(t *testing.T) {
	s := newTestServer(t, Config{Shards: 4, MaxConcurrency: 4})
	gs := s.AddGuilds(400, nil, "general")
	per := make([]int, 4)
	for _, g := range gs {
		per[ShardOf(g.ID, 4)]++
		if chs := s.ChannelsOf(g.ID); len(chs) != 1 || chs[0].Name != "general" {
			t.Fatalf("channels of %s: %v", g.ID, chs)
		}
	}
	for i, n := range per {
		if n != 100 {
			t.Errorf("shard %d has %d guilds, want 100 (one per millisecond, 4 shards)", i, n)
		}
	}
	seen := map[string]int{}
	for shard := range 4 {
		c := dial(t, s, "", "")
		r := shardLogin(c, s, IntentGuildMessages, shard, 4)
		for _, g := range r.Guilds {
			id, _ := ParseID(g["id"].(string))
			if got := ShardOf(id, 4); got != shard {
				t.Errorf("READY of shard %d lists guild %s of shard %d", shard, id, got)
			}
			seen[g["id"].(string)]++
		}
	}
	if len(seen) != len(gs) {
		t.Errorf("READYs list %d guilds, want %d", len(seen), len(gs))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("guild %s listed by %d shards", id, n)
		}
	}
}

// TestRoutedToTheGuildsShard: a message reaches only the session of its
// guild's shard; a DM only shard 0; GUILD_CREATE carries the guild's channels.
func TestRoutedToTheGuildsShard(t *testing.T) {
	const n = 3
	s := newTestServer(t, Config{Shards: n, MaxConcurrency: n})
	gs := s.AddGuilds(30, func(i int) string { return fmt.Sprintf("g%d", i) }, "a", "b")
	u := s.AddUser(User{Username: "alice"})
	dm := s.AddDM(u.ID)
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i] = dial(t, s, "", "")
		r := shardLogin(clients[i], s, allIntents, i, n)
		for range r.Guilds {
			p := clients[i].expect(opDispatch, "GUILD_CREATE")
			var g struct {
				ID       ID `json:"id"`
				Channels []struct {
					Name string `json:"name"`
				} `json:"channels"`
			}
			if err := json.Unmarshal(p.D, &g); err != nil {
				t.Fatal(err)
			}
			if ShardOf(g.ID, n) != i || len(g.Channels) != 2 || g.Channels[0].Name != "a" {
				t.Fatalf("shard %d: GUILD_CREATE %s", i, p.D)
			}
		}
	}
	for _, g := range gs[:9] {
		ch := s.ChannelsOf(g.ID)[1]
		post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "in " + g.Name})
		want := ShardOf(g.ID, n)
		m := clients[want].messages(1)[0]
		if m["content"] != "in "+g.Name {
			t.Fatalf("shard %d got %v, want the message of %s", want, m["content"], g.Name)
		}
	}
	post(t, s, MessageSpec{ChannelID: dm.ID, AuthorID: u.ID, Content: "dm"})
	if m := clients[0].messages(1)[0]; m["content"] != "dm" {
		t.Fatalf("shard 0 got %v, want the DM", m["content"])
	}
	for i := 1; i < n; i++ {
		clients[i].expectSilence(200 * time.Millisecond)
	}
}

// TestIdentifyPacingRecorded: a second IDENTIFY in one bucket within the
// interval gets op 9 false and is recorded; another bucket is free.
func TestIdentifyPacingRecorded(t *testing.T) {
	s := newTestServer(t, Config{Shards: 4, MaxConcurrency: 2, IdentifyInterval: time.Hour})
	a := dial(t, s, "", "")
	shardLogin(a, s, allIntents, 0, 4)
	b := dial(t, s, "", "")
	shardLogin(b, s, allIntents, 1, 4)
	if err := s.StartReport().Err(); err != nil {
		t.Fatalf("two buckets, one IDENTIFY each: %v", err)
	}
	c := dial(t, s, "", "")
	c.hello()
	c.send(opIdentify, map[string]any{"token": s.Token(), "intents": allIntents,
		"properties": map[string]string{"os": "x", "browser": "x", "device": "x"}, "shard": []int{2, 4}})
	if p := c.expect(opInvalidSession, ""); string(p.D) != "false" {
		t.Errorf("op 9 d: got %s, want false", p.D)
	}
	r := s.StartReport()
	if r.TooSoon != 1 || len(r.Identifies) != 3 || r.SessionStarts != 2 {
		t.Fatalf("report: too soon %d, %d identifies, %d starts; want 1, 3, 2", r.TooSoon, len(r.Identifies), r.SessionStarts)
	}
	last := r.Identifies[2]
	if last.Outcome != IdentifyTooSoon || last.Shard != 2 || last.Bucket != 0 || last.ShardCount != 4 {
		t.Errorf("last identify: %+v", last)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "bucket 0") {
		t.Errorf("Err: %v, want the pacing broken in bucket 0", err)
	}
}

// TestSessionBudgetExceeded: an IDENTIFY beyond the daily budget gets op 9
// false; every live session is terminated (4004) and the token reset.
func TestSessionBudgetExceeded(t *testing.T) {
	s := newTestServer(t, Config{SessionStartLimit: 1, Shards: 2, MaxConcurrency: 2})
	old := s.Token()
	a := dial(t, s, "", "")
	shardLogin(a, s, allIntents, 0, 2)
	b := dial(t, s, "", "")
	b.hello()
	b.send(opIdentify, map[string]any{"token": old, "intents": allIntents,
		"properties": map[string]string{"os": "x", "browser": "x", "device": "x"}, "shard": []int{1, 2}})
	if p := b.expect(opInvalidSession, ""); string(p.D) != "false" {
		t.Errorf("op 9 d: got %s, want false", p.D)
	}
	a.expectClose(CloseAuthenticationFailed)
	if s.Token() == old {
		t.Fatal("the token was not reset")
	}
	req, _ := http.NewRequest("GET", s.APIURL()+"/users/@me", nil)
	req.Header.Set("Authorization", "Bot "+old)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("REST with the old token: %d, want 401", resp.StatusCode)
	}
	r := s.StartReport()
	if r.OverBudget != 1 || r.TokenResets != 1 {
		t.Errorf("report: over budget %d, token resets %d; want 1 and 1", r.OverBudget, r.TokenResets)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "budget") {
		t.Errorf("Err: %v", err)
	}
	if st := s.Stats(); st.OpenConnections > 1 {
		// b stays open (it may identify with the new token once the budget resets).
		t.Logf("open connections: %d", st.OpenConnections)
	}
}

// TestDoubleHold: two connections identifying the same shard are both
// served, as Discord does, and the double hold is recorded; a RESUME that
// moves a session is not a double hold.
func TestDoubleHold(t *testing.T) {
	s := newTestServer(t, Config{Shards: 2, MaxConcurrency: 2})
	g := s.AddGuilds(4, nil, "general")
	a := dial(t, s, "", "")
	ra := shardLogin(a, s, allIntents, 1, 2)
	if n := s.ShardHolders(1, 2); n != 1 {
		t.Fatalf("holders of 1/2: %d, want 1", n)
	}
	// A resume that takes the session over: the old connection is closed,
	// the shard is held by one connection throughout.
	a2 := dial(t, s, "resume", "")
	a2.hello()
	a2.send(opResume, map[string]any{"token": s.Token(), "session_id": ra.SessionID, "seq": 0})
	a2.expect(opDispatch, "RESUMED")
	a.expectClose(CloseUnknownError)
	if r := s.StartReport(); r.DoubleHoldCount != 0 || r.MaxHolders != 1 {
		t.Fatalf("after a resume takeover: %d double holds, max holders %d", r.DoubleHoldCount, r.MaxHolders)
	}
	b := dial(t, s, "", "")
	shardLogin(b, s, IntentGuildMessages|IntentMessageContent, 1, 2)
	if n := s.ShardHolders(1, 2); n != 2 {
		t.Fatalf("holders of 1/2: %d, want 2", n)
	}
	r := s.StartReport()
	if r.DoubleHoldCount != 1 || r.MaxHolders != 2 || len(r.DoubleHolds) != 1 || r.DoubleHolds[0].Shard != 1 || len(r.DoubleHolds[0].Conns) != 2 {
		t.Fatalf("report: %+v", r)
	}
	if s.Stats().DoubleHolds != 1 {
		t.Errorf("Stats.DoubleHolds: %d", s.Stats().DoubleHolds)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "held by two connections") {
		t.Errorf("Err: %v", err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/_sim/starts")
	if err != nil {
		t.Fatal(err)
	}
	var served struct {
		OK              bool   `json:"ok"`
		Error           string `json:"error"`
		DoubleHoldCount int    `json:"double_hold_count"`
		MaxHolders      int    `json:"max_holders"`
		DoubleHolds     []struct {
			Shard int     `json:"shard"`
			Conns []int64 `json:"conns"`
		} `json:"double_holds"`
	}
	err = json.NewDecoder(resp.Body).Decode(&served)
	resp.Body.Close()
	if err != nil || served.OK || served.DoubleHoldCount != 1 || served.MaxHolders != 2 || len(served.DoubleHolds) != 1 ||
		served.DoubleHolds[0].Shard != 1 || !strings.Contains(served.Error, "held by two") {
		t.Errorf("GET /_sim/starts: %+v %v", served, err)
	}
	// Both get the shard's events.
	var target Guild
	for _, gu := range g {
		if ShardOf(gu.ID, 2) == 1 {
			target = gu
		}
	}
	if target.ID == 0 {
		t.Fatal("no guild on shard 1")
	}
	u := s.AddUser(User{Username: "u"})
	post(t, s, MessageSpec{ChannelID: s.ChannelsOf(target.ID)[0].ID, AuthorID: u.ID, Content: "twice"})
	for _, c := range []*testClient{a2, b} {
		if m := c.messages(1)[0]; m["content"] != "twice" {
			t.Errorf("got %v", m["content"])
		}
	}
	b.ws.Close()
	deadline := time.Now().Add(wait)
	for s.ShardHolders(1, 2) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.ShardHolders(1, 2); n != 1 {
		t.Errorf("holders after one connection closed: %d, want 1", n)
	}
	if h := s.HeldShards(); len(h) != 1 || h[[2]int{1, 2}] != 1 {
		t.Errorf("held shards: %v", h)
	}
}

// TestLargeBotShardMultiple: a shard count that is not a multiple of the
// large-bot shard number is closed with 4010.
func TestLargeBotShardMultiple(t *testing.T) {
	s := newTestServer(t, Config{Shards: 16, MaxConcurrency: 16, LargeBotShardMultiple: 16})
	c := dial(t, s, "", "")
	c.hello()
	c.send(opIdentify, map[string]any{"token": s.Token(), "intents": allIntents,
		"properties": map[string]string{"os": "x", "browser": "x", "device": "x"}, "shard": []int{0, 12}})
	c.expectClose(CloseInvalidShard)
	ok := dial(t, s, "", "")
	shardLogin(ok, s, allIntents, 31, 32)
	if r := s.StartReport(); len(r.Identifies) != 2 || r.Identifies[0].Outcome != IdentifyInvalidShard || r.Identifies[1].Outcome != IdentifyReady {
		t.Errorf("identifies: %+v", r.Identifies)
	}
}

// scaleClient is a lean gateway client for the scale test: it reads the
// dispatch header of each frame by its prefix (the Server writes
// {"t":"…","s":N,"op":0,"d":…}) and decodes in full only what the test
// checks, so that 100,000 GUILD_CREATEs cost little to read.
type scaleClient struct {
	ws *websocket.Conn
}

func dialScale(t *testing.T, s *Server) *scaleClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(s.GatewayURL()+"/?v=10&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &scaleClient{ws: ws}
}

// next returns the next frame's event type (empty for a non-dispatch) and
// its raw bytes.
func (c *scaleClient) next(timeout time.Duration) (string, []byte, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return "", nil, err
	}
	rest, ok := bytes.CutPrefix(b, []byte(`{"t":"`))
	if !ok {
		return "", b, nil
	}
	t, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(t), b, nil
}

// frameGuildID returns the guild id a GUILD_CREATE frame begins its d with.
func frameGuildID(b []byte) (ID, bool) {
	_, d, ok := bytes.Cut(b, []byte(`"d":{"id":"`))
	if !ok {
		return 0, false
	}
	idText, _, ok := bytes.Cut(d, []byte(`"`))
	if !ok {
		return 0, false
	}
	id, err := ParseID(string(idText))
	return id, err == nil
}

// TestScale64Shards100kGuilds: 64 shards and 100,000 guilds, started by
// bucket as Discord asks (max_concurrency 16): every guild in exactly one
// READY and one GUILD_CREATE, on its shard; messages to random guilds each
// reach exactly the session of their shard; the pacing never broken and no
// shard held twice.
func TestScale64Shards100kGuilds(t *testing.T) {
	const (
		shards   = 64
		guilds   = 100_000
		maxConc  = 16
		interval = 25 * time.Millisecond
		messages = 3000
	)
	s := newTestServer(t, Config{Shards: shards, MaxConcurrency: maxConc, IdentifyInterval: interval,
		HeartbeatInterval: time.Minute})
	gs := s.AddGuilds(guilds, nil, "general")
	u := s.AddUser(User{Username: "alice"})

	type shardResult struct {
		ready, creates int
		wrong          []string
		msgs           map[string]bool
	}
	results := make([]shardResult, shards)
	clients := make([]*scaleClient, shards)
	for i := range clients {
		clients[i] = dialScale(t, s)
		if typ, b, err := clients[i].next(wait); err != nil || typ != "" || !bytes.Contains(b, []byte(`"op":10`)) {
			t.Fatalf("shard %d: want HELLO, got %s %v", i, b, err)
		}
	}
	identify := func(i int) {
		b := mustJSON(map[string]any{"op": opIdentify, "d": map[string]any{"token": s.Token(),
			"intents":    IntentGuilds | IntentGuildMessages,
			"properties": map[string]string{"os": "x", "browser": "x", "device": "x"}, "shard": []int{i, shards}}})
		if err := clients[i].ws.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
	}
	// Start by bucket, in order: a round of max_concurrency IDENTIFYs,
	// then the next round after the interval, with a wide margin: the
	// Server measures when it reads each IDENTIFY, which a loaded machine
	// delays.
	for round := 0; round < shards/maxConc; round++ {
		if round > 0 {
			time.Sleep(10 * interval)
		}
		for b := range maxConc {
			identify(round*maxConc + b)
		}
	}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[i]
			res.msgs = map[string]bool{}
			typ, b, err := c.next(time.Minute)
			if err != nil || typ != "READY" {
				res.wrong = append(res.wrong, fmt.Sprintf("first payload %.200s %v", b, err))
				return
			}
			var p payload
			var r readyData
			if err := json.Unmarshal(b, &p); err != nil {
				res.wrong = append(res.wrong, err.Error())
				return
			}
			_ = json.Unmarshal(p.D, &r)
			res.ready = len(r.Guilds)
			for _, g := range r.Guilds {
				id, _ := ParseID(g["id"].(string))
				if ShardOf(id, shards) != i {
					res.wrong = append(res.wrong, "READY lists "+id.String())
				}
			}
			for res.creates < res.ready {
				typ, b, err := c.next(time.Minute)
				if err != nil {
					res.wrong = append(res.wrong, err.Error())
					return
				}
				if typ != "GUILD_CREATE" {
					continue
				}
				id, ok := frameGuildID(b)
				if !ok || ShardOf(id, shards) != i {
					res.wrong = append(res.wrong, fmt.Sprintf("GUILD_CREATE %.200s", b))
				}
				res.creates++
			}
		}()
	}
	wg.Wait()
	total := 0
	for i, r := range results {
		if len(r.wrong) > 0 {
			t.Fatalf("shard %d: %v", i, r.wrong[:min(3, len(r.wrong))])
		}
		if r.ready != r.creates {
			t.Errorf("shard %d: READY lists %d guilds, %d GUILD_CREATE", i, r.ready, r.creates)
		}
		if r.ready == 0 || r.ready > 2500 {
			t.Errorf("shard %d holds %d guilds", i, r.ready)
		}
		total += r.ready
	}
	if total != guilds {
		t.Fatalf("READYs list %d guilds in all, want %d", total, guilds)
	}

	rng := rand.New(rand.NewSource(1))
	want := make([]map[string]bool, shards)
	for i := range want {
		want[i] = map[string]bool{}
	}
	for range messages {
		g := gs[rng.Intn(len(gs))]
		m := post(t, s, MessageSpec{ChannelID: s.ChannelsOf(g.ID)[0].ID, AuthorID: u.ID, Content: "x"})
		want[ShardOf(g.ID, shards)][m.ID.String()] = true
	}
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[i]
			for len(res.msgs) < len(want[i]) {
				typ, b, err := c.next(time.Minute)
				if err != nil {
					res.wrong = append(res.wrong, fmt.Sprintf("after %d of %d messages: %v", len(res.msgs), len(want[i]), err))
					return
				}
				if typ != "MESSAGE_CREATE" {
					continue
				}
				var m struct {
					D struct {
						ID      string `json:"id"`
						GuildID ID     `json:"guild_id"`
					} `json:"d"`
				}
				_ = json.Unmarshal(b, &m)
				if ShardOf(m.D.GuildID, shards) != i || res.msgs[m.D.ID] {
					res.wrong = append(res.wrong, "message "+m.D.ID+" of guild "+m.D.GuildID.String())
				}
				res.msgs[m.D.ID] = true
			}
			// Nothing more: no message of another shard, none twice.
			if typ, b, err := c.next(50 * time.Millisecond); err == nil && typ != "" {
				res.wrong = append(res.wrong, fmt.Sprintf("extra dispatch %.200s", b))
			}
		}()
	}
	wg.Wait()
	got := 0
	for i, r := range results {
		if len(r.wrong) > 0 {
			t.Fatalf("shard %d: %v", i, r.wrong[:min(3, len(r.wrong))])
		}
		for id := range want[i] {
			if !r.msgs[id] {
				t.Fatalf("shard %d missed message %s", i, id)
			}
		}
		got += len(r.msgs)
	}
	if got != messages {
		t.Fatalf("%d messages delivered, want %d (each exactly once)", got, messages)
	}
	r := s.StartReport()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.MaxHolders != 1 || r.SessionStarts != shards || len(r.Identifies) != shards {
		t.Errorf("max holders %d, starts %d, identifies %d; want 1, %d, %d", r.MaxHolders, r.SessionStarts, len(r.Identifies), shards, shards)
	}
	// The pacing, checked from the record: per bucket, IDENTIFYs at least
	// an interval apart.
	// (The record is in the order the Server handled them, which may
	// differ from the order they arrived.)
	sort.Slice(r.Identifies, func(i, j int) bool { return r.Identifies[i].At.Before(r.Identifies[j].At) })
	last := map[int]time.Time{}
	for _, id := range r.Identifies {
		if at, ok := last[id.Bucket]; ok && id.At.Sub(at) < interval {
			t.Errorf("bucket %d: IDENTIFYs %s apart", id.Bucket, id.At.Sub(at))
		}
		last[id.Bucket] = id.At
	}
}

// TestGuildCreateFastPathSameObject: the GUILD_CREATE written directly is
// the object guildCreateLocked describes, for odd names and a hidden channel.
func TestGuildCreateFastPathSameObject(t *testing.T) {
	s := New(Config{})
	g := s.AddGuild("Café \"☕\" \\ <b>\u2028")
	s.AddChannel(g.ID, "général")
	s.AddChannelSpec(Channel{GuildID: g.ID, Name: "secret", Type: ChannelGuildText, NoAccess: true})
	ch := s.ChannelsOf(g.ID)[0]
	u := s.AddUser(User{Username: "u"})
	if _, err := s.Post(MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "x"}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	gp := s.guildByID[g.ID]
	slow, _ := json.Marshal(s.guildCreateLocked(gp))
	bot, _ := json.Marshal(s.botUserObject())
	fast := s.appendGuildCreateLocked(nil, gp, bot)
	s.mu.Unlock()
	var a, b any
	if err := json.Unmarshal(slow, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fast, &b); err != nil {
		t.Fatalf("fast GUILD_CREATE is not JSON: %v\n%s", err, fast)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("GUILD_CREATE differs:\nslow %s\nfast %s", slow, fast)
	}
}

// TestGenerateSpreadsGuilds: the generated world's guilds land on every
// shard (one per millisecond of creation).
func TestGenerateSpreadsGuilds(t *testing.T) {
	s := New(Config{Shards: 4})
	if err := s.Generate(t.Context(), Traffic{Guilds: 8, Count: 1, Rate: 1000, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	per := map[int]int{}
	for _, g := range s.Guilds() {
		per[ShardOf(g.ID, 4)]++
	}
	if len(per) != 4 || per[0] != 2 || per[3] != 2 {
		t.Errorf("guilds per shard: %v, want 2 on each of 4", per)
	}
	if n := len(s.ChannelsOf(s.Guilds()[0].ID)); n != 3 {
		t.Errorf("%d channels in the first guild, want 3", n)
	}
}

// TestIdentifyLimiterOutOfOrder: IDENTIFYs are judged by arrival time,
// which may reach the limiter out of order.
func TestIdentifyLimiterOutOfOrder(t *testing.T) {
	var l identifyLimiter
	l.init(Config{IdentifyInterval: 500 * time.Millisecond, MaxConcurrency: 2, SessionStartLimit: 100})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		shard int
		at    time.Duration
		want  int
	}{
		{0, time.Second, limitOK},
		{2, 0, limitOK},                         // bucket 0, a second before: judged later, still 1 s apart
		{0, 800 * time.Millisecond, limitPaced}, // 200 ms before the first
		{1, 800 * time.Millisecond, limitOK},    // bucket 1
		{4, 1600 * time.Millisecond, limitOK},
		{6, 2000 * time.Millisecond, limitPaced},
	}
	for i, s := range steps {
		if got := l.allow(s.shard, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d (shard %d at %s): %d, want %d", i, s.shard, s.at, got, s.want)
		}
	}
	if l.used != 4 {
		t.Errorf("%d starts counted, want 4", l.used)
	}
}
