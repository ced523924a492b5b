package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Reason classifies why a record was rejected. Reasons are stable strings,
// used as metric labels and dead-letter headers.
type Reason string

// The reasons a record can be rejected for.
const (
	ReasonMalformedJSON Reason = "malformed_json"
	ReasonMissingField  Reason = "missing_field"
	ReasonWrongType     Reason = "wrong_type"
	ReasonBadTimestamp  Reason = "bad_timestamp"
	ReasonBadValue      Reason = "bad_value"
)

// FieldError is a record that cannot be decoded. Field names the JSON field
// at fault ("" when the record as a whole is not a JSON object).
type FieldError struct {
	Field  string
	Reason Reason
	Err    error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("bad record (%s): %v", e.Reason, e.Err)
	}
	return fmt.Sprintf("bad record: field %q (%s): %v", e.Field, e.Reason, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Wire field names. The first five are the seed's.
const (
	FieldAuthorID         = "author_id"
	FieldAuthorName       = "author_name"
	FieldChannelID        = "channel_id"
	FieldContent          = "content"
	FieldTimestamp        = "message_timestamp"
	FieldMessageID        = "message_id"
	FieldGuildID          = "guild_id"
	FieldAuthorGlobalName = "author_global_name"
	FieldAuthorIsBot      = "author_is_bot"
	FieldWebhookID        = "webhook_id"
	FieldKind             = "event_kind"
	FieldEditedTimestamp  = "edited_timestamp"
	FieldSchemaVersion    = "schema_version"
)

// Encode returns m in the wire format. It fails only for values the format
// cannot carry: an unknown kind, or a timestamp outside years 0000-9999.
func Encode(m *Message) ([]byte, error) {
	return AppendEncode(make([]byte, 0, 256+len(contentOf(m))), m)
}

func contentOf(m *Message) string {
	if m.Content == nil {
		return ""
	}
	return *m.Content
}

// AppendEncode appends the wire format of m to b.
func AppendEncode(b []byte, m *Message) ([]byte, error) {
	if !m.Kind.Valid() {
		return b, fmt.Errorf("encode message %s: unknown event kind %q", m.MessageID, m.Kind)
	}
	if y := m.Timestamp.UTC().Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("encode message %s: timestamp %v outside years 0000-9999", m.MessageID, m.Timestamp)
	}
	if m.EditedTimestamp != nil {
		if y := m.EditedTimestamp.UTC().Year(); y < 0 || y > 9999 {
			return b, fmt.Errorf("encode message %s: edited timestamp %v outside years 0000-9999", m.MessageID, *m.EditedTimestamp)
		}
	}
	b = append(b, `{"author_id":`...)
	b = appendNullable(b, m.AuthorID)
	b = append(b, `,"author_name":`...)
	b = appendNullable(b, m.AuthorName)
	b = append(b, `,"channel_id":`...)
	b = AppendJSONString(b, m.ChannelID)
	b = append(b, `,"content":`...)
	b = appendNullable(b, m.Content)
	b = append(b, `,"message_timestamp":"`...)
	b = AppendTimestamp(b, m.Timestamp)
	b = append(b, `","message_id":`...)
	b = AppendJSONString(b, m.MessageID)
	b = append(b, `,"guild_id":`...)
	b = appendNullable(b, m.GuildID)
	b = append(b, `,"author_global_name":`...)
	b = appendNullable(b, m.AuthorGlobalName)
	b = append(b, `,"author_is_bot":`...)
	if m.AuthorIsBot {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	b = append(b, `,"webhook_id":`...)
	b = appendNullable(b, m.WebhookID)
	b = append(b, `,"event_kind":"`...)
	b = append(b, m.Kind...)
	b = append(b, `","edited_timestamp":`...)
	if m.EditedTimestamp == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = AppendTimestamp(b, *m.EditedTimestamp)
		b = append(b, '"')
	}
	b = append(b, `,"schema_version":`...)
	b = append(b, byte('0'+SchemaVersion))
	b = append(b, '}')
	return b, nil
}

func appendNullable(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return AppendJSONString(b, *s)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaped exactly as
// encoding/json escapes it (quotes, backslash, control characters, <, >, &,
// U+2028, U+2029), with invalid UTF-8 replaced by U+FFFD.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Decode parses a record in the wire format. It tolerates unknown fields and
// missing optional ones (records from the seed's producer have only the seed's
// five fields), accepts ISO 8601 timestamps, and returns a *FieldError naming
// the field for anything else: malformed JSON, a field of the wrong JSON type,
// a missing or unparseable message_timestamp, an unknown event_kind.
func Decode(data []byte) (Message, error) {
	var w wireMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Message{}, &FieldError{Field: te.Field, Reason: ReasonWrongType,
				Err: fmt.Errorf("got JSON %s, want %s", te.Value, wantType(te.Field))}
		}
		return Message{}, &FieldError{Reason: ReasonMalformedJSON, Err: err}
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return Message{}, &FieldError{Reason: ReasonMalformedJSON, Err: errors.New("data after the JSON object")}
	}
	if w.isNull {
		return Message{}, &FieldError{Reason: ReasonMalformedJSON, Err: errors.New("record is JSON null, want an object")}
	}
	m := Message{
		Kind:             KindCreate,
		MessageID:        deref(w.MessageID),
		GuildID:          w.GuildID,
		ChannelID:        deref(w.ChannelID),
		AuthorID:         w.AuthorID,
		AuthorName:       w.AuthorName,
		AuthorGlobalName: w.AuthorGlobalName,
		WebhookID:        w.WebhookID,
		Content:          w.Content,
	}
	if w.AuthorIsBot != nil {
		m.AuthorIsBot = *w.AuthorIsBot
	}
	if w.Kind != nil {
		m.Kind = Kind(*w.Kind)
		if !m.Kind.Valid() {
			return Message{}, &FieldError{Field: FieldKind, Reason: ReasonBadValue,
				Err: fmt.Errorf("%s is not one of create, update, delete", quoteShort(*w.Kind))}
		}
	}
	if w.Timestamp == nil {
		return Message{}, &FieldError{Field: FieldTimestamp, Reason: ReasonMissingField, Err: errors.New("missing or null")}
	}
	ts, err := ParseTimestamp(*w.Timestamp)
	if err != nil {
		return Message{}, &FieldError{Field: FieldTimestamp, Reason: ReasonBadTimestamp, Err: err}
	}
	m.Timestamp = ts
	if w.EditedTimestamp != nil {
		et, err := ParseTimestamp(*w.EditedTimestamp)
		if err != nil {
			return Message{}, &FieldError{Field: FieldEditedTimestamp, Reason: ReasonBadTimestamp, Err: err}
		}
		m.EditedTimestamp = &et
	}
	return m, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func wantType(field string) string {
	switch field {
	case FieldAuthorIsBot:
		return "boolean"
	case FieldSchemaVersion:
		return "integer"
	}
	return "string or null"
}

// wireMessage is the JSON shape Decode reads.
type wireMessage struct {
	AuthorID         *string `json:"author_id"`
	AuthorName       *string `json:"author_name"`
	ChannelID        *string `json:"channel_id"`
	Content          *string `json:"content"`
	Timestamp        *string `json:"message_timestamp"`
	MessageID        *string `json:"message_id"`
	GuildID          *string `json:"guild_id"`
	AuthorGlobalName *string `json:"author_global_name"`
	AuthorIsBot      *bool   `json:"author_is_bot"`
	WebhookID        *string `json:"webhook_id"`
	Kind             *string `json:"event_kind"`
	EditedTimestamp  *string `json:"edited_timestamp"`
	SchemaVersion    *int    `json:"schema_version"`
	isNull           bool
}

// UnmarshalJSON rejects non-objects and JSON null at the top level, and
// matches field names exactly (encoding/json alone would match any case).
func (w *wireMessage) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		w.isNull = true
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return errors.New("record is not a JSON object")
	}
	// Gather the fields in input order; a repeated name keeps its first
	// position and its last value (the last one wins, as in Spark). Then
	// decode them in that order, so that the first bad field is reported.
	type field struct {
		name string
		raw  json.RawMessage
	}
	var fields []field
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		dup := false
		for i := range fields {
			if fields[i].name == name {
				fields[i].raw, dup = raw, true
				break
			}
		}
		if !dup {
			fields = append(fields, field{name, raw})
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	for _, f := range fields {
		if err := w.set(f.name, f.raw); err != nil {
			return err
		}
	}
	return nil
}

// set decodes one field into w.
func (w *wireMessage) set(name string, raw json.RawMessage) error {
	var err error
	switch name {
	case FieldAuthorID:
		err = json.Unmarshal(raw, &w.AuthorID)
	case FieldAuthorName:
		err = json.Unmarshal(raw, &w.AuthorName)
	case FieldChannelID:
		err = json.Unmarshal(raw, &w.ChannelID)
	case FieldContent:
		err = json.Unmarshal(raw, &w.Content)
	case FieldTimestamp:
		err = json.Unmarshal(raw, &w.Timestamp)
	case FieldMessageID:
		err = json.Unmarshal(raw, &w.MessageID)
	case FieldGuildID:
		err = json.Unmarshal(raw, &w.GuildID)
	case FieldAuthorGlobalName:
		err = json.Unmarshal(raw, &w.AuthorGlobalName)
	case FieldAuthorIsBot:
		err = json.Unmarshal(raw, &w.AuthorIsBot)
	case FieldWebhookID:
		err = json.Unmarshal(raw, &w.WebhookID)
	case FieldKind:
		err = json.Unmarshal(raw, &w.Kind)
	case FieldEditedTimestamp:
		err = json.Unmarshal(raw, &w.EditedTimestamp)
	case FieldSchemaVersion:
		err = json.Unmarshal(raw, &w.SchemaVersion)
	default:
		return nil
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			te.Field = name
			return te
		}
		return &json.UnmarshalTypeError{Value: "value", Field: name}
	}
	return nil
}
