package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func get(t *testing.T, s *Server, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.APIURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bot "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestRESTGateway(t *testing.T) {
	s := newTestServer(t, Config{Shards: 3, MaxConcurrency: 16})
	resp, b := get(t, s, "/gateway", "")
	if resp.StatusCode != 200 || string(b) != `{"url":"`+s.GatewayURL()+`"}` {
		t.Errorf("/gateway: %d %s", resp.StatusCode, b)
	}
	for _, tok := range []string{"", "nope", NewToken(5, nil)} {
		resp, b = get(t, s, "/gateway/bot", tok)
		if resp.StatusCode != 401 || string(b) != `{"message":"401: Unauthorized","code":0}` {
			t.Errorf("/gateway/bot with token %q: %d %s, want 401", tok, resp.StatusCode, b)
		}
	}
	resp, b = get(t, s, "/gateway/bot", s.Token())
	var gb struct {
		URL               string `json:"url"`
		Shards            int    `json:"shards"`
		SessionStartLimit struct {
			Total, Remaining, ResetAfter, MaxConcurrency int
		} `json:"session_start_limit"`
	}
	if err := json.Unmarshal(b, &gb); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/gateway/bot: %d %s %v", resp.StatusCode, b, err)
	}
	var raw map[string]map[string]any
	_ = json.Unmarshal(b, &raw)
	for _, k := range []string{"total", "remaining", "reset_after", "max_concurrency"} {
		if _, ok := raw["session_start_limit"][k]; !ok {
			t.Errorf("session_start_limit.%s missing: %s", k, b)
		}
	}
	if gb.URL != s.GatewayURL() || gb.Shards != 3 || raw["session_start_limit"]["max_concurrency"] != 16.0 || raw["session_start_limit"]["total"] != 1000.0 {
		t.Errorf("/gateway/bot: got %s", b)
	}
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	// An IDENTIFY uses one session start.
	c := dial(t, s, "", "")
	c.login(s.Token(), allIntents, nil)
	_, b = get(t, s, "/gateway/bot", s.Token())
	_ = json.Unmarshal(b, &raw)
	if raw["session_start_limit"]["remaining"] != 999.0 {
		t.Errorf("remaining after one IDENTIFY: got %v, want 999", raw["session_start_limit"]["remaining"])
	}
	resp, b = get(t, s, "/users/@me", s.Token())
	var me map[string]any
	_ = json.Unmarshal(b, &me)
	if resp.StatusCode != 200 || me["id"] != s.Bot().ID.String() || me["bot"] != true {
		t.Errorf("/users/@me: %d %s", resp.StatusCode, b)
	}
	resp, b = get(t, s, "/nothing/here", s.Token())
	if resp.StatusCode != 404 {
		t.Errorf("unknown route: %d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"/gateway/bot", nil)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 405 {
		t.Errorf("POST /gateway/bot: %d, want 405", r2.StatusCode)
	}
}

func ids(t *testing.T, b []byte) []ID {
	t.Helper()
	var ms []struct {
		ID ID `json:"id"`
	}
	if err := json.Unmarshal(b, &ms); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out := make([]ID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestRESTMessageHistory(t *testing.T) {
	clk := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), step: 700 * time.Microsecond}
	s := newTestServer(t, Config{Clock: clk.Now, RESTRouteLimit: 1000})
	g, ch, u := world(s)
	var all []ID // ascending
	for i := 0; i < 130; i++ {
		all = append(all, post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: strconv.Itoa(i)}).ID)
	}
	rev := func(xs []ID) []ID {
		out := make([]ID, len(xs))
		for i, x := range xs {
			out[len(xs)-1-i] = x
		}
		return out
	}
	eq := func(a, b []ID) bool {
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
	base := "/channels/" + ch.ID.String() + "/messages"
	tests := []struct {
		query string
		want  []ID
	}{
		{"", rev(all[80:])},
		{"?limit=100", rev(all[30:])},
		{"?limit=1", []ID{all[129]}},
		{"?after=" + all[9].String() + "&limit=10", rev(all[10:20])},
		{"?after=" + all[125].String(), rev(all[126:])},
		{"?after=0&limit=5", rev(all[:5])},
		{"?before=" + all[20].String() + "&limit=10", rev(all[10:20])},
		{"?before=" + all[3].String(), rev(all[:3])},
		{"?around=" + all[50].String() + "&limit=5", rev(all[48:53])},
		{"?around=" + all[50].String() + "&limit=1", []ID{all[50]}},
		{"?after=" + all[129].String(), nil},
		// A time cursor works as an after value.
		{"?after=" + IDFromTime(all[100].Time()).String() + "&limit=3", rev(all[100:103])},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, b := get(t, s, base+tt.query, s.Token())
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if got := ids(t, b); !eq(got, tt.want) {
				t.Errorf("got %d ids %v…, want %d %v…", len(got), head(got), len(tt.want), head(tt.want))
			}
		})
	}
	// Paging forward with after, as a backfill does: newest first on every page.
	var got []ID
	cursor := ID(0)
	for {
		_, b := get(t, s, base+"?limit=7&after="+cursor.String(), s.Token())
		page := ids(t, b)
		if len(page) == 0 {
			break
		}
		for i := 1; i < len(page); i++ {
			if page[i] >= page[i-1] {
				t.Fatalf("page not newest first: %v", page)
			}
		}
		got = append(got, rev(page)...)
		cursor = page[0]
	}
	if !eq(got, all) {
		t.Errorf("paging after: got %d messages, want %d in order", len(got), len(all))
	}
	// One message; REST objects carry no guild_id and no member.
	resp, b := get(t, s, base+"/"+all[7].String(), s.Token())
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if resp.StatusCode != 200 || m["content"] != "7" || m["author"].(map[string]any)["id"] != u.ID.String() {
		t.Errorf("one message: %d %s", resp.StatusCode, b)
	}
	if _, ok := m["guild_id"]; ok {
		t.Errorf("REST message has guild_id: %s", b)
	}
	if _, ok := m["member"]; ok {
		t.Errorf("REST message has member: %s", b)
	}
	checkTimestampMatchesID(t, m)

	hidden := s.AddChannelSpec(Channel{GuildID: g.ID, Name: "staff", NoAccess: true})
	errs := []struct {
		path   string
		status int
		body   string
	}{
		{base + "?limit=0", 400, `"code":50035`},
		{base + "?limit=101", 400, `NUMBER_TYPE_MAX`},
		{base + "?limit=ten", 400, `NUMBER_TYPE_COERCE`},
		{base + "?after=yesterday", 400, `is not snowflake`},
		{base + "?before=-1", 400, `is not snowflake`},
		{"/channels/123/messages", 404, `{"message":"Unknown Channel","code":10003}`},
		{"/channels/abc/messages", 400, `is not snowflake`},
		{"/channels/" + hidden.ID.String() + "/messages", 403, `{"message":"Missing Access","code":50001}`},
		{base + "/1", 404, `"code":10008`},
	}
	for _, e := range errs {
		resp, b := get(t, s, e.path, s.Token())
		if resp.StatusCode != e.status || !contains(string(b), e.body) {
			t.Errorf("%s: %d %s, want %d with %s", e.path, resp.StatusCode, b, e.status, e.body)
		}
	}
	resp, _ = get(t, s, base, "")
	if resp.StatusCode != 401 {
		t.Errorf("history without token: %d, want 401", resp.StatusCode)
	}
}

func head(xs []ID) []ID {
	if len(xs) > 3 {
		return xs[:3]
	}
	return xs
}

func TestRESTRateLimits(t *testing.T) {
	s := newTestServer(t, Config{RESTRouteLimit: 3, RESTRouteWindow: 2 * time.Second})
	g, ch, _ := world(s)
	ch2 := s.AddChannel(g.ID, "other")
	path := "/channels/" + ch.ID.String() + "/messages"
	var bucket string
	for i := 0; i < 3; i++ {
		resp, b := get(t, s, path, s.Token())
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
		if got := resp.Header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(2-i) {
			t.Errorf("request %d remaining: got %s, want %d", i, got, 2-i)
		}
		if resp.Header.Get("X-RateLimit-Limit") != "3" {
			t.Errorf("limit header: %s", resp.Header.Get("X-RateLimit-Limit"))
		}
		ra, err := strconv.ParseFloat(resp.Header.Get("X-RateLimit-Reset-After"), 64)
		if err != nil || ra <= 0 || ra > 2 {
			t.Errorf("reset-after: %q", resp.Header.Get("X-RateLimit-Reset-After"))
		}
		reset, err := strconv.ParseFloat(resp.Header.Get("X-RateLimit-Reset"), 64)
		if err != nil || reset < float64(time.Now().Unix()) {
			t.Errorf("reset: %q", resp.Header.Get("X-RateLimit-Reset"))
		}
		bucket = resp.Header.Get("X-RateLimit-Bucket")
	}
	resp, b := get(t, s, path, s.Token())
	if resp.StatusCode != 429 {
		t.Fatalf("4th request: %d, want 429", resp.StatusCode)
	}
	var rl struct {
		Message    string  `json:"message"`
		RetryAfter float64 `json:"retry_after"`
		Global     bool    `json:"global"`
	}
	if err := json.Unmarshal(b, &rl); err != nil || rl.Message == "" || rl.RetryAfter <= 0 || rl.RetryAfter > 2 || rl.Global {
		t.Errorf("429 body: %s", b)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" && ra != "2" {
		t.Errorf("Retry-After: %q, want whole seconds", ra)
	}
	if resp.Header.Get("X-RateLimit-Scope") != "user" || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("Via") == "" {
		t.Errorf("429 headers: %v", resp.Header)
	}
	// Another channel is another bucket, with the same bucket hash.
	resp, _ = get(t, s, "/channels/"+ch2.ID.String()+"/messages", s.Token())
	if resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Bucket") != bucket {
		t.Errorf("other channel: %d bucket %q, want 200 and %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Bucket"), bucket)
	}
	if st := s.Stats(); st.RESTRateLimited != 1 {
		t.Errorf("RESTRateLimited: %d", st.RESTRateLimited)
	}

	// Global limit.
	s2 := newTestServer(t, Config{RESTGlobalLimit: 2})
	for i := 0; i < 2; i++ {
		if resp, _ := get(t, s2, "/users/@me", s2.Token()); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	resp, b = get(t, s2, "/gateway/bot", s2.Token())
	if resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Global") != "true" || !contains(string(b), `"global":true`) {
		t.Errorf("global limit: %d %v %s", resp.StatusCode, resp.Header, b)
	}
}

// TestRESTHostile: SetHostile's answers are what it says, and Hostile{}
// ends them.
func TestRESTHostile(t *testing.T) {
	s := newTestServer(t, Config{})
	s.SetHostile(Hostile{Shards: 1000000000, MaxConcurrency: -3, GatewayURL: "ws://gateway.example.com"})
	resp, b := get(t, s, "/gateway/bot", s.Token())
	var gb struct {
		URL    string `json:"url"`
		Shards int    `json:"shards"`
		SL     struct {
			MaxConcurrency int `json:"max_concurrency"`
		} `json:"session_start_limit"`
	}
	if err := json.Unmarshal(b, &gb); err != nil || resp.StatusCode != 200 || gb.Shards != 1000000000 ||
		gb.URL != "ws://gateway.example.com" || gb.SL.MaxConcurrency != -3 {
		t.Errorf("/gateway/bot: %d %s", resp.StatusCode, b)
	}
	s.SetHostile(Hostile{RetryAfter: "1e300", RetryAfterOn: "/channels/"})
	if resp, b := get(t, s, "/channels/1/messages", s.Token()); resp.StatusCode != 429 ||
		string(b) != `{"message":"You are being rate limited.","retry_after":1e300,"global":false}` || resp.Header.Get("Retry-After") != "1e300" {
		t.Errorf("/channels/1/messages: %d %s (Retry-After %q)", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	if resp, _ := get(t, s, "/gateway/bot", s.Token()); resp.StatusCode != 200 {
		t.Errorf("/gateway/bot outside RetryAfterOn: %d", resp.StatusCode)
	}
	if resp, _ := get(t, s, "/channels/1/messages", ""); resp.StatusCode != 401 {
		t.Errorf("unauthenticated: %d, want 401 before any hostile answer", resp.StatusCode)
	}
	s.SetHostile(Hostile{})
	if resp, b := get(t, s, "/gateway/bot", s.Token()); resp.StatusCode != 200 || json.Unmarshal(b, &gb) != nil || gb.Shards != 1 {
		t.Errorf("after Hostile{}: %d %s", resp.StatusCode, b)
	}
}
