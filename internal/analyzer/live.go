package analyzer

import (
	"math"
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

// publishQuery hands a named query's committed batch to its dashboard: the
// rows it changed and closed, with the values of its aggregates.
func (a *Analyzer) publishQuery(q *queryRun, b *window.Batch, updated, evicted []window.Row, plan Plan, s *batchStats, took time.Duration) {
	db := dashboard.FromEngine(b, nil, nil)
	db.Changed = valueRows(q, updated)
	db.Closed = valueRows(q, evicted)
	db.Query = q.DashboardName
	db.CommittedAt = a.d.Now()
	db.Duration = took
	db.Counts = dashboard.Counts{Records: s.records, Counted: s.counted, LateRows: b.Late, Bad: s.bad}
	for _, n := range s.skipped {
		db.Counts.Skipped += n
	}
	if len(plan.Behind) > 0 {
		db.Lag = make([]dashboard.PartitionLag, len(plan.Behind))
		for i, l := range plan.Behind {
			db.Lag[i] = dashboard.PartitionLag{Topic: l.Topic, Partition: l.Partition, Lag: l.Lag}
		}
	}
	if err := q.Dashboard.Publish(&db); err != nil {
		a.log.Warn("the dashboard did not take a batch; it shows the one before", "query", q.Compiled.Query.Name, "batch", b.ID, "err", err)
	}
}

// valueRows are a query's engine rows (with states, or counts) as the
// dashboard's rows: one value per aggregate. The dashboard shows finite
// numbers only: a NULL (sum, min, max or avg of no value) shows as 0.
func valueRows(q *queryRun, rows []window.Row) []dashboard.Row {
	if len(rows) == 0 {
		return nil
	}
	if !q.Compiled.NeedsInputs() {
		return dashboard.CountRows(rows)
	}
	n := len(q.Compiled.Engine.Aggs)
	out := make([]dashboard.Row, len(rows))
	vals := make([]float64, len(rows)*n)
	for i := range rows {
		v := vals[i*n : (i+1)*n : (i+1)*n]
		for j, r := range q.Compiled.Engine.Values(&rows[i]) {
			switch {
			case !r.Valid:
				v[j] = 0
			case r.Type == window.TypeDouble:
				if !math.IsNaN(r.F) && !math.IsInf(r.F, 0) {
					v[j] = r.F
				}
			default:
				v[j] = float64(r.I)
			}
		}
		out[i] = dashboard.Row{Start: rows[i].Start, End: rows[i].End, Keys: rows[i].Keys, Values: v}
	}
	return out
}
