package sim

import (
	"context"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

func TestIDGenerator(t *testing.T) {
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	var g idGen
	tests := []struct {
		name   string
		t      time.Time
		wantMS int64
	}{
		{"first", base, base.UnixMilli()},
		{"same ms", base.Add(300 * time.Microsecond), base.UnixMilli()},
		{"later", base.Add(5 * time.Millisecond), base.Add(5 * time.Millisecond).UnixMilli()},
		{"clock went back", base, base.Add(5 * time.Millisecond).UnixMilli()},
	}
	var last ID
	for _, tt := range tests {
		id, ms := g.next(tt.t)
		if ms != tt.wantMS {
			t.Errorf("%s: ms %d, want %d", tt.name, ms, tt.wantMS)
		}
		if id.Time().UnixMilli() != ms {
			t.Errorf("%s: id %s encodes %v, want ms %d", tt.name, id, id.Time(), ms)
		}
		if id <= last {
			t.Errorf("%s: id %s not above %s", tt.name, id, last)
		}
		last = id
	}
	// 4096 ids in one millisecond spill into the next.
	var h idGen
	seen := map[ID]bool{}
	var prev ID
	for i := 0; i < 5000; i++ {
		id, ms := h.next(base)
		if seen[id] || id <= prev {
			t.Fatalf("id %d: %s repeated or not increasing", i, id)
		}
		if id.Time().UnixMilli() != ms {
			t.Fatalf("id %s vs ms %d", id, ms)
		}
		seen[id], prev = true, id
	}
	if _, ms := h.next(base); ms != base.UnixMilli()+1 {
		t.Errorf("after 5001 ids in one ms: ms %d, want %d", ms, base.UnixMilli()+1)
	}
}

func TestIDJSONAndTime(t *testing.T) {
	// The example of Discord's reference documentation.
	id := ID(175928847299117063)
	if got := id.Time().UnixMilli(); got != 1462015105796 {
		t.Errorf("Time: %d, want 1462015105796", got)
	}
	b, _ := json.Marshal(id)
	if string(b) != `"175928847299117063"` {
		t.Errorf("JSON: %s", b)
	}
	var back ID
	if err := json.Unmarshal(b, &back); err != nil || back != id {
		t.Errorf("round trip: %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`"x1"`), &back); err == nil {
		t.Error("bad snowflake accepted")
	}
	if got := IDFromTime(time.UnixMilli(1462015105796)); got != 175928847299117063>>22<<22 {
		t.Errorf("IDFromTime: %d", got)
	}
	if got := FormatTimestamp(time.Date(2017, 7, 11, 17, 27, 24, 250000000, time.UTC)); got != "2017-07-11T17:27:24.250000+00:00" {
		t.Errorf("FormatTimestamp: %s", got)
	}
}

func TestTokens(t *testing.T) {
	tok := NewToken(1085218135998623744, []byte("s"))
	id, ok := BotIDFromToken(tok)
	if !ok || id != 1085218135998623744 {
		t.Errorf("BotIDFromToken(%q) = %v, %v", tok, id, ok)
	}
	if NewToken(1, []byte("a")) == NewToken(1, []byte("b")) {
		t.Error("different secrets give the same token")
	}
	for _, bad := range []string{"", "abc", "a.b", "!!!.b.c", "MTIz.b", "YWJj.b.c"} {
		if _, ok := BotIDFromToken(bad); ok {
			t.Errorf("BotIDFromToken(%q) accepted", bad)
		}
	}
	// The bot user id comes from the configured token.
	s := New(Config{Tokens: []string{tok}})
	if s.Bot().ID != 1085218135998623744 || s.Token() != tok {
		t.Errorf("bot %v token %q", s.Bot().ID, s.Token())
	}
	// Without tokens one is generated, in Discord's shape.
	s2 := New(Config{})
	if id, ok := BotIDFromToken(s2.Token()); !ok || id != s2.Bot().ID {
		t.Errorf("generated token %q: id %v ok %v, bot %v", s2.Token(), id, ok, s2.Bot().ID)
	}
}

func TestGenerateIsReproducibleAndVaried(t *testing.T) {
	run := func() []Message {
		clk := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), step: 3 * time.Millisecond}
		s := New(Config{Clock: clk.Now})
		err := s.Generate(context.Background(), Traffic{Rate: 100000, Count: 600, Authors: 30, Guilds: 3, ChannelsPerGuild: 2, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		return s.Sent()
	}
	a, b := run(), run()
	if len(a) != 600 || len(b) != 600 {
		t.Fatalf("got %d and %d messages, want 600", len(a), len(b))
	}
	for i := range a {
		ja, _ := json.Marshal(a[i])
		jb, _ := json.Marshal(b[i])
		if string(ja) != string(jb) {
			t.Fatalf("message %d differs with the same seed:\n%s\n%s", i, ja, jb)
		}
	}
	kinds := map[string]int{}
	authors := map[ID]int{}
	for i, m := range a {
		if i > 0 && m.ID <= a[i-1].ID {
			t.Fatalf("ids not increasing at %d", i)
		}
		if !utf8.ValidString(m.Content) {
			t.Fatalf("invalid UTF-8 in %q", m.Content)
		}
		switch {
		case m.GuildID == 0:
			kinds["dm"]++
		case m.Author.Webhook:
			kinds["webhook"]++
		case m.Author.Bot:
			kinds["bot"]++
		case m.Type == TypeReply:
			kinds["reply"]++
		case m.Type == TypeMemberJoin:
			kinds["join"]++
		case m.Content == "" && len(m.Attachments) > 0:
			kinds["attachment-only"]++
		case utf8.RuneCountInString(m.Content) > 1000:
			kinds["long"]++
		}
		if m.Author.GlobalName == "" && !m.Author.Bot {
			kinds["global_name null"]++
		}
		if m.GuildID != 0 && !m.Author.Bot {
			authors[m.Author.ID]++
		}
	}
	for _, k := range []string{"dm", "webhook", "bot", "reply", "join", "attachment-only", "long", "global_name null"} {
		if kinds[k] == 0 {
			t.Errorf("no %s message in 600: %v", k, kinds)
		}
	}
	// Skewed activity: the most active author writes far more than the median.
	counts := make([]int, 0, len(authors))
	for _, n := range authors {
		counts = append(counts, n)
	}
	maxN, total := 0, 0
	for _, n := range counts {
		total += n
		maxN = max(maxN, n)
	}
	if maxN*len(counts) < 3*total {
		t.Errorf("activity not skewed: top author %d of %d messages by %d authors", maxN, total, len(counts))
	}
}

func TestGenerateStopsWithContext(t *testing.T) {
	s := New(Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Generate(ctx, Traffic{Rate: 50, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Generate returned after %v", d)
	}
	if n := len(s.Sent()); n == 0 || n > 100 {
		t.Errorf("posted %d messages in 200ms at 50/s", n)
	}
}

func TestHistoryAndSentLimits(t *testing.T) {
	s := New(Config{HistoryLimit: 10, SentLimit: 20})
	_, ch, u := world(s)
	var last Message
	for i := 0; i < 100; i++ {
		m, err := s.Post(MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: "x"})
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	s.mu.Lock()
	h := len(s.history[ch.ID])
	s.mu.Unlock()
	if h < 10 || h > 12 {
		t.Errorf("history holds %d, want 10..12", h)
	}
	sent := s.Sent()
	if len(sent) < 20 || len(sent) > 25 || sent[len(sent)-1].ID != last.ID {
		t.Errorf("Sent holds %d, last %v; want 20..25 ending with %v", len(sent), sent[len(sent)-1].ID, last.ID)
	}
}
