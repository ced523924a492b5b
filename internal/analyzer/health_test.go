package analyzer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/metrics"
	"github.com/cordstream/cordstream/internal/window"
)

// healthFake is a fakeSource that reports on Kafka and on waits, and can
// hold a plan until released.
type healthFake struct {
	*fakeSource
	mu        sync.Mutex
	downSince time.Time
	downErr   error
	waiting   string
	hold      chan struct{} // a plan waits for it when set
}

func (h *healthFake) Unreachable() (time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.downSince, h.downErr
}

func (h *healthFake) Waiting() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waiting
}

func (h *healthFake) Plan(ctx context.Context) (Plan, error) {
	h.mu.Lock()
	hold := h.hold
	h.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return Plan{}, ctx.Err()
		}
	}
	return h.fakeSource.Plan(ctx)
}

// check returns the named check of a report.
func check(t *testing.T, rep metrics.HealthReport, name string) metrics.CheckResult {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, rep)
	return metrics.CheckResult{}
}

// /healthz and /readyz say, with a reason, when Kafka does not answer, when
// no batch has run for several trigger intervals, and when state is being
// restored or the first batch has not run; a wait by design (restoring, no
// partition) is not a stall.
func TestHealthChecks(t *testing.T) {
	src := &healthFake{fakeSource: &fakeSource{topic: "in"}}
	src.add(msg("alice", "2025-11-07 18:00:02.000"))
	src.avail = 1
	clock := &fakeClock{now: time.Unix(1000, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := make(chan int64, 100)
	out := outputFunc(func(_ context.Context, b *window.Batch) error { batches <- b.ID; return nil })
	a := newTestAnalyzer(t, seedQuery(), Deps{Source: src, Outputs: []Output{out}, Now: clock.Now, SleepUntil: clock.SleepUntil})

	// Before Run: live, not ready (no batch yet).
	if rep := a.health.Report(true); rep.OK() || !strings.Contains(check(t, rep, "state").Reason, "first batch has not run") {
		t.Errorf("/readyz before the first batch: %+v", rep)
	}
	if rep := a.health.Report(false); !rep.OK() {
		t.Errorf("/healthz before Run: %+v", rep)
	}

	// Kafka down: after KafkaDownAfter, and not before.
	src.mu.Lock()
	src.downSince, src.downErr = clock.Now().Add(-KafkaDownAfter+time.Second), errors.New("dial tcp 127.0.0.1:9092: connection refused")
	src.mu.Unlock()
	if rep := a.health.Report(false); !rep.OK() {
		t.Errorf("Kafka down for less than %v: %+v", KafkaDownAfter, rep)
	}
	clock.advance(2 * time.Second)
	rep := a.health.Report(false)
	if c := check(t, rep, "kafka"); rep.OK() || c.OK || !strings.Contains(c.Reason, "no Kafka broker has answered for 11s: dial tcp 127.0.0.1:9092: connection refused") {
		t.Errorf("Kafka down for 11s: %+v", rep)
	}
	src.mu.Lock()
	src.downSince, src.downErr = time.Time{}, nil
	src.mu.Unlock()

	// Running: a batch, then triggers with nothing to do keep it healthy.
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-batches
	waitFor(t, func() bool { return a.health.Report(true).OK() })

	// A plan that hangs: stalled after stallAfter (5 triggers, at least a
	// minute), unless the source waits by design.
	src.mu.Lock()
	src.hold = make(chan struct{})
	src.mu.Unlock()
	time.Sleep(50 * time.Millisecond) // the loop reaches the held plan
	clock.advance(50 * time.Second)
	if rep := a.health.Report(false); !rep.OK() {
		t.Errorf("50s without a batch (stall after %v): %+v", seedQuery().stallAfter(), rep)
	}
	clock.advance(20 * time.Second)
	rep = a.health.Report(false)
	if c := check(t, rep, "batches"); rep.OK() || !strings.Contains(c.Reason, "no batch committed for 1m") {
		t.Errorf("70s without a batch: %+v", rep)
	}
	src.mu.Lock()
	src.waiting = "restoring state from the state topics (for 1m10s)"
	src.mu.Unlock()
	if rep := a.health.Report(false); !rep.OK() {
		t.Errorf("restoring is not a stall: %+v", rep)
	}
	if rep := a.health.Report(true); rep.OK() || check(t, rep, "state").Reason != "restoring state from the state topics (for 1m10s)" {
		t.Errorf("/readyz while restoring: %+v", rep)
	}
	src.mu.Lock()
	src.waiting = ""
	close(src.hold)
	src.hold = nil
	src.mu.Unlock()
	waitFor(t, func() bool { return a.health.Report(true).OK() })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Planning failures count as Kafka not answering once they last.
func TestHealthPlanFailures(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	a := newTestAnalyzer(t, seedQuery(), Deps{Source: &fakeSource{topic: "in"}, Outputs: []Output{&recordingOutput{}}, Now: clock.Now})
	a.prog.planFailed(clock.Now(), errors.New("list end offsets: i/o timeout"))
	clock.advance(KafkaDownAfter)
	if c := check(t, a.health.Report(false), "kafka"); c.OK || !strings.Contains(c.Reason, "planning a batch has failed for 10s: list end offsets: i/o timeout") {
		t.Errorf("kafka check: %+v", c)
	}
	a.prog.stepDone(clock.Now(), false)
	if c := check(t, a.health.Report(false), "kafka"); !c.OK {
		t.Errorf("kafka check after a plan: %+v", c)
	}
}

// The reach watch follows answers and failures of the brokers.
func TestReachWatch(t *testing.T) {
	w := newReachWatch()
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	if s, _ := w.Unreachable(); !s.IsZero() {
		t.Fatal("unreachable before anything happened")
	}
	w.OnBrokerConnect(kgo.BrokerMetadata{}, 0, nil, errors.New("connection refused"))
	now = now.Add(5 * time.Second)
	w.OnBrokerE2E(kgo.BrokerMetadata{}, 0, kgo.BrokerE2E{ReadErr: errors.New("EOF")})
	if s, err := w.Unreachable(); s != time.Unix(1000, 0) || err == nil || err.Error() != "EOF" {
		t.Errorf("Unreachable = %v, %v; want since the first failure, with the last error", s, err)
	}
	w.OnBrokerE2E(kgo.BrokerMetadata{}, 0, kgo.BrokerE2E{})
	if s, _ := w.Unreachable(); !s.IsZero() {
		t.Errorf("an answer did not clear it")
	}
	w.OnBrokerE2E(kgo.BrokerMetadata{}, 0, kgo.BrokerE2E{WriteErr: kgo.ErrClientClosed})
	if s, _ := w.Unreachable(); !s.IsZero() {
		t.Errorf("closing the client counted as Kafka not answering")
	}
}

// The health endpoints serve the checks as JSON, 503 when one fails.
func TestHealthEndpoints(t *testing.T) {
	src := &healthFake{fakeSource: &fakeSource{topic: "in"}, waiting: "waiting for the group to assign partitions to this instance"}
	a := newTestAnalyzer(t, seedQuery(), Deps{Source: src, Outputs: []Output{&recordingOutput{}}})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for path, wantCode := range map[string]int{"/healthz": 200, "/readyz": 503} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var rep metrics.HealthReport
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil || resp.StatusCode != wantCode {
			t.Errorf("%s: %d, %v; want %d", path, resp.StatusCode, err, wantCode)
		}
		if path == "/readyz" && check(t, rep, "state").Reason != src.waiting {
			t.Errorf("/readyz: %+v", rep)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
