package dashboard

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// benchRows returns n rows of window start, keys author-000000.. with value v.
func benchRows(start time.Duration, keys []window.Value, v float64) []Row {
	rows := make([]Row, len(keys))
	vals := make([]float64, len(keys))
	for i := range keys {
		vals[i] = v
		rows[i] = Row{Start: us(start), End: us(start + time.Minute), Keys: keys[i : i+1], Values: vals[i : i+1]}
	}
	return rows
}

func benchKeys(n int) []window.Value {
	keys := make([]window.Value, n)
	for i := range keys {
		keys[i] = window.Value{S: fmt.Sprintf("author-%06d", i), Valid: true}
	}
	return keys
}

// BenchmarkPublish is the cost the analyzer pays per batch: applying the
// changed rows and building the batch event. live: 2,000 rows changed of
// 10,000 keys in the two newest windows; replay: 75,000 rows changed (a
// 500,000-record replay batch of the seed's query) over 6 windows of
// 12,500 keys, one window closing.
func BenchmarkPublish(b *testing.B) {
	for _, c := range []struct {
		name           string
		keys, per, win int
	}{
		{"live", 10_000, 1_000, 2},
		{"replay", 12_500, 12_500, 6},
	} {
		b.Run(c.name, func(b *testing.B) {
			q := seedQuery(window.Update)
			q.Slide = q.Window
			d := newDash(b, Options{}, q)
			keys := benchKeys(c.keys)
			id := int64(0)
			for w := range c.win + 2 { // fill: every key in every window
				if err := d.Publish(&Batch{ID: id, Changed: benchRows(time.Duration(w)*time.Minute, keys, 1)}); err != nil {
					b.Fatal(err)
				}
				id++
			}
			b.ReportAllocs()
			b.ResetTimer()
			changed := 0
			for i := range b.N {
				var rows []Row
				for w := range c.win {
					off := (i * 37) % (c.keys - c.per + 1)
					rows = append(rows, benchRows(time.Duration(w+2)*time.Minute, keys[off:off+c.per], float64(i+2))...)
				}
				changed += len(rows)
				if err := d.Publish(&Batch{ID: id, Changed: rows}); err != nil {
					b.Fatal(err)
				}
				id++
			}
			b.ReportMetric(float64(changed)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkHeldMemory reports the heap a store takes per row held, filled to
// 1,000,000 rows (100 windows of 10,000 keys): shared,
// the same 10,000 keys in every window; distinct, other keys in each window
// (1,000,000 keys). Run it with -benchtime=1x.
func BenchmarkHeldMemory(b *testing.B) {
	for _, distinct := range []bool{false, true} {
		b.Run(map[bool]string{false: "shared", true: "distinct"}[distinct], func(b *testing.B) {
			for range b.N {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				q := seedQuery(window.Update)
				q.Slide = q.Window
				d, err := New([]Query{q}, Options{RetainClosedWindows: 1000, MaxRows: 1_000_000})
				if err != nil {
					b.Fatal(err)
				}
				keys := benchKeys(10_000)
				for w := range 100 {
					if distinct {
						for i := range keys {
							keys[i].S = fmt.Sprintf("author-%02d-%06d", w, i)
						}
					}
					if err := d.Publish(&Batch{ID: int64(w), Changed: benchRows(time.Duration(w)*time.Minute, keys, float64(w))}); err != nil {
						b.Fatal(err)
					}
				}
				keys = nil
				runtime.GC()
				runtime.ReadMemStats(&after)
				held := d.Snapshot("").HeldRows()
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(held), "bytes/row")
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB")
				runtime.KeepAlive(d)
			}
		})
	}
}
