package discord

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
)

// Permission bits (Discord documentation, permissions.mdx).
const (
	PermAdministrator      uint64 = 1 << 3
	PermViewChannel        uint64 = 1 << 10
	PermReadMessageHistory uint64 = 1 << 16
	permAll                uint64 = ^uint64(0)
)

// Channel types that hold messages of their own.
const (
	ChannelGuildText         = 0
	ChannelDM                = 1
	ChannelGuildVoice        = 2
	ChannelGroupDM           = 3
	ChannelGuildAnnouncement = 5
	ChannelAnnouncementThrd  = 10
	ChannelPublicThread      = 11
	ChannelPrivateThread     = 12
	ChannelGuildStageVoice   = 13
)

// hasMessages reports whether a channel type carries messages itself
// (categories, forums and media channels do not; their threads do).
func hasMessages(typ int) bool {
	switch typ {
	case ChannelGuildText, ChannelDM, ChannelGuildVoice, ChannelGroupDM, ChannelGuildAnnouncement,
		ChannelAnnouncementThrd, ChannelPublicThread, ChannelPrivateThread, ChannelGuildStageVoice:
		return true
	}
	return false
}

// ReadyInfo describes a new Gateway session (READY): Discord replays
// nothing that was sent before it, so whatever arrived while the shard had
// no session is missing.
type ReadyInfo struct {
	Shard, ShardCount int
	SelfID            string   // the bot's user id
	GuildIDs          []string // the guilds of this shard; each follows as a GUILD_CREATE
	// StreamLostAt, for a session that follows one Discord ended in this
	// process, is when the last frame of that session was read: nothing
	// sent after it was delivered. Zero for the first session of a shard.
	StreamLostAt time.Time
}

// GuildInfo is a GUILD_CREATE: a guild becoming available to a shard,
// with the channels that hold messages.
type GuildInfo struct {
	Shard    int
	ID, Name string
	// InReady says the guild was listed in the session's READY (the
	// initial burst, or its return after an outage) rather than joined
	// during the session.
	InReady  bool
	Channels []ChannelInfo
	// Dropped counts the channels beyond MaxGuildChannels, left out of
	// Channels (no guild of Discord's has that many).
	Dropped int
}

// Readability of a channel for the bot, from the guild's roles and the
// channel's permission overwrites.
const (
	ReadUnknown   = iota // the bot's own member was not in GUILD_CREATE
	ReadOK               // View Channel and Read Message History
	ReadNoView           // View Channel missing: the bot cannot see the channel
	ReadNoHistory        // Read Message History missing: no backfill possible
)

// ChannelInfo is a channel (or active thread) of a guild that holds
// messages.
type ChannelInfo struct {
	ID, Name      string
	Type          int
	ParentID      string // threads: the channel they belong to
	LastMessageID string // "" when the channel never had a message
	Read          int    // ReadUnknown, ReadOK, ReadNoView, ReadNoHistory
}

type apiOverwrite struct {
	ID    string `json:"id"`
	Type  int    `json:"type"` // 0 role, 1 member
	Allow string `json:"allow"`
	Deny  string `json:"deny"`
}

type apiChannel struct {
	ID                   string         `json:"id"`
	Type                 int            `json:"type"`
	Name                 string         `json:"name"`
	ParentID             *string        `json:"parent_id"`
	LastMessageID        *string        `json:"last_message_id"`
	PermissionOverwrites []apiOverwrite `json:"permission_overwrites"`
}

type apiGuildCreate struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Unavailable bool   `json:"unavailable"`
	OwnerID     string `json:"owner_id"`
	Roles       []struct {
		ID          string `json:"id"`
		Permissions string `json:"permissions"`
	} `json:"roles"`
	Members []struct {
		User  *apiUser `json:"user"`
		Roles []string `json:"roles"`
	} `json:"members"`
	Channels []apiChannel `json:"channels"`
	Threads  []apiChannel `json:"threads"`
}

func parsePerm(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// parseGuildCreate reads a GUILD_CREATE payload; ok is false for an
// unavailable guild or a payload that is not one.
func parseGuildCreate(d json.RawMessage, selfID string) (GuildInfo, bool) {
	var g apiGuildCreate
	if err := json.Unmarshal(d, &g); err != nil || g.ID == "" || g.Unavailable {
		return GuildInfo{}, false
	}
	info := GuildInfo{ID: g.ID, Name: g.Name}
	rolePerms := map[string]uint64{}
	for _, r := range g.Roles {
		rolePerms[r.ID] = parsePerm(r.Permissions)
	}
	var myRoles []string
	known := false
	for _, m := range g.Members {
		if m.User != nil && selfID != "" && m.User.ID == selfID {
			myRoles, known = m.Roles, true
		}
	}
	// Base permissions (permissions.mdx, compute_base_permissions).
	var base uint64
	switch {
	case selfID != "" && g.OwnerID == selfID:
		base, known = permAll, true
	case known:
		base = rolePerms[g.ID] // @everyone has the guild's id
		for _, r := range myRoles {
			base |= rolePerms[r]
		}
		if base&PermAdministrator != 0 {
			base = permAll
		}
	}
	perms := map[string]uint64{}
	overwrite := func(c apiChannel) uint64 {
		if base == permAll {
			return permAll
		}
		p := base
		ow := map[string]apiOverwrite{}
		for _, o := range c.PermissionOverwrites {
			ow[o.ID] = o
		}
		if o, ok := ow[g.ID]; ok {
			p &^= parsePerm(o.Deny)
			p |= parsePerm(o.Allow)
		}
		var allow, deny uint64
		for _, r := range myRoles {
			if o, ok := ow[r]; ok && o.Type == 0 {
				allow |= parsePerm(o.Allow)
				deny |= parsePerm(o.Deny)
			}
		}
		p &^= deny
		p |= allow
		if o, ok := ow[selfID]; ok && o.Type == 1 {
			p &^= parsePerm(o.Deny)
			p |= parsePerm(o.Allow)
		}
		return p
	}
	readability := func(p uint64) int {
		switch {
		case !known:
			return ReadUnknown
		case p&PermViewChannel == 0:
			return ReadNoView
		case p&PermReadMessageHistory == 0:
			return ReadNoHistory
		}
		return ReadOK
	}
	add := func(ci ChannelInfo) {
		if len(info.Channels) >= MaxGuildChannels {
			info.Dropped++
			return
		}
		info.Channels = append(info.Channels, ci)
	}
	for _, c := range g.Channels {
		if len(perms) >= MaxGuildChannels {
			info.Dropped++
			continue
		}
		p := overwrite(c)
		perms[c.ID] = p
		if !hasMessages(c.Type) {
			continue
		}
		add(channelInfo(c, readability(p)))
	}
	for _, th := range g.Threads {
		if !hasMessages(th.Type) {
			continue
		}
		// Threads take their parent channel's permissions.
		read := ReadUnknown
		if th.ParentID != nil {
			if p, ok := perms[*th.ParentID]; ok {
				read = readability(p)
			}
		}
		add(channelInfo(th, read))
	}
	return info, true
}

func channelInfo(c apiChannel, read int) ChannelInfo {
	ci := ChannelInfo{ID: c.ID, Name: c.Name, Type: c.Type, Read: read}
	if c.ParentID != nil {
		ci.ParentID = *c.ParentID
	}
	if c.LastMessageID != nil {
		ci.LastMessageID = *c.LastMessageID
	}
	return ci
}

// MaxReadyGuilds bounds the guilds taken from one READY: Discord closes a
// shard that would hold more than 2,500 (4011, sharding required).
const MaxReadyGuilds = 10000

// parseReadyGuilds returns the guild ids listed in READY, at most
// MaxReadyGuilds of them.
func parseReadyGuilds(raw []json.RawMessage) []string {
	var ids []string
	for _, g := range raw[:min(len(raw), MaxReadyGuilds)] {
		var x struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(g, &x) == nil && x.ID != "" {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

// ShardOf is Discord's sharding formula: the shard that receives a guild's
// events ((guild_id >> 22) % shards); direct messages go to shard 0.
func ShardOf(guildID string, shards int) int {
	if shards <= 1 || guildID == "" {
		return 0
	}
	n, err := parseSnowflake(guildID)
	if err != nil {
		return 0
	}
	return int((n >> 22) % uint64(shards))
}

// MapRESTMessage turns a message object from the REST API (e.g. from
// ChannelMessages) into a create event marked Backfill. REST message
// objects carry no guild_id: guildID (nil for a DM) comes from the caller,
// who knows the channel. selfID is the bot's user id ("" if unknown).
func MapRESTMessage(raw json.RawMessage, guildID *string, selfID string) Event {
	var m apiMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return Event{Type: EventMessageCreate, Backfill: true, Err: err}
	}
	if m.GuildID == nil && guildID != nil {
		g := *guildID
		m.GuildID = &g
	}
	ev, err := mapMessage(chat.KindCreate, &m, selfID)
	ev.Type, ev.Err, ev.Backfill = EventMessageCreate, err, true
	return ev
}
