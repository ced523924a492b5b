package chat

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Projection is the part of a record the analyzer needs: the group-by
// columns, the event time and the kind. Project fills it without
// encoding/json and, in the common case, without allocating.
//
// Its strings may share memory with the record Project read them from: they
// stay valid as long as that byte slice is not modified. Copy them
// (strings.Clone) to keep them while the slice is reused.
type Projection struct {
	// MessageID, AuthorID, AuthorName, ChannelID and GuildID are the fields'
	// values, "" when absent or null (see Has).
	MessageID, AuthorID, AuthorName, ChannelID, GuildID string
	// Has has a bit per field present and not null (HasMessageID, ...).
	Has uint8
	// Timestamp is message_timestamp in Unix microseconds, UTC.
	Timestamp int64
	// Kind is event_kind (KindCreate when absent or null).
	Kind Kind
	// Content is content's JSON string as the record holds it, between the
	// quotes, escapes not decoded (nil when absent or null; see HasContent),
	// for the queries that compute on it (sparkexpr.AppendJSONString makes
	// of it the string Spark's from_json makes). ContentPlain says it needs
	// no decoding: valid UTF-8 without escapes.
	Content      string
	ContentPlain bool
}

// Bits of Projection.Has.
const (
	HasMessageID uint8 = 1 << iota
	HasAuthorID
	HasAuthorName
	HasChannelID
	HasGuildID
	HasContent
)

// Project reads the projected fields of a record into p. It accepts and
// rejects records as Decode does and returns the same *FieldError (Field and
// Reason) for the same fault: malformed JSON, a known field of the wrong JSON
// type, an unknown event_kind, a missing, null or unparseable
// message_timestamp, an unparseable edited_timestamp. Field names match
// exactly and the last of duplicate fields wins, as in Decode. One deliberate
// difference: Project rejects any non-blank data after the record's object,
// where Decode lets a stray ']' or '}' through.
//
// p is overwritten whether or not Project fails.
func Project(data []byte, p *Projection) error {
	*p = Projection{Kind: KindCreate}
	s := scanner{data: data}
	s.skipSpace()
	if s.i >= len(data) {
		return malformed(errors.New("empty record, want a JSON object"))
	}
	if data[s.i] != '{' {
		// Whatever it is, it is not a record. Syntax errors come first, as
		// in Decode, but the reason is the same either way.
		start := s.i
		if err := s.skipValue(1); err != nil {
			return malformed(err)
		}
		if string(data[start:s.i]) == "null" {
			return malformed(errors.New("record is JSON null, want an object"))
		}
		return malformed(errors.New("record is not a JSON object"))
	}
	var fs [numFields]fieldVal
	bad, err := s.object(&fs)
	if err != nil {
		return malformed(err)
	}
	// Type errors, then trailing data, then values: Decode's order.
	if bad != 0 {
		f := bits.TrailingZeros16(bad)
		return &FieldError{Field: fieldNames[f], Reason: ReasonWrongType,
			Err: fmt.Errorf("got JSON %s, want %s", fs[f].kind, wantType(fieldNames[f]))}
	}
	s.skipSpace()
	if s.i < len(data) {
		return malformed(errors.New("data after the JSON object"))
	}
	if v := &fs[fKind]; v.kind == valString {
		k := Kind(s.str(v))
		if !k.Valid() {
			return &FieldError{Field: FieldKind, Reason: ReasonBadValue,
				Err: fmt.Errorf("%s is not one of create, update, delete", quoteShort(string(k)))}
		}
		p.Kind = k
	}
	v := &fs[fTimestamp]
	if v.kind != valString {
		return &FieldError{Field: FieldTimestamp, Reason: ReasonMissingField, Err: errors.New("missing or null")}
	}
	us, ok := wireMicros(s.data[v.start:v.end])
	if !ok || !v.plain {
		ts, ok := parseTimestamp(s.str(v))
		if !ok {
			_, err := ParseTimestamp(s.str(v))
			return &FieldError{Field: FieldTimestamp, Reason: ReasonBadTimestamp, Err: err}
		}
		us = ts.UnixMicro()
	}
	if v := &fs[fEdited]; v.kind == valString {
		if _, ok := parseTimestamp(s.str(v)); !ok {
			_, err := ParseTimestamp(s.str(v))
			return &FieldError{Field: FieldEditedTimestamp, Reason: ReasonBadTimestamp, Err: err}
		}
	}
	p.Timestamp = us
	if v := &fs[fMessageID]; v.kind == valString {
		p.MessageID, p.Has = s.str(v), p.Has|HasMessageID
	}
	if v := &fs[fAuthorID]; v.kind == valString {
		p.AuthorID, p.Has = s.str(v), p.Has|HasAuthorID
	}
	if v := &fs[fAuthorName]; v.kind == valString {
		p.AuthorName, p.Has = s.str(v), p.Has|HasAuthorName
	}
	if v := &fs[fChannelID]; v.kind == valString {
		p.ChannelID, p.Has = s.str(v), p.Has|HasChannelID
	}
	if v := &fs[fGuildID]; v.kind == valString {
		p.GuildID, p.Has = s.str(v), p.Has|HasGuildID
	}
	if v := &fs[fContent]; v.kind == valString {
		b := s.data[v.start:v.end]
		p.Content, p.ContentPlain, p.Has = unsafe.String(unsafe.SliceData(b), len(b)), v.plain, p.Has|HasContent
	}
	return nil
}

func malformed(err error) error { return &FieldError{Reason: ReasonMalformedJSON, Err: err} }

// The fields Decode knows, by index.
const (
	fAuthorID = iota
	fAuthorName
	fChannelID
	fContent
	fTimestamp
	fMessageID
	fGuildID
	fGlobalName
	fIsBot
	fWebhookID
	fKind
	fEdited
	fSchemaVersion
	numFields
)

var fieldNames = [numFields]string{
	FieldAuthorID, FieldAuthorName, FieldChannelID, FieldContent, FieldTimestamp, FieldMessageID,
	FieldGuildID, FieldAuthorGlobalName, FieldAuthorIsBot, FieldWebhookID, FieldKind,
	FieldEditedTimestamp, FieldSchemaVersion,
}

// fieldTypes is the JSON type each field must have when not null.
var fieldTypes = [numFields]valKind{
	valString, valString, valString, valString, valString, valString,
	valString, valString, valBool, valString, valString,
	valString, valInt,
}

// fieldIndex returns the index of a known field name, or -1.
func fieldIndex(name string) int {
	switch name {
	case FieldAuthorID:
		return fAuthorID
	case FieldAuthorName:
		return fAuthorName
	case FieldChannelID:
		return fChannelID
	case FieldContent:
		return fContent
	case FieldTimestamp:
		return fTimestamp
	case FieldMessageID:
		return fMessageID
	case FieldGuildID:
		return fGuildID
	case FieldAuthorGlobalName:
		return fGlobalName
	case FieldAuthorIsBot:
		return fIsBot
	case FieldWebhookID:
		return fWebhookID
	case FieldKind:
		return fKind
	case FieldEditedTimestamp:
		return fEdited
	case FieldSchemaVersion:
		return fSchemaVersion
	}
	return -1
}

type valKind uint8

const (
	valAbsent valKind = iota
	valNull
	valString
	valNumber
	valBool
	valObject
	valArray
	valInt // only as a wanted type: a number that fits an int
)

// String names the JSON type as encoding/json's UnmarshalTypeError does.
func (k valKind) String() string {
	switch k {
	case valString:
		return "string"
	case valNumber:
		return "number"
	case valBool:
		return "bool"
	case valObject:
		return "object"
	case valArray:
		return "array"
	case valNull:
		return "null"
	}
	return "value"
}

// fieldVal is the last value seen for a known field.
type fieldVal struct {
	kind       valKind
	start, end int  // string contents, without quotes
	plain      bool // string needs no unescaping: valid UTF-8, no escapes
	isInt      bool // number is an integer that fits an int
}

// maxDepth is encoding/json's nesting limit: deeper input is malformed.
const maxDepth = 10000

// scanner is a single-pass JSON validator over data.
type scanner struct {
	data []byte
	i    int
}

func (s *scanner) skipSpace() {
	if s.i < len(s.data) && s.data[s.i] > ' ' {
		return
	}
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) errorf(format string, a ...any) error {
	return fmt.Errorf("offset %d: %s", s.i, fmt.Sprintf(format, a...))
}

func (s *scanner) unexpected(what string) error {
	if s.i >= len(s.data) {
		return s.errorf("unexpected end of JSON input, want %s", what)
	}
	return s.errorf("invalid character %q, want %s", s.data[s.i], what)
}

// object scans the top-level object at s.i, recording known fields in fs.
func (s *scanner) object(fs *[numFields]fieldVal) (bad uint16, err error) {
	// The hot loop keeps the position in a local; s.i is synced around the
	// calls that use it. bad has a bit per field whose (last) value has the
	// wrong JSON type.
	d := s.data
	i := skipSpace(d, s.i+1) // after '{'
	if i < len(d) && d[i] == '}' {
		s.i = i + 1
		return 0, nil
	}
	// Fast path: the keys Encode writes, in its order, with their colon
	// (and, after the first, the comma before them).
	next, f := 0, -1
	if matchKey(d, i, &keyWords[0]) {
		f, next, i = 0, 1, i+keyWords[0].n
	}
	for {
		if f < 0 {
			s.i = i
			if i >= len(d) || d[i] != '"' {
				return 0, s.unexpected("a string for an object key")
			}
			start, end, plain, err := s.scanString(true)
			if err != nil {
				return 0, err
			}
			var name string
			if plain {
				name = unsafe.String(unsafe.SliceData(d[start:end]), end-start)
			} else {
				name = string(unquoteAppend(nil, d[start:end]))
			}
			s.i = skipSpace(d, s.i)
			if s.i >= len(d) || d[s.i] != ':' {
				return 0, s.unexpected("':' after an object key")
			}
			i = skipSpace(d, s.i+1)
			if f = fieldIndex(name); f >= 0 {
				next = f + 1
			}
		}
		if f >= 0 {
			if i < len(d) && d[i] != '"' {
				i = skipSpace(d, i)
			}
			bit := uint16(1) << f
			// Fast path: a string without escapes.
			simple := false
			if i < len(d) && d[i] == '"' {
				if end, hi := plainRun(d, i+1); end < len(d) && d[end] == '"' {
					fs[f] = fieldVal{kind: valString, start: i + 1, end: end,
						plain: hi&msb == 0 || utf8.Valid(d[i+1:end])}
					bad = bad&^bit | bit&^stringFields
					i = end + 1
					simple = true
				}
			}
			if !simple {
				s.i = i
				v := &fs[f]
				if err := s.fieldValue(v); err != nil {
					return 0, err
				}
				i = s.i
				want := fieldTypes[f]
				if v.kind == valNull || v.kind == want || (want == valInt && v.kind == valNumber && v.isInt) {
					bad &^= bit
				} else {
					bad |= bit
				}
			}
		} else {
			s.i = skipSpace(d, i)
			if err := s.skipValue(2); err != nil {
				return 0, err
			}
			i = s.i
		}
		f = -1
		if next < numFields && matchKey(d, i, &commaKeyWords[next]) {
			f, i = next, i+commaKeyWords[next].n
			next++
			continue
		}
		i = skipSpace(d, i)
		if i < len(d) && d[i] == ',' {
			i = skipSpace(d, i+1)
			if next < numFields && matchKey(d, i, &keyWords[next]) {
				f, i = next, i+keyWords[next].n
				next++
			}
			continue
		}
		s.i = i
		if i < len(d) && d[i] == '}' {
			s.i++
			return bad, nil
		}
		return 0, s.unexpected("',' or '}' after an object value")
	}
}

// keyWord is a key literal as three overlapping 8-byte words at offsets 0,
// mid and n-8: equal words mean equal bytes for 8 <= n <= 24.
type keyWord struct {
	n, mid     int
	w0, w1, w2 uint64
}

func newKeyWord(lit string) keyWord {
	n := len(lit)
	if n < 8 || n > 24 {
		panic("chat: key literal length outside the fast path's range: " + lit)
	}
	b := []byte(lit)
	mid := min(8, n-8)
	return keyWord{n: n, mid: mid, w0: load64(b, 0), w1: load64(b, mid), w2: load64(b, n-8)}
}

// matchKey reports whether d[i:] starts with k's literal.
func matchKey(d []byte, i int, k *keyWord) bool {
	return len(d)-i >= k.n && load64(d, i) == k.w0 && load64(d, i+k.mid) == k.w1 && load64(d, i+k.n-8) == k.w2
}

// keyWords and commaKeyWords are the keys as Encode writes them, with their
// colon (and with the comma before them), in its order (the order of the
// field indexes).
var keyWords, commaKeyWords = func() (k, ck [numFields]keyWord) {
	for i, name := range fieldNames {
		k[i] = newKeyWord(`"` + name + `":`)
		ck[i] = newKeyWord(`,"` + name + `":`)
	}
	return k, ck
}()

// stringFields has a bit per field whose type is string.
var stringFields = func() (m uint16) {
	for f, t := range fieldTypes {
		if t == valString {
			m |= 1 << f
		}
	}
	return m
}()

// skipSpace returns the index of the first non-blank byte at or after i.
func skipSpace(d []byte, i int) int {
	for i < len(d) && d[i] <= ' ' && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// fieldValue scans the value of a known field into v.
func (s *scanner) fieldValue(v *fieldVal) error {
	if s.i >= len(s.data) {
		return s.unexpected("a value")
	}
	*v = fieldVal{}
	switch c := s.data[s.i]; {
	case c == '"':
		start, end, plain, err := s.scanString(true)
		if err != nil {
			return err
		}
		v.kind, v.start, v.end, v.plain = valString, start, end, plain
	case c == 'n':
		v.kind = valNull
		return s.literal("null")
	case c == 't':
		v.kind = valBool
		return s.literal("true")
	case c == 'f':
		v.kind = valBool
		return s.literal("false")
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.i
		isInt, err := s.number()
		if err != nil {
			return err
		}
		v.kind = valNumber
		if isInt {
			// Digits only: fits an int64 up to 18 digits; check the rest.
			if n := s.i - start; n <= 18 {
				v.isInt = true
			} else {
				_, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(s.data[start:s.i]), n), 10, 64)
				v.isInt = err == nil
			}
		}
	case c == '{':
		v.kind = valObject
		return s.skipValue(2)
	case c == '[':
		v.kind = valArray
		return s.skipValue(2)
	default:
		return s.unexpected("a value")
	}
	return nil
}

// str returns the decoded string value of v: a view of data when plain,
// otherwise a new string unescaped as encoding/json does.
func (s *scanner) str(v *fieldVal) string {
	b := s.data[v.start:v.end]
	if v.plain {
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	return string(unquoteAppend(make([]byte, 0, len(b)+8), b))
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.i >= len(lit) && string(s.data[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return nil
	}
	for j := 0; j < len(lit); j++ {
		if s.i >= len(s.data) || s.data[s.i] != lit[j] {
			return s.unexpected(fmt.Sprintf("%q", lit))
		}
		s.i++
	}
	return nil
}

// number scans a JSON number; isInt reports digits without fraction or
// exponent.
func (s *scanner) number() (isInt bool, err error) {
	d := s.data
	if d[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(d) && d[s.i] == '0':
		s.i++
	case s.i < len(d) && d[s.i] >= '1' && d[s.i] <= '9':
		for s.i < len(d) && d[s.i] >= '0' && d[s.i] <= '9' {
			s.i++
		}
	default:
		return false, s.unexpected("a digit")
	}
	isInt = true
	if s.i < len(d) && d[s.i] == '.' {
		isInt = false
		s.i++
		if s.i >= len(d) || d[s.i] < '0' || d[s.i] > '9' {
			return false, s.unexpected("a digit after the decimal point")
		}
		for s.i < len(d) && d[s.i] >= '0' && d[s.i] <= '9' {
			s.i++
		}
	}
	if s.i < len(d) && (d[s.i] == 'e' || d[s.i] == 'E') {
		isInt = false
		s.i++
		if s.i < len(d) && (d[s.i] == '+' || d[s.i] == '-') {
			s.i++
		}
		if s.i >= len(d) || d[s.i] < '0' || d[s.i] > '9' {
			return false, s.unexpected("a digit in the exponent")
		}
		for s.i < len(d) && d[s.i] >= '0' && d[s.i] <= '9' {
			s.i++
		}
	}
	return isInt, nil
}

// Bytes repeated in every lane of a word, for scanning eight at a time.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanString scans the string starting at s.i (a '"') and returns the span
// of its contents. plain reports that the contents decode to themselves: no
// escapes and, when checkUTF8, valid UTF-8 (without checkUTF8, plain only
// means no escapes).
func (s *scanner) scanString(checkUTF8 bool) (start, end int, plain bool, err error) {
	d := s.data
	i := s.i + 1
	start = i
	plain = true
	var hi uint64 // OR of the bytes scanned: non-ASCII seen if its top bits are set
	for {
		var h uint64
		i, h = plainRun(d, i)
		hi |= h
		if i >= len(d) {
			s.i = i
			return 0, 0, false, s.unexpected("the end of a string")
		}
		switch c := d[i]; c {
		case '"':
			s.i = i + 1
			if checkUTF8 && plain && hi&msb != 0 && !utf8.Valid(d[start:i]) {
				plain = false
			}
			return start, i, plain, nil
		case '\\':
			plain = false
			if i+1 >= len(d) {
				s.i = i + 1
				return 0, 0, false, s.unexpected("an escape character")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(d) || unhex(d[j]) < 0 {
						s.i = j
						return 0, 0, false, s.unexpected("a hexadecimal digit in a \\u escape")
					}
				}
				i += 6
			default:
				s.i = i + 1
				return 0, 0, false, s.unexpected("an escape character")
			}
		default: // a control character
			s.i = i
			return 0, 0, false, s.errorf("invalid control character %q in a string", c)
		}
	}
}

// plainRun returns the index of the first byte at or after i that is a
// control character, '"' or '\\' (len(d) if none), and the OR of the bytes
// before it (possibly a few more).
func plainRun(d []byte, i int) (int, uint64) {
	var hi uint64
	// Eight bytes at a time, in the lanes of a word: flag bytes below 0x20
	// and bytes equal to '"' or '\\'. Borrows can only flag lanes above a
	// flagged one, so the lowest flag is exact.
	for i+8 <= len(d) {
		x := load64(d, i)
		hi |= x
		q := x ^ (lsb * '"')
		b := x ^ (lsb * '\\')
		if m := (((x - lsb*0x20) &^ x) | ((q - lsb) &^ q) | ((b - lsb) &^ b)) & msb; m != 0 {
			return i + bits.TrailingZeros64(m)/8, hi
		}
		i += 8
	}
	for ; i < len(d); i++ {
		c := d[i]
		if c < 0x20 || c == '"' || c == '\\' {
			return i, hi
		}
		hi |= uint64(c)
	}
	return i, hi
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// skipValue scans any JSON value at nesting depth depth (the top level is 1).
func (s *scanner) skipValue(depth int) error {
	if s.i >= len(s.data) {
		return s.unexpected("a value")
	}
	switch c := s.data[s.i]; {
	case c == '"':
		_, _, _, err := s.scanString(false)
		return err
	case c == 'n':
		return s.literal("null")
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := s.number()
		return err
	case c == '{', c == '[':
		if depth > maxDepth {
			return s.errorf("exceeded max depth")
		}
		s.i++
		s.skipSpace()
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		if s.i < len(s.data) && s.data[s.i] == closer {
			s.i++
			return nil
		}
		for {
			if c == '{' {
				if s.i >= len(s.data) || s.data[s.i] != '"' {
					return s.unexpected("a string for an object key")
				}
				if _, _, _, err := s.scanString(false); err != nil {
					return err
				}
				s.skipSpace()
				if s.i >= len(s.data) || s.data[s.i] != ':' {
					return s.unexpected("':' after an object key")
				}
				s.i++
				s.skipSpace()
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.skipSpace()
			if s.i >= len(s.data) {
				return s.unexpected(fmt.Sprintf("',' or %q", closer))
			}
			switch s.data[s.i] {
			case ',':
				s.i++
				s.skipSpace()
			case closer:
				s.i++
				return nil
			default:
				return s.unexpected(fmt.Sprintf("',' or %q", closer))
			}
		}
	}
	return s.unexpected("a value")
}

// unquoteAppend appends the decoded contents of a syntactically valid JSON
// string (without its quotes) to b, exactly as encoding/json decodes it:
// invalid UTF-8 and unpaired surrogates become U+FFFD.
func unquoteAppend(b, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'u':
				r := getu4(s[i:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, getu4(s[i:])); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			case 'b':
				b, i = append(b, '\b'), i+2
			case 'f':
				b, i = append(b, '\f'), i+2
			case 'n':
				b, i = append(b, '\n'), i+2
			case 'r':
				b, i = append(b, '\r'), i+2
			case 't':
				b, i = append(b, '\t'), i+2
			default: // '"', '\\', '/'
				b, i = append(b, e), i+2
			}
		case c < utf8.RuneSelf:
			b, i = append(b, c), i+1
		default:
			r, size := utf8.DecodeRune(s[i:])
			b, i = utf8.AppendRune(b, r), i+size
		}
	}
	return b
}

// getu4 decodes the four hex digits of a \uXXXX escape at the start of s.
func getu4(s []byte) rune {
	var r rune
	for _, c := range s[2:6] {
		r = r<<4 | rune(unhex(c))
	}
	return r
}

// wireMicros parses the wire format's own timestamp layout,
// "yyyy-MM-dd HH:mm:ss.SSS" in UTC, straight to Unix microseconds. It
// reports false for anything else, which parseTimestamp then handles.
func wireMicros(b []byte) (int64, bool) {
	if len(b) != 23 || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' || b[16] != ':' || b[19] != '.' {
		return 0, false
	}
	// Each pair of digits at once: both bytes must be '0'..'9'.
	d2 := func(i int) (int64, bool) {
		x, y := b[i]-'0', b[i+1]-'0'
		return int64(x)*10 + int64(y), x <= 9 && y <= 9
	}
	y1, ok1 := d2(0)
	y2, ok2 := d2(2)
	mo, ok3 := d2(5)
	d, ok4 := d2(8)
	h, ok5 := d2(11)
	mi, ok6 := d2(14)
	sec, ok7 := d2(17)
	ms1, ok8 := d2(20)
	ms2 := b[22] - '0'
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ms2 <= 9) {
		return 0, false
	}
	y := y1*100 + y2
	ms := ms1*10 + int64(ms2)
	if mo < 1 || mo > 12 || d < 1 || d > int64(daysIn(int(y), int(mo))) || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's
	// days_from_civil).
	if mo <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (mo + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	return ((days*24+h)*60+mi)*60_000_000 + sec*1_000_000 + ms*1000, true
}
