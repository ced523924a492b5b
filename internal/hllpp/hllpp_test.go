package hllpp

import (
	"bufio"
	"encoding/hex"
	"math"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// splitmix64 is the generator spark/golden/hllpp.py uses for pseudo-random hashes.
func splitmix64(state uint64) (uint64, uint64) {
	state += 0x9E3779B97F4A7C15
	z := state
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return state, z ^ z>>31
}

// readLines returns the non-comment lines of a test data file, split into fields.
func readLines(t *testing.T, name string) [][]string {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Fields(line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHashesAreSparks(t *testing.T) {
	lines := readLines(t, "xxhash.txt")
	if len(lines) < 30 {
		t.Fatalf("%d hash vectors, want the generator's 36", len(lines))
	}
	for _, l := range lines {
		want, err := strconv.ParseInt(l[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		var got uint64
		switch l[0] {
		case "string":
			b := []byte{}
			if l[1] != "-" {
				if b, err = hex.DecodeString(l[1]); err != nil {
					t.Fatal(err)
				}
			}
			got = HashString(string(b))
			if hb := HashBytes(b); hb != got {
				t.Errorf("HashBytes(%q) = %d, HashString %d", b, hb, got)
			}
		case "int":
			v, err := strconv.ParseInt(l[1], 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			got = HashInt(int32(v))
		case "long":
			v, err := strconv.ParseInt(l[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			got = HashLong(v)
		default:
			t.Fatalf("unknown kind %q", l[0])
		}
		if int64(got) != want {
			t.Errorf("xxhash64(%s %s) = %d, Spark %d", l[0], l[1], int64(got), want)
		}
	}
}

func TestPrecisionIsSparks(t *testing.T) {
	lines := readLines(t, "precision.txt")
	checked, boundary := 0, 0
	for _, l := range lines {
		rsd, err := strconv.ParseFloat(l[0], 64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := PrecisionFor(rsd)
		if l[1] == "error" {
			if err == nil {
				t.Errorf("PrecisionFor(%v) = %d, Spark refuses it", rsd, got)
			}
			continue
		}
		want, _ := strconv.Atoi(l[1])
		if want > MaxPrecision {
			if err == nil {
				t.Errorf("PrecisionFor(%v) = %d, want an error (Spark's %d is beyond %d)", rsd, got, want, MaxPrecision)
			}
			continue
		}
		if x := 2 * math.Log(1.106/rsd) / math.Log(2); err != nil && math.Abs(x-math.Round(x)) < 1e-9 {
			// Refused on purpose: on a boundary the JVM's logarithm decides.
			boundary++
			continue
		}
		if err != nil || got != want {
			t.Errorf("PrecisionFor(%v) = %d, %v; Spark %d", rsd, got, err, want)
		}
		checked++
	}
	if checked < 30 || boundary > 1 {
		t.Errorf("%d precisions compared, %d refused as boundaries", checked, boundary)
	}
	if p, err := PrecisionFor(DefaultRelativeSD); p != 9 || err != nil {
		t.Errorf("default precision %d, %v; want 9", p, err)
	}
	for _, bad := range []float64{0, -0.05, math.NaN(), math.Inf(1), 0.5, 0.001} {
		if _, err := PrecisionFor(bad); err == nil {
			t.Errorf("PrecisionFor(%v) accepted", bad)
		}
	}
	// An rsd exactly on a boundary (2·log2(1.106/rsd) an integer) is refused:
	// Go's and the JVM's logarithms could put it on different sides.
	if _, err := PrecisionFor(1.106 / 16); err == nil {
		t.Error("PrecisionFor(1.106/16) (precision exactly 8) accepted")
	}
}

func TestLayoutIsSparksBuffer(t *testing.T) {
	for p := MinPrecision; p <= MaxPrecision; p++ {
		s, _ := New(p)
		m := 1 << p
		if len(s.words) != m/10+1 {
			t.Fatalf("p=%d: %d words, Spark's buffer has %d", p, len(s.words), m/10+1)
		}
		// Set each register to a distinct value and read it back, and check
		// where in the words it lives.
		for i := 0; i < m; i++ {
			s.setRegister(i, uint8(i%int(maxRegister(p))+1))
		}
		for i := 0; i < m; i++ {
			want := uint8(i%int(maxRegister(p)) + 1)
			if got := s.Register(i); got != want {
				t.Fatalf("p=%d register %d = %d, want %d", p, i, got, want)
			}
			if w := s.words[i/10] >> (6 * (i % 10)) & 63; uint8(w) != want {
				t.Fatalf("p=%d register %d not at word %d bit %d", p, i, i/10, 6*(i%10))
			}
		}
		for w, word := range s.words {
			if word>>60 != 0 {
				t.Fatalf("p=%d word %d uses bits 60..63", p, w)
			}
		}
		last := m - (len(s.words)-1)*10
		if s.words[len(s.words)-1]>>(6*last) != 0 {
			t.Fatalf("p=%d: last word has bits past its %d registers", p, last)
		}
	}
}

func TestAddHash(t *testing.T) {
	s, _ := New(9)
	// x = 0: register 0, every bit after the index zero: 64 - 9 + 1 = 56.
	s.AddHash(0)
	if s.Register(0) != 56 {
		t.Errorf("hash 0 sets register 0 to %d, want 56", s.Register(0))
	}
	// The top 9 bits pick the register; a 1 right after them gives 1.
	x := uint64(511)<<55 | 1<<54
	s.AddHash(x)
	if s.Register(511) != 1 {
		t.Errorf("register 511 = %d, want 1", s.Register(511))
	}
	// A smaller value never lowers a register.
	s.AddHash(uint64(511)<<55 | 1<<63>>9)
	if s.Register(511) != 1 {
		t.Errorf("register 511 = %d after a smaller value, want 1", s.Register(511))
	}
	s.AddHash(uint64(511)<<55 | 1)
	if s.Register(511) != 55 {
		t.Errorf("register 511 = %d, want 55", s.Register(511))
	}
	for i := 1; i < 511; i++ {
		if s.Register(i) != 0 {
			t.Fatalf("register %d = %d, want 0", i, s.Register(i))
		}
	}
	// pw for every position of the first one bit.
	for p := MinPrecision; p <= MaxPrecision; p++ {
		for z := 0; z <= 64-p; z++ {
			s, _ := New(p)
			var h uint64
			if z < 64-p {
				h = 1 << (63 - p - z)
			}
			s.AddHash(h)
			if got := s.Register(0); int(got) != z+1 {
				t.Fatalf("p=%d, %d zeros: register %d, want %d", p, z, got, z+1)
			}
			if want := bits.LeadingZeros64(h<<p|1<<(p-1)) + 1; want != z+1 {
				t.Fatalf("test bug at p=%d z=%d", p, z)
			}
		}
	}
}

func TestMergeIsRegisterMax(t *testing.T) {
	for _, p := range []int{4, 9, 14} {
		a, _ := New(p)
		b, _ := New(p)
		st := uint64(p)
		for i := 0; i < 3<<p; i++ {
			var h uint64
			st, h = splitmix64(st)
			if i%3 == 0 {
				a.AddHash(h)
			} else {
				b.AddHash(h)
			}
		}
		want := make([]uint8, 1<<p)
		for i := range want {
			want[i] = max(a.Register(i), b.Register(i))
		}
		ab, ba := a.Clone(), b.Clone()
		if err := ab.Merge(b); err != nil {
			t.Fatal(err)
		}
		if err := ba.Merge(a); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if ab.Register(i) != want[i] || ba.Register(i) != want[i] {
				t.Fatalf("p=%d register %d: merged %d and %d, want %d", p, i, ab.Register(i), ba.Register(i), want[i])
			}
		}
		// Merging again, or merging an empty sketch, changes nothing.
		before := ab.Words()
		_ = ab.Merge(b)
		e, _ := New(p)
		_ = ab.Merge(e)
		for i, w := range ab.Words() {
			if w != before[i] {
				t.Fatalf("p=%d: merge not idempotent at word %d", p, i)
			}
		}
	}
	a, _ := New(9)
	b, _ := New(10)
	if err := a.Merge(b); err == nil {
		t.Error("merged precisions 10 into 9")
	}
}

// fill sets the registers of a sketch directly.
func fill(t *testing.T, p int, f func(i int) uint8) *Sketch {
	t.Helper()
	s, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1<<p; i++ {
		s.setRegister(i, f(i))
	}
	return s
}

// Each branch of the estimate, on hand-built registers, against the formula
// written out here.
func TestEstimateBranches(t *testing.T) {
	empty, _ := New(9)
	if got := empty.Estimate(); got != 0 {
		t.Errorf("empty sketch estimates %d, want 0", got)
	}
	m := 512.0
	linear := func(v float64) int64 { return javaRound(m * math.Log(m/v)) }
	// V > 0, H under the threshold (400 at p=9).
	s := fill(t, 9, func(i int) uint8 { return uint8(b2i(i < 100)) })
	if got, want := s.Estimate(), linear(412); got != want || want > 400 {
		t.Errorf("100 registers at 1: %d, want linear count %d", got, want)
	}
	// V > 0, H over the threshold but E <= 2.5m: still linear counting (Spark's rule).
	s = fill(t, 9, func(i int) uint8 { return uint8(b2i(i < 450)) })
	zInv := 450*0.5 + 62
	e := alphaM2(9) / zInv
	if h := m * math.Log(m/62); h <= 400 || e > 2.5*m {
		t.Fatalf("test setup: H %v E %v", h, e)
	}
	if got, want := s.Estimate(), linear(62); got != want {
		t.Errorf("450 registers at 1: %d, want linear count %d", got, want)
	}
	// V > 0, H over the threshold, 2.5m < E < 5m: bias-corrected raw estimate.
	s = fill(t, 9, func(i int) uint8 { return uint8(1 + b2i(i%8 != 0) + b2i(i%3 == 0)) })
	s.setRegister(7, 0)
	e = rawE(s)
	if e <= 2.5*m || e >= 5*m {
		t.Fatalf("test setup: E %v", e)
	}
	if got, want := s.Estimate(), javaRound(e-estimateBias(9, e)); got != want {
		t.Errorf("bias range: %d, want %d", got, want)
	}
	// V = 0, E < 5m: bias corrected as well.
	s = fill(t, 9, func(i int) uint8 { return uint8(1 + b2i(i%2 == 0)) })
	e = rawE(s)
	if got, want := s.Estimate(), javaRound(e-estimateBias(9, e)); got != want || e >= 5*m {
		t.Errorf("V=0 under 5m: %d, want %d (E %v)", got, want, e)
	}
	// E >= 5m: the raw estimate.
	s = fill(t, 9, func(i int) uint8 { return uint8(3 + i%4) })
	e = rawE(s)
	if got, want := s.Estimate(), javaRound(e); got != want || e < 5*m {
		t.Errorf("raw range: %d, want %d (E %v)", got, want, e)
	}
	// Every register at its maximum: no overflow, a finite estimate.
	s = fill(t, 4, func(int) uint8 { return maxRegister(4) })
	if got := s.Estimate(); got <= 0 {
		t.Errorf("full registers at p=4: %d", got)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func rawE(s *Sketch) float64 {
	z := 0.0
	for i := 0; i < s.Registers(); i++ {
		z += math.Ldexp(1, -int(s.Register(i)))
	}
	return alphaM2(s.Precision()) / z
}

func TestJavaRound(t *testing.T) {
	cases := []struct {
		x    float64
		want int64
	}{
		{0, 0}, {0.49999999999999994, 0}, {0.5, 1}, {1.5, 2}, {2.5, 3}, {-0.5, 0}, {-1.5, -1},
		{-2.5, -2}, {-2.5000000000000004, -3}, {1e300, math.MaxInt64}, {-1e300, math.MinInt64},
		{math.NaN(), 0}, {math.Inf(1), math.MaxInt64}, {math.Inf(-1), math.MinInt64},
		{4503599627370497, 4503599627370497}, {1367.4999999999998, 1367}, {1366.5, 1367},
	}
	for _, c := range cases {
		if got := javaRound(c.x); got != c.want {
			t.Errorf("javaRound(%v) = %d, want %d", c.x, got, c.want)
		}
	}
}

// On sorted tables the Java binary search finds what a sorted search finds; on
// the unsorted p=5/p=6 tables it may not, and the bias test data (Spark's
// estimateBias on a grid) checks those.
func TestJavaBinarySearch(t *testing.T) {
	for i, tab := range rawEstimateData {
		if p := i + 4; p == 5 || p == 6 {
			continue
		}
		for j, v := range tab {
			if got := javaBinarySearch(tab, v); got != j {
				t.Fatalf("p=%d: search for entry %d found %d", i+4, j, got)
			}
			probe := v + 1e-7
			want := -(sort.SearchFloat64s(tab, probe) + 1)
			if got := javaBinarySearch(tab, probe); got != want {
				t.Fatalf("p=%d: search for %v = %d, want %d", i+4, probe, got, want)
			}
		}
	}
	a := []float64{1, 2, 3}
	for _, c := range []struct {
		key  float64
		want int
	}{{0, -1}, {1, 0}, {2.5, -3}, {4, -4}, {math.NaN(), -4}} {
		if got := javaBinarySearch(a, c.key); got != c.want {
			t.Errorf("search %v in %v = %d, want %d", c.key, a, got, c.want)
		}
	}
	if got := javaBinarySearch([]float64{-1, 0, 1}, math.Copysign(0, -1)); got != -2 {
		t.Errorf("-0.0 in [-1 0 1] = %d, want -2 (Java orders -0.0 before 0.0)", got)
	}
}

// The only libm call, math.Log in the linear count, may differ from the JVM's
// Math.log: both are within one ulp of the exact logarithm, so they differ by at
// most one ulp of L = ln(m/V), and H = m·L (m a power of two: an exact product)
// by at most m·ulp(L). That cannot change a result: for every precision and
// every number of empty registers, H is more than four such steps away from a
// rounding tie (k + 0.5) and from the precision's threshold.
func TestLinearCountHasMargin(t *testing.T) {
	closest := math.Inf(1)
	for p := MinPrecision; p <= MaxPrecision; p++ {
		m := float64(int64(1) << p)
		for v := 1; v < 1<<p; v++ {
			l := math.Log(m / float64(v))
			step := m * (math.Nextafter(l, math.Inf(1)) - l)
			h := m * l
			tie := math.Floor(h) + 0.5
			for _, edge := range []float64{tie, thresholds[p-4]} {
				d := math.Abs(h-edge) / step
				closest = min(closest, d)
				if d <= 4 {
					t.Errorf("p=%d V=%d: H=%v is only %.1f log-ulps from %v", p, v, h, d, edge)
				}
			}
		}
	}
	t.Logf("closest approach of H to a tie or a threshold: %.0f log-ulps", closest)
}

func TestAlphaM2(t *testing.T) {
	// Computed step by step as Java does: not the exactly rounded value of the
	// expression, which a Go constant expression would give.
	m := 512.0
	step := 0.7213 / (1.0 + 1.079/m)
	step *= m
	step *= m
	if got := alphaM2(9); got != step {
		t.Errorf("alphaM2(9) = %v, want %v", got, step)
	}
	if alphaM2(4) != 0.673*16*16 || alphaM2(5) != 0.697*32*32 || alphaM2(6) != 0.709*64*64 {
		t.Error("alphaM2 for p 4..6")
	}
}

func TestNewRejects(t *testing.T) {
	for _, p := range []int{-1, 0, 3, 19, 64} {
		if _, err := New(p); err == nil {
			t.Errorf("New(%d) accepted", p)
		}
	}
	if _, err := NewForRelativeSD(0.5); err == nil {
		t.Error("NewForRelativeSD(0.5) accepted")
	}
	s, err := NewForRelativeSD(0.05)
	if err != nil || s.Precision() != 9 || s.Registers() != 512 || !s.IsEmpty() {
		t.Fatalf("NewForRelativeSD(0.05) = %v, %v", s, err)
	}
	s.AddString("")
	if s.IsEmpty() || s.Estimate() != 1 {
		t.Errorf("\"\" is a value: estimate %d", s.Estimate())
	}
	s.Reset()
	if !s.IsEmpty() || s.Estimate() != 0 {
		t.Error("Reset left registers set")
	}
}
