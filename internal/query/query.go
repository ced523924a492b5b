// Package query defines the queries the analyzer runs: their windows (sliding,
// tumbling or session), watermark, group-by columns, aggregates, output mode,
// sort and outputs, by name in a configuration file (ParseFile) or from the
// ready presets (Preset), and compiles each into what the engine runs: a
// window.Config, and the projection of a record into the engine's group-by
// values and aggregate inputs (Compiled.Project).
//
// Every query is one Spark Structured Streaming query:
//
//	spark.readStream...select(from_json(value, schema).alias("m")).select("m.*")
//	  .withColumn("ts", try_cast(message_timestamp AS TIMESTAMP))
//	  .withWatermark("ts", Watermark)
//	  .groupBy(window(ts, Window, Slide) | session_window(ts, SessionGap), GroupBy...)
//	  .agg(Aggregates...)
//	  [.orderBy(OrderBy...)]                 -- complete mode only, as Spark
//	  .writeStream.outputMode(Mode)
//
// and the engine computes what Spark computes, batch by batch (docs/QUERIES.md
// shows each preset's Spark code).
package query

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/sparkexpr"
	"github.com/cordstream/cordstream/internal/window"
)

// Query is one named query.
type Query struct {
	// Name names the query (letters, digits, '-', '_').
	Name string
	// Window and Slide are the sliding windows' length and slide (Slide =
	// Window: tumbling). Both 0 with SessionGap.
	Window, Slide time.Duration
	// SessionGap, when set, groups by session_window(ts, SessionGap).
	SessionGap time.Duration
	// Watermark is the watermark delay (withWatermark).
	Watermark time.Duration
	// GroupBy are the group-by columns, in output order (GroupColumns).
	GroupBy []string
	// Aggregates are the output columns after the window and the keys.
	Aggregates []Aggregate
	// Mode is the output mode.
	Mode window.Mode
	// OrderBy sorts each batch's rows (complete mode only, as Spark allows);
	// empty: by window start, then keys (NULL first).
	OrderBy []Order
	// Outputs are where the rows go; empty: the console.
	Outputs []Output
}

// Aggregate is one aggregate column: Func over Expr, named Alias.
type Aggregate struct {
	Func window.AggKind
	// Expr is the input expression; the zero Expr is count(*)'s.
	Expr Expr
	// RelativeSD is approx_count_distinct's (0: Spark's default 0.05).
	RelativeSD float64
	// Alias is the column's name.
	Alias string
}

// Expr is an expression of the record: a column, or length(column).
type Expr struct {
	// Column is a field of the record (InputColumns); "" for count(*).
	Column string
	// Length is length(Column): Spark's number of characters, an INT.
	Length bool
}

// String writes the expression as Spark SQL does.
func (x Expr) String() string {
	switch {
	case x.Column == "":
		return "1"
	case x.Length:
		return "length(" + x.Column + ")"
	}
	return x.Column
}

// Type is the expression's Spark SQL type.
func (x Expr) Type() window.Type {
	switch {
	case x.Column == "":
		return window.TypeNone
	case x.Length:
		return window.TypeInt
	}
	return window.TypeString
}

// String writes the aggregate as in a configuration file.
func (a Aggregate) String() string {
	arg := a.Expr.String()
	if a.Expr.Column == "" {
		arg = "*"
	}
	if a.RelativeSD != 0 {
		arg += fmt.Sprintf(", %g", a.RelativeSD)
	}
	return fmt.Sprintf("%v(%s) AS %s", a.Func, arg, a.Alias)
}

// DefaultAlias is the column name Spark gives an aggregate without an
// alias: count(1), sum(length(content)), approx_count_distinct(author_id).
func (a Aggregate) DefaultAlias() string {
	return fmt.Sprintf("%v(%s)", a.Func, a.Expr)
}

// Order is one sort column: "window" (its start), a group-by column or an
// aggregate's alias.
type Order struct {
	Column string
	Desc   bool
}

func (o Order) String() string {
	if o.Desc {
		return o.Column + " DESC"
	}
	return o.Column
}

// Output is where a query's rows go.
type Output struct {
	// Kind is "console", "jsonl" (Target: a file, "-" for standard
	// output) or "kafka" (Target: a topic).
	Kind, Target string
}

func (o Output) String() string {
	if o.Target == "" {
		return o.Kind
	}
	return o.Kind + ":" + o.Target
}

// GroupColumns are the columns a query can group by.
var GroupColumns = []string{chat.FieldAuthorName, chat.FieldAuthorID, chat.FieldChannelID, chat.FieldGuildID}

// InputColumns are the columns an aggregate can read.
var InputColumns = []string{chat.FieldAuthorName, chat.FieldAuthorID, chat.FieldChannelID, chat.FieldGuildID, chat.FieldMessageID, chat.FieldContent}

// column is how a column is read from a projection.
type column uint8

const (
	colNone column = iota
	colAuthorName
	colAuthorID
	colChannelID
	colGuildID
	colMessageID
	colContent
)

var columns = map[string]column{
	chat.FieldAuthorName: colAuthorName, chat.FieldAuthorID: colAuthorID, chat.FieldChannelID: colChannelID,
	chat.FieldGuildID: colGuildID, chat.FieldMessageID: colMessageID, chat.FieldContent: colContent,
}

// Compiled is a query ready to run: the engine's configuration and the
// projection of records into its keys and inputs.
type Compiled struct {
	Query Query
	// Engine is the window engine's configuration.
	Engine window.Config
	keys   []column
	inputs []input
	buf    []byte
}

type input struct {
	col    column
	length bool
}

// Compile checks q and compiles it.
func Compile(q Query) (*Compiled, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	c := &Compiled{Query: q}
	c.Engine = window.Config{Window: q.Window, Slide: q.Slide, Gap: q.SessionGap, Watermark: q.Watermark, Mode: q.Mode, Keys: len(q.GroupBy)}
	for _, g := range q.GroupBy {
		c.keys = append(c.keys, columns[g])
	}
	seedCount := len(q.Aggregates) == 1 && q.Aggregates[0].Func == window.Count && q.Aggregates[0].Expr.Column == ""
	if !seedCount || q.SessionGap != 0 {
		for _, a := range q.Aggregates {
			c.Engine.Aggs = append(c.Engine.Aggs, window.Aggregate{Kind: a.Func, Input: a.Expr.Type(), RelativeSD: a.RelativeSD})
			c.inputs = append(c.inputs, input{col: columns[a.Expr.Column], length: a.Expr.Length})
		}
	}
	if err := c.Engine.Validate(); err != nil {
		return nil, fmt.Errorf("query %s: %w", q.Name, err)
	}
	return c, nil
}

// NeedsInputs reports whether the engine takes inputs (Engine.AddWith):
// false for a query whose only aggregate is count(*) on sliding windows,
// which the engine runs as the seed's count (Engine.Add, Row.Count).
func (c *Compiled) NeedsInputs() bool { return len(c.Engine.Aggs) > 0 }

// Columns returns the output columns after the window: the group-by columns
// and the aggregates' aliases.
func (c *Compiled) Columns() []string {
	out := slices.Clone(c.Query.GroupBy)
	for _, a := range c.Query.Aggregates {
		out = append(out, a.Alias)
	}
	return out
}

// Project fills keys (len(GroupBy)) and, when NeedsInputs, in (one per
// aggregate) from a record's projection. String values are the
// projection's (they share its memory); length(col) counts characters as
// Spark's length() does on the string Spark's from_json makes.
func (c *Compiled) Project(p *chat.Projection, keys []window.Value, in []window.Input) {
	for i, col := range c.keys {
		s, ok := c.str(p, col)
		keys[i] = window.Value{S: s, Valid: ok}
	}
	for i, x := range c.inputs {
		if x.col == colNone {
			in[i] = window.Input{Valid: true}
			continue
		}
		s, ok := c.str(p, x.col)
		if !ok {
			in[i] = window.Input{}
			continue
		}
		if x.length {
			in[i] = window.Input{I: int64(c.length(p, x.col, s)), Valid: true}
			continue
		}
		if x.col == colContent && !p.ContentPlain {
			// The string Spark's from_json makes of it (a copy, kept in
			// the engine's own keys and sketches only as a hash).
			c.buf, _ = sparkexpr.AppendJSONString(c.buf[:0], []byte(p.Content))
			s = string(c.buf)
		}
		in[i] = window.Input{S: s, Valid: true}
	}
}

func (c *Compiled) str(p *chat.Projection, col column) (string, bool) {
	switch col {
	case colAuthorName:
		return p.AuthorName, p.Has&chat.HasAuthorName != 0
	case colAuthorID:
		return p.AuthorID, p.Has&chat.HasAuthorID != 0
	case colChannelID:
		return p.ChannelID, p.Has&chat.HasChannelID != 0
	case colGuildID:
		return p.GuildID, p.Has&chat.HasGuildID != 0
	case colMessageID:
		return p.MessageID, p.Has&chat.HasMessageID != 0
	case colContent:
		return p.Content, p.Has&chat.HasContent != 0
	}
	return "", false
}

// length is Spark's length() of a column's value.
func (c *Compiled) length(p *chat.Projection, col column, s string) int32 {
	if col == colContent {
		if p.ContentPlain {
			return sparkexpr.Length(s)
		}
		var err error
		c.buf, err = sparkexpr.AppendJSONString(c.buf[:0], []byte(s))
		if err != nil {
			// chat.Project accepted the record: its strings are valid JSON.
			return sparkexpr.Length(s)
		}
		return sparkexpr.LengthBytes(c.buf)
	}
	return sparkexpr.Length(s)
}

// Sort orders a batch's rows by OrderBy (then by window start and keys, so
// that equal rows keep one order); without OrderBy the engine's order
// stands.
func (c *Compiled) Sort(rows []window.Row) {
	if len(c.Query.OrderBy) == 0 {
		return
	}
	type key struct {
		kind int // 0 window, 1 group-by column i, 2 aggregate i
		i    int
		desc bool
	}
	var ks []key
	for _, o := range c.Query.OrderBy {
		k := key{desc: o.Desc}
		if o.Column == "window" {
			ks = append(ks, k)
			continue
		}
		if i := slices.Index(c.Query.GroupBy, o.Column); i >= 0 {
			k.kind, k.i = 1, i
		} else {
			k.kind, k.i = 2, slices.IndexFunc(c.Query.Aggregates, func(a Aggregate) bool { return a.Alias == o.Column })
		}
		ks = append(ks, k)
	}
	slices.SortStableFunc(rows, func(a, b window.Row) int {
		for _, k := range ks {
			var r int
			switch k.kind {
			case 0:
				r = cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End))
			case 1:
				r = compareValue(a.Keys[k.i], b.Keys[k.i])
			case 2:
				r = compareResult(c.value(&a, k.i), c.value(&b, k.i))
			}
			if k.desc {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return window.CompareRows(a, b)
	})
}

// value returns aggregate i of a batch's row.
func (c *Compiled) value(r *window.Row, i int) window.Result {
	if r.Aggs == nil {
		return window.Result{Type: window.TypeBigInt, Valid: true, I: r.Count}
	}
	return r.Aggs.Values[i]
}

// Values returns a batch row's aggregate values, in the order of
// Query.Aggregates.
func (c *Compiled) Values(r *window.Row) []window.Result {
	if r.Aggs == nil {
		return []window.Result{{Type: window.TypeBigInt, Valid: true, I: r.Count}}
	}
	return r.Aggs.Values
}

// compareValue orders NULL first, then strings by bytes (Spark's ascending
// order with nulls first).
func compareValue(a, b window.Value) int {
	switch {
	case !a.Valid && !b.Valid:
		return 0
	case !a.Valid:
		return -1
	case !b.Valid:
		return 1
	}
	return strings.Compare(a.S, b.S)
}

// compareResult orders NULL first, then by value.
func compareResult(a, b window.Result) int {
	switch {
	case !a.Valid && !b.Valid:
		return 0
	case !a.Valid:
		return -1
	case !b.Valid:
		return 1
	case a.Type == window.TypeDouble:
		return cmp.Compare(a.F, b.F)
	}
	return cmp.Compare(a.I, b.I)
}
