package sparkfmt

import (
	"bufio"
	"compress/gzip"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestDoubleExamples(t *testing.T) {
	cases := map[float64]string{
		2:                               "2.0",
		4.0 / 3:                         "1.3333333333333333",
		10000000.0 / 3:                  "3333333.3333333335",
		1.0 / 300:                       "0.0033333333333333335",
		1e10 / 3:                        "3.3333333333333335E9",
		1e10:                            "1.0E10",
		1e-5:                            "1.0E-5",
		0.001:                           "0.001",
		1e7:                             "1.0E7",
		9999999:                         "9999999.0",
		123456.5:                        "123456.5",
		100:                             "100.0",
		-1.5:                            "-1.5",
		2e23:                            "2.0E23",
		math.MaxFloat64:                 "1.7976931348623157E308",
		math.SmallestNonzeroFloat64:     "4.9E-324",
		2 * math.SmallestNonzeroFloat64: "9.9E-324",
		math.Inf(1):                     "Infinity",
		math.Inf(-1):                    "-Infinity",
		math.Copysign(0, -1):            "-0.0",
		0:                               "0.0",
	}
	for v, want := range cases {
		if got := Double(v); got != want {
			t.Errorf("Double(%v) = %q, want %q", v, got, want)
		}
	}
	if got := Double(math.NaN()); got != "NaN" {
		t.Errorf("NaN: %q", got)
	}
	a, b := 0.1, 0.2 // variables: a Go constant 0.1 + 0.2 would be exactly 0.3
	if got := Double(a + b); got != "0.30000000000000004" {
		t.Errorf("0.1 + 0.2: %q", got)
	}
	if got := string(AppendDouble([]byte("x="), 2)); got != "x=2.0" {
		t.Errorf("AppendDouble: %q", got)
	}
}

// Every line of the golden file is a double (its bits) and what Java 25's
// Double.toString printed for it (spark/golden/DoubleToString.java golden).
func TestDoubleEqualsJava(t *testing.T) {
	f, err := os.Open("testdata/double-tostring-jdk25.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	n, bad := 0, 0
	for sc.Scan() {
		bitsHex, want, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("bad line %q", sc.Text())
		}
		u, err := strconv.ParseUint(bitsHex, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		v := math.Float64frombits(u)
		if got := Double(v); got != want {
			if bad++; bad <= 20 {
				t.Errorf("Double(%s = %v) = %q, Java %q", bitsHex, v, got, want)
			}
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 30000 || bad > 0 {
		t.Fatalf("%d doubles compared, %d differ", n, bad)
	}
}

func TestJSONDouble(t *testing.T) {
	cases := map[float64]string{
		2: "2.0", 1e-5: "1.0E-5", 1e23: "1.0E23", math.Inf(1): `"Infinity"`, math.Inf(-1): `"-Infinity"`,
		math.Copysign(0, -1): "-0.0",
	}
	for v, want := range cases {
		if got := JSONDouble(v); got != want {
			t.Errorf("JSONDouble(%v) = %s, want %s", v, got, want)
		}
	}
	if got := JSONDouble(math.NaN()); got != `"NaN"` {
		t.Errorf("NaN: %s", got)
	}
}

// Every average of n integer lengths that a group of up to 300 rows with sums
// up to 300·n can give reads back as itself.
func TestDoubleRoundTrips(t *testing.T) {
	for n := 1; n <= 300; n++ {
		for s := 0; s <= 300*n; s += 1 + n/30 {
			v := float64(s) / float64(n)
			str := Double(v)
			back, err := strconv.ParseFloat(str, 64)
			if err != nil || back != v {
				t.Fatalf("%d/%d: %q reads back as %v", s, n, str, back)
			}
		}
	}
}

func BenchmarkDouble(b *testing.B) {
	buf := make([]byte, 0, 32)
	for i := 0; i < b.N; i++ {
		buf = AppendDouble(buf[:0], float64(i%1000+7)/7)
	}
}
