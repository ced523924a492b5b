package chat

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func sample() Message {
	ts := time.Date(2025, 11, 7, 18, 0, 0, 123_000_000, time.UTC)
	return Message{
		Kind:        KindCreate,
		MessageID:   "1436400000000000000",
		GuildID:     Ptr("1100000000000000000"),
		ChannelID:   "1200000000000000000",
		AuthorID:    Ptr("1300000000000000000"),
		AuthorName:  Ptr("alice"),
		AuthorIsBot: false,
		Content:     Ptr("hello \"world\"\n\t<b>é 日本語 \u2028"),
		Timestamp:   ts,
	}
}

// schemaPath finds schema/discord_message.schema.json from this file.
func schemaPath(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "schema", "discord_message.schema.json")
}

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(schemaPath(t))
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

func TestEncodeSeedFields(t *testing.T) {
	m := sample()
	b, err := Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("encoded record is not JSON: %v\n%s", err, b)
	}
	want := map[string]any{
		"author_id":          "1300000000000000000",
		"author_name":        "alice",
		"channel_id":         "1200000000000000000",
		"content":            *m.Content,
		"message_timestamp":  "2025-11-07 18:00:00.123",
		"message_id":         "1436400000000000000",
		"guild_id":           "1100000000000000000",
		"author_is_bot":      false,
		"event_kind":         "create",
		"author_global_name": nil,
		"webhook_id":         nil,
		"edited_timestamp":   nil,
		"schema_version":     float64(1),
	}
	if len(got) != len(want) {
		t.Errorf("got %d fields, want %d: %s", len(got), len(want), b)
	}
	for k, v := range want {
		if gv, ok := got[k]; !ok || gv != v {
			t.Errorf("field %s = %#v (present %v), want %#v", k, gv, ok, v)
		}
	}
	// The seed's five fields come first, in the seed's order.
	if !strings.HasPrefix(string(b), `{"author_id":`) {
		t.Errorf("record does not start with author_id: %s", b)
	}
}

func TestEncodedRecordsValidateAgainstSchema(t *testing.T) {
	s := compileSchema(t)
	edited := time.Date(2025, 11, 7, 18, 1, 0, 0, time.UTC)
	cases := map[string]Message{
		"guild message": sample(),
		"dm":            func() Message { m := sample(); m.GuildID = nil; return m }(),
		"webhook": func() Message {
			m := sample()
			m.WebhookID = Ptr("1400000000000000000")
			m.AuthorIsBot = true
			m.AuthorGlobalName = Ptr("Captain Hook")
			return m
		}(),
		"content dropped": func() Message { m := sample(); m.Content = nil; return m }(),
		"update":          func() Message { m := sample(); m.Kind = KindUpdate; m.EditedTimestamp = &edited; return m }(),
		"delete": func() Message {
			m := sample()
			m.Kind = KindDelete
			m.AuthorID, m.AuthorName, m.Content = nil, nil, nil
			return m
		}(),
		"empty content, wide name": func() Message { m := sample(); m.Content = Ptr(""); m.AuthorName = Ptr("山田太郎"); return m }(),
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(&m)
			if err != nil {
				t.Fatal(err)
			}
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(v); err != nil {
				t.Errorf("record does not validate: %v\n%s", err, b)
			}
		})
	}
}

// The schema must be able to reject: a record missing a seed field, or with a
// timestamp in another format, does not validate.
func TestSchemaRejectsBadRecords(t *testing.T) {
	s := compileSchema(t)
	for name, rec := range map[string]string{
		"missing author_name": `{"author_id":"1","channel_id":"2","content":"x","message_timestamp":"2025-11-07 18:00:00.000","message_id":"3","guild_id":null,"author_is_bot":false,"event_kind":"create"}`,
		"iso timestamp":       `{"author_id":"1","author_name":"a","channel_id":"2","content":"x","message_timestamp":"2025-11-07T18:00:00Z","message_id":"3","guild_id":null,"author_is_bot":false,"event_kind":"create"}`,
		"bad kind":            `{"author_id":"1","author_name":"a","channel_id":"2","content":"x","message_timestamp":"2025-11-07 18:00:00.000","message_id":"3","guild_id":null,"author_is_bot":false,"event_kind":"edit"}`,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(rec))
		if err != nil {
			t.Fatal(err)
		}
		if s.Validate(v) == nil {
			t.Errorf("%s: schema accepted %s", name, rec)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	edited := time.Date(2025, 11, 7, 18, 1, 2, 3_000_000, time.UTC)
	m.EditedTimestamp = &edited
	m.Kind = KindUpdate
	m.AuthorGlobalName = Ptr("Alice ✨")
	m.WebhookID = Ptr("99")
	b, err := Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, b)
	}
	assertEqual(t, got, m)
}

func assertEqual(t *testing.T, got, want Message) {
	t.Helper()
	gb, _ := Encode(&got)
	wb, _ := Encode(&want)
	if string(gb) != string(wb) || !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("got  %s\nwant %s", gb, wb)
	}
}

func TestDecodeSeedRecord(t *testing.T) {
	// What the seed's Python producer writes: five fields, no kind.
	rec := `{"author_id": "42", "author_name": "bob", "channel_id": "7", "content": "oi", "message_timestamp": "2025-11-07 18:00:00.000", "extra": {"nested": [1, 2]}}`
	m, err := Decode([]byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindCreate || *m.AuthorName != "bob" || m.ChannelID != "7" || m.GuildID != nil ||
		!m.Timestamp.Equal(time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("decoded %+v", m)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, rec string
		field     string
		reason    Reason
	}{
		{"not json", `{"author_id":`, "", ReasonMalformedJSON},
		{"array", `[1,2]`, "", ReasonMalformedJSON},
		{"null", `null`, "", ReasonMalformedJSON},
		{"empty", ``, "", ReasonMalformedJSON},
		{"trailing", `{"message_timestamp":"2025-11-07 18:00:00.000"} x`, "", ReasonMalformedJSON},
		{"missing timestamp", `{"author_name":"a"}`, FieldTimestamp, ReasonMissingField},
		{"null timestamp", `{"message_timestamp":null}`, FieldTimestamp, ReasonMissingField},
		{"bad timestamp", `{"message_timestamp":"yesterday"}`, FieldTimestamp, ReasonBadTimestamp},
		{"month 13", `{"message_timestamp":"2025-13-07 18:00:00.000"}`, FieldTimestamp, ReasonBadTimestamp},
		{"timestamp number", `{"message_timestamp":1762538400000}`, FieldTimestamp, ReasonWrongType},
		{"author number", `{"author_name":5,"message_timestamp":"2025-11-07 18:00:00.000"}`, FieldAuthorName, ReasonWrongType},
		{"bot string", `{"author_is_bot":"yes","message_timestamp":"2025-11-07 18:00:00.000"}`, FieldAuthorIsBot, ReasonWrongType},
		{"unknown kind", `{"event_kind":"edit","message_timestamp":"2025-11-07 18:00:00.000"}`, FieldKind, ReasonBadValue},
		{"bad edited", `{"edited_timestamp":"x","message_timestamp":"2025-11-07 18:00:00.000"}`, FieldEditedTimestamp, ReasonBadTimestamp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.rec))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode(%s) error = %v, want *FieldError", c.rec, err)
			}
			if fe.Field != c.field || fe.Reason != c.reason {
				t.Errorf("got field %q reason %s, want field %q reason %s (%v)", fe.Field, fe.Reason, c.field, c.reason, err)
			}
			if c.field != "" && !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name the field %q", err, c.field)
			}
		})
	}
}

func TestDecodeNullsAndISO(t *testing.T) {
	m, err := Decode([]byte(`{"author_name":null,"guild_id":null,"message_timestamp":"2017-07-11T17:27:24.250000+00:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.AuthorName != nil || m.GuildID != nil {
		t.Errorf("nulls not kept: %+v", m)
	}
	if want := time.Date(2017, 7, 11, 17, 27, 24, 250_000_000, time.UTC); !m.Timestamp.Equal(want) {
		t.Errorf("timestamp %v, want %v", m.Timestamp, want)
	}
}

func TestParseTimestamp(t *testing.T) {
	utc := func(y, mo, d, h, mi, s, us int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, us*1000, time.UTC)
	}
	good := map[string]time.Time{
		"2025-11-07 18:00:00.000":          utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 18:00:00.5":            utc(2025, 11, 7, 18, 0, 0, 500000),
		"2025-11-07 18:00:00":              utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 18:00":                 utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07":                       utc(2025, 11, 7, 0, 0, 0, 0),
		"2025-1-7 8:5:3":                   utc(2025, 1, 7, 8, 5, 3, 0),
		"2025-11-07T18:00:00Z":             utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07T18:00:00.123456789Z":   utc(2025, 11, 7, 18, 0, 0, 123456),
		"2025-11-07T20:00:00+02:00":        utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07T15:30:00-0230":         utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07T19:00:00+01":           utc(2025, 11, 7, 18, 0, 0, 0),
		" 2025-11-07 18:00:00.000 ":        utc(2025, 11, 7, 18, 0, 0, 0),
		"2024-02-29 00:00:00":              utc(2024, 2, 29, 0, 0, 0, 0),
		"2017-07-11T17:27:24.250000+00:00": utc(2017, 7, 11, 17, 27, 24, 250000),
		// Forms Spark's CAST(... AS TIMESTAMP) accepts too (checked against Spark 4.2).
		"2025":                             utc(2025, 1, 1, 0, 0, 0, 0),
		"2025-11":                          utc(2025, 11, 1, 0, 0, 0, 0),
		"2025-11-07 18":                    utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 18:00:00.":             utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 18:00:00.1234567":      utc(2025, 11, 7, 18, 0, 0, 123456),
		"2025-11-07 18:00:00.000 UTC":      utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 19:00:00 +01:00":       utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 19:00:00GMT+01:00":     utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 19:00:00UTC+1":         utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 19:00:00+1":            utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 19:00:00+1:00":         utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 19:30:15+01:30:15":     utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 17:00:00-1":            utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 19:00:00 Europe/Paris": utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 13:00:00EST":           utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-07 10:00:00 PST":          utc(2025, 11, 7, 18, 0, 0, 0),
		"2025-11-08 12:00:00+18:00":        utc(2025, 11, 7, 18, 0, 0, 0),
		"+2025-11-07":                      utc(2025, 11, 7, 0, 0, 0, 0),
		"12025-11-07 18:00:00":             utc(12025, 11, 7, 18, 0, 0, 0),
		"294246-12-31 23:59:59":            utc(294246, 12, 31, 23, 59, 59, 0),
		"-290307-01-01 00:00:00":           utc(-290307, 1, 1, 0, 0, 0, 0),
		"1969-12-31 23:59:59.999":          utc(1969, 12, 31, 23, 59, 59, 999000),
		"2025-11-07 18:00:00\t":            utc(2025, 11, 7, 18, 0, 0, 0),
	}
	for in, want := range good {
		got, err := ParseTimestamp(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "205", "2025-11-07X", "2025-02-30 00:00:00", "2023-02-29",
		"2025-11-07 24:00:00", "2025-11-07 18:60", "2025-11-07 18:00:60", "2025-11-07 18:00:00+25:00",
		"2025-11-07 18:00:00+19:00", "2025-11-07 18:00:00+18:01", "2025-11-07T", "2025-11-07 18:00:00z",
		"2025-11-07 18:00:00 utc", "2025-11-07 18:00:00 Mars/Base", "2025-11-07 18:00:00 Local",
		"2025-11-07 18:00Z", "2025-11-07Z", "1234567-01-01", "20251107", ",000", "2025-11-07 18:00:00.1.2",
		// Beyond Unix microseconds in an int64 (year 999999 used to wrap
		// around to a time in year -169,000).
		"999999-01-01 00:00:00", "-999999-01-01", "294248-01-01", "-290309-01-01",
		// Spark reads these as today's date at that time; we refuse to depend on the wall clock.
		"18:00:00", "T18:00:00"} {
		if got, err := ParseTimestamp(in); err == nil {
			t.Errorf("ParseTimestamp(%q) = %v, want error", in, got)
		}
	}
}

func TestFormatTimestampTruncatesToMillis(t *testing.T) {
	in := time.Date(2025, 11, 7, 20, 0, 0, 999_999_999, time.FixedZone("x", 2*3600))
	if got, want := FormatTimestamp(in), "2025-11-07 18:00:00.999"; got != want {
		t.Errorf("FormatTimestamp = %q, want %q", got, want)
	}
	if got := FormatTimestamp(in); got != in.UTC().Format(TimestampLayout) {
		t.Errorf("FormatTimestamp disagrees with time.Format: %q vs %q", got, in.UTC().Format(TimestampLayout))
	}
}

func TestEncodeRejects(t *testing.T) {
	m := sample()
	m.Kind = "bogus"
	if _, err := Encode(&m); err == nil {
		t.Error("Encode accepted an unknown kind")
	}
	m = sample()
	m.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := Encode(&m); err == nil {
		t.Error("Encode accepted year 10000")
	}
}

func TestSchemaFileIsValidJSON(t *testing.T) {
	b, err := os.ReadFile(schemaPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatal("schema is not valid JSON")
	}
}

// Pins two past bugs: trailing "]" or "}" after the object was accepted, and
// with several wrong-typed fields the one reported depended on map order.
func TestDecodeTrailingAndFirstBadField(t *testing.T) {
	for _, rec := range []string{
		`{"message_timestamp":"2025-11-07 18:00:00.000"}]`,
		`{"message_timestamp":"2025-11-07 18:00:00.000"}}`,
		`{"message_timestamp":"2025-11-07 18:00:00.000"} {}`,
	} {
		if _, err := Decode([]byte(rec)); err == nil {
			t.Errorf("Decode(%s) accepted trailing data", rec)
		}
	}
	if _, err := Decode([]byte("{\"message_timestamp\":\"2025-11-07 18:00:00.000\"} \n\t")); err != nil {
		t.Errorf("trailing whitespace rejected: %v", err)
	}
	for i := 0; i < 20; i++ {
		_, err := Decode([]byte(`{"channel_id":1,"author_name":2,"author_id":3,"message_timestamp":"2025-11-07"}`))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != FieldChannelID {
			t.Fatalf("got %v, want the first bad field, channel_id", err)
		}
	}
}

// An error about a long value quotes only its start.
func TestLongValuesAreCutInErrors(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	for _, in := range []string{
		`{"author_name":"a","message_timestamp":"` + long + `"}`,
		`{"author_name":"a","message_timestamp":"2025-11-07 18:00:00","event_kind":"` + long + `"}`,
	} {
		var p Projection
		errP := Project([]byte(in), &p)
		_, errD := Decode([]byte(in))
		for _, err := range []error{errP, errD} {
			if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), "(1048576 bytes)") {
				t.Errorf("error %.300q: want one under 300 bytes naming the value's length", err)
			}
		}
	}
}
