// Package sink writes the analysis engine's batches out: as Spark's console
// table (Console), as JSON Lines (JSONLines), and, in its own files, to a
// Kafka results topic.
//
// Every sink has the same shape, WriteBatch(ctx, *window.Batch) error, and
// writes one batch with a single Write call so that batches from one sink
// never interleave.
package sink

import (
	"unicode/utf8"
)

// DefaultMaxRows is how many rows the console shows per batch by default,
// like Spark's numRows.
const DefaultMaxRows = 20

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what encoding/json
// escapes (quotes, backslash, control characters, <, >, &, U+2028, U+2029)
// and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(b []byte, s string) []byte {
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
