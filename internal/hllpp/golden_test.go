package hllpp

import (
	"bufio"
	"compress/gzip"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The values in testdata/ are Spark 4.2.0's, written by spark/golden/hllpp.py;
// these tests compare for equality, never closeness.

func readGz(t *testing.T, name string) [][]string {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, strings.Fields(l))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sweepValue adds value i of a sweep's sequence, as the generator's SQL builds it.
func sweepValue(s *Sketch, typ string, i int64) {
	switch typ {
	case "string":
		s.AddString("é" + strconv.FormatInt(i, 10))
	case "int":
		s.AddInt(int32(i*3 - 5000))
	case "long":
		s.AddLong(i*1000000007 - 4611686018427387904)
	default:
		panic(typ)
	}
}

// sweep is one sequence of sweeps.txt.gz: Spark's estimate of its first n
// values for a sample of n.
type sweep struct {
	p       int
	rsd     float64
	typ     string
	length  int64
	n, want []int64
}

func readSweeps(t *testing.T) []*sweep {
	var out []*sweep
	for _, l := range readGz(t, "sweeps.txt.gz") {
		if l[0] == "sweep" {
			out = append(out, &sweep{p: int(atoi(t, l[1])), rsd: atof(t, l[2]), typ: l[3], length: atoi(t, l[4])})
			continue
		}
		sw := out[len(out)-1]
		sw.n = append(sw.n, atoi(t, l[0]))
		sw.want = append(sw.want, atoi(t, l[1]))
	}
	return out
}

// rangeOf names the branch of the estimate a sketch is in, to count coverage.
func rangeOf(s *Sketch) string {
	p := s.Precision()
	m := float64(s.Registers())
	z, v := 0.0, 0.0
	for i := 0; i < s.Registers(); i++ {
		r := s.Register(i)
		z += math.Ldexp(1, -int(r))
		if r == 0 {
			v++
		}
	}
	e := alphaM2(p) / z
	if v > 0 && (m*math.Log(m/v) <= thresholds[p-4] || e <= 2.5*m) {
		return "linear"
	}
	if e < 5*m {
		return "bias"
	}
	return "raw"
}

// Every prefix of six value sequences per type, at precisions 4, 5, 6, 9, 12,
// 14, against Spark's running approx_count_distinct. At 50 checkpoints of each
// sequence the same set is also built as three sketches (values i%3 == 0, 1, 2), each
// encoded and decoded, then merged: as state built in separate batches or
// instances would be.
func TestSweepsEqualSpark(t *testing.T) {
	sweeps := readSweeps(t)
	if len(sweeps) != 18 {
		t.Fatalf("%d sweeps, want 18 (6 precisions x 3 types)", len(sweeps))
	}
	total, merged := 0, 0
	ranges := map[string]map[int]int{"linear": {}, "bias": {}, "raw": {}}
	for _, sw := range sweeps {
		p, err := PrecisionFor(sw.rsd)
		if err != nil || p != sw.p {
			t.Fatalf("rsd %v: precision %d, %v; Spark %d", sw.rsd, p, err, sw.p)
		}
		full, _ := New(p)
		var parts [3]*Sketch
		for j := range parts {
			parts[j], _ = New(p)
		}
		next := 0
		mergeEvery := max(1, len(sw.n)/50)
		for i := int64(0); i < sw.length && next < len(sw.n); i++ {
			sweepValue(full, sw.typ, i)
			sweepValue(parts[i%3], sw.typ, i)
			if i+1 != sw.n[next] {
				continue
			}
			if raceEnabled && p >= 12 && next%4 != 0 && next%mergeEvery != 0 {
				next++
				continue
			}
			if got := full.Estimate(); got != sw.want[next] {
				t.Fatalf("p=%d %s, first %d values: estimate %d, Spark %d", p, sw.typ, i+1, got, sw.want[next])
			}
			ranges[rangeOf(full)][p]++
			total++
			if next%mergeEvery == 0 || next == len(sw.n)-1 {
				acc, _ := New(p)
				for _, part := range parts {
					b, err := part.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					back, err := Unmarshal(b)
					if err != nil {
						t.Fatal(err)
					}
					if err := acc.Merge(back); err != nil {
						t.Fatal(err)
					}
				}
				if got := acc.Estimate(); got != sw.want[next] {
					t.Fatalf("p=%d %s, first %d values in 3 merged sketches: estimate %d, Spark %d", p, sw.typ, i+1, got, sw.want[next])
				}
				merged++
			}
			next++
		}
		if next != len(sw.n) {
			t.Fatalf("p=%d %s: %d of %d checkpoints reached", p, sw.typ, next, len(sw.n))
		}
	}
	t.Logf("%d prefixes equal to Spark (%d of them also as merged sketches); by range and precision: %v", total, merged, ranges)
	for _, r := range []string{"linear", "bias", "raw"} {
		for _, p := range []int{4, 5, 6, 9, 12, 14} {
			if ranges[r][p] == 0 {
				t.Errorf("no %s-range case at p=%d", r, p)
			}
		}
	}
}

// 4000 disjoint sets of 1..4000 strings at the default precision, against
// Spark's GROUP BY (its partial buffers merged across partitions).
func TestGroupsEqualSpark(t *testing.T) {
	lines := readGz(t, "groups.txt.gz")
	if len(lines) != 4000 {
		t.Fatalf("%d groups, want 4000", len(lines))
	}
	s, _ := New(9)
	counts := map[string]int{}
	for _, l := range lines {
		n := atoi(t, l[0])
		s.Reset()
		prefix := "k" + strconv.FormatInt(n, 10) + "-"
		for i := int64(0); i < n; i++ {
			s.AddString(prefix + strconv.FormatInt(i, 10))
		}
		if got, want := s.Estimate(), atoi(t, l[1]); got != want {
			t.Fatalf("group of %d strings: estimate %d, Spark %d", n, got, want)
		}
		counts[rangeOf(s)]++
	}
	t.Logf("4000 groups equal to Spark; by range: %v", counts)
}

// Spark's estimateBias on a grid covering every table entry's neighbourhood,
// for every precision 4..18: equal bits.
func TestEstimateBiasEqualsSpark(t *testing.T) {
	lines := readGz(t, "bias.txt.gz")
	perP := map[int]int{}
	for _, l := range lines {
		p := int(atoi(t, l[0]))
		e, want := atof(t, l[1]), atof(t, l[2])
		if got := estimateBias(p, e); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("estimateBias(p=%d, %v) = %v, Spark %v", p, e, got, want)
		}
		perP[p]++
	}
	for p := MinPrecision; p <= MaxPrecision; p++ {
		if perP[p] < 600 {
			t.Errorf("p=%d: %d bias values compared", p, perP[p])
		}
	}
	t.Logf("%d estimateBias values equal to Spark's", len(lines))
}

// Spark's query on registers set by pseudo-random hashes, every precision
// 4..18, from empty to beyond 5m.
func TestQueryEqualsSpark(t *testing.T) {
	lines := readLines(t, "query.txt")
	ranges := map[string]int{}
	for _, l := range lines {
		p, seed, n, want := int(atoi(t, l[0])), uint64(atoi(t, l[1])), atoi(t, l[2]), atoi(t, l[3])
		s, err := New(p)
		if err != nil {
			t.Fatal(err)
		}
		st := seed
		for i := int64(0); i < n; i++ {
			var h uint64
			st, h = splitmix64(st)
			s.AddHash(h)
		}
		if got := s.Estimate(); got != want {
			t.Fatalf("p=%d, %d hashes from seed %d: estimate %d, Spark %d", p, n, seed, got, want)
		}
		ranges[rangeOf(s)]++
	}
	t.Logf("%d queries equal to Spark's; by range: %v", len(lines), ranges)
}
