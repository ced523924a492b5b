package discord

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
)

// Dispatch event names this package turns into records.
const (
	EventMessageCreate     = "MESSAGE_CREATE"
	EventMessageUpdate     = "MESSAGE_UPDATE"
	EventMessageDelete     = "MESSAGE_DELETE"
	EventMessageDeleteBulk = "MESSAGE_DELETE_BULK"
)

// Discord message types that carry user-written text (others, such as 7
// "member join", legitimately have empty content).
const (
	MessageTypeDefault = 0
	MessageTypeReply   = 19
)

// discordEpochMs is the first millisecond of 2015, Discord's snowflake epoch.
const discordEpochMs = 1420070400000

// SnowflakeTime returns the creation time encoded in a snowflake id.
func SnowflakeTime(id string) (time.Time, error) {
	n, err := parseSnowflake(id)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(n>>22) + discordEpochMs).UTC(), nil
}

func parseSnowflake(id string) (uint64, error) {
	if id == "" {
		return 0, errors.New("empty id")
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("id %q is not a snowflake", id)
	}
	return n, nil
}

// Event is one message event for the handler. A MESSAGE_DELETE_BULK becomes
// one Event per id, all with the same Seq.
type Event struct {
	// Message is the record to publish (Kind create, update or delete).
	Message chat.Message
	// Err is set when the payload could not be mapped (Message then holds
	// whatever could be read, often just the id). The event still counts as
	// received; it must not be published.
	Err error
	// Type is the dispatch name, e.g. MESSAGE_CREATE.
	Type string
	// Shard and Seq locate the event in the Gateway stream.
	Shard int
	Seq   int64
	// ReceivedAt is when the frame was read (for publish latency).
	ReceivedAt time.Time
	// Backfill marks a message fetched through REST after a gap rather
	// than received from the Gateway (Shard and Seq are then zero).
	Backfill bool

	// Facts for filters and diagnostics that the record does not carry.
	MessageType  int  // Discord's message type (0 default, 19 reply, 7 join, ...)
	AuthorIsBot  bool // author.bot (webhooks have WebhookID set instead)
	FromSelf     bool // the author is this bot
	MentionsSelf bool // the bot is mentioned (content is then sent even without MESSAGE_CONTENT)
	HasBody      bool // attachments, embeds, stickers, components, poll or forwarded snapshot
}

type apiUser struct {
	ID            string  `json:"id"`
	Username      string  `json:"username"`
	GlobalName    *string `json:"global_name"`
	Discriminator string  `json:"discriminator"`
	Bot           bool    `json:"bot"`
	System        bool    `json:"system"`
}

type apiMessage struct {
	ID              string            `json:"id"`
	ChannelID       string            `json:"channel_id"`
	GuildID         *string           `json:"guild_id"`
	Author          *apiUser          `json:"author"`
	Content         *string           `json:"content"`
	Timestamp       *string           `json:"timestamp"`
	EditedTimestamp *string           `json:"edited_timestamp"`
	Type            int               `json:"type"`
	WebhookID       *string           `json:"webhook_id"`
	Mentions        []apiUser         `json:"mentions"`
	Attachments     []json.RawMessage `json:"attachments"`
	Embeds          []json.RawMessage `json:"embeds"`
	StickerItems    []json.RawMessage `json:"sticker_items"`
	Components      []json.RawMessage `json:"components"`
	Snapshots       []json.RawMessage `json:"message_snapshots"`
	Poll            json.RawMessage   `json:"poll"`
}

type apiDelete struct {
	ID        string   `json:"id"`
	IDs       []string `json:"ids"`
	ChannelID string   `json:"channel_id"`
	GuildID   *string  `json:"guild_id"`
}

// MapEvent turns a message dispatch's payload into events. selfID is the
// bot's user id from READY ("" if unknown). It returns nil for event types it
// does not map. Bad payloads yield one Event with Err set, never a panic.
func MapEvent(typ string, d json.RawMessage, selfID string) []Event {
	switch typ {
	case EventMessageCreate, EventMessageUpdate:
		kind := chat.KindCreate
		if typ == EventMessageUpdate {
			kind = chat.KindUpdate
		}
		var m apiMessage
		if err := json.Unmarshal(d, &m); err != nil {
			return []Event{{Type: typ, Err: fmt.Errorf("%s payload: %w", typ, err)}}
		}
		ev, err := mapMessage(kind, &m, selfID)
		ev.Type, ev.Err = typ, err
		return []Event{ev}
	case EventMessageDelete, EventMessageDeleteBulk:
		var del apiDelete
		if err := json.Unmarshal(d, &del); err != nil {
			return []Event{{Type: typ, Err: fmt.Errorf("%s payload: %w", typ, err)}}
		}
		ids := del.IDs
		if typ == EventMessageDelete {
			ids = []string{del.ID}
		} else if len(ids) == 0 {
			return []Event{{Type: typ, Err: fmt.Errorf("%s payload: no ids", typ)}}
		}
		out := make([]Event, 0, len(ids))
		for _, id := range ids {
			ev, err := mapDelete(id, del.ChannelID, del.GuildID)
			ev.Type, ev.Err = typ, err
			out = append(out, ev)
		}
		return out
	}
	return nil
}

func optional(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	v := *s
	return &v
}

func mapMessage(kind chat.Kind, m *apiMessage, selfID string) (Event, error) {
	ev := Event{Message: chat.Message{Kind: kind, MessageID: m.ID, ChannelID: m.ChannelID, GuildID: optional(m.GuildID)}}
	created, err := SnowflakeTime(m.ID)
	if err != nil {
		return ev, fmt.Errorf("message id: %w", err)
	}
	if _, err := parseSnowflake(m.ChannelID); err != nil {
		return ev, fmt.Errorf("message %s: channel_id: %w", m.ID, err)
	}
	msg := &ev.Message
	msg.Timestamp = created
	if m.Timestamp != nil {
		// Discord writes ISO 8601 with a zone, e.g. 2017-07-11T17:27:24.250000+00:00.
		ts, err := time.Parse(time.RFC3339Nano, *m.Timestamp)
		if err != nil {
			ts, err = chat.ParseTimestamp(*m.Timestamp)
		}
		if err != nil {
			return ev, fmt.Errorf("message %s: timestamp %q: %w", m.ID, *m.Timestamp, err)
		}
		msg.Timestamp = ts.UTC()
	} else if kind == chat.KindCreate {
		return ev, fmt.Errorf("message %s: no timestamp", m.ID)
	}
	if m.EditedTimestamp != nil && *m.EditedTimestamp != "" {
		et, err := time.Parse(time.RFC3339Nano, *m.EditedTimestamp)
		if err != nil {
			return ev, fmt.Errorf("message %s: edited_timestamp %q: %w", m.ID, *m.EditedTimestamp, err)
		}
		et = et.UTC()
		msg.EditedTimestamp = &et
	}
	if m.Author != nil {
		if _, err := parseSnowflake(m.Author.ID); err != nil {
			return ev, fmt.Errorf("message %s: author id: %w", m.ID, err)
		}
		msg.AuthorID = chat.Ptr(m.Author.ID)
		msg.AuthorName = chat.Ptr(m.Author.Username)
		msg.AuthorGlobalName = optional(m.Author.GlobalName)
		ev.AuthorIsBot = m.Author.Bot
		ev.FromSelf = selfID != "" && m.Author.ID == selfID
	} else if kind == chat.KindCreate {
		return ev, fmt.Errorf("message %s: no author", m.ID)
	}
	msg.WebhookID = optional(m.WebhookID)
	msg.AuthorIsBot = ev.AuthorIsBot || msg.WebhookID != nil
	switch {
	case m.Content != nil:
		msg.Content = chat.Ptr(*m.Content)
	case kind == chat.KindCreate:
		msg.Content = chat.Ptr("") // a create always has content; absent means empty
	}
	ev.MessageType = m.Type
	for _, u := range m.Mentions {
		if selfID != "" && u.ID == selfID {
			ev.MentionsSelf = true
		}
	}
	ev.HasBody = len(m.Attachments) > 0 || len(m.Embeds) > 0 || len(m.StickerItems) > 0 ||
		len(m.Components) > 0 || len(m.Snapshots) > 0 || (len(m.Poll) > 0 && string(m.Poll) != "null")
	return ev, nil
}

func mapDelete(id, channelID string, guildID *string) (Event, error) {
	ev := Event{Message: chat.Message{Kind: chat.KindDelete, MessageID: id, ChannelID: channelID, GuildID: optional(guildID)}}
	ts, err := SnowflakeTime(id)
	if err != nil {
		return ev, fmt.Errorf("deleted message id: %w", err)
	}
	if _, err := parseSnowflake(channelID); err != nil {
		return ev, fmt.Errorf("deleted message %s: channel_id: %w", id, err)
	}
	ev.Message.Timestamp = ts
	return ev, nil
}
