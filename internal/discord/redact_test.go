package discord

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	tok := testToken // "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.secret-part-of-the-test-token"
	r := NewRedactor(tok)
	for _, tc := range []struct{ in, want string }{
		{"nothing hidden here, message 1234 ok", "nothing hidden here, message 1234 ok"},
		{"Bot " + tok, "Bot [REDACTED]"},
		{"cut: Bot " + tok[:20] + "...", "cut: Bot [REDACTED]..."},
		{"cut short: " + tok[:5], "cut short: [REDACTED]"},
		{"end " + tok[len(tok)-4:] + `"}`, "end [REDACTED]\"}"},
		{"middle x" + tok[30:40] + "y", "middle x[REDACTED]y"},
		{tok + " and again " + tok, "[REDACTED] and again [REDACTED]"},
		{"a word: secre", "a word: [REDACTED]"}, // the start of the secret part, cut
		{"three: sec", "three: sec"},            // too short to tell
		{"", ""},
	} {
		if got := r.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := NewRedactor("").Redact("x " + tok); got != "x "+tok {
		t.Errorf("an empty secret redacted %q", got)
	}
	// Ordinary text is left alone against a random-looking token.
	real := NewRedactor("MTA4NzQ2NTA1MjE0MzE1MTIzNA.GZ8xkq.f3Qp1xVb8LmZ0rT7yHs2WcJn4KdE9aUo6iXg")
	text := "time=2026-01-01T00:00:00Z level=INFO msg=\"connected to Discord\" user=cordstream guilds=42 shard=0 " +
		"GET https://discord.com/api/v10/channels/1100000000000000001/messages?after=0&limit=100: HTTP 403: Missing Access"
	if got := real.Redact(text); got != text {
		t.Errorf("ordinary text changed:\n%s\n%s", text, got)
	}
	if strings.Contains(r.Redact(strings.Repeat(tok[7:19], 3)), tok[7:13]) {
		t.Error("repeated piece not redacted")
	}
}

// TestErrorBodyEchoingTheToken: a server that echoes the Authorization
// header in an error body, wherever the 200-character cut falls, gets no
// piece of the token into the error.
func TestErrorBodyEchoingTheToken(t *testing.T) {
	for _, pad := range []int{0, 150, 180, 190, 196, 199} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `%s"bad header: %s"`, strings.Repeat("x", pad), r.Header.Get("Authorization"))
		}))
		r, _ := NewREST(srv.URL, testToken, nil, "test", discardLogger())
		_, err := r.GatewayBot(context.Background())
		srv.Close()
		if err == nil {
			t.Fatal("no error")
		}
		for i := 0; i+4 <= len(testToken); i++ {
			if strings.Contains(strings.TrimPrefix(err.Error(), srv.URL), testToken[i:i+4]) && !strings.Contains("GET /gateway/bot: HTTP 400 bad header", testToken[i:i+4]) {
				t.Errorf("pad %d: the error holds %q of the token: %v", pad, testToken[i:i+4], err)
				break
			}
		}
	}
}
