package analyzer

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cordstream/cordstream/internal/dashboard"
	"github.com/cordstream/cordstream/internal/query"
	"github.com/cordstream/cordstream/internal/window"
)

// The durable state of named queries (Deps.Queries with a Durable source)
// is in the same internal topics as the one query's, every query's in the
// same transaction per batch. In each window-state partition:
//
//   - "p": the batch counter (progressValue, Query namedQueriesState, only
//     NextBatchID used): the id of the next batch the leader plans.
//   - "q/<name>/p": query name's engine progress (progressValue, Query the
//     query's fingerprint: a query whose definition changed is refused).
//   - "q/<name>/w/<start µs>/<keys as a JSON array>": a row of query name
//     whose keys hash to the partition, its state as
//     window.Config.AppendRowState encodes it (the count for a query that
//     only counts; the aggregates' states and a session's end otherwise).
//
// With several instances the leader (input partition 0) holds every
// shuffle partition and runs every query's engine; the others send partial
// aggregates (queriesshare.go).

// queryPrefix starts the keys of named queries' records in WindowState.
const queryPrefix = "q/"

// namedQueriesState is the Query of the batch counter of named queries.
const namedQueriesState = "named queries"

// queryFingerprint names what a named query's state depends on.
func queryFingerprint(q query.Query) string {
	aggs := make([]string, len(q.Aggregates))
	for i, a := range q.Aggregates {
		aggs[i] = a.String()
	}
	return fmt.Sprintf("window=%v slide=%v session_gap=%v watermark=%v group_by=%s aggregates=%s mode=%v",
		q.Window, q.Slide, q.SessionGap, q.Watermark, strings.Join(q.GroupBy, ","), strings.Join(aggs, ";"), q.Mode)
}

func (q *queryRun) prefix() string { return queryPrefix + q.Compiled.Query.Name + "/" }

// applyQueries brings the named queries' state in line with a plan's
// ownership changes: each query's engine then holds the rows of every
// shuffle partition owned.
func (a *Analyzer) applyQueries(ch *StateChanges) error {
	d := a.dur
	if ch.Empty() {
		return nil
	}
	if err := d.applyInputs(ch); err != nil {
		return err
	}
	if !ch.Reset && len(ch.LostShuffle) == 0 && len(ch.GainedShuffle) == 0 {
		return nil
	}
	for _, q := range ch.LostShuffle {
		delete(d.shuffle, q)
	}
	for q := range ch.GainedShuffle {
		delete(d.shuffle, q)
	}
	type held struct {
		progress window.Progress
		rows     []window.Row
	}
	per := make([]held, len(a.qs))
	if ch.Reset {
		a.nextBatch = 0
	} else {
		for i, q := range a.qs {
			per[i].progress = q.eng.Progress()
			for _, r := range q.eng.Rows() {
				if d.shuffle[d.shuffleOf(r.Keys)] {
					per[i].rows = append(per[i].rows, r)
				}
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(ch.GainedShuffle)) {
		st := ch.GainedShuffle[p]
		what := fmt.Sprintf("shuffle partition %d", p)
		if v, ok := st[keyProgress]; ok {
			var pv progressValue
			if err := json.Unmarshal(v, &pv); err != nil {
				return &StateError{What: what, Err: fmt.Errorf("progress record: %w", err)}
			}
			if pv.Query != namedQueriesState {
				return &StateError{What: what, Err: fmt.Errorf("it holds the state of the one query the flags give (%s), not of named queries", pv.Query)}
			}
			a.nextBatch = max(a.nextBatch, pv.NextBatchID)
		}
		for k := range st {
			if strings.HasPrefix(k, "w/") {
				return &StateError{What: what, Err: errors.New("it holds window rows of the one query the flags give, not of named queries")}
			}
		}
		for i, q := range a.qs {
			prog, rows, err := loadQuery(st, q)
			if err != nil {
				return &StateError{What: fmt.Sprintf("query %s in shuffle partition %d", q.Compiled.Query.Name, p), Err: err}
			}
			for _, r := range rows {
				if got := d.shuffleOf(r.Keys); got != p {
					return &StateError{What: what, Err: fmt.Errorf("holds a row of shuffle partition %d: the number of shuffle partitions changed", got)}
				}
			}
			per[i].progress = per[i].progress.Merge(prog)
			per[i].rows = append(per[i].rows, rows...)
		}
		d.shuffle[p] = true
	}
	for i, q := range a.qs {
		eng, err := window.New(q.Compiled.Engine)
		if err != nil {
			return err
		}
		if err := eng.Restore(per[i].progress, per[i].rows); err != nil {
			return &StateError{What: "the window state of query " + q.Compiled.Query.Name, Err: err}
		}
		q.eng = eng
	}
	a.engine = a.qs[0].eng
	a.m.restores.Inc()
	for _, q := range a.qs {
		a.publishQueryReset(q)
	}
	return nil
}

// loadQuery decodes query q's progress and rows in a shuffle partition's
// committed state.
func loadQuery(st PartitionState, q *queryRun) (window.Progress, []window.Row, error) {
	var p window.Progress
	pre := q.prefix()
	cfg := q.Compiled.Engine
	if v, ok := st[pre+keyProgress]; ok {
		var pv progressValue
		if err := json.Unmarshal(v, &pv); err != nil {
			return p, nil, fmt.Errorf("progress record: %w", err)
		}
		if want := queryFingerprint(q.Compiled.Query); pv.Query != want {
			return p, nil, fmt.Errorf("the query changed since its state was written (%s; now %s): give it a new name to start it over, or delete the state with --reset", pv.Query, want)
		}
		p = window.Progress{NextBatchID: pv.NextBatchID, WatermarkForLate: pv.WatermarkForLate,
			Watermark: pv.Watermark, LastRunWatermark: pv.LastRunWatermark, Ran: pv.Ran}
	}
	var rows []window.Row
	for k, v := range st {
		rest, ok := strings.CutPrefix(k, pre+"w/")
		if !ok {
			continue
		}
		bad := fmt.Errorf("window row %q: malformed key", k)
		startS, keysS, ok := strings.Cut(rest, "/")
		if !ok {
			return p, nil, bad
		}
		start, err := strconv.ParseInt(startS, 10, 64)
		if err != nil {
			return p, nil, bad
		}
		var ks []*string
		if err := json.Unmarshal([]byte(keysS), &ks); err != nil || len(ks) != cfg.Keys {
			return p, nil, bad
		}
		r := window.Row{Start: start, Keys: valueKeys(ks)}
		if err := cfg.DecodeRowState(v, &r); err != nil {
			return p, nil, fmt.Errorf("window row %q: %w", k, err)
		}
		rows = append(rows, r)
	}
	return p, rows, nil
}

// queryRowRecords encodes the rows a batch of query q changes (updated and
// evicted as PendingChanges returned them, before RunBatch): the evicted as
// tombstones first (a session merged away may share its key with the
// session it merged into), then the updated.
func (a *Analyzer) queryRowRecords(q *queryRun, updated, evicted []window.Row, out []StateRecord) ([]StateRecord, error) {
	var h keyHasher
	cfg := q.Compiled.Engine
	pre := q.prefix()
	put := func(r *window.Row, tombstone bool) error {
		k := append([]byte(pre), appendRowKey(nil, *r)...)
		rec := StateRecord{Topic: WindowState, Partition: h.partition(r.Keys, a.dur.nShuffle), Key: k}
		if !tombstone {
			v, err := cfg.AppendRowState(nil, r)
			if err != nil {
				return fmt.Errorf("query %s: %w", q.Compiled.Query.Name, err)
			}
			rec.Value = v
		}
		out = append(out, rec)
		return nil
	}
	for i := range evicted {
		if err := put(&evicted[i], true); err != nil {
			return out, err
		}
	}
	for i := range updated {
		if err := put(&updated[i], false); err != nil {
			return out, err
		}
	}
	return out, nil
}

// queryProgressRecords are the records of a batch's end: every query's
// progress and the batch counter in every owned shuffle partition, and the
// input partitions' records.
func (a *Analyzer) queryProgressRecords(plan Plan, out []StateRecord) ([]StateRecord, error) {
	d := a.dur
	owned := slices.Sorted(maps.Keys(d.shuffle))
	for _, q := range a.qs {
		p := q.eng.Progress()
		v, err := json.Marshal(progressValue{Query: queryFingerprint(q.Compiled.Query), NextBatchID: p.NextBatchID,
			WatermarkForLate: p.WatermarkForLate, Watermark: p.Watermark, LastRunWatermark: p.LastRunWatermark, Ran: p.Ran})
		if err != nil {
			return out, err
		}
		for _, s := range owned {
			out = append(out, StateRecord{Topic: WindowState, Partition: s, Key: []byte(q.prefix() + keyProgress), Value: v})
		}
	}
	v, err := json.Marshal(progressValue{Query: namedQueriesState, NextBatchID: plan.Batch + 1, Ran: true})
	if err != nil {
		return out, err
	}
	for _, s := range owned {
		out = append(out, StateRecord{Topic: WindowState, Partition: s, Key: []byte(keyProgress), Value: v})
	}
	in, err := d.endBatch(true)
	if err != nil {
		return out, err
	}
	return append(out, in...), nil
}

// publishQueryReset hands a query's dashboard every row its engine holds
// after a restore (nothing when it never ran a batch).
func (a *Analyzer) publishQueryReset(q *queryRun) {
	if q.Dashboard == nil {
		return
	}
	p := q.eng.Progress()
	if !p.Ran {
		return
	}
	rows := q.eng.Rows()
	db := dashboard.Batch{ID: p.NextBatchID - 1, Reset: true, Changed: valueRows(q, rows),
		Watermark: p.LastRunWatermark, NextWatermark: p.Watermark, StateRows: int64(len(rows))}
	db.Query = q.DashboardName
	db.CommittedAt = a.d.Now()
	if err := q.Dashboard.Publish(&db); err != nil {
		a.log.Warn("the dashboard did not take the restored state", "query", q.Compiled.Query.Name, "batch", db.ID, "err", err)
	}
}
