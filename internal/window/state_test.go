package window

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// stateKey identifies a row in a shadow copy of state.
type stateKey struct {
	start int64
	enc   string
}

// applyChanges replays PendingChanges on a shadow copy of state, as a
// changelog reader would.
func applyChanges(shadow map[stateKey]int64, updated, evicted []Row) {
	for _, r := range updated {
		shadow[stateKey{r.Start, string(AppendKeys(nil, r.Keys))}] = r.Count
	}
	for _, r := range evicted {
		delete(shadow, stateKey{r.Start, string(AppendKeys(nil, r.Keys))})
	}
}

func shadowOf(rows []Row) map[stateKey]int64 {
	m := map[stateKey]int64{}
	for _, r := range rows {
		m[stateKey{r.Start, string(AppendKeys(nil, r.Keys))}] = r.Count
	}
	return m
}

// cloneRows deep-copies rows (their keys are shared with the engine).
func cloneRows(rows []Row) []Row {
	out := make([]Row, len(rows))
	for i, r := range rows {
		out[i] = r
		out[i].Keys = append([]Value(nil), r.Keys...)
	}
	return out
}

// playRestores drives one engine through events and batches; after every
// batch it snapshots the engine and restores the snapshot into a new one,
// which carries on. A second engine runs the same input without interruption.
// Every batch must be the same from both, and the rows PendingChanges
// reported, applied to a shadow copy, must always equal the engine's state.
func playRestores(t *testing.T, cfg Config, rng *rand.Rand, batches int) {
	t.Helper()
	plain, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	restored, _ := New(cfg)
	shadow := map[stateKey]int64{}
	keys := make([]Value, cfg.Keys)
	now := int64(1_700_000_000_000_000)
	for b := 0; b < batches; b++ {
		n := rng.IntN(8)
		if rng.IntN(5) == 0 {
			n = 0 // a no-data batch
		}
		for range n {
			now += rng.Int64N(3_000_000)
			ts := now
			if rng.IntN(4) == 0 {
				ts -= rng.Int64N(120_000_000) // late, some beyond the watermark
			}
			for k := range keys {
				keys[k] = Value{}
				if v := rng.IntN(4); v != 0 {
					keys[k] = Value{S: strings.Repeat("k", v), Valid: true}
				}
			}
			plain.Add(ts, keys)
			restored.Add(ts, keys)
		}
		updated, evicted := restored.PendingChanges()
		applyChanges(shadow, cloneRows(updated), cloneRows(evicted))
		if g, w := restored.NeedsNoDataBatch(), plain.NeedsNoDataBatch(); g != w {
			t.Fatalf("batch %d: NeedsNoDataBatch restored %v, uninterrupted %v", b, g, w)
		}
		got, want := restored.RunBatch(), plain.RunBatch()
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("config %+v batch %d:\nrestored:      %+v\nuninterrupted: %+v", cfg, b, got, want)
		}
		if g, w := shadowOf(restored.Rows()), shadow; !reflect.DeepEqual(g, w) {
			t.Fatalf("config %+v batch %d: state %v, changes applied give %v", cfg, b, g, w)
		}

		// Snapshot and restore into a new engine.
		p, rows := restored.Progress(), cloneRows(restored.Rows())
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		next, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := next.Restore(p, rows); err != nil {
			t.Fatalf("batch %d: Restore: %v", b, err)
		}
		if g := next.Progress(); g != p {
			t.Fatalf("batch %d: progress after restore %+v, want %+v", b, g, p)
		}
		if next.StateRows() != len(rows) || next.Watermark() != plain.Watermark() || next.NextBatchID() != plain.NextBatchID() {
			t.Fatalf("batch %d: restored engine: %d rows, watermark %d, next batch %d; want %d, %d, %d", b,
				next.StateRows(), next.Watermark(), next.NextBatchID(), len(rows), plain.Watermark(), plain.NextBatchID())
		}
		restored = next
	}
}

func TestRestoreContinuesExactly(t *testing.T) {
	configs := []Config{
		{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute, Mode: Update, Keys: 1},
		{Window: time.Minute, Slide: 30 * time.Second, Watermark: 10 * time.Second, Mode: Append, Keys: 1},
		{Window: time.Minute, Slide: 30 * time.Second, Watermark: 10 * time.Second, Mode: Complete, Keys: 2},
		{Window: 10 * time.Second, Slide: 10 * time.Second, Watermark: 0, Mode: Update, Keys: 0},
		{Window: 25 * time.Second, Slide: 10 * time.Second, Watermark: 5 * time.Second, Mode: Update, Keys: 2},
	}
	for i, cfg := range configs {
		t.Run(cfg.Mode.String(), func(t *testing.T) {
			playRestores(t, cfg, rand.New(rand.NewPCG(uint64(i), 7)), 300)
		})
	}
}

// FuzzRestore runs playRestores on fuzzer-chosen configurations and seeds.
func FuzzRestore(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint8(20), uint8(0), uint64(1))
	f.Add(uint8(2), uint8(0), uint8(0), uint8(4), uint64(99))
	f.Fuzz(func(t *testing.T, slideSec, mult, delay, modeKeys uint8, seed uint64) {
		slide := time.Duration(1+slideSec%10) * time.Second
		cfg := Config{
			Window:    slide*time.Duration(1+mult%4) + time.Duration(mult/64)*300*time.Millisecond,
			Slide:     slide,
			Watermark: time.Duration(delay) * 250 * time.Millisecond,
			Mode:      Mode(modeKeys % 3),
			Keys:      int(modeKeys/3) % 3,
		}
		if cfg.Validate() != nil {
			return
		}
		playRestores(t, cfg, rand.New(rand.NewPCG(seed, seed>>7)), 60)
	})
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	cfg := Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute, Mode: Update, Keys: 1}
	alice := []Value{{S: "alice", Valid: true}}
	ok := Progress{NextBatchID: 3, WatermarkForLate: 0, Watermark: 60_000_000, LastRunWatermark: 0, Ran: true}
	tests := []struct {
		name string
		p    Progress
		rows []Row
		want string
	}{
		{"negative batch", Progress{NextBatchID: -1, Ran: true}, nil, "negative"},
		{"late after watermark", Progress{NextBatchID: 1, WatermarkForLate: 5, Watermark: 4, Ran: true}, nil, "after the watermark"},
		{"not ran", Progress{NextBatchID: 2}, nil, "no batch ran"},
		{"key count", ok, []Row{{Start: 0, Keys: nil, Count: 1}}, "has 0 keys"},
		{"zero count", ok, []Row{{Start: 0, Keys: alice, Count: 0}}, "count 0"},
		{"unaligned", ok, []Row{{Start: 1, Keys: alice, Count: 1}}, "not a multiple of the slide"},
		{"wrong length", ok, []Row{{Start: 0, End: 30_000_000, Keys: alice, Count: 1}}, "not 1m0s long"},
		{"twice", ok, []Row{{Start: 0, Keys: alice, Count: 1}, {Start: 0, Keys: alice, Count: 2}}, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := New(cfg)
			err := e.Restore(tt.p, tt.rows)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Restore: %v, want an error saying %q", err, tt.want)
			}
		})
	}
	e, _ := New(cfg)
	e.Add(1, alice)
	if err := e.Restore(ok, nil); err == nil {
		t.Error("Restore into an engine with events: no error")
	}
}

func TestProgressMerge(t *testing.T) {
	a := Progress{NextBatchID: 4, WatermarkForLate: 10, Watermark: 20, LastRunWatermark: 10, Ran: true}
	b := Progress{NextBatchID: 7, WatermarkForLate: 5, Watermark: 30, LastRunWatermark: 5}
	want := Progress{NextBatchID: 7, WatermarkForLate: 10, Watermark: 30, LastRunWatermark: 10, Ran: true}
	if got := a.Merge(b); got != want {
		t.Errorf("Merge = %+v, want %+v", got, want)
	}
	if got := a.Merge(a); got != a {
		t.Errorf("Merge with itself = %+v, want %+v", got, a)
	}
}

func TestWindowEnd(t *testing.T) {
	cfg := Config{Window: time.Minute, Slide: 30 * time.Second}
	tests := []struct{ ts, want int64 }{
		{0, 60_000_000},
		{29_999_999, 60_000_000},
		{30_000_000, 90_000_000},
		{-1, 30_000_000},
	}
	for _, tt := range tests {
		if got := cfg.WindowEnd(tt.ts); got != tt.want {
			t.Errorf("WindowEnd(%d) = %d, want %d", tt.ts, got, tt.want)
		}
	}
	// Every window of an event ends at or before WindowEnd, and one ends there.
	ref := newRef(Config{Window: 25 * time.Second, Slide: 10 * time.Second})
	c := Config{Window: 25 * time.Second, Slide: 10 * time.Second}
	for ts := int64(-50_000_000); ts < 50_000_000; ts += 1_700_000 {
		starts := ref.windowsOf(ts)
		last := starts[len(starts)-1] + 25_000_000
		if got := c.WindowEnd(ts); got != last {
			t.Errorf("WindowEnd(%d) = %d, last window of the event ends at %d", ts, got, last)
		}
	}
}

// FirstWindowEnd is the end of the earliest window of an event, for sizes
// that are multiples of the slide and sizes that are not.
func TestFirstWindowEnd(t *testing.T) {
	for _, c := range []Config{
		{Window: time.Minute, Slide: 30 * time.Second},
		{Window: 25 * time.Second, Slide: 10 * time.Second},
		{Window: 10 * time.Second, Slide: 10 * time.Second},
		{Window: time.Minute, Slide: 7 * time.Second},
	} {
		ref := newRef(c)
		size := int64(c.Window / time.Microsecond)
		for ts := int64(-50_000_000); ts < 50_000_000; ts += 299_999 {
			starts := ref.windowsOf(ts)
			first := starts[0] + size
			for _, s := range starts {
				first = min(first, s+size)
			}
			if got := c.FirstWindowEnd(ts); got != first {
				t.Fatalf("%v/%v: FirstWindowEnd(%d) = %d, the earliest window of the event ends at %d", c.Window, c.Slide, ts, got, first)
			}
		}
	}
}
