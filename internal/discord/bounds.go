package discord

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
)

// Bounds on what Discord (or whatever answers at the API URL) says. A value
// outside them is refused with an error, or clamped with a warning where a
// sane value can stand in; either way it never sizes an allocation, a wait
// or a request rate by itself.
const (
	// MaxShards is the most shards accepted from /gateway/bot or
	// Config.Shards. Discord keeps at most 2,500 guilds on a shard and
	// recommends about 1,000: 65,536 shards hold over 160 million guilds,
	// several times the largest bot.
	MaxShards = 1 << 16
	// MaxConcurrency bounds session_start_limit.max_concurrency (Discord
	// grants 1, or 16 and multiples of it to large bots).
	MaxConcurrency = 1024
	// MaxRetryAfter is the longest rate-limit wait honoured (429
	// retry_after, Retry-After, X-RateLimit-Reset-After, the session-start
	// budget's reset_after): a longer one, or one that is not a number, is
	// no real limit, and the request fails instead of waiting for it.
	MaxRetryAfter = time.Hour
	// MinHeartbeat and MaxHeartbeat clamp HELLO's heartbeat_interval
	// (Discord sends 41.25 s).
	MinHeartbeat = 100 * time.Millisecond
	MaxHeartbeat = 5 * time.Minute
	// MaxFrameBytes is the read limit on a Gateway frame. Discord's largest
	// payloads (GUILD_CREATE of a large guild) take a few MiB.
	MaxFrameBytes = 16 << 20
	// MaxGuildChannels bounds the channels (threads included) taken from
	// one GUILD_CREATE: Discord allows 500 channels and 1,000 active
	// threads per guild.
	MaxGuildChannels = 10000
)

// seconds converts a rate-limit wait in seconds, as Discord sends it, to a
// duration within [0, MaxRetryAfter]; ok is false for a value that is no
// real wait (not a number, infinite, or above MaxRetryAfter). Negative
// values count as zero.
func seconds(v float64) (time.Duration, bool) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || v > MaxRetryAfter.Seconds():
		return 0, false
	case v <= 0:
		return 0, true
	}
	return time.Duration(v * float64(time.Second)), true
}

// IsLoopback reports whether host (a name or an IP address, without port)
// is this machine: localhost or a loopback address.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// checkURL parses raw and requires the secure scheme (https, wss), or the
// plain one (http, ws) for a loopback host only (the simulator): the token
// travels on these connections. what names the URL in errors.
func checkURL(what, raw, secure, plain string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%s %q: want %s://host[/path]", what, raw, secure)
	}
	switch strings.ToLower(u.Scheme) {
	case secure:
		return u, nil
	case plain:
		if IsLoopback(u.Hostname()) {
			return u, nil
		}
		return nil, fmt.Errorf("%s %q: %s:// would send the bot token in clear text; use %s:// (%s:// is accepted for a loopback address only, such as the simulator's)",
			what, raw, plain, secure, plain)
	}
	return nil, fmt.Errorf("%s %q: want %s://host[/path]", what, raw, secure)
}

// checkResumeURL checks a READY's resume_gateway_url like the Gateway URL
// (wss, or ws to a loopback address), and that it points at the Gateway's
// host or a sibling of it (gateway-us-east1-b.discord.gg beside
// gateway.discord.gg), since RESUME carries the token.
func checkResumeURL(raw, gateway string) error {
	u, err := checkURL("resume_gateway_url", raw, "wss", "ws")
	if err != nil {
		return err
	}
	g, err := url.Parse(gateway)
	if err != nil {
		return fmt.Errorf("resume_gateway_url %q: the Gateway URL %q does not parse", raw, gateway)
	}
	rh, gh := strings.ToLower(u.Hostname()), strings.ToLower(g.Hostname())
	if rh == gh || (IsLoopback(rh) && IsLoopback(gh)) || sameParentDomain(rh, gh) {
		return nil
	}
	return fmt.Errorf("resume_gateway_url %q is on another host than the Gateway (%s): RESUME would send the token there", raw, gh)
}

// sameParentDomain reports whether a is b's domain or a name in it, b
// minus its first label (for names of three labels or more: b =
// gateway.discord.gg allows x.discord.gg, never x.gg).
func sameParentDomain(a, b string) bool {
	if net.ParseIP(a) != nil || net.ParseIP(b) != nil {
		return false
	}
	labels := strings.Split(b, ".")
	if len(labels) < 3 {
		return false
	}
	parent := strings.Join(labels[1:], ".")
	return a == parent || strings.HasSuffix(a, "."+parent)
}
