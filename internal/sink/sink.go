// Package sink writes the analysis engine's batches out: as Spark's console
// table (Console), as JSON Lines (JSONLines), and, in its own files, to a
// Kafka results topic.
//
// Every sink has the same shape, WriteBatch(ctx, *window.Batch) error, and
// writes one batch with a single Write call so that batches from one sink
// never interleave.
package sink

import "github.com/cordstream/cordstream/internal/chat"

// DefaultMaxRows is how many rows the console shows per batch by default,
// like Spark's numRows.
const DefaultMaxRows = 20

// appendJSONString appends s as a JSON string, escaped as encoding/json does.
var appendJSONString = chat.AppendJSONString
