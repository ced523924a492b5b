// Package dashboard shows a streaming query's results while it runs: a
// read-only JSON API (/api/v1/...), a Server-Sent Events stream that pushes
// each committed batch, and a live page at / whose every asset is embedded.
//
// It is fed, not polling: the analyzer calls Publish once per committed
// batch with the rows the batch changed and closed (Batch). Each query's rows
// live in a store that builds an immutable Snapshot per batch and swaps it
// in atomically, so that an answer always reflects one whole batch and says
// which. Memory is bounded (Options): the open windows, a number of recently
// closed ones, and a longer series of per-window totals.
//
// The package does no Kafka and knows nothing of the analyzer: the same
// Publish can be fed from the engine of one instance or, for the whole
// query, from the compacted results topic.
package dashboard

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Feed is what a running query publishes its committed batches to.
type Feed interface {
	// Publish applies one committed batch. It must be called from one
	// goroutine at a time per query, in batch order, and only after the
	// batch committed. It never blocks on readers: slow stream clients are
	// dropped. An error means the batch was not applied (the dashboard
	// keeps showing the previous one); the query should go on.
	Publish(b *Batch) error
}

var _ Feed = (*Dashboard)(nil)

// Options bound what a dashboard holds and serves. The zero value of each
// field takes its default.
type Options struct {
	// MaxRows bounds the rows held per query, all windows together
	// (default 500,000). A row of one measure takes about 19 bytes when its
	// key recurs in other windows, about 170 when it is the only row of its
	// key (BenchmarkHeldMemory): 9-85 MiB at the default. When a batch
	// would exceed it, the oldest windows are dropped; the newest window is
	// always kept, and new keys beyond the bound are left out of it (the
	// window is then marked truncated).
	MaxRows int
	// RetainClosedWindows is how many closed windows keep their rows after
	// the watermark closed them (default 120: an hour of the seed's 1m/30s
	// windows).
	RetainClosedWindows int
	// MaxTotals bounds the per-window totals kept per query, windows whose
	// rows were dropped included (default 10,080: a week of one-minute
	// windows).
	MaxTotals int
	// RecentBatches is how many batches the batches answer lists (default
	// 100).
	RecentBatches int
	// MaxStreams bounds the open event streams (default 32); more are
	// refused with 503 so that the API stays reachable.
	MaxStreams int
	// StreamBuffer is how many events may wait for one stream client
	// (default 16); a client that falls further behind is disconnected and
	// catches up when its browser reconnects.
	StreamBuffer int
	// StreamBacklog is how many recent events are kept for clients that
	// reconnect with Last-Event-ID (default 256).
	StreamBacklog int
	// Heartbeat is how often an idle stream gets a comment line, so that
	// proxies keep it open and dead clients are noticed (default 15s).
	Heartbeat time.Duration
	// AllowedHosts, when set, is the list of Host header values served
	// ("localhost:8080"); requests for other hosts get 403. It defeats DNS
	// rebinding: a web page of another site cannot make a browser read the
	// dashboard through a name that resolves to this machine. Use
	// LoopbackHosts for a loopback address. Compared without regard to case.
	AllowedHosts []string
	// Log receives operational messages (dropped stream clients).
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxRows, 500_000)
	def(&o.RetainClosedWindows, 120)
	def(&o.MaxTotals, 10_080)
	def(&o.RecentBatches, 100)
	def(&o.MaxStreams, 32)
	def(&o.StreamBuffer, 16)
	def(&o.StreamBacklog, 256)
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// LoopbackHosts returns the Host header values under which a browser on this
// machine reaches a server listening on addr (a loopback host:port):
// localhost, 127.0.0.1 and [::1] with its port. For Options.AllowedHosts.
func LoopbackHosts(addr string) []string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	return []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port}
}

// Dashboard serves the queries given to New. Create it with New, feed it
// with Publish, serve Handler; Close ends the event streams.
type Dashboard struct {
	opt     Options
	queries []*Query
	stores  map[string]*store
	hub     *hub
	log     *slog.Logger
	handler http.Handler
}

// New returns a dashboard for queries (at least one, distinct names), each
// checked with Query.Validate.
func New(queries []Query, opt Options) (*Dashboard, error) {
	if len(queries) == 0 {
		return nil, errors.New("dashboard: no query to show")
	}
	opt = opt.withDefaults()
	opt.AllowedHosts = slices.Clone(opt.AllowedHosts)
	for i, h := range opt.AllowedHosts {
		opt.AllowedHosts[i] = strings.ToLower(h)
	}
	d := &Dashboard{
		opt:    opt,
		stores: make(map[string]*store, len(queries)),
		log:    opt.Log.With("component", "dashboard"),
	}
	lim := limits{maxRows: opt.MaxRows, retainClosed: opt.RetainClosedWindows, maxTotals: opt.MaxTotals, recentBatches: opt.RecentBatches}
	var errs []error
	for _, q := range queries {
		if err := q.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := d.stores[q.Name]; dup {
			errs = append(errs, fmt.Errorf("dashboard: query %q given twice", q.Name))
			continue
		}
		q = q.withDefaults()
		q.GroupBy = slices.Clone(q.GroupBy)
		q.Measures = slices.Clone(q.Measures)
		d.queries = append(d.queries, &q)
		d.stores[q.Name] = newStore(&q, lim)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	d.hub = newHub(opt.StreamBuffer, opt.StreamBacklog, opt.MaxStreams)
	d.handler = d.routes()
	return d, nil
}

// store returns the named query's store; "" names the only query.
func (d *Dashboard) store(name string) *store {
	if name == "" && len(d.queries) == 1 {
		return d.stores[d.queries[0].Name]
	}
	return d.stores[name]
}

// Publish applies a committed batch to its query and pushes it to the event
// streams. See Feed.
func (d *Dashboard) Publish(b *Batch) error {
	s := d.store(b.Query)
	if s == nil {
		return fmt.Errorf("dashboard: batch %d is for query %q, which the dashboard does not show (it shows %s)", b.ID, b.Query, d.names())
	}
	snap, touched, err := s.apply(b)
	if err != nil {
		return fmt.Errorf("dashboard: query %s: %w", s.q.Name, err)
	}
	data, err := batchEvent(snap, touched, d.opt.MaxRows)
	if err != nil {
		return fmt.Errorf("dashboard: query %s: encode batch %d: %w", s.q.Name, b.ID, err)
	}
	for _, c := range d.hub.publish(s.q.Name, data) {
		d.log.Info("dropped a slow event-stream client; its browser reconnects and catches up", "query", s.q.Name, "batch", b.ID, "buffer", d.opt.StreamBuffer, "remote", c)
	}
	return nil
}

// Snapshot returns the current snapshot of the named query ("" for the only
// one), or nil for a query it does not show.
func (d *Dashboard) Snapshot(query string) *Snapshot {
	s := d.store(query)
	if s == nil {
		return nil
	}
	return s.snapshot()
}

// Handler serves the page at /, its assets under /assets/, the API under
// /api/v1/ and the event stream at /api/v1/events. It answers GET and HEAD
// only.
func (d *Dashboard) Handler() http.Handler { return d.handler }

// Close ends every event stream and refuses new ones; the rest of the API
// keeps answering. Call it before shutting the server down, so that its
// streams do not hold the shutdown up.
func (d *Dashboard) Close() { d.hub.close() }

func (d *Dashboard) names() string {
	names := make([]string, len(d.queries))
	for i, q := range d.queries {
		names[i] = q.Name
	}
	return strings.Join(names, ", ")
}
