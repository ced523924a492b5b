// Package chat owns the message record that travels on the discord_messages
// topic: its fields, its JSON wire format (encode, decode, validate) and the
// typed errors for bad records.
//
// The wire format keeps the seed's five fields with their names and formats
// (author_id, author_name, channel_id, content, message_timestamp as UTC
// "yyyy-MM-dd HH:mm:ss.SSS") and adds fields; it never renames or removes one.
// schema/discord_message.schema.json is the published JSON Schema.
package chat

import (
	"time"
)

// Kind says what happened to a message. Records written by the seed's producer
// carry no kind; they decode as KindCreate.
type Kind string

// The kinds of event a record describes.
const (
	KindCreate Kind = "create"
	KindUpdate Kind = "update"
	KindDelete Kind = "delete"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool { return k == KindCreate || k == KindUpdate || k == KindDelete }

// DefaultTopic is the topic the bot writes and the analyzer reads unless
// told otherwise (--topic).
const DefaultTopic = "discord_messages"

// SchemaVersion is the version of the wire format this package writes.
const SchemaVersion = 1

// Message is one record on the topic. Nullable text fields are pointers: nil
// encodes as JSON null (a DM has no guild; a delete has no author or content).
type Message struct {
	// Kind of event: create (a new message), update (an edit), delete.
	Kind Kind
	// MessageID is Discord's snowflake id of the message, the de-duplication key.
	MessageID string
	// GuildID is the server's id; nil for direct messages.
	GuildID *string
	// ChannelID is the channel's id.
	ChannelID string
	// AuthorID is the author's user id (the Kafka record key); nil for deletes.
	AuthorID *string
	// AuthorName is the author's unique username; nil for deletes.
	AuthorName *string
	// AuthorGlobalName is the display name, nil when the user has none.
	AuthorGlobalName *string
	// AuthorIsBot is true for bot accounts and webhooks.
	AuthorIsBot bool
	// WebhookID is set when a webhook sent the message.
	WebhookID *string
	// Content is the text, nil when dropped for privacy or unknown (deletes).
	// When hashed for privacy it is "sha256:<hex>".
	Content *string
	// Timestamp is when the message was created (event time), UTC, ms precision.
	Timestamp time.Time
	// EditedTimestamp is when it was last edited (updates only).
	EditedTimestamp *time.Time
}

// Ptr returns a pointer to s, for the nullable fields.
func Ptr(s string) *string { return &s }

// Key is the Kafka record key: the author id, so that one author's messages
// stay in order on one partition. Deletes, which carry no author, are keyed by
// message id.
func (m *Message) Key() []byte {
	if m.AuthorID != nil {
		return []byte(*m.AuthorID)
	}
	return []byte(m.MessageID)
}
