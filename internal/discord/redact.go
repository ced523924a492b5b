package discord

import "strings"

// Redacted replaces what Redactor finds of a secret.
const Redacted = "[REDACTED]"

// Minimum lengths of a piece of the secret that Redactor replaces: inside
// a word, and at the start or end of a word (where a secret cut short, as
// in a truncated error body, leaves its first or last characters). A
// bot token is random base64: a natural word matches that many of its
// characters by chance only very rarely.
const (
	redactInside = 6
	redactEdge   = 4
)

// Redactor removes a secret from text: the whole of it, and any part of
// it that appears (see redactInside, redactEdge). It is safe for
// concurrent use.
type Redactor struct {
	secret string
}

// NewRedactor returns a Redactor for secret ("" redacts nothing).
func NewRedactor(secret string) *Redactor { return &Redactor{secret: secret} }

// tokenChar reports whether c can be part of a bot token (base64url and
// the dots between its parts).
func tokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+' || c == '/' || c == '='
}

// Redact returns s with every part of the secret replaced by Redacted.
func (r *Redactor) Redact(s string) string {
	if r == nil || r.secret == "" || s == "" {
		return s
	}
	sec := r.secret
	var mark []bool // bytes of s to replace, allocated on the first find
	set := func(i, j int) {
		if mark == nil {
			mark = make([]bool, len(s))
		}
		for k := i; k < j; k++ {
			mark[k] = true
		}
	}
	inside := min(redactInside, len(sec))
	for i := 0; i+inside <= len(s); i++ {
		if strings.Contains(sec, s[i:i+inside]) {
			set(i, i+inside)
		}
	}
	// The ends of each word: pieces shorter than inside.
	for i := 0; i < len(s); {
		if !tokenChar(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && tokenChar(s[j]) {
			j++
		}
		for n := min(inside-1, j-i); n >= redactEdge; n-- {
			if strings.Contains(sec, s[i:i+n]) {
				set(i, i+n)
				break
			}
		}
		for n := min(inside-1, j-i); n >= redactEdge; n-- {
			if strings.Contains(sec, s[j-n:j]) {
				set(j-n, j)
				break
			}
		}
		i = j
	}
	if mark == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !mark[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		for i < len(s) && mark[i] {
			i++
		}
		b.WriteString(Redacted)
	}
	return b.String()
}
