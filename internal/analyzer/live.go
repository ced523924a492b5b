package analyzer

import (
	"time"

	"github.com/cordstream/cordstream/internal/dashboard"
	"github.com/cordstream/cordstream/internal/window"
)

// publish hands a committed batch to the dashboard: the rows it changed and
// closed as the engine saw them before RunBatch (updated, evicted), whatever
// the output mode. A dashboard that refuses a batch is logged; the query
// goes on.
func (a *Analyzer) publish(b *window.Batch, updated, evicted []window.Row, plan Plan, s *batchStats, took time.Duration) {
	if a.d.Dashboard == nil {
		return
	}
	db := dashboard.FromEngine(b, updated, evicted)
	db.Query = a.d.QueryName
	db.CommittedAt = a.d.Now()
	db.Duration = took
	db.Counts = dashboard.Counts{
		Records:     s.records,
		Counted:     s.counted,
		Duplicates:  s.duplicates,
		LateRecords: s.late,
		LateRows:    b.Late,
		Bad:         s.bad,
	}
	for _, n := range s.skipped {
		db.Counts.Skipped += n
	}
	if len(plan.Behind) > 0 {
		db.Lag = make([]dashboard.PartitionLag, len(plan.Behind))
		for i, l := range plan.Behind {
			db.Lag[i] = dashboard.PartitionLag{Topic: l.Topic, Partition: l.Partition, Lag: l.Lag}
		}
	}
	if err := a.d.Dashboard.Publish(&db); err != nil {
		a.log.Warn("the dashboard did not take a batch; it shows the one before", "batch", b.ID, "err", err)
	}
}

// publishReset hands the dashboard every row the engine holds after its
// state was restored or partitions were dropped, so that it shows this
// instance's rows as they are (nothing when the engine never ran a batch).
func (a *Analyzer) publishReset() {
	if a.d.Dashboard == nil {
		return
	}
	p := a.engine.Progress()
	if !p.Ran {
		return
	}
	db := dashboard.ResetFromEngine(p, a.engine.Rows())
	db.Query = a.d.QueryName
	db.CommittedAt = a.d.Now()
	if err := a.d.Dashboard.Publish(&db); err != nil {
		a.log.Warn("the dashboard did not take the restored state", "batch", db.ID, "err", err)
	}
}
