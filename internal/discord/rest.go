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
	redact    *Redactor    // of the token: what Discord echoes of it never reaches an error
	// maxLimited bounds consecutive 429s for one call before it fails;
	// the wait after each grows (see limitedWait).
	maxLimited int
}

// NewREST returns a client for the REST API at base (e.g. DefaultAPIURL):
// https, or http for a loopback address only (the simulator), since every
// request carries the token.
func NewREST(base, token string, client *http.Client, userAgent string, log *slog.Logger) (*REST, error) {
	if _, err := checkURL("Discord API URL", base, "https", "http"); err != nil {
		return nil, fmt.Errorf("%w (e.g. %s)", err, DefaultAPIURL)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &REST{
		base: strings.TrimRight(base, "/"), token: token, client: client, userAgent: userAgent, redact: NewRedactor(token),
		log: log, attempts: 5, sleep: sleepCtx, lim: newLimiter(DefaultGlobalLimit, time.Now), maxLimited: 10,
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
//
// The answer is checked: the URL must be wss:// (ws:// for a loopback
// address), the shard count at most MaxShards; max_concurrency is clamped
// to [1, MaxConcurrency], the budget's counts to zero or more and its
// reset_after to [0, MaxRetryAfter].
func (r *REST) GatewayBot(ctx context.Context) (GatewayBot, error) {
	var gb GatewayBot
	if err := r.get(ctx, "GET /gateway/bot", "", "/gateway/bot", &gb); err != nil {
		return GatewayBot{}, err
	}
	if _, err := checkURL("Gateway URL", gb.URL, "wss", "ws"); err != nil {
		return GatewayBot{}, fmt.Errorf("GET %s/gateway/bot: %w", r.base, err)
	}
	switch {
	case gb.Shards < 1:
		gb.Shards = 1
	case gb.Shards > MaxShards:
		return GatewayBot{}, fmt.Errorf("GET %s/gateway/bot: Discord recommends %d shards, more than any bot needs (at most %d: "+
			"Discord keeps up to 2,500 guilds on a shard); not opening them", r.base, gb.Shards, MaxShards)
	}
	sl := &gb.SessionStartLimit
	sl.MaxConcurrency = min(max(sl.MaxConcurrency, 1), MaxConcurrency)
	sl.Total, sl.Remaining = max(sl.Total, 0), max(sl.Remaining, 0)
	sl.ResetAfter = min(max(sl.ResetAfter, 0), int(MaxRetryAfter/time.Millisecond))
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
	if len(page) > limit {
		// More than asked for: no page of Discord's. What follows the
		// oldest limit is fetched by the next request.
		r.log.Warn("Discord returned more messages than asked for; using the oldest ones", "channel_id", channelID,
			"asked", limit, "got", len(page))
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
	out := make([]json.RawMessage, min(len(page), limit))
	for i := range out {
		out[i] = page[idx[i]]
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
		if res.status == http.StatusTooManyRequests && res.retryOK {
			limited++
			res.retry = limitedWait(res.retry, limited)
		}
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
		if res.status == http.StatusTooManyRequests && res.retryOK {
			if limited > r.maxLimited {
				return fmt.Errorf("Discord kept answering 429 Too Many Requests (%d times): %w", limited, err)
			}
			lvl := slog.LevelDebug
			if res.global || limited > 1 || res.retry > time.Minute {
				lvl = slog.LevelWarn
			}
			r.log.Log(ctx, lvl, "Discord REST rate limit hit; waiting", "route", route, "wait", res.retry, "global", res.global, "in_a_row", limited)
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
	status  int
	header  http.Header
	retry   time.Duration // 429: how long Discord asked us to wait
	retryOK bool          // 429: retry is a real wait (see seconds)
	global  bool          // 429: the limit is global
}

// minLimitedWait is the least wait after a 429; it doubles with each 429 in
// a row for one call, whatever Discord says (a 429 right after its own wait
// means the wait was wrong), up to MaxRetryAfter.
const minLimitedWait = 100 * time.Millisecond

func limitedWait(retry time.Duration, inARow int) time.Duration {
	return min(max(retry, minLimitedWait<<min(inARow-1, 30)), MaxRetryAfter)
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
		var said string
		a.retry, a.global, said, a.retryOK = retryAfter(resp, body)
		if !a.retryOK {
			return a, fmt.Errorf("GET %s: Discord answered 429 Too Many Requests asking to wait %s seconds, which is no real rate limit "+
				"(not a number, or more than %s): not retrying", full, r.snippet([]byte(said)), MaxRetryAfter)
		}
		return a, &HTTPError{Method: "GET", URL: full, Status: resp.StatusCode, Body: r.snippet(body)}
	}
	if resp.StatusCode != http.StatusOK {
		return a, &HTTPError{Method: "GET", URL: full, Status: resp.StatusCode, Body: r.snippet(body)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return a, fmt.Errorf("GET %s: the answer is not Discord's JSON (check --discord-api-url): %w", full, err)
	}
	return a, nil
}

// retryAfter reads a 429's wait from the JSON body or the Retry-After
// header (1 s when neither gives a positive one), and whether the limit is
// global. ok is false when the wait given is no real one (see seconds);
// said is the value as Discord sent it.
func retryAfter(resp *http.Response, body []byte) (wait time.Duration, global bool, said string, ok bool) {
	var rl struct {
		RetryAfter json.Number `json:"retry_after"`
		Global     bool        `json:"global"`
	}
	_ = json.Unmarshal(body, &rl)
	global = rl.Global || resp.Header.Get("X-RateLimit-Global") == "true"
	for _, v := range []string{string(rl.RetryAfter), resp.Header.Get("Retry-After")} {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if v == "" || (err != nil && !errors.Is(err, strconv.ErrRange)) {
			continue
		}
		if f < 0 {
			continue // no wait given: the next source, or the default
		}
		d, ok := seconds(f)
		if !ok {
			return 0, global, v, false
		}
		if d > 0 {
			return d, global, v, true
		}
	}
	return time.Second, global, "", true
}

// snippet is the start of a response body for an error, with whatever it
// holds of the token removed first (before it is cut: a token cut in two
// would leave a piece behind).
func (r *REST) snippet(b []byte) string { return snippet([]byte(r.redact.Redact(string(b)))) }

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
