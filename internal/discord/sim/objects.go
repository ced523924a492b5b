package sim

// Discord object shapes the gateway and REST send besides messages:
// the bot user, READY's guild stubs, GUILD_CREATE, channels.

// shardOf is Discord's sharding formula.
func shardOf(guildID ID, numShards int) int {
	if numShards <= 1 {
		return 0
	}
	return int((uint64(guildID) >> 22) % uint64(numShards))
}

func unavailableGuilds(gs []*Guild) []map[string]any {
	out := make([]map[string]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, map[string]any{"id": g.ID, "unavailable": true})
	}
	return out
}

// Application flags for the privileged intents enabled in the portal.
const (
	appFlagGatewayPresence       = 1 << 12
	appFlagGatewayGuildMembers   = 1 << 14
	appFlagGatewayMessageContent = 1 << 18
)

func (s *Server) applicationFlags() int {
	f := 0
	if s.cfg.PrivilegedIntents&IntentGuildPresences != 0 {
		f |= appFlagGatewayPresence
	}
	if s.cfg.PrivilegedIntents&IntentGuildMembers != 0 {
		f |= appFlagGatewayGuildMembers
	}
	if s.cfg.PrivilegedIntents&IntentMessageContent != 0 {
		f |= appFlagGatewayMessageContent
	}
	return f
}

func (s *Server) botUserObject() map[string]any {
	return map[string]any{
		"id": s.botID, "username": s.bot.Username, "global_name": nil, "discriminator": "0",
		"avatar": nil, "bot": true, "verified": true, "mfa_enabled": false, "flags": 0,
		"email": nil, "public_flags": 0,
	}
}

func (s *Server) channelObjectLocked(ch *Channel, withGuildID bool) map[string]any {
	o := map[string]any{
		"id": ch.ID, "type": ch.Type, "flags": 0, "last_message_id": nil,
	}
	if h := s.history[ch.ID]; len(h) > 0 {
		o["last_message_id"] = h[len(h)-1].ID
	}
	if ch.Type == ChannelDM {
		if u, ok := s.users[ch.Recipient]; ok {
			o["recipients"] = []User{*u}
		}
		return o
	}
	if withGuildID {
		o["guild_id"] = ch.GuildID
	}
	overwrites := []map[string]any{}
	if ch.NoAccess {
		overwrites = append(overwrites, map[string]any{"id": ch.GuildID, "type": 0, "allow": "0", "deny": "1024"})
	}
	o["name"] = ch.Name
	o["position"] = 0
	o["permission_overwrites"] = overwrites
	o["parent_id"] = nil
	o["topic"] = nil
	o["nsfw"] = false
	o["rate_limit_per_user"] = 0
	return o
}

func (s *Server) guildCreateLocked(g *Guild) map[string]any {
	channels := []map[string]any{}
	for _, ch := range s.channelsOfLocked(g.ID) {
		channels = append(channels, s.channelObjectLocked(ch, false))
	}
	joined := FormatTimestamp(g.ID.Time())
	return map[string]any{
		"id": g.ID, "name": g.Name, "icon": nil, "splash": nil, "discovery_splash": nil, "banner": nil,
		"description": nil, "owner_id": s.botID, "afk_channel_id": nil, "afk_timeout": 300,
		"verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
		"mfa_level": 0, "nsfw_level": 0, "premium_tier": 0, "premium_subscription_count": 0,
		"preferred_locale": "en-US", "system_channel_id": nil, "system_channel_flags": 0,
		"rules_channel_id": nil, "public_updates_channel_id": nil, "safety_alerts_channel_id": nil,
		"vanity_url_code": nil, "features": []string{}, "application_id": nil, "max_members": 500000,
		"premium_progress_bar_enabled": false, "nsfw": false,
		"roles": []map[string]any{{
			"id": g.ID, "name": "@everyone", "color": 0, "hoist": false, "position": 0,
			"permissions": "1071698660929", "managed": false, "mentionable": false, "flags": 0,
		}},
		"emojis": []any{}, "stickers": []any{},
		"unavailable": false, "large": false, "joined_at": joined, "member_count": len(s.users),
		"channels": channels, "threads": []any{}, "voice_states": []any{}, "presences": []any{},
		"stage_instances": []any{}, "guild_scheduled_events": []any{}, "soundboard_sounds": []any{},
		"members": []map[string]any{{
			"user": s.botUserObject(), "roles": []ID{}, "joined_at": joined, "deaf": false, "mute": false,
			"flags": 0, "pending": false, "nick": nil, "avatar": nil, "premium_since": nil,
			"communication_disabled_until": nil,
		}},
	}
}

func (s *Server) channelsOfLocked(guildID ID) []*Channel { return s.guildChannels[guildID] }
