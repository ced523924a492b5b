package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/metrics"
)

// fakeClock is a manual clock whose sleeps advance it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestLimiterBucketAndGlobal(t *testing.T) {
	clk := &fakeClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLimiter(3, clk.Now)
	reg := metrics.NewRegistry()
	l.m = newRESTMetrics(reg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset-After", "0.400")
	// The first request on a bucket goes at once; the answer says none
	// remain for 400 ms: the next one waits that long (plus the margin).
	if err := l.wait(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	l.update("a", h, 0, false)
	start := time.Now()
	go func() {
		time.Sleep(50 * time.Millisecond)
		clk.advance(500 * time.Millisecond)
	}()
	if err := l.wait(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("second request on an exhausted bucket went after %v, want about 425ms", waited)
	}
	if v, _ := reg.Sum("cordstream_discord_rest_ratelimit_waits_total"); v < 1 {
		t.Errorf("bucket wait not counted")
	}

	// Global: 3 per second; the fourth waits for the window.
	l2 := newLimiter(3, clk.Now)
	for i := range 3 {
		if err := l2.wait(ctx, fmt.Sprint("b", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	go func() { got <- l2.wait(ctx, "b9") }()
	select {
	case err := <-got:
		t.Fatalf("fourth request in one second went at once (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	clk.advance(time.Second + rateMargin)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("fourth request still waiting after the window passed")
	}

	// A global 429 stops every bucket.
	l3 := newLimiter(0, clk.Now)
	l3.update("x", nil, 2*time.Second, true)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := l3.wait(ctx2, "y"); err == nil {
		t.Error("request on another bucket went during a global 429 wait")
	}
}

// TestRESTHonoursRateLimits: a server that answers 429 whenever a client
// exceeds its announced limits never has to, and every page comes back.
func TestRESTHonoursRateLimits(t *testing.T) {
	var mu sync.Mutex
	var starts []time.Time
	var over atomic.Int32
	window := map[string][]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		starts = append(starts, now)
		ch := strings.Split(r.URL.Path, "/")[2]
		// 2 requests per 300 ms per channel, like a Discord bucket.
		ws := window[ch]
		if len(ws) == 0 || now.Sub(ws[0]) >= 300*time.Millisecond {
			ws = nil
		}
		if len(ws) >= 2 {
			over.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"message":"You are being rate limited.","retry_after":%.3f,"global":false}`, (300*time.Millisecond - now.Sub(ws[0])).Seconds())
			return
		}
		ws = append(ws, now)
		window[ch] = ws
		w.Header().Set("X-RateLimit-Limit", "2")
		w.Header().Set("X-RateLimit-Remaining", fmt.Sprint(2-len(ws)))
		w.Header().Set("X-RateLimit-Reset-After", fmt.Sprintf("%.3f", (300*time.Millisecond-now.Sub(ws[0])).Seconds()))
		w.Header().Set("X-RateLimit-Bucket", "abc")
		fmt.Fprint(w, `[]`)
	}))
	defer srv.Close()
	r, _ := NewREST(srv.URL, testToken, nil, "test", discardLogger())
	reg := metrics.NewRegistry()
	r.SetMetrics(reg)
	var wg sync.WaitGroup
	for c := range 3 {
		wg.Go(func() {
			for range 5 {
				if _, err := r.ChannelMessages(context.Background(), fmt.Sprint(1000+c), "1", 100); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := over.Load(); n != 0 {
		t.Errorf("the server had to answer 429 %d times", n)
	}
	if len(starts) != 15 {
		t.Errorf("%d requests, want 15", len(starts))
	}
	if v, _ := reg.Sum("cordstream_discord_rest_ratelimit_waits_total"); v < 3 {
		t.Errorf("rate-limit waits counted = %v, want several", v)
	}
	if v, _ := reg.Sum("cordstream_discord_rest_requests_total"); v != 15 {
		t.Errorf("requests counted = %v, want 15", v)
	}
}

func TestChannelMessagesPagesAgainstSimulator(t *testing.T) {
	srv := newSim(t, nil)
	w := newWorld(srv)
	hidden := srv.AddChannelSpec(sim.Channel{GuildID: w.guild.ID, Name: "secret", NoAccess: true})
	ids := post(t, srv, w, 250, "m")
	r, _ := NewREST(srv.APIURL(), srv.Token(), nil, "test", discardLogger())
	reg := metrics.NewRegistry()
	r.SetMetrics(reg)
	var got []string
	after := "0"
	for {
		page, err := r.ChannelMessages(context.Background(), w.channel.ID.String(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page {
			ev := MapRESTMessage(raw, nil, "")
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			got = append(got, ev.Message.MessageID)
			after = ev.Message.MessageID
		}
		if len(page) < 100 {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("paged %d ids, want the %d posted in order", len(got), len(ids))
	}
	if st := srv.Stats(); st.RESTRateLimited != 0 {
		t.Errorf("the simulator answered 429 %d times", st.RESTRateLimited)
	}
	_, err := r.ChannelMessages(context.Background(), hidden.ID.String(), "0", 100)
	if !IsMissingAccess(err) {
		t.Errorf("hidden channel: err = %v, want a 403", err)
	}
	_, err = r.ChannelMessages(context.Background(), "123456789012345678", "0", 100)
	if !IsNotFound(err) {
		t.Errorf("unknown channel: err = %v, want a 404", err)
	}
	if _, err := r.ChannelMessages(context.Background(), "general", "0", 100); err == nil {
		t.Error("a channel name was accepted as an id")
	}
}

// TestChannelMessagesWithinSimulatorLimits: 30 requests on one channel
// against the simulator's 5 per second never get a 429.
func TestChannelMessagesWithinSimulatorLimits(t *testing.T) {
	srv := newSim(t, func(c *sim.Config) { c.RESTRouteLimit = 5; c.RESTRouteWindow = 200 * time.Millisecond })
	w := newWorld(srv)
	r, _ := NewREST(srv.APIURL(), srv.Token(), nil, "test", discardLogger())
	for range 30 {
		if _, err := r.ChannelMessages(context.Background(), w.channel.ID.String(), "0", 1); err != nil {
			t.Fatal(err)
		}
	}
	if st := srv.Stats(); st.RESTRateLimited != 0 {
		t.Errorf("the simulator answered 429 %d times", st.RESTRateLimited)
	}
}

func TestParseGuildCreatePermissions(t *testing.T) {
	const self = "900"
	const guild = "100"
	everyone := func(perm uint64) string {
		return fmt.Sprintf(`{"id":%q,"permissions":"%d"}`, guild, perm)
	}
	view, hist := PermViewChannel, PermReadMessageHistory
	tests := []struct {
		name     string
		owner    string
		roles    string // JSON role objects
		myRoles  string
		member   bool
		channel  string // overwrites JSON
		typ      int
		want     int
		included bool
	}{
		{"everyone can read", "1", everyone(view | hist), `[]`, true, `[]`, 0, ReadOK, true},
		{"no history", "1", everyone(view), `[]`, true, `[]`, 0, ReadNoHistory, true},
		{"everyone denied view", "1", everyone(view | hist), `[]`, true, `[{"id":"100","type":0,"allow":"0","deny":"1024"}]`, 0, ReadNoView, true},
		{"role overwrite allows back", "1", everyone(view|hist) + `,{"id":"7","permissions":"0"}`, `["7"]`, true,
			`[{"id":"100","type":0,"allow":"0","deny":"1024"},{"id":"7","type":0,"allow":"1024","deny":"0"}]`, 0, ReadOK, true},
		{"member overwrite denies history", "1", everyone(view | hist), `[]`, true, `[{"id":"900","type":1,"allow":"0","deny":"65536"}]`, 5, ReadNoHistory, true},
		{"administrator role", "1", everyone(0) + `,{"id":"7","permissions":"8"}`, `["7"]`, true, `[{"id":"100","type":0,"allow":"0","deny":"1024"}]`, 0, ReadOK, true},
		{"owner", self, everyone(0), `[]`, false, `[]`, 2, ReadOK, true},
		{"own member missing", "1", everyone(view | hist), `[]`, false, `[]`, 0, ReadUnknown, true},
		{"category has no messages", "1", everyone(view | hist), `[]`, true, `[]`, 4, 0, false},
		{"forum has no messages", "1", everyone(view | hist), `[]`, true, `[]`, 15, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			members := `[]`
			if tt.member {
				members = fmt.Sprintf(`[{"user":{"id":%q,"username":"bot"},"roles":%s}]`, self, tt.myRoles)
			}
			d := fmt.Sprintf(`{"id":%q,"name":"g","owner_id":%q,"roles":[%s],"members":%s,
				"channels":[{"id":"300","type":%d,"name":"c","last_message_id":"555","permission_overwrites":%s}],
				"threads":[{"id":"301","type":11,"name":"t","parent_id":"300","last_message_id":null}]}`,
				guild, tt.owner, tt.roles, members, tt.typ, tt.channel)
			info, ok := parseGuildCreate(json.RawMessage(d), self)
			if !ok {
				t.Fatal("not parsed")
			}
			var ch *ChannelInfo
			for i := range info.Channels {
				if info.Channels[i].ID == "300" {
					ch = &info.Channels[i]
				}
			}
			if !tt.included {
				if ch != nil {
					t.Errorf("channel of type %d listed", tt.typ)
				}
				return
			}
			if ch == nil {
				t.Fatal("channel missing")
			}
			if ch.Read != tt.want || ch.LastMessageID != "555" {
				t.Errorf("channel = %+v, want Read %d and last message 555", *ch, tt.want)
			}
			th := info.Channels[len(info.Channels)-1]
			if th.ID != "301" || th.ParentID != "300" || th.Read != tt.want || th.LastMessageID != "" {
				t.Errorf("thread = %+v, want its parent's readability %d", th, tt.want)
			}
		})
	}
	if _, ok := parseGuildCreate(json.RawMessage(`{"id":"1","unavailable":true}`), self); ok {
		t.Error("an unavailable guild was parsed")
	}
	if _, ok := parseGuildCreate(json.RawMessage(`[1,2]`), self); ok {
		t.Error("garbage was parsed")
	}
}

// TestGatewaySessionHooks: OnReady fires for each new session (not for a
// resume), OnGuild for each GUILD_CREATE with its channels.
func TestGatewaySessionHooks(t *testing.T) {
	srv := newSim(t, nil)
	w := newWorld(srv)
	var mu sync.Mutex
	var readies []ReadyInfo
	var guilds []GuildInfo
	c := newCollector()
	rg := startGateway(t, srv, c.Handle, func(cfg *Config) {
		cfg.OnReady = func(r ReadyInfo) { mu.Lock(); readies = append(readies, r); mu.Unlock() }
		cfg.OnGuild = func(g GuildInfo) { mu.Lock(); guilds = append(guilds, g); mu.Unlock() }
	})
	rg.waitReady(t)
	waitFor(t, 5*time.Second, "GUILD_CREATE", func() bool { mu.Lock(); defer mu.Unlock(); return len(guilds) == 1 })
	srv.DropConnections() // resumed: no new session
	ids := post(t, srv, w, 1, "x")
	c.waitIDs(t, 5*time.Second, ids...)
	srv.InvalidateSessions(false) // a new session
	waitFor(t, 5*time.Second, "second READY", func() bool { mu.Lock(); defer mu.Unlock(); return len(readies) == 2 })
	waitFor(t, 5*time.Second, "second GUILD_CREATE", func() bool { mu.Lock(); defer mu.Unlock(); return len(guilds) == 2 })
	mu.Lock()
	defer mu.Unlock()
	r := readies[0]
	if r.SelfID != srv.Bot().ID.String() || r.ShardCount != 1 || len(r.GuildIDs) != 1 || r.GuildIDs[0] != w.guild.ID.String() {
		t.Errorf("ReadyInfo = %+v", r)
	}
	g := guilds[0]
	if g.ID != w.guild.ID.String() || !g.InReady || len(g.Channels) != 1 || g.Channels[0].ID != w.channel.ID.String() || g.Channels[0].Read != ReadOK {
		t.Errorf("GuildInfo = %+v", g)
	}
}

func TestShardOf(t *testing.T) {
	tests := []struct {
		guild  string
		shards int
		want   int
	}{
		{"", 4, 0},
		{"81384788765712384", 1, 0},
		{"81384788765712384", 4, int((uint64(81384788765712384) >> 22) % 4)},
		{"not-an-id", 4, 0},
	}
	for _, tt := range tests {
		if got := ShardOf(tt.guild, tt.shards); got != tt.want {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", tt.guild, tt.shards, got, tt.want)
		}
	}
}
