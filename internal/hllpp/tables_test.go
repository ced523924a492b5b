package hllpp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"testing"
)

// The tables must be the published ones to the last bit: estimates in the
// bias-corrected range depend on every decimal.
func TestTablesShape(t *testing.T) {
	wantLen := []int{79, 159, 200, 200, 200, 201, 200, 201, 201, 200, 201, 201, 200, 201, 200}
	if len(rawEstimateData) != 15 || len(biasData) != 15 || len(thresholds) != 15 {
		t.Fatalf("tables for %d/%d/%d precisions, want 15 (4..18)", len(rawEstimateData), len(biasData), len(thresholds))
	}
	for i := range wantLen {
		if len(rawEstimateData[i]) != wantLen[i] || len(biasData[i]) != wantLen[i] {
			t.Errorf("p=%d: %d raw and %d bias values, want %d", i+4, len(rawEstimateData[i]), len(biasData[i]), wantLen[i])
		}
	}
	wantThresholds := []float64{10, 20, 40, 80, 220, 400, 900, 1800, 3100, 6500, 15500, 20000, 50000, 120000, 350000}
	if !slices.Equal(thresholds[:], wantThresholds) {
		t.Errorf("thresholds %v, want Spark's %v (15500 at p=14, not the appendix's 11500)", thresholds, wantThresholds)
	}
}

// Each raw estimate minus its bias is the cardinality it was measured at: an
// integer grid starting at 1 with (nearly) constant steps. A wrong digit in
// either table breaks it.
func TestTablesCardinalityGrid(t *testing.T) {
	for i := range rawEstimateData {
		p := i + 4
		var steps []int64
		prev := int64(0)
		for j, raw := range rawEstimateData[i] {
			n := raw - biasData[i][j]
			rn := math.Round(n)
			if math.Abs(n-rn) > 1e-9*math.Max(1, rn) {
				t.Fatalf("p=%d entry %d: raw %v - bias %v = %v, not an integer", p, j, raw, biasData[i][j], n)
			}
			if j == 0 {
				if rn != 1 {
					t.Fatalf("p=%d: first cardinality %v, want 1", p, rn)
				}
			} else {
				steps = append(steps, int64(rn)-prev)
			}
			prev = int64(rn)
		}
		lo, hi := slices.Min(steps), slices.Max(steps)
		if lo <= 0 || hi-lo > 1 {
			t.Errorf("p=%d: cardinality steps from %d to %d, want one step size (±1)", p, lo, hi)
		}
	}
}

func tableSum(tables [15][]float64) string {
	h := sha256.New()
	var b [8]byte
	for _, tab := range tables {
		for _, v := range tab {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SHA-256 of Spark 4.2.0's tables (float64 bits, little-endian, p=4..18 in
// order), computed from the JVM's arrays independently of this file.
func TestTablesChecksums(t *testing.T) {
	if got, want := tableSum(rawEstimateData), "eec4cd7be110b44070394076f5cc6e3ad410e72cf83b497b621ef4fff3a4f512"; got != want {
		t.Errorf("raw estimate table SHA-256 %s, want %s", got, want)
	}
	if got, want := tableSum(biasData), "87937418aa2e02c42441739151b7cba4e087d1043f2a3fc0e3232a59b5684f7c"; got != want {
		t.Errorf("bias table SHA-256 %s, want %s", got, want)
	}
}

// The p=5 and p=6 raw tables are not sorted; estimateBias must search them as
// Java does, and does on the sorted ones what a sorted search does.
func TestTablesSortedness(t *testing.T) {
	unsorted := map[int][]int{5: {127, 130}, 6: {148, 167}}
	for i, tab := range rawEstimateData {
		p := i + 4
		var drops []int
		for j := 1; j < len(tab); j++ {
			if tab[j] < tab[j-1] {
				drops = append(drops, j-1)
			}
		}
		if !slices.Equal(drops, unsorted[p]) {
			t.Errorf("p=%d: the raw table decreases after entries %v, want %v", p, drops, unsorted[p])
		}
	}
}
