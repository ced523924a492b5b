package dashboard

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// The store mirrors the engine in every output mode: its open windows hold
// exactly the engine's rows, its closed windows the rows' final counts.
func TestStoreMirrorsEngine(t *testing.T) {
	for _, mode := range []window.Mode{window.Update, window.Append, window.Complete} {
		t.Run(mode.String(), func(t *testing.T) {
			q := seedQuery(mode)
			d := newDash(t, Options{RetainClosedWindows: 1000}, q)
			f := newFeeder(t, d, q)
			rng := rand.New(rand.NewPCG(1, uint64(mode)))
			now := time.Duration(0)
			for batch := range 60 {
				if batch%7 != 6 { // some batches without data
					randomTraffic(f, rng, now, rng.IntN(200), 15)
					now += time.Duration(5+rng.IntN(20)) * time.Second
				}
				f.run()
				checkMirror(t, d.Snapshot(""), f)
			}
			snap := d.Snapshot(q.Name)
			closed := 0
			for _, w := range snap.wins {
				if w.closed {
					closed++
				}
			}
			if mode != window.Complete && closed == 0 {
				t.Fatal("no window was closed: the test did not exercise eviction")
			}
			if mode == window.Complete && closed != 0 {
				t.Fatalf("%d windows closed in complete mode", closed)
			}
		})
	}
}

func TestStoreRetainsClosedWindows(t *testing.T) {
	q := seedQuery(window.Update)
	d := newDash(t, Options{RetainClosedWindows: 3}, q)
	f := newFeeder(t, d, q)
	for i := range 20 {
		f.add(us(time.Duration(i)*30*time.Second), "alice")
		f.add(us(time.Duration(i)*30*time.Second), "bob")
		f.run()
	}
	snap := d.Snapshot("")
	closed, open := 0, 0
	for _, w := range snap.wins {
		if w.closed {
			closed++
		} else {
			open++
		}
	}
	if closed != 3 || open == 0 {
		t.Fatalf("held %d closed and %d open windows, want 3 closed and some open", closed, open)
	}
	// Totals of every window remain, dropped ones included: the first
	// window [-30s, 30s) holds one event per author, the others two.
	tot := snap.totals(0, 0, false, false, 1000)
	if len(tot) != 21 {
		t.Fatalf("%d totals, want 21 (every window seen)", len(tot))
	}
	for i, w := range tot {
		want := 4.0
		if i == 0 || i == len(tot)-1 {
			want = 2
		}
		if w.sums[0] != want || w.held != (i >= len(tot)-len(snap.wins)) {
			t.Fatalf("window %d (%v): total %v held %v, want %v", i, usTime(w.start), w.sums[0], w.held, want)
		}
	}
	if !snap.hasFloor || snap.droppedWindows != 21-int64(len(snap.wins)) {
		t.Fatalf("floor %v, dropped %d", snap.hasFloor, snap.droppedWindows)
	}
	// Keys no window holds are forgotten.
	f.run()
	if n := len(d.store("").keys); n != 2 {
		t.Fatalf("%d keys interned, want 2", n)
	}
}

// With more rows than MaxRows the oldest windows go first; rows of a window
// that was dropped are ignored afterwards (complete mode still updates it).
func TestStoreMaxRows(t *testing.T) {
	q := seedQuery(window.Complete)
	q.Slide = q.Window
	d := newDash(t, Options{MaxRows: 10}, q)
	f := newFeeder(t, d, q)
	for i := range 4 {
		for k := range 4 {
			f.add(us(time.Duration(i)*time.Minute), "k"+string(rune('a'+k)))
		}
		f.run()
	}
	snap := d.Snapshot("")
	if snap.held != 8 || len(snap.wins) != 2 || snap.wins[0].start != us(2*time.Minute) {
		t.Fatalf("held %d rows in %d windows (first %v), want 8 rows in the 2 newest windows", snap.held, len(snap.wins), usTime(snap.wins[0].start))
	}
	// A late event for a dropped window: complete mode updates it, the
	// store ignores it.
	f.add(us(0), "ka")
	f.run()
	snap = d.Snapshot("")
	if snap.ignoredRows != 1 || snap.window(us(0)) != nil {
		t.Fatalf("ignored %d rows; dropped window held again: %v", snap.ignoredRows, snap.window(us(0)) != nil)
	}
	// One window with more keys than MaxRows: the newest window is kept,
	// truncated.
	for k := range 15 {
		f.add(us(10*time.Minute), "n"+string(rune('a'+k)))
	}
	f.run()
	snap = d.Snapshot("")
	w := snap.wins[len(snap.wins)-1]
	if len(snap.wins) != 1 || len(w.keys) != 10 || !w.truncated || snap.held != 10 {
		t.Fatalf("%d windows, newest holds %d rows (truncated %v), held %d; want 1 window of 10 rows, truncated", len(snap.wins), len(w.keys), w.truncated, snap.held)
	}
	// Its rows still update.
	f.add(us(10*time.Minute), "na")
	f.run()
	if v, ok := d.Snapshot("").Value(us(10*time.Minute), []window.Value{{S: "na", Valid: true}}); !ok || v[0] != 2 {
		t.Fatalf("na = %v (%v), want 2", v, ok)
	}
}

// A reset replaces the open windows with the rows it carries (the analyzer
// sends one after restoring its state), keeps the closed ones.
func TestStoreReset(t *testing.T) {
	q := seedQuery(window.Update)
	d := newDash(t, Options{}, q)
	f := newFeeder(t, d, q)
	f.add(us(0), "alice")
	f.run()
	f.add(us(3*time.Minute), "bob")
	f.run()
	f.run() // evicts the windows of alice
	before := d.Snapshot("")
	last, _ := before.Batch()
	// A restored engine: bob's rows and one more.
	restored := []Row{
		{Start: us(2*time.Minute + 30*time.Second), End: us(3*time.Minute + 30*time.Second), Keys: []window.Value{{S: "bob", Valid: true}}, Values: []float64{5}},
		{Start: us(3 * time.Minute), End: us(4 * time.Minute), Keys: []window.Value{{S: "carol", Valid: true}}, Values: []float64{1}},
	}
	if err := d.Publish(&Batch{ID: last.ID, Reset: true, Changed: restored, Watermark: last.Watermark.UnixMicro()}); err != nil {
		t.Fatal(err)
	}
	snap := d.Snapshot("")
	var open, closed []string
	for _, w := range snap.wins {
		for i, k := range w.keys {
			s := usTime(w.start).Format("15:04:05") + " " + k.vals[0].S + "=" + ftoa(w.vals[i])
			if w.closed {
				closed = append(closed, s)
			} else {
				open = append(open, s)
			}
		}
	}
	if got := strings.Join(open, ", "); got != "10:02:30 bob=5, 10:03:00 carol=1" {
		t.Errorf("open rows after the reset: %s", got)
	}
	if got := strings.Join(closed, ", "); got != "09:59:30 alice=1, 10:00:00 alice=1" {
		t.Errorf("closed rows after the reset: %s", got)
	}
	if n := len(d.store("").keys); n != 3 {
		t.Errorf("%d keys interned, want 3", n)
	}
	// A batch repeating the id without reset is refused.
	if err := d.Publish(&Batch{ID: last.ID}); err == nil {
		t.Error("a repeated batch id was accepted")
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Batches that do not fit the query are refused with a reason, and the
// dashboard keeps showing the batch before.
func TestPublishRejects(t *testing.T) {
	q := seedQuery(window.Update)
	q2 := q
	q2.Name = "second"
	d := newDash(t, Options{}, q, q2)
	ok := Row{Start: us(0), End: us(time.Minute), Keys: []window.Value{{S: "a", Valid: true}}, Values: []float64{1}}
	if err := d.Publish(&Batch{Query: q.Name, ID: 4, Changed: []Row{ok}}); err != nil {
		t.Fatal(err)
	}
	bad := func(mut func(*Row)) []Row {
		r := ok
		r.Keys = append([]window.Value(nil), ok.Keys...)
		r.Values = append([]float64(nil), ok.Values...)
		mut(&r)
		return []Row{r}
	}
	for _, c := range []struct {
		name string
		b    Batch
		want string
	}{
		{"unknown query", Batch{Query: "nope", ID: 5}, "does not show"},
		{"no query name with two queries", Batch{ID: 5}, "does not show"},
		{"older batch", Batch{Query: q.Name, ID: 3}, "must increase"},
		{"same batch", Batch{Query: q.Name, ID: 4}, "must increase"},
		{"keys", Batch{Query: q.Name, ID: 5, Changed: bad(func(r *Row) { r.Keys = nil })}, "has 0 keys"},
		{"values", Batch{Query: q.Name, ID: 5, Closed: bad(func(r *Row) { r.Values = []float64{1, 2} })}, "has 2 values"},
		{"length", Batch{Query: q.Name, ID: 5, Changed: bad(func(r *Row) { r.End += 1 })}, "not 1m0s long"},
		{"aligned", Batch{Query: q.Name, ID: 5, Changed: bad(func(r *Row) { r.Start += 1; r.End += 1 })}, "not a multiple of the slide"},
		{"NaN", Batch{Query: q.Name, ID: 5, Changed: bad(func(r *Row) { r.Values[0] = math.NaN() })}, "finite"},
		{"Inf", Batch{Query: q.Name, ID: 5, Changed: bad(func(r *Row) { r.Values[0] = math.Inf(1) })}, "finite"},
	} {
		err := d.Publish(&c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
	if b, _ := d.Snapshot(q.Name).Batch(); b.ID != 4 {
		t.Errorf("shows batch %d after refused batches, want 4", b.ID)
	}
}

func TestQueryValidate(t *testing.T) {
	good := seedQuery(window.Update)
	for _, c := range []struct {
		name string
		mut  func(*Query)
		want string
	}{
		{"name", func(q *Query) { q.Name = "Bad Name" }, "query name"},
		{"slide", func(q *Query) { q.Slide = 2 * time.Minute }, "slide"},
		{"no group by", func(q *Query) { q.GroupBy = nil }, "group-by"},
		{"dup column", func(q *Query) { q.GroupBy = []string{"a", "a"} }, "twice"},
		{"no measure", func(q *Query) { q.Measures = nil }, "measures"},
		{"measure name", func(q *Query) { q.Measures = []Measure{{Name: "Count!"}} }, "measure 1 name"},
		{"dup measure", func(q *Query) { q.Measures = []Measure{CountMeasure, CountMeasure} }, "given twice"},
		{"heatmap sliding", func(q *Query) { q.View = ViewHeatmap }, "tumbling"},
		{"heatmap 7m", func(q *Query) { q.View = ViewHeatmap; q.Window, q.Slide = 7*time.Minute, 7*time.Minute }, "divides an hour"},
		{"view", func(q *Query) { q.View = "pie" }, "view"},
		{"scope", func(q *Query) { q.Scope = "galaxy" }, "scope"},
	} {
		q := good
		q.GroupBy = append([]string(nil), good.GroupBy...)
		c.mut(&q)
		err := q.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.want)
		}
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	hm := good
	hm.View, hm.Window, hm.Slide = ViewHeatmap, time.Hour, time.Hour
	if err := hm.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New([]Query{good, good}, Options{}); err == nil {
		t.Error("two queries of one name accepted")
	}
}

// A source that sends no closed rows (the results topic knows nothing of
// evictions) still gets its windows closed by the watermark it reports; in
// complete mode nothing closes.
func TestStoreClosesByWatermark(t *testing.T) {
	for _, mode := range []window.Mode{window.Update, window.Complete} {
		q := seedQuery(mode)
		d := newDash(t, Options{}, q)
		row := func(start time.Duration) Row {
			return Row{Start: us(start), End: us(start + time.Minute), Keys: []window.Value{{S: "a", Valid: true}}, Values: []float64{1}}
		}
		if err := d.Publish(&Batch{ID: 0, Changed: []Row{row(0), row(30 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		if err := d.Publish(&Batch{ID: 1, Watermark: us(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		snap := d.Snapshot("")
		if got, want := snap.wins[0].closed, mode != window.Complete; got != want || snap.wins[1].closed {
			t.Errorf("%v: windows closed %v, %v; want %v, false", mode, got, snap.wins[1].closed, want)
		}
	}
}
