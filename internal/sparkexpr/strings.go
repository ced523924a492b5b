// Package sparkexpr computes string expressions as Spark computes them, on the
// bytes Spark would hold: length(), and the strings from_json makes from a
// record's bytes (where Java's UTF-8 decoding and UTF-16 strings make them differ
// from what Go's decoders make).
//
// Spark reads a Kafka value as bytes; from_json decodes them through a
// java.io.Reader (UTF-8, each malformed sequence replaced by one U+FFFD, with
// Java's notion of a malformed sequence) and Jackson (\uXXXX escapes become
// UTF-16 code units, unpaired surrogates included), and keeps each string as
// String.getBytes(UTF_8), where an unpaired surrogate becomes '?'. Go's
// encoding/json replaces each invalid byte and each unpaired surrogate escape by
// U+FFFD instead: different bytes, hence a different group key, hash (and so
// approx_count_distinct) and, for invalid bytes, length.
package sparkexpr

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Length is Spark's length(s) for a STRING held as the bytes of s:
// UTF8String.numChars, which counts lead bytes: a byte 0xC2..0xDF stands for 2
// bytes, 0xE0..0xEF for 3, 0xF0..0xF4 for 4, any other for 1, whatever follows.
// For valid UTF-8 (every string from_json makes) it is the number of code
// points.
func Length(s string) int32 {
	n := int32(0)
	for i := 0; i < len(s); i += leadWidth(s[i]) {
		n++
	}
	return n
}

// LengthBytes is Length of a string given as bytes.
func LengthBytes(b []byte) int32 {
	n := int32(0)
	for i := 0; i < len(b); i += leadWidth(b[i]) {
		n++
	}
	return n
}

func leadWidth(c byte) int {
	switch {
	case c >= 0xC2 && c <= 0xDF:
		return 2
	case c >= 0xE0 && c <= 0xEF:
		return 3
	case c >= 0xF0 && c <= 0xF4:
		return 4
	}
	return 1
}

const replacement = "\uFFFD"

func isCont(c byte) bool { return c&0xC0 == 0x80 }

// AppendDecodedUTF8 appends src as Java's UTF-8 decoder (java.io.InputStreamReader
// with the default replacement) turns it into a String, encoded back to UTF-8:
// valid sequences unchanged, each malformed sequence one U+FFFD. Java's
// malformed sequences: a byte that cannot start a sequence (0x80..0xC1,
// 0xF5..0xFF) alone; a lead byte whose second byte is out of range alone; a
// lead and its valid continuation bytes up to the first invalid one; an encoded
// surrogate (0xED 0xA0..0xBF x) whole, as one. The input is taken to be
// complete: a sequence cut short at the end is malformed.
func AppendDecodedUTF8(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		n := javaSequence(src[i:])
		if n > 0 {
			dst = append(dst, src[i:i+n]...)
			i += n
			continue
		}
		dst = append(dst, replacement...)
		i += -n
	}
	return dst
}

// javaSequence returns the length of the valid UTF-8 sequence at the start of
// s (s[0] >= 0x80), or minus the number of bytes Java's decoder replaces by one
// U+FFFD.
func javaSequence(s []byte) int {
	c := s[0]
	switch {
	case c >= 0xC2 && c <= 0xDF:
		if len(s) >= 2 && isCont(s[1]) {
			return 2
		}
		return -1
	case c >= 0xE0 && c <= 0xEF:
		if len(s) < 2 || !isCont(s[1]) || (c == 0xE0 && s[1] < 0xA0) {
			return -1
		}
		if len(s) < 3 || !isCont(s[2]) {
			return -2
		}
		if c == 0xED && s[1] >= 0xA0 { // a surrogate: malformed as a whole
			return -3
		}
		return 3
	case c >= 0xF0 && c <= 0xF4:
		if len(s) < 2 || !isCont(s[1]) || (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F) {
			return -1
		}
		if len(s) < 3 || !isCont(s[2]) {
			return -2
		}
		if len(s) < 4 || !isCont(s[3]) {
			return -3
		}
		return 4
	}
	return -1
}

// ErrJSONString is wrapped by AppendJSONString's errors.
var ErrJSONString = errors.New("sparkexpr: not the body of a JSON string")

// AppendJSONString appends the string Spark's from_json makes of a JSON string
// literal, given as the bytes between its quotes: raw bytes decoded as Java
// decodes them (AppendDecodedUTF8), escapes decoded, a \uXXXX pair of
// surrogates joined into one code point, and every other surrogate escape, as
// String.getBytes(UTF_8) writes it, as '?'. The result is valid UTF-8; Length
// of it is Spark's length(). A body that is not valid JSON (an unescaped '"' or
// control character, an unknown or cut escape) is an error, and Spark makes
// the whole record's fields null.
func AppendJSONString(dst, body []byte) ([]byte, error) {
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == '\\':
			if i+1 >= len(body) {
				return dst, fmt.Errorf("%w: a backslash at the end", ErrJSONString)
			}
			e := body[i+1]
			if e != 'u' {
				r, ok := simpleEscape(e)
				if !ok {
					return dst, fmt.Errorf("%w: unknown escape \\%c at byte %d", ErrJSONString, e, i)
				}
				dst = append(dst, r)
				i += 2
				continue
			}
			r, ok := hex4(body, i)
			if !ok {
				return dst, fmt.Errorf("%w: \\u at byte %d without four hex digits", ErrJSONString, i)
			}
			i += 6
			switch {
			case utf16.IsSurrogate(r) && r < 0xDC00: // a high surrogate: joined only with a low one right after
				if lo, ok := hex4(body, i); ok && i+1 < len(body) && body[i] == '\\' && body[i+1] == 'u' && lo >= 0xDC00 && lo <= 0xDFFF {
					dst = utf8.AppendRune(dst, utf16.DecodeRune(r, lo))
					i += 6
					continue
				}
				dst = append(dst, '?')
			case utf16.IsSurrogate(r):
				dst = append(dst, '?')
			default:
				dst = utf8.AppendRune(dst, r)
			}
		case c == '"':
			return dst, fmt.Errorf("%w: an unescaped '\"' at byte %d", ErrJSONString, i)
		case c < 0x20:
			return dst, fmt.Errorf("%w: an unescaped control character 0x%02x at byte %d", ErrJSONString, c, i)
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			n := javaSequence(body[i:])
			if n > 0 {
				dst = append(dst, body[i:i+n]...)
				i += n
			} else {
				dst = append(dst, replacement...)
				i += -n
			}
		}
	}
	return dst, nil
}

func simpleEscape(e byte) (byte, bool) {
	switch e {
	case '"', '\\', '/':
		return e, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

// hex4 decodes the four hex digits of a \u escape starting at body[i].
func hex4(body []byte, i int) (rune, bool) {
	if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range body[i+2 : i+6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
