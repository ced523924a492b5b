// Package metrics is a small Prometheus text-format registry: counters,
// gauges and histograms, with optional label values, served over HTTP with a
// /healthz endpoint. It never records secrets: label values come from code,
// not from configuration.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metrics and renders them in the Prometheus text format.
type Registry struct {
	mu      sync.Mutex
	metrics []metric
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

type metric interface {
	name() string
	write(w io.Writer)
}

func (r *Registry) add(m metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, old := range r.metrics {
		if old.name() == m.name() {
			panic("metrics: duplicate metric " + m.name())
		}
	}
	r.metrics = append(r.metrics, m)
}

// WriteTo writes every metric, sorted by name.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	ms := append([]metric(nil), r.metrics...)
	r.mu.Unlock()
	sort.Slice(ms, func(i, j int) bool { return ms[i].name() < ms[j].name() })
	cw := &countWriter{w: w}
	for _, m := range ms {
		m.write(cw)
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// Handler serves /metrics (text format), /healthz and /readyz (JSON, 200
// while every check passes, else 503 with each check's reason; see Health).
// health may be nil: always healthy.
func (r *Registry) Handler(health *Health) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.WriteTo(w)
	})
	mux.HandleFunc("/healthz", health.serve(false))
	mux.HandleFunc("/readyz", health.serve(true))
	return mux
}

// family is the shared part of a metric with labels.
type family struct {
	n, help, typ string
	labels       []string
	mu           sync.Mutex
	children     map[string]*atomicFloat
}

func (f *family) name() string { return f.n }

func (f *family) child(values []string) *atomicFloat {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s wants %d label values, got %d", f.n, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.children[key]
	if !ok {
		c = &atomicFloat{}
		f.children[key] = c
	}
	return c
}

func (f *family) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.n, f.help, f.n, f.typ)
	f.mu.Lock()
	keys := make([]string, 0, len(f.children))
	for k := range f.children {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s%s %s\n", f.n, labelString(f.labels, splitKey(k, len(f.labels))), formatFloat(f.children[k].load()))
	}
	f.mu.Unlock()
}

func splitKey(k string, n int) []string {
	if n == 0 {
		return nil
	}
	return strings.Split(k, "\xff")
}

func labelString(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(values[i]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

type atomicFloat struct{ bits atomic.Uint64 }

func (a *atomicFloat) load() float64   { return math.Float64frombits(a.bits.Load()) }
func (a *atomicFloat) store(v float64) { a.bits.Store(math.Float64bits(v)) }
func (a *atomicFloat) add(v float64) {
	for {
		old := a.bits.Load()
		if a.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Counter only goes up.
type Counter struct{ v *atomicFloat }

// Inc adds 1.
func (c Counter) Inc() { c.v.add(1) }

// Add adds n (n must not be negative).
func (c Counter) Add(n float64) {
	if n < 0 {
		panic("metrics: counter decreased")
	}
	c.v.add(n)
}

// Value returns the current value.
func (c Counter) Value() float64 { return c.v.load() }

// Gauge goes up and down.
type Gauge struct{ v *atomicFloat }

// Set sets the value.
func (g Gauge) Set(v float64) { g.v.store(v) }

// Add adds v (may be negative).
func (g Gauge) Add(v float64) { g.v.add(v) }

// Value returns the current value.
func (g Gauge) Value() float64 { return g.v.load() }

// CounterVec is a counter with labels.
type CounterVec struct{ f *family }

// With returns the counter for the label values, in the order declared.
func (c CounterVec) With(values ...string) Counter { return Counter{c.f.child(values)} }

// GaugeVec is a gauge with labels.
type GaugeVec struct{ f *family }

// With returns the gauge for the label values.
func (g GaugeVec) With(values ...string) Gauge { return Gauge{g.f.child(values)} }

// NewCounter registers a counter without labels.
func (r *Registry) NewCounter(name, help string) Counter {
	return r.NewCounterVec(name, help).With()
}

// NewCounterVec registers a counter with the given label names.
func (r *Registry) NewCounterVec(name, help string, labels ...string) CounterVec {
	f := &family{n: name, help: help, typ: "counter", labels: labels, children: map[string]*atomicFloat{}}
	r.add(f)
	return CounterVec{f}
}

// NewGauge registers a gauge without labels.
func (r *Registry) NewGauge(name, help string) Gauge { return r.NewGaugeVec(name, help).With() }

// NewGaugeVec registers a gauge with the given label names.
func (r *Registry) NewGaugeVec(name, help string, labels ...string) GaugeVec {
	f := &family{n: name, help: help, typ: "gauge", labels: labels, children: map[string]*atomicFloat{}}
	r.add(f)
	return GaugeVec{f}
}

// Histogram counts observations in cumulative buckets.
type Histogram struct {
	n       string
	help    string
	bounds  []float64
	mu      sync.Mutex
	counts  []uint64
	sum     float64
	count   uint64
	samples []float64 // ring of recent observations for Quantile
	next    int
}

const histogramSamples = 4096

// NewHistogram registers a histogram with the given upper bounds (ascending).
func (r *Registry) NewHistogram(name, help string, bounds []float64) *Histogram {
	h := &Histogram{n: name, help: help, bounds: bounds, counts: make([]uint64, len(bounds))}
	r.add(h)
	return h
}

// DefaultLatencyBuckets are seconds from 0.5 ms to 10 s.
var DefaultLatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func (h *Histogram) name() string { return h.n }

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	h.mu.Lock()
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.count++
	if len(h.samples) < histogramSamples {
		h.samples = append(h.samples, v)
	} else {
		h.samples[h.next] = v
		h.next = (h.next + 1) % histogramSamples
	}
	h.mu.Unlock()
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// Quantile returns the q-quantile (0..1) of the most recent observations
// (up to 4096), or NaN when there are none.
func (h *Histogram) Quantile(q float64) float64 {
	h.mu.Lock()
	s := append([]float64(nil), h.samples...)
	h.mu.Unlock()
	if len(s) == 0 {
		return math.NaN()
	}
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	if i < 0 {
		i = 0
	}
	return s[i]
}

func (h *Histogram) write(w io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", h.n, h.help, h.n)
	for i, b := range h.bounds {
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", h.n, formatFloat(b), h.counts[i])
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", h.n, h.count, h.n, formatFloat(h.sum), h.n, h.count)
}

// Sum returns the sum over every label combination of the counter or gauge
// called name, and whether such a metric is registered. Summaries (a demo's
// closing line, tests) read their numbers through it.
func (r *Registry) Sum(name string) (float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.metrics {
		f, ok := m.(*family)
		if !ok || f.n != name {
			continue
		}
		f.mu.Lock()
		var sum float64
		for _, c := range f.children {
			sum += c.load()
		}
		f.mu.Unlock()
		return sum, true
	}
	return 0, false
}
