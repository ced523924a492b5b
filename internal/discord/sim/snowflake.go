package sim

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DiscordEpoch is the first millisecond of 2015 (UTC), the zero of Discord
// snowflakes, in Unix milliseconds.
const DiscordEpoch = 1420070400000

// ID is a Discord snowflake. It is a JSON string on the wire, as on Discord.
// The zero ID means "none" (for example no guild for a DM).
type ID uint64

// String returns the decimal form Discord uses.
func (id ID) String() string { return strconv.FormatUint(uint64(id), 10) }

// Time returns the creation time encoded in the snowflake (millisecond precision).
func (id ID) Time() time.Time {
	return time.UnixMilli(int64(id>>22) + DiscordEpoch).UTC()
}

// MarshalJSON encodes the ID as a JSON string.
func (id ID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + id.String() + `"`), nil
}

// UnmarshalJSON accepts a JSON string or number (null leaves the ID zero).
func (id *ID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	s = strings.Trim(s, `"`)
	v, err := ParseID(s)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses a decimal snowflake.
func ParseID(s string) (ID, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a snowflake", s)
	}
	return ID(v), nil
}

// IDFromTime returns the smallest snowflake of the millisecond t falls in:
// (ms - DiscordEpoch) << 22. Useful as a REST before/after cursor.
func IDFromTime(t time.Time) ID {
	ms := t.UnixMilli() - DiscordEpoch
	if ms < 0 {
		ms = 0
	}
	return ID(uint64(ms) << 22)
}

// Snowflake layout below the timestamp: 5 bits worker, 5 bits process, 12 bits increment.
const (
	simWorker  = 1
	simProcess = 7
)

// idGen hands out strictly increasing snowflakes whose timestamp part never
// runs behind the requested time. Not safe for concurrent use (the Server's
// lock guards it).
type idGen struct {
	lastMS int64
	inc    uint64
}

// next returns a new ID for time t and the millisecond it actually encodes
// (later than t only when t is behind an ID already handed out, or when
// 4096 IDs were already made in that millisecond).
func (g *idGen) next(t time.Time) (ID, int64) {
	ms := t.UnixMilli() - DiscordEpoch
	if ms < 0 {
		ms = 0
	}
	switch {
	case ms > g.lastMS:
		g.lastMS, g.inc = ms, 0
	default:
		g.inc++
		if g.inc > 0xfff {
			g.lastMS++
			g.inc = 0
		}
	}
	id := ID(uint64(g.lastMS)<<22 | simWorker<<17 | simProcess<<12 | g.inc)
	return id, g.lastMS + DiscordEpoch
}

// NewToken returns a bot token in Discord's shape for the bot user botID:
// base64(botID) "." base64(timestamp) "." 27 random-looking bytes in base64url.
// Libraries such as disgo read the application id from the first part.
// secret seeds the last part; give different secrets for different tokens.
// A simulator token is not a secret: it opens nothing but a simulator.
func NewToken(botID ID, secret []byte) string {
	first := base64.RawStdEncoding.EncodeToString([]byte(botID.String()))
	var ts [4]byte
	t := uint32(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	ts[0], ts[1], ts[2], ts[3] = byte(t>>24), byte(t>>16), byte(t>>8), byte(t)
	second := base64.RawURLEncoding.EncodeToString(ts[:])
	mac := make([]byte, 27)
	h := uint64(1469598103934665603)
	for i := range mac {
		for _, b := range secret {
			h ^= uint64(b)
			h *= 1099511628211
		}
		h ^= uint64(i)
		h *= 1099511628211
		mac[i] = byte(h >> 32)
	}
	return first + "." + second + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// BotIDFromToken returns the bot user id encoded in the first part of a
// Discord-shaped token, and false when the token does not have that shape.
func BotIDFromToken(token string) (ID, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return 0, false
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		return 0, false
	}
	id, err := ParseID(string(raw))
	if err != nil || id == 0 {
		return 0, false
	}
	return id, true
}
