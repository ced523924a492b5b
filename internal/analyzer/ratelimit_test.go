package analyzer

import (
	"maps"
	"math"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name        string
		limit       int64
		from, until map[int32]int64
		want        map[int32]int64
	}{
		{"no cap", 0, map[int32]int64{0: 5}, map[int32]int64{0: 100}, map[int32]int64{0: 100}},
		{"one partition: exactly the cap", 4, map[int32]int64{0: 8}, map[int32]int64{0: 100}, map[int32]int64{0: 12}},
		{"one partition: the rest", 4, map[int32]int64{0: 8}, map[int32]int64{0: 10}, map[int32]int64{0: 10}},
		{"nothing new", 4, map[int32]int64{0: 10}, map[int32]int64{0: 10}, map[int32]int64{0: 10}},
		// 30 and 10 available, limit 10: shares 7.5 and 2.5, floored.
		{"proportional, floored", 10, map[int32]int64{0: 0, 1: 0}, map[int32]int64{0: 30, 1: 10}, map[int32]int64{0: 7, 1: 2}},
		// 1000 and 1 available, limit 10: the small partition's share 0.00999 rounds up to 1.
		{"small partition not starved", 10, map[int32]int64{0: 0, 1: 50}, map[int32]int64{0: 1000, 1: 51}, map[int32]int64{0: 9, 1: 51}},
		{"partition with nothing new keeps its offset", 10, map[int32]int64{0: 0, 1: 7}, map[int32]int64{0: 100, 1: 7}, map[int32]int64{0: 10, 1: 7}},
		{"end before start reads nothing", 10, map[int32]int64{0: 9}, map[int32]int64{0: 5}, map[int32]int64{0: 9}},
		{"no overflow", math.MaxInt64, map[int32]int64{0: math.MaxInt64 - 5}, map[int32]int64{0: math.MaxInt64}, map[int32]int64{0: math.MaxInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rateLimit(tt.limit, tt.from, tt.until); !maps.Equal(got, tt.want) {
				t.Errorf("rateLimit(%d, %v, %v) = %v, want %v", tt.limit, tt.from, tt.until, got, tt.want)
			}
		})
	}
}

// With one partition and a cap K, batch N covers [N*K, (N+1)*K): the
// property the Spark comparison relies on.
func TestRateLimitBatchBoundaries(t *testing.T) {
	const k, end = 7, 52
	pos := int64(0)
	for n := int64(0); pos < end; n++ {
		to := rateLimit(k, map[int32]int64{0: pos}, map[int32]int64{0: end})[0]
		if pos != n*k || to != min(n*k+k, end) {
			t.Fatalf("batch %d = [%d, %d), want [%d, %d)", n, pos, to, n*k, min(n*k+k, end))
		}
		pos = to
	}
}

func TestNextTrigger(t *testing.T) {
	tests := []struct {
		at       string
		interval time.Duration
		want     string
	}{
		{"18:00:01.300", 5 * time.Second, "18:00:05.000"},
		{"18:00:05.000", 5 * time.Second, "18:00:10.000"}, // exactly on a multiple: the next one
		{"18:00:04.999", 5 * time.Second, "18:00:05.000"},
		{"18:00:59.000", time.Minute, "18:01:00.000"},
		{"18:01:00.000", 7 * time.Second, "18:01:03.000"}, // multiples of 7s since the epoch, not since the minute
	}
	for _, tt := range tests {
		at := clockTime(t, tt.at)
		if got, want := nextTrigger(at, tt.interval), clockTime(t, tt.want); !got.Equal(want) {
			t.Errorf("nextTrigger(%s, %v) = %s, want %s", tt.at, tt.interval, got.UTC().Format("15:04:05.000"), tt.want)
		}
	}
	// Before 1970 the alignment still rounds up.
	if got, want := nextTrigger(time.Unix(-7, 0), 5*time.Second), time.Unix(-5, 0); !got.Equal(want) {
		t.Errorf("nextTrigger(-7s) = %v, want %v", got.Unix(), want.Unix())
	}
}

func clockTime(t *testing.T, s string) time.Time {
	t.Helper()
	c, err := time.Parse("15:04:05.000", s)
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2025, 11, 7, c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), time.UTC)
}
