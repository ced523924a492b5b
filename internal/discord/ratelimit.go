package discord

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/metrics"
)

// DefaultGlobalLimit is Discord's global REST limit: requests per second per
// bot, across every route.
const DefaultGlobalLimit = 50

// rateMargin is added to every wait Discord announces: its reset times are
// rounded to the millisecond and measured on its clock.
const rateMargin = 25 * time.Millisecond

// limiter keeps a bot's REST requests within Discord's rate limits
// (rate-limits.mdx) before Discord has to refuse one:
//
//   - per bucket: after each answer it remembers X-RateLimit-Remaining and
//     X-RateLimit-Reset-After for the route and its major parameter (the
//     channel id); when none remain, requests on that bucket wait for the
//     reset;
//   - global: at most globalLimit requests start in any window of one second
//     (plus a margin), whatever the route;
//   - 429: the wait in retry_after (or Retry-After) applies to the bucket, or
//     to every request when Discord says the limit is global.
type limiter struct {
	mu          sync.Mutex
	now         func() time.Time
	globalLimit int
	recent      []time.Time // start times of the last globalLimit requests (ring)
	head        int
	globalUntil time.Time // after a global 429
	buckets     map[string]*bucketState
	m           *restMetrics
}

type bucketState struct {
	remaining int
	resetAt   time.Time
	hash      string
}

func newLimiter(globalLimit int, now func() time.Time) *limiter {
	l := &limiter{now: now, globalLimit: globalLimit, buckets: map[string]*bucketState{}}
	if globalLimit > 0 {
		l.recent = make([]time.Time, globalLimit)
	}
	return l
}

// Wait scopes, for the metrics.
const (
	waitBucket     = "bucket"      // X-RateLimit-Remaining reached 0
	waitGlobal     = "global"      // the global per-second limit
	waitRetryAfter = "retry_after" // Discord answered 429
)

// wait blocks until a request on bucket key may start, and reserves it. It
// returns ctx's error if ctx ends first.
func (l *limiter) wait(ctx context.Context, key string) error {
	for {
		l.mu.Lock()
		now := l.now()
		var d time.Duration
		scope := ""
		if now.Before(l.globalUntil) {
			d, scope = l.globalUntil.Sub(now), waitRetryAfter
		}
		b := l.buckets[key]
		if b != nil && b.remaining <= 0 && now.Before(b.resetAt) {
			if bd := b.resetAt.Sub(now); bd > d {
				d, scope = bd, waitBucket
			}
		}
		if l.globalLimit > 0 {
			if oldest := l.recent[l.head]; !oldest.IsZero() {
				if gd := oldest.Add(time.Second + rateMargin).Sub(now); gd > d {
					d, scope = gd, waitGlobal
				}
			}
		}
		if d <= 0 {
			if b != nil {
				if !now.Before(b.resetAt) {
					delete(l.buckets, key) // reset: unknown until the next answer
				} else {
					b.remaining--
				}
			}
			if l.globalLimit > 0 {
				l.recent[l.head] = now
				l.head = (l.head + 1) % len(l.recent)
			}
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		if l.m != nil {
			l.m.waits.With(scope).Inc()
			l.m.waitSeconds.With(scope).Add(d.Seconds())
		}
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
	}
}

// update records what an answer says about bucket key. retry is the 429
// wait (0 for other answers); global says it applies to every request.
func (l *limiter) update(key string, h http.Header, retry time.Duration, global bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if retry > 0 && global {
		l.globalUntil = maxTime(l.globalUntil, now.Add(retry+rateMargin))
		return
	}
	b := l.buckets[key]
	if retry > 0 {
		if b == nil {
			b = &bucketState{}
			l.buckets[key] = b
		}
		b.remaining = 0
		b.resetAt = maxTime(b.resetAt, now.Add(retry+rateMargin))
		return
	}
	rem, err1 := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	afterS, err2 := strconv.ParseFloat(h.Get("X-RateLimit-Reset-After"), 64)
	if err1 != nil || err2 != nil {
		return // a route without limits announced
	}
	after, ok := seconds(afterS)
	if !ok {
		return // no real reset time: as if none was announced
	}
	rem = max(rem, 0)
	if b == nil {
		b = &bucketState{}
		l.buckets[key] = b
	}
	reset := now.Add(after + rateMargin)
	if reset.After(b.resetAt.Add(250 * time.Millisecond)) {
		b.remaining = rem // a new window
	} else {
		// The same window: requests reserved since this one was sent are
		// not in Discord's count yet.
		b.remaining = min(b.remaining, rem)
	}
	b.resetAt = maxTime(b.resetAt, reset)
	b.hash = h.Get("X-RateLimit-Bucket")
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// restMetrics count REST traffic and rate-limit waits.
type restMetrics struct {
	requests    metrics.CounterVec // route, code
	waits       metrics.CounterVec // scope
	waitSeconds metrics.CounterVec // scope
}

func newRESTMetrics(r *metrics.Registry) *restMetrics {
	return &restMetrics{
		requests: r.NewCounterVec("cordstream_discord_rest_requests_total",
			"REST requests sent to Discord, by route and HTTP status (\"error\" when no answer came).", "route", "code"),
		waits: r.NewCounterVec("cordstream_discord_rest_ratelimit_waits_total",
			"Times a REST request waited for a rate limit: bucket (X-RateLimit-Remaining 0), global (50 per second), retry_after (after a 429).", "scope"),
		waitSeconds: r.NewCounterVec("cordstream_discord_rest_ratelimit_wait_seconds_total",
			"Time REST requests spent waiting for rate limits, by scope.", "scope"),
	}
}
