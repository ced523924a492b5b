package analyzer

import (
	"encoding/binary"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// disorderedIDs returns n snowflake-like ids created at rate per second,
// each up to disorder ms earlier than its place, with a fraction of repeats
// of ids seen up to back positions earlier.
func disorderedIDs(r *rand.Rand, n int, rate float64, disorderMs int64, repeats float64, back int) []uint64 {
	out := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		if len(out) > 0 && r.Float64() < repeats {
			out = append(out, out[max(0, len(out)-1-r.IntN(back))])
			continue
		}
		ms := int64(float64(i)*1000/rate) - r.Int64N(disorderMs+1) + 1e9
		out = append(out, uint64(ms)<<22|uint64(i&(1<<22-1)))
	}
	return out
}

// The set answers as a map would, across merges of generations into old, for
// ids in order, disordered, repeated near and far, and the extremes.
func TestIDSetMatchesAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	streams := map[string][]uint64{
		"in order":          disorderedIDs(r, 100_000, 5000, 0, 0, 1),
		"disordered":        disorderedIDs(r, 100_000, 5000, 2000, 0, 1),
		"repeats near":      disorderedIDs(r, 100_000, 5000, 2000, 0.05, 100),
		"repeats far":       disorderedIDs(r, 100_000, 5000, 2000, 0.05, 90_000),
		"slow, disordered":  disorderedIDs(r, 50_000, 1, 60_000, 0.01, 1000),
		"reverse":           nil,
		"extremes and zero": {0, 1<<64 - 1, 0, 1, 1<<64 - 2, 1<<64 - 1, 2, 1},
	}
	for i := 60_000; i > 0; i-- {
		streams["reverse"] = append(streams["reverse"], uint64(i)*3)
	}
	for name, ids := range streams {
		t.Run(name, func(t *testing.T) {
			set := newIDSet(0, false)
			ref := map[uint64]bool{}
			for i, n := range ids {
				id := dedupID{n: n}
				if got, want := set.has(id), ref[n]; got != want {
					t.Fatalf("id %d (#%d): has = %v, want %v (old %d)", n, i, got, want, len(set.old))
				}
				if !ref[n] {
					set.add(id)
					ref[n] = true
				}
				if set.len() != len(ref) {
					t.Fatalf("after id #%d: len %d, want %d", i, set.len(), len(ref))
				}
			}
			if !slices.IsSorted(set.old) {
				t.Fatal("old is not sorted")
			}
			if len(ids) > 2*genMax && len(set.old) == 0 {
				t.Fatalf("%d ids and nothing merged into old", len(ids))
			}
			for n := range ref {
				if !set.has(dedupID{n: n}) {
					t.Fatalf("id %d added, then not found", n)
				}
			}
			for k := 0; k < 10_000; k++ {
				n := r.Uint64()
				if set.has(dedupID{n: n}) != ref[n] {
					t.Fatalf("random id %d: has = %v, want %v", n, !ref[n], ref[n])
				}
			}
		})
	}
}

func TestMergeSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for k := 0; k < 200; k++ {
		var a, b []uint64
		for i := r.IntN(50); i > 0; i-- {
			a = append(a, r.Uint64N(1000))
		}
		for i := r.IntN(50); i > 0; i-- {
			b = append(b, r.Uint64N(1000)+uint64(r.IntN(2))*500)
		}
		slices.Sort(a)
		slices.Sort(b)
		want := slices.Sorted(slices.Values(append(slices.Clone(a), b...)))
		if got := mergeSorted(slices.Clone(a), b); !slices.Equal(got, want) {
			t.Fatalf("merge %v and %v = %v, want %v", a, b, got, want)
		}
	}
}

// A de-duplication record that is not one of the two formats is refused
// with what is wrong, not read as some other set of ids.
func TestDecodeIDsRefusesMalformed(t *testing.T) {
	for name, v := range map[string][]byte{
		"empty":              {},
		"unknown format":     []byte("x1,2"),
		"truncated varint":   {idsBinary, 0x05, 0x80},
		"overlong varint":    {idsBinary, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"repeated id":        {idsBinary, 0x05, 0x00},
		"wraps past 2^64":    append([]byte{idsBinary}, append(uvarint(1<<64-2), uvarint(5)...)...),
		"JSON, not strings":  []byte("[1,2]"),
		"JSON, not an array": []byte(`["1"`),
	} {
		if err := decodeIDs(v, func(dedupID) {}); err == nil {
			t.Errorf("%s (% x): decoded without an error", name, v)
		}
	}
	// The JSON form of earlier versions still reads, numbers as numbers.
	var got []dedupID
	if err := decodeIDs([]byte(`["1442323862181007360","007",""]`), func(id dedupID) { got = append(got, id) }); err != nil {
		t.Fatal(err)
	}
	if want := []dedupID{{n: 1442323862181007360}, {s: "007"}}; !slices.Equal(got, want) {
		t.Errorf("JSON ids read as %+v, want %+v", got, want)
	}
}

func uvarint(n uint64) []byte { return binary.AppendUvarint(nil, n) }

// BenchmarkIDSet compares the set with one map of every id on a slot's
// worth of disordered snowflakes (the benchmark workload: 5,000 msgs/s,
// 2 s of disorder), each looked up then added.
func BenchmarkIDSet(b *testing.B) {
	ids := disorderedIDs(rand.New(rand.NewPCG(5, 6)), 300_000, 5000, 2000, 0, 1)
	b.Run("idSet", func(b *testing.B) {
		for b.Loop() {
			s := newIDSet(len(ids), false)
			for _, n := range ids {
				if id := (dedupID{n: n}); !s.has(id) {
					s.add(id)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/id")
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			s := make(map[uint64]struct{}, len(ids))
			for _, n := range ids {
				if _, ok := s[n]; !ok {
					s[n] = struct{}{}
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/id")
	})
}

func TestSortIDs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var scratch []uint64
	for _, tc := range []struct {
		name string
		gen  func() uint64
	}{
		{"snowflakes of a few seconds", func() uint64 { return uint64(1e12+r.Int64N(3000))<<22 | r.Uint64N(1<<22) }},
		{"any 64 bits", r.Uint64},
		{"few values", func() uint64 { return r.Uint64N(4) }},
	} {
		for _, n := range []int{0, 1, 255, 256, 1000, genMax} {
			ids := make([]uint64, n)
			for i := range ids {
				ids[i] = tc.gen()
			}
			want := slices.Sorted(slices.Values(ids))
			sortIDs(ids, &scratch)
			if !slices.Equal(ids, want) {
				t.Fatalf("%s, %d ids: not sorted as slices.Sort sorts them", tc.name, n)
			}
		}
	}
}

// A settled set (its window passed) still answers as before, holds its ids
// in old alone, and takes new ones again.
func TestIDSetSettle(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ids := disorderedIDs(r, 3*genMax+123, 5000, 2000, 0, 1)
	set := newIDSet(0, false)
	ref := map[uint64]bool{}
	for _, n := range ids {
		if !ref[n] {
			set.add(dedupID{n: n})
			ref[n] = true
		}
	}
	set.settle()
	if len(set.old) != len(ref) || set.len() != len(ref) || !slices.IsSorted(set.old) {
		t.Fatalf("settled: old %d ids (sorted %v), len %d, want %d", len(set.old), slices.IsSorted(set.old), set.len(), len(ref))
	}
	if cap(set.old) > len(set.old)+len(set.old)/8 {
		t.Errorf("settled: old has room for %d ids, holds %d", cap(set.old), len(set.old))
	}
	for n := range ref {
		if !set.has(dedupID{n: n}) {
			t.Fatalf("id %d lost when settling", n)
		}
	}
	late := uint64(12345)
	if set.has(dedupID{n: late}) {
		t.Fatal("an id never added is found")
	}
	set.add(dedupID{n: late})
	if !set.has(dedupID{n: late}) || set.len() != len(ref)+1 {
		t.Fatal("a settled set does not take a late id")
	}
}

// A tracking set hands over, at each flush, exactly the numeric ids added
// since the previous one, encoded in records Kafka takes, and still finds
// every id afterwards; a set that does not track hands over nothing.
func TestIDSetTracksAddedIDs(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	all := disorderedIDs(r, 5*genMax+77, 5000, 2000, 0, 1)
	for _, track := range []bool{true, false} {
		ids := all
		set := newIDSet(0, track)
		seen := map[uint64]bool{}
		for len(ids) > 0 {
			// Batches of varying sizes: some age the generations, some not.
			n := min(len(ids), 1+r.IntN(3*genMax))
			added := map[uint64]bool{}
			for _, id := range ids[:n] {
				if !seen[id] {
					set.add(dedupID{n: id})
					seen[id], added[id] = true, true
				}
			}
			ids = ids[n:]
			set.flush()
			stored := map[uint64]bool{}
			for _, v := range set.takePending() {
				if len(v) > maxDedupRecordBytes {
					t.Fatalf("a record of %d bytes, over %d", len(v), maxDedupRecordBytes)
				}
				if err := decodeIDs(v, func(id dedupID) {
					if stored[id.n] {
						t.Fatalf("id %d stored twice", id.n)
					}
					stored[id.n] = true
				}); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case !track && len(stored) > 0:
				t.Fatalf("not tracking, yet %d ids handed over", len(stored))
			case track && !maps.Equal(stored, added):
				t.Fatalf("handed over %d ids, %d were added since the last flush", len(stored), len(added))
			}
			if len(set.gen[0].list)+len(set.gen[1].list) != 0 {
				t.Fatal("ids left in the generations after a flush")
			}
		}
		for id := range seen {
			if !set.has(dedupID{n: id}) {
				t.Fatalf("id %d lost", id)
			}
		}
		if set.len() != len(seen) || !slices.IsSorted(set.old) {
			t.Fatalf("len %d, want %d; old sorted: %v", set.len(), len(seen), slices.IsSorted(set.old))
		}
	}
}

// Ids restored from storage (appended to old in any order, repeats
// included) are all found after sortLoaded, and new ones are not.
func TestIDSetSortLoaded(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	ids := disorderedIDs(r, 20_000, 5000, 2000, 0.1, 50)
	set := newIDSet(0, false)
	ref := map[uint64]bool{}
	for _, n := range ids {
		set.old = append(set.old, n)
		ref[n] = true
	}
	set.sortLoaded()
	if len(set.old) != len(ref) || !slices.IsSorted(set.old) {
		t.Fatalf("old holds %d ids (sorted: %v), want %d distinct", len(set.old), slices.IsSorted(set.old), len(ref))
	}
	for n := range ref {
		if !set.has(dedupID{n: n}) {
			t.Fatalf("restored id %d not found", n)
		}
	}
	for range 10_000 {
		if n := r.Uint64(); !ref[n] && set.has(dedupID{n: n}) {
			t.Fatalf("id %d never restored, yet found", n)
		}
	}
}

// canonicalRef is canonicalUint's definition, the slow way.
func canonicalRef(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, false
	}
	return n, true
}

// TestCanonicalUint compares the word-at-a-time parse with the definition
// on edge cases and on random strings near the digits (every length up to
// 21, every byte position disturbed).
func TestCanonicalUint(t *testing.T) {
	check := func(s string) {
		t.Helper()
		n, ok := canonicalUint(s)
		wn, wok := canonicalRef(s)
		if ok != wok || n != wn {
			t.Fatalf("canonicalUint(%q) = %d, %v; want %d, %v", s, n, ok, wn, wok)
		}
	}
	for _, s := range []string{"", "0", "00", "01", "9", "10", "12345678", "99999999", "100000000",
		"1442323862181007360", "18446744073709551615", "18446744073709551616", "99999999999999999999",
		"184467440737095516150", "1844674407370955161a", "/0000000", ":0000000", "1234567/", "1234567:",
		"12345678\x00", "\xff2345678", "-1", "+1", " 1", "1 "} {
		check(s)
	}
	rng := rand.New(rand.NewPCG(5, 8))
	near := []byte("0123456789/:@ \x00\x7f\xb0\xff")
	for range 200_000 {
		b := make([]byte, rng.IntN(22))
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[rng.IntN(len(b))] = near[rng.IntN(len(near))]
		}
		if len(b) > 1 && rng.IntN(4) != 0 && b[0] == '0' {
			b[0] = '1'
		}
		check(string(b))
	}
}

// BenchmarkCanonicalUint parses snowflakes, as every record's message id is.
func BenchmarkCanonicalUint(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = strconv.FormatUint(1_400_000_000_000_000_000+rng.Uint64N(1e17), 10)
	}
	var sum uint64
	for i := 0; b.Loop(); i++ {
		n, _ := canonicalUint(ids[i&1023])
		sum += n
	}
	if sum == 1 {
		b.Log(sum)
	}
}
