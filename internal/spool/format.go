package spool

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
)

// On-disk format.
//
// A spool directory holds segment files named <first id, 20 decimal
// digits>.seg, an acknowledgement checkpoint named "acked", and a LOCK file.
//
// A segment starts with the 8-byte magic "CSSPOOL1" and continues with
// entries, each:
//
//	uint32 LE  payload length n (at most MaxEntry)
//	uint32 LE  CRC-32C (Castagnoli) over the length field, the id and the payload
//	uint64 LE  id (strictly increasing across the whole spool)
//	n bytes    payload
//
// The checkpoint "acked" is 20 bytes: the magic "CSACK001", the uint64 LE id
// of the first entry not yet acknowledged, and a CRC-32C of the 16 bytes
// before it. It is replaced atomically (write, fsync, rename).

const (
	segMagic    = "CSSPOOL1"
	segHeader   = int64(len(segMagic))
	entryHeader = 16
	ackMagic    = "CSACK001"
	ackFile     = "acked"
	lockFile    = "LOCK"
	segSuffix   = ".seg"

	// MaxEntry is the largest payload an entry may carry (1 MiB, Kafka's
	// default record size limit).
	MaxEntry = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entryCRC is the checksum of one entry.
func entryCRC(hdr []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[0:4])
	c = crc32.Update(c, castagnoli, hdr[8:16])
	return crc32.Update(c, castagnoli, payload)
}

// appendEntry appends the encoded entry to b.
func appendEntry(b []byte, id uint64, payload []byte) []byte {
	var hdr [entryHeader]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(hdr[8:16], id)
	binary.LittleEndian.PutUint32(hdr[4:8], entryCRC(hdr[:], payload))
	b = append(b, hdr[:]...)
	return append(b, payload...)
}

// scanner reads the valid entries of one segment file in order, from just
// after the magic up to a limit. Damage is skipped: when the bytes at the
// current offset are not a valid entry, it searches forward for the next
// offset where one starts (a valid length, an id in the expected range, a
// matching CRC). Bytes after the last valid entry that do not form one are
// the tail: a write torn by a crash, or damage at the end.
type scanner struct {
	f        *os.File
	off      int64  // next byte to parse
	end      int64  // readable limit
	lastID   uint64 // id of the last valid entry (or the segment's first id - 1)
	maxID    uint64 // ids must stay below this (the next segment's first id)
	buf      []byte // file bytes [bufOff, bufOff+len(buf))
	bufOff   int64
	skipped  int64 // bytes skipped inside the segment (damage followed by valid entries)
	damages  int   // places where damage was skipped
	tail     int64 // bytes after the last valid entry that are not an entry
	readErr  error
	scratch  []byte
	resyncAt int64 // offset where the last resync started (for the log)
}

func newScanner(f *os.File, firstID, maxID uint64, end int64) *scanner {
	return &scanner{f: f, off: segHeader, end: end, lastID: firstID - 1, maxID: maxID}
}

// window returns the file bytes [off, off+n), reading as needed; nil if they
// cannot be read.
func (sc *scanner) window(off int64, n int) []byte {
	if off >= sc.bufOff && off+int64(n) <= sc.bufOff+int64(len(sc.buf)) {
		s := off - sc.bufOff
		return sc.buf[s : s+int64(n)]
	}
	want := max(n, 256<<10)
	if rem := sc.end - off; int64(want) > rem {
		want = int(rem)
	}
	if want < n {
		return nil
	}
	if cap(sc.scratch) < want {
		sc.scratch = make([]byte, want)
	}
	b := sc.scratch[:want]
	m, err := sc.f.ReadAt(b, off)
	if m < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		sc.readErr = err
		return nil
	}
	sc.buf, sc.bufOff = b[:m], off
	return sc.buf[:n]
}

// entryAt checks whether a valid entry starts at off; it returns its id,
// payload (aliasing the read buffer) and total size.
func (sc *scanner) entryAt(off int64) (uint64, []byte, int64, bool) {
	if sc.end-off < entryHeader {
		return 0, nil, 0, false
	}
	hdr := sc.window(off, entryHeader)
	if hdr == nil {
		return 0, nil, 0, false
	}
	n := binary.LittleEndian.Uint32(hdr[0:4])
	crc := binary.LittleEndian.Uint32(hdr[4:8])
	id := binary.LittleEndian.Uint64(hdr[8:16])
	if n > MaxEntry || off+entryHeader+int64(n) > sc.end || id <= sc.lastID || (sc.maxID != 0 && id >= sc.maxID) {
		return 0, nil, 0, false
	}
	all := sc.window(off, entryHeader+int(n))
	if all == nil {
		return 0, nil, 0, false
	}
	if entryCRC(all[:entryHeader], all[entryHeader:]) != crc {
		return 0, nil, 0, false
	}
	return id, all[entryHeader:], entryHeader + int64(n), true
}

// next returns the next valid entry (payload aliased: copy it before the
// next call), or ok=false at the end.
func (sc *scanner) next() (id uint64, payload []byte, ok bool) {
	if sc.off >= sc.end {
		return 0, nil, false
	}
	if id, p, size, ok := sc.entryAt(sc.off); ok {
		sc.off += size
		sc.lastID = id
		return id, p, true
	}
	if sc.readErr != nil {
		sc.tail = sc.end - sc.off
		sc.off = sc.end
		return 0, nil, false
	}
	// Damage: look for the next valid entry.
	sc.resyncAt = sc.off
	for q := sc.off + 1; q+entryHeader <= sc.end; q++ {
		if id, p, size, ok := sc.entryAt(q); ok {
			sc.skipped += q - sc.off
			sc.damages++
			sc.off = q + size
			sc.lastID = id
			return id, p, true
		}
		if sc.readErr != nil {
			break
		}
	}
	sc.tail = sc.end - sc.off
	sc.off = sc.end
	return 0, nil, false
}
