package chat

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecode: Decode never panics, returns either a message or a
// *FieldError, and what it accepts re-encodes to a record that decodes to the
// same message.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"author_id":"1","author_name":"a","channel_id":"2","content":"x","message_timestamp":"2025-11-07 18:00:00.000"}`,
		`{"message_timestamp":"2017-07-11T17:27:24.250000+00:00","event_kind":"delete","author_id":null}`,
		`{"message_timestamp":"2025-11-07 18:00:00.000","author_is_bot":true,"guild_id":null,"edited_timestamp":"2025-11-07 18:00:01.000"}`,
		`{"author_name":"\u00e9\ud83d\ude00","message_timestamp":"2025-1-7 8:5:3"}`,
		`null`, `[]`, `{`, `{"message_timestamp":1}`, `{"a":{"b":[1,{"c":null}]},"message_timestamp":"2025-11-07"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FieldError: %v", err)
			}
			return
		}
		b, err := Encode(&m)
		if err != nil {
			// Only a timestamp outside 0000-9999 may fail, and Decode cannot
			// produce one after a zone shift... except at the edges.
			if y := m.Timestamp.Year(); y >= 0 && y <= 9999 {
				t.Fatalf("re-encode failed: %v", err)
			}
			return
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("Encode produced invalid JSON: %s", b)
		}
		m2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-decode failed: %v\n%s", err, b)
		}
		// Encoding truncates to milliseconds; compare at that precision.
		m.Timestamp = m.Timestamp.Truncate(time.Millisecond)
		if m.EditedTimestamp != nil {
			et := m.EditedTimestamp.Truncate(time.Millisecond)
			m.EditedTimestamp = &et
		}
		b2, _ := Encode(&m2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the record:\n%s\n%s", b, b2)
		}
	})
}

// FuzzEncode: any message with valid UTF-8 or not encodes to valid JSON that
// decodes back to the same field values.
func FuzzEncode(f *testing.F) {
	f.Add("alice", "hello", "1", int64(1762538400123), true)
	f.Add("山田\x00\"\\", "\xff\xfe\u2028", "", int64(0), false)
	f.Fuzz(func(t *testing.T, name, content, id string, ms int64, bot bool) {
		ts := time.UnixMilli(ms % 253402300799000).UTC()
		if ts.Year() < 0 {
			return
		}
		m := Message{Kind: KindCreate, MessageID: id, ChannelID: id, AuthorName: &name, Content: &content, AuthorIsBot: bot, Timestamp: ts}
		b, err := Encode(&m)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %q", b)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode: %v\n%s", err, b)
		}
		if !got.Timestamp.Equal(ts) || got.AuthorIsBot != bot || utf8.ValidString(id) && got.MessageID != id {
			t.Fatalf("round trip: got %+v", got)
		}
		if utf8.ValidString(name) && *got.AuthorName != name || utf8.ValidString(content) && *got.Content != content {
			t.Fatalf("text changed: %q %q -> %q %q", name, content, *got.AuthorName, *got.Content)
		}
	})
}

// FuzzAppendJSONString: the escaper writes exactly what encoding/json writes.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\s/<b>&</b>\n\r\t\x00\x1f\x7f", "é日本\u2028\u2029😀", "\xff\xfe bad"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
