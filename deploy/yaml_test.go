package deploy

// A strict parser for the subset of YAML that deploy/docker-compose.yml is
// written in. go.mod has no YAML library, and one parser for one file is not
// worth a new dependency; PyYAML, when installed, cross-checks the result
// (TestComposeParses).
//
// The subset is chosen so that whatever this parser accepts is valid YAML
// (1.1 and 1.2) with the same meaning: block mappings and block sequences
// indented with spaces, plain, 'single' and "double" quoted scalars, flow
// sequences of scalars on one line, comments, an optional leading "---".
// Everything else (anchors, aliases, tags, flow mappings, block scalars,
// multi-line scalars, "- key: value" items, tabs in indentation, duplicate
// keys) is rejected with the line number, never guessed at.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

type yKind int

const (
	yNull yKind = iota
	yScalar
	ySeq
	yMap
)

// yNode is one parsed YAML value.
type yNode struct {
	kind   yKind
	line   int      // 1-based line where the value starts
	str    string   // yScalar: the value, unquoted
	quoted bool     // yScalar: written quoted (a string whatever it looks like)
	items  []*yNode // ySeq
	keys   []string // yMap: keys in file order
	m      map[string]*yNode
}

// get walks mapping keys; nil when a key is missing or a value is not a mapping.
func (n *yNode) get(path ...string) *yNode {
	for _, k := range path {
		if n == nil || n.kind != yMap {
			return nil
		}
		n = n.m[k]
	}
	return n
}

// scalars returns a sequence of scalars as strings; ok is false for anything else.
func (n *yNode) scalars() (out []string, ok bool) {
	if n == nil || n.kind != ySeq {
		return nil, false
	}
	for _, it := range n.items {
		if it.kind != yScalar {
			return nil, false
		}
		out = append(out, it.str)
	}
	return out, true
}

// plain converts n to plain Go values (map[string]any, []any, string, nil).
func (n *yNode) plain() any {
	switch n.kind {
	case yScalar:
		return n.str
	case ySeq:
		out := make([]any, len(n.items))
		for i, it := range n.items {
			out[i] = it.plain()
		}
		return out
	case yMap:
		out := make(map[string]any, len(n.keys))
		for _, k := range n.keys {
			out[k] = n.m[k].plain()
		}
		return out
	}
	return nil
}

type yLine struct {
	no     int
	indent int
	text   string // without indentation; may still end with a comment
}

type yParser struct {
	lines []yLine
	i     int
}

// parseYAML parses src; the top level must be a mapping.
func parseYAML(src string) (*yNode, error) {
	p := &yParser{}
	for i, raw := range strings.Split(src, "\n") {
		no := i + 1
		if strings.ContainsRune(raw, '\r') {
			return nil, fmt.Errorf("line %d: carriage return: use Unix line endings", no)
		}
		body := strings.TrimLeft(raw, " ")
		indent := len(raw) - len(body)
		if strings.HasPrefix(body, "\t") {
			return nil, fmt.Errorf("line %d: tab in indentation: YAML indents with spaces only", no)
		}
		trimmed := strings.TrimRight(body, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if len(p.lines) == 0 && indent == 0 && trimmed == "---" {
			continue // document start marker
		}
		if indent == 0 && (trimmed == "---" || trimmed == "..." || trimmed[0] == '%') {
			return nil, fmt.Errorf("line %d: %q: one document without directives is supported", no, trimmed)
		}
		p.lines = append(p.lines, yLine{no: no, indent: indent, text: trimmed})
	}
	if len(p.lines) == 0 {
		return nil, fmt.Errorf("empty document")
	}
	if p.lines[0].indent != 0 {
		return nil, fmt.Errorf("line %d: the document must start at column 1", p.lines[0].no)
	}
	root, err := p.block(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		l := p.lines[p.i]
		return nil, fmt.Errorf("line %d: unexpected indentation or content %q", l.no, l.text)
	}
	if root.kind != yMap {
		return nil, fmt.Errorf("line %d: the document must be a mapping", root.line)
	}
	return root, nil
}

func isSeqItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

// block parses the block node whose first line is p.lines[p.i], indented by indent.
func (p *yParser) block(indent int) (*yNode, error) {
	l := p.lines[p.i]
	if isSeqItem(l.text) {
		return p.seq(indent)
	}
	return p.mapping(indent)
}

func (p *yParser) mapping(indent int) (*yNode, error) {
	n := &yNode{kind: yMap, line: p.lines[p.i].no, m: map[string]*yNode{}}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", l.no)
		}
		if isSeqItem(l.text) {
			return nil, fmt.Errorf("line %d: a sequence item where a mapping key was expected", l.no)
		}
		key, rest, err := splitKey(l.text, l.no)
		if err != nil {
			return nil, err
		}
		if _, dup := n.m[key]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", l.no, key)
		}
		p.i++
		if strings.HasPrefix(rest, "#") {
			rest = "" // a comment after "key:"
		}
		var v *yNode
		if rest != "" {
			if v, err = inline(rest, l.no); err != nil {
				return nil, err
			}
		} else if p.i < len(p.lines) && (p.lines[p.i].indent > indent ||
			(p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text))) {
			// A nested block; a sequence may sit at the key's own indentation.
			if v, err = p.block(p.lines[p.i].indent); err != nil {
				return nil, err
			}
		} else {
			v = &yNode{kind: yNull, line: l.no}
		}
		n.keys = append(n.keys, key)
		n.m[key] = v
	}
	return n, nil
}

func (p *yParser) seq(indent int) (*yNode, error) {
	n := &yNode{kind: ySeq, line: p.lines[p.i].no}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent < indent || (l.indent == indent && !isSeqItem(l.text)) {
			break
		}
		if l.indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", l.no)
		}
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		p.i++
		var v *yNode
		var err error
		switch {
		case rest == "" || rest[0] == '#':
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				if v, err = p.block(p.lines[p.i].indent); err != nil {
					return nil, err
				}
			} else {
				v = &yNode{kind: yNull, line: l.no}
			}
		case isSeqItem(rest):
			return nil, fmt.Errorf("line %d: nested \"- -\" sequences are not supported here", l.no)
		default:
			if _, _, kerr := splitKey(rest, l.no); kerr == nil {
				return nil, fmt.Errorf("line %d: \"- key: value\" items are not supported here; indent the mapping under a bare \"-\"", l.no)
			}
			if v, err = inline(rest, l.no); err != nil {
				return nil, err
			}
		}
		n.items = append(n.items, v)
	}
	return n, nil
}

// splitKey splits "key: rest" (rest may be empty). Keys are plain words or
// quoted scalars.
func splitKey(text string, no int) (key, rest string, err error) {
	if text[0] == '"' || text[0] == '\'' {
		k, after, err := quoted(text, no)
		if err != nil {
			return "", "", err
		}
		if after != ":" && !strings.HasPrefix(after, ": ") {
			return "", "", fmt.Errorf("line %d: expected \": \" after the key %q", no, k)
		}
		return k, strings.TrimLeft(strings.TrimPrefix(after, ":"), " "), nil
	}
	i := strings.Index(text, ": ")
	if i < 0 {
		if !strings.HasSuffix(text, ":") {
			return "", "", fmt.Errorf("line %d: expected \"key: value\", got %q", no, text)
		}
		i = len(text) - 1
	}
	key = text[:i]
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return "", "", fmt.Errorf("line %d: key %q: quote keys other than letters, digits, '_', '-' and '.'", no, key)
		}
	}
	if key == "" || key[0] == '-' || key[0] == '.' {
		return "", "", fmt.Errorf("line %d: invalid key %q", no, key)
	}
	return key, strings.TrimLeft(text[i+1:], " "), nil
}

// endOfValue checks that what follows a value is nothing or a comment.
func endOfValue(after string, no int) error {
	after = strings.TrimLeft(after, " ")
	if after != "" && after[0] != '#' {
		return fmt.Errorf("line %d: unexpected %q after the value", no, after)
	}
	return nil
}

// inline parses a value written on the rest of a line.
func inline(s string, no int) (*yNode, error) {
	switch s[0] {
	case '"', '\'':
		v, after, err := quoted(s, no)
		if err != nil {
			return nil, err
		}
		if err := endOfValue(after, no); err != nil {
			return nil, err
		}
		return &yNode{kind: yScalar, line: no, str: v, quoted: true}, nil
	case '[':
		return flowSeq(s, no)
	case '#':
		return &yNode{kind: yNull, line: no}, nil
	}
	v, err := plainScalar(s, no, false)
	if err != nil {
		return nil, err
	}
	if isNullWord(v) {
		return &yNode{kind: yNull, line: no}, nil
	}
	return &yNode{kind: yScalar, line: no, str: v}, nil
}

// plainScalar reads an unquoted scalar up to a comment. In a flow sequence
// the caller has already cut it at ',' or ']'.
func plainScalar(s string, no int, flow bool) (string, error) {
	if flow && strings.ContainsRune(s, '#') {
		return "", fmt.Errorf("line %d: '#' in a flow sequence: quote the item", no)
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	s = strings.Trim(s, " ")
	if s == "" {
		return "", fmt.Errorf("line %d: empty value", no)
	}
	if strings.IndexByte("[]{},#&*!|>'\"%@`?:", s[0]) >= 0 || (s[0] == '-' && (len(s) == 1 || s[1] == ' ')) {
		return "", fmt.Errorf("line %d: %q starts with a YAML indicator: quote it", no, s)
	}
	if strings.Contains(s, ": ") || strings.HasSuffix(s, ":") {
		return "", fmt.Errorf("line %d: %q holds \": \" (a mapping here is not supported): quote it", no, s)
	}
	if strings.ContainsRune(s, '\t') {
		return "", fmt.Errorf("line %d: tab in %q: quote it", no, s)
	}
	if flow && strings.ContainsAny(s, "[]{},") {
		return "", fmt.Errorf("line %d: %q in a flow sequence: quote it", no, s)
	}
	if yaml11Ambiguous.MatchString(s) {
		return "", fmt.Errorf("line %d: %q reads differently in YAML 1.1 and 1.2 (boolean, octal or base-60 number): quote it", no, s)
	}
	return s, nil
}

// yaml11Ambiguous matches plain scalars that YAML 1.1 readers (PyYAML, some
// Compose versions) and YAML 1.2 readers take differently: 1.1 booleans,
// numbers with a leading zero, base-60 numbers such as 80:80.
var yaml11Ambiguous = regexp.MustCompile(`^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|[-+]?0[0-9_]+|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)$`)

// isNullWord reports whether a plain scalar is YAML's null.
func isNullWord(s string) bool { return s == "~" || s == "null" || s == "Null" || s == "NULL" }

// quoted reads a quoted scalar at the start of s and returns the rest.
func quoted(s string, no int) (val, rest string, err error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case q == '\'' && c == '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			return b.String(), s[i+1:], nil
		case q == '"' && c == '"':
			return b.String(), s[i+1:], nil
		case q == '"' && c == '\\':
			if i+1 >= len(s) {
				return "", "", fmt.Errorf("line %d: unterminated escape", no)
			}
			i++
			switch s[i] {
			case '\\', '"', '/':
				b.WriteByte(s[i])
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				return "", "", fmt.Errorf("line %d: escape \\%c is not supported here", no, s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("line %d: unterminated %c-quoted scalar (multi-line scalars are not supported)", no, q)
}

// flowSeq parses "[a, "b", 'c']" on one line.
func flowSeq(s string, no int) (*yNode, error) {
	n := &yNode{kind: ySeq, line: no}
	rest := strings.TrimLeft(s[1:], " ")
	if strings.HasPrefix(rest, "]") {
		return n, endOfValue(rest[1:], no)
	}
	for {
		if rest == "" {
			return nil, fmt.Errorf("line %d: unterminated flow sequence (it must close on its line)", no)
		}
		var item *yNode
		switch rest[0] {
		case '"', '\'':
			v, after, err := quoted(rest, no)
			if err != nil {
				return nil, err
			}
			item = &yNode{kind: yScalar, line: no, str: v, quoted: true}
			rest = strings.TrimLeft(after, " ")
		case '[', '{':
			return nil, fmt.Errorf("line %d: nested flow collections are not supported", no)
		default:
			end := strings.IndexAny(rest, ",]")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated flow sequence (it must close on its line)", no)
			}
			v, err := plainScalar(rest[:end], no, true)
			if err != nil {
				return nil, err
			}
			item = &yNode{kind: yScalar, line: no, str: v}
			if isNullWord(v) {
				item = &yNode{kind: yNull, line: no}
			}
			rest = rest[end:]
		}
		n.items = append(n.items, item)
		switch {
		case strings.HasPrefix(rest, ","):
			rest = strings.TrimLeft(rest[1:], " ")
			if strings.HasPrefix(rest, "]") {
				return nil, fmt.Errorf("line %d: trailing comma in a flow sequence", no)
			}
		case strings.HasPrefix(rest, "]"):
			return n, endOfValue(rest[1:], no)
		default:
			return nil, fmt.Errorf("line %d: expected ',' or ']' in a flow sequence, got %q", no, rest)
		}
	}
}

// TestParseYAML pins the subset: what is accepted and how it reads, and that
// everything outside it is an error naming the line.
func TestParseYAML(t *testing.T) {
	good := []struct {
		name string
		src  string
		want string // fmt %v of plain()
	}{
		{"scalars", "a: 1\nb: \"x: y # z\"\nc: 'it''s'\nd: plain text # comment\ne:\n", "map[a:1 b:x: y # z c:it's d:plain text e:<nil>]"},
		{"nested", "---\ns:\n  x:\n    y: z\n", "map[s:map[x:map[y:z]]]"},
		{"block sequence", "l:\n  - a\n  - \"b\"\nm:\n- c\n", "map[l:[a b] m:[c]]"},
		{"flow sequence", "c: [\"CMD\", 'x', plain, -1]\ne: []\n", "map[c:[CMD x plain -1] e:[]]"},
		{"interpolation and colons", "t: ${TOKEN:-}\nr: on-failure:5\nv: data:/var/lib\n", "map[r:on-failure:5 t:${TOKEN:-} v:data:/var/lib]"},
		{"comments and blank lines", "# head\n\na: b\n  # indented comment\nc: d\n", "map[a:b c:d]"},
		{"null words", "a: ~\nb: null\n", "map[a:<nil> b:<nil>]"},
		{"comment after key", "a: # comment\n  b: c\n", "map[a:map[b:c]]"},
		{"quoted ambiguous words", "a: \"no\"\nb: '80:80'\nc: 0\nd: 127.0.0.1:9092:9092\n", "map[a:no b:80:80 c:0 d:127.0.0.1:9092:9092]"},
		{"sequence of mappings", "l:\n  -\n    a: b\n", "map[l:[map[a:b]]]"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			n, err := parseYAML(tc.src)
			if err != nil {
				t.Fatalf("parseYAML: %v", err)
			}
			if got := fmt.Sprint(n.plain()); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	bad := []struct {
		name, src, want string
	}{
		{"empty", "# nothing\n", "empty document"},
		{"tab indentation", "a:\n\tb: c\n", "line 2: tab"},
		{"duplicate key", "a: 1\nb: 2\na: 3\n", "line 3: duplicate key"},
		{"anchor", "a: &x 1\n", "indicator"},
		{"alias", "a: *x\n", "indicator"},
		{"tag", "a: !!str 1\n", "indicator"},
		{"block scalar", "a: |\n  text\n", "indicator"},
		{"flow mapping", "a: {b: c}\n", "indicator"},
		{"colon in plain scalar", "a: b: c\n", "quote it"},
		{"unterminated quote", "a: \"b\n", "line 1: unterminated"},
		{"unterminated flow", "a: [b, c\n", "line 1: unterminated flow"},
		{"trailing comma", "a: [b, ]\n", "trailing comma"},
		{"nested flow", "a: [[b]]\n", "nested flow"},
		{"text after quote", "a: \"b\" c\n", "unexpected"},
		{"bad indentation", "a:\n  b: c\n    d: e\n", "line 3: unexpected indentation"},
		{"key then item", "a: b\n- c\n", "line 2: a sequence item"},
		{"inline mapping item", "l:\n  - a: b\n", "\"- key: value\" items"},
		{"multi-line plain", "a: b\n  c\n", "line 2"},
		{"top-level sequence", "- a\n", "must be a mapping"},
		{"indented start", "  a: b\n", "column 1"},
		{"second document", "a: b\n---\nc: d\n", "one document"},
		{"carriage return", "a: b\r\n", "carriage return"},
		{"unknown escape", "a: \"\\x41\"\n", "escape"},
		{"bare word", "a\n", "expected \"key: value\""},
		{"YAML 1.1 boolean", "restart: no\n", "YAML 1.1"},
		{"YAML 1.1 boolean in flow", "a: [on, b]\n", "YAML 1.1"},
		{"base-60 port", "ports:\n  - 22:22\n", "YAML 1.1"},
		{"leading zero", "mode: 0644\n", "YAML 1.1"},
	}
	for _, tc := range bad {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			n, err := parseYAML(tc.src)
			if err == nil {
				t.Fatalf("parseYAML accepted %q as %v; want an error containing %q", tc.src, n.plain(), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
