package sink

import (
	"context"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cordstream/cordstream/internal/window"
)

// Console prints batches as Spark's console sink does with truncate=false
// (ConsoleWrite and Dataset.showString):
//
//	-------------------------------------------
//	Batch: 3
//	-------------------------------------------
//	+------------------------------------------+-----------+-------------+
//	|window                                    |author_name|message_count|
//	+------------------------------------------+-----------+-------------+
//	|{2025-11-07 17:59:30, 2025-11-07 18:00:30}|alice      |2            |
//	+------------------------------------------+-----------+-------------+
//
// followed by a blank line. Cells are left-aligned in columns as wide as the
// widest shown cell (at least 3), counting East Asian wide characters as two
// columns the way Spark's Utils.stringHalfWidth does; NULL keys print as
// NULL; control characters print escaped (\n, \t, \u001b, ...: escapeMeta);
// at most maxRows rows are shown, then "only showing top N rows" (and, as in Spark 4, no blank
// line after it; a complete table is followed by one). Timestamps print in the
// console's time zone as yyyy-MM-dd HH:mm:ss, with a fraction only when it
// is not zero.
type Console struct {
	w        io.Writer
	keyNames []string
	cols     Columns
	maxRows  int
	loc      *time.Location
	buf      []byte
	cells    []string
}

// NewConsole returns a console sink writing to w. keyNames are the group-by
// column names, in the order of the rows' keys. maxRows <= 0 means
// DefaultMaxRows; loc nil means UTC.
func NewConsole(w io.Writer, keyNames []string, maxRows int, loc *time.Location) *Console {
	if maxRows <= 0 {
		maxRows = DefaultMaxRows
	}
	if loc == nil {
		loc = time.UTC
	}
	return &Console{w: w, keyNames: append([]string(nil), keyNames...), maxRows: maxRows, loc: loc, cols: countColumns(keyNames)}
}

// NewConsoleColumns is NewConsole for a query's own columns (cols.Keys are
// the group-by columns). With cols.Title set, each batch is headed by the
// line "Query: <Title>" (the analyzer running several queries).
func NewConsoleColumns(w io.Writer, cols Columns, maxRows int, loc *time.Location) *Console {
	c := NewConsole(w, cols.Keys, maxRows, loc)
	c.cols = cols.clone()
	return c
}

const consoleRule = "-------------------------------------------\n"

// WriteBatch prints b. It returns ctx's error if ctx is done, and w's error
// if the write fails.
func (c *Console) WriteBatch(ctx context.Context, b *window.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.buf = c.appendBatch(c.buf[:0], b)
	_, err := c.w.Write(c.buf)
	return err
}

// appendBatch appends the text for b to buf.
func (c *Console) appendBatch(buf []byte, b *window.Batch) []byte {
	if c.cols.Title != "" {
		buf = append(buf, "Query: "...)
		buf = append(buf, c.cols.Title...)
		buf = append(buf, '\n')
	}
	buf = append(buf, consoleRule...)
	buf = append(buf, "Batch: "...)
	buf = strconv.AppendInt(buf, b.ID, 10)
	buf = append(buf, '\n')
	buf = append(buf, consoleRule...)

	ncol := 1 + len(c.keyNames) + len(c.cols.Aggs)
	shown := min(len(b.Rows), c.maxRows)
	// The cells, header first, row by row.
	cells := c.cells[:0]
	cells = append(cells, "window")
	for _, k := range c.keyNames {
		cells = append(cells, escapeMeta(k))
	}
	for _, a := range c.cols.Aggs {
		cells = append(cells, escapeMeta(a))
	}
	for _, r := range b.Rows[:shown] {
		cells = append(cells, "{"+formatTimestamp(r.Start, c.loc)+", "+formatTimestamp(r.End, c.loc)+"}")
		for i := range c.keyNames {
			if i < len(r.Keys) && r.Keys[i].Valid {
				cells = append(cells, escapeMeta(r.Keys[i].S))
			} else {
				cells = append(cells, "NULL")
			}
		}
		if c.cols.Values == nil {
			cells = append(cells, strconv.FormatInt(r.Count, 10))
			continue
		}
		for _, v := range c.cols.Values(&r) {
			cells = append(cells, v.String())
		}
	}
	c.cells = cells

	widths := make([]int, ncol)
	for i := range widths {
		widths[i] = 3
	}
	for i, cell := range cells {
		widths[i%ncol] = max(widths[i%ncol], halfWidth(cell))
	}
	sep := func(buf []byte) []byte {
		buf = append(buf, '+')
		for _, w := range widths {
			for range w {
				buf = append(buf, '-')
			}
			buf = append(buf, '+')
		}
		return append(buf, '\n')
	}
	line := func(buf []byte, row []string) []byte {
		buf = append(buf, '|')
		for i, cell := range row {
			buf = append(buf, cell...)
			for n := widths[i] - halfWidth(cell); n > 0; n-- {
				buf = append(buf, ' ')
			}
			buf = append(buf, '|')
		}
		return append(buf, '\n')
	}
	buf = sep(buf)
	buf = line(buf, cells[:ncol])
	buf = sep(buf)
	for i := ncol; i < len(cells); i += ncol {
		buf = line(buf, cells[i:i+ncol])
	}
	buf = sep(buf)
	if len(b.Rows) > shown {
		buf = append(buf, "only showing top "...)
		buf = strconv.AppendInt(buf, int64(shown), 10)
		// Spark 4 prints no blank line after this one (Spark 3.5 did).
		if shown == 1 {
			return append(buf, " row\n"...)
		}
		return append(buf, " rows\n"...)
	}
	return append(buf, '\n')
}

// formatTimestamp formats µs since the epoch in loc as Spark prints a
// timestamp: yyyy-MM-dd HH:mm:ss, then a fraction without trailing zeros if
// it is not zero. Years beyond 9999 get a '+', years before 0 a '-', as
// java.time's ISO_LOCAL_DATE prints them.
func formatTimestamp(us int64, loc *time.Location) string {
	t := time.UnixMicro(us).In(loc)
	var b [40]byte
	buf := b[:0]
	y := t.Year()
	switch {
	case y > 9999:
		buf = append(buf, '+')
	case y < 0:
		buf = append(buf, '-')
		y = -y
	}
	buf = appendPadded(buf, y, 4)
	buf = append(buf, '-')
	buf = appendPadded(buf, int(t.Month()), 2)
	buf = append(buf, '-')
	buf = appendPadded(buf, t.Day(), 2)
	buf = append(buf, ' ')
	buf = appendPadded(buf, t.Hour(), 2)
	buf = append(buf, ':')
	buf = appendPadded(buf, t.Minute(), 2)
	buf = append(buf, ':')
	buf = appendPadded(buf, t.Second(), 2)
	if frac := t.Nanosecond(); frac != 0 {
		digits := 9
		for frac%10 == 0 {
			frac /= 10
			digits--
		}
		buf = append(buf, '.')
		buf = appendPadded(buf, frac, digits)
	}
	return string(buf)
}

// appendPadded appends v (>= 0) in decimal, zero-padded to at least n digits.
func appendPadded(b []byte, v, n int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(v), 10)
	for i := len(s); i < n; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// halfWidth is Spark's Utils.stringHalfWidth: the string's length in UTF-16
// code units plus one for each character in Spark's full-width ranges. Spark
// pads a cell with (column width - halfWidth) spaces.
func halfWidth(s string) int {
	n := 0
	for _, r := range s { // invalid UTF-8 decodes as U+FFFD: one unit
		switch {
		case r >= 0x10000:
			n += 2 // a surrogate pair in Java
		case isFullWidth(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

// isFullWidth reports whether r is in the ranges of Spark's fullWidthRegex.
func isFullWidth(r rune) bool {
	switch {
	case r < 0x1100:
		return false
	case r <= 0x115F:
		return true
	case r >= 0x2E80 && r <= 0xA4CF,
		r >= 0xAC00 && r <= 0xD7A3,
		r >= 0xF900 && r <= 0xFAFF,
		r >= 0xFE10 && r <= 0xFE19,
		r >= 0xFE30 && r <= 0xFE6F,
		r >= 0xFF00 && r <= 0xFF60,
		r >= 0xFFE0 && r <= 0xFFE6:
		return true
	}
	return false
}

// escapeMeta is Spark's escapeMetaCharacters, applied to every header and
// cell so that a value cannot break the table: \n \r \t \f \b, vertical tab
// and bell print as two-character escapes. Where Spark prints the rest raw,
// every other character a terminal may act on prints escaped too, as the
// JSON Lines output escapes them: the other C0 controls, DEL and the C1
// controls as \u001b, \u007f, \u009b (ESC and CSI start the sequences
// that clear a screen or write the clipboard), the bidirectional overrides,
// embeddings, isolates and marks as \u202e (they reorder what follows on
// the line), and bytes that are not UTF-8 as \x9b (a terminal may read a
// lone 0x9b as CSI). Ordinary names are unchanged, so their columns keep
// Spark's widths.
func escapeMeta(s string) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++ // printable ASCII: the common case
	}
	if i == len(s) {
		return s
	}
	need := false
	for j := i; j < len(s); {
		r, size := utf8.DecodeRuneInString(s[j:])
		if escapedRune(r, size) {
			need = true
			break
		}
		j += size
	}
	if !need {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case !escapedRune(r, size):
			b = append(b, s[i:i+size]...)
		case r == utf8.RuneError && size == 1:
			b = append(b, '\\', 'x', hexDigit[s[i]>>4], hexDigit[s[i]&0xf])
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\v':
			b = append(b, `\v`...)
		case r == '\a':
			b = append(b, `\a`...)
		default:
			b = append(b, '\\', 'u', hexDigit[r>>12&0xf], hexDigit[r>>8&0xf], hexDigit[r>>4&0xf], hexDigit[r&0xf])
		}
		i += size
	}
	return string(b)
}

const hexDigit = "0123456789abcdef"

// escapedRune reports whether the console escapes r (decoded from size
// bytes): C0 and C1 controls, DEL, the bidirectional formatting characters,
// and bytes that are not UTF-8.
func escapedRune(r rune, size int) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == utf8.RuneError:
		return size == 1
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
