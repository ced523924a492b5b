package dashboard

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// The snapshot rule: a reader during a batch's update sees the batch before
// it or the batch itself, never a mix. Batch k of this feed gives every row
// of the open windows k, k+1, k+2 (one-minute windows, numbered from t0) the
// value k, and closes window k-1 with the value k; the store keeps two
// closed windows. So everything in an answer is determined by the batch id
// the answer names, and readers check it all while the writer publishes.
// Run with -race.
func TestSnapshotRule(t *testing.T) {
	q := seedQuery(window.Update)
	q.Slide = q.Window
	d := newDash(t, Options{RetainClosedWindows: 2}, q)
	srv := serve(t, d)
	const keys = 20
	const batches = 150
	start := func(s int64) int64 { return us(time.Duration(s) * time.Minute) }
	rows := func(s, v int64) []Row {
		out := make([]Row, keys)
		for k := range out {
			out[k] = Row{Start: start(s), End: start(s + 1), Keys: []window.Value{{S: fmt.Sprintf("k%02d", k), Valid: true}}, Values: []float64{float64(v)}}
		}
		return out
	}
	// want returns the value of window s's rows in batch id, and whether it
	// is held and closed.
	want := func(id, s int64) (v float64, held, closed bool) {
		switch {
		case s >= id && s < id+3:
			return float64(id), true, false
		case s >= id-2 && s < id && s >= 0:
			return float64(s + 1), true, true
		}
		return 0, false, false
	}
	publish := func(k int64) {
		b := &Batch{ID: k, Watermark: start(k), Changed: append(rows(k, k), append(rows(k+1, k), rows(k+2, k)...)...)}
		if k > 0 {
			b.Closed = rows(k-1, k)
		}
		if err := d.Publish(b); err != nil {
			t.Error(err)
		}
	}
	publish(0)

	var done atomic.Bool
	var checks atomic.Int64
	var wg sync.WaitGroup
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		done.Store(true)
	}
	checkRow := func(what string, id int64, r rowA) {
		s := int64(r.Start.Sub(t0) / time.Minute)
		v, held, closed := want(id, s)
		if !held || r.Values["message_count"] != v || r.Closed != closed {
			fail("%s of batch %d: window %d = %v closed %v; the batch holds it: %v, value %v, closed %v", what, id, s, r.Values["message_count"], r.Closed, held, v, closed)
		}
	}
	readers := []func(){
		func() { // rows: every held row, in one page
			var a rowsA
			get(t, srv, "/api/v1/queries/messages_per_author/rows?limit=1000", 200, &a)
			if len(a.Rows) != keys*(3+min(2, int(a.Batch.ID))) {
				fail("rows of batch %d: %d rows", a.Batch.ID, len(a.Rows))
			}
			for _, r := range a.Rows {
				checkRow("rows", a.Batch.ID, r)
			}
		},
		func() { // top of the current window, and its total
			var a topA
			get(t, srv, "/api/v1/queries/messages_per_author/top?n=5", 200, &a)
			for _, r := range a.Rows {
				checkRow("top", a.Batch.ID, r)
			}
			if a.Window.Totals["message_count"] != float64(keys*a.Batch.ID) {
				fail("top of batch %d: window total %v", a.Batch.ID, a.Window.Totals)
			}
		},
		func() { // totals of every window
			var a struct {
				Batch   batchA    `json:"batch"`
				Windows []windowA `json:"windows"`
			}
			get(t, srv, "/api/v1/queries/messages_per_author/totals", 200, &a)
			for _, w := range a.Windows {
				s := int64(w.Start.Sub(t0) / time.Minute)
				v, held, closed := want(a.Batch.ID, s)
				if !held { // dropped: its totals stay, as it was closed
					v, closed = float64(s+1), true
				}
				if w.Held != held || w.Closed != closed || w.Totals["message_count"] != v*keys {
					fail("totals of batch %d: window %d %+v; want held %v closed %v total %v", a.Batch.ID, s, w, held, closed, v*keys)
				}
			}
			if len(a.Windows) != int(a.Batch.ID)+3 {
				fail("totals of batch %d: %d windows", a.Batch.ID, len(a.Windows))
			}
		},
		func() { // the snapshot itself, without HTTP
			snap := d.Snapshot("")
			b, _ := snap.Batch()
			for _, w := range snap.wins {
				v, held, closed := want(b.ID, int64((w.start-t0.UnixMicro())/60e6))
				if !held || w.closed != closed || w.sums[0] != v*keys {
					fail("snapshot of batch %d: window %v closed %v total %v", b.ID, usTime(w.start), w.closed, w.sums[0])
				}
			}
		},
	}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !done.Load(); n++ {
				readers[(i+n)%len(readers)]()
				checks.Add(1)
			}
		}()
	}
	for k := int64(1); k < batches && !done.Load(); k++ {
		publish(k)
		time.Sleep(time.Millisecond) // let readers in between batches too
	}
	done.Store(true)
	wg.Wait()
	if checks.Load() < batches {
		t.Errorf("only %d reads during %d batches", checks.Load(), batches)
	}
	t.Logf("%d reads checked during %d batches", checks.Load(), batches)
}
