package analyzer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

// testMsg is one generated input message.
type testMsg struct {
	id, author string // id "" means no message_id
	ts         int64  // µs
	kind       chat.Kind
}

func (m testMsg) encode() []byte {
	msg := chat.Message{Kind: m.kind, MessageID: m.id, ChannelID: "c1", AuthorID: chat.Ptr("id-" + m.author),
		AuthorName: chat.Ptr(m.author), Content: chat.Ptr("hi"), Timestamp: time.UnixMicro(m.ts).UTC()}
	if m.id == "" {
		msg.MessageID = ""
	}
	b, err := chat.Encode(&msg)
	if err != nil {
		panic(err)
	}
	return b
}

var testBase = time.Date(2025, 11, 7, 18, 0, 0, 0, time.UTC).UnixMicro()

// genMessages makes n messages per partition with event times moving
// forward by up to stepMs (with jitter), some re-sent (same id: a duplicate),
// some far behind (late), some without id, some edits (not counted).
func genMessages(rng *rand.Rand, parts int32, n int, stepMs int64, authors int) map[int32][]testMsg {
	out := map[int32][]testMsg{}
	seq := 0
	for p := range parts {
		now := testBase
		var sent []testMsg
		for range n {
			now += rng.Int64N(stepMs * 1000)
			m := testMsg{id: fmt.Sprintf("m%d", seq), author: fmt.Sprintf("a%d", rng.IntN(authors)), ts: now - rng.Int64N(3_000_000), kind: chat.KindCreate}
			seq++
			switch r := rng.IntN(100); {
			case r < 5 && len(sent) > 0: // a duplicate of a recent message
				m = sent[len(sent)-1-rng.IntN(min(len(sent), 20))]
			case r < 7:
				m.id = ""
			case r < 8:
				m.kind = chat.KindUpdate
			case r < 9:
				m.ts -= 10 * 60_000_000 // ten minutes late
			}
			sent = append(sent, m)
			out[p] = append(out[p], m)
		}
	}
	return out
}

// bruteCounts counts, per (window start, author), the create messages with
// distinct ids (all of those without one) whose event time is not older
// than lateBefore, as the seed's query with de-duplication does when
// nothing else is late.
func bruteCounts(msgs map[int32][]testMsg, dedup bool, lateBefore int64) map[string]int64 {
	out := map[string]int64{}
	seen := map[string]bool{}
	for p := int32(0); p < int32(len(msgs)); p++ {
		for _, m := range msgs[p] {
			if m.kind != chat.KindCreate || m.ts < lateBefore {
				continue
			}
			if dedup && m.id != "" {
				if seen[m.id] {
					continue
				}
				seen[m.id] = true
			}
			last := m.ts - ((m.ts%30_000_000)+30_000_000)%30_000_000
			out[fmt.Sprintf("%d/%s", last, m.author)]++
			out[fmt.Sprintf("%d/%s", last-30_000_000, m.author)]++
		}
	}
	return out
}

// finalCounts keeps the last count emitted for every (window, key).
func finalCounts(batches []window.Batch) map[string]int64 {
	out := map[string]int64{}
	for _, b := range batches {
		for _, r := range b.Rows {
			out[fmt.Sprintf("%d/%s", r.Start, r.Keys[0].S)] = r.Count
		}
	}
	return out
}

func fillCluster(c *memCluster, msgs map[int32][]testMsg) {
	for p := int32(0); p < int32(len(msgs)); p++ {
		for _, m := range msgs[p] {
			c.produce(p, m.encode())
		}
	}
}

func allParts(n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// drive runs batches until none runs (available-now) and returns every
// batch written.
func drive(t *testing.T, a *Analyzer) {
	t.Helper()
	for range 100000 {
		ran, err := a.step(context.Background())
		if err != nil {
			t.Fatalf("step: %v", err)
		}
		if !ran {
			return
		}
	}
	t.Fatal("drive: no end")
}

func durableQuery() Config {
	cfg := seedQuery()
	cfg.AvailableNow = true
	cfg.Dedup = true
	return cfg
}

// A query that crashes at random moments (before its commit, after it, or
// has its batch rolled back by a rebalance) and restarts from the durable
// state commits exactly the batches an uninterrupted run does: same ids,
// same rows, same watermarks.
func TestDurableRestartsContinueExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := genMessages(rng, 2, 1500, 40, 7)
	cfg := durableQuery()

	ref := newMemCluster(2, 3)
	fillCluster(ref, msgs)
	rs := newFakeDurable(ref, 50)
	rs.assign(allParts(2), allParts(3))
	want := &recordingOutput{}
	drive(t, newTestAnalyzer(t, cfg, Deps{Source: rs, Outputs: []Output{want}}))
	if len(want.batches) < 50 {
		t.Fatalf("reference ran %d batches, want many", len(want.batches))
	}

	c := newMemCluster(2, 3)
	fillCluster(c, msgs)
	var committed []window.Batch
	crashes, rollbacks := 0, 0
	for run := 0; ; run++ {
		if run > 1000 {
			t.Fatal("no end")
		}
		src := newFakeDurable(c, 50)
		src.assign(allParts(2), allParts(3))
		var pending []window.Batch
		failAt := -1
		if rng.IntN(2) == 0 {
			failAt = rng.IntN(6)
		}
		calls := 0
		out := outputFunc(func(_ context.Context, b *window.Batch) error {
			calls++
			if calls-1 == failAt {
				return errors.New("crash before the commit")
			}
			c := *b
			c.Rows = append([]window.Row(nil), b.Rows...)
			pending = append(pending, c)
			return nil
		})
		a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}})
		stopAfter := 1 + rng.IntN(8) // batches before a crash after a commit
		done := false
		for i := 0; ; i++ {
			if rng.IntN(10) == 0 {
				src.rollbackNext = true
			}
			before := src.commits
			rolledBack := src.rollbackNext
			ran, err := a.step(context.Background())
			if err != nil {
				crashes++
				break
			}
			if !ran {
				done = true
				break
			}
			if src.commits > before {
				committed = append(committed, pending...)
			} else if rolledBack {
				rollbacks++
			}
			pending = nil
			if i+1 == stopAfter {
				crashes++
				break
			}
		}
		if done {
			break
		}
	}
	if crashes < 10 || rollbacks < 3 {
		t.Fatalf("only %d crashes and %d rollbacks: the test exercised too little", crashes, rollbacks)
	}
	if len(committed) != len(want.batches) {
		t.Fatalf("committed %d batches, the uninterrupted run %d", len(committed), len(want.batches))
	}
	for i := range committed {
		if !reflect.DeepEqual(committed[i], want.batches[i]) {
			t.Fatalf("batch %d after %d crashes and %d rollbacks:\n got  %+v\n want %+v", i, crashes, rollbacks, committed[i], want.batches[i])
		}
	}
	t.Logf("%d batches, identical after %d crashes and %d rollbacks", len(committed), crashes, rollbacks)
}

// A batch rolled back maxRollbacksInRow times in a row stops the query with
// an error instead of being retried forever; one commit starts the count
// again, and the batches rolled back fewer times end as an uninterrupted
// run does.
func TestRunStopsAfterRollbacksInARow(t *testing.T) {
	msgs := genMessages(rand.New(rand.NewPCG(5, 6)), 1, 300, 40, 5)
	run := func(rollBack func(call int) bool) ([]window.Batch, *fakeDurable, error) {
		c := newMemCluster(1, 1)
		fillCluster(c, msgs)
		src := newFakeDurable(c, 50)
		src.assign(allParts(1), allParts(1))
		src.rollBack = rollBack
		out := &recordingOutput{}
		a := newTestAnalyzer(t, durableQuery(), Deps{Source: src, Outputs: []Output{out}, Stderr: io.Discard})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := a.Run(ctx)
		// A rolled-back batch was written before its commit failed: keep
		// the last writing of each batch, the one that committed.
		var last []window.Batch
		for _, b := range out.batches {
			if n := len(last); n > 0 && last[n-1].ID == b.ID {
				last[n-1] = b
			} else {
				last = append(last, b)
			}
		}
		return last, src, err
	}
	want, _, err := run(nil)
	if err != nil || len(want) < 5 {
		t.Fatalf("uninterrupted: %d batches, err %v", len(want), err)
	}

	_, src, err := run(func(int) bool { return true })
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("rolled back %d times in a row", maxRollbacksInRow)) {
		t.Fatalf("every commit rolled back: err %v, want a stop after %d rollbacks", err, maxRollbacksInRow)
	}
	if src.calls != maxRollbacksInRow || src.commits != 0 {
		t.Fatalf("every commit rolled back: %d commit calls, %d commits; want %d calls, none committed", src.calls, src.commits, maxRollbacksInRow)
	}

	for name, rollBack := range map[string]func(int) bool{
		"one short of the limit, once":   func(call int) bool { return call < maxRollbacksInRow-1 },
		"one short of the limit, always": func(call int) bool { return call%maxRollbacksInRow != maxRollbacksInRow-1 },
	} {
		got, src, err := run(rollBack)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if src.calls <= maxRollbacksInRow {
			t.Fatalf("%s: only %d commit calls", name, src.calls)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %d batches differ from the uninterrupted run's %d", name, len(got), len(want))
		}
	}
}

// De-duplication: a message_id is counted once within the horizon, records
// without one are always counted, and the ids are forgotten once the
// watermark passes their windows.
func TestDurableDedup(t *testing.T) {
	mk := func(id, author string, sec int64) []byte {
		return testMsg{id: id, author: author, ts: testBase + sec*1_000_000, kind: chat.KindCreate}.encode()
	}
	tests := []struct {
		name  string
		dedup bool
		want  map[string]int64
	}{
		{"on", true, map[string]int64{"alice": 3, "bob": 1}},
		{"off", false, map[string]int64{"alice": 4, "bob": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newMemCluster(1, 1)
			for _, v := range [][]byte{
				mk("1", "alice", 1), mk("2", "bob", 2), mk("1", "alice", 1), // a duplicate
				mk("", "alice", 3), mk("", "alice", 3), // no id: both count
				mk("2", "bob", 2), // a duplicate in a later batch
			} {
				c.produce(0, v)
			}
			src := newFakeDurable(c, 3)
			src.assign([]int32{0}, []int32{0})
			cfg := durableQuery()
			cfg.Dedup = tt.dedup
			out := &recordingOutput{}
			a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}})
			drive(t, a)
			got := map[string]int64{}
			for k, n := range finalCounts(out.batches) {
				if strings.HasPrefix(k, fmt.Sprint(testBase-30_000_000)) {
					continue // the earlier window counts the same
				}
				got[k[strings.Index(k, "/")+1:]] = n
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("counts %v, want %v", got, tt.want)
			}
			if tt.dedup {
				if d := a.m.duplicates.Value(); d != 2 {
					t.Errorf("duplicates metric %v, want 2", d)
				}
			}
		})
	}

	// The ids are forgotten as the watermark moves on: an hour of messages
	// leaves only the last minutes' ids in memory and in the state topic.
	c := newMemCluster(1, 1)
	for i := range int64(3600) {
		c.produce(0, mk(fmt.Sprint(i), "alice", i))
	}
	src := newFakeDurable(c, 100)
	src.assign([]int32{0}, []int32{0})
	a := newTestAnalyzer(t, durableQuery(), Deps{Source: src, Outputs: []Output{&recordingOutput{}}})
	drive(t, a)
	if n := a.dur.inputs[0].idCount(); n > 400 {
		t.Errorf("%d ids remembered after an hour of messages, one a second: want only those within the horizon", n)
	}
	kept := 0
	for k := range c.state[InputState][0] {
		if strings.HasPrefix(k, "d/") {
			kept++
		}
	}
	if kept > 10 {
		t.Errorf("%d de-duplication records left in the state topic, want only the last few", kept)
	}
	// A duplicate of a message whose windows closed is not counted again.
	c.produce(0, mk("5", "alice", 5))
	c.produce(0, mk("new", "alice", 3601))
	out := &recordingOutput{}
	a.d.Outputs = []Output{out}
	drive(t, a)
	for _, b := range out.batches {
		for _, r := range b.Rows {
			if r.Start < testBase+3000*1_000_000 {
				t.Errorf("row %+v: a late duplicate changed a closed window", r)
			}
		}
	}
}

// Without a durable source de-duplication works in memory.
func TestMemoryDedup(t *testing.T) {
	src := &fakeSource{topic: "in", limit: 2}
	for _, m := range []testMsg{{"1", "alice", testBase, chat.KindCreate}, {"1", "alice", testBase, chat.KindCreate}, {"2", "alice", testBase, chat.KindCreate}} {
		src.add(m.encode())
	}
	src.avail = len(src.records)
	out := &recordingOutput{}
	cfg := durableQuery()
	a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{out}})
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := finalCounts(out.batches)[fmt.Sprintf("%d/alice", testBase)]; got != 2 {
		t.Errorf("alice counted %d times, want 2 (one duplicate dropped)", got)
	}
}

// Two instances share the partitions; keys are counted by the instance that
// owns their shuffle partition, records of other instances' keys go through
// the repartition topic. Partitions move between them (and a batch is rolled
// back) while they run: the totals are exact.
func TestDurableInstancesShareTheWork(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	msgs := genMessages(rng, 4, 800, 15, 11) // about 12 s of event time: nothing is late
	for p := range msgs {                    // no ten-minute-late messages here
		for i := range msgs[p] {
			if msgs[p][i].ts < testBase-60_000_000 {
				msgs[p][i].ts += 10 * 60_000_000
			}
		}
	}
	c := newMemCluster(4, 4)
	fillCluster(c, msgs)
	cfg := durableQuery()
	var all []window.Batch
	out := outputFunc(func(_ context.Context, b *window.Batch) error {
		c := *b
		c.Rows = append([]window.Row(nil), b.Rows...)
		all = append(all, c)
		return nil
	})
	srcA, srcB := newFakeDurable(c, 40), newFakeDurable(c, 40)
	srcA.assign([]int32{0, 1}, []int32{0, 1})
	srcB.assign([]int32{2, 3}, []int32{2, 3})
	a := newTestAnalyzer(t, cfg, Deps{Source: srcA, Outputs: []Output{out}})
	b := newTestAnalyzer(t, cfg, Deps{Source: srcB, Outputs: []Output{out}})
	step := func(an *Analyzer) bool {
		committedBefore := len(all)
		ran, err := an.step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_ = committedBefore
		return ran
	}
	for i := 0; i < 60; i++ {
		step(a)
		step(b)
		switch i {
		case 10: // b takes over input 1 and shuffle 1
			srcA.assign([]int32{0}, []int32{0})
			srcB.assign([]int32{1, 2, 3}, []int32{1, 2, 3})
		case 20:
			srcB.rollbackNext = true
		case 30: // and gives shuffle 2 and input 3 back
			srcB.assign([]int32{1, 2}, []int32{1, 3})
			srcA.assign([]int32{0, 3}, []int32{0, 2})
		}
	}
	for i := 0; i < 50; i++ {
		ra, rb := step(a), step(b)
		if !ra && !rb {
			break
		}
	}
	if n := len(c.repart[0]) + len(c.repart[1]) + len(c.repart[2]) + len(c.repart[3]); n == 0 {
		t.Fatal("nothing went through the repartition topic")
	}
	// Rows of a rolled-back batch were written (non-transactional output);
	// its re-run writes the same counts or higher, so the last count of
	// every row is still the total.
	got, want := finalCounts(all), bruteCounts(msgs, true, testBase-60_000_000)
	if !reflect.DeepEqual(got, want) {
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %d, want %d", k, got[k], w)
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %d, want none", k, g)
			}
		}
	}
	if a.m.repartOut.Value()+b.m.repartOut.Value() == 0 || a.m.repartIn.Value()+b.m.repartIn.Value() == 0 {
		t.Error("repartition metrics did not move")
	}
}

// State written by another query is refused with a hint.
func TestDurableRefusesAnotherQuerysState(t *testing.T) {
	c := newMemCluster(1, 1)
	c.produce(0, testMsg{id: "1", author: "a", ts: testBase, kind: chat.KindCreate}.encode())
	src := newFakeDurable(c, 0)
	src.assign([]int32{0}, []int32{0})
	drive(t, newTestAnalyzer(t, durableQuery(), Deps{Source: src, Outputs: []Output{&recordingOutput{}}}))

	other := durableQuery()
	other.Window = 2 * time.Minute
	src = newFakeDurable(c, 0)
	src.assign([]int32{0}, []int32{0})
	a := newTestAnalyzer(t, other, Deps{Source: src, Outputs: []Output{&recordingOutput{}}})
	_, err := a.step(context.Background())
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "window=1m0s") || se.Hint() == "" {
		t.Fatalf("step: %v, want a StateError naming the other query, with a hint", err)
	}
}

// One instance with durable state computes what the stateless query (the
// engine alone, Spark's semantics) computes, batch for batch: with
// de-duplication off on the same input, and with it on on the input whose
// duplicates are replaced by records that are not counted (edits).
func TestDurableSingleInstanceIsSparkExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	msgs := genMessages(rng, 1, 3000, 300, 9) // minutes of event time: late rows and eviction happen
	for _, dedup := range []bool{false, true} {
		t.Run(fmt.Sprint("dedup=", dedup), func(t *testing.T) {
			cfg := durableQuery()
			cfg.Dedup = dedup
			c := newMemCluster(1, 2)
			fillCluster(c, msgs)
			src := newFakeDurable(c, 37)
			src.assign([]int32{0}, []int32{0, 1})
			got := &recordingOutput{}
			a := newTestAnalyzer(t, cfg, Deps{Source: src, Outputs: []Output{got}})
			drive(t, a)

			plain := &fakeSource{topic: "in", limit: 37}
			seen := map[string]bool{}
			for _, m := range msgs[0] {
				if dedup && m.kind == chat.KindCreate && m.id != "" {
					if seen[m.id] {
						m.kind = chat.KindUpdate
					}
					seen[m.id] = true
				}
				plain.add(m.encode())
			}
			plain.avail = len(plain.records)
			stateless := cfg
			stateless.Dedup = false
			want := &recordingOutput{}
			if err := newTestAnalyzer(t, stateless, Deps{Source: plain, Outputs: []Output{want}}).Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(got.batches) != len(want.batches) {
				t.Fatalf("%d batches, the stateless query %d", len(got.batches), len(want.batches))
			}
			late := 0
			for i := range got.batches {
				if !reflect.DeepEqual(got.batches[i], want.batches[i]) {
					t.Fatalf("batch %d:\n got  %+v\n want %+v", i, got.batches[i], want.batches[i])
				}
				late += int(got.batches[i].Late)
			}
			if late == 0 {
				t.Error("no late rows: the test does not exercise the watermark")
			}
		})
	}
}

// Events with the same slot belong to exactly the same windows, so a
// partial count can stand for all of them (also when the window length is
// not a multiple of the slide).
func TestSlotOfGroupsEventsOfTheSameWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		slide := time.Duration(1+rng.IntN(9)) * time.Second
		size := slide*time.Duration(1+rng.IntN(4)) + time.Duration(rng.IntN(int(slide/time.Millisecond)))*time.Millisecond
		cfg := seedQuery()
		cfg.Window, cfg.Slide = size, slide
		d := newMemoryState(cfg)
		windows := func(ts int64) string {
			var out []string
			sz, sl := int64(size/time.Microsecond), int64(slide/time.Microsecond)
			for s := (ts/sl - int64(size/slide) - 2) * sl; s <= ts; s += sl {
				if s <= ts && ts < s+sz {
					out = append(out, fmt.Sprint(s))
				}
			}
			return strings.Join(out, ",")
		}
		type slot struct {
			last int64
			n    int
		}
		seen := map[slot]string{}
		for range 500 {
			ts := testBase + rng.Int64N(int64(20*slide/time.Microsecond))
			last, n := d.slotOf(ts)
			w := windows(ts)
			if got := strings.Count(w, ",") + 1; got != n {
				t.Fatalf("size %v slide %v ts %d: slot says %d windows, the event is in %d (%s)", size, slide, ts, n, got, w)
			}
			if prev, ok := seen[slot{last, n}]; ok && prev != w {
				t.Fatalf("size %v slide %v: slot (%d, %d) holds events of windows %s and %s", size, slide, last, n, prev, w)
			}
			seen[slot{last, n}] = w
		}
	}
}

// Message ids are kept as numbers only when the number names exactly one
// id: "7" and "007" stay different ids, and the stored JSON gives back the
// strings that came in.
func TestDedupIDs(t *testing.T) {
	ids := []string{"0", "7", "007", "1442323862181007360", "18446744073709551615", "18446744073709551616",
		"99999999999999999999", "-1", "+1", "1e3", " 1", "é", "a\"b\\c", "\u2028"}
	set := newIDSet(0, false)
	var list []dedupID
	for _, s := range ids {
		id := toDedupID(s)
		if set.has(id) {
			t.Errorf("%q: already in the set before it was added", s)
		}
		set.add(id)
		list = append(list, id)
	}
	if set.len() != len(ids) {
		t.Errorf("set holds %d ids, want %d", set.len(), len(ids))
	}
	for _, s := range []string{"7", "18446744073709551615"} {
		if id := toDedupID(s); id.s != "" {
			t.Errorf("%q kept as a string, want a number", s)
		}
	}
	for _, s := range []string{"007", "18446744073709551616", "-1"} {
		if id := toDedupID(s); id.s != s {
			t.Errorf("%q kept as %+v, want the string", s, id)
		}
	}
	var strs []string
	var nums []uint64
	for _, id := range list {
		if id.s != "" {
			strs = append(strs, id.s)
		} else {
			nums = append(nums, id.n)
		}
	}
	slices.Sort(nums)
	for _, max := range []int{1, 30, 1 << 20} {
		var back []string
		for rest := strs; len(rest) > 0; {
			v, n := appendIDsChunk(nil, rest, max)
			if n < 1 || (n > 1 && len(v) > max) {
				t.Fatalf("max %d: a chunk of %d ids in %d bytes", max, n, len(v))
			}
			var got []string
			if err := json.Unmarshal(v, &got); err != nil || len(got) != n {
				t.Fatalf("max %d: stored ids %s are not a JSON array of %d strings: %v", max, v, n, err)
			}
			back = append(back, got...)
			rest = rest[n:]
		}
		if !slices.Equal(back, strs) {
			t.Errorf("max %d: stored ids read back as %q, want %q", max, back, strs)
		}
		var backNums []uint64
		for rest := nums; len(rest) > 0; {
			v, n := appendNumChunk(nil, rest, max)
			if n < 1 || (n > 1 && len(v) > max) {
				t.Fatalf("max %d: a chunk of %d numeric ids in %d bytes", max, n, len(v))
			}
			got := 0
			if err := decodeIDs(v, func(id dedupID) {
				if id.s != "" {
					t.Errorf("numeric chunk gave the string id %q", id.s)
				}
				backNums = append(backNums, id.n)
				got++
			}); err != nil || got != n {
				t.Fatalf("max %d: numeric chunk % x: %d ids, want %d: %v", max, v, got, n, err)
			}
			rest = rest[n:]
		}
		if !slices.Equal(backNums, nums) {
			t.Errorf("max %d: stored numeric ids read back as %v, want %v", max, backNums, nums)
		}
	}
}

// A window row's key is the same bytes as encoding/json writes (as earlier
// versions wrote it): compaction and tombstones match keys byte for byte.
func TestRowKeyAsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	strs := []string{"", "alice", `a"b\c`, "<script>&amp;", "\u2028\u2029", "\x00\x1f\x7f", "é 李 🦊", "\xff\xfe bad utf-8 \xc3", "tab\tnew\nline\r"}
	for range 2000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		strs = append(strs, string(b))
	}
	for i, s := range strs {
		keys := []window.Value{{S: s, Valid: true}, {}, {S: strs[(i*7)%len(strs)], Valid: true}}
		row := window.Row{Start: int64(i) * 30_000_000, Keys: keys}
		k, err := json.Marshal(jsonKeys(keys))
		if err != nil {
			t.Fatal(err)
		}
		want := "w/" + strconv.FormatInt(row.Start, 10) + "/" + string(k)
		if got := string(rowKey(row)); got != want {
			t.Fatalf("keys %q: row key %q, encoding/json gives %q", s, got, want)
		}
	}
}
