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
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/metrics"
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
// Authorization header. Requests keep within Discord's rate limits (see
// limiter): one REST value per bot token, shared by everything that calls
// Discord, keeps the global limit. It is safe for concurrent use.
type REST struct {
	base      string
	token     string
	client    *http.Client
	userAgent string
	log       *slog.Logger
	attempts  int
	sleep     func(ctx context.Context, d time.Duration) error
	lim       *limiter
	m         *restMetrics // nil: not counted
	// maxLimited bounds consecutive 429s for one call before it fails.
	maxLimited int
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
		log: log, attempts: 5, sleep: sleepCtx, lim: newLimiter(DefaultGlobalLimit, time.Now), maxLimited: 100,
	}, nil
}

// SetMetrics registers the REST counters (requests by route and status,
// rate-limit waits) on reg. Call it once, before any request.
func (r *REST) SetMetrics(reg *metrics.Registry) {
	r.m = newRESTMetrics(reg)
	r.lim.m = r.m
}

// SetGlobalLimit changes the global limit (requests per second, all
// routes); 0 or less turns the proactive global limit off (429s are still
// honoured). Discord grants 50 unless it told you otherwise. Call it
// before any request.
func (r *REST) SetGlobalLimit(perSecond int) {
	r.lim = newLimiter(perSecond, r.lim.now)
	r.lim.m = r.m
}

// GatewayBot fetches the Gateway URL, the recommended shard count and the
// session-start budget. It retries 429s (after retry_after), 5xx answers and
// network errors a few times; a 401 fails at once with ErrTokenRejected.
func (r *REST) GatewayBot(ctx context.Context) (GatewayBot, error) {
	var gb GatewayBot
	if err := r.get(ctx, "GET /gateway/bot", "", "/gateway/bot", &gb); err != nil {
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

// MessagesPageLimit is the most messages one history request returns.
const MessagesPageLimit = 100

// ChannelMessages fetches up to limit (1..100) messages of a channel
// created after the message id after ("0" or "" for the oldest), as raw
// Discord message objects, oldest first (Discord sends every page newest
// first; this sorts it). A missing permission is an *HTTPError with Status
// 403 (see IsMissingAccess); an unknown channel, Status 404.
func (r *REST) ChannelMessages(ctx context.Context, channelID, after string, limit int) ([]json.RawMessage, error) {
	if _, err := parseSnowflake(channelID); err != nil {
		return nil, fmt.Errorf("channel id: %w", err)
	}
	if after == "" {
		after = "0"
	} else if _, err := strconv.ParseUint(after, 10, 64); err != nil {
		return nil, fmt.Errorf("after: message id %q is not a snowflake", after)
	}
	limit = min(max(limit, 1), MessagesPageLimit)
	path := "/channels/" + channelID + "/messages?after=" + after + "&limit=" + strconv.Itoa(limit)
	var page []json.RawMessage
	if err := r.get(ctx, "GET /channels/{channel.id}/messages", channelID, path, &page); err != nil {
		return nil, err
	}
	type idOnly struct {
		ID string `json:"id"`
	}
	ids := make([]uint64, len(page))
	for i, raw := range page {
		var m idOnly
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("GET %s%s: message %d is not a message object: %w", r.base, path, i, err)
		}
		n, err := parseSnowflake(m.ID)
		if err != nil {
			return nil, fmt.Errorf("GET %s%s: message %d: %w", r.base, path, i, err)
		}
		ids[i] = n
	}
	idx := make([]int, len(page))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ids[idx[a]] < ids[idx[b]] })
	out := make([]json.RawMessage, len(page))
	for i, j := range idx {
		out[i] = page[j]
	}
	return out, nil
}

// IsMissingAccess reports whether err is Discord's 403: the bot may not
// read the channel (View Channel) or its history (Read Message History).
func IsMissingAccess(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == http.StatusForbidden
}

// IsNotFound reports whether err is Discord's 404 (e.g. Unknown Channel).
func IsNotFound(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == http.StatusNotFound
}

// get sends GET path and decodes the answer into out. route names the
// endpoint (rate-limit bucket and metrics label) and major its major
// parameter (the channel id, or ""). It waits for rate limits before each
// request; a 429 is retried after Discord's wait (up to maxLimited times in
// a row); 5xx answers and network errors are retried a few times; a 401
// fails at once with ErrTokenRejected.
func (r *REST) get(ctx context.Context, route, major, path string, out any) error {
	full := r.base + path
	key := route + " " + major
	var lastErr error
	failures, limited := 0, 0
	for {
		if err := r.lim.wait(ctx, key); err != nil {
			return err
		}
		res, err := r.try(ctx, full, out)
		r.lim.update(key, res.header, res.retry, res.global)
		if r.m != nil {
			code := "error"
			if res.status != 0 {
				code = strconv.Itoa(res.status)
			}
			r.m.requests.With(route, code).Inc()
		}
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.status == http.StatusTooManyRequests {
			limited++
			if limited > r.maxLimited {
				return fmt.Errorf("Discord kept answering 429 Too Many Requests (%d times): %w", limited, err)
			}
			lvl := slog.LevelDebug
			if res.global {
				lvl = slog.LevelWarn
			}
			r.log.Log(ctx, lvl, "Discord REST rate limit hit; waiting as told", "route", route, "retry_after", res.retry, "global", res.global)
			continue // the limiter waits
		}
		var he *HTTPError
		var ue *url.Error
		switch {
		case errors.As(err, &he) && he.Status >= 500:
		case errors.As(err, &ue):
		default:
			return err // a clear answer: retrying cannot change it
		}
		failures++
		if failures >= r.attempts {
			break
		}
		wait := time.Duration(failures) * time.Second
		r.log.Warn("Discord REST request failed, retrying", "route", route, "err", err, "retry_in", wait)
		if err := r.sleep(ctx, wait); err != nil {
			return err
		}
	}
	return fmt.Errorf("cannot reach Discord after %d attempts: %w", r.attempts, lastErr)
}

// answer is what one request learned besides the body.
type answer struct {
	status int
	header http.Header
	retry  time.Duration // 429: how long Discord asked us to wait
	global bool          // 429: the limit is global
}

// try makes one request.
func (r *REST) try(ctx context.Context, full string, out any) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bot "+r.token)
	req.Header.Set("User-Agent", r.userAgent)
	resp, err := r.client.Do(req)
	if err != nil {
		// *url.Error carries method and URL, never headers.
		return answer{}, err
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return a, fmt.Errorf("GET %s: read body: %w", full, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		a.retry, a.global = retryAfter(resp, body)
		return a, &HTTPError{Method: "GET", URL: full, Status: resp.StatusCode, Body: snippet(body)}
	}
	if resp.StatusCode != http.StatusOK {
		return a, &HTTPError{Method: "GET", URL: full, Status: resp.StatusCode, Body: snippet(body)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return a, fmt.Errorf("GET %s: the answer is not Discord's JSON (check --discord-api-url): %w", full, err)
	}
	return a, nil
}

// retryAfter reads a 429's wait from the JSON body or the Retry-After
// header, and whether the limit is global.
func retryAfter(resp *http.Response, body []byte) (time.Duration, bool) {
	var rl struct {
		RetryAfter float64 `json:"retry_after"`
		Global     bool    `json:"global"`
	}
	_ = json.Unmarshal(body, &rl)
	global := rl.Global || resp.Header.Get("X-RateLimit-Global") == "true"
	if rl.RetryAfter > 0 {
		return time.Duration(rl.RetryAfter * float64(time.Second)), global
	}
	if s, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second)), global
	}
	return time.Second, global
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
