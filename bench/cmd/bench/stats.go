package main

import (
	"math"
	"slices"
)

// percentile returns the q-quantile (0..1) of xs by linear interpolation
// between closest ranks; NaN for no values. xs is sorted in place.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(xs)-1)
	return xs[lo] + (xs[hi]-xs[lo])*(pos-float64(lo))
}

// Dist summarises a latency distribution, in milliseconds.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// distOf summarises xs (milliseconds); xs is sorted in place.
func distOf(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	d := Dist{N: len(xs), P50: percentile(xs, 0.5), P90: percentile(xs, 0.9), P99: percentile(xs, 0.99)}
	d.Max = xs[len(xs)-1]
	return d
}

// slope fits y = a + b*x by least squares and returns b.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// bucket is one cumulative bucket of a Prometheus histogram.
type bucket struct {
	le    float64 // upper bound (+Inf for the last)
	count float64 // observations <= le
}

// histQuantile estimates the q-quantile of a cumulative histogram the way
// Prometheus's histogram_quantile does: linear within the bucket the rank
// falls in (the lowest bucket starting at 0); the largest finite bound when
// it falls in +Inf. NaN when empty.
func histQuantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].count
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe
			}
			if b.count == prevCount {
				return b.le
			}
			return prevLe + (b.le-prevLe)*(rank-prevCount)/(b.count-prevCount)
		}
		prevLe, prevCount = b.le, b.count
	}
	return prevLe
}

// median returns the median of xs (sorted in place).
func median(xs []float64) float64 { return percentile(xs, 0.5) }

// shareAtMost returns the share of observations <= le in a cumulative
// histogram that has a bucket with exactly that bound; NaN otherwise.
func shareAtMost(le float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return math.NaN()
	}
	for _, b := range bs {
		if b.le == le {
			return b.count / bs[len(bs)-1].count
		}
	}
	return math.NaN()
}
