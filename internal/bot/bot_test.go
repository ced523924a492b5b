package bot

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/testio"
)

func TestHandleCountsEveryOutcome(t *testing.T) {
	out := &fakeOutlet{}
	b := New(Config{Filter: Filter{IncludeWebhooks: true, ExcludeChannels: map[string]bool{"99": true}}, Content: ContentHash}, out)
	bot := guildEvent("2", "1", "10", "6", "beep")
	bot.AuthorIsBot = true
	bad := &discord.Event{Type: discord.EventMessageCreate, Err: errors.New("no author"), Message: chat.Message{MessageID: "3"}}
	evs := []*discord.Event{
		guildEvent("1", "1", "10", "5", "hello"),
		bot,
		guildEvent("4", "1", "99", "5", "excluded channel"),
		bad,
	}
	for _, ev := range evs {
		if err := b.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	c := b.Metrics().Counts()
	if c.Received != 4 || c.Filtered != 2 || c.Failed != 1 {
		t.Errorf("counts = %+v, want received 4, filtered 2, failed 1", c)
	}
	if len(out.got) != 1 || out.got[0].MessageID != "1" {
		t.Fatalf("outlet got %+v, want message 1 only", out.got)
	}
	if got := *out.got[0].Content; !strings.HasPrefix(got, "sha256:") {
		t.Errorf("content = %q, want it hashed", got)
	}
	if *evs[0].Message.Content != "hello" {
		t.Error("Handle changed the caller's event")
	}
}

func TestRunClosesOutletAndReturnsFeedError(t *testing.T) {
	out := &fakeOutlet{}
	b := New(Config{}, out)
	want := errors.New("fatal close")
	err := b.Run(context.Background(), feedFunc(func(context.Context) error { return want }))
	if !errors.Is(err, want) {
		t.Errorf("Run = %v, want %v", err, want)
	}
	if !out.closed {
		t.Error("outlet not closed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(Config{}, &fakeOutlet{}).Run(ctx, feedFunc(func(ctx context.Context) error { return ctx.Err() })); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
}

type feedFunc func(context.Context) error

func (f feedFunc) Run(ctx context.Context) error { return f(ctx) }

func TestContentWatch(t *testing.T) {
	empty := func(id string) *discord.Event { return guildEvent(id, "1", "10", "5", "") }
	tests := []struct {
		name string
		evs  func() []*discord.Event
		warn bool
	}{
		{"twenty empty guild messages", func() []*discord.Event {
			var out []*discord.Event
			for i := range 20 {
				out = append(out, empty(string(rune('a'+i))))
			}
			return out
		}, true},
		{"nineteen are not enough", func() []*discord.Event {
			var out []*discord.Event
			for i := range 19 {
				out = append(out, empty(string(rune('a'+i))))
			}
			return out
		}, false},
		{"one message with content clears it", func() []*discord.Event {
			out := []*discord.Event{guildEvent("x", "1", "10", "5", "hi")}
			for i := range 30 {
				out = append(out, empty(string(rune('a'+i))))
			}
			return out
		}, false},
		{"attachments count as content", func() []*discord.Event {
			att := empty("x")
			att.HasBody = true
			out := []*discord.Event{att}
			for i := range 30 {
				out = append(out, empty(string(rune('a'+i))))
			}
			return out
		}, false},
		{"DMs, system messages, mentions and own messages are ignored", func() []*discord.Event {
			var out []*discord.Event
			for i := range 10 {
				dm := guildEvent(string(rune('a'+i)), "", "10", "5", "")
				join := empty(string(rune('k' + i)))
				join.MessageType = 7
				mention := empty(string(rune('A' + i)))
				mention.MentionsSelf = true
				own := empty(string(rune('K' + i)))
				own.FromSelf = true
				out = append(out, dm, join, mention, own)
			}
			return out
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &testio.Buffer{}
			b := New(Config{Log: testLogger(logs)}, &fakeOutlet{})
			for _, ev := range tt.evs() {
				b.Handle(context.Background(), ev)
			}
			n := strings.Count(logs.String(), "Message Content intent is probably missing")
			want := 0
			if tt.warn {
				want = 1
			}
			if n != want {
				t.Errorf("warnings = %d, want %d; logs:\n%s", n, want, logs)
			}
			if got := b.Metrics().noContent.Value(); got != float64(want) {
				t.Errorf("content-missing gauge = %v, want %d", got, want)
			}
		})
	}
}
