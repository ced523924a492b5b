// Package analyzer runs the seed's windowed count as a streaming query with
// Spark Structured Streaming's micro-batch semantics: on each trigger it plans
// a batch (the input offsets available now, capped per batch), feeds the
// batch's records to the window engine, writes the rows the engine emits to
// every output, and only then commits the input offsets (at-least-once).
//
// A batch is: records consumed -> engine -> outputs -> commit. Bad records
// never stop the query: they are counted per reason, summarised on stderr
// and optionally copied to a dead-letter sink. Records whose event_kind is
// update or delete are valid but not counted: they describe edits and
// deletions of messages already counted, not new messages.
package analyzer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cordstream/cordstream/internal/chat"
	"github.com/cordstream/cordstream/internal/dashboard"
	"github.com/cordstream/cordstream/internal/httpserve"
	"github.com/cordstream/cordstream/internal/metrics"
	"github.com/cordstream/cordstream/internal/window"
)

// Output receives the rows each batch emits, in batch order. A batch's input
// is committed only after every output has returned nil for it.
type Output interface {
	WriteBatch(ctx context.Context, b *window.Batch) error
}

// DeadLetterSink receives the bad records of a batch. Send may work
// asynchronously; Flush returns once everything sent is stored, or the first
// error. The batch is committed only after Flush returns nil.
type DeadLetterSink interface {
	Send(ctx context.Context, r chat.BadRecord)
	Flush(ctx context.Context) error
}

// Deps are what the analyzer works with.
type Deps struct {
	Source      Source
	Outputs     []Output
	DeadLetters DeadLetterSink // optional
	// Log receives operational messages; Stderr the one-line bad-record
	// summary of each batch that had bad records.
	Log    *slog.Logger
	Stderr io.Writer
	// Now and SleepUntil are the wall clock of the processing-time trigger
	// (time.Now and a timer when nil). SleepUntil returns ctx's error when
	// ctx ends first.
	Now        func() time.Time
	SleepUntil func(ctx context.Context, t time.Time) error
	// Metrics is where the analyzer registers its metrics (a new registry
	// when nil); MetricsAddr, when set, is served with /metrics and /healthz.
	Metrics     *metrics.Registry
	MetricsAddr string
	// Dashboard, when set, receives every committed batch (never one rolled
	// back), and the rows held after each restore of state (at start, after
	// a rebalance), as the batches named QueryName.
	Dashboard dashboard.Feed
	QueryName string
	// Queries, when set, are the named queries the analyzer runs instead
	// of Config's window, group-by and mode (which are then ignored), each
	// with its own outputs and dashboard (Outputs and Dashboard are then
	// unused). With a Durable source every query's state commits in each
	// batch's transaction (queriesstate.go); with several instances the
	// leader runs every query and the others send partial aggregates
	// (queriesshare.go). Config.Dedup is refused.
	Queries []Query
}

// Analyzer runs one query. Create it with New and call Run once.
type Analyzer struct {
	cfg Config
	d   Deps
	log *slog.Logger

	engine *window.Engine
	wcfg   window.Config // the engine's
	fields []keyField
	keys   []window.Value
	keyBuf []byte // for measuring long keys
	proj   chat.Projection
	m      *analyzerMetrics
	health *metrics.Health // served at /healthz and /readyz
	prog   progress        // what the health checks see of the loop

	batches        int64 // batches run so far
	lastRun        int64 // the id of the batch run last (maybe rolled back)
	rollbacksInRow int   // transactions rolled back since the last commit

	// Watermark jumps: when one was last reported, and how many were not
	// reported since (one report a minute at most).
	jumpSaid    time.Time
	jumpsUnsaid int

	// qs are the named queries (Deps.Queries), nil for the one query of
	// Config; with them, engine is the first one's.
	qs []*queryRun
	// nextBatch is the id of the next batch of named queries with a
	// Durable source (each engine numbers its own batches).
	nextBatch int64
	// sharing holds the partial aggregates of a share of named queries
	// (RoleMap) being read, by input partition; nil otherwise.
	sharing map[int32]map[string]*sharePartial

	// dur is the state beyond the engine: de-duplication, and with a
	// Durable source the partitions owned and what goes to other instances.
	// Nil without either.
	dur *durableState

	// abortCtx bounds all output and commit work; Abort cancels it.
	abortCtx context.Context
	abort    context.CancelFunc
}

// errStopped is returned inside Run when a stop was requested before the
// batch could complete; Run turns it into a clean nil return.
var errStopped = errors.New("stopped")

// errAgain is returned inside Run when the source asks to plan again at
// once (Plan.Again).
var errAgain = errors.New("plan again")

// ErrAborted is Run's error after Abort cut short the batch in flight.
var ErrAborted = errors.New("aborted: the batch in flight was not committed; its input is read again on the next start")

// New checks cfg and d and builds the analyzer.
func New(cfg Config, d Deps) (*Analyzer, error) {
	if len(d.Queries) > 0 {
		return newWithQueries(cfg, d)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Source == nil {
		return nil, errors.New("analyzer: no source")
	}
	if len(d.Outputs) == 0 {
		return nil, errors.New("analyzer: no output")
	}
	d.defaults()
	eng, err := window.New(cfg.engineConfig())
	if err != nil {
		return nil, fmt.Errorf("analyzer: %w", err)
	}
	return build(cfg, d, eng)
}

// defaults fills in what d leaves unset.
func (d *Deps) defaults() {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Stderr == nil {
		d.Stderr = io.Discard
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.SleepUntil == nil {
		d.SleepUntil = sleepUntil
	}
	if d.Metrics == nil {
		d.Metrics = metrics.NewRegistry()
	}
}

// build is the end of New, with d's defaults filled in, and eng the engine
// of the query.
func build(cfg Config, d Deps, eng *window.Engine) (*Analyzer, error) {
	a := &Analyzer{
		cfg:    cfg,
		d:      d,
		log:    d.Log.With("component", "analyzer"),
		engine: eng,
		wcfg:   cfg.engineConfig(),
		keys:   make([]window.Value, len(cfg.GroupBy)),
		m:      newAnalyzerMetrics(d.Metrics),
		health: metrics.NewHealth(),
	}
	for _, c := range cfg.GroupBy {
		a.fields = append(a.fields, keyFields[c])
	}
	if ds, ok := d.Source.(Durable); ok {
		if ds.ShufflePartitions() < 1 {
			return nil, errors.New("analyzer: durable source without shuffle partitions")
		}
		a.dur = newDurableState(ds, cfg)
	} else if cfg.Dedup {
		a.dur = newMemoryState(cfg)
	}
	a.abortCtx, a.abort = context.WithCancel(context.Background())
	a.addHealthChecks()
	return a, nil
}

// Handler serves the analyzer's metrics at /metrics, and its health checks
// at /healthz and /readyz.
func (a *Analyzer) Handler() http.Handler { return a.m.reg.Handler(a.health) }

// Abort cancels the batch in flight while Run is stopping, instead of
// letting it finish writing and committing (the second Ctrl-C). Its input is
// then not committed and is read again on the next start.
func (a *Analyzer) Abort() { a.abort() }

// Run runs batches until ctx ends or, with AvailableNow, until everything
// that was in the source at the start is processed. Cancelling ctx is a
// graceful stop: a batch still reading its input is abandoned (not
// committed); a batch that has read its input completes, writes its output
// and commits, within the drain timeout. Run returns nil after a graceful
// stop, ErrAborted after Abort, and an error when the source, an output or
// a commit fails.
func (a *Analyzer) Run(ctx context.Context) (err error) {
	defer a.abort()
	if a.d.MetricsAddr != "" {
		srv, err := httpserve.Listen(a.d.MetricsAddr, a.Handler(), httpserve.Limits{}, a.log, "metrics", "/metrics /healthz /readyz")
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		mctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(mctx) }()
		defer func() {
			cancel()
			if werr := <-done; werr != nil && err == nil {
				err = fmt.Errorf("metrics server: %w", werr)
			}
		}()
	}
	if a.cfg.AvailableNow {
		a.log.Info("processing the data available now", "trigger", "available-now")
	} else {
		a.log.Info("starting", "trigger", a.cfg.Trigger.String())
	}
	a.prog.mu.Lock()
	a.prog.started = a.d.Now()
	a.prog.mu.Unlock()
	next := a.d.Now() // the first trigger fires at once, as in Spark
	planFailures := 0
	var failingSince time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		if err := a.d.SleepUntil(ctx, next); err != nil {
			return nil
		}
		if a.cfg.AvailableNow {
			next = a.d.Now() // batches back to back
		} else {
			next = nextTrigger(a.d.Now(), a.cfg.Trigger)
		}
		ran, err := a.step(ctx)
		var pe *planError
		switch {
		case errors.Is(err, errStopped):
			return nil
		case errors.Is(err, errAgain):
			next = a.d.Now()
			planFailures = 0
			continue
		case errors.As(err, &pe):
			// Planning only asks the source what is available; nothing is
			// lost by trying again at the next trigger.
			planFailures++
			if planFailures == 1 {
				failingSince = a.d.Now()
			}
			a.prog.planFailed(a.d.Now(), pe.err)
			if planFailures >= maxPlanFailures && a.d.Now().Sub(failingSince) >= PlanPatience {
				return fmt.Errorf("%w (%d attempts in a row, for %v)", pe.err, planFailures, a.d.Now().Sub(failingSince).Round(time.Second))
			}
			if planFailures <= maxPlanFailures || planFailures%10 == 0 {
				a.log.Warn("could not plan a batch; trying again", "err", pe.err, "attempt", planFailures)
			}
			if a.cfg.AvailableNow {
				next = a.d.Now().Add(planRetryDelay)
			}
			continue
		case err != nil:
			return err
		case a.cfg.AvailableNow && !ran:
			a.log.Info("all available data processed", "batches", a.batches)
			return nil
		}
		a.prog.stepDone(a.d.Now(), ran)
		planFailures = 0
	}
}

// Planning failures in a row before Run gives up (at least maxPlanFailures
// attempts over at least PlanPatience), and the pause between attempts with
// available-now (the processing-time trigger waits for its next tick).
const (
	maxPlanFailures = 5
	planRetryDelay  = time.Second
)

// maxRollbacksInRow is how many times in a row a batch's transaction may
// be rolled back (the group rebalancing, Kafka refusing a write) before Run
// gives up.
const maxRollbacksInRow = 20

// PlanPatience is how long the analyzer keeps trying to plan a batch while
// Kafka does not answer (a broker restarting, a network cut) before it
// gives up with an error.
const PlanPatience = 2 * time.Minute

// planError is a failure to plan a batch: worth another try.
type planError struct{ err error }

func (e *planError) Error() string { return e.err.Error() }
func (e *planError) Unwrap() error { return e.err }

// step runs one trigger: plans a batch and runs it when there is new data,
// when it is the first batch, or when the engine needs a no-data batch to
// evict state (and emit, in append mode) after the watermark moved. It
// reports whether a batch ran.
//
// With a Durable source the batch is a transaction: the plan's ownership
// changes are applied first (state restored, or dropped), and the batch's
// state records are written before the commit; a batch rolled back because
// the group rebalanced is run again from the restored state.
func (a *Analyzer) step(ctx context.Context) (bool, error) {
	ran, err := a.runStep(ctx)
	if errors.Is(err, ErrRolledBack) {
		// The group rebalanced during the batch, or its transaction ran out
		// of time (the source then plans smaller batches): the source
		// reloaded the state, and the batch is read again.
		return true, a.rolledBack(a.lastRun)
	}
	return ran, err
}

// runStep is step, a batch rolled back returning ErrRolledBack.
func (a *Analyzer) runStep(ctx context.Context) (bool, error) {
	start := a.d.Now()
	plan, err := a.d.Source.Plan(ctx)
	if err != nil {
		var se *StateError
		switch {
		case ctx.Err() != nil:
			return false, errStopped
		case errors.As(err, &se):
			return false, err
		}
		return false, &planError{fmt.Errorf("plan batch %d: %w", a.batches, err)}
	}
	if a.qs != nil {
		a.m.lag.Set(float64(plan.Lag))
		return a.runQueries(ctx, plan, start)
	}
	if a.dur != nil && a.dur.src != nil && !plan.Changes.Empty() {
		eng, err := a.dur.apply(plan.Changes, a.engine)
		if err != nil {
			return false, err
		}
		if eng != a.engine {
			a.m.restores.Inc()
		}
		a.engine = eng
		a.publishReset()
	}
	a.m.lag.Set(float64(plan.Lag))
	if a.dur != nil {
		a.dur.role, a.dur.batch = plan.Role, plan.Batch
	}
	switch {
	case plan.Again:
		return false, errAgain
	case plan.Role == RoleMap:
		if plan.Empty() {
			return false, nil
		}
		return a.runShare(ctx, plan, start)
	case plan.Role == RoleLead:
		if id := a.engine.Progress().NextBatchID; plan.Batch != id {
			return false, &StateError{What: "the batch plan", Err: fmt.Errorf("the plan is of batch %d, the window state is at batch %d", plan.Batch, id)}
		}
	}
	if plan.Empty() && a.engine.Progress().Ran && !a.engine.NeedsNoDataBatch() {
		return false, nil
	}

	var txn Durable
	if a.dur != nil && a.dur.src != nil {
		txn = a.dur.src
		if err := txn.Begin(ctx); err != nil {
			return false, err
		}
	}
	abort := func(cause error) error { return abortTxn(ctx, txn, cause) }

	stats := newBatchStats()
	stats.wmLate = a.engine.Progress().WatermarkForLate
	readStart := a.d.Now()
	if !plan.Empty() {
		cnt := startCounting(a.engine, len(a.fields))
		err := a.d.Source.Read(ctx, plan, func(r *Record) { a.process(r, stats, cnt) })
		cnt.close()
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
	// The input is read: from here on the batch completes even when a stop
	// is requested, bounded by the drain timeout.
	writeStart := a.d.Now()
	dctx, done := a.drainContext(ctx)
	defer done()
	waitRows := func() {}
	var updated, evicted []window.Row
	if txn != nil || a.d.Dashboard != nil {
		updated, evicted = a.engine.PendingChanges()
	}
	if txn != nil {
		// The changed window rows are written while the batch runs; the
		// transaction ends only after that (fail and the commit wait).
		waitRows = a.dur.writeRows(dctx, updated, evicted)
		defer waitRows()
	}
	b := a.engine.RunBatch()
	a.lastRun = b.ID
	fail := func(what string, err error) error {
		waitRows()
		switch {
		case a.abortCtx.Err() != nil:
			return abort(ErrAborted)
		case dctx.Err() != nil && ctx.Err() != nil:
			return abort(fmt.Errorf("batch %d did not %s within the drain timeout (%v) after the stop; its input was not committed and is read again on the next start", b.ID, what, a.cfg.drainTimeout()))
		}
		return abort(fmt.Errorf("batch %d: %s: %w", b.ID, what, err))
	}
	for _, o := range a.d.Outputs {
		if err := o.WriteBatch(dctx, &b); err != nil {
			return false, fail("write output", err)
		}
	}
	if a.d.DeadLetters != nil && stats.badTotal() > 0 {
		if err := a.d.DeadLetters.Flush(dctx); err != nil {
			return false, fail("write dead letters", err)
		}
	}
	if txn != nil {
		recs, err := a.dur.records(a.engine, plan, stats.late, stats.records)
		if err != nil {
			return false, fail("encode state", err)
		}
		waitRows()
		txn.Write(dctx, recs...)
	} else if a.dur != nil {
		a.dur.advance()
	}
	commitStart := a.d.Now()
	stats.writeTook = commitStart.Sub(writeStart)
	err = a.d.Source.Commit(dctx, plan)
	stats.commitTook = a.d.Now().Sub(commitStart)
	if err != nil {
		if errors.Is(err, ErrRolledBack) {
			return false, err // step counts it
		}
		return false, fail("commit input offsets", err)
	}
	if a.d.DeadLetters != nil && stats.badTotal() > 0 {
		a.m.deadLettered.Add(float64(stats.badTotal()))
	}
	a.batches++
	a.rollbacksInRow = 0
	took := a.d.Now().Sub(start)
	a.record(&b, plan, stats, took)
	a.publish(&b, updated, evicted, plan, stats, took)
	return true, nil
}

// abortTxn rolls txn back (when there is one) after cause and returns the
// error the batch ends with.
func abortTxn(ctx context.Context, txn Durable, cause error) error {
	if txn == nil {
		return cause
	}
	var why error
	if !errors.Is(cause, errStopped) {
		why = cause
	}
	if err := txn.Abort(ctx, why); err != nil && why != nil {
		if errors.Is(err, ErrRolledBack) {
			return err // the transaction's own failure: the batch runs again
		}
		return errors.Join(cause, err)
	}
	return cause
}

// rolledBack counts a batch rolled back (its input is read again), and
// gives up after maxRollbacksInRow in a row.
func (a *Analyzer) rolledBack(id int64) error {
	a.m.rollbacks.Inc()
	a.rollbacksInRow++
	if a.rollbacksInRow >= maxRollbacksInRow {
		return fmt.Errorf("batch %d was rolled back %d times in a row (the warnings above say why); stopping rather than retrying it forever", id, a.rollbacksInRow)
	}
	return nil
}

// record updates metrics and reports a completed batch.
func (a *Analyzer) record(b *window.Batch, plan Plan, s *batchStats, took time.Duration) {
	kind := "data"
	if plan.Empty() {
		kind = "no_data"
	}
	a.m.batches.With(kind).Inc()
	a.m.batchDuration.Observe(took.Seconds())
	a.m.recordsIn.Add(float64(s.records))
	a.m.counted.Add(float64(s.counted))
	a.m.duplicates.Add(float64(s.duplicates))
	a.m.lateRecords.Add(float64(s.late))
	a.m.queryLate.Add(float64(s.late + s.lateElsewhere))
	if plan.Role == RoleLead && plan.Waited > 0 {
		a.m.shareWait.Observe(plan.Waited.Seconds())
	}
	a.m.repartOut.Add(float64(s.repartitioned))
	a.m.repartIn.Add(float64(s.fromOthers))
	for k, n := range s.skipped {
		a.m.skipped.With(k).Add(float64(n))
	}
	for r, n := range s.bad {
		a.m.badRecords.With(r).Add(float64(n))
	}
	if b.Late > 0 {
		a.m.lateRows.Add(float64(b.Late))
	}
	a.m.rowsOut.Add(float64(len(b.Rows)))
	a.m.watermark.Set(float64(a.engine.Watermark()) / 1e6)
	a.m.stateRows.Set(float64(a.engine.StateRows()))
	if line := s.badSummary(b.ID); line != "" {
		fmt.Fprintln(a.d.Stderr, line)
	}
	a.checkJump(b, s)
	if s.late > 0 || b.Late > 0 || s.lateElsewhere > 0 {
		// Spark drops late data without a word; here every batch that
		// drops some says so (backfilled messages older than the
		// watermark end here: docs/OPERATIONS.md).
		args := []any{"batch", b.ID, "late_records", s.late, "late_rows", b.Late}
		if plan.Role == RoleLead {
			args = append(args, "late_records_other_instances", s.lateElsewhere, "late_records_query", s.late+s.lateElsewhere)
		}
		if s.hasLate {
			args = append(args, "oldest_event_time", formatMicros(s.oldestLate))
		}
		args = append(args, "watermark", formatMicros(b.WatermarkForLate))
		a.log.Info("late data dropped: records whose windows had all closed were not counted, and rows of closed windows not updated", args...)
	}
	a.log.Debug("batch done", "batch", b.ID, "kind", kind, "input", plan.String(),
		"records", s.records, "counted", s.counted, "bad", s.badTotal(), "duplicates", s.duplicates,
		"sent_to_others", s.repartitioned, "from_others", s.fromOthers, "rows", len(b.Rows),
		"late_rows", b.Late, "watermark_us", a.engine.Watermark(), "state_rows", a.engine.StateRows(),
		"took", took, "waited_for_shares", plan.Waited, "read", s.readTook, "run_and_write", s.writeTook, "commit", s.commitTook)
}

// watermarkJump is how far the watermark may move in one batch before the
// move is reported: a live stream moves it by about a trigger interval, a
// replay of history by the span its batch covers.
const watermarkJump = time.Hour

// checkJump warns when batch b moved the watermark by more than
// watermarkJump (not its first move, from nothing), naming the record with
// the batch's latest event time: a record within --max-event-time-ahead but
// ahead of the stream can still move it past records yet to come.
func (a *Analyzer) checkJump(b *window.Batch, s *batchStats) {
	if b.Watermark <= 0 || b.NextWatermark-b.Watermark <= watermarkJump.Microseconds() {
		return
	}
	now := a.d.Now()
	if !a.jumpSaid.IsZero() && now.Sub(a.jumpSaid) < time.Minute {
		a.jumpsUnsaid++
		return
	}
	args := []any{"batch", b.ID, "from", formatMicros(b.Watermark), "to", formatMicros(b.NextWatermark),
		"by", formatSpan(b.NextWatermark - b.Watermark)}
	delayMs := a.cfg.Watermark.Milliseconds()
	if s.hasLatest && (s.latest/1000-delayMs)*1000 == b.NextWatermark {
		args = append(args, "latest_event_time", formatMicros(s.latest), "record", s.latestAt.String())
	} else {
		args = append(args, "moved_by", "partial counts from another instance")
	}
	if a.jumpsUnsaid > 0 {
		args = append(args, "jumps_not_reported", a.jumpsUnsaid)
	}
	a.log.Warn("the watermark jumped far ahead in one batch: rows of windows that end before it are now dropped as late; expected while replaying history, otherwise check the record that moved it (its event time may be wrong)", args...)
	a.jumpSaid, a.jumpsUnsaid = now, 0
}

// process feeds one record to the engine (through cnt), or accounts for it as skipped,
// bad, a duplicate, or sent to the instance that owns its key.
func (a *Analyzer) process(r *Record, s *batchStats, cnt *counter) {
	if r.Repartitioned {
		if a.qs != nil {
			a.processQueryPartial(r, s)
			return
		}
		a.processPartial(r, s, cnt)
		return
	}
	s.records++
	if r.Value == nil {
		a.bad(r, s, ReasonNullValue, "", "record value is null (a tombstone), want a JSON message")
		return
	}
	a.proj = chat.Projection{}
	if err := chat.Project(r.Value, &a.proj); err != nil {
		reason, field := classify(err)
		a.bad(r, s, reason, field, err.Error())
		return
	}
	if k := a.proj.Kind; k != chat.KindCreate && k != "" {
		s.skipped[string(k)]++
		return
	}
	ts := a.proj.Timestamp
	if !a.plausible(r, s, ts) {
		return
	}
	if a.qs != nil {
		a.processQueries(r, s, ts)
		return
	}
	keysOf(&a.proj, a.fields, a.keys)
	if lim := a.cfg.MaxKeyBytes; lim > 0 {
		if i, n := longKey(a.keys, lim, &a.keyBuf); i >= 0 {
			a.bad(r, s, ReasonKeyTooLong, a.cfg.GroupBy[i], fmt.Sprintf(
				"the group-by values take %d bytes as JSON; at most %d fit in the records Kafka accepts for the window state and results (raise max.message.bytes of those topics to store longer ones)", n, lim))
			return
		}
	}
	if a.cfg.Dedup && len(a.proj.MessageID) > maxMessageIDBytes {
		a.bad(r, s, ReasonMessageIDTooLong, chat.FieldMessageID, fmt.Sprintf(
			"message_id is %d bytes long; de-duplication remembers ids of at most %d bytes", len(a.proj.MessageID), maxMessageIDBytes))
		return
	}
	if d := a.dur; d != nil {
		v := d.admit(r.Partition, a.proj.MessageID, a.proj.Has&chat.HasMessageID != 0, ts)
		q, local := d.route(a.keys)
		switch v {
		case duplicate:
			s.duplicates++
			return
		case tooLate:
			// Its id may be forgotten: only the engine may take it, and
			// only when it drops it as late anyway.
			if !local || s.wmLate < d.horizon(r.Partition) {
				s.late++
				s.noteLate(ts)
				return
			}
		}
		if !local {
			s.noteLatest(r, ts)
			d.addPartial(r.Partition, q, ts, a.keys)
			s.counted++
			s.repartitioned++
			return
		}
	}
	s.noteLatest(r, ts)
	// The engine drops a late record's windows itself (and counts the rows,
	// as Spark does); here it is only told apart, for the metrics and the
	// batch's report.
	if a.lateFor(ts, s) {
		s.late++
	} else {
		s.counted++
	}
	cnt.add(ts, 1, a.keys)
}

// lateFor reports whether an event at ts is too late for every one of its
// windows in this batch (noting it when it is late for any).
func (a *Analyzer) lateFor(ts int64, s *batchStats) bool {
	if a.cfg.Mode == window.Complete || a.wcfg.FirstWindowEnd(ts) > s.wmLate {
		return false
	}
	s.noteLate(ts)
	return a.wcfg.WindowEnd(ts) <= s.wmLate
}

// plausible reports whether a record's event time can be counted: within
// the engine's range and, with MaxEventTimeAhead, not too far ahead of the
// record's Kafka timestamp. Else the record is a bad record.
func (a *Analyzer) plausible(r *Record, s *batchStats, ts int64) bool {
	if ts < window.MinTimestamp || ts > window.MaxTimestamp {
		a.bad(r, s, string(chat.ReasonBadTimestamp), chat.FieldTimestamp,
			"message_timestamp is outside the years the analyzer counts (about -34,000 to 38,000)")
		return false
	}
	lim := a.cfg.MaxEventTimeAhead.Microseconds()
	if lim <= 0 || r.Timestamp.IsZero() {
		return true
	}
	ref := r.Timestamp.UnixMilli()
	if ref < 0 || ts-ref*1000 <= lim {
		return true
	}
	a.bad(r, s, ReasonFutureTimestamp, chat.FieldTimestamp,
		fmt.Sprintf("message_timestamp %s is %s ahead of the record's Kafka timestamp %s; at most %v is accepted (--max-event-time-ahead)",
			formatMicros(ts), formatSpan(ts-ref*1000), formatMicros(ref*1000), a.cfg.MaxEventTimeAhead))
	return false
}

// processPartial adds a partial count another instance sent, or notes
// the late records of a marker.
func (a *Analyzer) processPartial(r *Record, s *batchStats, cnt *counter) {
	if string(r.Key) == keyMarker {
		m, err := decodeMarker(r.Value)
		if err != nil {
			if s.corrupt == nil {
				s.corrupt = &StateError{What: fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset), Err: err}
			}
			return
		}
		s.lateElsewhere += m.Late
		return
	}
	p, err := decodePartial(r.Value, len(a.fields))
	if err != nil {
		if s.corrupt == nil {
			s.corrupt = &StateError{What: fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset), Err: err}
		}
		return
	}
	cnt.add(p.TS, p.Count, valueKeys(p.Keys))
	s.fromOthers += p.Count
	if a.lateFor(p.TS, s) {
		s.late += p.Count
	}
}

func (a *Analyzer) bad(r *Record, s *batchStats, reason, field, detail string) {
	s.bad[reason]++
	if a.d.DeadLetters == nil {
		return
	}
	a.d.DeadLetters.Send(a.abortCtx, chat.BadRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Key: r.Key, Value: r.Value,
		Reason: reason, Field: field, Error: detail,
	})
}

// drainContext returns the context for a batch's output and commit: it is
// cancelled by Abort, and once stop ends, after the drain timeout.
func (a *Analyzer) drainContext(stop context.Context) (context.Context, func()) {
	dctx, cancel := context.WithCancel(a.abortCtx)
	var mu sync.Mutex
	var timer *time.Timer
	stopWatch := context.AfterFunc(stop, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(a.cfg.drainTimeout(), cancel)
	})
	return dctx, func() {
		stopWatch()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// sleepUntil waits for the wall clock to reach t, or for ctx to end.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
