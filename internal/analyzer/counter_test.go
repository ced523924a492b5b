package analyzer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cordstream/cordstream/internal/window"
)

// TestCounterCopiesKeys: the counter copies the keys' text, so the caller
// may reuse the buffer its keys alias as soon as add returns (as the reading
// goroutine's records are reused), and keys of any length, NULLs and empty
// strings are counted as given.
func TestCounterCopiesKeys(t *testing.T) {
	eng, err := window.New(window.Config{Window: time.Minute, Slide: time.Minute, Mode: window.Complete, Keys: 2})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"", "a", "author-7", strings.Repeat("long", 10_000), "ação", strings.Repeat("x", 300)}
	want := map[string]int64{}
	buf := make([]byte, 0, 1<<17) // the text the keys alias, overwritten after each add
	cnt := startCounting(eng, 2)
	for range 3_000 {
		ts := int64(rng.IntN(3)) * int64(time.Minute/time.Microsecond)
		n := int64(1 + rng.IntN(3))
		var keys [2]window.Value
		var ks [2]string
		buf = buf[:0]
		for j := range keys {
			if rng.IntN(10) == 0 {
				ks[j] = "NULL"
				continue
			}
			s := names[rng.IntN(len(names))]
			at := len(buf)
			buf = append(buf, s...)
			keys[j] = window.Value{S: unsafe.String(unsafe.SliceData(buf[at:]), len(s)), Valid: true}
			ks[j] = fmt.Sprintf("%q", s)
		}
		cnt.add(ts, n, keys[:])
		for j := range buf {
			buf[j] = '#'
		}
		want[fmt.Sprint(ts, ks)] += n
	}
	cnt.close()
	b := eng.RunBatch()
	got := map[string]int64{}
	for _, r := range b.Rows {
		var ks [2]string
		for j, v := range r.Keys {
			if !v.Valid {
				ks[j] = "NULL"
			} else {
				ks[j] = fmt.Sprintf("%q", v.S)
			}
		}
		got[fmt.Sprint(r.Start, ks)] += r.Count
	}
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d", len(got), len(want))
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("row %.60s: count %d, want %d", k, got[k], n)
		}
	}
}

// TestCounterReusesChunks: chunks go back to a pool between batches; counts
// stay exact batch after batch, when analyzers of different key counts
// share the pool, and whether a batch ends on a full chunk or not.
func TestCounterReusesChunks(t *testing.T) {
	for round, c := range []struct{ nkeys, events int }{{1, 1}, {3, 1500}, {1, countChunkLen}, {2, 0}, {3, 2 * countChunkLen}, {1, 5000}, {2, 3 * countChunkLen}} {
		eng, err := window.New(window.Config{Window: time.Minute, Slide: time.Minute, Mode: window.Complete, Keys: c.nkeys})
		if err != nil {
			t.Fatal(err)
		}
		cnt := startCounting(eng, c.nkeys)
		keys := make([]window.Value, c.nkeys)
		want := map[string]int64{}
		for i := range c.events {
			for j := range keys {
				keys[j] = window.Value{S: fmt.Sprintf("k%d-%d", j, (i+j)%7), Valid: true}
			}
			cnt.add(0, 1, keys)
			want[fmt.Sprint(keys)]++
		}
		cnt.close()
		b := eng.RunBatch()
		got := map[string]int64{}
		for _, r := range b.Rows {
			got[fmt.Sprint(r.Keys)] += r.Count
		}
		if len(got) != len(want) {
			t.Errorf("round %d (%d keys, %d events): %d rows, want %d", round, c.nkeys, c.events, len(got), len(want))
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("round %d (%d keys, %d events): row %s counts %d, want %d", round, c.nkeys, c.events, k, got[k], n)
			}
		}
	}
}
