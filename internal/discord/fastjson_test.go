package discord

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// A MESSAGE_CREATE as the Gateway sends it (the simulator's shape).
const gatewayCreate = `{"guild_id":"81384788765712384","member":{"roles":[],"nick":null},"channel_type":0,` +
	`"id":"1100000000000000001","channel_id":"81384788765712385","author":{"id":"80351110224678912",` +
	`"username":"nelly","global_name":"Nelly","discriminator":"0","avatar":null,"bot":false},` +
	`"content":"Hello, world! ✨","timestamp":"2026-12-07T12:00:00.123000+00:00","edited_timestamp":null,` +
	`"tts":false,"mention_everyone":false,"mentions":[{"id":"2","username":"self","global_name":null,"discriminator":"0"}],` +
	`"mention_roles":[],"attachments":[],"embeds":[],"components":[],"pinned":false,"type":0,"flags":0}`

// fastCases are payloads the fast reader must decode as encoding/json
// does, or leave to it.
var fastCases = []string{
	gatewayCreate,
	` { "id" : "1100000000000000001" , "channel_id":"1", "author":{"id":"3","username":"a\nb \"q\" \u00e9 \ud83d\ude00"},` +
		` "content":"line\none\ttab \\ \/ \u0000 \ud800 lone","timestamp":"2026-12-07T12:00:00Z" } `,
	`{"id":"1100000000000000001","channel_id":"1","author":{"id":"3","username":"x"},"content":"bad utf8 ` + "\xff\xfe" + `","timestamp":"2026-12-07T12:00:00Z"}`,
	`{"id":"1100000000000000001","channel_id":"1","author":null,"content":null,"timestamp":"2026-12-07T12:00:00Z","poll":null}`,
	`{"id":"1100000000000000001","channel_id":"1","author":{"id":"3","username":"x","bot":true},"timestamp":"2026-12-07T12:00:00Z",` +
		`"attachments":[{"id":"9","filename":"a.png"}],"embeds":[1,"x",null,[]],"sticker_items":null,"poll":{"question":{}},"message_snapshots":[{}]}`,
	`{"id":"1100000000000000001","channel_id":"1","webhook_id":"77","author":{"id":"3","username":"hook"},"timestamp":"2026-12-07T12:00:00Z","type":19,"mentions":[null,{"id":"2"}]}`,
	`{"id":"1","ID":"2","channel_id":"1"}`,                          // another case: encoding/json's matching
	`{"id":"1","id":"2","channel_id":"1"}`,                          // a repeated field
	`{"id":"1","channel_id":"1","type":1.0}`,                        // a float into an int
	`{"id":"1","channel_id":"1","type":99999999999999999999}`,       // overflow
	`{"id":"1","channel_id":"1","content":5}`,                       // wrong type
	`{"id":"1","channel_id":"1","author":{"id":1}}`,                 // wrong type, nested
	`{"id":"1","channel_id":"1","mentions":{}}`,                     // wrong type
	`{"id":"1","channel_id":"1","attachments":"x"}`,                 // wrong type
	`{"id":"1","channel_id":"1"} x`,                                 // trailing data
	`{"id":"1","channel_id":"1",}`,                                  // malformed
	`{"id":"1","channel_id":"1","x":[1,2,{"a":[true,false,null]}]}`, // unknown fields
	`{"i\u0064":"1"}`,                                               // an escaped key
	`{"id":"1","channel_id":"1","x":01}`,                            // a bad number
	`null`, `[]`, `"x"`, ``, `{`,
}

func TestFastMessageAgrees(t *testing.T) {
	for i, d := range fastCases {
		checkFastMessage(t, fmt.Sprint("case ", i), []byte(d))
	}
	// The common shapes take the fast path (else it would only be slower).
	for _, i := range []int{0, 1, 2, 3, 4, 5} {
		var m apiMessage
		if !fastMessage([]byte(fastCases[i]), &m) {
			t.Errorf("case %d left to encoding/json: %s", i, fastCases[i])
		}
	}
}

func TestFastFrameAgrees(t *testing.T) {
	frames := []string{
		`{"t":"MESSAGE_CREATE","s":42,"op":0,"d":` + gatewayCreate + `}`,
		`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\"x\",{\"micros\":0}]"]}}`,
		`{"op":11}`, `{"op":9,"d":false}`, `{"op":0,"d":null,"s":1,"t":"X"}`,
		`{"op":1.5}`, `{"op":"0"}`, `{"OP":1}`, `{"op":1,"op":2}`, `{"s":-3,"op":-1,"t":"A\u0042"}`,
		`{"op":0} {}`, `{"op":0`, `[1]`, `null`, `{"op":99999999999999999999}`,
	}
	for i, fr := range frames {
		checkFastFrame(t, fmt.Sprint("frame ", i), []byte(fr))
	}
	var f frame
	if !fastFrame([]byte(frames[0]), &f) || f.Op != 0 || *f.S != 42 || *f.T != EventMessageCreate || string(f.D) != gatewayCreate {
		t.Errorf("a dispatch frame was not read by the fast path: %+v", f)
	}
}

// checkFastFrame: whatever fastFrame takes, it reads as encoding/json does.
func checkFastFrame(t *testing.T, name string, data []byte) {
	t.Helper()
	var got frame
	if !fastFrame(data, &got) {
		return
	}
	var want frame
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: fast reader took %q, encoding/json refuses it: %v", name, data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: %q read as %+v, encoding/json reads %+v", name, data, got, want)
	}
}

// checkFastMessage: whatever fastMessage takes, it reads as encoding/json
// does, and the events mapped from it are the same.
func checkFastMessage(t *testing.T, name string, d []byte) {
	t.Helper()
	var got apiMessage
	if fastMessage(d, &got) {
		var want apiMessage
		if err := json.Unmarshal(d, &want); err != nil {
			t.Fatalf("%s: fast reader took %q, encoding/json refuses it: %v", name, d, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %q read as %+v, encoding/json reads %+v", name, d, got, want)
		}
	}
	for _, typ := range []string{EventMessageCreate, EventMessageUpdate} {
		fast, slow := mapEvent(typ, d, "2"), MapEvent(typ, d, "2")
		if len(fast) != len(slow) {
			t.Fatalf("%s: %d events, want %d", name, len(fast), len(slow))
		}
		for i := range fast {
			if (fast[i].Err == nil) != (slow[i].Err == nil) ||
				(fast[i].Err != nil && fast[i].Err.Error() != slow[i].Err.Error()) {
				t.Fatalf("%s: error %v, want %v", name, fast[i].Err, slow[i].Err)
			}
			fast[i].Err, slow[i].Err = nil, nil
			if !reflect.DeepEqual(fast[i], slow[i]) {
				t.Fatalf("%s: event %+v, want %+v", name, fast[i], slow[i])
			}
		}
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, d := range fastCases {
		f.Add([]byte(d))
	}
	f.Add([]byte(`{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"id":"1"}}`))
	f.Fuzz(func(t *testing.T, d []byte) {
		checkFastFrame(t, "fuzz", d)
		checkFastMessage(t, "fuzz", d)
	})
}

// BenchmarkDecodeDispatch: a MESSAGE_CREATE frame to its event, the fast
// path against encoding/json's two passes.
func BenchmarkDecodeDispatch(b *testing.B) {
	data := []byte(`{"t":"MESSAGE_CREATE","s":42,"op":0,"d":` + gatewayCreate + `}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f frame
			if !fastFrame(data, &f) {
				b.Fatal("not fast")
			}
			if evs := mapEvent(*f.T, f.D, "2"); evs[0].Err != nil {
				b.Fatal(evs[0].Err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f frame
			if err := json.Unmarshal(data, &f); err != nil {
				b.Fatal(err)
			}
			if evs := MapEvent(*f.T, f.D, "2"); evs[0].Err != nil {
				b.Fatal(evs[0].Err)
			}
		}
	})
}
