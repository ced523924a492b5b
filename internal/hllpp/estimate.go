package hllpp

import "math"

// k is the number of nearest table entries whose bias is averaged.
const k = 6

// Every float64 below is a variable or the result of one IEEE operation, in
// the order Spark evaluates its doubles: a Go constant expression would be
// computed exactly and rounded once, and a product feeding a sum is wrapped in
// float64() so that no platform fuses the two (the Go spec allows fused
// multiply-add unless an explicit conversion rounds in between).

// inversePow2[r] is 1.0 / (1 << r), exactly (a power of two), as Spark adds it.
var inversePow2 = func() (t [registerMask + 1]float64) {
	for r := range t {
		t[r] = 1.0 / float64(uint64(1)<<r)
	}
	return t
}()

// alphaM2 is the bias constant times m², computed as Spark computes it.
func alphaM2(p int) float64 {
	m := float64(int64(1) << p)
	switch p {
	case 4:
		return 0.673 * m * m
	case 5:
		return 0.697 * m * m
	case 6:
		return 0.709 * m * m
	}
	return (0.7213 / (1.0 + 1.079/m)) * m * m
}

// Estimate is approx_count_distinct's result for the values added: Spark's
// HyperLogLogPlusPlusHelper.query, step for step.
func (s *Sketch) Estimate() int64 {
	p := int(s.p)
	m := 1 << p
	// The harmonic sum and the number of empty registers, in register order:
	// the sum of powers of two is not associative in floating point.
	zInverse, v := 0.0, 0.0
	idx := 0
	for _, word := range s.words {
		for j := 0; j < registersInWord && idx < m; j++ {
			r := word >> (registerBits * j) & registerMask
			zInverse += inversePow2[r]
			if r == 0 {
				v += 1.0
			}
			idx++
		}
	}
	return javaRound(estimate(p, zInverse, v))
}

// estimate picks between linear counting, the bias-corrected raw estimate and
// the raw estimate, with Spark's rules: linear counting when some register is
// empty and either the linear count is under the precision's threshold or the
// raw estimate is at most 2.5m (Spark's own rule beside the paper's); bias
// correction below 5m.
func estimate(p int, zInverse, v float64) float64 {
	mf := float64(int64(1) << p)
	e := alphaM2(p) / zInverse
	eBiasCorrected := e
	if p < 19 && e < float64(5.0*mf) {
		eBiasCorrected = e - estimateBias(p, e)
	}
	if v > 0 {
		h := mf * math.Log(mf/v)
		if (p < 19 && h <= thresholds[p-4]) || e <= float64(2.5*mf) {
			return h
		}
	}
	return eBiasCorrected
}

// estimateBias is the mean bias of the k table entries whose raw estimates are
// nearest to e: Spark finds the insertion point with Java's binary search,
// starts the window k-1 entries below it, and slides it up while the entry
// after the window is strictly nearer than its first.
func estimateBias(p int, e float64) float64 {
	est := rawEstimateData[p-4]
	n := len(est)
	i := javaBinarySearch(est, e)
	nearest := i
	if i < 0 {
		nearest = -(i + 1)
	}
	dist := func(j int) float64 {
		d := e - est[j]
		return d * d
	}
	low := max(nearest-k+1, 0)
	high := min(low+k, n)
	for high < n && dist(high) < dist(low) {
		low++
		high++
	}
	bias := biasData[p-4]
	sum := 0.0
	for j := low; j < high; j++ {
		sum += bias[j]
	}
	return sum / float64(high-low)
}

// javaBinarySearch is java.util.Arrays.binarySearch(double[], double): the
// index of key, or -(insertion point) - 1. It must be this exact walk, not
// sort.SearchFloat64s: two of the tables (p=5 and p=6) are not sorted, and
// there the probes Java makes decide which entries count as nearest.
func javaBinarySearch(a []float64, key float64) int {
	lo, hi := 0, len(a)-1
	for lo <= hi {
		mid := int(uint(lo+hi) >> 1)
		v := a[mid]
		switch {
		case v < key:
			lo = mid + 1
		case v > key:
			hi = mid - 1
		default:
			// Java compares the bits to order -0.0 before 0.0 and to place NaN
			// last; both bit patterns are read as signed longs.
			vb, kb := javaDoubleToLongBits(v), javaDoubleToLongBits(key)
			switch {
			case vb == kb:
				return mid
			case vb < kb:
				lo = mid + 1
			default:
				hi = mid - 1
			}
		}
	}
	return -(lo + 1)
}

// javaDoubleToLongBits is Double.doubleToLongBits: the bits, every NaN as the
// canonical one.
func javaDoubleToLongBits(f float64) int64 {
	if math.IsNaN(f) {
		return 0x7ff8000000000000
	}
	return int64(math.Float64bits(f))
}

// javaRound is Java's Math.round(double): the nearest long, ties toward
// positive infinity, NaN as 0, and values beyond the long range clamped.
func javaRound(x float64) int64 {
	switch {
	case math.IsNaN(x):
		return 0
	case x >= math.MaxInt64: // 2^63 as a float64
		return math.MaxInt64
	case x <= math.MinInt64:
		return math.MinInt64
	}
	f := math.Floor(x)
	if x-f >= 0.5 { // exact: the fraction of a float64 is representable
		f++
	}
	return int64(f)
}
