package window

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want Mode
		ok   bool
	}{
		{"update", Update, true},
		{"Append", Append, true},
		{" COMPLETE ", Complete, true},
		{"", 0, false},
		{"updates", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseMode(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != strings.ToLower(strings.TrimSpace(tt.in)) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if s := Mode(7).String(); s != "Mode(7)" {
		t.Errorf("Mode(7).String() = %q", s)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute, Mode: Update, Keys: 1}
	if err := ok.Validate(); err != nil {
		t.Fatalf("seed config: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // part of the error
	}{
		{"zero size", func(c *Config) { c.Window = 0 }, "window 0s: must be positive"},
		{"negative slide", func(c *Config) { c.Slide = -time.Second }, "slide -1s: must be positive"},
		{"slide over size", func(c *Config) { c.Slide = 2 * time.Minute }, "use a slide <= the window"},
		{"sub-µs size", func(c *Config) { c.Window = time.Minute + 1 }, "whole number of microseconds"},
		{"sub-µs slide", func(c *Config) { c.Slide = time.Second + 500 }, "whole number of microseconds"},
		{"negative delay", func(c *Config) { c.Watermark = -1 }, "must not be negative"},
		{"sub-ms delay", func(c *Config) { c.Watermark = 1500 * time.Microsecond }, "whole number of milliseconds"},
		{"bad mode", func(c *Config) { c.Mode = 9 }, "want update, append or complete"},
		{"negative keys", func(c *Config) { c.Keys = -1 }, "must not be negative"},
		{"too many windows", func(c *Config) { c.Window = time.Hour; c.Slide = time.Millisecond }, "3600000 windows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := New(c); err == nil {
				t.Fatalf("New accepted an invalid config")
			}
		})
	}
}

func TestWindowsPerEvent(t *testing.T) {
	for _, tt := range []struct {
		size, slide time.Duration
		want        int64
	}{
		{time.Minute, 30 * time.Second, 2},
		{time.Minute, time.Minute, 1},
		{90 * time.Second, time.Minute, 2},
		{10 * time.Minute, 3 * time.Minute, 4},
	} {
		if got := windowsPerEvent(Config{Window: tt.size, Slide: tt.slide}); got != tt.want {
			t.Errorf("windowsPerEvent(%v, %v) = %d, want %d", tt.size, tt.slide, got, tt.want)
		}
	}
}

func TestFloorMod(t *testing.T) {
	for _, tt := range []struct{ ts, slide, want int64 }{
		{0, 30, 0}, {29, 30, 29}, {30, 30, 0}, {-1, 30, 29}, {-30, 30, 0}, {-31, 30, 29},
	} {
		if got := floorMod(tt.ts, tt.slide); got != tt.want {
			t.Errorf("floorMod(%d, %d) = %d, want %d", tt.ts, tt.slide, got, tt.want)
		}
	}
}

// Evicted windows free their state, and keys no window holds are forgotten:
// memory is bounded by the watermark, not by the number of authors ever seen.
func TestStateBoundedByWatermark(t *testing.T) {
	e, err := New(Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute, Mode: Update, Keys: 1})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC).UnixMicro()
	maxState, maxKeys := 0, 0
	for batch := 0; batch < 200; batch++ {
		for i := 0; i < 100; i++ {
			// Every batch brings 100 authors never seen before.
			ts := base + int64(batch)*int64(10*time.Second/time.Microsecond) + int64(i)
			e.Add(ts, []Value{{S: fmt.Sprintf("author-%d-%d", batch, i), Valid: true}})
		}
		e.RunBatch()
		maxState = max(maxState, e.StateRows())
		maxKeys = max(maxKeys, e.keys.len())
	}
	// 10 s per batch, windows closing 1 min after their end: about 2.5 min
	// of events (15 batches x 100 authors x 2 windows) are alive at once.
	if maxState > 4000 {
		t.Errorf("state grew to %d rows; want it bounded by the watermark (< 4000)", maxState)
	}
	if maxKeys > 2000 || len(e.keys.infos) > 2500 {
		t.Errorf("key table holds %d keys (%d slots); want evicted keys forgotten", maxKeys, len(e.keys.infos))
	}
	if len(e.keys.index) != e.keys.len() {
		t.Errorf("key index has %d entries, table %d live keys", len(e.keys.index), e.keys.len())
	}
}

// The engine copies the key values it keeps: the caller may reuse the
// bytes behind them (the projection's strings alias the Kafka record).
func TestAddCopiesKeys(t *testing.T) {
	e, err := New(Config{Window: time.Minute, Slide: time.Minute, Mode: Complete, Keys: 2})
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte("alice")
	for _, keys := range [][]Value{
		{{S: unsafeString(buf), Valid: true}, {}},
	} {
		e.Add(0, keys)
	}
	copy(buf, "mallo")
	e1, _ := New(Config{Window: time.Minute, Slide: time.Minute, Mode: Complete, Keys: 1})
	e1.Add(0, []Value{{S: unsafeString(buf), Valid: true}})
	copy(buf, "zzzzz")
	if got := e.RunBatch().Rows[0].Keys[0].S; got != "alice" {
		t.Errorf("two keys: retained key changed to %q after the caller reused its buffer", got)
	}
	if got := e1.RunBatch().Rows[0].Keys[0].S; got != "mallo" {
		t.Errorf("one key: retained key changed to %q after the caller reused its buffer", got)
	}
}

func TestAddWrongKeyCountPanics(t *testing.T) {
	e, _ := New(Config{Window: time.Minute, Slide: time.Minute, Keys: 1})
	defer func() {
		if recover() == nil {
			t.Error("Add with two keys for a one-key engine did not panic")
		}
	}()
	e.Add(0, []Value{{}, {}})
}

func TestOutOfRange(t *testing.T) {
	e, _ := New(Config{Window: time.Minute, Slide: time.Minute, Keys: 0})
	e.Add(MaxTimestamp+1, nil)
	e.Add(MinTimestamp-1, nil)
	e.Add(MaxTimestamp, nil)
	b := e.RunBatch()
	if b.Input != 3 || b.OutOfRange != 2 || len(b.Rows) != 1 || b.Rows[0].Count != 1 {
		t.Errorf("batch = %+v; want input 3, out of range 2, one row counting 1", b)
	}
}

// randomConfig draws small windows so that random events collide often.
func randomConfig(r *rand.Rand) Config {
	slide := time.Duration(1+r.IntN(4)) * time.Second
	size := slide * time.Duration(1+r.IntN(3))
	if r.IntN(3) == 0 {
		size += time.Duration(r.IntN(int(slide/time.Millisecond))) * time.Millisecond // not a multiple
	}
	return Config{
		Window:    size,
		Slide:     slide,
		Watermark: time.Duration(r.IntN(5000)) * time.Millisecond,
		Mode:      Mode(r.IntN(3)),
		Keys:      r.IntN(3),
	}
}

func randomKeys(r *rand.Rand, n int) []Value {
	keys := make([]Value, n)
	for i := range keys {
		if v := r.IntN(5); v > 0 {
			keys[i] = Value{S: string(rune('a' + v)), Valid: true}
		}
	}
	return keys
}

// TestAgainstReference drives the engine and the brute-force reference model
// with random configurations, events (out of order, some far behind, some
// before the epoch) and batch boundaries (some empty), and requires the same
// batches.
func TestAgainstReference(t *testing.T) {
	iters := 400
	if testing.Short() {
		iters = 50
	}
	for seed := range iters {
		r := rand.New(rand.NewPCG(uint64(seed), 42))
		cfg := randomConfig(r)
		e, err := New(cfg)
		if err != nil {
			t.Fatalf("seed %d: New(%+v): %v", seed, cfg, err)
		}
		ref := newRef(cfg)
		now := int64(r.IntN(20_000_000)) - 5_000_000 // µs, around the epoch
		for batch := range 25 {
			for range r.IntN(12) {
				ts := now + int64(r.IntN(8_000_000)) - 6_000_000 // mostly behind "now"
				if r.IntN(10) == 0 {
					ts -= int64(r.IntN(30_000_000))
				}
				keys := randomKeys(r, cfg.Keys)
				e.Add(ts, keys)
				ref.Add(ts, keys)
				now += int64(r.IntN(600_000))
			}
			got, want := e.RunBatch(), ref.RunBatch()
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Fatalf("seed %d, config %+v, batch %d:\nengine:    %+v\nreference: %+v", seed, cfg, batch, got, want)
			}
			if g, w := e.NeedsNoDataBatch(), ref.NeedsNoDataBatch(); g != w {
				t.Fatalf("seed %d, batch %d: NeedsNoDataBatch = %v, reference %v", seed, batch, g, w)
			}
			if e.Watermark() != got.NextWatermark || e.StateRows() != got.StateRows {
				t.Fatalf("seed %d, batch %d: Watermark() %d / StateRows() %d disagree with the batch %+v", seed, batch, e.Watermark(), e.StateRows(), got)
			}
		}
	}
}

// normalize makes empty and nil row slices compare equal.
func normalize(b Batch) Batch {
	if len(b.Rows) == 0 {
		b.Rows = nil
	}
	for i := range b.Rows {
		if len(b.Rows[i].Keys) == 0 {
			b.Rows[i].Keys = nil
		}
	}
	return b
}

// unsafeString aliases b, as a zero-copy decoder's strings do.
func unsafeString(b []byte) string { return unsafe.String(&b[0], len(b)) }
