package sim

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.t
	f.t = f.t.Add(f.step)
	return t
}

var tsRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`)

func checkTimestampMatchesID(t *testing.T, m map[string]any) {
	t.Helper()
	ts, _ := m["timestamp"].(string)
	if !tsRE.MatchString(ts) {
		t.Errorf("timestamp %q: want ISO 8601 with microseconds and +00:00", ts)
		return
	}
	pt, err := time.Parse("2006-01-02T15:04:05.000000-07:00", ts)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseID(m["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int64(id>>22)+DiscordEpoch, pt.UnixMilli(); got != want {
		t.Errorf("id %s encodes ms %d, timestamp %s is ms %d", id, got, ts, want)
	}
}

func TestMessageCreatePayloads(t *testing.T) {
	clk := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC), step: 1500 * time.Microsecond}
	s := newTestServer(t, Config{Clock: clk.Now})
	g, ch, alice := world(s)
	bob := s.AddUser(User{Username: "bob"}) // global_name null
	hook := s.AddWebhook("GitHub")
	dm := s.AddDM(bob.ID)
	c := dial(t, s, "", "")
	c.login(s.Token(), allIntents, nil)

	plain := post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: bob.ID, Content: "héllo 世界 👋"})
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: hook.ID, Content: "1 new commit"})
	post(t, s, MessageSpec{ChannelID: dm.ID, AuthorID: bob.ID, Content: "psst"})
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "re", ReplyTo: plain.ID})
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Type: TypeMemberJoin})
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Attachments: []Attachment{{Filename: "写真.png", Size: 1234, ContentType: "image/png", Width: 10, Height: 20}}})
	post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "<@" + s.Bot().ID.String() + "> hi", Mentions: []ID{s.Bot().ID}})

	ms := c.messages(7)
	for _, m := range ms {
		checkTimestampMatchesID(t, m)
		if m["edited_timestamp"] != nil {
			t.Errorf("edited_timestamp: got %v, want null", m["edited_timestamp"])
		}
		for _, k := range []string{"tts", "pinned", "mention_everyone", "mentions", "mention_roles", "attachments", "embeds", "components", "flags", "type", "channel_type"} {
			if _, ok := m[k]; !ok {
				t.Errorf("message %v: field %q missing", m["id"], k)
			}
		}
	}
	// A plain guild message.
	m := ms[0]
	author := m["author"].(map[string]any)
	if m["guild_id"] != g.ID.String() || m["channel_id"] != ch.ID.String() || m["content"] != "héllo 世界 👋" || m["type"] != 0.0 || m["channel_type"] != 0.0 {
		t.Errorf("plain: got %v", m)
	}
	if author["id"] != bob.ID.String() || author["username"] != "bob" || author["discriminator"] != "0" {
		t.Errorf("author: got %v", author)
	}
	if v, ok := author["global_name"]; !ok || v != nil {
		t.Errorf("global_name: got %v (present %v), want null", v, ok)
	}
	if _, ok := author["bot"]; ok {
		t.Errorf("human author has a bot field: %v", author)
	}
	member, ok := m["member"].(map[string]any)
	if !ok {
		t.Fatalf("member missing: %v", m)
	}
	if _, ok := member["user"]; ok {
		t.Errorf("member has user inside: %v", member)
	}
	if _, ok := member["joined_at"]; !ok {
		t.Errorf("member without joined_at: %v", member)
	}
	if _, ok := m["webhook_id"]; ok {
		t.Errorf("plain message has webhook_id")
	}
	// Webhook.
	m = ms[1]
	author = m["author"].(map[string]any)
	if m["webhook_id"] != hook.ID.String() || author["id"] != hook.ID.String() || author["bot"] != true || author["discriminator"] != "0000" {
		t.Errorf("webhook: got %v", m)
	}
	if _, ok := m["member"]; ok {
		t.Errorf("webhook message has a member")
	}
	// DM.
	m = ms[2]
	if _, ok := m["guild_id"]; ok {
		t.Errorf("DM has guild_id: %v", m)
	}
	if _, ok := m["member"]; ok {
		t.Errorf("DM has member")
	}
	if m["channel_type"] != 1.0 || m["channel_id"] != dm.ID.String() {
		t.Errorf("DM: got %v", m)
	}
	// Reply.
	m = ms[3]
	ref, _ := m["message_reference"].(map[string]any)
	refd, _ := m["referenced_message"].(map[string]any)
	if m["type"] != 19.0 || ref["message_id"] != plain.ID.String() || ref["channel_id"] != ch.ID.String() || ref["guild_id"] != g.ID.String() {
		t.Errorf("reply: got type %v reference %v", m["type"], ref)
	}
	if refd["id"] != plain.ID.String() || refd["content"] != "héllo 世界 👋" {
		t.Errorf("referenced_message: got %v", refd)
	}
	// Member join: system message with empty content.
	if m = ms[4]; m["type"] != 7.0 || m["content"] != "" {
		t.Errorf("join: got %v", m)
	}
	// Attachment only.
	m = ms[5]
	atts, _ := m["attachments"].([]any)
	if m["content"] != "" || len(atts) != 1 {
		t.Fatalf("attachment: got %v", m)
	}
	a := atts[0].(map[string]any)
	if a["filename"] != "写真.png" || a["size"] != 1234.0 || a["content_type"] != "image/png" || a["url"] == "" || a["id"] == "" {
		t.Errorf("attachment: got %v", a)
	}
	// Mention: the mentioned user carries a partial member in guild events.
	m = ms[6]
	mentions, _ := m["mentions"].([]any)
	if len(mentions) != 1 {
		t.Fatalf("mentions: got %v", m["mentions"])
	}
	mu := mentions[0].(map[string]any)
	if mu["id"] != s.Bot().ID.String() || mu["member"] == nil {
		t.Errorf("mention: got %v", mu)
	}

	// Edit and delete.
	if _, err := s.Edit(ch.ID, plain.ID, "edited ✏️"); err != nil {
		t.Fatal(err)
	}
	p := c.expect(opDispatch, "MESSAGE_UPDATE")
	var up map[string]any
	_ = json.Unmarshal(p.D, &up)
	if up["id"] != plain.ID.String() || up["content"] != "edited ✏️" || up["edited_timestamp"] == nil || up["guild_id"] != g.ID.String() {
		t.Errorf("MESSAGE_UPDATE: got %v", up)
	}
	if err := s.Delete(ch.ID, plain.ID); err != nil {
		t.Fatal(err)
	}
	p = c.expect(opDispatch, "MESSAGE_DELETE")
	if want := `{"channel_id":"` + ch.ID.String() + `","guild_id":"` + g.ID.String() + `","id":"` + plain.ID.String() + `"}`; string(p.D) != want {
		t.Errorf("MESSAGE_DELETE: got %s, want %s", p.D, want)
	}
	// Bulk delete.
	if err := s.DeleteBulk(ch.ID, []ID{ms0ID(t, ms[3]), ms0ID(t, ms[4])}); err != nil {
		t.Fatal(err)
	}
	p = c.expect(opDispatch, "MESSAGE_DELETE_BULK")
	if want := `{"channel_id":"` + ch.ID.String() + `","guild_id":"` + g.ID.String() + `","ids":["` + ms[3]["id"].(string) + `","` + ms[4]["id"].(string) + `"]}`; string(p.D) != want {
		t.Errorf("MESSAGE_DELETE_BULK: got %s, want %s", p.D, want)
	}
	if err := s.DeleteBulk(ch.ID, []ID{ms0ID(t, ms[5]), 1}); err == nil {
		t.Error("DeleteBulk with an unknown id: no error")
	}
	// Sent keeps what was posted.
	sent := s.Sent()
	if len(sent) != 7 || sent[0].Content != "héllo 世界 👋" {
		t.Errorf("Sent: got %d messages, first %q", len(sent), sent[0].Content)
	}
	st := s.Stats()
	if st.Messages != 7 || st.Edits != 1 || st.Deletes != 3 {
		t.Errorf("stats: %+v", st)
	}
}

func TestPostErrors(t *testing.T) {
	s := New(Config{})
	_, ch, u := world(s)
	hook := s.AddWebhook("hook")
	dm := s.AddDM(u.ID)
	tests := []struct {
		name string
		spec MessageSpec
	}{
		{"unknown channel", MessageSpec{ChannelID: 1, AuthorID: u.ID}},
		{"unknown author", MessageSpec{ChannelID: ch.ID, AuthorID: 1}},
		{"unknown mention", MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Mentions: []ID{1}}},
		{"reply to unknown", MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, ReplyTo: 1}},
		{"webhook in DM", MessageSpec{ChannelID: dm.ID, AuthorID: hook.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Post(tt.spec); err == nil {
				t.Error("got no error")
			}
		})
	}
	if _, err := s.Edit(ch.ID, 1, "x"); err == nil {
		t.Error("Edit of an unknown message: no error")
	}
	if err := s.Delete(ch.ID, 1); err == nil {
		t.Error("Delete of an unknown message: no error")
	}
}

// received collects MESSAGE_CREATE contents until silence.
func received(t *testing.T, c *testClient) map[string]string {
	t.Helper()
	out := map[string]string{}
	for {
		p, err := c.next(300 * time.Millisecond)
		if err != nil {
			return out
		}
		if eventType(p) != "MESSAGE_CREATE" {
			continue
		}
		var m struct {
			ID      string `json:"id"`
			Content string `json:"content"`
			Atts    []any  `json:"attachments"`
			Embeds  []any  `json:"embeds"`
		}
		_ = json.Unmarshal(p.D, &m)
		if m.Content == "" && (len(m.Atts) > 0 || len(m.Embeds) > 0) {
			m.Content = "(attachments)"
		}
		out[m.ID] = m.Content
	}
}

func TestIntentsFilterDelivery(t *testing.T) {
	s := newTestServer(t, Config{})
	_, ch, alice := world(s)
	dm := s.AddDM(alice.ID)
	bot := s.Bot()
	msgs := map[string]Message{
		"guild":     post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "guild"}),
		"guild-att": post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "", Attachments: []Attachment{{Filename: "a.txt", Size: 1}}}),
		"dm":        post(t, s, MessageSpec{ChannelID: dm.ID, AuthorID: alice.ID, Content: "dm"}),
		"mention":   post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: alice.ID, Content: "mention", Mentions: []ID{bot.ID}}),
		"own":       post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: bot.ID, Content: "own"}),
	}
	// Those were templates posted before anyone connected; now connect
	// sessions with different intents and post them again.
	type want map[string]string // label -> content expected ("-" = not delivered)
	tests := []struct {
		name    string
		intents uint64
		want    want
	}{
		{"all", allIntents, want{"guild": "guild", "guild-att": "(attachments)", "dm": "dm", "mention": "mention", "own": "own"}},
		{"no message content", IntentGuilds | IntentGuildMessages | IntentDirectMessages, want{"guild": "", "guild-att": "", "dm": "dm", "mention": "mention", "own": "own"}},
		{"no guild messages", IntentGuilds | IntentDirectMessages | IntentMessageContent, want{"guild": "-", "guild-att": "-", "dm": "dm", "mention": "-", "own": "-"}},
		{"no direct messages", IntentGuilds | IntentGuildMessages | IntentMessageContent, want{"guild": "guild", "guild-att": "(attachments)", "dm": "-", "mention": "mention", "own": "own"}},
		{"guilds only", IntentGuilds, want{"guild": "-", "guild-att": "-", "dm": "-", "mention": "-", "own": "-"}},
	}
	clients := make([]*testClient, len(tests))
	for i, tt := range tests {
		clients[i] = dial(t, s, "", "")
		clients[i].login(s.Token(), tt.intents, nil)
	}
	hidden := s.AddChannelSpec(Channel{GuildID: ch.GuildID, Name: "secret", NoAccess: true})
	ids := map[string]string{}
	for _, label := range []string{"guild", "guild-att", "dm", "mention", "own"} {
		m := msgs[label]
		spec := MessageSpec{ChannelID: m.ChannelID, AuthorID: m.Author.ID, Content: m.Content, Attachments: m.Attachments}
		for _, u := range m.Mentions {
			spec.Mentions = append(spec.Mentions, u.ID)
		}
		ids[label] = post(t, s, spec).ID.String()
	}
	post(t, s, MessageSpec{ChannelID: hidden.ID, AuthorID: alice.ID, Content: "never seen"})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := received(t, clients[i])
			for label, w := range tt.want {
				content, ok := got[ids[label]]
				switch {
				case w == "-" && ok:
					t.Errorf("%s: delivered (%q), want not delivered", label, content)
				case w != "-" && !ok:
					t.Errorf("%s: not delivered, want %q", label, w)
				case w != "-" && content != w:
					t.Errorf("%s: content %q, want %q", label, content, w)
				}
			}
			if extra := len(got) - countDelivered(tt.want); extra != 0 {
				t.Errorf("got %d unexpected messages: %v", extra, got)
			}
		})
	}
}

func countDelivered(w map[string]string) int {
	n := 0
	for _, v := range w {
		if v != "-" {
			n++
		}
	}
	return n
}

func TestSharding(t *testing.T) {
	clk := &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), step: time.Millisecond}
	s := newTestServer(t, Config{Clock: clk.Now, Shards: 2, MaxConcurrency: 2})
	var guilds []Guild
	for i := 0; i < 4; i++ {
		guilds = append(guilds, s.AddGuild("g"+strconv.Itoa(i)))
	}
	u := s.AddUser(User{Username: "u"})
	dm := s.AddDM(u.ID)
	shards := []*testClient{dial(t, s, "", ""), dial(t, s, "", "")}
	for i, c := range shards {
		r := c.login(s.Token(), allIntents, map[string]any{"shard": []int{i, 2}})
		var got, want []string
		for _, g := range r.Guilds {
			got = append(got, g["id"].(string))
		}
		for _, g := range guilds {
			if int((uint64(g.ID)>>22)%2) == i {
				want = append(want, g.ID.String())
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !equal(got, want) || len(want) == 0 {
			t.Errorf("shard %d READY guilds: got %v, want %v", i, got, want)
		}
	}
	wantOn := [2]map[string]string{{}, {}}
	for _, g := range guilds {
		ch := s.AddChannel(g.ID, "c")
		m := post(t, s, MessageSpec{ChannelID: ch.ID, AuthorID: u.ID, Content: g.Name})
		wantOn[(uint64(g.ID)>>22)%2][m.ID.String()] = g.Name
	}
	m := post(t, s, MessageSpec{ChannelID: dm.ID, AuthorID: u.ID, Content: "dm"})
	wantOn[0][m.ID.String()] = "dm" // DMs only on shard 0
	for i, c := range shards {
		got := received(t, c)
		if len(got) != len(wantOn[i]) {
			t.Errorf("shard %d: got %v, want %v", i, got, wantOn[i])
		}
		for id, content := range wantOn[i] {
			if got[id] != content {
				t.Errorf("shard %d message %s: got %q, want %q", i, id, got[id], content)
			}
		}
	}
}

func ms0ID(t *testing.T, m map[string]any) ID {
	t.Helper()
	id, err := ParseID(m["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return id
}
