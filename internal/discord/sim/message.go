package sim

import (
	"encoding/json"
	"time"
)

// Message types the simulator produces on its own (any other Discord type
// can be given in MessageSpec.Type).
const (
	TypeDefault    = 0
	TypeMemberJoin = 7
	TypeReply      = 19
)

// Channel types.
const (
	ChannelGuildText = 0
	ChannelDM        = 1
)

// User is a Discord user as the simulator knows it. A webhook is a User with
// Webhook set: its messages carry webhook_id = its ID and no member.
type User struct {
	ID         ID
	Username   string
	GlobalName string // empty: JSON null (users who never set a display name, bots, webhooks)
	Avatar     string // empty: JSON null
	Bot        bool
	System     bool
	Webhook    bool
}

// Guild is a server.
type Guild struct {
	ID   ID
	Name string
}

// Channel is a guild text channel or a DM channel.
type Channel struct {
	ID      ID
	GuildID ID // zero for a DM
	Name    string
	Type    int // ChannelGuildText or ChannelDM
	// Recipient is the other user of a DM channel.
	Recipient ID
	// NoAccess hides the channel from the bot: REST answers 403 Missing Access
	// and no gateway events are sent for it.
	NoAccess bool
}

// Attachment is a file attached to a message.
type Attachment struct {
	ID          ID
	Filename    string
	Size        int
	ContentType string
	Width       int // images only
	Height      int
}

// Embed is a rich embed (the fields the simulator fills).
type Embed struct {
	Title       string
	Description string
	URL         string
}

// MessageSpec describes a message to Post.
type MessageSpec struct {
	ChannelID ID
	AuthorID  ID // a user (or webhook) added with AddUser/AddWebhook, or the bot itself
	Content   string
	// Type is the Discord message type; 0 becomes TypeReply when ReplyTo is set.
	Type int
	// ReplyTo is a message in the same channel this one answers.
	ReplyTo     ID
	Mentions    []ID
	Attachments []Attachment // IDs are assigned when zero
	Embeds      []Embed
	Flags       int
	// Time is the creation time; zero means Config.Clock(). Snowflake ids are
	// strictly increasing, so a Time behind the last message is moved forward
	// to it (the returned Message has the time actually used).
	Time time.Time
}

// Message is a message as posted. Its JSON form (MarshalJSON) is Discord's
// REST message object; gateway events add guild_id, member and channel_type.
type Message struct {
	ID              ID
	ChannelID       ID
	GuildID         ID // zero for DMs
	Author          User
	Content         string
	Timestamp       time.Time
	EditedTimestamp time.Time // zero: never edited
	Type            int
	Mentions        []User
	Attachments     []Attachment
	Embeds          []Embed
	Flags           int
	// Reference is the message replied to (type 19), zero otherwise.
	Reference ID
	// Referenced is a copy of the replied-to message as it was when this one was posted.
	Referenced *Message
}

// WebhookID returns the webhook id of a webhook message, zero otherwise.
func (m Message) WebhookID() ID {
	if m.Author.Webhook {
		return m.Author.ID
	}
	return 0
}

// FormatTimestamp formats t the way Discord does: ISO 8601 with
// microseconds and an explicit +00:00 offset, e.g. 2017-07-11T17:27:24.250000+00:00.
func FormatTimestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

// Wire shapes.

type wireUser struct {
	ID            ID      `json:"id"`
	Username      string  `json:"username"`
	GlobalName    *string `json:"global_name"`
	Discriminator string  `json:"discriminator"`
	Avatar        *string `json:"avatar"`
	PublicFlags   int     `json:"public_flags"`
	Flags         int     `json:"flags"`
	Bot           bool    `json:"bot,omitempty"`
	System        bool    `json:"system,omitempty"`
	Member        any     `json:"member,omitempty"` // mentions in guild gateway events
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (u User) wire() wireUser {
	w := wireUser{
		ID:            u.ID,
		Username:      u.Username,
		GlobalName:    nullable(u.GlobalName),
		Discriminator: "0",
		Avatar:        nullable(u.Avatar),
		Bot:           u.Bot || u.Webhook,
		System:        u.System,
	}
	if u.Webhook {
		w.Discriminator = "0000"
		w.GlobalName = nil
	}
	return w
}

// MarshalJSON encodes the user as Discord's user object.
func (u User) MarshalJSON() ([]byte, error) { return json.Marshal(u.wire()) }

type wireMember struct {
	Roles                      []ID    `json:"roles"`
	JoinedAt                   string  `json:"joined_at"`
	Nick                       *string `json:"nick"`
	Avatar                     *string `json:"avatar"`
	PremiumSince               *string `json:"premium_since"`
	Deaf                       bool    `json:"deaf"`
	Mute                       bool    `json:"mute"`
	Flags                      int     `json:"flags"`
	Pending                    bool    `json:"pending"`
	CommunicationDisabledUntil *string `json:"communication_disabled_until"`
}

func member(joined time.Time) wireMember {
	return wireMember{Roles: []ID{}, JoinedAt: FormatTimestamp(joined)}
}

type wireAttachment struct {
	ID          ID     `json:"id"`
	Filename    string `json:"filename"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url"`
	ContentType string `json:"content_type,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
}

type wireEmbed struct {
	Type        string `json:"type"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
}

type wireReference struct {
	Type      int `json:"type"`
	MessageID ID  `json:"message_id"`
	ChannelID ID  `json:"channel_id"`
	GuildID   ID  `json:"guild_id,omitzero"`
}

type wireMessage struct {
	// gateway-only extras first, as Discord sends them in MESSAGE_CREATE
	GuildID     ID   `json:"guild_id,omitzero"`
	Member      any  `json:"member,omitempty"`
	ChannelType *int `json:"channel_type,omitempty"`

	ID                ID               `json:"id"`
	ChannelID         ID               `json:"channel_id"`
	Author            wireUser         `json:"author"`
	Content           string           `json:"content"`
	Timestamp         string           `json:"timestamp"`
	EditedTimestamp   *string          `json:"edited_timestamp"`
	TTS               bool             `json:"tts"`
	MentionEveryone   bool             `json:"mention_everyone"`
	Mentions          []wireUser       `json:"mentions"`
	MentionRoles      []ID             `json:"mention_roles"`
	Attachments       []wireAttachment `json:"attachments"`
	Embeds            []wireEmbed      `json:"embeds"`
	Components        []any            `json:"components"`
	Pinned            bool             `json:"pinned"`
	WebhookID         ID               `json:"webhook_id,omitzero"`
	Type              int              `json:"type"`
	Flags             int              `json:"flags"`
	MessageReference  *wireReference   `json:"message_reference,omitempty"`
	ReferencedMessage *wireMessage     `json:"referenced_message,omitempty"`
}

// wireOptions select the gateway extras and the MESSAGE_CONTENT stripping.
type wireOptions struct {
	gateway      bool // add guild_id, member, channel_type, mention members
	stripContent bool // no MESSAGE_CONTENT intent (and not exempt)
}

func (m Message) wire(o wireOptions) *wireMessage {
	w := &wireMessage{
		ID:           m.ID,
		ChannelID:    m.ChannelID,
		Author:       m.Author.wire(),
		Content:      m.Content,
		Timestamp:    FormatTimestamp(m.Timestamp),
		Mentions:     make([]wireUser, 0, len(m.Mentions)),
		MentionRoles: []ID{},
		Attachments:  make([]wireAttachment, 0, len(m.Attachments)),
		Embeds:       make([]wireEmbed, 0, len(m.Embeds)),
		Components:   []any{},
		WebhookID:    m.WebhookID(),
		Type:         m.Type,
		Flags:        m.Flags,
	}
	if !m.EditedTimestamp.IsZero() {
		s := FormatTimestamp(m.EditedTimestamp)
		w.EditedTimestamp = &s
	}
	for _, u := range m.Mentions {
		wu := u.wire()
		if o.gateway && m.GuildID != 0 && !u.Webhook {
			wu.Member = member(u.ID.Time())
		}
		w.Mentions = append(w.Mentions, wu)
	}
	for _, a := range m.Attachments {
		url := "https://cdn.discordapp.com/attachments/" + m.ChannelID.String() + "/" + a.ID.String() + "/" + a.Filename
		w.Attachments = append(w.Attachments, wireAttachment{
			ID: a.ID, Filename: a.Filename, Size: a.Size, URL: url,
			ProxyURL:    "https://media.discordapp.net/attachments/" + m.ChannelID.String() + "/" + a.ID.String() + "/" + a.Filename,
			ContentType: a.ContentType, Width: a.Width, Height: a.Height,
		})
	}
	for _, e := range m.Embeds {
		w.Embeds = append(w.Embeds, wireEmbed{Type: "rich", Title: e.Title, Description: e.Description, URL: e.URL})
	}
	if m.Reference != 0 {
		w.MessageReference = &wireReference{MessageID: m.Reference, ChannelID: m.ChannelID, GuildID: m.GuildID}
		if m.Referenced != nil {
			ro := o
			ro.gateway = false
			w.ReferencedMessage = m.Referenced.wire(ro)
		}
	}
	if o.stripContent {
		w.Content = ""
		w.Attachments = []wireAttachment{}
		w.Embeds = []wireEmbed{}
		w.Components = []any{}
	}
	if o.gateway {
		w.GuildID = m.GuildID
		ct := ChannelGuildText
		if m.GuildID == 0 {
			ct = ChannelDM
		} else if !m.Author.Webhook {
			w.Member = member(m.Author.ID.Time())
		}
		w.ChannelType = &ct
	}
	return w
}

// MarshalJSON encodes the message as Discord's REST message object
// (no guild_id, member or channel_type: those only come with gateway events).
func (m Message) MarshalJSON() ([]byte, error) {
	return json.Marshal(m.wire(wireOptions{}))
}
