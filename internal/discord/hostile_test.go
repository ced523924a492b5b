package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord/sim"
)

// TestHostileShardCount: an absurd shard count from /gateway/bot is
// refused at once, before anything is allocated per shard.
func TestHostileShardCount(t *testing.T) {
	for _, n := range []int{1_000_000_000, MaxShards + 1} {
		srv := newSim(t, nil)
		srv.SetHostile(sim.Hostile{Shards: n})
		g, err := New(Config{Token: srv.Token(), APIURL: srv.APIURL(), Handler: newCollector().Handle})
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		err = g.Run(context.Background())
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "shards") {
			t.Errorf("%d shards: Run = %v, want a refusal naming the shard count", n, err)
		}
		if took > 2*time.Second {
			t.Errorf("%d shards: refused after %s", n, took)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
			t.Errorf("%d shards: %d MiB allocated before refusing", n, grew>>20)
		}
		if st := srv.Stats(); st.Connections != 0 {
			t.Errorf("%d shards: %d Gateway connections opened", n, st.Connections)
		}
	}
	if _, err := New(Config{Token: testToken, Handler: newCollector().Handle, Shards: MaxShards + 1}); err == nil {
		t.Errorf("New with %d shards: no error", MaxShards+1)
	}
}

// TestHostileRetryAfter: whatever retry_after a 429 carries, the client
// never sends requests in a storm: an absurd wait fails the call at once,
// a negative or zero one counts as none (1 s), and the waits grow with each
// 429 in a row.
func TestHostileRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		retryAfter string
		fails      bool // at once, without waiting
	}{
		{"1e300", true},
		{"1e400", true},
		{"86400", true},
		{"NaN", true}, // not JSON: the Retry-After header says NaN
		{"-5", false},
		{"0", false},
		{"0.000001", false},
	} {
		t.Run(tc.retryAfter, func(t *testing.T) {
			srv := newSim(t, nil)
			srv.SetHostile(sim.Hostile{RetryAfter: tc.retryAfter})
			r, err := NewREST(srv.APIURL(), srv.Token(), nil, "test", discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			_, err = r.GatewayBot(ctx)
			took := time.Since(start)
			n := srv.Stats().RESTRequests
			if err == nil {
				t.Fatal("GatewayBot succeeded against 429s")
			}
			if tc.fails && (took > time.Second || n != 1 || !strings.Contains(err.Error(), "no real rate limit")) {
				t.Errorf("after %s and %d requests: %v; want one request and a refusal of the wait", took, n, err)
			}
			if !tc.fails && (n > 5 || !errors.Is(err, context.DeadlineExceeded)) {
				t.Errorf("%d requests in 3 s (%v); want at most 5, still waiting", n, err)
			}
		})
	}
}

// TestRateLimitHeadersBounded: absurd X-RateLimit-Reset-After values are
// ignored, not turned into negative or endless waits.
func TestRateLimitHeadersBounded(t *testing.T) {
	for _, v := range []string{"1e300", "NaN", "-1", "Inf"} {
		l := newLimiter(0, time.Now)
		h := map[string][]string{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset-After": {v}}
		l.update("k", h, 0, false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		err := l.wait(ctx, "k")
		cancel()
		if err != nil || time.Since(start) > 100*time.Millisecond {
			t.Errorf("Reset-After %s: wait = %v after %s; want no wait", v, err, time.Since(start))
		}
	}
}

func TestSecondsBounds(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want time.Duration
		ok   bool
	}{
		{1.5, 1500 * time.Millisecond, true}, {0, 0, true}, {-3, 0, true}, {3600, time.Hour, true},
		{3601, 0, false}, {1e300, 0, false}, {math.NaN(), 0, false}, {math.Inf(1), 0, false}, {math.Inf(-1), 0, false},
	} {
		if got, ok := seconds(tc.v); got != tc.want || ok != tc.ok {
			t.Errorf("seconds(%v) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		ms   float64
		want time.Duration
	}{
		{41250, 41250 * time.Millisecond}, {1e300, MaxHeartbeat}, {math.NaN(), MaxHeartbeat}, {0.001, MinHeartbeat}, {1, MinHeartbeat},
	} {
		if got := heartbeatInterval(tc.ms); got != tc.want {
			t.Errorf("heartbeatInterval(%v) = %v, want %v", tc.ms, got, tc.want)
		}
	}
}

// TestURLsMustBeSecure: the token travels only over https and wss, or in
// clear to a loopback address (the simulator).
func TestURLsMustBeSecure(t *testing.T) {
	for _, u := range []string{"http://discord.example/api/v10", "http://10.0.0.1:8080/api/v10", "ftp://x", "http://", "discord.com/api"} {
		if _, err := NewREST(u, testToken, nil, "", nil); err == nil {
			t.Errorf("NewREST(%q) accepted", u)
		}
	}
	for _, u := range []string{"https://discord.com/api/v10", "http://127.0.0.1:8080/api/v10", "http://localhost:1/api/v10", "http://[::1]:8080/api/v10"} {
		if _, err := NewREST(u, testToken, nil, "", nil); err != nil {
			t.Errorf("NewREST(%q): %v", u, err)
		}
	}
	srv := newSim(t, nil)
	for _, gw := range []string{"ws://gateway.example.com", "http://127.0.0.1:1", "wss://"} {
		srv.SetHostile(sim.Hostile{GatewayURL: gw})
		r, _ := NewREST(srv.APIURL(), srv.Token(), nil, "test", discardLogger())
		if _, err := r.GatewayBot(context.Background()); err == nil {
			t.Errorf("Gateway URL %q accepted", gw)
		} else if strings.Contains(err.Error(), srv.Token()) {
			t.Errorf("the error carries the token: %v", err)
		}
	}
}

func TestCheckResumeURL(t *testing.T) {
	for _, tc := range []struct {
		resume, gateway string
		ok              bool
	}{
		{"wss://gateway-us-east1-b.discord.gg", "wss://gateway.discord.gg", true},
		{"wss://gateway.discord.gg/?v=10", "wss://gateway.discord.gg", true},
		{"wss://discord.gg", "wss://gateway.discord.gg", true},
		{"ws://127.0.0.1:9000/resume", "ws://127.0.0.1:9000", true},
		{"ws://localhost:9000/resume", "ws://127.0.0.1:9000", true},
		{"ws://gateway-us-east1-b.discord.gg", "wss://gateway.discord.gg", false}, // clear text
		{"wss://resume.example.com", "wss://gateway.discord.gg", false},           // another domain
		{"wss://evil.gg", "wss://gateway.discord.gg", false},
		{"wss://x.discord.gg.evil.com", "wss://gateway.discord.gg", false},
		{"wss://203.0.113.7", "wss://198.51.100.1", false},
		{"ws://198.51.100.7:80", "ws://127.0.0.1:9000", false},
		{"wss://127.0.0.1:9000", "wss://gateway.discord.gg", false},
		{"not a url", "wss://gateway.discord.gg", false},
	} {
		if err := checkResumeURL(tc.resume, tc.gateway); (err == nil) != tc.ok {
			t.Errorf("checkResumeURL(%q, %q) = %v, want ok=%v", tc.resume, tc.gateway, err, tc.ok)
		}
	}
}

// TestHostileResumeURL: a resume_gateway_url the bot must not trust (clear
// text to another host, or another domain) is not used: the session
// resumes on the Gateway URL, and nothing is lost.
func TestHostileResumeURL(t *testing.T) {
	for _, resume := range []string{"ws://resume.example.com:80/", "wss://resume.example.com/"} {
		t.Run(resume, func(t *testing.T) {
			srv := newSim(t, nil)
			srv.SetHostile(sim.Hostile{ResumeURL: resume})
			w := newWorld(srv)
			col := newCollector()
			rg := startGateway(t, srv, col.Handle, nil)
			rg.waitReady(t)
			ids := post(t, srv, w, 5, "before")
			col.waitIDs(t, 5*time.Second, ids...)
			srv.DropConnections()
			ids = append(ids, post(t, srv, w, 5, "after")...)
			col.waitIDs(t, 10*time.Second, ids...)
			st := srv.Stats()
			if st.Resumes < 1 || st.ResumesOnMainURL != st.Resumes || st.Identifies != 1 {
				t.Errorf("resumes %d (%d on the Gateway URL), identifies %d; want every resume on the Gateway URL, one identify",
					st.Resumes, st.ResumesOnMainURL, st.Identifies)
			}
			if logs := rg.logs.String(); !strings.Contains(logs, "not using the resume_gateway_url") || strings.Contains(logs, "connect to "+resume) {
				t.Errorf("want a warning and no connection to the resume URL:\n%s", logs)
			}
		})
	}
}

// TestOversizedFrame: a frame over the read limit ends the connection (it
// is not read whole); the session resumes and every message arrives.
func TestOversizedFrame(t *testing.T) {
	srv := newSim(t, nil)
	w := newWorld(srv)
	col := newCollector()
	rg := startGateway(t, srv, col.Handle, nil)
	rg.waitReady(t)
	ids := post(t, srv, w, 5, "before")
	col.waitIDs(t, 5*time.Second, ids...)
	if n := srv.SendOversizedFrame(MaxFrameBytes + 1); n != 1 {
		t.Fatalf("oversized frame sent on %d connections", n)
	}
	ids = append(ids, post(t, srv, w, 5, "after")...)
	col.waitIDs(t, 10*time.Second, ids...)
	// The close 1009 the client sends may not reach the simulator, which
	// is still writing the frame when the connection ends.
	if st, n := srv.Stats(), rg.g.m.reconnects.With("frame_too_large").Value(); st.Resumes < 1 || n != 1 {
		t.Errorf("resumes %d, reconnects for a frame too large %v; want one, and a resume", st.Resumes, n)
	}
	if !strings.Contains(rg.logs.String(), "larger than the read limit") {
		t.Errorf("no log of the oversized frame:\n%s", rg.logs)
	}
	if got := len(col.snapshot()); got != len(ids) {
		t.Errorf("%d events, want %d", got, len(ids))
	}
}

// TestHostileHeartbeatInterval: an absurd heartbeat_interval is clamped:
// no heartbeat storm for a tiny one, no overflow for a huge one.
func TestHostileHeartbeatInterval(t *testing.T) {
	for _, tc := range []struct {
		interval string
		maxBeats int // in one second
	}{
		{"0.001", 15},
		{"1e300", 1},
	} {
		t.Run(tc.interval, func(t *testing.T) {
			srv := newSim(t, func(c *sim.Config) { c.HeartbeatTimeout = time.Hour })
			srv.SetHostile(sim.Hostile{HeartbeatInterval: tc.interval})
			rg := startGateway(t, srv, newCollector().Handle, nil)
			rg.waitReady(t)
			before := srv.Stats().Heartbeats
			time.Sleep(time.Second)
			if n := srv.Stats().Heartbeats - before; n > tc.maxBeats {
				t.Errorf("%d heartbeats in a second, want at most %d", n, tc.maxBeats)
			}
			if !strings.Contains(rg.logs.String(), "heartbeat_interval is out of bounds") {
				t.Errorf("no warning about the interval:\n%s", rg.logs)
			}
		})
	}
}

// TestSessionBudgetUsedUp: with Discord's daily session starts used up,
// the shard waits for the budget (reset_after, clamped to an hour) and
// asks /gateway/bot again only after that, not in a loop.
func TestSessionBudgetUsedUp(t *testing.T) {
	srv := newSim(t, func(c *sim.Config) { c.SessionStartLimit = 1 })
	rg := startGateway(t, srv, newCollector().Handle, nil)
	rg.waitReady(t)
	before := srv.Stats().RESTRequests
	srv.InvalidateSessions(false) // a new session is needed: none is left
	time.Sleep(3 * time.Second)
	if n := srv.Stats().RESTRequests - before; n > 2 {
		t.Errorf("%d REST requests in 3 s while the session budget is used up", n)
	}
	if !strings.Contains(rg.logs.String(), "session-start budget is used up") {
		t.Errorf("no log of the used-up budget:\n%s", rg.logs)
	}
	if st := srv.Stats(); st.Identifies != 1 {
		t.Errorf("%d identifies with a budget of one", st.Identifies)
	}
}

// TestListsBounded: lists Discord sends are cut at bounds no real answer
// reaches: channels of a guild, guilds of a READY, messages of a page.
func TestListsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"id":"1","name":"g","owner_id":"5","channels":[`)
	for i := range MaxGuildChannels + 50 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%d","type":0,"name":"c"}`, 100+i)
	}
	b.WriteString(`]}`)
	info, ok := parseGuildCreate([]byte(b.String()), "5")
	if !ok || len(info.Channels) != MaxGuildChannels || info.Dropped != 50 {
		t.Errorf("GUILD_CREATE with %d channels: kept %d, dropped %d", MaxGuildChannels+50, len(info.Channels), info.Dropped)
	}
	raw := make([]json.RawMessage, MaxReadyGuilds+7)
	for i := range raw {
		raw[i] = json.RawMessage(fmt.Sprintf(`{"id":"%d","unavailable":true}`, i+1))
	}
	if got := parseReadyGuilds(raw); len(got) != MaxReadyGuilds {
		t.Errorf("READY with %d guilds: kept %d", len(raw), len(got))
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var page []string
		for i := 300; i > 0; i-- { // newest first, three times the limit
			page = append(page, fmt.Sprintf(`{"id":"%d"}`, 1000+i))
		}
		fmt.Fprint(w, "["+strings.Join(page, ",")+"]")
	}))
	defer srv.Close()
	r, _ := NewREST(srv.URL, testToken, nil, "test", discardLogger())
	msgs, err := r.ChannelMessages(context.Background(), "5", "1000", 100)
	if err != nil || len(msgs) != 100 || !strings.Contains(string(msgs[0]), `"1001"`) || !strings.Contains(string(msgs[99]), `"1100"`) {
		t.Errorf("a page of 300 for limit 100: %d messages, first %s, err %v; want the 100 oldest", len(msgs), msgs[0], err)
	}
}
