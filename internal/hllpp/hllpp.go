// Package hllpp is Spark's HyperLogLog++, the sketch behind approx_count_distinct,
// reproduced bit for bit: the same hash (XXH64, seed 42, over the bytes Spark
// hashes for each type), the same precision rule, the same six-bit registers, and
// the same estimate (linear counting with Spark's thresholds and its E <= 2.5m
// rule, the raw estimate, bias correction by Spark's nearest-neighbour
// interpolation over the HLL++ paper's tables, Java's rounding). Equal inputs give
// Spark's number, not an approximation of it.
//
// Spark has no sparse mode: even two distinct values can collide in one register,
// so small sets are estimated too, exactly as Spark estimates them.
//
// A Sketch is what Spark keeps as the aggregation buffer of one group. Sketches
// of the same precision merge (register-wise maximum), in any order and any
// number of times, so a group's sketch can be built across batches and
// instances and stored between them (MarshalBinary / UnmarshalBinary). A Sketch
// is not safe for concurrent use.
package hllpp

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

const (
	// DefaultRelativeSD is approx_count_distinct's default relative standard
	// deviation; it gives precision 9 (512 registers).
	DefaultRelativeSD = 0.05
	// MinPrecision and MaxPrecision bound the precisions this package
	// supports: Spark's bias tables cover 4..18, and Spark refuses less than 4.
	MinPrecision = 4
	MaxPrecision = 18
	// Seed is the XXH64 seed Spark hashes with.
	Seed = 42

	registerBits    = 6
	registerMask    = 1<<registerBits - 1
	registersInWord = 64 / registerBits // 10: bits 60..63 of a word stay unused, as in Spark
)

// PrecisionFor is the precision Spark derives from a relative standard
// deviation: ceil(2 * ln(1.106 / rsd) / ln 2), computed in float64 as Spark
// computes it in double. It refuses what Spark refuses (a precision under 4:
// rsd above about 0.39), precisions over MaxPrecision (rsd under about
// 0.0026), and an rsd whose precision sits so close to an integer that Go's and
// the JVM's logarithms could round it apart.
func PrecisionFor(relativeSD float64) (int, error) {
	if math.IsNaN(relativeSD) || relativeSD <= 0 || math.IsInf(relativeSD, 0) {
		return 0, fmt.Errorf("hllpp: relative standard deviation %v: want a positive number such as %v", relativeSD, DefaultRelativeSD)
	}
	x := 2.0 * math.Log(1.106/relativeSD) / math.Log(2.0)
	if d := math.Abs(x - math.Round(x)); d < 1e-9 {
		return 0, fmt.Errorf("hllpp: relative standard deviation %v lies on the boundary between two precisions (%.0f and %.0f); pick a slightly different value", relativeSD, math.Round(x), math.Round(x)+1)
	}
	p := int(math.Ceil(x))
	switch {
	case p < MinPrecision:
		return 0, fmt.Errorf("hllpp: relative standard deviation %v is too large: HLL++ requires at least 4 bits for addressing; use at most 0.39", relativeSD)
	case p > MaxPrecision:
		return 0, fmt.Errorf("hllpp: relative standard deviation %v needs precision %d; the supported maximum is %d (use 0.0026 or more)", relativeSD, p, MaxPrecision)
	}
	return p, nil
}

// Sketch is one HLL++ buffer: 2^p six-bit registers, packed ten to a 64-bit
// word as Spark packs them (register i in word i/10 at bit 6*(i%10)), so Words
// is Spark's buffer. The zero Sketch is not usable: use New.
type Sketch struct {
	p     uint8
	words []uint64
}

// New returns an empty sketch of precision p (MinPrecision..MaxPrecision).
func New(p int) (*Sketch, error) {
	if p < MinPrecision || p > MaxPrecision {
		return nil, fmt.Errorf("hllpp: precision %d: want %d..%d", p, MinPrecision, MaxPrecision)
	}
	return &Sketch{p: uint8(p), words: make([]uint64, numWords(p))}, nil
}

// NewForRelativeSD returns an empty sketch of the precision Spark uses for
// approx_count_distinct(col, relativeSD).
func NewForRelativeSD(relativeSD float64) (*Sketch, error) {
	p, err := PrecisionFor(relativeSD)
	if err != nil {
		return nil, err
	}
	return New(p)
}

// numWords is Spark's buffer size: m/10 + 1 longs (52 at p=9; its last word
// then holds registers 510 and 511).
func numWords(p int) int { return (1<<p)/registersInWord + 1 }

// Precision is p: the sketch has 2^p registers.
func (s *Sketch) Precision() int { return int(s.p) }

// Registers is 2^p.
func (s *Sketch) Registers() int { return 1 << s.p }

// Register returns register i (0 <= i < Registers()).
func (s *Sketch) Register(i int) uint8 {
	return uint8(s.words[i/registersInWord] >> (registerBits * (i % registersInWord)) & registerMask)
}

func (s *Sketch) setRegister(i int, v uint8) {
	w, shift := i/registersInWord, uint(registerBits*(i%registersInWord))
	s.words[w] = s.words[w]&^(registerMask<<shift) | uint64(v)<<shift
}

// Words returns Spark's buffer, the words as Spark's longs hold them (the
// same bits): for debugging against Spark's HyperLogLogPlusPlusHelper.query.
func (s *Sketch) Words() []uint64 { return append([]uint64(nil), s.words...) }

// Reset empties the sketch.
func (s *Sketch) Reset() { clear(s.words) }

// Clone returns an independent copy.
func (s *Sketch) Clone() *Sketch {
	return &Sketch{p: s.p, words: append([]uint64(nil), s.words...)}
}

// IsEmpty reports whether nothing was added (the estimate is then 0).
func (s *Sketch) IsEmpty() bool {
	for _, w := range s.words {
		if w != 0 {
			return false
		}
	}
	return true
}

// AddHash adds a value by its 64-bit XXH64 hash (seed 42), as Spark's update
// does: the top p bits choose the register, and the register keeps the maximum
// of 1 + the number of leading zeros of the remaining bits (the bit below them
// is set so that the count stops at 64 - p + 1).
func (s *Sketch) AddHash(x uint64) {
	p := uint(s.p)
	idx := int(x >> (64 - p))
	pw := uint8(bits.LeadingZeros64(x<<p|1<<(p-1)) + 1)
	w, shift := idx/registersInWord, uint(registerBits*(idx%registersInWord))
	if cur := uint8(s.words[w] >> shift & registerMask); pw > cur {
		s.words[w] = s.words[w]&^(registerMask<<shift) | uint64(pw)<<shift
	}
}

// AddString adds a Spark STRING: the hash is over its UTF-8 bytes, as Spark
// holds them ("" is a value like any other). A null is never added: Spark skips
// nulls, so the caller does not call Add for one.
func (s *Sketch) AddString(v string) { s.AddHash(HashString(v)) }

// AddBytes adds a STRING given as its bytes (or a BINARY: Spark hashes both the
// same way).
func (s *Sketch) AddBytes(v []byte) { s.AddHash(HashBytes(v)) }

// AddInt adds a Spark INT (also DATE as days, SHORT, BYTE, and BOOLEAN as 1 or
// 0: Spark hashes all of them as a 4-byte int).
func (s *Sketch) AddInt(v int32) { s.AddHash(HashInt(v)) }

// AddLong adds a Spark BIGINT (also TIMESTAMP as microseconds).
func (s *Sketch) AddLong(v int64) { s.AddHash(HashLong(v)) }

// HashString is Spark's xxhash64 of a STRING value.
func HashString(v string) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(Seed)
	_, _ = d.WriteString(v)
	return d.Sum64()
}

// HashBytes is Spark's xxhash64 of a STRING or BINARY value given as bytes.
func HashBytes(v []byte) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(Seed)
	_, _ = d.Write(v)
	return d.Sum64()
}

// HashInt is Spark's xxhash64 of an INT: XXH64 of its 4 little-endian bytes.
func HashInt(v int32) uint64 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return HashBytes(b[:])
}

// HashLong is Spark's xxhash64 of a BIGINT: XXH64 of its 8 little-endian bytes.
func HashLong(v int64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	return HashBytes(b[:])
}

// Merge folds o into s (register-wise maximum), as Spark merges two buffers of
// one group. Both must have the same precision.
func (s *Sketch) Merge(o *Sketch) error {
	if o.p != s.p {
		return fmt.Errorf("hllpp: cannot merge a sketch of precision %d into one of precision %d: both must come from the same relative standard deviation", o.p, s.p)
	}
	for w := range s.words {
		a, b := s.words[w], o.words[w]
		if a == b || b == 0 {
			continue
		}
		var out uint64
		for shift := uint(0); shift < registerBits*registersInWord; shift += registerBits {
			out |= max(a>>shift&registerMask, b>>shift&registerMask) << shift
		}
		s.words[w] = out
	}
	return nil
}
