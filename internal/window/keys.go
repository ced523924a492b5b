package window

import (
	"encoding/binary"
	"strings"
)

// keyTable interns group-by tuples: each distinct tuple held in state gets a
// small id, its values are copied once, and it is forgotten when no state
// row refers to it any more.
//
// With one group-by column the map is keyed by the value itself (NULL has
// its own id), so the common lookup costs one string hash and no copy. With
// other counts the tuple is encoded (encodeKeys) into a reused buffer.
type keyTable struct {
	n      int
	index  map[string]int32
	nullID int32 // id of the NULL tuple when n == 1, -1 if none
	infos  []keyInfo
	recent [][recentSlots]recentCell // by id: one cache line per key
	free   []int32
	buf    []byte
}

type keyInfo struct {
	enc  string  // map key ("" and unused for the NULL tuple when n == 1)
	vals []Value // the tuple; never mutated once published
	refs int32   // state rows holding this id
}

// recentSlots is how many recent windows a key remembers its cell in (a
// power of two, at least the windows per event of the common configurations).
const recentSlots = 4

// recentCell locates a key's cell in the bucket with the given serial.
type recentCell struct {
	serial uint64
	pos    int32
}

func (t *keyTable) init(n int) {
	t.n = n
	t.index = make(map[string]int32)
	t.nullID = -1
}

// intern returns the id of keys, creating it (with refs 0) if new.
func (t *keyTable) intern(keys []Value) int32 {
	if t.n == 1 {
		v := keys[0]
		if !v.Valid {
			if t.nullID < 0 {
				t.nullID = t.alloc(keyInfo{vals: []Value{{}}})
			}
			return t.nullID
		}
		if id, ok := t.index[v.S]; ok {
			return id
		}
		s := strings.Clone(v.S)
		id := t.alloc(keyInfo{enc: s, vals: []Value{{S: s, Valid: true}}})
		t.index[s] = id
		return id
	}
	t.buf = encodeKeys(t.buf[:0], keys)
	if id, ok := t.index[string(t.buf)]; ok {
		return id
	}
	vals := make([]Value, len(keys))
	for i, v := range keys {
		if v.Valid {
			vals[i] = Value{S: strings.Clone(v.S), Valid: true}
		}
	}
	enc := string(t.buf)
	id := t.alloc(keyInfo{enc: enc, vals: vals})
	t.index[enc] = id
	return id
}

func (t *keyTable) alloc(k keyInfo) int32 {
	if n := len(t.free); n > 0 {
		id := t.free[n-1]
		t.free = t.free[:n-1]
		t.infos[id] = k
		t.recent[id] = [recentSlots]recentCell{}
		return id
	}
	t.infos = append(t.infos, k)
	t.recent = append(t.recent, [recentSlots]recentCell{})
	return int32(len(t.infos) - 1)
}

func (t *keyTable) values(id int32) []Value { return t.infos[id].vals }

func (t *keyTable) ref(id int32) { t.infos[id].refs++ }

// unref drops one reference; the tuple is forgotten at zero.
func (t *keyTable) unref(id int32) {
	k := &t.infos[id]
	k.refs--
	if k.refs > 0 {
		return
	}
	if t.n == 1 && id == t.nullID {
		t.nullID = -1
	} else {
		delete(t.index, k.enc)
	}
	*k = keyInfo{}
	t.free = append(t.free, id)
}

// len returns the number of tuples held.
func (t *keyTable) len() int { return len(t.infos) - len(t.free) }

// encodeKeys appends an unambiguous encoding of keys to b: per value a tag
// byte (0 NULL, 1 string) and, for strings, a varint length and the bytes.
func encodeKeys(b []byte, keys []Value) []byte {
	for _, v := range keys {
		if !v.Valid {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(v.S)))
		b = append(b, v.S...)
	}
	return b
}
