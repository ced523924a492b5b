package dashboard

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// t0 is a Monday, 10:00 UTC.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func us(d time.Duration) int64 { return t0.Add(d).UnixMicro() }

// seedQuery is the seed's query: messages per author in 1-minute windows
// sliding by 30 s, watermark 1 minute.
func seedQuery(mode window.Mode) Query {
	return Query{
		Name: "messages_per_author", Title: "Messages per author", Input: "discord_messages",
		Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute,
		GroupBy: []string{"author_name"}, Measures: []Measure{CountMeasure},
		Mode: mode, Trigger: 5 * time.Second,
	}
}

func newDash(t testing.TB, opt Options, qs ...Query) *Dashboard {
	t.Helper()
	d, err := New(qs, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// feeder runs a real window engine and publishes each of its batches the way
// the analyzer does: PendingChanges before RunBatch, then FromEngine.
type feeder struct {
	t      testing.TB
	eng    *window.Engine
	d      *Dashboard
	query  string
	closed map[int64]map[string]int64 // evicted windows: start -> key -> final count
	at     time.Time                  // commit time of the next batch
	keys   int
}

func newFeeder(t testing.TB, d *Dashboard, q Query) *feeder {
	t.Helper()
	eng, err := window.New(window.Config{Window: q.Window, Slide: q.Slide, Watermark: q.Watermark, Mode: q.Mode, Keys: len(q.GroupBy)})
	if err != nil {
		t.Fatal(err)
	}
	return &feeder{t: t, eng: eng, d: d, query: q.Name, closed: map[int64]map[string]int64{}, at: t0, keys: len(q.GroupBy)}
}

func (f *feeder) add(ts int64, keys ...string) {
	vals := make([]window.Value, len(keys))
	for i, k := range keys {
		vals[i] = window.Value{S: k, Valid: k != "<null>"}
	}
	f.eng.Add(ts, vals)
}

// run ends the batch and publishes it.
func (f *feeder) run() Batch {
	f.t.Helper()
	updated, evicted := f.eng.PendingChanges()
	wb := f.eng.RunBatch()
	for _, r := range evicted {
		m := f.closed[r.Start]
		if m == nil {
			m = map[string]int64{}
			f.closed[r.Start] = m
		}
		m[keyString(r.Keys)] = r.Count
	}
	b := FromEngine(&wb, updated, evicted)
	b.Query = f.query
	b.CommittedAt = f.at
	b.Duration = 42 * time.Millisecond
	b.Counts.Records = wb.Input
	b.Counts.Counted = wb.Input
	b.Lag = []PartitionLag{{Topic: "discord_messages", Partition: 0, Lag: 7}, {Topic: "discord_messages", Partition: 1, Lag: 3}}
	f.at = f.at.Add(5 * time.Second)
	if err := f.d.Publish(&b); err != nil {
		f.t.Fatal(err)
	}
	return b
}

func keyString(keys []window.Value) string {
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += "|"
		}
		if k.Valid {
			s += k.S
		} else {
			s += "<null>"
		}
	}
	return s
}

// checkMirror checks that snap holds exactly the engine's rows as its open
// windows, and the evicted rows as its closed ones.
func checkMirror(t testing.TB, snap *Snapshot, f *feeder) {
	t.Helper()
	b, ok := snap.Batch()
	if !ok || b.ID != f.eng.NextBatchID()-1 {
		t.Fatalf("snapshot of batch %d (ok %v), the engine ran batch %d", b.ID, ok, f.eng.NextBatchID()-1)
	}
	engine := map[int64]map[string]int64{}
	for _, r := range f.eng.Rows() {
		m := engine[r.Start]
		if m == nil {
			m = map[string]int64{}
			engine[r.Start] = m
		}
		m[keyString(r.Keys)] = r.Count
	}
	complete := snap.query.Mode == window.Complete
	for _, w := range snap.wins {
		want := engine[w.start]
		if w.closed && !complete {
			want = f.closed[w.start]
		}
		got := map[string]int64{}
		var sum float64
		for i, k := range w.keys {
			got[keyString(k.vals)] = int64(w.vals[i])
			sum += w.vals[i]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("batch %d window %v (closed %v): got %v, want %v", b.ID, usTime(w.start), w.closed, got, want)
		}
		if sum != w.sums[0] {
			t.Fatalf("window %v: total %v, rows add up to %v", usTime(w.start), w.sums[0], sum)
		}
		delete(engine, w.start)
	}
	if len(engine) != 0 {
		t.Fatalf("batch %d: engine windows missing from the snapshot: %v", b.ID, engine)
	}
}

// randomTraffic adds n events of keys a..(a+nkeys) around the event time
// now, some of them late.
func randomTraffic(f *feeder, rng *rand.Rand, now time.Duration, n, nkeys int) {
	for range n {
		ts := now - time.Duration(rng.IntN(40_000))*time.Millisecond
		if rng.IntN(20) == 0 {
			ts -= 3 * time.Minute // late
		}
		key := fmt.Sprintf("author%02d", rng.IntN(nkeys))
		if rng.IntN(50) == 0 {
			key = "<null>"
		}
		f.add(us(ts), key)
	}
}

// serve serves d until the test ends; its event streams end first.
func serve(t testing.TB, d *Dashboard) *httptest.Server {
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(func() {
		d.Close()
		srv.Close()
	})
	return srv
}
