package sim

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"time"
)

// Traffic describes generated message traffic (see Server.Generate).
type Traffic struct {
	// Rate is the average number of messages per second (default 5).
	// Bursts make it uneven: short runs of messages from a few authors.
	Rate float64
	// Count stops after this many messages (0: until the context ends).
	Count int
	// Authors is the number of human authors (default 20); their activity
	// is skewed (Zipf-like): a few write most messages.
	Authors int
	// Guilds and ChannelsPerGuild shape the world (defaults 2 and 3).
	Guilds           int
	ChannelsPerGuild int
	// DMs is the number of DM channels with the most active authors
	// (default 2; negative: none).
	DMs int
	// Seed makes the traffic reproducible: the same seed gives the same
	// world names and the same sequence of messages (ids and timestamps
	// come from the Server's clock).
	Seed int64
}

func (t *Traffic) setDefaults() {
	if t.Rate <= 0 {
		t.Rate = 5
	}
	if t.Authors <= 0 {
		t.Authors = 20
	}
	if t.Guilds <= 0 {
		t.Guilds = 2
	}
	if t.ChannelsPerGuild <= 0 {
		t.ChannelsPerGuild = 3
	}
	if t.DMs == 0 {
		t.DMs = 2
	}
	if t.DMs < 0 {
		t.DMs = 0
	}
}

// Generate adds a world (guilds, channels, authors with varied Unicode
// names, bots, one webhook per guild, DM channels) and then posts messages
// at about t.Rate per second until t.Count messages were posted (returns
// nil) or ctx ends (returns nil: stopping is the normal end). The mix:
// plain text in many scripts and emoji, replies, attachments with empty
// content, bot and webhook messages, DMs, member-join system messages
// (type 7), long Unicode content, mentions of the bot.
func (s *Server) Generate(ctx context.Context, t Traffic) error {
	t.setDefaults()
	g := newGenerator(s, t)
	n := 0
	for t.Count == 0 || n < t.Count {
		burst := g.nextBurst()
		for i, spec := range burst {
			if t.Count > 0 && n >= t.Count {
				break
			}
			var wait time.Duration
			if i == 0 {
				wait = time.Duration(g.r.ExpFloat64() / t.Rate * float64(time.Second))
			} else {
				// Bursts: a few tens of milliseconds apart (less at high rates).
				wait = time.Duration(g.r.Float64() * min(0.04, 0.2/t.Rate) * float64(time.Second))
			}
			if wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					timer.Stop()
					return nil
				case <-timer.C:
				}
			} else if ctx.Err() != nil {
				return nil
			}
			if _, err := g.post(spec); err != nil {
				return fmt.Errorf("generate: %w", err)
			}
			n++
		}
	}
	return nil
}

var (
	guildNames   = []string{"Café ☕", "ゲーム部", "Rust 🦀 & Go", "Le Salon", "数学クラブ", "Kafka Fans", "Ørsted Hackers", "Ñandú Club"}
	channelNames = []string{"general", "random", "雑談", "dev-help", "memes", "announcements", "música", "off-topic"}
	userNames    = []string{"alice", "bob", "sakura", "li.wei", "minjun", "zoe_", "orjan", "jose", "abdullah", "fatima", "dmitri", "priya", "noah", "emma", "yuki", "chen", "amara", "lucas", "ines", "kenji"}
	globalNames  = []string{"さくら🌸", "李小龍", "Zoë", "Ørjan", "José 🌵", "김민준", "Абдулла", "محمد", "ｆｕｌｌｗｉｄｔｈ", "Ñoño", "प्रिया", "Łukasz", "שרה", "Γιώργος", "🦊 Fox", "Z̷a̶l̵g̸o̴"}
	phrases      = []string{
		"hello everyone 👋", "did anyone see the match last night?", "¿alguien sabe cómo configurar Kafka?",
		"おはようございます！今日もよろしく", "这个 bug 我昨天修好了", "안녕하세요 여러분", "Ça marche chez moi 🤷",
		"Привет, как дела?", "مرحبا بالجميع", "שלום לכולם", "नमस्ते दोस्तों", "lol", "+1", "ok", "👍", "🔥🔥🔥",
		"brb", "e\u0301te\u0301 (combining accents)", "`code` **bold** ||spoiler||", "\"quotes\" and \\backslashes\\",
		"https://example.com/some/link?x=1&y=2", "Ωmega ≠ alpha ≤ beta", "👩‍👩‍👧‍👦 family emoji", "🇯🇵🇫🇷🇧🇷",
		"line one\nline two", "tab\tseparated", "ｆｕｌｌ　ｗｉｄｔｈ　ｔｅｘｔ", "ㅋㅋㅋㅋ", "草", "wait what",
		"anyone up for a game?", "pushed the fix, please review", "the window is 10 minutes sliding by 5",
	}
	filenames = []string{"image.png", "screenshot 2024-05-01.jpg", "写真.jpeg", "notes.txt", "clip.mp4", "résumé.pdf"}
)

type generator struct {
	s       *Server
	t       Traffic
	r       *rand.Rand
	zipf    *rand.Zipf
	authors []User
	bots    []User
	hooks   map[ID]User // per guild
	text    []Channel
	dms     []Channel
	recent  map[ID][]ID // recent message ids per channel
}

func newGenerator(s *Server, t Traffic) *generator {
	r := rand.New(rand.NewSource(t.Seed))
	g := &generator{s: s, t: t, r: r, hooks: map[ID]User{}, recent: map[ID][]ID{}}
	// The guilds spread over the shards as real ones do (AddGuilds).
	guilds := s.AddGuilds(t.Guilds, func(i int) string {
		name := guildNames[i%len(guildNames)]
		if i >= len(guildNames) {
			name = fmt.Sprintf("%s %d", name, i/len(guildNames)+1)
		}
		return name
	})
	for i, gu := range guilds {
		for j := 0; j < t.ChannelsPerGuild; j++ {
			cn := channelNames[j%len(channelNames)]
			if j >= len(channelNames) {
				cn = fmt.Sprintf("%s-%d", cn, j/len(channelNames)+1)
			}
			g.text = append(g.text, s.AddChannel(gu.ID, cn))
		}
		g.hooks[gu.ID] = s.AddWebhook([]string{"GitHub", "RSS Feed", "Alerts"}[i%3])
	}
	for i := 0; i < t.Authors; i++ {
		u := User{Username: userNames[i%len(userNames)]}
		if i >= len(userNames) {
			u.Username = fmt.Sprintf("%s%d", u.Username, i/len(userNames)+1)
		}
		if r.Intn(4) != 0 { // a quarter never set a display name: global_name null
			u.GlobalName = globalNames[r.Intn(len(globalNames))]
		}
		if r.Intn(3) != 0 {
			u.Avatar = fmt.Sprintf("%032x", r.Uint64())
		}
		g.authors = append(g.authors, s.AddUser(u))
	}
	g.bots = append(g.bots, s.AddUser(User{Username: "statbot", Bot: true}), s.AddUser(User{Username: "musicbot", GlobalName: "Music 🎵", Bot: true}))
	for i := 0; i < t.DMs && i < len(g.authors); i++ {
		g.dms = append(g.dms, s.AddDM(g.authors[i].ID))
	}
	if len(g.authors) > 1 {
		g.zipf = rand.NewZipf(r, 1.3, 1, uint64(len(g.authors)-1))
	}
	return g
}

func (g *generator) author() User {
	if g.zipf == nil {
		return g.authors[0]
	}
	return g.authors[g.zipf.Uint64()]
}

func (g *generator) content() string {
	n := 1 + g.r.Intn(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = phrases[g.r.Intn(len(phrases))]
	}
	return strings.Join(parts, " ")
}

func (g *generator) longContent() string {
	var b strings.Builder
	for b.Len() < 3000 {
		b.WriteString(phrases[g.r.Intn(len(phrases))])
		b.WriteString(" ")
	}
	rs := []rune(b.String())
	if len(rs) > 1900 {
		rs = rs[:1900]
	}
	return string(rs)
}

// pending is a message to post; replyIdx picks a recent message at post time.
type pending struct {
	spec  MessageSpec
	reply bool
}

// nextBurst returns one message, or with a small probability a burst of
// messages in one channel from a few authors.
func (g *generator) nextBurst() []pending {
	if g.r.Float64() < 0.03 {
		ch := g.text[g.r.Intn(len(g.text))]
		k := 5 + g.r.Intn(20)
		who := []User{g.author(), g.author(), g.author()}
		out := make([]pending, k)
		for i := range out {
			out[i] = pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: who[g.r.Intn(len(who))].ID, Content: g.content()}, reply: g.r.Intn(4) == 0}
		}
		return out
	}
	return []pending{g.one()}
}

func (g *generator) one() pending {
	ch := g.text[g.r.Intn(len(g.text))]
	a := g.author()
	x := g.r.Float64()
	switch {
	case x < 0.68:
		return pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: a.ID, Content: g.content()}}
	case x < 0.76:
		return pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: a.ID, Content: g.content()}, reply: true}
	case x < 0.81: // attachment only: empty content
		return pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: a.ID, Attachments: []Attachment{g.attachment()}}}
	case x < 0.84:
		return pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: a.ID, Content: g.content(), Attachments: []Attachment{g.attachment(), g.attachment()}}}
	case x < 0.87:
		b := g.bots[g.r.Intn(len(g.bots))]
		spec := MessageSpec{ChannelID: ch.ID, AuthorID: b.ID, Content: "Top posters this week: " + a.Username}
		if g.r.Intn(2) == 0 {
			spec.Content = ""
			spec.Embeds = []Embed{{Title: "Leaderboard 🏆", Description: "1. " + a.Username + "\n2. …"}}
		}
		return pending{spec: spec}
	case x < 0.90:
		return pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: g.hooks[ch.GuildID].ID, Content: "[cordstream] 1 new commit: " + g.content()}}
	case x < 0.94 && len(g.dms) > 0:
		dm := g.dms[g.r.Intn(len(g.dms))]
		return pending{spec: MessageSpec{ChannelID: dm.ID, AuthorID: dm.Recipient, Content: g.content()}}
	case x < 0.96:
		return pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: a.ID, Type: TypeMemberJoin}}
	case x < 0.98:
		return pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: a.ID, Content: g.longContent()}}
	default:
		bot := g.s.Bot()
		return pending{spec: MessageSpec{ChannelID: ch.ID, AuthorID: a.ID, Content: "<@" + bot.ID.String() + "> " + g.content(), Mentions: []ID{bot.ID}}}
	}
}

func (g *generator) attachment() Attachment {
	name := filenames[g.r.Intn(len(filenames))]
	a := Attachment{Filename: name, Size: 1000 + g.r.Intn(5_000_000)}
	switch {
	case strings.HasSuffix(name, ".png"):
		a.ContentType, a.Width, a.Height = "image/png", 1920, 1080
	case strings.HasSuffix(name, ".jpg"), strings.HasSuffix(name, ".jpeg"):
		a.ContentType, a.Width, a.Height = "image/jpeg", 1280, 960
	case strings.HasSuffix(name, ".txt"):
		a.ContentType = "text/plain; charset=utf-8"
	case strings.HasSuffix(name, ".mp4"):
		a.ContentType = "video/mp4"
	case strings.HasSuffix(name, ".pdf"):
		a.ContentType = "application/pdf"
	}
	return a
}

func (g *generator) post(p pending) (Message, error) {
	if p.reply {
		if rec := g.recent[p.spec.ChannelID]; len(rec) > 0 {
			p.spec.ReplyTo = rec[g.r.Intn(len(rec))]
		}
	}
	m, err := g.s.Post(p.spec)
	if err != nil && p.spec.ReplyTo != 0 {
		// The message replied to was deleted meanwhile: post it as a plain message.
		p.spec.ReplyTo = 0
		m, err = g.s.Post(p.spec)
	}
	if err != nil {
		return m, err
	}
	rec := append(g.recent[m.ChannelID], m.ID)
	if len(rec) > 20 {
		rec = rec[len(rec)-20:]
	}
	g.recent[m.ChannelID] = rec
	return m, nil
}
