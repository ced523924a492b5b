package chat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// typicalRecord is a record as the bot writes it (about 330 bytes).
func typicalRecord(tb testing.TB) []byte {
	tb.Helper()
	ts := time.Date(2025, 11, 7, 18, 0, 12, 345_000_000, time.UTC)
	m := Message{
		Kind:             KindCreate,
		MessageID:        "1436431234567890123",
		GuildID:          Ptr("1199887766554433221"),
		ChannelID:        "1299887766554433222",
		AuthorID:         Ptr("402345678901234567"),
		AuthorName:       Ptr("alice_w"),
		AuthorGlobalName: Ptr("Alice W."),
		Content:          Ptr("has anyone tried the new build? it fixes the crash on startup for me, but the settings page still loads slowly"),
		Timestamp:        ts,
	}
	b, err := Encode(&m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestProjectTypical(t *testing.T) {
	data := typicalRecord(t)
	var p Projection
	if err := Project(data, &p); err != nil {
		t.Fatalf("Project: %v", err)
	}
	want := Projection{
		MessageID: "1436431234567890123", AuthorID: "402345678901234567", AuthorName: "alice_w",
		ChannelID: "1299887766554433222", GuildID: "1199887766554433221",
		Has:       HasMessageID | HasAuthorID | HasAuthorName | HasChannelID | HasGuildID | HasContent,
		Timestamp: time.Date(2025, 11, 7, 18, 0, 12, 345_000_000, time.UTC).UnixMicro(),
		Kind:      KindCreate,
		Content:   "has anyone tried the new build? it fixes the crash on startup for me, but the settings page still loads slowly", ContentPlain: true,
	}
	if p != want {
		t.Errorf("Project:\ngot  %+v\nwant %+v", p, want)
	}
}

func TestProjectAllocs(t *testing.T) {
	data := typicalRecord(t)
	var p Projection
	if n := testing.AllocsPerRun(100, func() {
		if err := Project(data, &p); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Project allocates %v times per typical record, want 0", n)
	}
}

const ts0 = `"message_timestamp":"2025-11-07 18:00:00.000"`

func TestProject(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   Projection // checked when field == "" and reason == ""
		field  string
		reason Reason
	}{
		{name: "seed producer record",
			in:   `{"author_id": "42", "author_name": "alice", "content": "hi", "message_timestamp": "2025-11-07 18:00:00.000"}`,
			want: Projection{AuthorID: "42", AuthorName: "alice", Has: HasAuthorID | HasAuthorName | HasContent, Timestamp: 1762538400000000, Kind: KindCreate, Content: "hi", ContentPlain: true}},
		{name: "content with escapes is kept as written",
			in:   `{"content": "a\"b\u00e9", "message_timestamp": "2025-11-07 18:00:00.000"}`,
			want: Projection{Has: HasContent, Timestamp: 1762538400000000, Kind: KindCreate, Content: `a\"b\u00e9`}},
		{name: "nulls clear the bits",
			in:   `{"author_id":null,"author_name":null,"guild_id":null,"channel_id":"7","message_id":null,"event_kind":null,` + ts0 + `}`,
			want: Projection{ChannelID: "7", Has: HasChannelID, Timestamp: 1762538400000000, Kind: KindCreate}},
		{name: "escapes and surrogates",
			in:   `{"author_name":"a\"b\\c\/d\u00e9\ud83d\ude00\ud800x\n",` + ts0 + `}`,
			want: Projection{AuthorName: "a\"b\\c/dé😀\ufffdx\n", Has: HasAuthorName, Timestamp: 1762538400000000, Kind: KindCreate}},
		{name: "invalid UTF-8 becomes U+FFFD",
			in:   "{\"author_name\":\"a\xffb\"," + ts0 + "}",
			want: Projection{AuthorName: "a\ufffdb", Has: HasAuthorName, Timestamp: 1762538400000000, Kind: KindCreate}},
		{name: "escaped key matches",
			in:   `{"author\u005fname":"bob",` + ts0 + `}`,
			want: Projection{AuthorName: "bob", Has: HasAuthorName, Timestamp: 1762538400000000, Kind: KindCreate}},
		{name: "case differs: not the field",
			in:   `{"Author_Name":"bob",` + ts0 + `}`,
			want: Projection{Timestamp: 1762538400000000, Kind: KindCreate}},
		{name: "last duplicate wins",
			in:   `{"author_name":5,"author_name":"carol",` + ts0 + `}`,
			want: Projection{AuthorName: "carol", Has: HasAuthorName, Timestamp: 1762538400000000, Kind: KindCreate}},
		{name: "unknown fields of any type, nested",
			in:   `{"x":{"a":[1,2,{"b":null}],"c":-1.5e+3},"y":[],"z":{}, "t":true,` + ts0 + `}`,
			want: Projection{Timestamp: 1762538400000000, Kind: KindCreate}},
		{name: "ISO timestamp with zone and kind",
			in:   `{"message_timestamp":"2025-11-07T19:00:00.5+01:00","event_kind":"update","edited_timestamp":"2025-11-07 18:01:00.000","author_is_bot":true,"schema_version":1}`,
			want: Projection{Timestamp: 1762538400500000, Kind: KindUpdate}},
		{name: "deepest allowed nesting",
			in:   `{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `,` + ts0 + `}`,
			want: Projection{Timestamp: 1762538400000000, Kind: KindCreate}},
		{name: "whitespace around", in: " \t\r\n{ \"message_timestamp\" : \"2025-11-07 18:00:00\" } \n",
			want: Projection{Timestamp: 1762538400000000, Kind: KindCreate}},

		{name: "empty", in: ``, reason: ReasonMalformedJSON},
		{name: "blank", in: "  \n", reason: ReasonMalformedJSON},
		{name: "null record", in: `null`, reason: ReasonMalformedJSON},
		{name: "array record", in: `[1]`, reason: ReasonMalformedJSON},
		{name: "string record", in: `"x"`, reason: ReasonMalformedJSON},
		{name: "truncated", in: `{"author_name":"al`, reason: ReasonMalformedJSON},
		{name: "trailing comma", in: `{` + ts0 + `,}`, reason: ReasonMalformedJSON},
		{name: "two objects", in: `{` + ts0 + `} {}`, reason: ReasonMalformedJSON},
		{name: "trailing bracket", in: `{` + ts0 + `}]`, reason: ReasonMalformedJSON},
		{name: "bad escape", in: `{"author_name":"\x",` + ts0 + `}`, reason: ReasonMalformedJSON},
		{name: "short unicode escape", in: `{"author_name":"\u12",` + ts0 + `}`, reason: ReasonMalformedJSON},
		{name: "control character", in: "{\"author_name\":\"a\tb\"," + ts0 + "}", reason: ReasonMalformedJSON},
		{name: "leading zero", in: `{"x":01,` + ts0 + `}`, reason: ReasonMalformedJSON},
		{name: "bare minus", in: `{"x":-,` + ts0 + `}`, reason: ReasonMalformedJSON},
		{name: "bad literal", in: `{"x":nul,` + ts0 + `}`, reason: ReasonMalformedJSON},
		{name: "single quotes", in: `{'x':1}`, reason: ReasonMalformedJSON},
		{name: "too deep", in: `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `,` + ts0 + `}`, reason: ReasonMalformedJSON},

		{name: "number author", in: `{"author_name":5,` + ts0 + `}`, field: FieldAuthorName, reason: ReasonWrongType},
		{name: "object channel", in: `{"channel_id":{},` + ts0 + `}`, field: FieldChannelID, reason: ReasonWrongType},
		{name: "array content", in: `{"content":[],` + ts0 + `}`, field: FieldContent, reason: ReasonWrongType},
		{name: "bool timestamp", in: `{"message_timestamp":true}`, field: FieldTimestamp, reason: ReasonWrongType},
		{name: "string is_bot", in: `{"author_is_bot":"yes",` + ts0 + `}`, field: FieldAuthorIsBot, reason: ReasonWrongType},
		{name: "fraction schema_version", in: `{"schema_version":1.5,` + ts0 + `}`, field: FieldSchemaVersion, reason: ReasonWrongType},
		{name: "huge schema_version", in: `{"schema_version":99999999999999999999,` + ts0 + `}`, field: FieldSchemaVersion, reason: ReasonWrongType},
		{name: "wrong type beats trailing data", in: `{"author_id":1,` + ts0 + `} x`, field: FieldAuthorID, reason: ReasonWrongType},

		{name: "unknown kind", in: `{"event_kind":"edit",` + ts0 + `}`, field: FieldKind, reason: ReasonBadValue},
		{name: "kind beats timestamp", in: `{"event_kind":"x"}`, field: FieldKind, reason: ReasonBadValue},
		{name: "missing timestamp", in: `{"author_name":"a"}`, field: FieldTimestamp, reason: ReasonMissingField},
		{name: "null timestamp", in: `{"message_timestamp":null}`, field: FieldTimestamp, reason: ReasonMissingField},
		{name: "bad timestamp", in: `{"message_timestamp":"yesterday"}`, field: FieldTimestamp, reason: ReasonBadTimestamp},
		{name: "bad edited timestamp", in: `{"edited_timestamp":"2025-13-01 00:00:00",` + ts0 + `}`, field: FieldEditedTimestamp, reason: ReasonBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Projection
			err := Project([]byte(tt.in), &p)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Project: %v", err)
				}
				if p != tt.want {
					t.Fatalf("Project:\ngot  %+v\nwant %+v", p, tt.want)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Project error = %v, want a *FieldError", err)
			}
			if fe.Field != tt.field || fe.Reason != tt.reason {
				t.Fatalf("Project error field %q reason %q (%v), want field %q reason %q", fe.Field, fe.Reason, err, tt.field, tt.reason)
			}
			if fe.Err == nil || err.Error() == "" {
				t.Fatalf("error without a cause: %#v", fe)
			}
		})
	}
}

// FuzzProject checks Project against Decode, the reference: the same records
// accepted, the same reason and field for the rejected ones, the same values.
func FuzzProject(f *testing.F) {
	f.Add(typicalRecord(f))
	f.Add([]byte(`{"author_id": "42", "author_name": "alice", "content": "hi", "message_timestamp": "2025-11-07 18:00:00.000"}`))
	f.Add([]byte(`{"author_name":"a\"b\\c\/d\u00e9\ud83d\ude00\ud800x\n","guild_id":null,` + ts0 + `}`))
	f.Add([]byte(`{"author_name":5,"author_name":"carol","channel_id":"1","message_id":"2",` + ts0 + `}`))
	f.Add([]byte(`{"x":{"a":[1,2,{"b":null}],"c":-1.5e+3},"schema_version":-0,"author_is_bot":false,` + ts0 + `}`))
	f.Add([]byte(`{"event_kind":"delete","edited_timestamp":"2025-11-07T18:00:00Z","message_timestamp":"2025-11-07T19:00:00.123456789+01:00"}`))
	f.Add([]byte(`{"event_kind":"edit"}`))
	f.Add([]byte(`{"schema_version":1.0,` + ts0 + `}]`))
	f.Add([]byte(`null`))
	f.Fuzz(checkAgainstDecode)
}

// TestProjectMutations checks Project against Decode on every one-byte
// change, insertion and deletion of a typical record: the places where the
// fast paths (keys in Encode's order, plain strings) must hand over to the
// general ones.
func TestProjectMutations(t *testing.T) {
	rec := typicalRecord(t)
	alphabet := []byte{' ', '\t', '"', '\\', ',', ':', '}', '{', '[', 'x', '0', 'n', 0x01, 0x7f, 0xc3, 0xff}
	var data []byte
	for i := range rec {
		for _, c := range alphabet {
			data = append(append(append(data[:0], rec[:i]...), c), rec[i+1:]...)
			checkAgainstDecode(t, data)
			data = append(append(append(data[:0], rec[:i]...), c), rec[i:]...)
			checkAgainstDecode(t, data)
		}
		data = append(append(data[:0], rec[:i]...), rec[i+1:]...)
		checkAgainstDecode(t, data)
	}
}

func checkAgainstDecode(t *testing.T, data []byte) {
	t.Helper()
	var p Projection
	perr := Project(data, &p)
	m, derr := Decode(data)
	var pfe, dfe *FieldError
	if perr != nil && !errors.As(perr, &pfe) {
		t.Fatalf("Project error %v is not a *FieldError", perr)
	}
	if derr != nil && !errors.As(derr, &dfe) {
		t.Fatalf("Decode error %v is not a *FieldError", derr)
	}
	if (perr == nil) != (derr == nil) {
		t.Fatalf("%q: Project error %v, Decode error %v", data, perr, derr)
	}
	if derr != nil {
		if pfe.Reason != dfe.Reason {
			t.Fatalf("%q: Project reason %q (%v), Decode %q (%v)", data, pfe.Reason, perr, dfe.Reason, derr)
		}
		if pfe.Field != dfe.Field {
			// With several wrong-typed fields Decode reports one at
			// random (it ranges over a map): Project's must be one of them.
			for range 64 {
				if _, err := Decode(data); errors.As(err, &dfe) && dfe.Field == pfe.Field {
					return
				}
			}
			t.Fatalf("%q: Project field %q (%v), Decode %q (%v)", data, pfe.Field, perr, dfe.Field, derr)
		}
		return
	}
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	want := Projection{
		MessageID:  m.MessageID,
		AuthorID:   deref(m.AuthorID),
		AuthorName: deref(m.AuthorName),
		ChannelID:  m.ChannelID,
		GuildID:    deref(m.GuildID),
		Has:        p.Has & (HasMessageID | HasChannelID), // Decode cannot tell these
		Timestamp:  m.Timestamp.UnixMicro(),
		Kind:       m.Kind,
	}
	for _, f := range []struct {
		set bool
		bit uint8
	}{{m.AuthorID != nil, HasAuthorID}, {m.AuthorName != nil, HasAuthorName}, {m.GuildID != nil, HasGuildID}} {
		if f.set {
			want.Has |= f.bit
		}
	}
	if (p.Has&HasContent != 0) != (m.Content != nil) {
		t.Fatalf("%q: HasContent %v, Decode's content %v", data, p.Has&HasContent != 0, m.Content)
	}
	if m.Content != nil {
		got := p.Content
		if !p.ContentPlain {
			got = string(unquoteAppend(nil, []byte(p.Content)))
		}
		if got != *m.Content {
			t.Fatalf("%q: content %q, Decode's %q", data, got, *m.Content)
		}
		want.Content, want.ContentPlain, want.Has = p.Content, p.ContentPlain, want.Has|HasContent
	}
	if p != want {
		t.Fatalf("%q:\nProject %+v\nDecode  %+v", data, p, want)
	}
	if p.Has&HasMessageID == 0 && p.MessageID != "" || p.Has&HasChannelID == 0 && p.ChannelID != "" {
		t.Fatalf("%q: value without its Has bit: %+v", data, p)
	}
}

func BenchmarkProject(b *testing.B) {
	data := typicalRecord(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var p Projection
	cpu := cpuTime()
	for b.Loop() {
		if err := Project(data, &p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDecode is the encoding/json path Project replaces, for comparison.
func BenchmarkDecode(b *testing.B) {
	data := typicalRecord(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

func TestWireMicros(t *testing.T) {
	for _, s := range []string{
		"2025-11-07 18:00:12.345", "1970-01-01 00:00:00.000", "1969-12-31 23:59:59.999",
		"0000-01-01 00:00:00.000", "0000-03-01 00:00:00.000", "0001-02-28 12:00:00.000",
		"2000-02-29 00:00:00.000", "2100-02-28 23:59:59.999", "9999-12-31 23:59:59.999",
		"1600-03-01 00:00:00.001", "2024-02-29 10:10:10.010",
	} {
		got, ok := wireMicros([]byte(s))
		want, err := ParseTimestamp(s)
		if !ok || err != nil || got != want.UnixMicro() {
			t.Errorf("wireMicros(%q) = %d, %v; ParseTimestamp gives %d, %v", s, got, ok, want.UnixMicro(), err)
		}
	}
	for _, s := range []string{
		"2025-11-07T18:00:12.345", "2025-11-07 18:00:12.34", "2025-13-07 18:00:12.345",
		"2025-02-29 18:00:12.345", "2025-11-31 18:00:12.345", "2025-11-07 24:00:12.345",
		"2025-11-07 18:60:12.345", "2025-11-07 18:00:60.345", "2025-11-07 18:00:12.3a5", "2025-00-07 18:00:12.345",
	} {
		if _, ok := wireMicros([]byte(s)); ok {
			t.Errorf("wireMicros(%q) accepted it", s)
		}
	}
}
