package window

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/hllpp"
)

func str(s string) Value { return Value{S: s, Valid: true} }
func inS(s string) Input { return Input{S: s, Valid: true} }
func inI(i int64) Input  { return Input{I: i, Valid: true} }

// lengthAggs are count(*), count(col), sum, avg, min, max over an INT.
var lengthAggs = []Aggregate{
	{Kind: Count}, {Kind: Count, Input: TypeInt}, {Kind: Sum, Input: TypeInt},
	{Kind: Avg, Input: TypeInt}, {Kind: Min, Input: TypeInt}, {Kind: Max, Input: TypeInt},
}

func lengthInputs(v Input) []Input { return []Input{{}, v, v, v, v, v} }

func TestAggregatesValuesAndNulls(t *testing.T) {
	cfg := Config{Window: time.Minute, Slide: time.Minute, Mode: Update, Keys: 1, Aggs: lengthAggs}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// a: 3, 1, NULL, 8; b: only NULLs; c: one negative.
	e.AddWith(1, []Value{str("a")}, lengthInputs(inI(3)))
	e.AddWith(2, []Value{str("a")}, lengthInputs(inI(1)))
	e.AddWith(3, []Value{str("a")}, lengthInputs(Input{}))
	e.AddWith(4, []Value{str("a")}, lengthInputs(inI(8)))
	e.AddWith(5, []Value{str("b")}, lengthInputs(Input{}))
	e.AddWith(6, []Value{str("c")}, lengthInputs(inI(-7)))
	b := e.RunBatch()
	if len(b.Rows) != 3 {
		t.Fatalf("rows %v", b.Rows)
	}
	want := map[string]string{
		"a": "4 3 12 4.0 1 8",
		"b": "1 0 NULL NULL NULL NULL",
		"c": "1 1 -7 -7.0 -7 -7",
	}
	for _, r := range b.Rows {
		var got []string
		for _, v := range r.Values() {
			got = append(got, v.String())
		}
		if g := strings.Join(got, " "); g != want[r.Keys[0].S] {
			t.Errorf("%s: got %s, want %s", r.Keys[0].S, g, want[r.Keys[0].S])
		}
		if r.States() != nil {
			t.Errorf("a batch's rows carry no state")
		}
	}
	types := []Type{TypeBigInt, TypeBigInt, TypeBigInt, TypeDouble, TypeInt, TypeInt}
	for i, v := range b.Rows[0].Values() {
		if v.Type != types[i] || cfg.Aggs[i].Result() != types[i] {
			t.Errorf("aggregate %d (%v): type %v, want %v", i, cfg.Aggs[i], v.Type, types[i])
		}
	}
	// avg's DOUBLE as Java prints it.
	e.AddWith(7, []Value{str("a")}, lengthInputs(inI(1)))
	b = e.RunBatch()
	if got := b.Rows[0].Values()[3].String(); got != "3.25" { // 13/4: the NULL is not counted
		t.Errorf("avg printed %s, want 3.25", got)
	}
	if got := string(b.Rows[0].Values()[3].AppendJSON(nil)); got != "3.25" {
		t.Errorf("avg as JSON %s", got)
	}
}

func TestSumOverflowIsNull(t *testing.T) {
	e, err := New(Config{Window: time.Minute, Slide: time.Minute, Mode: Update, Keys: 0,
		Aggs: []Aggregate{{Kind: Sum, Input: TypeBigInt}, {Kind: Max, Input: TypeBigInt}}})
	if err != nil {
		t.Fatal(err)
	}
	e.AddWith(1, nil, []Input{inI(math.MaxInt64), inI(math.MaxInt64)})
	e.AddWith(2, nil, []Input{inI(1), inI(1)})
	r := e.RunBatch().Rows[0]
	if v := r.Values(); v[0].Valid || v[1].I != math.MaxInt64 {
		t.Errorf("got %v, want NULL and the maximum", v)
	}
}

func TestApproxCountDistinctIsTheSketch(t *testing.T) {
	for _, rsd := range []float64{0, 0.01} {
		cfg := Config{Window: time.Hour, Slide: 30 * time.Minute, Watermark: time.Minute, Mode: Append, Keys: 1,
			Aggs: []Aggregate{{Kind: ApproxCountDistinct, Input: TypeString, RelativeSD: rsd}, {Kind: Count}}}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := hllpp.PrecisionFor(map[float64]float64{0: 0.05, 0.01: 0.01}[rsd])
		want := map[string]*hllpp.Sketch{}
		r := rand.New(rand.NewPCG(5, 6))
		for i := range 20000 {
			ch := fmt.Sprint("c", i%3)
			id := fmt.Sprint(r.IntN(9000))
			e.AddWith(int64(i)*1000, []Value{str(ch)}, []Input{inS(id), {}})
			if want[ch] == nil {
				want[ch], _ = hllpp.New(p)
			}
			want[ch].AddString(id)
		}
		e.AddWith(int64(20000)*1000, []Value{str("c0")}, []Input{{}, {}}) // NULL: not counted
		e.RunBatch()
		e.AddWith(int64(10*time.Hour/time.Microsecond), []Value{str("x")}, []Input{inS("x"), {}})
		e.RunBatch() // runs with the watermark of the first batch (0)
		rows := e.RunBatch().Rows
		// Windows [-30m, 30m) and [0, 1h) hold every event: both equal the sketch.
		if len(rows) != 6 {
			t.Fatalf("rsd %v: %d rows", rsd, len(rows))
		}
		for _, row := range rows {
			got, w := row.Values()[0].I, want[row.Keys[0].S].Estimate()
			if got != w {
				t.Errorf("rsd %v %v: %d, want %d", rsd, row.Keys, got, w)
			}
			if rsd == 0 && w < 2560 {
				t.Errorf("estimate %d: the test wants the raw estimate's range (above 5m = 2560 at precision 9)", w)
			}
		}
	}
}

func TestAddPanicsWhenAggregatesReadValues(t *testing.T) {
	e, _ := New(Config{Window: time.Minute, Slide: time.Minute, Keys: 0, Aggs: []Aggregate{{Kind: Sum, Input: TypeInt}}})
	defer func() {
		if recover() == nil {
			t.Error("Add did not panic")
		}
	}()
	e.Add(1, nil)
}

func TestConfigValidateAggregatesAndSessions(t *testing.T) {
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{Window: time.Minute, Slide: time.Minute, Aggs: []Aggregate{{Kind: Sum, Input: TypeString}}}, "numeric"},
		{Config{Window: time.Minute, Slide: time.Minute, Aggs: []Aggregate{{Kind: ApproxCountDistinct}}}, "approx_count_distinct over none"},
		{Config{Window: time.Minute, Slide: time.Minute, Aggs: []Aggregate{{Kind: ApproxCountDistinct, Input: TypeString, RelativeSD: 0.5}}}, "too large"},
		{Config{Window: time.Minute, Slide: time.Minute, Aggs: []Aggregate{{Kind: Count, RelativeSD: 0.1}}}, "no relative standard deviation"},
		{Config{Window: time.Minute, Slide: time.Minute, Aggs: []Aggregate{{Kind: 99}}}, "aggregate function 99"},
		{Config{Gap: time.Minute, Mode: Update, Keys: 1}, "use append"},
		{Config{Gap: time.Minute, Mode: Append, Keys: 0}, "at least one group-by column"},
		{Config{Gap: time.Minute, Window: time.Minute, Mode: Append, Keys: 1}, "no window length"},
		{Config{Gap: -time.Minute, Mode: Append, Keys: 1}, "positive"},
		{Config{Gap: time.Nanosecond, Mode: Append, Keys: 1}, "microseconds"},
	}
	for _, c := range bad {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", c.cfg, err, c.want)
		}
	}
	for _, cfg := range []Config{
		{Gap: 10 * time.Minute, Watermark: 10 * time.Minute, Mode: Append, Keys: 1},
		{Gap: 10 * time.Minute, Mode: Complete, Keys: 2, Aggs: lengthAggs},
	} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

// sessionRows prints rows as "[start,end) key count".
func sessionRows(rows []Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "[%d,%d) %s %d;", r.Start, r.End, r.Keys[0].S, r.Count)
	}
	return b.String()
}

func TestSessionsMergeAsSpark(t *testing.T) {
	// Gap 10 (µs), watermark delay 0 ms: µs events, so the watermark moves in
	// whole milliseconds; use ms-scale times.
	const ms = 1000
	cfg := Config{Gap: 10 * time.Millisecond, Watermark: 0, Mode: Append, Keys: 1}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := []Value{str("k")}
	e.Add(0, k)
	e.Add(10*ms, k)   // touches [0,10ms): merges into [0,20ms)
	e.Add(31*ms, k)   // 1 ms past the end: a session of its own
	e.Add(50*ms, k)   // [50,60)
	e.Add(45*ms, k)   // [45,55) overlaps [50,60): [45,60)
	b := e.RunBatch() // watermark moves to 50 ms
	if len(b.Rows) != 0 || e.StateRows() != 3 {
		t.Fatalf("batch 0: %v, %d sessions", b.Rows, e.StateRows())
	}
	// Before the no-data batch evicts: a bridging event between [31,41) and [45,60) in the next batch.
	e.Add(41*ms, k) // [41,51): touches both: one session [31,60)
	up, ev := e.PendingChanges()
	if got := sessionRows(up); got != "[31000,60000) k 4;" {
		t.Errorf("updated %s", got)
	}
	// [45,60) was stored and merged away; [0,20) closes (end <= watermark 50 ms).
	if got := sessionRows(ev); got != "[45000,60000) k 2;[0,20000) k 2;" {
		t.Errorf("evicted %s", got)
	}
	b = e.RunBatch()
	if got := sessionRows(b.Rows); got != "[0,20000) k 2;" {
		t.Errorf("batch 1 emitted %s", got)
	}
	// Late: an event whose own session ends at or before the watermark the
	// previous batch ran with (50 ms) is dropped even though a stored session
	// covers it; 41 ms (ends at 51) is not late, 40 ms would be.
	e.Add(41*ms, k)
	e.Add(39*ms, k)
	e.Add(39*ms, k)
	b = e.RunBatch()
	if b.Late != 1 || b.Input != 3 {
		t.Errorf("late %d input %d, want 1 (distinct (key, ts)) and 3", b.Late, b.Input)
	}
	if got := sessionRows(e.Rows()); got != "[31000,60000) k 5;" {
		t.Errorf("state %s", got)
	}
	e.Add(100*ms, []Value{str("z")})
	b = e.RunBatch()
	if !e.NeedsNoDataBatch() {
		t.Error("no no-data batch due after the watermark moved")
	}
	b = e.RunBatch()
	if got := sessionRows(b.Rows); got != "[31000,60000) k 5;" {
		t.Errorf("closing batch emitted %s", got)
	}
}

func TestSessionsCompleteModeKeepsAllAndDropsLate(t *testing.T) {
	const ms = 1000
	e, err := New(Config{Gap: 10 * time.Millisecond, Mode: Complete, Keys: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Add(0, []Value{str("a")})
	e.Add(100*ms, []Value{str("b")})
	e.RunBatch()
	e.RunBatch()                   // runs with the watermark 100 ms
	e.Add(5*ms, []Value{str("a")}) // ends at 15 ms <= watermark 100 ms: late, as Spark drops it in complete mode too
	b := e.RunBatch()
	if b.Late != 1 || sessionRows(b.Rows) != "[0,10000) a 1;[100000,110000) b 1;" {
		t.Errorf("late %d rows %s", b.Late, sessionRows(b.Rows))
	}
	if e.NeedsNoDataBatch() {
		t.Error("complete mode runs no no-data batch")
	}
}

// TestSnapshotRestoresAggregatesAndSessions runs random events through an
// engine and, after every batch, through an engine restored from the
// first's snapshot (through the row-state encoding): both must emit the
// same rows from then on.
func TestSnapshotRestoresAggregatesAndSessions(t *testing.T) {
	aggs := append([]Aggregate{{Kind: ApproxCountDistinct, Input: TypeString}}, lengthAggs...)
	cfgs := []Config{
		{Window: time.Minute, Slide: 30 * time.Second, Watermark: 20 * time.Second, Mode: Update, Keys: 1, Aggs: aggs},
		{Window: time.Minute, Slide: time.Minute, Watermark: 20 * time.Second, Mode: Append, Keys: 1, Aggs: aggs},
		{Gap: 20 * time.Second, Watermark: 20 * time.Second, Mode: Append, Keys: 1, Aggs: aggs},
		{Gap: 20 * time.Second, Watermark: 10 * time.Second, Mode: Complete, Keys: 1},
	}
	for ci, cfg := range cfgs {
		r := rand.New(rand.NewPCG(uint64(ci), 9))
		a, _ := New(cfg)
		now := int64(0)
		for batch := range 30 {
			for range r.IntN(40) {
				ts := now + int64(r.IntN(40_000_000)) - 30_000_000
				in := make([]Input, len(cfg.Aggs))
				if len(in) > 0 {
					in[0] = inS(fmt.Sprint(r.IntN(50)))
					copy(in[1:], lengthInputs(inI(int64(r.IntN(100)))))
					if r.IntN(5) == 0 {
						copy(in[1:], lengthInputs(Input{}))
					}
					a.AddWith(ts, []Value{str(fmt.Sprint("k", r.IntN(4)))}, in)
				} else {
					a.Add(ts, []Value{str(fmt.Sprint("k", r.IntN(4)))})
				}
			}
			now += int64(r.IntN(15_000_000))
			want := a.RunBatch()
			// Restore a copy through the encoding and check the next batches agree.
			b, _ := New(cfg)
			var rows []Row
			for _, row := range a.Rows() {
				enc, err := cfg.AppendRowState(nil, &row)
				if err != nil {
					t.Fatal(err)
				}
				got := Row{Start: row.Start, Keys: row.Keys}
				if err := cfg.DecodeRowState(enc, &got); err != nil {
					t.Fatalf("config %d batch %d: %v", ci, batch, err)
				}
				rows = append(rows, got)
			}
			if err := b.Restore(a.Progress(), rows); err != nil {
				t.Fatalf("config %d batch %d: restore: %v", ci, batch, err)
			}
			if !reflect.DeepEqual(sessionRows(b.Rows()), sessionRows(a.Rows())) {
				t.Fatalf("config %d batch %d: restored state differs", ci, batch)
			}
			_ = want
			// One more batch on both, with the same events.
			ts := now - 5_000_000
			in := make([]Input, len(cfg.Aggs))
			if len(in) > 0 {
				in[0] = inS("new")
				copy(in[1:], lengthInputs(inI(3)))
			}
			for _, e := range []*Engine{a, b} {
				if len(in) > 0 {
					e.AddWith(ts, []Value{str("k1")}, in)
				} else {
					e.Add(ts, []Value{str("k1")})
				}
			}
			ra, rb := a.RunBatch(), b.RunBatch()
			if !reflect.DeepEqual(ra, rb) {
				t.Fatalf("config %d batch %d: restored engine emitted\n%+v\nwant\n%+v", ci, batch, rb, ra)
			}
		}
	}
}

func TestRowStateEncoding(t *testing.T) {
	// A count-only query writes and reads decimal counts, as before.
	seed := seedConfig
	r := Row{Start: 30_000_000, Count: 42}
	enc, err := seed.AppendRowState(nil, &r)
	if err != nil || string(enc) != "42" {
		t.Fatalf("count-only state %q, %v", enc, err)
	}
	var got Row
	got.Start = 30_000_000
	if err := seed.DecodeRowState([]byte("17"), &got); err != nil || got.Count != 17 || got.End != 90_000_000 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	// An old count-only state does not restore into a query with other aggregates.
	agg := Config{Window: time.Minute, Slide: time.Minute, Keys: 1, Aggs: lengthAggs}
	if err := agg.DecodeRowState([]byte("17"), &got); err == nil || !strings.Contains(err.Error(), "new state") {
		t.Errorf("old state into a new query: %v", err)
	}
	for _, bad := range []string{"", "x", "\x01", "\x01\x05", "\x01\x05\x05\x00\x00\x02", "\x02abc"} {
		if err := agg.DecodeRowState([]byte(bad), &got); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// FuzzDecodeRowState: any bytes decode to a state Restore accepts or
// refuses with an error, never a panic.
func FuzzDecodeRowState(f *testing.F) {
	aggs := append([]Aggregate{{Kind: ApproxCountDistinct, Input: TypeString}}, lengthAggs...)
	cfgs := []Config{
		{Window: time.Minute, Slide: time.Minute, Watermark: time.Minute, Mode: Append, Keys: 1, Aggs: aggs},
		{Gap: time.Minute, Watermark: time.Minute, Mode: Append, Keys: 1, Aggs: aggs},
		seedConfig,
	}
	e, _ := New(cfgs[0])
	in := append([]Input{inS("x")}, lengthInputs(inI(4))...)
	e.AddWith(5, []Value{str("k")}, in)
	e.AddWith(6, []Value{str("k")}, in)
	for _, r := range e.Rows() {
		enc, _ := cfgs[0].AppendRowState(nil, &r)
		f.Add(enc)
	}
	f.Add([]byte("12"))
	f.Fuzz(func(t *testing.T, v []byte) {
		for _, cfg := range cfgs {
			r := Row{Start: 60_000_000, Keys: []Value{str("k")}}
			if err := cfg.DecodeRowState(v, &r); err != nil {
				continue
			}
			e, _ := New(cfg)
			if err := e.Restore(Progress{}, []Row{r}); err != nil {
				continue
			}
			e.RunBatch()
		}
	})
}

// TestAddPartialIsAddOfEach: events aggregated outside the engine (as
// another instance would: per slot of windows and key, or per event time
// and key for sessions) give the batches adding each event gives.
func TestAddPartialIsAddOfEach(t *testing.T) {
	aggs := append([]Aggregate{{Kind: ApproxCountDistinct, Input: TypeString}}, lengthAggs...)
	cfgs := []Config{
		{Window: time.Minute, Slide: 30 * time.Second, Watermark: 10 * time.Second, Mode: Update, Keys: 1, Aggs: aggs},
		{Window: 90 * time.Second, Slide: time.Minute, Watermark: 10 * time.Second, Mode: Append, Keys: 1, Aggs: aggs},
		{Window: time.Minute, Slide: time.Minute, Watermark: 10 * time.Second, Mode: Complete, Keys: 1},
		{Gap: 20 * time.Second, Watermark: 10 * time.Second, Mode: Append, Keys: 1, Aggs: aggs},
	}
	for ci, cfg := range cfgs {
		r := rand.New(rand.NewPCG(uint64(ci), 77))
		each, _ := New(cfg)
		part, _ := New(cfg)
		size, slide := int64(cfg.Window/time.Microsecond), int64(cfg.Slide/time.Microsecond)
		now := int64(1_000_000_000)
		rows, late := 0, int64(0)
		for batch := range 25 {
			type pk struct {
				slot string
				key  string
			}
			type partial struct {
				ts int64
				n  int64
				st []AggState
			}
			parts := map[pk]*partial{}
			var order []pk
			for range r.IntN(60) {
				// Sessions group by exact time: few distinct times.
				ts := now + int64(r.IntN(70))*1_000_000 - 60_000_000
				k := fmt.Sprint("k", r.IntN(3))
				in := make([]Input, len(cfg.Aggs))
				if len(in) > 0 {
					in[0] = inS(fmt.Sprint(r.IntN(30)))
					copy(in[1:], lengthInputs(inI(int64(r.IntN(50)))))
					each.AddWith(ts, []Value{str(k)}, in)
				} else {
					each.Add(ts, []Value{str(k)})
				}
				var slot string
				if cfg.Gap != 0 {
					slot = fmt.Sprint(ts)
				} else {
					end := cfg.WindowEnd(ts)
					slot = fmt.Sprint(end-size, "/", (end-ts+slide-1)/slide)
				}
				p := parts[pk{slot, k}]
				if p == nil {
					p = &partial{ts: ts, st: cfg.NewStates()}
					parts[pk{slot, k}] = p
					order = append(order, pk{slot, k})
				}
				p.ts = max(p.ts, ts)
				p.n++
				if len(in) > 0 {
					one := cfg.NewStates()
					cfg.UpdateStates(one, in)
					cfg.MergeStates(p.st, one)
				}
			}
			for _, k := range order {
				p := parts[k]
				part.AddPartial(p.ts, []Value{str(k.key)}, p.n, p.st)
			}
			now += int64(r.IntN(20_000_000))
			if batch%5 == 4 {
				now += 120_000_000 // a pause: sessions close
			}
			a, b := each.RunBatch(), part.RunBatch()
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("config %d batch %d: partials gave\n%+v\nadding each gave\n%+v", ci, batch, b, a)
			}
			rows += len(a.Rows)
			late += a.Late
		}
		if rows == 0 || late == 0 && cfg.Mode != Complete {
			t.Errorf("config %d: %d rows, %d late: the test compares too little", ci, rows, late)
		}
	}
}

// TestSessionsAreTheUnionOfAcceptedEvents: in complete mode nothing is
// evicted, so after every batch the sessions held are exactly the merged
// intervals [ts, ts+gap) of every event accepted so far (touching ones
// merged), computed here from scratch, and the counts are the events in
// each.
func TestSessionsAreTheUnionOfAcceptedEvents(t *testing.T) {
	const gap = 10_000_000
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 3))
		e, err := New(Config{Gap: gap * time.Microsecond, Watermark: 5 * time.Second, Mode: Complete, Keys: 1})
		if err != nil {
			t.Fatal(err)
		}
		accepted := map[string][]int64{}
		now := int64(0)
		for batch := range 30 {
			wmLate := e.Progress().WatermarkForLate
			for range r.IntN(30) {
				// Whole seconds and some exact gap multiples: touching sessions.
				ts := now + int64(r.IntN(60))*1_000_000 - 40_000_000
				k := fmt.Sprint("k", r.IntN(3))
				e.Add(ts, []Value{str(k)})
				if ts+gap > wmLate {
					accepted[k] = append(accepted[k], ts)
				}
			}
			now += int64(r.IntN(15)) * 1_000_000
			e.RunBatch()
			var want []string
			for k, tss := range accepted {
				s := slices.Clone(tss)
				slices.Sort(s)
				start, end, n := s[0], s[0]+gap, int64(0)
				for _, ts := range s {
					if ts > end {
						want = append(want, fmt.Sprintf("[%d,%d) %s %d;", start, end, k, n))
						start, n = ts, 0
					}
					end = max(end, ts+gap)
					n++
				}
				want = append(want, fmt.Sprintf("[%d,%d) %s %d;", start, end, k, n))
			}
			var got []string
			for _, row := range e.Rows() {
				got = append(got, sessionRows([]Row{row}))
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d batch %d: sessions\n%v\nwant\n%v", seed, batch, got, want)
			}
		}
	}
}
