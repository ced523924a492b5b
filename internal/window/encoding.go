package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cordstream/cordstream/internal/hllpp"
)

// The state of a row, for a store keyed by the row's window start and keys
// (the caller's key; AppendKeys encodes the keys): its count, its end for a
// session, and the state of each aggregate. Two layouts:
//
//   - A query that only counts (sliding windows, every aggregate count(*)):
//     the count in decimal ASCII, what earlier versions wrote for every
//     query, so that a store written by them restores, and one written by
//     this version restores in them.
//   - Otherwise version 1: the byte 0x01 (never a digit), the count as a
//     uvarint, for sessions the length End - Start as a uvarint, then for
//     each aggregate in order: N as a uvarint; for sum, min, max and avg a
//     byte (1 if the sum overflowed, else 0) and I as a zigzag varint; for
//     approx_count_distinct the length of the sketch's encoding as a uvarint
//     and the encoding (internal/hllpp).
const rowStateV1 = 0x01

// countOnly reports whether rows' states are their counts alone.
func (c Config) countOnly() bool {
	if c.Gap != 0 {
		return false
	}
	for _, a := range c.Aggs {
		if a.Kind != Count || a.Input != TypeNone {
			return false
		}
	}
	return true
}

// AppendRowState appends the encoding of r's state (see above) to b. r is a
// row of Rows or PendingChanges of an engine running c.
func (c Config) AppendRowState(b []byte, r *Row) ([]byte, error) {
	if c.countOnly() {
		return strconv.AppendInt(b, r.Count, 10), nil
	}
	st := r.States()
	if len(st) != len(c.Aggs) {
		return b, fmt.Errorf("window: row state: %d aggregate states, the query has %d aggregates", len(st), len(c.Aggs))
	}
	b = append(b, rowStateV1)
	b = binary.AppendUvarint(b, uint64(r.Count))
	if c.Gap != 0 {
		b = binary.AppendUvarint(b, uint64(r.End-r.Start))
	}
	for i := range c.Aggs {
		s := &st[i]
		b = binary.AppendUvarint(b, uint64(s.N))
		switch c.Aggs[i].Kind {
		case Sum, Min, Max, Avg:
			o := byte(0)
			if s.Overflow {
				o = 1
			}
			b = append(b, o)
			b = binary.AppendVarint(b, s.I)
		case ApproxCountDistinct:
			enc, err := s.Sketch.MarshalBinary()
			if err != nil {
				return b, err
			}
			b = binary.AppendUvarint(b, uint64(len(enc)))
			b = append(b, enc...)
		}
	}
	return b, nil
}

var errRowState = errors.New("window: malformed row state")

// DecodeRowState reads a row's state written by AppendRowState (or by an
// earlier version, which wrote counts alone) into r: Count, End (from
// r.Start, which the caller sets from its key) and Aggs. A state of counts
// alone restores into a query whose aggregates all are count(*); another
// query says to start from a new state. Restore checks the rest.
func (c Config) DecodeRowState(v []byte, r *Row) error {
	if len(v) > 0 && v[0] != rowStateV1 {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %q is neither a count nor a version-1 state", errRowState, truncate(v))
		}
		if !c.countOnly() {
			return fmt.Errorf("window: the stored state holds counts only (written by a query that counted), and this query computes %s: start it from a new state (a new query name or state topic)", c.describeAggs())
		}
		r.Count, r.End, r.Aggs = n, r.Start+int64(c.Window/time.Microsecond), nil
		return nil
	}
	if len(v) == 0 {
		return fmt.Errorf("%w: empty", errRowState)
	}
	d := decoder{b: v[1:]}
	r.Count = int64(d.uvarint())
	if c.Gap != 0 {
		r.End = r.Start + int64(d.uvarint())
	} else {
		r.End = r.Start + int64(c.Window/time.Microsecond)
	}
	st := make([]AggState, len(c.Aggs))
	r.Aggs = &RowAggs{States: st}
	for i := range c.Aggs {
		s := &st[i]
		s.N = int64(d.uvarint())
		switch c.Aggs[i].Kind {
		case Sum, Min, Max, Avg:
			switch d.byte() {
			case 0:
			case 1:
				s.Overflow = true
			default:
				d.err = true
			}
			s.I = d.varint()
		case ApproxCountDistinct:
			n := d.uvarint()
			enc := d.bytes(n)
			if d.err {
				break
			}
			sk, err := hllpp.Unmarshal(enc)
			if err != nil {
				return fmt.Errorf("window: row state: aggregate %d: %w", i+1, err)
			}
			s.Sketch = sk
		}
	}
	if d.err || len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes do not hold the state of this query's %d aggregates (written by a query with other aggregates? start from a new state)", errRowState, len(v), len(c.Aggs))
	}
	if r.Count <= 0 || r.End <= r.Start {
		return fmt.Errorf("%w: count %d, window [%d, %d)", errRowState, r.Count, r.Start, r.End)
	}
	return nil
}

func (c Config) describeAggs() string {
	s := ""
	for i, a := range c.Aggs {
		if i > 0 {
			s += ", "
		}
		s += a.String()
	}
	if c.Gap != 0 {
		if s != "" {
			s += " "
		}
		s += "over session windows"
	}
	return s
}

func truncate(v []byte) []byte {
	if len(v) > 32 {
		return v[:32]
	}
	return v
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 || x > 1<<62 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.err = true
		d.b = nil
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}
