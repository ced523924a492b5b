package discord

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/cordstream/cordstream/internal/chat"
)

// The Gateway sends nearly nothing but message dispatches, each decoded by
// encoding/json twice (the frame, then its payload) with a full validation
// pass before each: most of the bot's CPU. The readers below take a frame
// and a message payload in one pass each, validating as they go, into the
// same structs encoding/json fills (frame, apiMessage), so that mapMessage
// maps both alike.
//
// They read only what they can read exactly as encoding/json does: field
// names spelt exactly (encoding/json also takes other cases), each known
// field once, values of the expected JSON type, strings without escapes or
// invalid UTF-8 (those are decoded by encoding/json itself). Anything else
// makes them report false, and the caller decodes with encoding/json, which
// also words the error of a malformed frame. FuzzFastDecode checks that
// whatever they accept, they decode as encoding/json does.

// fastMaxDepth bounds the nesting the fast reader follows; deeper values
// are left to encoding/json (whose limit is 10,000).
const fastMaxDepth = 64

// jreader is a single-pass JSON reader over d.
type jreader struct {
	d []byte
	i int
}

func (r *jreader) space() {
	for r.i < len(r.d) {
		switch r.d[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (r *jreader) peek() byte {
	r.space()
	if r.i >= len(r.d) {
		return 0
	}
	return r.d[r.i]
}

// consume skips spaces and c, reporting whether c was there.
func (r *jreader) consume(c byte) bool {
	if r.peek() != c {
		return false
	}
	r.i++
	return true
}

// rawString reads a string at r.i (after spaces) and returns its contents.
// plain reports that they decode to themselves: no escapes, valid UTF-8.
func (r *jreader) rawString() (b []byte, plain, ok bool) {
	if r.peek() != '"' {
		return nil, false, false
	}
	start := r.i + 1
	ascii := true
	plain = true
	for i := start; i < len(r.d); i++ {
		c := r.d[i]
		switch {
		case c == '"':
			r.i = i + 1
			b = r.d[start:i]
			if plain && !ascii && !utf8.Valid(b) {
				plain = false
			}
			return b, plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(r.d) {
				return nil, false, false
			}
			switch r.d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(r.d) {
					return nil, false, false
				}
				for _, h := range r.d[i+2 : i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				i += 5
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// str reads a string value as encoding/json decodes it.
func (r *jreader) str() (string, bool) {
	start := r.i
	b, plain, ok := r.rawString()
	if !ok {
		return "", false
	}
	if plain {
		return string(b), true
	}
	// Escapes or invalid UTF-8: encoding/json's own unquoting, on the
	// string alone.
	var s string
	if err := json.Unmarshal(r.d[skipSpaceAt(r.d, start):r.i], &s); err != nil {
		return "", false
	}
	return s, true
}

func skipSpaceAt(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// key reads an object key and its ':'. It fails (leaving the object to
// encoding/json) on a key with escapes or any byte outside [a-z0-9_], where
// encoding/json's case-insensitive matching could take it for a known
// field.
func (r *jreader) key() ([]byte, bool) {
	b, plain, ok := r.rawString()
	if !ok || !plain {
		return nil, false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return nil, false
		}
	}
	return b, r.consume(':')
}

// literal reads true, false or null at r.i (after spaces).
func (r *jreader) literal(lit string) bool {
	r.space()
	if len(r.d)-r.i >= len(lit) && string(r.d[r.i:r.i+len(lit)]) == lit {
		r.i += len(lit)
		return true
	}
	return false
}

// number reads a JSON number; isInt reports one without fraction or
// exponent.
func (r *jreader) number() (b []byte, isInt, ok bool) {
	r.space()
	start, i, d := r.i, r.i, r.d
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil, false, false
	}
	isInt = true
	if i < len(d) && d[i] == '.' {
		isInt = false
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, false, false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		isInt = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil, false, false
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	r.i = i
	return d[start:i], isInt, true
}

// integer reads an integer number that fits an int64.
func (r *jreader) integer() (int64, bool) {
	b, isInt, ok := r.number()
	if !ok || !isInt {
		return 0, false
	}
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(b), len(b)), 10, 64)
	return n, err == nil
}

// skip reads and validates any value.
func (r *jreader) skip(depth int) bool {
	switch c := r.peek(); {
	case c == '"':
		_, _, ok := r.rawString()
		return ok
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		_, _, ok := r.number()
		return ok
	case c == '[':
		if depth > fastMaxDepth {
			return false
		}
		r.i++
		if r.consume(']') {
			return true
		}
		for {
			if !r.skip(depth + 1) {
				return false
			}
			if r.consume(']') {
				return true
			}
			if !r.consume(',') {
				return false
			}
		}
	case c == '{':
		if depth > fastMaxDepth {
			return false
		}
		r.i++
		if r.consume('}') {
			return true
		}
		for {
			if _, _, ok := r.rawString(); !ok || !r.consume(':') || !r.skip(depth+1) {
				return false
			}
			if r.consume('}') {
				return true
			}
			if !r.consume(',') {
				return false
			}
		}
	}
	return false
}

// object reads an object, calling field for each key with r at its value;
// field reads the value and reports whether it could. An object's known
// fields are numbered by field's caller; seen catches a repeated one.
func (r *jreader) object(field func(key []byte) bool) bool {
	if !r.consume('{') {
		return false
	}
	if r.consume('}') {
		return true
	}
	for {
		k, ok := r.key()
		if !ok || !field(k) {
			return false
		}
		if r.consume('}') {
			return true
		}
		if !r.consume(',') {
			return false
		}
	}
}

// optString reads a string or null into a *string field.
func (r *jreader) optString(dst **string) bool {
	if r.peek() == 'n' {
		*dst = nil
		return r.literal("null")
	}
	s, ok := r.str()
	if !ok {
		return false
	}
	*dst = &s
	return true
}

// plainString reads a string into a string field (null leaves it as is,
// as encoding/json does).
func (r *jreader) plainString(dst *string) bool {
	if r.peek() == 'n' {
		return r.literal("null")
	}
	s, ok := r.str()
	*dst = s
	return ok
}

// boolean reads true, false or null (null leaves dst as is).
func (r *jreader) boolean(dst *bool) bool {
	switch r.peek() {
	case 't':
		*dst = true
		return r.literal("true")
	case 'f':
		*dst = false
		return r.literal("false")
	case 'n':
		return r.literal("null")
	}
	return false
}

// once marks field bit in *seen, failing if it was already marked.
func once(seen *uint32, bit uint32) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// fastFrame reads a Gateway frame as json.Unmarshal into frame does; f.D
// shares data's memory.
func fastFrame(data []byte, f *frame) bool {
	*f = frame{}
	r := jreader{d: data}
	var seen uint32
	ok := r.object(func(k []byte) bool {
		switch string(k) {
		case "op":
			if !once(&seen, 1) {
				return false
			}
			if r.peek() == 'n' {
				return r.literal("null")
			}
			n, ok := r.integer()
			f.Op = int(n)
			return ok && int64(f.Op) == n
		case "s":
			if !once(&seen, 2) {
				return false
			}
			if r.peek() == 'n' {
				f.S = nil
				return r.literal("null")
			}
			n, ok := r.integer()
			f.S = &n
			return ok
		case "t":
			return once(&seen, 4) && r.optString(&f.T)
		case "d":
			if !once(&seen, 8) {
				return false
			}
			start := skipSpaceAt(r.d, r.i)
			if !r.skip(1) {
				return false
			}
			f.D = r.d[start:r.i]
			return true
		}
		return r.skip(1)
	})
	if !ok {
		return false
	}
	r.space()
	return r.i == len(r.d)
}

// fastUser reads a user object (or null, which leaves u as is).
func (r *jreader) user(u *apiUser) bool {
	if r.peek() == 'n' {
		return r.literal("null")
	}
	var seen uint32
	return r.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return once(&seen, 1) && r.plainString(&u.ID)
		case "username":
			return once(&seen, 2) && r.plainString(&u.Username)
		case "global_name":
			return once(&seen, 4) && r.optString(&u.GlobalName)
		case "discriminator":
			return once(&seen, 8) && r.plainString(&u.Discriminator)
		case "bot":
			return once(&seen, 16) && r.boolean(&u.Bot)
		case "system":
			return once(&seen, 32) && r.boolean(&u.System)
		}
		return r.skip(2)
	})
}

// rawArray reads an array of any values (or null) into a []json.RawMessage
// field; only its length matters to mapMessage, so the elements share the
// reader's memory.
func (r *jreader) rawArray(dst *[]json.RawMessage) bool {
	if r.peek() == 'n' {
		*dst = nil
		return r.literal("null")
	}
	if !r.consume('[') {
		return false
	}
	*dst = nil
	if r.consume(']') {
		*dst = []json.RawMessage{}
		return true
	}
	for {
		start := skipSpaceAt(r.d, r.i)
		if !r.skip(2) {
			return false
		}
		*dst = append(*dst, r.d[start:r.i])
		if r.consume(']') {
			return true
		}
		if !r.consume(',') {
			return false
		}
	}
}

// fastMessage reads a MESSAGE_CREATE or MESSAGE_UPDATE payload as
// json.Unmarshal into apiMessage does.
func fastMessage(d []byte, m *apiMessage) bool {
	*m = apiMessage{}
	r := jreader{d: d}
	if r.peek() != '{' {
		return false // null, or not an object: encoding/json's case
	}
	var seen uint32
	ok := r.object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return once(&seen, 1<<0) && r.plainString(&m.ID)
		case "channel_id":
			return once(&seen, 1<<1) && r.plainString(&m.ChannelID)
		case "guild_id":
			return once(&seen, 1<<2) && r.optString(&m.GuildID)
		case "author":
			if !once(&seen, 1<<3) {
				return false
			}
			if r.peek() == 'n' {
				m.Author = nil
				return r.literal("null")
			}
			m.Author = &apiUser{}
			return r.user(m.Author)
		case "content":
			return once(&seen, 1<<4) && r.optString(&m.Content)
		case "timestamp":
			return once(&seen, 1<<5) && r.optString(&m.Timestamp)
		case "edited_timestamp":
			return once(&seen, 1<<6) && r.optString(&m.EditedTimestamp)
		case "type":
			if !once(&seen, 1<<7) {
				return false
			}
			if r.peek() == 'n' {
				return r.literal("null")
			}
			n, ok := r.integer()
			m.Type = int(n)
			return ok && int64(m.Type) == n
		case "webhook_id":
			return once(&seen, 1<<8) && r.optString(&m.WebhookID)
		case "mentions":
			if !once(&seen, 1<<9) {
				return false
			}
			if r.peek() == 'n' {
				m.Mentions = nil
				return r.literal("null")
			}
			if !r.consume('[') {
				return false
			}
			m.Mentions = []apiUser{}
			if r.consume(']') {
				return true
			}
			for {
				var u apiUser
				if !r.user(&u) {
					return false
				}
				m.Mentions = append(m.Mentions, u)
				if r.consume(']') {
					return true
				}
				if !r.consume(',') {
					return false
				}
			}
		case "attachments":
			return once(&seen, 1<<10) && r.rawArray(&m.Attachments)
		case "embeds":
			return once(&seen, 1<<11) && r.rawArray(&m.Embeds)
		case "sticker_items":
			return once(&seen, 1<<12) && r.rawArray(&m.StickerItems)
		case "components":
			return once(&seen, 1<<13) && r.rawArray(&m.Components)
		case "message_snapshots":
			return once(&seen, 1<<14) && r.rawArray(&m.Snapshots)
		case "poll":
			if !once(&seen, 1<<15) {
				return false
			}
			start := skipSpaceAt(r.d, r.i)
			if !r.skip(1) {
				return false
			}
			m.Poll = r.d[start:r.i]
			return true
		}
		return r.skip(1)
	})
	if !ok {
		return false
	}
	r.space()
	return r.i == len(r.d)
}

// mapEvent is MapEvent for a payload fresh from the Gateway: the fast
// reader for creates and updates, encoding/json for the rest and for
// whatever the fast reader leaves to it.
func mapEvent(typ string, d []byte, selfID string) []Event {
	if typ == EventMessageCreate || typ == EventMessageUpdate {
		var m apiMessage
		if fastMessage(d, &m) {
			kind := chat.KindCreate
			if typ == EventMessageUpdate {
				kind = chat.KindUpdate
			}
			ev, err := mapMessage(kind, &m, selfID)
			ev.Type, ev.Err = typ, err
			return []Event{ev}
		}
	}
	return MapEvent(typ, d, selfID)
}
