package main

import (
	"math"
	"testing"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{[]float64{3, 1, 2}, 0.5, 2},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		{[]float64{5}, 0.99, 5},
		{[]float64{0, 10}, 0.99, 9.9},
	}
	for _, tt := range tests {
		if got := percentile(append([]float64(nil), tt.xs...), tt.q); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, tt.q, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("percentile(nil) = %v, want NaN", got)
	}
}

func TestSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3}
	if got := slope(xs, []float64{1, 3, 5, 7}); math.Abs(got-2) > 1e-9 {
		t.Errorf("slope = %v, want 2", got)
	}
	if got := slope(xs, []float64{4, 4, 4, 4}); got != 0 {
		t.Errorf("flat slope = %v, want 0", got)
	}
}

func TestHistQuantile(t *testing.T) {
	inf := math.Inf(1)
	bs := []bucket{{0.001, 50}, {0.002, 90}, {0.005, 100}, {inf, 100}}
	tests := []struct{ q, want float64 }{
		{0.5, 0.001},   // exactly at the first bucket's bound
		{0.25, 0.0005}, // halfway into the first bucket, which starts at 0
		{0.7, 0.0015},  // halfway into the second
		{0.95, 0.0035}, // halfway into the third
	}
	for _, tt := range tests {
		if got := histQuantile(tt.q, bs); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("histQuantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	over := []bucket{{0.001, 1}, {inf, 10}}
	if got := histQuantile(0.99, over); got != 0.001 {
		t.Errorf("quantile in +Inf = %v, want the largest finite bound 0.001", got)
	}
	if got := histQuantile(0.5, []bucket{{inf, 0}}); !math.IsNaN(got) {
		t.Errorf("empty histogram = %v, want NaN", got)
	}
}

func TestShareAtMost(t *testing.T) {
	bs := []bucket{{0.01, 50}, {0.02, 99}, {math.Inf(1), 100}}
	if got := shareAtMost(0.02, bs); got != 0.99 {
		t.Errorf("shareAtMost(0.02) = %v, want 0.99", got)
	}
	if got := shareAtMost(0.03, bs); !math.IsNaN(got) {
		t.Errorf("shareAtMost(no such bound) = %v, want NaN", got)
	}
}
