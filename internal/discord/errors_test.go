package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.secret-part-of-the-test-token"

func TestIsFatalClose(t *testing.T) {
	for code := 4000; code <= 4014; code++ {
		want := code == 4004 || (code >= 4010 && code <= 4014)
		if got := IsFatalClose(code); got != want {
			t.Errorf("IsFatalClose(%d) = %v, want %v", code, got, want)
		}
	}
	for _, code := range []int{1000, 1001, 1006, 1011} {
		if IsFatalClose(code) {
			t.Errorf("IsFatalClose(%d) = true", code)
		}
	}
}

func TestCloseErrorText(t *testing.T) {
	tests := []struct {
		code             int
		wantErr, wantHnt string
		is               error
	}{
		{4004, "rejected the token", "Bot -> Reset Token", ErrTokenRejected},
		{4014, "Message Content intent", "Privileged Gateway Intents -> Message Content Intent", ErrDisallowedIntents},
		{4013, "intents value 33281", "bug", nil},
		{4010, "shard 3", "restart", nil},
		{4011, "requires more shards", "restart", nil},
		{4012, "API version 10", "--discord-api-url", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			e := &CloseError{Code: tt.code, Shard: 3, Intents: DefaultIntents}
			if !strings.Contains(e.Error(), tt.wantErr) {
				t.Errorf("Error() = %q, want it to contain %q", e.Error(), tt.wantErr)
			}
			if !strings.Contains(e.Hint(), tt.wantHnt) {
				t.Errorf("Hint() = %q, want it to contain %q", e.Hint(), tt.wantHnt)
			}
			if tt.is != nil && !errors.Is(e, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", e, tt.is)
			}
		})
	}
}

func TestValidateToken(t *testing.T) {
	bad := []string{"", "Bot " + testToken, "abc", "a.b", "a..c", "a.b.c d", "a.b.c\n"}
	for _, tok := range bad {
		err := ValidateToken(tok)
		if err == nil {
			t.Errorf("ValidateToken(%q) = nil", tok)
			continue
		}
		if tok != "" && strings.Contains(err.Error(), strings.TrimPrefix(tok, "Bot ")) {
			t.Errorf("error %q repeats the token", err)
		}
	}
	if err := ValidateToken(testToken); err != nil {
		t.Errorf("ValidateToken(good) = %v", err)
	}
}

func TestIntentsString(t *testing.T) {
	if got, want := DefaultIntents.String(), "GUILDS|GUILD_MESSAGES|MESSAGE_CONTENT"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := uint64(DefaultIntents | IntentDirectMessages); got != 37377 {
		t.Errorf("all four intents = %d, want 37377", got)
	}
}

func TestGatewayBotREST(t *testing.T) {
	var calls atomic.Int32
	var sawAuth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		sawAuth.Store(r.Header.Get("Authorization"))
		switch {
		case r.URL.Path != "/api/v10/gateway/bot":
			http.NotFound(w, r)
		case n == 1:
			w.Header().Set("Retry-After", "0.01")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"You are being rate limited.","retry_after":0.01,"global":false}`)
		default:
			fmt.Fprint(w, `{"url":"wss://gateway.example","shards":2,"session_start_limit":{"total":1000,"remaining":999,"reset_after":14400000,"max_concurrency":1}}`)
		}
	}))
	defer srv.Close()
	r, err := NewREST(srv.URL+"/api/v10", testToken, nil, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.log = discardLogger()
	gb, err := r.GatewayBot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if gb.URL != "wss://gateway.example" || gb.Shards != 2 || gb.SessionStartLimit.Remaining != 999 {
		t.Errorf("GatewayBot = %+v", gb)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("requests = %d, want 2 (one 429, one retry)", got)
	}
	if got := sawAuth.Load(); got != "Bot "+testToken {
		t.Errorf("Authorization = %q", got)
	}
}

func TestGatewayBotRESTFailures(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
		is      error
	}{
		{"401", 401, `{"message":"401: Unauthorized","code":0}`, "rejected the token", ErrTokenRejected},
		{"404", 404, `not here`, "HTTP 404", nil},
		{"bad url", 200, `{"url":"https://not-a-websocket","shards":1}`, "want wss://", nil},
		{"not JSON", 200, `<html>`, "not Discord's JSON", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			r, _ := NewREST(srv.URL, testToken, nil, "test", discardLogger())
			_, err := r.GatewayBot(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error contains the token: %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
			if got := calls.Load(); got != 1 {
				t.Errorf("requests = %d, want 1 (no retry)", got)
			}
		})
	}
}

func TestGatewayBotRESTUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	r, _ := NewREST(addr, testToken, nil, "test", discardLogger())
	r.sleep = func(context.Context, time.Duration) error { return nil }
	_, err := r.GatewayBot(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach Discord after 5 attempts") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error contains the token: %v", err)
	}
}

func TestNewRESTBadURL(t *testing.T) {
	for _, u := range []string{"", "discord.com/api/v10", "ftp://x", "http://"} {
		if _, err := NewREST(u, testToken, nil, "", nil); err == nil {
			t.Errorf("NewREST(%q) = nil error", u)
		}
	}
}
