package sink

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cordstream/cordstream/internal/window"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the sinks' output")

func at(s string) int64 {
	t, err := time.Parse(time.DateTime+".999999", s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func val(s string) window.Value { return window.Value{S: s, Valid: true} }

var nullVal = window.Value{}

func mkRow(start, end string, count int64, keys ...window.Value) window.Row {
	return window.Row{Start: at(start), End: at(end), Keys: keys, Count: count}
}

// TestConsoleSparkExample is the table in the design's console section,
// character for character.
func TestConsoleSparkExample(t *testing.T) {
	var buf bytes.Buffer
	c := NewConsole(&buf, []string{"author_name"}, 0, nil)
	b := &window.Batch{ID: 3, Rows: []window.Row{mkRow("2025-11-07 17:59:30", "2025-11-07 18:00:30", 2, val("alice"))}}
	if err := c.WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := `-------------------------------------------
Batch: 3
-------------------------------------------
+------------------------------------------+-----------+-------------+
|window                                    |author_name|message_count|
+------------------------------------------+-----------+-------------+
|{2025-11-07 17:59:30, 2025-11-07 18:00:30}|alice      |2            |
+------------------------------------------+-----------+-------------+

`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// An empty batch prints the header and a table with no rows: Spark shows an
// empty Dataset with the query's schema.
func TestConsoleEmptyBatch(t *testing.T) {
	var buf bytes.Buffer
	c := NewConsole(&buf, []string{"author_name"}, 20, time.UTC)
	if err := c.WriteBatch(context.Background(), &window.Batch{ID: 0}); err != nil {
		t.Fatal(err)
	}
	want := `-------------------------------------------
Batch: 0
-------------------------------------------
+------+-----------+-------------+
|window|author_name|message_count|
+------+-----------+-------------+
+------+-----------+-------------+

`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func manyRows(n int) []window.Row {
	rows := make([]window.Row, n)
	for i := range rows {
		rows[i] = mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", int64(i+1), val(fmt.Sprintf("user%02d", i)))
	}
	return rows
}

func TestConsoleGolden(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no time zone database: %v", err)
	}
	tests := []struct {
		name    string
		keys    []string
		maxRows int
		loc     *time.Location
		batch   window.Batch
	}{
		{name: "wide-characters", keys: []string{"author_name"}, batch: window.Batch{ID: 7, Rows: []window.Row{
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 3, val("日本語")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 12, val("한국어사용자")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("ｆｕｌｌ")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("😀smile")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("café")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("ascii_only_name_x")),
		}}},
		{name: "null-and-two-keys", keys: []string{"author_name", "channel_id"}, batch: window.Batch{ID: 12, Rows: []window.Row{
			mkRow("2025-11-07 17:59:30", "2025-11-07 18:00:30", 1, nullVal, nullVal),
			mkRow("2025-11-07 17:59:30", "2025-11-07 18:00:30", 2, nullVal, val("1299887766554433222")),
			mkRow("2025-11-07 17:59:30", "2025-11-07 18:00:30", 1, val("bob"), nullVal),
		}}},
		{name: "no-keys", keys: nil, batch: window.Batch{ID: 1, Rows: []window.Row{
			mkRow("2025-11-07 17:59:30", "2025-11-07 18:00:30", 1234567),
		}}},
		{name: "time-zone-and-fractions", keys: []string{"author_name"}, loc: ny, batch: window.Batch{ID: 2, Rows: []window.Row{
			mkRow("2025-11-07 17:59:30.5", "2025-11-07 18:00:30.5", 1, val("alice")),
			mkRow("2025-11-07 18:00:00.000001", "2025-11-07 18:01:00.000001", 1, val("bob")),
			mkRow("2025-11-07 18:00:00.12", "2025-11-07 18:01:00.12", 1, val("carol")),
		}}},
		{name: "control-characters", keys: []string{"author\tname"}, batch: window.Batch{ID: 4, Rows: []window.Row{
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("two\nlines\r\tand\a\b\f\v")),
		}}},
		{name: "terminal-controls", keys: []string{"author_name"}, batch: window.Batch{ID: 9, Rows: []window.Row{
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("clear\x1b[2J\x1b[3J")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 2, val("clip\x1b]52;c;cHduZWQ=\x07")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 3, val("nul\x00del\x7fcsi\u009b31m")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 4, val("raw\x9b31m\xff")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 5, val("bidi\u202egpj.exe\u202c\u2066x\u2069\u200f\u061c")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 6, val("日本語 ok\u2028é")),
		}}},
		{name: "more-than-20-rows", keys: []string{"author_name"}, batch: window.Batch{ID: 5, Rows: manyRows(21)}},
		{name: "exactly-20-rows", keys: []string{"author_name"}, batch: window.Batch{ID: 6, Rows: manyRows(20)}},
		{name: "top-1-row", keys: []string{"author_name"}, maxRows: 1, batch: window.Batch{ID: 8, Rows: manyRows(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := NewConsole(&buf, tt.keys, tt.maxRows, tt.loc)
			if err := c.WriteBatch(context.Background(), &tt.batch); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "console-"+tt.name+".golden"), buf.String())
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it, then review it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestHalfWidth(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{
		{"", 0},
		{"alice", 5},
		{"日本語", 6},
		{"한국", 4},
		{"ｆｕ", 4},      // full-width forms U+FF00-FF60
		{"ｶﾀ", 2},      // half-width katakana U+FF61-FF9F: not in Spark's ranges
		{"😀", 2},       // outside the BMP: a surrogate pair in Java
		{"é", 1},       // precomposed
		{"e\u0301", 2}, // combining accent: Java counts two chars
		{"\u1100", 2}, {"\u115F", 2}, {"\u1160", 1},
		{"\u2E7F", 1}, {"\u2E80", 2}, {"\uA4CF", 2}, {"\uA4D0", 1},
		{"\uFE10", 2}, {"\uFE19", 2}, {"\uFE1A", 1}, {"\uFE30", 2}, {"\uFE6F", 2},
		{"\uFFE0", 2}, {"\uFFE6", 2}, {"\uFFE7", 1},
		{"a\xffb", 3}, // invalid UTF-8: one U+FFFD
	}
	for _, tt := range tests {
		if got := halfWidth(tt.s); got != tt.want {
			t.Errorf("halfWidth(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestFormatTimestamp(t *testing.T) {
	tests := []struct {
		us   int64
		want string
	}{
		{0, "1970-01-01 00:00:00"},
		{at("2025-11-07 18:00:30"), "2025-11-07 18:00:30"},
		{at("2025-11-07 18:00:30.5"), "2025-11-07 18:00:30.5"},
		{at("2025-11-07 18:00:30.123456"), "2025-11-07 18:00:30.123456"},
		{at("2025-11-07 18:00:30.000100"), "2025-11-07 18:00:30.0001"},
		{-1, "1969-12-31 23:59:59.999999"},
		{at("0999-01-02 03:04:05"), "0999-01-02 03:04:05"},
		{time.Date(-1, 12, 31, 23, 59, 30, 0, time.UTC).UnixMicro(), "-0001-12-31 23:59:30"},
		{time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), "+12345-01-01 00:00:00"},
	}
	for _, tt := range tests {
		if got := formatTimestamp(tt.us, time.UTC); got != tt.want {
			t.Errorf("formatTimestamp(%d) = %q, want %q", tt.us, got, tt.want)
		}
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestConsoleErrors(t *testing.T) {
	boom := errors.New("disk full")
	c := NewConsole(failWriter{boom}, []string{"author_name"}, 0, nil)
	if err := c.WriteBatch(context.Background(), &window.Batch{}); !errors.Is(err, boom) {
		t.Errorf("write error = %v, want %v", err, boom)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	c = NewConsole(&buf, nil, 0, nil)
	if err := c.WriteBatch(ctx, &window.Batch{}); !errors.Is(err, context.Canceled) || buf.Len() != 0 {
		t.Errorf("canceled: error %v, wrote %q; want context.Canceled and nothing", err, buf.String())
	}
}

// Successive batches each end with a blank line and are written whole.
func TestConsoleSuccessiveBatches(t *testing.T) {
	var buf bytes.Buffer
	c := NewConsole(&buf, []string{"author_name"}, 0, nil)
	for id := range 3 {
		if err := c.WriteBatch(context.Background(), &window.Batch{ID: int64(id)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "\n\n"); n != 3 {
		t.Errorf("%d blank lines after 3 batches, want 3:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "Batch: 2\n") {
		t.Errorf("no Batch: 2 line:\n%s", buf.String())
	}
}

// TestConsoleMatchesSpark compares the console with what Spark 4.2.0's
// Dataset.show(20, truncate=false) printed (session time zone UTC) for the
// same rows, as the console sink prints it after its "Batch: N" lines:
// testdata/spark-4.2-show*.txt are Spark's own output, unedited.
func TestConsoleMatchesSpark(t *testing.T) {
	tests := []struct {
		file string
		rows []window.Row
	}{
		{"spark-4.2-show-empty.txt", nil},
		{"spark-4.2-show.txt", []window.Row{
			mkRow("2025-11-07 17:59:30", "2025-11-07 18:00:30", 2, val("alice")),
			mkRow("2025-11-07 17:59:30.5", "2025-11-07 18:00:30.000001", 1, nullVal),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 3, val("日本語")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("😀smile")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("two\nlines\ttab")),
			mkRow("2025-11-07 18:00:00", "2025-11-07 18:01:00", 1, val("e\u0301")),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			table, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			c := NewConsole(&buf, []string{"author_name"}, 20, time.UTC)
			if err := c.WriteBatch(context.Background(), &window.Batch{ID: 9, Rows: tt.rows}); err != nil {
				t.Fatal(err)
			}
			want := consoleRule + "Batch: 9\n" + consoleRule + string(table)
			if got := buf.String(); got != want {
				t.Errorf("got:\n%s\nSpark:\n%s", got, want)
			}
		})
	}
}

// No byte a terminal acts on reaches the console raw: every C0 and C1
// control, DEL, bidirectional formatting character and byte that is not
// UTF-8, alone or among other text, is escaped; everything else is kept.
func TestConsoleEscapesEveryControl(t *testing.T) {
	var raw []string
	for r := rune(0); r < 0x20; r++ {
		raw = append(raw, string(r))
	}
	for r := rune(0x7f); r <= 0x9f; r++ {
		raw = append(raw, string(r))
	}
	for _, r := range []rune{0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069} {
		raw = append(raw, string(r))
	}
	for b := 0x80; b <= 0xff; b++ {
		raw = append(raw, string([]byte{byte(b)})) // never valid UTF-8 alone
	}
	for _, c := range raw {
		for _, s := range []string{c, "a" + c + "b", "名" + c} {
			got := escapeMeta(s)
			// (A lone byte can be part of another character's encoding:
			// then the runes below are the test.)
			if utf8.ValidString(c) && strings.Contains(got, c) || !utf8.ValidString(got) {
				t.Errorf("escapeMeta(%q) = %q: the character is still there raw", s, got)
			}
			for _, r := range got {
				if escapedRune(r, utf8.RuneLen(r)) {
					t.Errorf("escapeMeta(%q) = %q: holds %U", s, got, r)
				}
			}
		}
	}
	for _, keep := range []string{"alice", "José", "日本語の名前", "emoji😀", "zero\u200bwidth", "line\u2028sep", "rtl עברית", "a b", "\ufffd"} {
		if got := escapeMeta(keep); got != keep {
			t.Errorf("escapeMeta(%q) = %q, want it unchanged", keep, got)
		}
	}
}
