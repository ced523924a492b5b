package bot

import (
	"fmt"
	"strconv"

	"github.com/cordstream/cordstream/internal/discord"
)

// Filter reasons, used as the "reason" label of the filtered counter.
const (
	FilterBot             = "bot"
	FilterWebhook         = "webhook"
	FilterGuildNotAllowed = "guild_not_allowed"
	FilterGuildExcluded   = "guild_excluded"
	FilterChannelNotAllow = "channel_not_allowed"
	FilterChannelExcluded = "channel_excluded"
)

// Filter decides which messages are published. The zero value drops bot and
// webhook messages; use NewFilter for the configured defaults.
type Filter struct {
	// IncludeBots publishes messages from bot accounts.
	IncludeBots bool
	// IncludeWebhooks publishes messages sent by webhooks.
	IncludeWebhooks bool
	// Guilds, when not empty, is the only guilds published; direct messages
	// (no guild) are then dropped too.
	Guilds Snowflakes
	// ExcludeGuilds are never published.
	ExcludeGuilds Snowflakes
	// Channels, when not empty, is the only channels published.
	Channels Snowflakes
	// ExcludeChannels are never published.
	ExcludeChannels Snowflakes
}

// Snowflakes is a set of Discord ids (snowflakes): the guild and channel
// lists of a Filter.
type Snowflakes map[string]bool

// ParseSnowflakes builds a set of snowflake ids, rejecting anything that is
// not one; what names the list (a flag) in the error. No ids: a nil set.
func ParseSnowflakes(what string, ids []string) (Snowflakes, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	set := make(Snowflakes, len(ids))
	for _, id := range ids {
		if _, err := strconv.ParseUint(id, 10, 64); err != nil {
			return nil, fmt.Errorf("%s: %q is not a Discord id (a number like 81384788765712384; "+
				"enable Developer Mode in Discord, then right-click -> Copy ID)", what, id)
		}
		set[id] = true
	}
	return set, nil
}

// Decide returns "" to publish ev, or the reason it is filtered out. Deletes
// carry no author: only the guild and channel rules apply to them.
func (f *Filter) Decide(ev *discord.Event) string {
	m := &ev.Message
	if m.WebhookID != nil {
		if !f.IncludeWebhooks {
			return FilterWebhook
		}
	} else if ev.AuthorIsBot && !f.IncludeBots {
		return FilterBot
	}
	guild := ""
	if m.GuildID != nil {
		guild = *m.GuildID
	}
	if len(f.Guilds) > 0 && !f.Guilds[guild] {
		return FilterGuildNotAllowed
	}
	if guild != "" && f.ExcludeGuilds[guild] {
		return FilterGuildExcluded
	}
	if len(f.Channels) > 0 && !f.Channels[m.ChannelID] {
		return FilterChannelNotAllow
	}
	if f.ExcludeChannels[m.ChannelID] {
		return FilterChannelExcluded
	}
	return ""
}
