package window

import (
	"fmt"
	"math"
	"strconv"

	"github.com/cordstream/cordstream/internal/hllpp"
	"github.com/cordstream/cordstream/internal/sparkfmt"
)

// AggKind is an aggregate function, as Spark SQL names it.
type AggKind uint8

// The aggregate functions.
const (
	// Count is count(*) (Input TypeNone: every event) or count(col) (the
	// events whose value is not NULL). BIGINT, 0 for no events.
	Count AggKind = iota + 1
	// ApproxCountDistinct is approx_count_distinct(col, rsd): Spark's
	// HyperLogLog++ (internal/hllpp) over the non-NULL values. BIGINT.
	ApproxCountDistinct
	// Sum is sum(col) over INT or BIGINT: BIGINT, NULL when no value is
	// non-NULL.
	Sum
	// Min and Max keep the input's type; NULL when no value is non-NULL.
	Min
	Max
	// Avg is avg(col): DOUBLE, NULL when no value is non-NULL.
	Avg
)

var aggNames = [...]string{Count: "count", ApproxCountDistinct: "approx_count_distinct", Sum: "sum", Min: "min", Max: "max", Avg: "avg"}

// String returns the function's Spark SQL name.
func (k AggKind) String() string {
	if int(k) < len(aggNames) && aggNames[k] != "" {
		return aggNames[k]
	}
	return fmt.Sprintf("AggKind(%d)", uint8(k))
}

// ParseAggKind parses a function name as String writes it.
func ParseAggKind(s string) (AggKind, bool) {
	for k, n := range aggNames {
		if n != "" && n == s {
			return AggKind(k), true
		}
	}
	return 0, false
}

// Type is a Spark SQL type of an aggregate's input or result.
type Type uint8

// The types.
const (
	// TypeNone is the input of count(*): no value.
	TypeNone Type = iota
	// TypeString is STRING.
	TypeString
	// TypeInt is INT (32 bits), the type of length(s).
	TypeInt
	// TypeBigInt is BIGINT (64 bits).
	TypeBigInt
	// TypeDouble is DOUBLE, avg's result.
	TypeDouble
)

var typeNames = [...]string{TypeNone: "none", TypeString: "string", TypeInt: "int", TypeBigInt: "bigint", TypeDouble: "double"}

// String returns the type's Spark SQL name.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Aggregate is one aggregate function of a query over one input expression
// of the event (its value is given to Engine.AddWith).
type Aggregate struct {
	Kind AggKind
	// Input is the type of the aggregated expression: TypeNone for count(*);
	// TypeString, TypeInt or TypeBigInt for count(col) and
	// approx_count_distinct; TypeInt or TypeBigInt for sum, min, max, avg.
	Input Type
	// RelativeSD is approx_count_distinct's maximum relative standard
	// deviation; 0 means Spark's default, 0.05 (precision 9).
	RelativeSD float64
}

// Result returns the type of the aggregate's value, Spark's: count,
// approx_count_distinct and sum are BIGINT, avg is DOUBLE, min and max keep
// the input's type.
func (a Aggregate) Result() Type {
	switch a.Kind {
	case Min, Max:
		return a.Input
	case Avg:
		return TypeDouble
	}
	return TypeBigInt
}

// String writes the aggregate as Spark SQL writes it, with col standing for
// the input expression: count(1), sum(col), approx_count_distinct(col, 0.05).
func (a Aggregate) String() string {
	switch {
	case a.Kind == Count && a.Input == TypeNone:
		return "count(1)"
	case a.Kind == ApproxCountDistinct:
		return fmt.Sprintf("approx_count_distinct(col, %s)", strconv.FormatFloat(a.rsd(), 'g', -1, 64))
	}
	return a.Kind.String() + "(col)"
}

func (a Aggregate) rsd() float64 {
	if a.RelativeSD == 0 {
		return hllpp.DefaultRelativeSD
	}
	return a.RelativeSD
}

// validate checks the aggregate and returns the precision of its sketch (0
// when it has none).
func (a Aggregate) validate() (int, error) {
	switch a.Kind {
	case Count:
		if a.Input > TypeBigInt {
			return 0, fmt.Errorf("count over %v: want count(*) or count of a string, int or bigint", a.Input)
		}
	case ApproxCountDistinct:
		if a.Input < TypeString || a.Input > TypeBigInt {
			return 0, fmt.Errorf("approx_count_distinct over %v: want a string, int or bigint column", a.Input)
		}
		p, err := hllpp.PrecisionFor(a.rsd())
		if err != nil {
			return 0, fmt.Errorf("approx_count_distinct: %w", err)
		}
		return p, nil
	case Sum, Min, Max, Avg:
		if a.Input != TypeInt && a.Input != TypeBigInt {
			return 0, fmt.Errorf("%v over %v: want a numeric (int or bigint) expression such as length(content)", a.Kind, a.Input)
		}
	default:
		return 0, fmt.Errorf("aggregate function %d: want count, approx_count_distinct, sum, min, max or avg", uint8(a.Kind))
	}
	if a.RelativeSD != 0 {
		return 0, fmt.Errorf("%v takes no relative standard deviation (only approx_count_distinct does)", a.Kind)
	}
	return 0, nil
}

// Input is the value of an aggregate's input expression for one event.
type Input struct {
	// S is the value of a STRING input.
	S string
	// I is the value of an INT or BIGINT input (an INT within its range).
	I int64
	// Valid=false is SQL NULL.
	Valid bool
}

// AggState is the state of one aggregate of one row: what Spark keeps in its
// aggregation buffer, from which the value is computed, and which merges with
// the state of the same aggregate over other events.
type AggState struct {
	// N is the number of non-NULL inputs (count(col), and whether sum, min,
	// max and avg have a value).
	N int64
	// I is the sum (sum, avg), the minimum (min) or the maximum (max) of the
	// non-NULL inputs; 0 while N is 0.
	I int64
	// Overflow is set when a sum left the BIGINT range. Spark (ANSI mode)
	// fails the query then; the value is NULL instead.
	Overflow bool
	// Sketch is approx_count_distinct's HyperLogLog++ buffer (nil for the
	// other functions).
	Sketch *hllpp.Sketch
}

// update adds one input value to s.
func (s *AggState) update(a *Aggregate, in *Input) {
	if !in.Valid {
		return
	}
	switch a.Kind {
	case Count:
		s.N++
	case ApproxCountDistinct:
		switch a.Input {
		case TypeString:
			s.Sketch.AddString(in.S)
		case TypeInt:
			s.Sketch.AddInt(int32(in.I))
		default:
			s.Sketch.AddLong(in.I)
		}
		s.N++
	case Sum, Avg:
		s.add(in.I)
		s.N++
	case Min:
		if s.N == 0 || in.I < s.I {
			s.I = in.I
		}
		s.N++
	case Max:
		if s.N == 0 || in.I > s.I {
			s.I = in.I
		}
		s.N++
	}
}

func (s *AggState) add(v int64) {
	r := s.I + v // wraps
	// Signed overflow: both operands of one sign, the result of the other.
	if (s.I >= 0) == (v >= 0) && (r >= 0) != (v >= 0) {
		s.Overflow = true
	}
	s.I = r
}

// merge folds o (the same aggregate's state over other events) into s.
func (s *AggState) merge(a *Aggregate, o *AggState) {
	switch a.Kind {
	case ApproxCountDistinct:
		// Same precision by construction; Merge only fails otherwise.
		_ = s.Sketch.Merge(o.Sketch)
	case Sum, Avg:
		if o.N > 0 {
			s.add(o.I)
			s.Overflow = s.Overflow || o.Overflow
		}
	case Min:
		if o.N > 0 && (s.N == 0 || o.I < s.I) {
			s.I = o.I
		}
	case Max:
		if o.N > 0 && (s.N == 0 || o.I > s.I) {
			s.I = o.I
		}
	}
	s.N += o.N
}

// Result is the value of an aggregate: a BIGINT or INT in I, a DOUBLE in F.
type Result struct {
	Type Type
	// Valid=false is SQL NULL.
	Valid bool
	I     int64
	F     float64
}

// String prints the value as Spark's console (Dataset.show) does: NULL, the
// integer in decimal, a DOUBLE as Java's Double.toString.
func (r Result) String() string {
	return string(r.Append(nil))
}

// Append appends String() to b.
func (r Result) Append(b []byte) []byte {
	switch {
	case !r.Valid:
		return append(b, "NULL"...)
	case r.Type == TypeDouble:
		return sparkfmt.AppendDouble(b, r.F)
	}
	return strconv.AppendInt(b, r.I, 10)
}

// AppendJSON appends the value as Spark's JSON writer writes it: null, the
// integer, a DOUBLE as sparkfmt.JSONDouble (NaN and infinities as strings).
func (r Result) AppendJSON(b []byte) []byte {
	switch {
	case !r.Valid:
		return append(b, "null"...)
	case r.Type == TypeDouble:
		return sparkfmt.AppendJSONDouble(b, r.F)
	}
	return strconv.AppendInt(b, r.I, 10)
}

// value computes the aggregate's value from its state; count is the row's
// count of events (count(*)).
func (a *Aggregate) value(s *AggState, count int64) Result {
	r := Result{Type: a.Result(), Valid: true}
	switch a.Kind {
	case Count:
		if a.Input == TypeNone {
			r.I = count
		} else {
			r.I = s.N
		}
	case ApproxCountDistinct:
		r.I = s.Sketch.Estimate()
	case Sum:
		r.I, r.Valid = s.I, s.N > 0 && !s.Overflow
	case Min, Max:
		r.I, r.Valid = s.I, s.N > 0
	case Avg:
		// Spark sums in a DOUBLE and divides by the count as a DOUBLE; the
		// sum of integers is exact in a DOUBLE below 2^53 in magnitude.
		r.Valid = s.N > 0 && !s.Overflow
		if r.Valid {
			r.F = float64(s.I) / float64(s.N)
		}
	}
	return r
}

// NewStates returns empty states of c's aggregates (nil without
// aggregates), to aggregate events outside an engine (AddPartial).
func (c Config) NewStates() []AggState {
	if len(c.Aggs) == 0 {
		return nil
	}
	st := make([]AggState, len(c.Aggs))
	for i, a := range c.Aggs {
		if p, _ := a.validate(); p != 0 {
			st[i].Sketch, _ = hllpp.New(p)
		}
	}
	return st
}

// UpdateStates adds an event's aggregate inputs (one per aggregate) to st,
// states of c's aggregates.
func (c Config) UpdateStates(st []AggState, in []Input) {
	for i := range st {
		st[i].update(&c.Aggs[i], &in[i])
	}
}

// MergeStates folds src into dst, both states of c's aggregates.
func (c Config) MergeStates(dst, src []AggState) {
	for i := range dst {
		dst[i].merge(&c.Aggs[i], &src[i])
	}
}

// Values returns the row's aggregate values, in the order of cfg.Aggs (nil
// for a query without aggregates: its value is Row.Count).
func (c Config) Values(r *Row) []Result {
	if len(c.Aggs) == 0 {
		return nil
	}
	out := make([]Result, len(c.Aggs))
	for i := range c.Aggs {
		var s *AggState
		if st := r.States(); i < len(st) {
			s = &st[i]
		} else {
			s = &AggState{}
		}
		if c.Aggs[i].Kind == ApproxCountDistinct && s.Sketch == nil {
			out[i] = Result{Type: TypeBigInt, Valid: true}
			continue
		}
		out[i] = c.Aggs[i].value(s, r.Count)
	}
	return out
}

// checkState reports whether s could be a state of a: used by Restore on
// states from outside.
func (a *Aggregate) checkState(s *AggState, count int64, precision int) error {
	switch {
	case s.N < 0 || s.N > count:
		return fmt.Errorf("%v: %d non-NULL inputs in a row of %d events", a.Kind, s.N, count)
	case a.Kind == ApproxCountDistinct && s.Sketch == nil:
		return fmt.Errorf("%v: no sketch", a.Kind)
	case a.Kind == ApproxCountDistinct && s.Sketch.Precision() != precision:
		return fmt.Errorf("%v: sketch of precision %d, the query's is %d (a different relative standard deviation)", a.Kind, s.Sketch.Precision(), precision)
	case a.Kind != ApproxCountDistinct && s.Sketch != nil:
		return fmt.Errorf("%v: a sketch in the state of a function that keeps none", a.Kind)
	case a.Kind == Count && (s.I != 0 || s.Overflow):
		return fmt.Errorf("%v: a value in the state of a count", a.Kind)
	case a.Input == TypeInt && (a.Kind == Min || a.Kind == Max) && (s.I < math.MinInt32 || s.I > math.MaxInt32):
		return fmt.Errorf("%v: %d is out of the range of an int", a.Kind, s.I)
	}
	return nil
}
