// Package sparkfmt prints values as Spark prints them: a DOUBLE as Java's
// Double.toString, which Spark's console table (Dataset.show, the console
// sink), CAST(d AS STRING) and its JSON writer all use.
//
// Double.toString is specified since JDK 19 (JDK-4511638) as the shortest
// decimal that reads back as the same double, laid out plainly for magnitudes
// in [1e-3, 1e7) and in computerized scientific notation otherwise. Earlier
// JDKs (17) print more digits than needed for some doubles (2.0E23 as
// 1.9999999999999998E23), which this package does not reproduce: run Spark on
// Java 21 or later to compare its console with cordstream's (spark/setup.sh
// prefers one).
package sparkfmt

import (
	"math"
	"strconv"
)

// Double returns Java's Double.toString(v) (JDK 19 and later): "2.0",
// "1.3333333333333333", "3333333.3333333335", "0.001", "1.0E7", "1.0E-5",
// "4.9E-324", "NaN", "Infinity", "-Infinity", "0.0", "-0.0".
func Double(v float64) string {
	return string(AppendDouble(make([]byte, 0, 24), v))
}

// AppendDouble appends Double(v) to b.
func AppendDouble(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "Infinity"...)
	case math.IsInf(v, -1):
		return append(b, "-Infinity"...)
	case v == 0:
		if math.Signbit(v) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var buf [32]byte
	digits, exp := decimal(buf[:0], v)
	// Plain for 1e-3 <= v < 1e7 (decimal exponent -3..6), else d.dddEn.
	if exp >= -3 && exp < 7 {
		if exp < 0 {
			b = append(b, '0', '.')
			for i := -1; i > exp; i-- {
				b = append(b, '0')
			}
			return append(b, digits...)
		}
		if len(digits) <= exp+1 {
			b = append(b, digits...)
			for i := len(digits); i <= exp; i++ {
				b = append(b, '0')
			}
			return append(b, '.', '0')
		}
		b = append(b, digits[:exp+1]...)
		b = append(b, '.')
		return append(b, digits[exp+1:]...)
	}
	b = append(b, digits[0], '.')
	if len(digits) > 1 {
		b = append(b, digits[1:]...)
	} else {
		b = append(b, '0')
	}
	b = append(b, 'E')
	return strconv.AppendInt(b, int64(exp), 10)
}

// decimal returns the significant digits Java chooses for a positive finite v
// and the decimal exponent of the first one (v ≈ d.ddd × 10^exp): the shortest
// digits that read back as v (Go's shortest formatting, which picks the one
// closest to v among equally short ones, as Java does), except that Java
// never settles for one digit when a two-digit decimal is closer to v and
// still reads back as v: for subnormals such as Double.MIN_VALUE, "4.9E-324"
// where the shortest is 5e-324.
func decimal(buf []byte, v float64) ([]byte, int) {
	s := strconv.AppendFloat(buf, v, 'e', -1, 64)
	digits, exp := splitE(s)
	if len(digits) == 1 {
		var tb [32]byte
		two := strconv.AppendFloat(tb[:0], v, 'e', 1, 64) // the closest two-digit decimal
		if back, err := strconv.ParseFloat(string(two), 64); err == nil && back == v {
			d2, e2 := splitE(two)
			if d2[len(d2)-1] == '0' {
				d2 = d2[:len(d2)-1]
			}
			return append(buf[:0], d2...), e2
		}
	}
	return digits, exp
}

// splitE splits strconv's "d.ddde±xx" into its digits (without the point) and
// the exponent.
func splitE(s []byte) ([]byte, int) {
	e := len(s) - 1
	for s[e] != 'e' {
		e--
	}
	exp, _ := strconv.Atoi(string(s[e+1:]))
	mant := s[:e]
	if len(mant) > 1 { // "d.ddd": drop the point in place
		copy(mant[1:], mant[2:])
		mant = mant[:len(mant)-1]
	}
	return mant, exp
}

// JSONDouble is a DOUBLE as Spark's JSON writer (to_json, the JSON file sink)
// prints it: Double.toString, which is valid JSON for finite values ("2.0",
// "1.0E-5"), and the non-finite values as the JSON strings "NaN", "Infinity",
// "-Infinity".
func JSONDouble(v float64) string {
	return string(AppendJSONDouble(make([]byte, 0, 24), v))
}

// AppendJSONDouble appends JSONDouble(v) to b.
func AppendJSONDouble(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		b = append(b, '"')
		b = AppendDouble(b, v)
		return append(b, '"')
	}
	return AppendDouble(b, v)
}
