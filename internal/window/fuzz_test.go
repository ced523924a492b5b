package window

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"
	"time"
)

// FuzzEngine plays fuzzer-chosen configurations, events and batch boundaries
// and checks the engine's invariants: no panic, every emitted count positive
// and never above the brute-force reference's (in fact equal to it), rows
// sorted and unique, no row emitted for a window an earlier batch evicted,
// state never negative.
func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 10, 20, 30, 40, 0xff, 50, 60, 0xff, 0xfe})
	f.Add([]byte{5, 3, 200, 1, 0x80, 1, 2, 0x81, 7, 9, 0xff, 0xff, 4, 4, 0xfe, 0xfe})
	f.Add([]byte{9, 9, 9, 2, 250, 250, 0, 0, 0xff, 1, 1, 0xff, 0xfe, 0xfe})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 || len(data) > 512 {
			return // the reference recomputes everything per batch
		}
		slide := time.Duration(1+data[0]%5) * time.Second
		size := slide * time.Duration(1+data[1]%4)
		if data[1]&0x80 != 0 {
			size += time.Duration(data[1]%7) * 100 * time.Millisecond
		}
		cfg := Config{
			Window:    size,
			Slide:     slide,
			Watermark: time.Duration(data[2]) * 50 * time.Millisecond,
			Mode:      Mode(data[3] % 3),
			Keys:      int(data[3]/3) % 3,
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatalf("New(%+v): %v", cfg, err)
		}
		ref := newRef(cfg)
		now := int64(0)
		evicted := int64(MinTimestamp) // windows ending at or before this were evicted
		pending := false
		keys := make([]Value, cfg.Keys)
		run := func() {
			got, want := e.RunBatch(), ref.RunBatch()
			pending = false
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Fatalf("config %+v: batch %d differs\nengine:    %+v\nreference: %+v", cfg, got.ID, got, want)
			}
			for i, r := range got.Rows {
				if r.Count <= 0 {
					t.Fatalf("batch %d: row %+v has count %d", got.ID, r, r.Count)
				}
				if r.End <= evicted {
					t.Fatalf("batch %d: row %+v emitted for a window evicted before (watermark %d)", got.ID, r, evicted)
				}
				if i > 0 && CompareRows(got.Rows[i-1], r) >= 0 {
					t.Fatalf("batch %d: rows not sorted or not unique: %+v then %+v", got.ID, got.Rows[i-1], r)
				}
			}
			if got.StateRows < 0 || got.Late < 0 {
				t.Fatalf("batch %d: negative counters %+v", got.ID, got)
			}
			if cfg.Mode != Complete {
				evicted = got.Watermark
			}
		}
		for i := 4; i < len(data); i++ {
			switch op := data[i]; {
			case op == 0xff:
				run()
			case op == 0xfe: // a trigger
				if g, w := e.NeedsNoDataBatch(), ref.NeedsNoDataBatch(); g != w {
					t.Fatalf("config %+v: NeedsNoDataBatch = %v, reference %v", cfg, g, w)
				}
				if pending || e.NeedsNoDataBatch() {
					run()
				}
			default:
				// An event: time moves by up to ~1.3 s; every fourth one
				// is up to ~6 s behind.
				now += int64(op&0x3f) * 20_000
				ts := now
				if op&0xc0 == 0xc0 {
					ts -= int64(op&0x3f) * 100_000
				}
				for k := range keys {
					keys[k] = Value{}
					if v := (op >> (2 * k)) & 3; v != 0 {
						keys[k] = Value{S: string(rune('a' + v)), Valid: true}
					}
				}
				if i+1 < len(data) && data[i+1] < 4 {
					// Far-past events, some before the epoch.
					ts -= int64(data[i+1]) * 5_000_000
					i++
				}
				e.Add(ts, keys)
				ref.Add(ts, keys)
				pending = true
			}
		}
		run()
	})
}

// FuzzEngineRandomTimes plays events whose times the fuzzer picks anywhere:
// any 64-bit value (most beyond the engine's range), times around a day of
// 2025 in any order, the edges of the range, and the epoch. The engine must
// agree with the brute-force reference batch for batch, never panic, never
// move the watermark back, and keep its rows sorted and unique: replays in
// random order, poisoned watermarks and far-past events included.
func FuzzEngineRandomTimes(f *testing.F) {
	ev := func(mode byte, v int64) []byte {
		b := []byte{mode}
		for i := range 8 {
			b = append(b, byte(uint64(v)>>(8*i)))
		}
		return b
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	run, trigger := []byte{0xff}, []byte{0xfe}
	f.Add(cat([]byte{0, 1, 20, 0}, ev(1, 5_000_000), ev(1, 9_000_000), run, ev(1, 1_000_000), ev(0x41, 3_000_000_000), run, trigger,
		ev(1, 2_000_000), run, trigger))
	f.Add(cat([]byte{3, 2, 5, 1}, ev(0, math.MaxInt64), ev(0, math.MinInt64), ev(2, 0), ev(2, -5), run, ev(3, -7_000_000), ev(3, 7_000_000), run, trigger))
	f.Add(cat([]byte{1, 0x83, 0, 2}, ev(1, 86_399_000_000), ev(1, 0), ev(0x21, 43_200_000_000), run, ev(1, 100), ev(0x61, 50), run, trigger, run))
	f.Add(cat([]byte{4, 3, 255, 4}, ev(1, 30_000_000), run, ev(0, 1<<62), run, ev(1, 31_000_000), run, trigger))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 || len(data) > 600 {
			return
		}
		slide := time.Duration(1+data[0]%5) * time.Second
		size := slide * time.Duration(1+data[1]%4)
		if data[1]&0x80 != 0 {
			size += time.Duration(data[1]%7) * 100 * time.Millisecond
		}
		cfg := Config{Window: size, Slide: slide, Watermark: time.Duration(data[2]) * 50 * time.Millisecond,
			Mode: Mode(data[3] % 3), Keys: int(data[3]/3) % 3}
		e, err := New(cfg)
		if err != nil {
			t.Fatalf("New(%+v): %v", cfg, err)
		}
		ref := newRef(cfg)
		base := time.Date(2025, 11, 7, 0, 0, 0, 0, time.UTC).UnixMicro()
		keys := make([]Value, cfg.Keys)
		lastWM := int64(0)
		evicted := int64(MinTimestamp)
		run := func() {
			got, want := e.RunBatch(), ref.RunBatch()
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Fatalf("config %+v: batch %d differs\nengine:    %+v\nreference: %+v", cfg, got.ID, got, want)
			}
			if got.NextWatermark < lastWM {
				t.Fatalf("batch %d: the watermark moved back from %d to %d", got.ID, lastWM, got.NextWatermark)
			}
			lastWM = got.NextWatermark
			for i, r := range got.Rows {
				if r.Count <= 0 || r.End <= evicted || i > 0 && CompareRows(got.Rows[i-1], r) >= 0 {
					t.Fatalf("batch %d: row %d %+v: non-positive, of an evicted window, or out of order", got.ID, i, r)
				}
			}
			if cfg.Mode != Complete {
				evicted = got.Watermark
			}
		}
		for i := 4; i < len(data); {
			op := data[i]
			i++
			switch op {
			case 0xff:
				run()
				continue
			case 0xfe:
				if g, w := e.NeedsNoDataBatch(), ref.NeedsNoDataBatch(); g != w {
					t.Fatalf("config %+v: NeedsNoDataBatch = %v, reference %v", cfg, g, w)
				}
				if e.NeedsNoDataBatch() {
					run()
				}
				continue
			}
			if i+8 > len(data) {
				break
			}
			v := int64(binary.LittleEndian.Uint64(data[i : i+8]))
			i += 8
			var ts int64
			switch op & 3 {
			case 0: // anywhere
				ts = v
			case 1: // within about a day of a 2025 midnight, either side
				ts = base + v%(86_400_000_000)
			case 2: // the edges of the engine's range
				if v >= 0 {
					ts = MaxTimestamp - v%1000
				} else {
					ts = MinTimestamp + (-(v % 1000))
				}
			case 3: // around the epoch
				ts = v % 600_000_000
			}
			for k := range keys {
				keys[k] = Value{}
				if c := (op >> (2 + 2*k)) & 3; c != 0 {
					keys[k] = Value{S: string(rune('a' + c)), Valid: true}
				}
			}
			e.Add(ts, keys)
			ref.Add(ts, keys)
		}
		run()
	})
}
