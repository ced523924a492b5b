package bot

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord"
	"github.com/cordstream/cordstream/internal/testio"
)

func testLogger(w *testio.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeOutlet records what it is given.
type fakeOutlet struct {
	mu     sync.Mutex
	got    []chat.Message
	closed bool
}

func (f *fakeOutlet) Publish(_ context.Context, m *chat.Message, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, *m)
	return nil
}

func (f *fakeOutlet) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func guildEvent(id, guild, channel, author, content string) *discord.Event {
	m := chat.Message{Kind: chat.KindCreate, MessageID: id, ChannelID: channel, AuthorID: chat.Ptr(author),
		AuthorName: chat.Ptr("user" + author), Content: chat.Ptr(content), Timestamp: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	if guild != "" {
		m.GuildID = chat.Ptr(guild)
	}
	return &discord.Event{Message: m, Type: discord.EventMessageCreate, ReceivedAt: time.Now()}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
