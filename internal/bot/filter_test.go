package bot

import (
	"strings"
	"testing"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/discord"
)

func TestFilterDecide(t *testing.T) {
	all := Filter{IncludeBots: true, IncludeWebhooks: true}
	set := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	bot := func(ev *discord.Event) *discord.Event {
		ev.AuthorIsBot = true
		ev.Message.AuthorIsBot = true
		return ev
	}
	hook := func(ev *discord.Event) *discord.Event {
		ev.AuthorIsBot = true
		ev.Message.AuthorIsBot = true
		ev.Message.WebhookID = chat.Ptr("77")
		return ev
	}
	del := &discord.Event{Message: chat.Message{Kind: chat.KindDelete, MessageID: "9", ChannelID: "10", GuildID: chat.Ptr("1")}}
	tests := []struct {
		name   string
		filter Filter
		ev     *discord.Event
		want   string
	}{
		{"everything allowed", all, guildEvent("1", "1", "10", "5", "x"), ""},
		{"bot kept when included", all, bot(guildEvent("1", "1", "10", "5", "x")), ""},
		{"bot dropped", Filter{IncludeWebhooks: true}, bot(guildEvent("1", "1", "10", "5", "x")), FilterBot},
		{"webhook dropped", Filter{IncludeBots: true}, hook(guildEvent("1", "1", "10", "5", "x")), FilterWebhook},
		{"webhook kept without bots", Filter{IncludeWebhooks: true}, hook(guildEvent("1", "1", "10", "5", "x")), ""},
		{"guild allowed", Filter{IncludeBots: true, Guilds: set("1")}, guildEvent("1", "1", "10", "5", "x"), ""},
		{"guild not allowed", Filter{IncludeBots: true, Guilds: set("2")}, guildEvent("1", "1", "10", "5", "x"), FilterGuildNotAllowed},
		{"DM with a guild allow list", Filter{Guilds: set("1")}, guildEvent("1", "", "10", "5", "x"), FilterGuildNotAllowed},
		{"DM with a guild deny list", Filter{ExcludeGuilds: set("1")}, guildEvent("1", "", "10", "5", "x"), ""},
		{"guild excluded", Filter{ExcludeGuilds: set("1")}, guildEvent("1", "1", "10", "5", "x"), FilterGuildExcluded},
		{"channel allowed", Filter{Channels: set("10")}, guildEvent("1", "1", "10", "5", "x"), ""},
		{"channel not allowed", Filter{Channels: set("11")}, guildEvent("1", "1", "10", "5", "x"), FilterChannelNotAllow},
		{"channel excluded", Filter{ExcludeChannels: set("10")}, guildEvent("1", "1", "10", "5", "x"), FilterChannelExcluded},
		{"delete passes author rules", Filter{}, del, ""},
		{"delete in an excluded guild", Filter{ExcludeGuilds: set("1")}, del, FilterGuildExcluded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.filter.Decide(tt.ev); got != tt.want {
				t.Errorf("Decide = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseSnowflakes(t *testing.T) {
	s, err := ParseSnowflakes("--guilds", []string{"81384788765712384", "1"})
	if err != nil || !s["1"] || !s["81384788765712384"] || len(s) != 2 {
		t.Errorf("ParseSnowflakes = %v, %v", s, err)
	}
	for _, bad := range []string{"general", "-1", "1.5", "#123"} {
		_, err := ParseSnowflakes("--channels", []string{bad})
		if err == nil || !strings.Contains(err.Error(), "--channels") || !strings.Contains(err.Error(), "Copy ID") {
			t.Errorf("ParseSnowflakes(%q) err = %v, want one naming the flag and how to copy an id", bad, err)
		}
	}
	if s, err := ParseSnowflakes("x", nil); s != nil || err != nil {
		t.Errorf("ParseSnowflakes(nil) = %v, %v", s, err)
	}
}
