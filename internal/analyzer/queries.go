package analyzer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cordstream/cordstream/internal/dashboard"
	"github.com/cordstream/cordstream/internal/query"
	"github.com/cordstream/cordstream/internal/window"
)

// Query is one of the named queries an analyzer runs on one read of the
// topic (Deps.Queries): each record is decoded once (chat.Project), then
// projected into each query's keys and inputs and added to the query's own
// engine; each batch runs every engine and writes each query's rows to the
// query's own outputs.
type Query struct {
	Compiled *query.Compiled
	Outputs  []Output
	// Dashboard, when set, receives the query's committed batches, as the
	// query named DashboardName.
	Dashboard     dashboard.Feed
	DashboardName string
}

// queryRun is a Query running: its engine and projection buffers.
type queryRun struct {
	Query
	eng  *window.Engine
	keys []window.Value
	in   []window.Input
}

// newQueries builds the engines of d.Queries.
func newQueries(qs []Query) ([]*queryRun, error) {
	var out []*queryRun
	seen := map[string]bool{}
	for i, q := range qs {
		if q.Compiled == nil {
			return nil, fmt.Errorf("analyzer: query %d is not compiled", i)
		}
		name := q.Compiled.Query.Name
		if seen[name] {
			return nil, fmt.Errorf("analyzer: query %q given twice", name)
		}
		seen[name] = true
		if len(q.Outputs) == 0 {
			return nil, fmt.Errorf("analyzer: query %q has no output", name)
		}
		eng, err := window.New(q.Compiled.Engine)
		if err != nil {
			return nil, fmt.Errorf("analyzer: query %s: %w", name, err)
		}
		out = append(out, &queryRun{
			Query: q, eng: eng,
			keys: make([]window.Value, len(q.Compiled.Query.GroupBy)),
			in:   make([]window.Input, len(q.Compiled.Engine.Aggs)),
		})
	}
	return out, nil
}

// processQueries adds a decoded, checked record (a.proj, event time ts) to
// every query's engine. A record whose group-by values of some query are
// too long for the records Kafka accepts is a bad record for all of them:
// every query sees the same input.
func (a *Analyzer) processQueries(r *Record, s *batchStats, ts int64) {
	for _, q := range a.qs {
		q.Compiled.Project(&a.proj, q.keys, q.in)
		if lim := a.cfg.MaxKeyBytes; lim > 0 {
			if i, n := longKey(q.keys, lim, &a.keyBuf); i >= 0 {
				a.bad(r, s, ReasonKeyTooLong, q.Compiled.Query.GroupBy[i], fmt.Sprintf(
					"the group-by values of query %s take %d bytes as JSON; at most %d fit in the records Kafka accepts for its results (raise max.message.bytes of that topic to store longer ones)",
					q.Compiled.Query.Name, n, lim))
				return
			}
		}
	}
	s.noteLatest(r, ts)
	s.counted++
	if a.sharing != nil {
		s.repartitioned++
		a.addSharePartials(r.Partition, ts)
		return
	}
	for _, q := range a.qs {
		if q.Compiled.NeedsInputs() {
			q.eng.AddWith(ts, q.keys, q.in)
		} else {
			q.eng.Add(ts, q.keys)
		}
	}
}

// runQueries runs one batch of the named queries: read, run every engine,
// write every query's outputs, commit the input.
func (a *Analyzer) runQueries(ctx context.Context, plan Plan, start time.Time) (bool, error) {
	var txn Durable
	if a.dur != nil && a.dur.src != nil {
		txn = a.dur.src
		if err := a.applyQueries(plan.Changes); err != nil {
			return false, err
		}
		a.dur.role, a.dur.batch = plan.Role, plan.Batch
		switch {
		case plan.Again:
			return false, errAgain
		case plan.Role == RoleMap:
			if plan.Empty() {
				return false, nil
			}
			return a.runQueriesShare(ctx, plan, start)
		case plan.Role == RoleLead && plan.Batch != a.nextBatch:
			return false, &StateError{What: "the batch plan", Err: fmt.Errorf("the plan is of batch %d, the window state is at batch %d", plan.Batch, a.nextBatch)}
		}
	}
	// Every query runs a batch with data; without data only those that
	// never ran or need a no-data batch (Spark's rule, per query: each
	// query's batches are those it would run alone).
	active := make([]bool, len(a.qs))
	some := false
	for i, q := range a.qs {
		active[i] = !plan.Empty() || !q.eng.Progress().Ran || q.eng.NeedsNoDataBatch()
		some = some || active[i]
	}
	if !some {
		return false, nil
	}
	if txn != nil {
		if err := txn.Begin(ctx); err != nil {
			return false, err
		}
	}
	abort := func(cause error) error { return abortTxn(ctx, txn, cause) }
	stats := newBatchStats()
	readStart := a.d.Now()
	if !plan.Empty() {
		err := a.d.Source.Read(ctx, plan, func(r *Record) { a.process(r, stats, nil) })
		if err != nil {
			if ctx.Err() != nil {
				a.log.Info("stopping: abandoned the batch being read; its input will be read again", "batch", a.batches, "input", plan.String())
				return false, abort(errStopped)
			}
			return false, abort(fmt.Errorf("read batch %d: %w", a.batches, err))
		}
	}
	if stats.corrupt != nil {
		return false, abort(stats.corrupt)
	}
	stats.readTook = a.d.Now().Sub(readStart)
	writeStart := a.d.Now()
	dctx, done := a.drainContext(ctx)
	defer done()
	type ran struct {
		b                window.Batch
		updated, evicted []window.Row
	}
	runs := make([]ran, len(a.qs))
	first := -1
	var recs []StateRecord
	for i, q := range a.qs {
		if !active[i] {
			continue
		}
		if first < 0 {
			first = i
		}
		if q.Dashboard != nil || txn != nil {
			runs[i].updated, runs[i].evicted = q.eng.PendingChanges()
		}
		if txn != nil {
			var err error
			if recs, err = a.queryRowRecords(q, runs[i].updated, runs[i].evicted, recs); err != nil {
				return false, abort(fmt.Errorf("batch %d: encode state: %w", a.nextBatch, err))
			}
		}
		runs[i].b = q.eng.RunBatch()
		q.Compiled.Sort(runs[i].b.Rows)
	}
	a.lastRun = runs[first].b.ID
	fail := func(id int64, what string, err error) error {
		switch {
		case a.abortCtx.Err() != nil:
			return abort(ErrAborted)
		case dctx.Err() != nil && ctx.Err() != nil:
			return abort(fmt.Errorf("batch %d did not %s within the drain timeout (%v) after the stop; its input was not committed and is read again on the next start", id, what, a.cfg.drainTimeout()))
		}
		return abort(fmt.Errorf("batch %d: %s: %w", id, what, err))
	}
	for i, q := range a.qs {
		if !active[i] {
			continue
		}
		b := &runs[i].b
		for _, o := range q.Outputs {
			if err := o.WriteBatch(dctx, b); err != nil {
				return false, fail(b.ID, "write the output of query "+q.Compiled.Query.Name, err)
			}
		}
	}
	if a.d.DeadLetters != nil && stats.badTotal() > 0 {
		if err := a.d.DeadLetters.Flush(dctx); err != nil {
			return false, fail(runs[first].b.ID, "write dead letters", err)
		}
	}
	if txn != nil {
		var err error
		if recs, err = a.queryProgressRecords(plan, recs); err != nil {
			return false, fail(runs[first].b.ID, "encode state", err)
		}
		txn.Write(dctx, recs...)
	} else if a.dur != nil {
		a.dur.advance()
	}
	commitStart := a.d.Now()
	stats.writeTook = commitStart.Sub(writeStart)
	err := a.d.Source.Commit(dctx, plan)
	stats.commitTook = a.d.Now().Sub(commitStart)
	if err != nil {
		if errors.Is(err, ErrRolledBack) {
			return false, err // step counts it
		}
		return false, fail(runs[first].b.ID, "commit input offsets", err)
	}
	if txn != nil {
		a.nextBatch = plan.Batch + 1
		a.rollbacksInRow = 0
	}
	if a.d.DeadLetters != nil && stats.badTotal() > 0 {
		a.m.deadLettered.Add(float64(stats.badTotal()))
	}
	a.batches++
	took := a.d.Now().Sub(start)
	// The metrics and the batch's report: rows of every query, late rows
	// of every query.
	sum := runs[first].b
	sum.Rows, sum.Late = nil, 0
	for i := range runs {
		sum.Rows = append(sum.Rows, runs[i].b.Rows...)
		sum.Late += runs[i].b.Late
	}
	a.record(&sum, plan, stats, took)
	for i, q := range a.qs {
		if active[i] && q.Dashboard != nil {
			a.publishQuery(q, &runs[i].b, runs[i].updated, runs[i].evicted, plan, stats, took)
		}
	}
	return true, nil
}

// newWithQueries is New for d.Queries: cfg gives the trigger, the drain
// timeout, the bound on event times ahead and on key bytes; each query its
// window, group-by, aggregates and mode.
func newWithQueries(cfg Config, d Deps) (*Analyzer, error) {
	var errs []error
	if !cfg.AvailableNow && cfg.Trigger <= 0 {
		errs = append(errs, fmt.Errorf("trigger %v: must be positive, e.g. 5s", cfg.Trigger))
	}
	if cfg.MaxEventTimeAhead < 0 {
		errs = append(errs, fmt.Errorf("max event time ahead %v: must not be negative (0 turns the check off)", cfg.MaxEventTimeAhead))
	}
	if cfg.MaxKeyBytes < 0 {
		errs = append(errs, fmt.Errorf("max key bytes %d: must not be negative (0: no bound)", cfg.MaxKeyBytes))
	}
	if cfg.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain timeout %v: must not be negative", cfg.DrainTimeout))
	}
	if cfg.Dedup {
		errs = append(errs, errors.New("de-duplication: not available with named queries yet (they count a repeated message_id again, as Spark does)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if d.Source == nil {
		return nil, errors.New("analyzer: no source")
	}
	qs, err := newQueries(d.Queries)
	if err != nil {
		return nil, err
	}
	d.defaults()
	first := qs[0].Compiled.Query
	cfg.Window, cfg.Slide, cfg.Watermark, cfg.GroupBy, cfg.Mode = first.Window, first.Slide, first.Watermark, nil, first.Mode
	a, err := build(cfg, d, qs[0].eng)
	if err != nil {
		return nil, err
	}
	a.wcfg = qs[0].Compiled.Engine
	a.qs = qs
	return a, nil
}
