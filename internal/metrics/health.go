package metrics

import (
	"encoding/json"
	"net/http"
	"sync"
)

// Health is a set of named checks, served as JSON on /healthz (liveness: is
// the process doing its work?) and /readyz (readiness: also, is it ready to,
// or still starting, for example restoring state). A check returns nil when
// healthy, else an error whose text is the reason shown. Checks must be
// cheap and must never put secrets in their errors.
type Health struct {
	mu     sync.Mutex
	checks []healthCheck
}

type healthCheck struct {
	name      string
	readyOnly bool
	fn        func() error
}

// NewHealth returns an empty set of checks (always healthy).
func NewHealth() *Health { return &Health{} }

// Live adds a check that both /healthz and /readyz report.
func (h *Health) Live(name string, fn func() error) { h.add(name, false, fn) }

// Ready adds a check that only /readyz reports: a condition the process
// leaves by itself (starting, restoring), which should not get it restarted.
func (h *Health) Ready(name string, fn func() error) { h.add(name, true, fn) }

func (h *Health) add(name string, readyOnly bool, fn func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = append(h.checks, healthCheck{name, readyOnly, fn})
}

// HealthReport is the JSON body of /healthz and /readyz.
type HealthReport struct {
	Status string        `json:"status"` // "ok" or "unhealthy" (/healthz), "ok" or "not_ready" (/readyz)
	Checks []CheckResult `json:"checks"`
}

// CheckResult is one check's outcome.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// OK reports whether every check passed.
func (r HealthReport) OK() bool { return r.Status == "ok" }

// Report runs the checks: the live ones, and the ready-only ones too when
// ready is set.
func (h *Health) Report(ready bool) HealthReport {
	var checks []healthCheck
	if h != nil {
		h.mu.Lock()
		checks = append(checks, h.checks...)
		h.mu.Unlock()
	}
	rep := HealthReport{Status: "ok", Checks: []CheckResult{}}
	for _, c := range checks {
		if c.readyOnly && !ready {
			continue
		}
		res := CheckResult{Name: c.name, OK: true}
		if err := c.fn(); err != nil {
			res.OK, res.Reason = false, err.Error()
			if ready {
				rep.Status = "not_ready"
			} else {
				rep.Status = "unhealthy"
			}
		}
		rep.Checks = append(rep.Checks, res)
	}
	return rep
}

func (h *Health) serve(ready bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		rep := h.Report(ready)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.OK() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rep)
	}
}
