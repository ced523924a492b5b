package sparkexpr

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	if s == "-" {
		return []byte{}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every body of testdata/from-json-strings.txt.gz went through Spark 4.2.0's
// from_json (spark/golden/strings.py): the bytes of the string Spark holds and
// its length() must be ours.
func TestFromJSONStringsEqualSpark(t *testing.T) {
	f, err := os.Open("testdata/from-json-strings.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	n, bad, differsFromGo := 0, 0, 0
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		fs := strings.Fields(l)
		body, want := unhex(t, fs[0]), unhex(t, fs[1])
		wantLen, _ := strconv.Atoi(fs[2])
		got, err := AppendJSONString(nil, body)
		if err != nil || string(got) != string(want) || Length(string(got)) != int32(wantLen) {
			if bad++; bad <= 20 {
				t.Errorf("body %x: got %x (length %d, %v), Spark %x (length %d)", body, got, Length(string(got)), err, want, wantLen)
			}
		}
		if !utf8.Valid(got) {
			t.Errorf("body %x: result %x is not valid UTF-8", body, got)
		}
		var viaGo string
		if err := json.Unmarshal([]byte(`"`+string(body)+`"`), &viaGo); err != nil || viaGo != string(want) {
			differsFromGo++
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 100000 || bad > 0 {
		t.Fatalf("%d bodies compared, %d differ", n, bad)
	}
	t.Logf("%d bodies equal to Spark's strings; encoding/json decodes %d of them differently", n, differsFromGo)
}

// Raw bytes decode as Java's reader decodes them: the body test data without
// escapes, through AppendDecodedUTF8.
func TestDecodedUTF8(t *testing.T) {
	cases := map[string]string{
		"":                 "",
		"abc":              "abc",
		"ol\xc3\xa1":       "olá",
		"\xe2\x82A":        "\uFFFDA",
		"\xed\xa0\x80":     "\uFFFD",
		"\xf0\x9f\x98":     "\uFFFD",
		"\xc0\x80":         "\uFFFD\uFFFD",
		"\xf4\x90\x80\x80": "\uFFFD\uFFFD\uFFFD\uFFFD",
		"\xe2\x82":         "\uFFFD", // cut at the end
		"\xf0\x9f\x98\x80": "😀",
		"\xff\xfe":         "\uFFFD\uFFFD",
	}
	for in, want := range cases {
		if got := string(AppendDecodedUTF8(nil, []byte(in))); got != want {
			t.Errorf("AppendDecodedUTF8(%x) = %x, want %x", in, got, want)
		}
	}
}

func TestJSONStringRejects(t *testing.T) {
	for _, body := range []string{`\`, `\x`, `\u12`, `\u12g4`, `a"b`, "a\nb", "\x00", `\ud800\u12`} {
		if got, err := AppendJSONString(nil, []byte(body)); err == nil {
			t.Errorf("body %q accepted as %q", body, got)
		}
	}
}

// Spark's length() of bytes that are not valid UTF-8 (testdata/length.txt:
// CAST(X'..' AS STRING) in Spark 4.2.0) and of valid strings.
func TestLengthEqualsSpark(t *testing.T) {
	f, err := os.Open("testdata/length.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		fs := strings.Fields(sc.Text())
		b := unhex(t, fs[0])
		want, _ := strconv.Atoi(fs[1])
		if got := LengthBytes(b); got != int32(want) {
			t.Errorf("length(%x) = %d, Spark %d", b, got, want)
		}
		if got := Length(string(b)); got != int32(want) {
			t.Errorf("Length(%x) = %d, Spark %d", b, got, want)
		}
		n++
	}
	if n < 25 {
		t.Fatalf("%d cases", n)
	}
	for s, want := range map[string]int32{"": 0, "hi": 2, "olá 👋": 5, "?": 1, "\uFFFD": 1, "日本語": 3} {
		if got := Length(s); got != want {
			t.Errorf("Length(%q) = %d, want %d", s, got, want)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`\ud83d\ude00`, `\ud800`, "ol\xc3\xa1", "\xed\xa0\x80\xe2\x82A", `\n\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := AppendJSONString(nil, body)
		if err != nil {
			return
		}
		if !utf8.Valid(got) {
			t.Fatalf("%x gave invalid UTF-8 %x", body, got)
		}
		if Length(string(got)) != int32(utf8.RuneCount(got)) {
			t.Fatalf("Length disagrees with the rune count on valid UTF-8 %x", got)
		}
		if d := AppendDecodedUTF8(nil, body); !utf8.Valid(d) {
			t.Fatalf("AppendDecodedUTF8(%x) = %x, invalid", body, d)
		}
	})
}
