package analyzer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"

	"github.com/cordstream/cordstream/internal/chat"
)

// dedupID is a message id (never empty: records without one are not
// de-duplicated): Discord's ids are snowflakes, decimal numbers
// that fit 64 bits, and are kept as numbers (a quarter of the memory, and
// cheaper to hash than strings); any other id is kept as a string.
type dedupID struct {
	n uint64
	s string // the id when it is not a canonical decimal uint64
}

// toDedupID returns the id of msgID. A string id aliases msgID: copy it
// before keeping it when msgID aliases a record.
func toDedupID(msgID string) dedupID {
	if n, ok := canonicalUint(msgID); ok {
		return dedupID{n: n}
	}
	return dedupID{s: msgID}
}

// canonicalUint parses s when it is the canonical decimal form of a uint64
// (no sign, no leading zero): then the number and the string name the same
// id.
func canonicalUint(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n uint64
	i := 0
	// Eight digits at a time (a snowflake has 17 to 20): no overflow in
	// the first 16, n < 10^16.
	for ; len(s)-i >= 8; i += 8 {
		v, ok := eightDigits(s[i : i+8])
		if !ok {
			return 0, false
		}
		n = n*100_000_000 + v
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if i >= 19 && n > (1<<64-1-d)/10 { // 19 digits never overflow
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// eightDigits parses eight ASCII decimal digits, the first the most
// significant, with a few word operations instead of a loop.
func eightDigits(s string) (uint64, bool) {
	// Little endian: s[0] is the lowest byte.
	w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	const ones = 0x0101010101010101
	// Every byte is in 0x30-0x39: its high nibble is 3 and adding 6 does not
	// carry out of its low nibble.
	if w&(0xF0*ones) != 0x30*ones || (w+0x06*ones)&(0xF0*ones) != 0x30*ones {
		return 0, false
	}
	w -= 0x30 * ones
	// Pairs of digits into 16-bit lanes, then 4 digits into 32-bit lanes,
	// then all eight: each step multiplies the more significant half (the
	// lower bytes) and adds the other.
	w = (w*10 + w>>8) & 0x00FF00FF00FF00FF
	w = (w*100 + w>>16) & 0x0000FFFF0000FFFF
	w = (w*10000 + w>>32) & 0xFFFFFFFF
	return w, true
}

// idSet is the set of message ids of one de-duplication slot.
//
// Numeric ids (snowflakes) are kept in a sorted slice, old, and two small
// hash sets of the ids added since: gen[0], the newest, and gen[1]. When
// gen[0] holds genMax ids, gen[1] is merged into old and gen[0] becomes
// gen[1]. Snowflakes grow with their message's creation time, and a slot
// receives them roughly in that order, so a lookup mostly ends in the two
// generations, small enough for the CPU's cache, or at old's end: old is
// searched back from its end, touching a few cache lines, where one hash
// set of every id would miss the cache on most probes. The slice takes 8
// bytes per id, half of a map's.
type idSet struct {
	old []uint64
	gen [2]idGen
	str map[string]struct{} // ids that are not snowflakes

	scratch []uint64 // for sortIDs

	// hint is how many ids a busy slot is expected to hold: old gets room
	// for as many when a full generation is first merged into it (a slot
	// that receives few ids never allocates it).
	hint int

	// maxID is at least every numeric id held (0 when none is): a larger
	// id is not in the set. Snowflakes grow with time, so most new ids are
	// larger than any before them and are found new without a probe.
	maxID uint64

	// With track, the numeric ids added are also encoded for storage
	// (appendNumChunk) as their generation is merged into old, sorted for
	// the merge anyway, into pending, until the caller takes them: the
	// generations only ever hold ids added since the last flush.
	track   bool
	pending [][]byte
}

// idGen is a generation of ids: a hash set, and the same ids in the order
// they came.
type idGen struct {
	set  u64Set
	list []uint64
}

// genMax is how many ids the newest generation holds before it ages.
const genMax = 1 << 13

func newIDSet(hint int, track bool) idSet {
	return idSet{str: map[string]struct{}{}, track: track, hint: hint}
}

func (s *idSet) has(id dedupID) bool {
	if id.s != "" {
		_, ok := s.str[id.s]
		return ok
	}
	if id.n > s.maxID {
		return false
	}
	return s.gen[0].set.has(id.n) || s.gen[1].set.has(id.n) || s.inOld(id.n)
}

// sortLoaded sorts old after ids were appended to it directly (restoring
// stored ids) and drops repeats.
func (s *idSet) sortLoaded() {
	slices.Sort(s.old)
	s.old = slices.Compact(s.old)
	if n := len(s.old); n > 0 {
		s.maxID = max(s.maxID, s.old[n-1])
	}
}

// inOld searches old for n: galloping back from the end, where recent
// ids lie, then a binary search within the last step.
func (s *idSet) inOld(n uint64) bool {
	old := s.old
	hi := len(old) - 1 // old[hi] >= n
	if hi < 0 || old[hi] < n {
		return false
	}
	lo := -1 // old[lo] < n, or lo = -1
	for step := 1; ; step *= 2 {
		i := hi - step
		if i < 0 {
			break
		}
		if old[i] < n {
			lo = i
			break
		}
		hi = i
	}
	_, found := slices.BinarySearch(old[lo+1:hi+1], n)
	return found
}

// add adds an id that is not in the set.
func (s *idSet) add(id dedupID) {
	if id.s != "" {
		s.str[id.s] = struct{}{}
		return
	}
	s.maxID = max(s.maxID, id.n)
	g := &s.gen[0]
	g.set.add(id.n)
	g.list = append(g.list, id.n)
	if len(g.list) >= genMax {
		s.age()
	}
}

// age merges the older generation into old; the newest becomes the older.
func (s *idSet) age() {
	s.merge(&s.gen[1])
	s.gen[0], s.gen[1] = s.gen[1], s.gen[0]
}

// merge moves generation g into old (encoding its ids into pending with
// track) and empties it.
func (s *idSet) merge(g *idGen) {
	if len(g.list) == 0 {
		return
	}
	sortIDs(g.list, &s.scratch)
	if s.track {
		for ids := g.list; len(ids) > 0; {
			v, n := appendNumChunk(nil, ids, maxDedupRecordBytes)
			s.pending = append(s.pending, v)
			ids = ids[n:]
		}
	}
	if cap(s.old) == 0 && len(g.list) >= genMax && s.hint > len(g.list) {
		s.old = make([]uint64, 0, s.hint)
	}
	s.old = mergeSorted(s.old, g.list)
	g.set.reset()
	g.list = g.list[:0]
}

// flush merges both generations into old, keeping their tables: after it,
// pending holds every numeric id added since the last flush (with track).
func (s *idSet) flush() {
	s.merge(&s.gen[1])
	s.merge(&s.gen[0])
}

// takePending returns the encoded ids and forgets them.
func (s *idSet) takePending() [][]byte {
	p := s.pending
	s.pending = nil
	return p
}

// u64Set is a hash set of uint64s: open addressing with linear probing
// in a table at most half full, 0 marking an empty slot (the id 0 is kept
// apart), a multiplicative hash. It is two to three times faster than a Go
// map of the same ids. The table starts small and doubles as it fills.
type u64Set struct {
	slots   []uint64
	shift   uint // 64 - log2(len(slots))
	n       int
	hasZero bool
}

func (t *u64Set) index(n uint64) int { return int((n * 0x9E3779B97F4A7C15) >> t.shift) }

func (t *u64Set) has(n uint64) bool {
	if n == 0 {
		return t.hasZero
	}
	if t.n == 0 {
		return false
	}
	mask := len(t.slots) - 1
	for i := t.index(n); ; i = (i + 1) & mask {
		switch t.slots[i] {
		case n:
			return true
		case 0:
			return false
		}
	}
}

// add adds n, which is not in the set.
func (t *u64Set) add(n uint64) {
	if n == 0 {
		t.hasZero = true
		return
	}
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	t.put(n)
	t.n++
}

func (t *u64Set) put(n uint64) {
	mask := len(t.slots) - 1
	i := t.index(n)
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = n
}

func (t *u64Set) grow() {
	old := t.slots
	size := max(64, 2*len(old))
	t.slots = make([]uint64, size)
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	for _, n := range old {
		if n != 0 {
			t.put(n)
		}
	}
}

// reset empties the set, keeping its table.
func (t *u64Set) reset() {
	if t.n > 0 {
		clear(t.slots)
	}
	t.n, t.hasZero = 0, false
}

// sortIDs sorts ids: a radix sort on the bits in which they differ (the
// ids of a generation share their high bits, the time of their creation:
// three or four passes), using scratch, grown as needed.
func sortIDs(ids []uint64, scratch *[]uint64) {
	if len(ids) < 256 {
		slices.Sort(ids)
		return
	}
	lo, hi := ids[0], ids[0]
	for _, n := range ids {
		lo, hi = min(lo, n), max(hi, n)
	}
	width := 64 - bits.LeadingZeros64(lo^hi)
	if cap(*scratch) < len(ids) {
		*scratch = make([]uint64, len(ids))
	}
	src, dst := ids, (*scratch)[:len(ids)]
	const digit = 11
	var count [1 << digit]int
	for shift := 0; shift < width; shift += digit {
		clear(count[:])
		for _, n := range src {
			count[(n>>shift)&(1<<digit-1)]++
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for _, n := range src {
			d := (n >> shift) & (1<<digit - 1)
			dst[count[d]] = n
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &ids[0] {
		copy(ids, src)
	}
}

// settle merges both generations into old and lets their tables go, and
// trims old to its length: for a slot that no longer receives ids (its
// window has passed; only late copies still arrive), which may live for
// the rest of the de-duplication horizon.
func (s *idSet) settle() {
	s.flush()
	s.gen = [2]idGen{}
	s.scratch = nil
	if cap(s.old) > len(s.old)+len(s.old)/8 {
		s.old = slices.Clip(slices.Clone(s.old))
	}
}

// mergeSorted merges the sorted add into the sorted old, in place from the
// back: when add's ids come after old's, as they mostly do, it only copies
// add.
func mergeSorted(old, add []uint64) []uint64 {
	i, j := len(old)-1, len(add)-1
	old = slices.Grow(old, len(add))[:len(old)+len(add)]
	for w := len(old) - 1; j >= 0; w-- {
		if i >= 0 && old[i] > add[j] {
			old[w] = old[i]
			i--
		} else {
			old[w] = add[j]
			j--
		}
	}
	return old
}

func (s *idSet) len() int {
	return len(s.old) + len(s.gen[0].list) + len(s.gen[1].list) + len(s.str)
}

// Stored ids. A de-duplication record's value is one of:
//
//   - numeric ids: the byte idsBinary, then the ids in increasing order as
//     unsigned varints, the first one whole and each next one as its
//     difference from the one before (snowflakes created a millisecond
//     apart differ by about 2^22: 3 or 4 bytes each, where their decimal
//     strings take 19 plus JSON's quotes and commas);
//   - any ids: a JSON array of strings (how ids that are not snowflakes are
//     stored, and how earlier versions stored every id).
const idsBinary = 0x01

// maxDedupRecordBytes bounds the value of a de-duplication record, well
// under Kafka's default max.message.bytes (1 MiB).
const maxDedupRecordBytes = 256 << 10

// appendNumChunk appends a record value holding the first of the sorted,
// distinct ids, as many as fit in max bytes (at least one), and returns how
// many it took.
func appendNumChunk(b []byte, ids []uint64, max int) ([]byte, int) {
	start := len(b)
	b = append(b, idsBinary)
	var prev uint64
	n := 0
	for n < len(ids) {
		mark := len(b)
		b = binary.AppendUvarint(b, ids[n]-prev)
		if n > 0 && len(b)-start > max {
			b = b[:mark]
			break
		}
		prev = ids[n]
		n++
	}
	return b, n
}

// appendIDsChunk appends a JSON array of strings holding the first of ids,
// as many as fit in max bytes (at least one), and returns how many it took.
func appendIDsChunk(b []byte, ids []string, max int) ([]byte, int) {
	start := len(b)
	b = append(b, '[')
	n := 0
	for n < len(ids) {
		mark := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		b = chat.AppendJSONString(b, ids[n])
		if n > 0 && len(b)-start+1 > max {
			b = b[:mark]
			break
		}
		n++
	}
	return append(b, ']'), n
}

// decodeIDs calls fn with each id of a de-duplication record's value.
func decodeIDs(v []byte, fn func(dedupID)) error {
	if len(v) == 0 {
		return errors.New("empty")
	}
	switch v[0] {
	case idsBinary:
		var prev uint64
		for i, rest := 0, v[1:]; len(rest) > 0; i++ {
			d, k := binary.Uvarint(rest)
			if k <= 0 {
				return errors.New("truncated or overlong varint")
			}
			if i > 0 && (d == 0 || prev+d < prev) {
				return errors.New("ids not strictly increasing")
			}
			prev += d
			fn(dedupID{n: prev})
			rest = rest[k:]
		}
		return nil
	case '[':
		var ids []string
		if err := json.Unmarshal(v, &ids); err != nil {
			return err
		}
		for _, s := range ids {
			if s != "" { // never stored; an empty id is not de-duplicated
				fn(toDedupID(s))
			}
		}
		return nil
	}
	return fmt.Errorf("unknown format %s", strconv.Quote(string(v[:1])))
}
