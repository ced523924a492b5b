package discord

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
)

func ptr(s string) *string { return &s }

func TestSnowflakeTime(t *testing.T) {
	// Discord's documentation example: 175928847299117063 -> 2016-04-30 11:18:25.796 UTC.
	got, err := SnowflakeTime("175928847299117063")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2016, 4, 30, 11, 18, 25, 796e6, time.UTC)
	if !got.Equal(want) {
		t.Errorf("SnowflakeTime = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "abc", "-1", "18446744073709551616"} {
		if _, err := SnowflakeTime(bad); err == nil {
			t.Errorf("SnowflakeTime(%q): no error", bad)
		}
	}
}

func TestMapEventShapes(t *testing.T) {
	ts := time.Date(2017, 7, 11, 17, 27, 24, 250e6, time.UTC)
	tests := []struct {
		name   string
		typ    string
		d      string
		want   chat.Message
		check  func(t *testing.T, ev *Event)
		selfID string
	}{
		{
			name: "plain guild message",
			typ:  EventMessageCreate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"290926798626357250",
				"author":{"id":"53908232506183680","username":"mason","global_name":"Mason","discriminator":"0"},
				"content":"hello","timestamp":"2017-07-11T17:27:24.250000+00:00","edited_timestamp":null,"type":0,
				"attachments":[],"embeds":[],"mentions":[],"flags":0}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), AuthorID: ptr("53908232506183680"), AuthorName: ptr("mason"),
				AuthorGlobalName: ptr("Mason"), Content: ptr("hello"), Timestamp: ts},
		},
		{
			name: "webhook message",
			typ:  EventMessageCreate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"290926798626357250",
				"webhook_id":"223704706495545344","author":{"id":"223704706495545344","username":"Captain Hook","bot":true,"discriminator":"0000","global_name":null},
				"content":"deploy done","timestamp":"2017-07-11T17:27:24.250000+00:00","type":0}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), AuthorID: ptr("223704706495545344"), AuthorName: ptr("Captain Hook"),
				AuthorIsBot: true, WebhookID: ptr("223704706495545344"), Content: ptr("deploy done"), Timestamp: ts},
		},
		{
			name: "direct message without guild_id",
			typ:  EventMessageCreate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250",
				"author":{"id":"53908232506183680","username":"mason","global_name":null,"discriminator":"0"},
				"content":"psst","timestamp":"2017-07-11T17:27:24.250000+00:00","type":0}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				AuthorID: ptr("53908232506183680"), AuthorName: ptr("mason"), Content: ptr("psst"), Timestamp: ts},
		},
		{
			name: "reply",
			typ:  EventMessageCreate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"290926798626357250",
				"author":{"id":"53908232506183680","username":"mason","global_name":"Mason"},
				"content":"agreed","timestamp":"2017-07-11T17:27:24.250000+00:00","type":19,
				"message_reference":{"message_id":"334385199974967041","channel_id":"290926798999357250"},
				"referenced_message":{"id":"334385199974967041","content":"x"}}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), AuthorID: ptr("53908232506183680"), AuthorName: ptr("mason"),
				AuthorGlobalName: ptr("Mason"), Content: ptr("agreed"), Timestamp: ts},
			check: func(t *testing.T, ev *Event) {
				if ev.MessageType != MessageTypeReply {
					t.Errorf("MessageType = %d, want %d", ev.MessageType, MessageTypeReply)
				}
			},
		},
		{
			name: "system message (member join) with empty content",
			typ:  EventMessageCreate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"290926798626357250",
				"author":{"id":"53908232506183680","username":"newbie","global_name":null,"discriminator":"0"},
				"content":"","timestamp":"2017-07-11T17:27:24.250000+00:00","type":7}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), AuthorID: ptr("53908232506183680"), AuthorName: ptr("newbie"),
				Content: ptr(""), Timestamp: ts},
			check: func(t *testing.T, ev *Event) {
				if ev.MessageType != 7 || ev.HasBody {
					t.Errorf("MessageType, HasBody = %d, %v; want 7, false", ev.MessageType, ev.HasBody)
				}
			},
		},
		{
			name: "attachment with empty content",
			typ:  EventMessageCreate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"290926798626357250",
				"author":{"id":"53908232506183680","username":"mason","global_name":"Mason"},
				"content":"","timestamp":"2017-07-11T17:27:24.250000+00:00","type":0,
				"attachments":[{"id":"1","filename":"cat.png","size":10,"url":"https://cdn.example/cat.png"}]}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), AuthorID: ptr("53908232506183680"), AuthorName: ptr("mason"),
				AuthorGlobalName: ptr("Mason"), Content: ptr(""), Timestamp: ts},
			check: func(t *testing.T, ev *Event) {
				if !ev.HasBody {
					t.Error("HasBody = false for a message with an attachment")
				}
			},
		},
		{
			name: "long unicode content and a bot author",
			typ:  EventMessageCreate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"290926798626357250",
				"author":{"id":"53908232506183680","username":"robo","global_name":null,"bot":true},
				"content":"` + strings.Repeat("日本語 🎉 ação \\u2028 \\\"q\\\" ", 100) + `","timestamp":"2017-07-11T17:27:24.250000+00:00","type":0}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), AuthorID: ptr("53908232506183680"), AuthorName: ptr("robo"),
				AuthorIsBot: true, Content: ptr(strings.Repeat("日本語 🎉 ação \u2028 \"q\" ", 100)), Timestamp: ts},
			check: func(t *testing.T, ev *Event) {
				if !ev.AuthorIsBot {
					t.Error("AuthorIsBot = false")
				}
			},
		},
		{
			name:   "mention of the bot itself",
			typ:    EventMessageCreate,
			selfID: "11",
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"290926798626357250",
				"author":{"id":"53908232506183680","username":"mason","global_name":"","discriminator":"0"},
				"content":"<@11> hi","timestamp":"2017-07-11T17:27:24.25Z","type":0,"mentions":[{"id":"11","username":"b"}]}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), AuthorID: ptr("53908232506183680"), AuthorName: ptr("mason"),
				Content: ptr("<@11> hi"), Timestamp: ts},
			check: func(t *testing.T, ev *Event) {
				if !ev.MentionsSelf || ev.FromSelf {
					t.Errorf("MentionsSelf, FromSelf = %v, %v; want true, false", ev.MentionsSelf, ev.FromSelf)
				}
			},
		},
		{
			name: "timestamp with another zone is converted to UTC",
			typ:  EventMessageCreate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"1",
				"author":{"id":"53908232506183680","username":"mason"},
				"content":"x","timestamp":"2017-07-11T19:27:24.250000+02:00","type":0}`,
			want: chat.Message{Kind: chat.KindCreate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("1"), AuthorID: ptr("53908232506183680"), AuthorName: ptr("mason"),
				Content: ptr("x"), Timestamp: ts},
		},
		{
			name: "update",
			typ:  EventMessageUpdate,
			d: `{"id":"334385199974967042","channel_id":"290926798999357250","guild_id":"290926798626357250",
				"author":{"id":"53908232506183680","username":"mason","global_name":"Mason"},
				"content":"hello, edited","timestamp":"2017-07-11T17:27:24.250000+00:00","edited_timestamp":"2017-07-11T17:30:00.000000+00:00","type":0}`,
			want: chat.Message{Kind: chat.KindUpdate, MessageID: "334385199974967042", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), AuthorID: ptr("53908232506183680"), AuthorName: ptr("mason"),
				AuthorGlobalName: ptr("Mason"), Content: ptr("hello, edited"), Timestamp: ts,
				EditedTimestamp: func() *time.Time { e := time.Date(2017, 7, 11, 17, 30, 0, 0, time.UTC); return &e }()},
		},
		{
			name: "delete",
			typ:  EventMessageDelete,
			d:    `{"id":"175928847299117063","channel_id":"290926798999357250","guild_id":"290926798626357250"}`,
			want: chat.Message{Kind: chat.KindDelete, MessageID: "175928847299117063", ChannelID: "290926798999357250",
				GuildID: ptr("290926798626357250"), Timestamp: time.Date(2016, 4, 30, 11, 18, 25, 796e6, time.UTC)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := MapEvent(tt.typ, json.RawMessage(tt.d), tt.selfID)
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			ev := &evs[0]
			if ev.Err != nil {
				t.Fatalf("Err = %v", ev.Err)
			}
			if ev.Type != tt.typ {
				t.Errorf("Type = %q, want %q", ev.Type, tt.typ)
			}
			got, _ := chat.Encode(&ev.Message)
			want, _ := chat.Encode(&tt.want)
			if string(got) != string(want) {
				t.Errorf("record\n got %s\nwant %s", got, want)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func TestMapEventDeleteBulk(t *testing.T) {
	evs := MapEvent(EventMessageDeleteBulk, json.RawMessage(`{"ids":["175928847299117063","175928847299117064"],"channel_id":"2"}`), "")
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	for i, id := range []string{"175928847299117063", "175928847299117064"} {
		m := evs[i].Message
		if evs[i].Err != nil || m.Kind != chat.KindDelete || m.MessageID != id || m.ChannelID != "2" || m.GuildID != nil || m.AuthorID != nil || m.Content != nil {
			t.Errorf("event %d = %+v (err %v), want a delete of %s in channel 2 without guild, author or content", i, m, evs[i].Err, id)
		}
	}
}

func TestMapEventMalformed(t *testing.T) {
	tests := []struct{ name, typ, d, wantErr string }{
		{"not JSON", EventMessageCreate, `{"id":`, "MESSAGE_CREATE payload"},
		{"id not a snowflake", EventMessageCreate, `{"id":"x","channel_id":"1","author":{"id":"2","username":"u"},"content":"","timestamp":"2017-07-11T17:27:24Z"}`, "not a snowflake"},
		{"no author", EventMessageCreate, `{"id":"1","channel_id":"1","content":"","timestamp":"2017-07-11T17:27:24Z"}`, "no author"},
		{"no timestamp", EventMessageCreate, `{"id":"1","channel_id":"1","author":{"id":"2","username":"u"}}`, "no timestamp"},
		{"bad timestamp", EventMessageCreate, `{"id":"1","channel_id":"1","author":{"id":"2","username":"u"},"timestamp":"yesterday"}`, "timestamp"},
		{"bad channel", EventMessageCreate, `{"id":"1","channel_id":"","author":{"id":"2","username":"u"},"timestamp":"2017-07-11T17:27:24Z"}`, "channel_id"},
		{"content of the wrong type", EventMessageCreate, `{"id":"1","channel_id":"1","author":{"id":"2","username":"u"},"content":5,"timestamp":"2017-07-11T17:27:24Z"}`, "payload"},
		{"delete with a bad id", EventMessageDelete, `{"id":"abc","channel_id":"1"}`, "not a snowflake"},
		{"bulk delete without ids", EventMessageDeleteBulk, `{"channel_id":"1"}`, "no ids"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := MapEvent(tt.typ, json.RawMessage(tt.d), "")
			if len(evs) != 1 || evs[0].Err == nil {
				t.Fatalf("got %+v, want one event with an error", evs)
			}
			if !strings.Contains(evs[0].Err.Error(), tt.wantErr) {
				t.Errorf("Err = %q, want it to mention %q", evs[0].Err, tt.wantErr)
			}
		})
	}
	if evs := MapEvent("GUILD_CREATE", json.RawMessage(`{}`), ""); evs != nil {
		t.Errorf("GUILD_CREATE mapped to %v, want nil", evs)
	}
}

func FuzzMapEvent(f *testing.F) {
	f.Add(EventMessageCreate, `{"id":"1","channel_id":"1","author":{"id":"2","username":"u"},"content":"x","timestamp":"2017-07-11T17:27:24Z"}`)
	f.Add(EventMessageDeleteBulk, `{"ids":["1","2"],"channel_id":"1"}`)
	f.Fuzz(func(t *testing.T, typ, d string) {
		for _, ev := range MapEvent(typ, json.RawMessage(d), "2") {
			if ev.Err != nil {
				continue
			}
			if _, err := chat.Encode(&ev.Message); err != nil {
				// Out-of-range timestamps are the only encode failure.
				if !strings.Contains(err.Error(), "outside years") {
					t.Fatalf("mapped event does not encode: %v", err)
				}
			}
		}
	})
}
