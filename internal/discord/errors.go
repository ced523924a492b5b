package discord

import (
	"errors"
	"fmt"
)

// PortalURL is where a bot's token and privileged intents are managed.
const PortalURL = "https://discord.com/developers/applications"

// Sentinels for the failures a caller branches on. Errors returned by this
// package wrap them; test with errors.Is.
var (
	// ErrTokenRejected: Discord refused the token (REST 401 or close 4004).
	ErrTokenRejected = errors.New("Discord rejected the token")
	// ErrDisallowedIntents: a privileged intent is not enabled (close 4014).
	ErrDisallowedIntents = errors.New("Discord refused a privileged intent")
)

// Close codes Discord documents for the Gateway.
const (
	CloseUnknownError         = 4000
	CloseUnknownOpcode        = 4001
	CloseDecodeError          = 4002
	CloseNotAuthenticated     = 4003
	CloseAuthenticationFailed = 4004
	CloseAlreadyAuthenticated = 4005
	CloseInvalidSeq           = 4007
	CloseRateLimited          = 4008
	CloseSessionTimedOut      = 4009
	CloseInvalidShard         = 4010
	CloseShardingRequired     = 4011
	CloseInvalidAPIVersion    = 4012
	CloseInvalidIntents       = 4013
	CloseDisallowedIntents    = 4014
)

// closeInfo describes one close code: its documented name, whether the
// session survives it, and whether it is fatal (reconnecting cannot help).
type closeInfo struct {
	name       string
	fatal      bool
	newSession bool // the session is gone: identify again instead of resuming
}

var closeCodes = map[int]closeInfo{
	CloseUnknownError:         {name: "unknown error"},
	CloseUnknownOpcode:        {name: "unknown opcode"},
	CloseDecodeError:          {name: "decode error"},
	CloseNotAuthenticated:     {name: "not authenticated"},
	CloseAuthenticationFailed: {name: "authentication failed", fatal: true},
	CloseAlreadyAuthenticated: {name: "already authenticated"},
	CloseInvalidSeq:           {name: "invalid seq", newSession: true},
	CloseRateLimited:          {name: "rate limited"},
	CloseSessionTimedOut:      {name: "session timed out", newSession: true},
	CloseInvalidShard:         {name: "invalid shard", fatal: true},
	CloseShardingRequired:     {name: "sharding required", fatal: true},
	CloseInvalidAPIVersion:    {name: "invalid API version", fatal: true},
	CloseInvalidIntents:       {name: "invalid intent(s)", fatal: true},
	CloseDisallowedIntents:    {name: "disallowed intent(s)", fatal: true},
}

// IsFatalClose reports whether a Gateway close code means reconnecting cannot
// help (4004, 4010, 4011, 4012, 4013, 4014).
func IsFatalClose(code int) bool { return closeCodes[code].fatal }

func closeName(code int) string {
	if ci, ok := closeCodes[code]; ok {
		return ci.name
	}
	switch code {
	case 1000:
		return "normal closure"
	case 1001:
		return "going away"
	case 1006:
		return "abnormal closure"
	case 1011:
		return "internal server error"
	case 1012:
		return "service restart"
	}
	return "unknown close code"
}

// CloseError is a fatal Gateway close: the bot cannot continue until the
// operator changes something. Error and Hint say what.
type CloseError struct {
	Code    int
	Text    string // the reason text Discord sent, if any
	Shard   int
	Intents Intents
}

func (e *CloseError) Error() string {
	switch e.Code {
	case CloseAuthenticationFailed:
		return fmt.Sprintf("Discord rejected the token (Gateway close %d, authentication failed)", e.Code)
	case CloseDisallowedIntents:
		return fmt.Sprintf("Discord refused a privileged intent (Gateway close %d, disallowed intents %s): "+
			"the Message Content intent is not enabled for this application", e.Code, e.Intents)
	case CloseInvalidIntents:
		return fmt.Sprintf("Discord rejected the intents value %d (%s) as invalid (Gateway close %d)", uint64(e.Intents), e.Intents, e.Code)
	case CloseInvalidShard:
		return fmt.Sprintf("Discord rejected shard %d as invalid (Gateway close %d)", e.Shard, e.Code)
	case CloseShardingRequired:
		return fmt.Sprintf("Discord requires more shards for this bot (Gateway close %d, sharding required)", e.Code)
	case CloseInvalidAPIVersion:
		return fmt.Sprintf("the Gateway does not accept API version %d (Gateway close %d)", APIVersion, e.Code)
	}
	return fmt.Sprintf("Gateway closed the connection with %d (%s)", e.Code, closeName(e.Code))
}

// Hint says what the operator should do.
func (e *CloseError) Hint() string {
	switch e.Code {
	case CloseAuthenticationFailed:
		return tokenHint
	case CloseDisallowedIntents:
		return "enable it at " + PortalURL + " -> your application -> Bot -> Privileged Gateway Intents -> " +
			"Message Content Intent (bots in 100 or more servers need Discord's approval for it)"
	case CloseInvalidIntents:
		return "the intents are computed by cordstream; please report this as a bug"
	case CloseInvalidShard, CloseShardingRequired:
		return "restart the bot: the shard count is read anew from /gateway/bot at start"
	case CloseInvalidAPIVersion:
		return "check --discord-api-url: it must point at a server that speaks Discord API v10"
	}
	return ""
}

// Unwrap maps the close code to this package's sentinels.
func (e *CloseError) Unwrap() error {
	switch e.Code {
	case CloseAuthenticationFailed:
		return ErrTokenRejected
	case CloseDisallowedIntents:
		return ErrDisallowedIntents
	}
	return nil
}

const tokenHint = "get a bot token at " + PortalURL + " (your application -> Bot -> Reset Token)"

// HTTPError is an unexpected REST response.
type HTTPError struct {
	Method, URL string // URL never carries the token
	Status      int
	Body        string // first bytes of the response body
}

func (e *HTTPError) Error() string {
	if e.Status == 401 {
		return fmt.Sprintf("Discord rejected the token (%s %s: HTTP 401 Unauthorized)", e.Method, e.URL)
	}
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Hint says what the operator should do.
func (e *HTTPError) Hint() string {
	switch {
	case e.Status == 401:
		return tokenHint
	case e.Status == 403:
		return "the token is valid but not allowed to call this endpoint"
	case e.Status == 404:
		return "check --discord-api-url: it should end in /api/v10"
	}
	return ""
}

// Unwrap maps 401 to ErrTokenRejected.
func (e *HTTPError) Unwrap() error {
	if e.Status == 401 {
		return ErrTokenRejected
	}
	return nil
}
