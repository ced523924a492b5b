package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultAPIURL is Discord's REST base for API v10.
const DefaultAPIURL = "https://discord.com/api/v10"

// APIVersion is the Gateway and REST API version spoken.
const APIVersion = 10

// GatewayBot is the answer of GET /gateway/bot.
type GatewayBot struct {
	URL               string            `json:"url"`
	Shards            int               `json:"shards"`
	SessionStartLimit SessionStartLimit `json:"session_start_limit"`
}

// SessionStartLimit is the IDENTIFY budget Discord grants.
type SessionStartLimit struct {
	Total          int `json:"total"`
	Remaining      int `json:"remaining"`
	ResetAfter     int `json:"reset_after"` // milliseconds
	MaxConcurrency int `json:"max_concurrency"`
}

// REST is a minimal Discord REST client. The token is sent only in the
// Authorization header.
type REST struct {
	base      string
	token     string
	client    *http.Client
	userAgent string
	log       *slog.Logger
	attempts  int
	sleep     func(ctx context.Context, d time.Duration) error
}

// NewREST returns a client for the REST API at base (e.g. DefaultAPIURL).
func NewREST(base, token string, client *http.Client, userAgent string, log *slog.Logger) (*REST, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("Discord API URL %q: want http(s)://host[/path], e.g. %s", base, DefaultAPIURL)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &REST{
		base: strings.TrimRight(base, "/"), token: token, client: client, userAgent: userAgent,
		log: log, attempts: 5, sleep: sleepCtx,
	}, nil
}

// GatewayBot fetches the Gateway URL, the recommended shard count and the
// session-start budget. It retries 429s (after retry_after), 5xx answers and
// network errors a few times; a 401 fails at once with ErrTokenRejected.
func (r *REST) GatewayBot(ctx context.Context) (GatewayBot, error) {
	var gb GatewayBot
	if err := r.get(ctx, "/gateway/bot", &gb); err != nil {
		return GatewayBot{}, err
	}
	u, err := url.Parse(gb.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return GatewayBot{}, fmt.Errorf("GET %s/gateway/bot: url %q is not a ws:// or wss:// URL", r.base, gb.URL)
	}
	if gb.Shards < 1 {
		gb.Shards = 1
	}
	if gb.SessionStartLimit.MaxConcurrency < 1 {
		gb.SessionStartLimit.MaxConcurrency = 1
	}
	return gb, nil
}

func (r *REST) get(ctx context.Context, path string, out any) error {
	full := r.base + path
	var lastErr error
	for attempt := 1; attempt <= r.attempts; attempt++ {
		wait, err := r.try(ctx, full, out)
		if err == nil {
			return nil
		}
		lastErr = err
		var he *HTTPError
		var ue *url.Error
		switch {
		case errors.As(err, &he) && (he.Status == http.StatusTooManyRequests || he.Status >= 500):
		case errors.As(err, &ue):
		default:
			return err // a clear answer: retrying cannot change it
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt == r.attempts {
			break
		}
		if wait <= 0 {
			wait = time.Duration(attempt) * time.Second
		}
		r.log.Warn("Discord REST request failed, retrying", "path", path, "err", err, "retry_in", wait)
		if err := r.sleep(ctx, wait); err != nil {
			return err
		}
	}
	return fmt.Errorf("cannot reach Discord after %d attempts: %w", r.attempts, lastErr)
}

// try makes one request; wait is how long Discord asked us to wait (429).
func (r *REST) try(ctx context.Context, full string, out any) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bot "+r.token)
	req.Header.Set("User-Agent", r.userAgent)
	resp, err := r.client.Do(req)
	if err != nil {
		// *url.Error carries method and URL, never headers.
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("GET %s: read body: %w", full, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return retryAfter(resp, body), &HTTPError{Method: "GET", URL: full, Status: resp.StatusCode, Body: snippet(body)}
	}
	if resp.StatusCode != http.StatusOK {
		return 0, &HTTPError{Method: "GET", URL: full, Status: resp.StatusCode, Body: snippet(body)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return 0, fmt.Errorf("GET %s: the answer is not Discord's JSON (check --discord-api-url): %w", full, err)
	}
	return 0, nil
}

// retryAfter reads a 429's wait from the JSON body or the Retry-After header.
func retryAfter(resp *http.Response, body []byte) time.Duration {
	var rl struct {
		RetryAfter float64 `json:"retry_after"`
	}
	if json.Unmarshal(body, &rl) == nil && rl.RetryAfter > 0 {
		return time.Duration(rl.RetryAfter * float64(time.Second))
	}
	if s, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	return time.Second
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter returns a random duration in [lo, hi).
func jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rand.Int64N(int64(hi-lo)))
}
