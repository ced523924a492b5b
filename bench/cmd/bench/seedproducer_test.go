//go:build linux

package main

import (
	"testing"
	"time"
)

func TestSeedWatcherMatchesInOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k1, k2, k3 := seedKey("1", "2026-01-01 00:00:00.000", "hi"), seedKey("2", "2026-01-01 00:00:00.000", "hi"), seedKey("1", "2026-01-01 00:00:00.001", "hi")
	world := &simWorld{bySeedKey: map[string][]time.Time{
		// Two posts share k1 (same author, millisecond and text).
		k1: {t0.Add(2 * time.Millisecond), t0},
		k2: {t0.Add(time.Millisecond)},
		k3: {t0.Add(3 * time.Millisecond)},
	}}
	w := &seedWatcher{records: map[string][]seen{
		k1: {{offset: 7, appended: t0.Add(20 * time.Millisecond)}, {offset: 5, appended: t0.Add(10 * time.Millisecond)}},
		k2: {{offset: 6, appended: t0.Add(10 * time.Millisecond)}},
		// A record nobody posted in this phase.
		seedKey("9", "2026-01-01 00:00:00.000", "x"): {{offset: 1, appended: t0}},
	}}
	if got := w.matched(world); got != 3 {
		t.Errorf("matched %d, want 3 (k3 never arrived)", got)
	}
	lat, first, last := w.latencies(world)
	if len(lat) != 3 {
		t.Fatalf("latencies %v, want 3", lat)
	}
	// k1: post t0 -> offset 5 (10 ms), post t0+2ms -> offset 7 (20 ms): 10.5 and 18.5 ms; k2: 9.5 ms.
	sum := lat[0] + lat[1] + lat[2]
	if want := 10.5 + 18.5 + 9.5; sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("latencies %v, want 10.5, 18.5 and 9.5 ms in some order", lat)
	}
	if !first.Equal(t0) || !last.Equal(t0.Add(20500*time.Microsecond)) {
		t.Errorf("span %v .. %v", first, last)
	}
}
