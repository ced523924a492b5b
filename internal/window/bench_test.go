package window

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
)

// seedConfig is the seed's query: 1 min / 30 s windows, watermark 1 min,
// count per author, update mode.
var seedConfig = Config{Window: time.Minute, Slide: 30 * time.Second, Watermark: time.Minute, Mode: Update, Keys: 1}

// skewedEvents returns n events from `authors` authors with Zipf-skewed
// activity (a few authors write most messages), 10,000 messages per second of
// event time, slightly out of order.
func skewedEvents(n, authors int) (ts []int64, keys [][]Value) {
	r := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(r, 1.1, 4, uint64(authors-1))
	names := make([][]Value, authors)
	for i := range names {
		names[i] = []Value{{S: fmt.Sprintf("user_%06d", i), Valid: true}}
	}
	base := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC).UnixMicro()
	ts = make([]int64, n)
	keys = make([][]Value, n)
	for i := range ts {
		ts[i] = base + int64(i)*100 - int64(r.IntN(2_000_000)) // up to 2 s out of order
		keys[i] = names[zipf.Uint64()]
	}
	return ts, keys
}

// BenchmarkAdd is the per-message cost of the window update on the seed's
// query with 10,000 skewed authors, including a micro-batch every 500,000
// messages (a 5 s trigger at 100,000 msgs/s), so that state stays at its
// steady size. BenchmarkRunBatch measures the batch end on its own.
func BenchmarkAdd(b *testing.B) {
	const n = 1 << 20
	ts, keys := skewedEvents(n, 10_000)
	e, err := New(seedConfig)
	if err != nil {
		b.Fatal(err)
	}
	// Warm up to the steady state.
	for i := range n / 2 {
		e.Add(ts[i], keys[i])
		if i%500_000 == 0 {
			e.RunBatch()
		}
	}
	shift := int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := range b.N {
		j := (i + n/2) % n
		if j == 0 {
			shift += int64(n) * 100 // replay the events later in time
		}
		e.Add(ts[j]+shift, keys[j])
		if j%500_000 == 0 {
			e.RunBatch()
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(e.StateRows()), "state-rows")
}

// BenchmarkRunBatch measures ending a micro-batch in which 10,000 authors
// each wrote once and the watermark moved by one slide, so each batch
// creates and evicts a window of 10,000 rows. Only RunBatch is timed.
func BenchmarkRunBatch(b *testing.B) {
	for _, mode := range []Mode{Update, Append} {
		b.Run("eviction/"+mode.String(), func(b *testing.B) {
			const authors = 10_000
			names := make([][]Value, authors)
			for i := range names {
				names[i] = []Value{{S: fmt.Sprintf("user_%06d", i), Valid: true}}
			}
			r := rand.New(rand.NewPCG(3, 4))
			r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
			cfg := seedConfig
			cfg.Mode = mode
			e, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			base := time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC).UnixMicro()
			slide := int64(30 * time.Second / time.Microsecond)
			fill := func(k int) {
				t0 := base + int64(k)*slide
				for i, key := range names {
					e.Add(t0+int64(i), key)
				}
			}
			for k := range 5 {
				fill(k)
				e.RunBatch()
			}
			rows := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				fill(5 + i)
				b.StartTimer()
				rows += len(e.RunBatch().Rows)
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/batch")
			b.ReportMetric(float64(e.StateRows()), "state-rows")
		})
	}
}

// BenchmarkProjectAndAdd is the analyzer's hot path per message: project a
// typical ~330-byte wire record (chat.Project) and count it (Add), on the
// seed's query with 10,000 skewed authors and a micro-batch every 500,000
// messages. Issue 4's target is 1.5 M msgs/s per core.
func BenchmarkProjectAndAdd(b *testing.B) {
	const n = 1 << 16
	ts, keys := skewedEvents(n, 10_000)
	records := make([][]byte, n)
	for i := range records {
		m := chat.Message{
			Kind:             chat.KindCreate,
			MessageID:        fmt.Sprintf("14364312345678%05d", i),
			GuildID:          chat.Ptr("1199887766554433221"),
			ChannelID:        "1299887766554433222",
			AuthorID:         chat.Ptr(fmt.Sprintf("4023456789012%05d", i%10_000)),
			AuthorName:       chat.Ptr(keys[i][0].S),
			AuthorGlobalName: chat.Ptr("Some Name"),
			Content:          chat.Ptr("has anyone tried the new build? it fixes the crash on startup for me, but the settings page still loads slowly"),
			Timestamp:        time.UnixMicro(ts[i] / 1000 * 1000).UTC(),
		}
		var err error
		if records[i], err = chat.Encode(&m); err != nil {
			b.Fatal(err)
		}
	}
	e, err := New(seedConfig)
	if err != nil {
		b.Fatal(err)
	}
	var p chat.Projection
	key := make([]Value, 1)
	bytes := 0
	for _, r := range records {
		bytes += len(r)
	}
	b.SetBytes(int64(bytes / n))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := range b.N {
		if err := chat.Project(records[i%n], &p); err != nil {
			b.Fatal(err)
		}
		key[0] = Value{S: p.AuthorName, Valid: p.Has&chat.HasAuthorName != 0}
		// Replays of the record set move on in time, like a live stream.
		e.Add(p.Timestamp+int64(i/n)*int64(n)*100, key)
		if i%500_000 == 0 {
			e.RunBatch()
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkAddAggregates is BenchmarkAdd's stream through queries with
// aggregates: approx_count_distinct over a string and sum/avg/min/max over
// an INT (tumbling 1-minute windows), and session windows with a count.
func BenchmarkAddAggregates(b *testing.B) {
	const n = 1 << 20
	ts, keys := skewedEvents(n, 10_000)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"distinct+lengths", Config{Window: time.Minute, Slide: time.Minute, Watermark: time.Minute, Mode: Update, Keys: 1, Aggs: []Aggregate{
			{Kind: ApproxCountDistinct, Input: TypeString}, {Kind: Sum, Input: TypeInt}, {Kind: Avg, Input: TypeInt},
			{Kind: Min, Input: TypeInt}, {Kind: Max, Input: TypeInt}}}},
		{"sessions", Config{Gap: 10 * time.Second, Watermark: time.Minute, Mode: Append, Keys: 1, Aggs: []Aggregate{{Kind: Count}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e, err := New(c.cfg)
			if err != nil {
				b.Fatal(err)
			}
			in := make([]Input, len(c.cfg.Aggs))
			shift := int64(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				j := i % n
				if j == 0 && i > 0 {
					shift += int64(n) * 100
				}
				for a := range in {
					in[a] = Input{S: keys[j][0].S, I: int64(j % 300), Valid: true}
				}
				e.AddWith(ts[j]+shift, keys[j], in)
				if j%500_000 == 0 {
					e.RunBatch()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(e.StateRows()), "state-rows")
		})
	}
}
