package analyzer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// runShare runs this instance's share of a batch that the query's leader
// planned (RoleMap): it reads the plan's ranges of its own input
// partitions, de-duplicates and decodes them, and sends their partial
// counts, then a marker per partition, to the leader through the
// repartition topic, in one transaction with its input offsets and
// de-duplication state. It runs no window engine and writes no output:
// the leader counts the batch once every share of it is in.
func (a *Analyzer) runShare(ctx context.Context, plan Plan, start time.Time) (bool, error) {
	return a.runShareOf(ctx, plan, start, shareWork{
		read: func(stats *batchStats) error {
			cnt := startCounting(a.engine, len(a.fields))
			err := a.d.Source.Read(ctx, plan, func(r *Record) { a.process(r, stats, cnt) })
			cnt.close()
			return err
		},
		records: func(stats *batchStats) ([]StateRecord, error) {
			return a.dur.records(a.engine, plan, stats.late, stats.records)
		},
		encode: "encode state",
	})
}

// shareWork is what differs between a share of the flags' query and a share
// of named queries: how the share's records are read, and the records its
// transaction writes (encode names that step in errors).
type shareWork struct {
	read    func(stats *batchStats) error
	records func(stats *batchStats) ([]StateRecord, error)
	encode  string
}

// runShareOf runs a share of a batch the leader planned: begin the
// transaction, read, flush the dead letters, write w's records, commit.
func (a *Analyzer) runShareOf(ctx context.Context, plan Plan, start time.Time, w shareWork) (bool, error) {
	txn := a.dur.src
	if err := txn.Begin(ctx); err != nil {
		return false, err
	}
	a.lastRun = plan.Batch
	stats := newBatchStats()
	readStart := a.d.Now()
	err := w.read(stats)
	if err != nil {
		if ctx.Err() != nil {
			a.log.Info("stopping: abandoned the share of the batch being read; its input will be read again", "batch", plan.Batch, "input", plan.String())
			return false, abortTxn(ctx, txn, errStopped)
		}
		return false, abortTxn(ctx, txn, fmt.Errorf("read the share of batch %d: %w", plan.Batch, err))
	}
	if stats.corrupt != nil {
		return false, abortTxn(ctx, txn, stats.corrupt)
	}
	stats.readTook = a.d.Now().Sub(readStart)
	writeStart := a.d.Now()
	dctx, done := a.drainContext(ctx)
	defer done()
	fail := func(what string, err error) error {
		switch {
		case a.abortCtx.Err() != nil:
			return abortTxn(ctx, txn, ErrAborted)
		case dctx.Err() != nil && ctx.Err() != nil:
			return abortTxn(ctx, txn, fmt.Errorf("the share of batch %d did not %s within the drain timeout (%v) after the stop; its input was not committed and is read again on the next start", plan.Batch, what, a.cfg.drainTimeout()))
		}
		return abortTxn(ctx, txn, fmt.Errorf("share of batch %d: %s: %w", plan.Batch, what, err))
	}
	if a.d.DeadLetters != nil && stats.badTotal() > 0 {
		if err := a.d.DeadLetters.Flush(dctx); err != nil {
			return false, fail("write dead letters", err)
		}
	}
	recs, err := w.records(stats)
	if err != nil {
		return false, fail(w.encode, err)
	}
	txn.Write(dctx, recs...)
	commitStart := a.d.Now()
	stats.writeTook = commitStart.Sub(writeStart)
	err = a.d.Source.Commit(dctx, plan)
	stats.commitTook = a.d.Now().Sub(commitStart)
	if err != nil {
		if errors.Is(err, ErrRolledBack) {
			return false, err
		}
		return false, fail("commit input offsets", err)
	}
	if a.d.DeadLetters != nil && stats.badTotal() > 0 {
		a.m.deadLettered.Add(float64(stats.badTotal()))
	}
	a.batches++
	a.rollbacksInRow = 0
	a.recordShare(plan, stats, a.d.Now().Sub(start))
	return true, nil
}

// recordShare updates metrics and reports a share of a batch run.
func (a *Analyzer) recordShare(plan Plan, s *batchStats, took time.Duration) {
	a.m.batches.With("share").Inc()
	a.m.batchDuration.Observe(took.Seconds())
	a.m.recordsIn.Add(float64(s.records))
	a.m.counted.Add(float64(s.counted))
	a.m.duplicates.Add(float64(s.duplicates))
	a.m.lateRecords.Add(float64(s.late))
	a.m.repartOut.Add(float64(s.repartitioned))
	for k, n := range s.skipped {
		a.m.skipped.With(k).Add(float64(n))
	}
	for r, n := range s.bad {
		a.m.badRecords.With(r).Add(float64(n))
	}
	if line := s.badSummary(plan.Batch); line != "" {
		fmt.Fprintln(a.d.Stderr, line)
	}
	if s.late > 0 {
		args := []any{"batch", plan.Batch, "late_records", s.late}
		if s.hasLate {
			args = append(args, "oldest_event_time", formatMicros(s.oldestLate))
		}
		a.log.Info("late data dropped in this instance's share of the batch: records whose windows had all closed were not counted (the leader's log has the batch's total)", args...)
	}
	a.log.Debug("share of batch done", "batch", plan.Batch, "input", plan.String(),
		"records", s.records, "sent", s.repartitioned, "bad", s.badTotal(), "duplicates", s.duplicates, "late", s.late,
		"took", took, "read", s.readTook, "write", s.writeTook, "commit", s.commitTook)
}
