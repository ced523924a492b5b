package metrics

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTextFormat(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("cordstream_records_total", "Records read.")
	v := r.NewCounterVec("cordstream_bad_records_total", "Bad records by reason.", "reason")
	g := r.NewGauge("cordstream_watermark_seconds", "Watermark.")
	h := r.NewHistogram("cordstream_latency_seconds", "Latency.", []float64{0.01, 0.1})
	c.Add(3)
	c.Inc()
	v.With("malformed_json").Inc()
	v.With(`we"ird`).Add(2)
	g.Set(1.5)
	g.Add(-0.5)
	h.Observe(0.005)
	h.Observe(0.05)
	h.Observe(5)
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"# TYPE cordstream_records_total counter\ncordstream_records_total 4\n",
		`cordstream_bad_records_total{reason="malformed_json"} 1`,
		`cordstream_bad_records_total{reason="we\"ird"} 2`,
		"cordstream_watermark_seconds 1\n",
		`cordstream_latency_seconds_bucket{le="0.01"} 1`,
		`cordstream_latency_seconds_bucket{le="0.1"} 2`,
		`cordstream_latency_seconds_bucket{le="+Inf"} 3`,
		"cordstream_latency_seconds_count 3\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if q := h.Quantile(0.5); q != 0.05 {
		t.Errorf("median = %v, want 0.05", q)
	}
	if q := NewRegistry().NewHistogram("x", "x", nil).Quantile(0.5); !math.IsNaN(q) {
		t.Errorf("empty quantile = %v, want NaN", q)
	}
}

func TestCounterRejectsDecrease(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("negative Add did not panic")
		}
	}()
	NewRegistry().NewCounter("c", "c").Add(-1)
}

func TestHandler(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("up_total", "x").Inc()
	var kafkaErr, restoreErr error
	h := NewHealth()
	h.Live("kafka", func() error { return kafkaErr })
	h.Ready("state", func() error { return restoreErr })
	srv := httptest.NewServer(r.Handler(h))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	report := func(path string) (int, HealthReport) {
		code, body := get(path)
		var rep HealthReport
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("%s: %v in %q", path, err, body)
		}
		return code, rep
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "up_total 1") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code, rep := report("/healthz"); code != 200 || rep.Status != "ok" || len(rep.Checks) != 1 {
		t.Errorf("/healthz = %d %+v, want 200 with the one live check", code, rep)
	}
	if code, rep := report("/readyz"); code != 200 || rep.Status != "ok" || len(rep.Checks) != 2 {
		t.Errorf("/readyz = %d %+v, want 200 with both checks", code, rep)
	}
	restoreErr = errors.New("restoring state of 3 partitions")
	if code, _ := report("/healthz"); code != 200 {
		t.Errorf("/healthz while restoring = %d, want 200 (readiness only)", code)
	}
	if code, rep := report("/readyz"); code != 503 || rep.Status != "not_ready" || rep.Checks[1].Reason != "restoring state of 3 partitions" {
		t.Errorf("/readyz while restoring = %d %+v", code, rep)
	}
	kafkaErr = errors.New("kafka unreachable")
	code, rep := report("/healthz")
	if code != 503 || rep.Status != "unhealthy" || rep.Checks[0].OK || rep.Checks[0].Reason != "kafka unreachable" {
		t.Errorf("/healthz unhealthy = %d %+v", code, rep)
	}
}

func TestHandlerNilHealth(t *testing.T) {
	srv := httptest.NewServer(NewRegistry().Handler(nil))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz without checks = %d, want 200", resp.StatusCode)
	}
}

func TestSum(t *testing.T) {
	r := NewRegistry()
	v := r.NewCounterVec("bad_total", "x", "reason")
	v.With("a").Add(2)
	v.With("b").Add(3)
	if got, ok := r.Sum("bad_total"); !ok || got != 5 {
		t.Errorf("Sum = %v, %v; want 5, true", got, ok)
	}
	if _, ok := r.Sum("missing_total"); ok {
		t.Error("Sum found a metric that is not registered")
	}
}
