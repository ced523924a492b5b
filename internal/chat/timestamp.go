package chat

import (
	"fmt"
	"time"
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

// ParseTimestamp parses a message_timestamp. It accepts the wire format and
// what Spark's CAST to timestamp accepts of ISO 8601:
//
//	yyyy-[m]m-[d]d[( |T)[h]h:[m]m[:[s]s[.fraction]]][zone]
//
// where zone is Z, ±hh, ±hh:mm or ±hhmm. A value without a zone is UTC (the
// producer always writes UTC). Fractions finer than a microsecond are
// truncated, as Spark does.
func ParseTimestamp(s string) (time.Time, error) {
	t, ok := parseTimestamp(s)
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not a timestamp (want yyyy-MM-dd HH:mm:ss.SSS, UTC, or ISO 8601)", s)
	}
	return t, nil
}

// parseTimestamp is the allocation-free parser behind ParseTimestamp.
func parseTimestamp(s string) (time.Time, bool) {
	i := 0
	num := func(min, max int) (int, bool) {
		v, n := 0, 0
		for i < len(s) && n < max && s[i] >= '0' && s[i] <= '9' {
			v = v*10 + int(s[i]-'0')
			i++
			n++
		}
		return v, n >= min
	}
	lit := func(c byte) bool {
		if i < len(s) && s[i] == c {
			i++
			return true
		}
		return false
	}
	// Leading and trailing blanks are trimmed by Spark.
	for i < len(s) && s[i] == ' ' {
		i++
	}
	for len(s) > i && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	y, ok := num(4, 4)
	if !ok || !lit('-') {
		return time.Time{}, false
	}
	mo, ok := num(1, 2)
	if !ok || !lit('-') {
		return time.Time{}, false
	}
	d, ok := num(1, 2)
	if !ok {
		return time.Time{}, false
	}
	var h, mi, sec, nsec int
	if i < len(s) && (s[i] == ' ' || s[i] == 'T') {
		i++
		if h, ok = num(1, 2); !ok || !lit(':') {
			return time.Time{}, false
		}
		if mi, ok = num(1, 2); !ok {
			return time.Time{}, false
		}
		if lit(':') {
			if sec, ok = num(1, 2); !ok {
				return time.Time{}, false
			}
			if lit('.') {
				start := i
				frac, n := 0, 0
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					if n < 9 {
						frac = frac*10 + int(s[i]-'0')
						n++
					}
					i++
				}
				if i == start {
					return time.Time{}, false
				}
				for ; n < 9; n++ {
					frac *= 10
				}
				nsec = frac / 1000 * 1000 // microsecond precision, like Spark
			}
		}
	}
	offset := 0
	if i < len(s) {
		switch s[i] {
		case 'Z':
			i++
		case '+', '-':
			sign := 1
			if s[i] == '-' {
				sign = -1
			}
			i++
			oh, ok := num(2, 2)
			if !ok {
				return time.Time{}, false
			}
			om := 0
			if lit(':') {
				if om, ok = num(2, 2); !ok {
					return time.Time{}, false
				}
			} else if i < len(s) {
				if om, ok = num(2, 2); !ok {
					return time.Time{}, false
				}
			}
			if oh > 18 || om > 59 {
				return time.Time{}, false
			}
			offset = sign * (oh*3600 + om*60)
		default:
			return time.Time{}, false
		}
	}
	if i != len(s) {
		return time.Time{}, false
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, time.UTC)
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	return t, true
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
