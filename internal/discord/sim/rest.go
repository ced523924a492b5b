package sim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// apiError is Discord's JSON error body.
type apiError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
	Errors  any    `json:"errors,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func formError(field, code, msg string) apiError {
	return apiError{Message: "Invalid Form Body", Code: 50035, Errors: map[string]any{
		field: map[string]any{"_errors": []map[string]string{{"code": code, "message": msg}}},
	}}
}

// restLimiter is a fixed-window limiter per bucket (route + top-level
// resource) plus the global per-second limit.
type restLimiter struct {
	limit       int
	window      time.Duration
	globalLimit int
	buckets     map[string]*window
	global      window
}

type window struct {
	count   int
	resetAt time.Time
}

func (l *restLimiter) init(cfg Config) {
	l.limit, l.window, l.globalLimit = cfg.RESTRouteLimit, cfg.RESTRouteWindow, cfg.RESTGlobalLimit
	l.buckets = map[string]*window{}
}

// take counts one request on w; it returns false (and how long to wait)
// when the window is full.
func (w *window) take(limit int, length time.Duration, now time.Time) (bool, time.Duration) {
	if !now.Before(w.resetAt) {
		w.count, w.resetAt = 0, now.Add(length)
	}
	if w.count >= limit {
		return false, w.resetAt.Sub(now)
	}
	w.count++
	return true, w.resetAt.Sub(now)
}

// bucketHash is the X-RateLimit-Bucket value of a route (Discord's are
// opaque hashes that do not include the top-level resource).
func bucketHash(route string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(route); i++ {
		h ^= uint64(route[i])
		h *= 1099511628211
	}
	return fmt.Sprintf("%016x%016x", h, h*0x9e3779b97f4a7c15)
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// limitRoute applies the global and the route limits and writes the
// rate-limit headers; it reports false after answering 429.
func (s *Server) limitRoute(w http.ResponseWriter, route, major string) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	h := w.Header()
	if s.rest.globalLimit > 0 {
		if ok, wait := s.rest.global.take(s.rest.globalLimit, time.Second, now); !ok {
			s.stats.RESTRateLimited++
			h.Set("X-RateLimit-Global", "true")
			h.Set("X-RateLimit-Scope", "global")
			h.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeJSON(w, http.StatusTooManyRequests, map[string]any{
				"message": "You are being rate limited.", "retry_after": math.Round(wait.Seconds()*1000) / 1000, "global": true,
			})
			return false
		}
	}
	key := route + ":" + major
	b := s.rest.buckets[key]
	if b == nil {
		b = &window{}
		s.rest.buckets[key] = b
	}
	ok, wait := b.take(s.rest.limit, s.rest.window, now)
	remaining := s.rest.limit - b.count
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.rest.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(b.resetAt.UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", secs(wait))
	h.Set("X-RateLimit-Bucket", bucketHash(route))
	if !ok {
		s.stats.RESTRateLimited++
		h.Set("X-RateLimit-Scope", "user")
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"message": "You are being rate limited.", "retry_after": math.Round(wait.Seconds()*1000) / 1000, "global": false,
		})
		return false
	}
	return true
}

func (s *Server) authorized(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(a, "Bot ")
	return ok && s.tokenOK(tok)
}

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	// Discord answers through Google's front end; disgo treats a 429
	// without a Via header as a Cloudflare ban.
	w.Header().Set("Via", "1.1 google")
	s.mu.Lock()
	s.stats.RESTRequests++
	s.mu.Unlock()
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v10"), "/")
	parts := strings.Split(path, "/")
	notFound := func() { writeJSON(w, http.StatusNotFound, apiError{Message: "404: Not Found"}) }
	if r.Method != http.MethodGet {
		if len(parts) > 0 && (parts[0] == "gateway" || parts[0] == "users" || parts[0] == "channels" || parts[0] == "applications" || parts[0] == "oauth2") {
			writeJSON(w, http.StatusMethodNotAllowed, apiError{Message: "405: Method Not Allowed"})
			return
		}
		notFound()
		return
	}
	wsURL := "ws://" + r.Host
	s.mu.Lock()
	h := s.hostile
	s.mu.Unlock()
	if h.GatewayURL != "" {
		wsURL = h.GatewayURL
	}
	if path == "gateway" {
		writeJSON(w, http.StatusOK, map[string]string{"url": wsURL})
		return
	}
	if !s.authorized(r) {
		s.mu.Lock()
		s.stats.RESTUnauthorized++
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, apiError{Message: "401: Unauthorized"})
		return
	}
	if h.RetryAfter != "" && strings.HasPrefix(path, strings.TrimPrefix(h.RetryAfterOn, "/")) {
		s.mu.Lock()
		s.stats.RESTRateLimited++
		s.mu.Unlock()
		body := `{"message":"You are being rate limited.","retry_after":` + h.RetryAfter + `,"global":false}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", h.RetryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(body))
		return
	}
	switch {
	case path == "gateway/bot":
		if !s.limitRoute(w, "GET /gateway/bot", "") {
			return
		}
		s.mu.Lock()
		rem, resetAfter := s.identify.remaining(s.now())
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"url": wsURL, "shards": cmp.Or(h.Shards, s.cfg.Shards),
			"session_start_limit": map[string]any{
				"total": s.cfg.SessionStartLimit, "remaining": rem, "reset_after": resetAfter,
				"max_concurrency": cmp.Or(h.MaxConcurrency, s.cfg.MaxConcurrency),
			},
		})
	case path == "users/@me":
		if !s.limitRoute(w, "GET /users/@me", "") {
			return
		}
		writeJSON(w, http.StatusOK, s.botUserObject())
	case path == "applications/@me" || path == "oauth2/applications/@me":
		if !s.limitRoute(w, "GET /"+path, "") {
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": s.botID, "name": s.bot.Username, "icon": nil, "description": "", "bot_public": true,
			"bot_require_code_grant": false, "flags": s.applicationFlags(), "bot": s.botUserObject(),
			"owner":      s.appOwnerObject(),
			"verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
		})
	case len(parts) >= 2 && len(parts) <= 4 && parts[0] == "channels":
		s.serveChannel(w, r, parts[1:])
	default:
		notFound()
	}
}

func (s *Server) serveChannel(w http.ResponseWriter, r *http.Request, parts []string) {
	chID, err := ParseID(parts[0])
	if err != nil {
		writeJSON(w, http.StatusBadRequest, formError("channel_id", "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not snowflake.", parts[0])))
		return
	}
	var route string
	switch {
	case len(parts) == 1:
		route = "GET /channels/{channel.id}"
	case len(parts) == 2 && parts[1] == "messages":
		route = "GET /channels/{channel.id}/messages"
	case len(parts) == 3 && parts[1] == "messages":
		route = "GET /channels/{channel.id}/messages/{message.id}"
	default:
		writeJSON(w, http.StatusNotFound, apiError{Message: "404: Not Found"})
		return
	}
	if !s.limitRoute(w, route, chID.String()) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.channels[chID]
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Message: "Unknown Channel", Code: 10003})
		return
	}
	if ch.NoAccess {
		writeJSON(w, http.StatusForbidden, apiError{Message: "Missing Access", Code: 50001})
		return
	}
	switch len(parts) {
	case 1:
		writeJSON(w, http.StatusOK, s.channelObjectLocked(ch, true))
	case 3:
		mid, err := ParseID(parts[2])
		if err != nil {
			writeJSON(w, http.StatusBadRequest, formError("message_id", "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not snowflake.", parts[2])))
			return
		}
		m, ok := s.findLocked(chID, mid)
		if !ok {
			writeJSON(w, http.StatusNotFound, apiError{Message: "Unknown Message", Code: 10008})
			return
		}
		writeJSON(w, http.StatusOK, m)
	default:
		msgs, apiErr := s.historyLocked(chID, r)
		if apiErr != nil {
			writeJSON(w, http.StatusBadRequest, apiErr)
			return
		}
		writeJSON(w, http.StatusOK, msgs)
	}
}

// historyLocked answers GET /channels/{id}/messages: at most limit messages
// (1..100, default 50) around, before or after a message id (only the
// first given of around, before, after counts), newest first.
func (s *Server) historyLocked(chID ID, r *http.Request) ([]Message, *apiError) {
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			e := formError("limit", "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not int.", v))
			return nil, &e
		case n < 1:
			e := formError("limit", "NUMBER_TYPE_MIN", "int value should be greater than or equal to 1.")
			return nil, &e
		case n > 100:
			e := formError("limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100.")
			return nil, &e
		}
		limit = n
	}
	var cursor ID
	mode := ""
	for _, k := range []string{"around", "before", "after"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		id, err := ParseID(v)
		if err != nil {
			e := formError(k, "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not snowflake.", v))
			return nil, &e
		}
		if mode == "" {
			mode, cursor = k, id
		}
	}
	h := s.history[chID]
	idx := func(id ID, strict bool) int { // first index with ID >= id (> id when strict)
		return sort.Search(len(h), func(i int) bool {
			if strict {
				return h[i].ID > id
			}
			return h[i].ID >= id
		})
	}
	var lo, hi int
	switch mode {
	case "after":
		lo = idx(cursor, true)
		hi = min(len(h), lo+limit)
	case "before":
		hi = idx(cursor, false)
		lo = max(0, hi-limit)
	case "around":
		k := idx(cursor, false)
		lo = max(0, k-limit/2)
		hi = min(len(h), lo+limit)
	default:
		hi = len(h)
		lo = max(0, hi-limit)
	}
	out := make([]Message, 0, hi-lo)
	for i := hi - 1; i >= lo; i-- {
		out = append(out, h[i])
	}
	return out, nil
}

func sortChannels(chs []*Channel) {
	sort.Slice(chs, func(i, j int) bool { return chs[i].ID < chs[j].ID })
}
