package chat

// Projection is the part of a record the analyzer needs: the group-by
// columns, the event time and the kind.
type Projection struct {
	MessageID, AuthorID, AuthorName, ChannelID, GuildID string
	// Has has a bit per field present and not null (HasMessageID, ...).
	Has uint8
	// Timestamp is message_timestamp in Unix microseconds, UTC.
	Timestamp int64
	// Kind is event_kind (KindCreate when absent).
	Kind Kind
}

// Bits of Projection.Has.
const (
	HasMessageID uint8 = 1 << iota
	HasAuthorID
	HasAuthorName
	HasChannelID
	HasGuildID
)

// Project decodes the projected fields of a record into p, accepting and
// rejecting exactly what Decode does, with the same *FieldError.
func Project(data []byte, p *Projection) error {
	m, err := Decode(data)
	if err != nil {
		return err
	}
	*p = Projection{Kind: m.Kind, MessageID: m.MessageID, ChannelID: m.ChannelID, Timestamp: m.Timestamp.UnixMicro()}
	p.Has = HasMessageID | HasChannelID
	if m.AuthorID != nil {
		p.AuthorID, p.Has = *m.AuthorID, p.Has|HasAuthorID
	}
	if m.AuthorName != nil {
		p.AuthorName, p.Has = *m.AuthorName, p.Has|HasAuthorName
	}
	if m.GuildID != nil {
		p.GuildID, p.Has = *m.GuildID, p.Has|HasGuildID
	}
	return nil
}
