// Package sink writes the analysis engine's batches out: as Spark's console
// table (Console), as JSON Lines (JSONLines), and, in its own files, to a
// Kafka results topic.
//
// Every sink has the same shape, WriteBatch(ctx, *window.Batch) error, and
// writes one batch with a single Write call so that batches from one sink
// never interleave.
package sink

import (
	"slices"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/window"
)

// DefaultMaxRows is how many rows the console shows per batch by default,
// like Spark's numRows.
const DefaultMaxRows = 20

// appendJSONString appends s as a JSON string, escaped as encoding/json does.
var appendJSONString = chat.AppendJSONString

// Columns describe a query's output columns after its window: the group-by
// columns (Keys) and the aggregates (Aggs, by alias) whose values Values
// returns for a row, in the order of Aggs. Values nil: the row's count,
// as the seed's query prints it (one aggregate, message_count).
type Columns struct {
	Keys, Aggs []string
	Values     func(*window.Row) []window.Result
	// Title, when set, heads each console table ("Query: <Title>").
	Title string
}

func countColumns(keys []string) Columns {
	return Columns{Keys: slices.Clone(keys), Aggs: []string{"message_count"}}
}

func (c Columns) clone() Columns {
	c.Keys, c.Aggs = slices.Clone(c.Keys), slices.Clone(c.Aggs)
	return c
}
