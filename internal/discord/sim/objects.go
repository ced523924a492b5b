package sim

import (
	"encoding/json"
	"strconv"
)

// Discord object shapes the gateway and REST send besides messages:
// the bot user, READY's guild stubs, GUILD_CREATE, channels.

// shardOf is Discord's sharding formula.
func shardOf(guildID ID, numShards int) int {
	if numShards <= 1 {
		return 0
	}
	return int((uint64(guildID) >> 22) % uint64(numShards))
}

type unavailableGuild struct {
	ID          ID   `json:"id"`
	Unavailable bool `json:"unavailable"`
}

func unavailableGuilds(gs []*Guild) []unavailableGuild {
	out := make([]unavailableGuild, len(gs))
	for i, g := range gs {
		out[i] = unavailableGuild{ID: g.ID, Unavailable: true}
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

// appendGuildCreateLocked appends GUILD_CREATE's data for g: the same
// object as guildCreateLocked, written directly (a bot in 100,000 guilds
// gets 100,000 of them at start; encoding maps by reflection would hold
// the Server's lock for seconds). botUser is botUserObject's JSON.
func (s *Server) appendGuildCreateLocked(b []byte, g *Guild, botUser []byte) []byte {
	id := g.ID.String()
	joined := FormatTimestamp(g.ID.Time())
	name, _ := json.Marshal(g.Name)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","name":`...)
	b = append(b, name...)
	b = append(b, `,"icon":null,"splash":null,"discovery_splash":null,"banner":null,"description":null,"owner_id":"`...)
	b = append(b, s.botID.String()...)
	b = append(b, `","afk_channel_id":null,"afk_timeout":300,"verification_level":0,"default_message_notifications":0,`+
		`"explicit_content_filter":0,"mfa_level":0,"nsfw_level":0,"premium_tier":0,"premium_subscription_count":0,`+
		`"preferred_locale":"en-US","system_channel_id":null,"system_channel_flags":0,"rules_channel_id":null,`+
		`"public_updates_channel_id":null,"safety_alerts_channel_id":null,"vanity_url_code":null,"features":[],`+
		`"application_id":null,"max_members":500000,"premium_progress_bar_enabled":false,"nsfw":false,"roles":[{"id":"`...)
	b = append(b, id...)
	b = append(b, `","name":"@everyone","color":0,"hoist":false,"position":0,"permissions":"1071698660929","managed":false,`+
		`"mentionable":false,"flags":0}],"emojis":[],"stickers":[],"unavailable":false,"large":false,"joined_at":"`...)
	b = append(b, joined...)
	b = append(b, `","member_count":`...)
	b = strconv.AppendInt(b, int64(len(s.users)), 10)
	b = append(b, `,"channels":[`...)
	for i, ch := range s.channelsOfLocked(g.ID) {
		if i > 0 {
			b = append(b, ',')
		}
		b = s.appendGuildChannelLocked(b, ch)
	}
	b = append(b, `],"threads":[],"voice_states":[],"presences":[],"stage_instances":[],"guild_scheduled_events":[],`+
		`"soundboard_sounds":[],"members":[{"user":`...)
	b = append(b, botUser...)
	b = append(b, `,"roles":[],"joined_at":"`...)
	b = append(b, joined...)
	b = append(b, `","deaf":false,"mute":false,"flags":0,"pending":false,"nick":null,"avatar":null,"premium_since":null,`+
		`"communication_disabled_until":null}]}`...)
	return b
}

// appendGuildChannelLocked appends channelObjectLocked(ch, false) for a
// guild channel.
func (s *Server) appendGuildChannelLocked(b []byte, ch *Channel) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, ch.ID.String()...)
	b = append(b, `","type":`...)
	b = strconv.AppendInt(b, int64(ch.Type), 10)
	b = append(b, `,"flags":0,"last_message_id":`...)
	if h := s.history[ch.ID]; len(h) > 0 {
		b = append(b, '"')
		b = append(b, h[len(h)-1].ID.String()...)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	name, _ := json.Marshal(ch.Name)
	b = append(b, `,"name":`...)
	b = append(b, name...)
	b = append(b, `,"position":0,"permission_overwrites":[`...)
	if ch.NoAccess {
		b = append(b, `{"id":"`...)
		b = append(b, ch.GuildID.String()...)
		b = append(b, `","type":0,"allow":"0","deny":"1024"}`...)
	}
	return append(b, `],"parent_id":null,"topic":null,"nsfw":false,"rate_limit_per_user":0}`...)
}
