package hllpp

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func sketchOf(t testing.TB, p, n int, seed uint64) *Sketch {
	s, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		var h uint64
		seed, h = splitmix64(seed)
		s.AddHash(h)
	}
	return s
}

func sameRegisters(a, b *Sketch) bool {
	if a.p != b.p {
		return false
	}
	for i := range a.words {
		if a.words[i] != b.words[i] {
			return false
		}
	}
	return true
}

func TestEncodingRoundTrip(t *testing.T) {
	for _, p := range []int{4, 5, 9, 12, 18} {
		for _, n := range []int{0, 1, 2, 5, 40, 100, 1 << p, 10 << p} {
			s := sketchOf(t, p, n, uint64(p*n+1))
			b, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("p=%d n=%d: %v", p, n, err)
			}
			if !sameRegisters(s, back) || back.Estimate() != s.Estimate() {
				t.Fatalf("p=%d n=%d: round trip changed the sketch", p, n)
			}
			if max := headerLen + denseLen(p); len(b) > max {
				t.Errorf("p=%d n=%d: %d bytes, more than dense %d", p, n, len(b), max)
			}
			// Appending keeps what was there.
			app, _ := s.AppendBinary([]byte("xy"))
			if !bytes.Equal(app[2:], b) || string(app[:2]) != "xy" {
				t.Errorf("AppendBinary did not append")
			}
		}
	}
	// Sizes at the default precision: sparse while few registers are set.
	for _, c := range []struct{ n, want int }{{0, 4}, {1, 7}, {10, 4 + 3*10}, {100000, 387}} {
		s := sketchOf(t, 9, c.n, 7)
		b, _ := s.MarshalBinary()
		if len(b) > c.want {
			t.Errorf("p=9 with %d values: %d bytes, want at most %d", c.n, len(b), c.want)
		}
	}
}

// Both layouts decode to the same registers: a dense encoding of a sparse
// sketch is valid too.
func TestEncodingDenseOfSparse(t *testing.T) {
	s := sketchOf(t, 9, 3, 11)
	b := []byte{encodingVersion, 9, layoutDense}
	for i := 0; i < 512; i += 4 {
		v := uint32(s.Register(i)) | uint32(s.Register(i+1))<<6 | uint32(s.Register(i+2))<<12 | uint32(s.Register(i+3))<<18
		b = append(b, byte(v), byte(v>>8), byte(v>>16))
	}
	back, err := Unmarshal(b)
	if err != nil || !sameRegisters(s, back) {
		t.Fatalf("dense encoding of a sparse sketch: %v", err)
	}
}

func TestEncodingRejects(t *testing.T) {
	good, _ := sketchOf(t, 9, 3, 5).MarshalBinary()
	dense, _ := sketchOf(t, 9, 5000, 5).MarshalBinary()
	if good[2] != layoutSparse || dense[2] != layoutDense {
		t.Fatalf("layouts %d, %d", good[2], dense[2])
	}
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	sparse := func(p byte, count uint64, rest ...byte) []byte {
		b := binary.AppendUvarint([]byte{encodingVersion, p, layoutSparse}, count)
		return append(b, rest...)
	}
	cases := map[string][]byte{
		"empty":            nil,
		"short header":     {1, 9},
		"version 0":        mut(good, func(b []byte) []byte { b[0] = 0; return b }),
		"version 2":        mut(good, func(b []byte) []byte { b[0] = 2; return b }),
		"precision 3":      mut(good, func(b []byte) []byte { b[1] = 3; return b }),
		"precision 19":     mut(good, func(b []byte) []byte { b[1] = 19; return b }),
		"layout 2":         mut(good, func(b []byte) []byte { b[2] = 2; return b }),
		"dense short":      dense[:len(dense)-1],
		"dense long":       append(append([]byte(nil), dense...), 0),
		"dense too big":    mut(dense, func(b []byte) []byte { b[3] = 63; return b }),
		"dense wrong p":    mut(dense, func(b []byte) []byte { b[1] = 10; return b }),
		"sparse trailing":  append(append([]byte(nil), good...), 0),
		"sparse truncated": good[:len(good)-1],
		"sparse no count":  {1, 9, 1},
		"bad uvarint":      {1, 9, 1, 0x80},
		"count too big":    sparse(9, 513),
		"huge count":       sparse(9, 1<<62),
		"zero value":       sparse(9, 1, 0, 0),
		"value too big":    sparse(9, 1, 0, 57),
		"index past end":   sparse(9, 1, 0x80, 4, 1),
		"huge gap":         append(sparse(9, 1), append(binary.AppendUvarint(nil, 1<<63), 1)...),
		"second past end":  sparse(9, 2, 0xff, 3, 1, 0, 1),
		"missing entries":  sparse(9, 3, 0, 1, 0, 1),
		"gap overflow int": append(sparse(9, 2, 0, 1), append(binary.AppendUvarint(nil, ^uint64(0)), 1)...),
	}
	for name, b := range cases {
		s := sketchOf(t, 4, 10, 1)
		before := s.Words()
		err := s.UnmarshalBinary(b)
		if err == nil {
			t.Errorf("%s: %x accepted", name, b)
			continue
		}
		if !IsCorrupt(err) {
			t.Errorf("%s: error %v does not say corrupt", name, err)
		}
		for i, w := range s.Words() {
			if w != before[i] || s.p != 4 {
				t.Errorf("%s: the sketch changed on error", name)
				break
			}
		}
	}
	// The last index, 511, is fine; the maximum value 56 at p=9 too.
	if _, err := Unmarshal(sparse(9, 1, 0xff, 3, 56)); err != nil {
		t.Errorf("register 511 = 56: %v", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, n := range []int{0, 1, 30, 5000} {
		b, _ := sketchOf(f, 9, n, 3).MarshalBinary()
		f.Add(b)
	}
	b, _ := sketchOf(f, 4, 100, 3).MarshalBinary()
	f.Add(b)
	f.Add([]byte{1, 4, 1, 2, 0, 1, 15, 61})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Unmarshal(data)
		if err != nil {
			if !IsCorrupt(err) {
				t.Fatalf("error not marked corrupt: %v", err)
			}
			return
		}
		// Whatever decodes is a valid sketch: registers in range, an estimate,
		// and an encoding that decodes to the same registers.
		top := maxRegister(s.Precision())
		for i := 0; i < s.Registers(); i++ {
			if s.Register(i) > top {
				t.Fatalf("register %d = %d", i, s.Register(i))
			}
		}
		if e := s.Estimate(); e < 0 {
			t.Fatalf("estimate %d", e)
		}
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(again)
		if err != nil || !sameRegisters(s, back) {
			t.Fatalf("re-encoding: %v", err)
		}
		if len(again) > len(data) {
			t.Fatalf("re-encoded in %d bytes, the input had %d", len(again), len(data))
		}
	})
}
