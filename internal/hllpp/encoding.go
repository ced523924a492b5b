package hllpp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The encoding of a sketch, version 1:
//
//	byte 0   version (1)
//	byte 1   precision p (4..18)
//	byte 2   layout: 0 dense, 1 sparse
//	dense    the 2^p registers, 6 bits each, packed from the low bits of each
//	         byte up (3·2^p/4 bytes: 384 at p=9)
//	sparse   uvarint count of non-zero registers, then per register in
//	         increasing index order: uvarint (index - previous index - 1, the
//	         first counted from -1) and one byte, its value
//
// MarshalBinary writes whichever layout is shorter: a group with a few distinct
// values costs a few bytes, a full one 387 bytes at p=9 (Spark's own buffer is
// 416). Only the registers are kept: the estimate depends on nothing else.
// UnmarshalBinary reads bytes from outside (a state topic) and checks all of
// them: a wrong version, precision or layout, a length that does not match, a
// register value no hash can produce, an index out of order or out of range,
// trailing bytes: each is an error, never a panic or a silently different
// sketch.
const (
	encodingVersion = 1
	layoutDense     = 0
	layoutSparse    = 1
	headerLen       = 3
)

// maxRegister is the largest value a register can hold at precision p: a hash
// whose bits after the index are all zero counts 64 - p zeros, plus one.
func maxRegister(p int) uint8 { return uint8(64 - p + 1) }

func denseLen(p int) int { return (registerBits << p) / 8 }

// MarshalBinary encodes the sketch (see the layout above).
func (s *Sketch) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(nil)
}

// AppendBinary appends the encoding of the sketch to b.
func (s *Sketch) AppendBinary(b []byte) ([]byte, error) {
	nonZero, sparseLen := 0, 0
	prev := -1
	s.eachNonZero(func(i int, _ uint8) {
		nonZero++
		sparseLen += uvarintLen(uint64(i-prev-1)) + 1
		prev = i
	})
	sparseLen += uvarintLen(uint64(nonZero))
	p := int(s.p)
	if sparseLen < denseLen(p) {
		b = append(b, encodingVersion, s.p, layoutSparse)
		b = binary.AppendUvarint(b, uint64(nonZero))
		prev = -1
		s.eachNonZero(func(i int, r uint8) {
			b = binary.AppendUvarint(b, uint64(i-prev-1))
			b = append(b, r)
			prev = i
		})
		return b, nil
	}
	b = append(b, encodingVersion, s.p, layoutDense)
	// Four registers are three bytes.
	m := s.Registers()
	for i := 0; i < m; i += 4 {
		v := uint32(s.Register(i)) | uint32(s.Register(i+1))<<6 | uint32(s.Register(i+2))<<12 | uint32(s.Register(i+3))<<18
		b = append(b, byte(v), byte(v>>8), byte(v>>16))
	}
	return b, nil
}

// eachNonZero calls f for each non-zero register in index order.
func (s *Sketch) eachNonZero(f func(i int, r uint8)) {
	for w, word := range s.words {
		for j := 0; word != 0; j++ {
			if r := uint8(word & registerMask); r != 0 {
				f(w*registersInWord+j, r)
			}
			word >>= registerBits
		}
	}
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// Unmarshal decodes a sketch written by MarshalBinary.
func Unmarshal(data []byte) (*Sketch, error) {
	var s Sketch
	if err := s.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	return &s, nil
}

// errCorrupt is wrapped by every error about the bytes themselves.
var errCorrupt = errors.New("hllpp: corrupt sketch encoding")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s (the stored state is damaged or was not written by cordstream; restore it or rebuild it from the topic)", errCorrupt, fmt.Sprintf(format, args...))
}

// IsCorrupt reports whether err says that bytes given to Unmarshal are not a
// sketch encoding.
func IsCorrupt(err error) bool { return errors.Is(err, errCorrupt) }

// UnmarshalBinary replaces s with the sketch encoded in data. On error s is
// unchanged.
func (s *Sketch) UnmarshalBinary(data []byte) error {
	if len(data) < headerLen {
		return corrupt("%d bytes, shorter than the %d-byte header", len(data), headerLen)
	}
	if v := data[0]; v != encodingVersion {
		return fmt.Errorf("%w: encoding version %d; this build reads version %d (state written by a newer cordstream? run that version, or rebuild the state from the topic)", errCorrupt, v, encodingVersion)
	}
	p := int(data[1])
	if p < MinPrecision || p > MaxPrecision {
		return corrupt("precision %d, want %d..%d", p, MinPrecision, MaxPrecision)
	}
	m := 1 << p
	top := maxRegister(p)
	out := Sketch{p: uint8(p), words: make([]uint64, numWords(p))}
	body := data[headerLen:]
	switch data[2] {
	case layoutDense:
		if len(body) != denseLen(p) {
			return corrupt("dense registers of precision %d take %d bytes, got %d", p, denseLen(p), len(body))
		}
		for i, j := 0, 0; i < m; i, j = i+4, j+3 {
			v := uint32(body[j]) | uint32(body[j+1])<<8 | uint32(body[j+2])<<16
			for q := 0; q < 4; q++ {
				r := uint8(v >> (6 * q) & registerMask)
				if r > top {
					return corrupt("register %d holds %d, more than %d (the most a hash can set at precision %d)", i+q, r, top, p)
				}
				out.setRegister(i+q, r)
			}
		}
	case layoutSparse:
		count, n := binary.Uvarint(body)
		if n <= 0 {
			return corrupt("unreadable register count")
		}
		if count > uint64(m) {
			return corrupt("%d non-zero registers, more than the %d of precision %d", count, m, p)
		}
		body = body[n:]
		prev := -1
		for c := uint64(0); c < count; c++ {
			gap, n := binary.Uvarint(body)
			if n <= 0 {
				return corrupt("unreadable index of non-zero register %d of %d", c+1, count)
			}
			if gap >= uint64(m-prev-1) {
				return corrupt("register index past %d (precision %d)", m-1, p)
			}
			idx := prev + 1 + int(gap)
			body = body[n:]
			if len(body) == 0 {
				return corrupt("register %d has no value", idx)
			}
			r := body[0]
			body = body[1:]
			if r == 0 || r > top {
				return corrupt("register %d holds %d, want 1..%d", idx, r, top)
			}
			out.setRegister(idx, r)
			prev = idx
		}
		if len(body) != 0 {
			return corrupt("%d bytes after the last register", len(body))
		}
	default:
		return corrupt("unknown layout %d", data[2])
	}
	*s = out
	return nil
}
