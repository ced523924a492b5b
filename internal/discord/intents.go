package discord

import "strings"

// Intents is the Gateway intents bit set sent in IDENTIFY.
type Intents uint64

// The intents cordstream uses (exact bits from Discord's documentation).
const (
	IntentGuilds         Intents = 1 << 0
	IntentGuildMessages  Intents = 1 << 9
	IntentDirectMessages Intents = 1 << 12
	// IntentMessageContent is privileged: it must be enabled for the
	// application in the Developer Portal, or Discord closes with 4014.
	IntentMessageContent Intents = 1 << 15
)

// DefaultIntents are GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT (33281).
const DefaultIntents = IntentGuilds | IntentGuildMessages | IntentMessageContent

// String lists the intent names, e.g. "GUILDS|GUILD_MESSAGES".
func (i Intents) String() string {
	names := []struct {
		bit  Intents
		name string
	}{
		{IntentGuilds, "GUILDS"},
		{IntentGuildMessages, "GUILD_MESSAGES"},
		{IntentDirectMessages, "DIRECT_MESSAGES"},
		{IntentMessageContent, "MESSAGE_CONTENT"},
	}
	var parts []string
	rest := i
	for _, n := range names {
		if i&n.bit != 0 {
			parts = append(parts, n.name)
			rest &^= n.bit
		}
	}
	if rest != 0 {
		parts = append(parts, "other")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}
