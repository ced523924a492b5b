package hllpp

import (
	"strconv"
	"testing"
)

// The cost of one record in an approx_count_distinct group: hashing the value
// and updating a register.
func BenchmarkAddString(b *testing.B) {
	s, _ := New(9)
	vals := make([]string, 1024)
	for i := range vals {
		vals[i] = strconv.Itoa(1105394453412093982 + i*7919) // a snowflake id as Discord sends it
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.AddString(vals[i&1023])
	}
}

func BenchmarkAddInt(b *testing.B) {
	s, _ := New(9)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.AddInt(int32(i & 4095))
	}
}

func BenchmarkAddLong(b *testing.B) {
	s, _ := New(9)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.AddLong(int64(i))
	}
}

// An output row: the estimate of one group (a pass over its 512 registers).
func BenchmarkEstimate(b *testing.B) {
	for _, n := range []int{10, 1500, 100000} {
		s := sketchOf(b, 9, n, 1)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = s.Estimate()
			}
		})
	}
}

func BenchmarkMerge(b *testing.B) {
	x, y := sketchOf(b, 9, 2000, 1), sketchOf(b, 9, 2000, 2)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = x.Merge(y)
	}
}

func BenchmarkMarshal(b *testing.B) {
	for _, n := range []int{5, 100000} {
		s := sketchOf(b, 9, n, 1)
		buf := make([]byte, 0, 512)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf, _ = s.AppendBinary(buf[:0])
			}
		})
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	for _, n := range []int{5, 100000} {
		data, _ := sketchOf(b, 9, n, 1).MarshalBinary()
		var s Sketch
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = s.UnmarshalBinary(data)
			}
		})
	}
}
