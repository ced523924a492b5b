package analyzer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordstream/cordstream/internal/window"
)

// Several instances of named queries: as for the one query, the instance
// that owns input partition 0 leads (plans every batch, runs every query's
// engine); the others run shares of the batches it plans. A share of named
// queries sends, for each query, partial aggregates to the leader through
// the repartition topic (record key keyQueryPartial): the records of one
// input partition with the same group-by values whose event times fall in
// the same windows (sliding windows: the same set of windows, the latest
// event time kept, as for the one query's partial counts; session windows:
// the same event time exactly, as Spark's partial aggregation groups by
// (keys, [ts, ts+gap))), with their count and the aggregates' states
// (window.Config.AppendRowState). The leader adds them with
// Engine.AddPartial.

// keyQueryPartial is the key of a named query's partial aggregate on the
// repartition topic.
const keyQueryPartial = "q"

// queryPartial is the value of a named query's partial aggregate.
type queryPartial struct {
	Query string `json:"query"`
	// Fingerprint is the query's definition (queryFingerprint): the leader
	// refuses partials of a query defined otherwise.
	Fingerprint string    `json:"fingerprint"`
	TS          int64     `json:"ts_us"`
	Count       int64     `json:"count"`
	Keys        []*string `json:"keys"`
	// State is the aggregates' states, as AppendRowState encodes a row of
	// the query starting at TS (a session's end TS+gap).
	State []byte `json:"state"`
	Batch int64  `json:"batch"`
}

// sharePartial is a partial aggregate being built in a share.
type sharePartial struct {
	q     int // index in a.qs
	ts    int64
	count int64
	keys  []window.Value
	st    []window.AggState
}

// shareGroup identifies the group of a record of query q with event time
// ts and keys: the windows it falls in and its keys.
func (a *Analyzer) shareGroup(buf []byte, qi int, q *queryRun, ts int64) []byte {
	cfg := q.Compiled.Engine
	buf = strconv.AppendInt(buf[:0], int64(qi), 10)
	buf = append(buf, '/')
	if cfg.Gap != 0 {
		buf = strconv.AppendInt(buf, ts, 10)
	} else {
		size, slide := cfg.Window.Microseconds(), cfg.Slide.Microseconds()
		end := cfg.WindowEnd(ts)
		buf = strconv.AppendInt(buf, end-size, 10)
		buf = append(buf, '/')
		buf = strconv.AppendInt(buf, (end-ts+slide-1)/slide, 10)
	}
	buf = append(buf, '/')
	return window.AppendKeys(buf, q.keys)
}

// addSharePartials adds a decoded record (its projection in every query's
// keys and inputs) of input partition p to the share's partial aggregates.
func (a *Analyzer) addSharePartials(p int32, ts int64) {
	m := a.sharing[p]
	if m == nil {
		m = map[string]*sharePartial{}
		a.sharing[p] = m
	}
	for i, q := range a.qs {
		a.keyBuf = a.shareGroup(a.keyBuf, i, q, ts)
		sp := m[string(a.keyBuf)]
		if sp == nil {
			keys := make([]window.Value, len(q.keys))
			for j, k := range q.keys {
				keys[j] = window.Value{S: strings.Clone(k.S), Valid: k.Valid}
			}
			sp = &sharePartial{q: i, ts: ts, keys: keys, st: q.Compiled.Engine.NewStates()}
			m[string(a.keyBuf)] = sp
		}
		sp.count++
		sp.ts = max(sp.ts, ts)
		if sp.st != nil {
			q.Compiled.Engine.UpdateStates(sp.st, q.in)
		}
	}
}

// runQueriesShare runs this instance's share of a batch of named queries
// the leader planned: it reads the plan's ranges of its own input
// partitions, sends each query's partial aggregates, then a marker per
// partition, to the leader, in one transaction with its input offsets.
func (a *Analyzer) runQueriesShare(ctx context.Context, plan Plan, start time.Time) (bool, error) {
	a.sharing = map[int32]map[string]*sharePartial{}
	defer func() { a.sharing = nil }()
	return a.runShareOf(ctx, plan, start, shareWork{
		read: func(stats *batchStats) error {
			return a.d.Source.Read(ctx, plan, func(r *Record) { a.process(r, stats, nil) })
		},
		records: func(stats *batchStats) ([]StateRecord, error) { return a.shareRecords(plan, stats) },
		encode:  "encode partial aggregates",
	})
}

// shareRecords are a share's records: the partial aggregates of each input
// partition read, in repartition partition p mod S, then the input
// partitions' state, then a marker per input partition read (after its
// partials in the same repartition partition).
func (a *Analyzer) shareRecords(plan Plan, s *batchStats) ([]StateRecord, error) {
	d := a.dur
	var out []StateRecord
	for _, p := range slices.Sorted(maps.Keys(a.sharing)) {
		m := a.sharing[p]
		for _, k := range slices.Sorted(maps.Keys(m)) {
			sp := m[k]
			q := a.qs[sp.q]
			cfg := q.Compiled.Engine
			row := window.Row{Start: sp.ts, End: sp.ts + cfg.Gap.Microseconds(), Keys: sp.keys, Count: sp.count}
			if sp.st != nil {
				row.Aggs = &window.RowAggs{States: sp.st}
			}
			st, err := cfg.AppendRowState(nil, &row)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", q.Compiled.Query.Name, err)
			}
			v, err := json.Marshal(queryPartial{Query: q.Compiled.Query.Name, Fingerprint: queryFingerprint(q.Compiled.Query),
				TS: sp.ts, Count: sp.count, Keys: jsonKeys(sp.keys), State: st, Batch: plan.Batch})
			if err != nil {
				return nil, err
			}
			out = append(out, StateRecord{Topic: Repartition, Partition: p % d.nShuffle, Key: []byte(keyQueryPartial), Value: v})
		}
	}
	in, err := d.endBatch(true)
	if err != nil {
		return nil, err
	}
	out = append(out, in...)
	first := true
	for _, r := range plan.Ranges {
		m := marker{Batch: plan.Batch, Partition: r.Partition}
		if first {
			m.Records, first = s.records, false
		}
		v, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, StateRecord{Topic: Repartition, Partition: r.Partition % d.nShuffle, Key: []byte(keyMarker), Value: v})
	}
	return out, nil
}

// processQueryPartial adds a record of the repartition topic to the named
// queries (the leader): a query's partial aggregate, or a marker.
func (a *Analyzer) processQueryPartial(r *Record, s *batchStats) {
	corrupt := func(err error) {
		if s.corrupt == nil {
			s.corrupt = &StateError{What: fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset), Err: err}
		}
	}
	switch string(r.Key) {
	case keyMarker:
		m, err := decodeMarker(r.Value)
		if err != nil {
			corrupt(err)
			return
		}
		s.lateElsewhere += m.Late
		return
	case keyQueryPartial:
	default:
		corrupt(errors.New("a partial count of the one query the flags give: every instance of a query must run the same queries (--queries, --preset, or the flags)"))
		return
	}
	var p queryPartial
	if err := json.Unmarshal(r.Value, &p); err != nil {
		corrupt(fmt.Errorf("partial aggregate: %w", err))
		return
	}
	q := a.queryNamed(p.Query)
	switch {
	case q == nil:
		corrupt(fmt.Errorf("a partial aggregate of the query %q, which this instance does not run: every instance must run the same queries", p.Query))
		return
	case p.Fingerprint != queryFingerprint(q.Compiled.Query):
		corrupt(fmt.Errorf("a partial aggregate of the query %s defined otherwise (%s; here %s): every instance must run the same queries", p.Query, p.Fingerprint, queryFingerprint(q.Compiled.Query)))
		return
	case len(p.Keys) != len(q.keys) || p.Count <= 0:
		corrupt(fmt.Errorf("partial aggregate of query %s: %d keys and count %d, want %d keys and a positive count", p.Query, len(p.Keys), p.Count, len(q.keys)))
		return
	}
	cfg := q.Compiled.Engine
	row := window.Row{Start: p.TS}
	if err := cfg.DecodeRowState(p.State, &row); err != nil {
		corrupt(fmt.Errorf("partial aggregate of query %s: %w", p.Query, err))
		return
	}
	if row.Count != p.Count || len(row.States()) != len(cfg.Aggs) {
		corrupt(fmt.Errorf("partial aggregate of query %s: its state holds %d events and %d aggregates, the record says %d events, the query has %d aggregates", p.Query, row.Count, len(row.States()), p.Count, len(cfg.Aggs)))
		return
	}
	q.eng.AddPartial(p.TS, valueKeys(p.Keys), p.Count, row.States())
	if q == a.qs[0] {
		s.fromOthers += p.Count
	}
}

// queryNamed returns the running query of that name, or nil.
func (a *Analyzer) queryNamed(name string) *queryRun {
	for _, q := range a.qs {
		if q.Compiled.Query.Name == name {
			return q
		}
	}
	return nil
}
