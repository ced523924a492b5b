package chat

import (
	"fmt"
	"math"
	"strconv"
	"time"
	_ "time/tzdata" // region time zones in timestamps, without relying on the host
	"unicode/utf8"
)

// TimestampLayout is the seed's message_timestamp format: UTC, milliseconds,
// a space between date and time. Spark's CAST(... AS TIMESTAMP) accepts it.
const TimestampLayout = "2006-01-02 15:04:05.000"

// FormatTimestamp formats t in the wire format (converted to UTC, truncated to
// milliseconds).
func FormatTimestamp(t time.Time) string {
	var b [23]byte
	return string(AppendTimestamp(b[:0], t))
}

// AppendTimestamp appends t in the wire format to b.
func AppendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	if y < 0 || y > 9999 {
		// Outside what the wire format can express; fall back to the layout so
		// the caller sees the value (Encode rejects it before this point).
		return t.AppendFormat(b, TimestampLayout)
	}
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, int(mo))
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, ' ')
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	b = append2(b, s)
	b = append(b, '.')
	b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return b
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// ParseTimestamp parses a message_timestamp the way Spark's
// CAST(... AS TIMESTAMP) does with a UTC session time zone (the producer
// always writes UTC):
//
//	[+-]yyyy[yy][-[m]m[-[d]d[( |T)[h]h[:[m]m[:[s]s[.fraction]][zone]]]]]
//
// where zone is Z, ±h[h][[:]mm[[:]ss]], UTC/GMT/UT with or without such an
// offset, a Java short id (EST, PST, ...) or a region id like Europe/Paris,
// optionally after a space. Leading and trailing blanks and control
// characters are ignored. Fractions finer than a microsecond are truncated.
// Spark also accepts a time without a date (meaning today); that depends on
// the wall clock, so it is rejected here.
func ParseTimestamp(s string) (time.Time, error) {
	t, ok := parseTimestamp(s)
	if !ok {
		return time.Time{}, fmt.Errorf("%s is not a timestamp (want yyyy-MM-dd HH:mm:ss.SSS, UTC, or ISO 8601)", quoteShort(s))
	}
	return t, nil
}

// parseTimestamp is the allocation-free parser behind ParseTimestamp (it
// allocates only for named time zones).
func parseTimestamp(s string) (time.Time, bool) {
	// Trim blanks and control characters at both ends, as Spark does.
	for len(s) > 0 && s[0] <= ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] <= ' ' {
		s = s[:len(s)-1]
	}
	if s == "" {
		return time.Time{}, false
	}
	// seg holds year, month, day, hour, minute, second, microsecond.
	seg := [7]int{1, 1, 1, 0, 0, 0, 0}
	i, val, digits, fracDigits := 0, 0, 0, 0
	sign := 1
	j := 0
	if s[0] == '-' || s[0] == '+' {
		if s[0] == '-' {
			sign = -1
		}
		j++
	}
	validDigits := func(seg, n int) bool {
		switch seg {
		case 0:
			return n >= 4 && n <= 6
		case 6:
			return true
		}
		return n > 0 && n <= 2
	}
	next := func() bool {
		if !validDigits(i, digits) {
			return false
		}
		seg[i] = val
		val, digits = 0, 0
		i++
		return true
	}
	zone := ""
	for ; j < len(s); j++ {
		c := s[j]
		if c >= '0' && c <= '9' {
			if i == 6 {
				fracDigits++
				if digits >= 6 {
					digits++
					continue // finer than a microsecond: dropped
				}
			}
			if digits > 9 {
				return time.Time{}, false
			}
			val = val*10 + int(c-'0')
			digits++
			continue
		}
		switch {
		case i < 2:
			// Spark's time-only forms ("T18:00", "18:00:00") need today's
			// date: rejected.
			if c != '-' || !next() {
				return time.Time{}, false
			}
		case i == 2:
			if (c != ' ' && c != 'T') || !next() {
				return time.Time{}, false
			}
		case i == 3 || i == 4:
			if c != ':' || !next() {
				return time.Time{}, false
			}
		case i == 5 || i == 6:
			if c == '.' && i == 5 {
				if !next() {
					return time.Time{}, false
				}
				continue
			}
			if !next() {
				return time.Time{}, false
			}
			zone = s[j:]
			j = len(s)
		default:
			return time.Time{}, false
		}
	}
	if zone == "" {
		if !validDigits(i, digits) {
			return time.Time{}, false
		}
		seg[i] = val
	}
	for ; fracDigits < 6; fracDigits++ {
		seg[6] *= 10
	}
	y, mo, d, h, mi, sec := sign*seg[0], seg[1], seg[2], seg[3], seg[4], seg[5]
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	loc := time.UTC
	offset := 0
	if zone != "" {
		var ok bool
		if offset, loc, ok = parseZone(zone); !ok {
			return time.Time{}, false
		}
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, seg[6]*1000, loc)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	if t.Before(minMicros) || t.After(maxMicros) {
		// Beyond what Unix microseconds hold (about ±290,000 years, as in
		// Spark): UnixMicro would wrap around to some other time.
		return time.Time{}, false
	}
	return t.UTC(), true
}

// The times whose Unix microseconds fit an int64.
var (
	minMicros = time.UnixMicro(math.MinInt64)
	maxMicros = time.UnixMicro(math.MaxInt64)
)

// parseZone parses a zone the way Spark's getZoneId does (java.time.ZoneId.of
// with the short ids): a fixed offset in seconds east of UTC, or a location.
func parseZone(z string) (offset int, loc *time.Location, ok bool) {
	for len(z) > 0 && z[0] <= ' ' {
		z = z[1:]
	}
	switch {
	case z == "":
		return 0, nil, false
	case z == "Z" || z == "UTC" || z == "GMT" || z == "UT":
		return 0, time.UTC, true
	case z[0] == '+' || z[0] == '-':
		offset, ok = parseOffset(z)
		return offset, time.UTC, ok
	}
	for _, p := range []string{"UTC", "GMT", "UT"} {
		if len(z) > len(p) && z[:len(p)] == p && (z[len(p)] == '+' || z[len(p)] == '-') {
			offset, ok = parseOffset(z[len(p):])
			return offset, time.UTC, ok
		}
	}
	if fixed, found := javaShortIDs[z]; found {
		if fixed[0] == '+' || fixed[0] == '-' {
			offset, ok = parseOffset(fixed)
			return offset, time.UTC, ok
		}
		z = fixed
	}
	if !validRegionID(z) {
		return 0, nil, false
	}
	l, err := time.LoadLocation(z)
	if err != nil || z == "Local" {
		return 0, nil, false
	}
	return 0, l, true
}

// parseOffset parses ±h, ±hh, ±hh:mm, ±hhmm, ±hh:mm:ss, ±hhmmss (java.time's
// ZoneOffset.of), after Spark's rewrites of ±h:mm and ±hh:m; at most ±18:00.
func parseOffset(z string) (int, bool) {
	sign := 1
	if z[0] == '-' {
		sign = -1
	}
	z = z[1:]
	// Spark rewrites "h:mm" to "0h:mm" and "hh:m" to "hh:0m".
	if len(z) >= 2 && isDigit(z[0]) && z[1] == ':' {
		z = "0" + z
	}
	if len(z) == 4 && isDigit(z[0]) && isDigit(z[1]) && z[2] == ':' && isDigit(z[3]) {
		z = z[:3] + "0" + z[3:]
	}
	num2 := func(p string) (int, bool) {
		if len(p) != 2 || !isDigit(p[0]) || !isDigit(p[1]) {
			return 0, false
		}
		return int(p[0]-'0')*10 + int(p[1]-'0'), true
	}
	var h, m, s int
	var ok1, ok2, ok3 = true, true, true
	switch len(z) {
	case 1:
		if !isDigit(z[0]) {
			return 0, false
		}
		h = int(z[0] - '0')
	case 2:
		h, ok1 = num2(z)
	case 4:
		h, ok1 = num2(z[:2])
		m, ok2 = num2(z[2:])
	case 5:
		if z[2] != ':' {
			return 0, false
		}
		h, ok1 = num2(z[:2])
		m, ok2 = num2(z[3:])
	case 6:
		h, ok1 = num2(z[:2])
		m, ok2 = num2(z[2:4])
		s, ok3 = num2(z[4:])
	case 8:
		if z[2] != ':' || z[5] != ':' {
			return 0, false
		}
		h, ok1 = num2(z[:2])
		m, ok2 = num2(z[3:5])
		s, ok3 = num2(z[6:])
	default:
		return 0, false
	}
	if !ok1 || !ok2 || !ok3 || h > 18 || m > 59 || s > 59 || h == 18 && (m != 0 || s != 0) {
		return 0, false
	}
	return sign * (h*3600 + m*60 + s), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validRegionID is java.time's syntax for region ids.
func validRegionID(z string) bool {
	if len(z) < 2 || !(z[0] >= 'a' && z[0] <= 'z' || z[0] >= 'A' && z[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(z); i++ {
		c := z[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '~' || c == '/' || c == '.' || c == '_' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// javaShortIDs is java.time.ZoneId.SHORT_IDS, which Spark passes to ZoneId.of.
var javaShortIDs = map[string]string{
	"ACT": "Australia/Darwin", "AET": "Australia/Sydney", "AGT": "America/Argentina/Buenos_Aires",
	"ART": "Africa/Cairo", "AST": "America/Anchorage", "BET": "America/Sao_Paulo", "BST": "Asia/Dhaka",
	"CAT": "Africa/Harare", "CNT": "America/St_Johns", "CST": "America/Chicago", "CTT": "Asia/Shanghai",
	"EAT": "Africa/Addis_Ababa", "ECT": "Europe/Paris", "IET": "America/Indiana/Indianapolis",
	"IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "MIT": "Pacific/Apia", "NET": "Asia/Yerevan",
	"NST": "Pacific/Auckland", "PLT": "Asia/Karachi", "PNT": "America/Phoenix", "PRT": "America/Puerto_Rico",
	"PST": "America/Los_Angeles", "SST": "Pacific/Guadalcanal", "VST": "Asia/Ho_Chi_Minh",
	"EST": "-05:00", "MST": "-07:00", "HST": "-10:00",
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// quoteShort quotes s for an error message, cut to its first bytes when it
// is long: an error about a field must not carry a megabyte of its value.
func quoteShort(s string) string {
	const keep = 64
	if len(s) <= keep {
		return strconv.Quote(s)
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:cut]), len(s))
}
