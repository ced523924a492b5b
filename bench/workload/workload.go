// Package workload generates realistic chat.Message traffic for the
// benchmarks: a fixed population of authors whose activity is skewed
// (Zipf: a few authors write most messages), guilds and channels, message
// texts whose lengths follow Discord's long-tailed shape (mostly short, a
// few up to the 2,000-character limit, some empty attachment-only messages,
// some in non-Latin scripts and emoji), and event times that advance at a
// fixed rate, slightly out of order, with a small share of late messages.
//
// A Generator is deterministic: the same Config gives the same sequence.
package workload

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
)

// Config shapes the traffic. Zero fields take the defaults noted.
type Config struct {
	// Seed makes the sequence reproducible (default 1).
	Seed uint64
	// Authors is the number of distinct authors (default 10,000).
	Authors int
	// Guilds and ChannelsPerGuild shape the world (defaults 50 and 8).
	Guilds, ChannelsPerGuild int
	// EventRate is messages per second of event time (default 5,000): N
	// messages span N/EventRate seconds of message_timestamp.
	EventRate float64
	// Start is the event time of the first message (default 2025-11-07
	// 18:00:00 UTC).
	Start time.Time
	// Disorder: each event time is up to this much earlier than its place in
	// the sequence (default 2 s), so messages arrive slightly out of order.
	Disorder time.Duration
	// LateFraction of messages are 1 to 3 minutes late (default 0.001):
	// some of their windows are already closed (late rows dropped).
	// Negative: none.
	LateFraction float64
}

func (c *Config) setDefaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Authors <= 0 {
		c.Authors = 10_000
	}
	if c.Guilds <= 0 {
		c.Guilds = 50
	}
	if c.ChannelsPerGuild <= 0 {
		c.ChannelsPerGuild = 8
	}
	if c.EventRate <= 0 {
		c.EventRate = 5_000
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC)
	}
	if c.Disorder <= 0 {
		c.Disorder = 2 * time.Second
	}
	if c.LateFraction == 0 {
		c.LateFraction = 0.001
	}
}

// Author is one member of the population.
type Author struct {
	ID, Name   string
	GlobalName *string // nil: never set a display name
	Bot        bool
}

// Channel is a text channel (GuildID set) or a DM channel (GuildID nil).
type Channel struct {
	ID      string
	GuildID *string
}

// Generator produces messages. It is not safe for concurrent use.
type Generator struct {
	cfg      Config
	r        *rand.Rand
	zipf     *rand.Zipf
	rank     []int // zipf rank -> author index
	authors  []Author
	webhooks []Author
	channels []Channel
	dms      []Channel
	texts    []string
	n        int64 // messages generated
	start    int64 // Unix microseconds
}

// Snowflakes count milliseconds from Discord's epoch (2015-01-01).
const discordEpochMs = 1420070400000

// New builds a generator.
func New(cfg Config) *Generator {
	cfg.setDefaults()
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6f72647374726561))
	g := &Generator{cfg: cfg, r: r, start: cfg.Start.UnixMicro()}
	base := uint64(cfg.Start.UnixMilli()-discordEpochMs-400*24*3600*1000) << 22
	id := func() string { base += 1 + r.Uint64N(1<<20); return strconv.FormatUint(base, 10) }

	for i := range cfg.Authors {
		a := Author{ID: id(), Name: userName(r, i)}
		if r.IntN(10) < 7 {
			gn := displayName(r)
			a.GlobalName = &gn
		}
		if r.IntN(100) < 2 { // a few bot accounts
			a.Bot, a.Name, a.GlobalName = true, a.Name+"bot", nil
		}
		g.authors = append(g.authors, a)
	}
	for i := range 20 {
		g.webhooks = append(g.webhooks, Author{ID: id(), Name: []string{"GitHub", "RSS Feed", "Alerts", "Spidey Bot"}[i%4], Bot: true})
	}
	for range cfg.Guilds {
		gid := id()
		for range cfg.ChannelsPerGuild {
			g.channels = append(g.channels, Channel{ID: id(), GuildID: &gid})
		}
	}
	for range 200 {
		g.dms = append(g.dms, Channel{ID: id()})
	}
	g.rank = r.Perm(cfg.Authors)
	if cfg.Authors > 1 {
		g.zipf = rand.NewZipf(r, 1.1, 4, uint64(cfg.Authors-1))
	}
	g.texts = make([]string, 8192)
	for i := range g.texts {
		g.texts[i] = text(r)
	}
	return g
}

// Authors returns the population (do not modify it).
func (g *Generator) Authors() []Author { return g.authors }

// Channels returns the guild text channels (do not modify them).
func (g *Generator) Channels() []Channel { return g.channels }

// PickAuthor returns the index in Authors of the next message's author,
// drawn with the skewed activity.
func (g *Generator) PickAuthor() int {
	if g.zipf == nil {
		return 0
	}
	return g.rank[g.zipf.Uint64()]
}

// PickChannel returns the index in Channels of a channel, uniformly.
func (g *Generator) PickChannel() int { return g.r.IntN(len(g.channels)) }

// Text returns a message text with the realistic length distribution.
func (g *Generator) Text() string { return g.texts[g.r.IntN(len(g.texts))] }

// Next fills m with the next message (a create). The strings m points to
// are shared with the generator and other messages: do not modify them.
func (g *Generator) Next(m *chat.Message) {
	i := g.n
	g.n++
	ts := g.start + int64(float64(i)*1e6/g.cfg.EventRate)
	ts -= g.r.Int64N(int64(g.cfg.Disorder/time.Microsecond) + 1)
	if g.cfg.LateFraction > 0 && g.r.Float64() < g.cfg.LateFraction {
		ts -= int64(time.Minute/time.Microsecond) + g.r.Int64N(int64(2*time.Minute/time.Microsecond))
	}
	ms := ts / 1000
	var a *Author
	var ch *Channel
	var webhook *string
	switch x := g.r.IntN(1000); {
	case x < 10: // webhook messages
		a = &g.webhooks[g.r.IntN(len(g.webhooks))]
		webhook = &a.ID
		ch = &g.channels[g.r.IntN(len(g.channels))]
	case x < 40: // direct messages to the bot
		a = &g.authors[g.PickAuthor()]
		ch = &g.dms[g.r.IntN(len(g.dms))]
	default:
		a = &g.authors[g.PickAuthor()]
		ch = &g.channels[g.r.IntN(len(g.channels))]
	}
	*m = chat.Message{
		Kind:             chat.KindCreate,
		MessageID:        g.snowflake(ms),
		GuildID:          ch.GuildID,
		ChannelID:        ch.ID,
		AuthorID:         &a.ID,
		AuthorName:       &a.Name,
		AuthorGlobalName: a.GlobalName,
		AuthorIsBot:      a.Bot,
		WebhookID:        webhook,
		Content:          &g.texts[g.r.IntN(len(g.texts))],
		Timestamp:        time.UnixMilli(ms).UTC(),
	}
}

// snowflake returns a unique message id for a message sent at ms: its
// timestamp bits, and the message's number as the increment. Event times go
// back and forth (disorder), so an increment reset per millisecond would
// repeat ids; message numbers of messages in the same millisecond are at
// most the disorder apart, far less than the 2^22 the increment wraps at.
func (g *Generator) snowflake(ms int64) string {
	return strconv.FormatUint(uint64(ms-discordEpochMs)<<22|uint64(g.n&(1<<22-1)), 10)
}

var (
	syllables = []string{"ka", "ri", "mo", "zen", "lu", "ta", "shi", "no", "vex", "dra", "el", "qu", "py", "ro", "mi", "xo", "an", "be", "gu", "yo"}
	nameWords = []string{"dark", "pixel", "neo", "cat", "wolf", "fox", "moon", "star", "byte", "ghost", "lazy", "cool", "tiny", "mega"}
	displays  = []string{"さくら🌸", "李小龍", "Zoë", "Ørjan", "José 🌵", "김민준", "Абдулла", "محمد", "ｆｕｌｌｗｉｄｔｈ", "Ñoño", "प्रिया", "Łukasz", "שרה", "Γιώργος", "🦊 Fox"}
	words     = strings.Fields(`the a to and I you it is that of in for on this was with my have just but so be
		not are lol what do can get like game server anyone know think one now time good yeah ok new
		build fix bug help please thanks code run kafka window stream message channel role bot voice
		tonight tomorrow working broken update patch release discord here there why how when who`)
	extras = []string{"😂", "👍", "🔥", "❤️", "🎉", "👀", "🤔", "おはよう", "ありがとう", "谢谢", "你好", "안녕", "привет",
		"¿qué?", "ça va", "straße", "\"quoted\"", "back\\slash", "<@123456789012345678>", "https://example.com/x?a=1&b=2"}
)

func userName(r *rand.Rand, i int) string {
	var b strings.Builder
	switch r.IntN(3) {
	case 0:
		b.WriteString(nameWords[r.IntN(len(nameWords))])
		b.WriteString(nameWords[r.IntN(len(nameWords))])
	default:
		for range 2 + r.IntN(3) {
			b.WriteString(syllables[r.IntN(len(syllables))])
		}
	}
	if r.IntN(2) == 0 {
		b.WriteByte("_."[r.IntN(2)])
	}
	// The index keeps names unique.
	fmt.Fprintf(&b, "%d", i)
	return b.String()
}

func displayName(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return displays[r.IntN(len(displays))]
	}
	s := nameWords[r.IntN(len(nameWords))]
	return strings.ToUpper(s[:1]) + s[1:] + " " + syllables[r.IntN(len(syllables))]
}

// text draws a message text: 6% empty (attachment only); otherwise a
// log-normal length with a median of 40 characters (mean about 65),
// capped at Discord's 2,000; one in six carries emoji or non-Latin text.
func text(r *rand.Rand) string {
	if r.IntN(100) < 6 {
		return ""
	}
	n := int(math.Exp(math.Log(40) + 1.0*r.NormFloat64()))
	n = max(1, min(n, 2000))
	var b strings.Builder
	rich := r.IntN(6) == 0
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if rich && r.IntN(4) == 0 {
			b.WriteString(extras[r.IntN(len(extras))])
		} else {
			b.WriteString(words[r.IntN(len(words))])
		}
		if r.IntN(50) == 0 {
			b.WriteString(".\n")
		}
	}
	s := b.String()
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}
