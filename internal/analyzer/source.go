package analyzer

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Record is one input record handed to the analyzer. Value is nil for a
// tombstone (a record whose value is null).
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the Kafka record's timestamp (its producer's clock, or
	// the broker's with LogAppendTime); zero when unknown. It is the
	// reference a record's event time is judged against
	// (Config.MaxEventTimeAhead): stored with the record, it is the same at
	// every replay.
	Timestamp time.Time
	Key       []byte
	Value     []byte
	// Repartitioned marks a record of a durable query's repartition topic:
	// partial counts another instance sent (see Durable).
	Repartitioned bool
}

// Range is the offsets [From, To) of one partition that a batch reads.
type Range struct {
	Topic     string
	Partition int32
	From, To  int64
}

// Plan is the input of one batch: an offset range per partition, fixed when
// the batch is planned, as Spark fixes a micro-batch's offsets in its offset
// log before running it.
type Plan struct {
	// Ranges holds only partitions with something to read (From < To).
	Ranges []Range
	// Lag is how many records are available in the source beyond this plan
	// (what the next batches will read); it feeds the consumer lag metric.
	Lag int64
	// Behind is the same per partition: the input not yet read after this
	// plan, for every partition the source reads (zero lags included).
	Behind []PartitionLag
	// Changes are the partitions a Durable source gained (with their state)
	// and lost since the previous plan; the analyzer applies them before
	// reading. Nil for other sources.
	Changes *StateChanges

	// Role is this instance's part in the batch when the source plans
	// batches for a group of instances (KafkaState); RoleAlone otherwise.
	Role Role
	// Batch is the id of the batch the plan belongs to, with RoleLead and
	// RoleMap: the batch every instance of the query runs its share of.
	Batch int64
	// Waited is how long the leader waited for the other instances'
	// shares of the batch (RoleLead).
	Waited time.Duration
	// Again asks for planning again at once, after applying Changes: the
	// group's assignment changed while the plan waited for other instances.
	Again bool
	// publish is the plan record to write in the batch's transaction (a
	// leader that reads every partition of the batch itself).
	publish []byte
}

// Role is an instance's part in a batch of a query run by several
// instances (docs/ARCHITECTURE.md, "One watermark for the whole query").
type Role uint8

const (
	// RoleAlone: the source plans for this instance alone (KafkaSource,
	// --state none, tests).
	RoleAlone Role = iota
	// RoleLead: this instance planned the batch for every input partition
	// and runs the query's window engine: it reads its own partitions'
	// ranges and the partial counts the other instances sent for the batch.
	RoleLead
	// RoleMap: this instance runs its share of a batch the leader planned:
	// it reads its partitions' ranges and sends their partial counts, and a
	// marker per partition, to the leader. It runs no window engine.
	RoleMap
)

// PartitionLag is how many records of one input partition are available
// beyond a plan.
type PartitionLag struct {
	Topic     string
	Partition int32
	Lag       int64
}

// Empty reports whether the plan has nothing to read: a batch for it would
// be a no-data batch.
func (p Plan) Empty() bool { return len(p.Ranges) == 0 }

// Offsets returns how many offsets the plan spans (records plus any
// transaction markers between them).
func (p Plan) Offsets() int64 {
	var n int64
	for _, r := range p.Ranges {
		n += r.To - r.From
	}
	return n
}

func (p Plan) String() string {
	if p.Empty() {
		return "(no new data)"
	}
	parts := make([]string, len(p.Ranges))
	for i, r := range p.Ranges {
		parts[i] = fmt.Sprintf("%s/%d[%d,%d)", r.Topic, r.Partition, r.From, r.To)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// Source supplies the input of each batch. The analyzer calls it from one
// goroutine, in the order Plan, then (for a non-empty plan) Read, then
// Commit once the batch's output is written; a batch abandoned on shutdown
// is never committed.
type Source interface {
	// Plan fixes the offsets of the next batch: what is available now (with
	// available-now: up to the end offsets seen when the query started),
	// capped by the per-batch limit. An empty plan means no new data.
	Plan(ctx context.Context) (Plan, error)
	// Read calls fn for every data record of the plan, in offset order within
	// each partition. fn must not keep rec itself; the byte slices it points
	// to are never reused or modified, so strings that alias them stay valid.
	Read(ctx context.Context, p Plan, fn func(rec *Record)) error
	// Commit records that the batch of p has been processed and its output
	// written, so a restart resumes after it. It is also called for empty
	// plans, so that a source may persist its starting positions.
	Commit(ctx context.Context, p Plan) error
}
