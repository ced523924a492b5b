package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cordstream/cordstream/bench/workload"
	"github.com/cordstream/cordstream/internal/analyzer"
	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/sink"
	"github.com/cordstream/cordstream/internal/window"
)

// records returns n encoded workload messages (realistic lengths, 10,000
// Zipf-skewed authors, 5,000 messages per second of event time) and their
// average size.
func records(tb testing.TB, n int) ([][]byte, int) {
	tb.Helper()
	g := workload.New(workload.Config{})
	out := make([][]byte, n)
	total := 0
	var m chat.Message
	for i := range out {
		g.Next(&m)
		b, err := chat.Encode(&m)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
		total += len(b)
	}
	return out, total / n
}

// The seed's query.
var seedQuery = window.Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute, Mode: window.Update, Keys: 1}

// span is the event time one pass over the record set covers, in µs; later
// passes are shifted by it so that event time keeps moving, as in a stream.
func span(n int) int64 { return int64(n) * 1e6 / 5000 }

// reportRate adds msgs/s and cpu-ns/op (CPU time of the whole process per
// operation: on one goroutine, per core).
func reportRate(b *testing.B, cpu0 int64) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkProjectWorkload is decoding alone (chat.Project) on the
// workload's mix of message sizes.
func BenchmarkProjectWorkload(b *testing.B) {
	recs, avg := records(b, 1<<16)
	var p chat.Projection
	b.SetBytes(int64(avg))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := range b.N {
		if err := chat.Project(recs[i&(1<<16-1)], &p); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, cpu)
}

// BenchmarkDecodeAndWindow is issue 4's target (>= 1.5 M messages/s per
// core): decode (chat.Project) and window update (Engine.Add) per message,
// the seed's query, the workload's messages, a micro-batch every 500,000
// messages so that state stays at its steady size.
func BenchmarkDecodeAndWindow(b *testing.B) {
	const n = 1 << 18
	recs, avg := records(b, n)
	e, err := window.New(seedQuery)
	if err != nil {
		b.Fatal(err)
	}
	var p chat.Projection
	key := make([]window.Value, 1)
	add := func(i int) {
		if err := chat.Project(recs[i%n], &p); err != nil {
			b.Fatal(err)
		}
		key[0] = window.Value{S: p.AuthorName, Valid: p.Has&chat.HasAuthorName != 0}
		e.Add(p.Timestamp+int64(i/n)*span(n), key)
		if i%500_000 == 0 {
			e.RunBatch()
		}
	}
	for i := range n { // warm up to the steady state
		add(i)
	}
	b.SetBytes(int64(avg))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := range b.N {
		add(n + i)
	}
	reportRate(b, cpu)
	b.ReportMetric(float64(e.StateRows()), "state-rows")
}

// memSource is an in-memory analyzer.Source: batches of at most per
// records, cycling through recs; each new pass moves every record's
// message_timestamp on by the span of the set (untimed), so that event time
// keeps advancing as in a stream.
type memSource struct {
	b    *testing.B
	recs [][]byte
	next int // next record index (offset)
	end  int // available-now end
	per  int
	rec  analyzer.Record
	// untimed is the CPU time spent moving timestamps, not measured.
	untimed int64
}

const tsField = `"message_timestamp":"`

// shiftTimestamps adds d µs to the wire timestamp of every record, in place.
func shiftTimestamps(tb testing.TB, recs [][]byte, d int64) {
	for _, r := range recs {
		i := bytes.Index(r, []byte(tsField))
		if i < 0 {
			tb.Fatalf("no message_timestamp in %s", r)
		}
		i += len(tsField)
		ts, err := chat.ParseTimestamp(string(r[i : i+23]))
		if err != nil {
			tb.Fatal(err)
		}
		chat.AppendTimestamp(r[i:i], ts.Add(time.Duration(d)*time.Microsecond))
	}
}

func (s *memSource) Plan(context.Context) (analyzer.Plan, error) {
	if s.next >= s.end {
		return analyzer.Plan{}, nil
	}
	to := min(s.next+s.per, s.end)
	return analyzer.Plan{Ranges: []analyzer.Range{{Topic: "bench", From: int64(s.next), To: int64(to)}}}, nil
}

func (s *memSource) Read(_ context.Context, p analyzer.Plan, fn func(*analyzer.Record)) error {
	n := len(s.recs)
	for _, r := range p.Ranges {
		for o := r.From; o < r.To; o++ {
			if o > 0 && int(o)%n == 0 {
				s.b.StopTimer()
				c := cpuTime()
				shiftTimestamps(s.b, s.recs, span(n))
				s.untimed += cpuTime() - c
				s.b.StartTimer()
			}
			s.rec = analyzer.Record{Topic: "bench", Offset: o, Value: s.recs[int(o)%n]}
			fn(&s.rec)
		}
	}
	return nil
}

func (s *memSource) Commit(_ context.Context, p analyzer.Plan) error {
	for _, r := range p.Ranges {
		s.next = int(r.To)
	}
	return nil
}

// BenchmarkAnalyzer is the whole analyzer without Kafka: an in-memory
// source of workload records, the seed's query (available-now, batches of
// 500,000 records), console output to io.Discard. One op is one record;
// the CPU time includes batch ends (sorting, eviction, output).
func BenchmarkAnalyzer(b *testing.B) {
	recs, avg := records(b, 1<<18)
	src := &memSource{b: b, recs: recs, end: b.N, per: 500_000}
	cfg := analyzer.Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute,
		GroupBy: []string{chat.FieldAuthorName}, Mode: window.Update, AvailableNow: true}
	a, err := analyzer.New(cfg, analyzer.Deps{
		Source:  src,
		Outputs: []analyzer.Output{sink.NewConsole(io.Discard, cfg.GroupBy, 20, time.UTC)},
		Log:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(avg))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	if err := a.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	reportRate(b, cpu+src.untimed)
}

// batchOf returns an update-mode batch as the seed's query emits it with
// 10,000 active authors: every author in two windows, sorted.
func batchOf(authors int) *window.Batch {
	start := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC).UnixMicro()
	b := &window.Batch{ID: 42}
	for w := range 2 {
		ws := start + int64(w)*30e6
		for i := range authors {
			b.Rows = append(b.Rows, window.Row{Start: ws, End: ws + 60e6,
				Keys: []window.Value{{S: fmt.Sprintf("user_%06d", i), Valid: true}}, Count: int64(1 + i%17)})
		}
	}
	return b
}

// BenchmarkConsole renders a batch in Spark's console format: the seed's
// 20 shown rows out of a large batch (the table is sized from the rows
// shown), and a small batch.
func BenchmarkConsole(b *testing.B) {
	for _, authors := range []int{10, 10_000} {
		batch := batchOf(authors)
		b.Run(fmt.Sprintf("rows=%d", len(batch.Rows)), func(b *testing.B) {
			c := sink.NewConsole(io.Discard, []string{chat.FieldAuthorName}, 20, time.UTC)
			b.ReportAllocs()
			for range b.N {
				if err := c.WriteBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJSONLines renders every row of a 20,000-row batch as JSON
// Lines. One op is one batch; rows/s is reported.
func BenchmarkJSONLines(b *testing.B) {
	batch := batchOf(10_000)
	j := sink.NewJSONLines(io.Discard, []string{chat.FieldAuthorName})
	b.ReportAllocs()
	for range b.N {
		if err := j.WriteBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch.Rows))/b.Elapsed().Seconds(), "rows/s")
}
