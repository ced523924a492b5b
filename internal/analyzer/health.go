package analyzer

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The analyzer's health, served on /healthz and /readyz (Deps.MetricsAddr):
//
//   - kafka (live): Kafka has not answered for KafkaDownAfter, or planning a
//     batch has failed for as long;
//   - batches (live): no batch has committed (nor found nothing to do) for
//     several trigger intervals (stallAfter), while the analyzer was not
//     waiting by design (restoring state, or owning no partition);
//   - state (ready): the analyzer is restoring state, waits for the group to
//     assign it partitions, or has not run its first batch.

// KafkaDownAfter is how long Kafka may not answer before /healthz says so:
// a broker restarting or a leader moving takes a few seconds, which the
// analyzer rides out.
const KafkaDownAfter = 10 * time.Second

// healthSource is a source that tells the health checks about Kafka and
// about waits that are not stalls.
type healthSource interface {
	// Unreachable returns since when Kafka has not answered (zero when it
	// answers) and the last error.
	Unreachable() (time.Time, error)
	// Waiting says why the source cannot run a batch now by design, or "".
	Waiting() string
}

// reachWatch is a franz-go hook that follows whether the brokers answer:
// every request that gets a response is an answer; a failed dial or a
// request that fails on the connection is not.
type reachWatch struct {
	mu        sync.Mutex
	now       func() time.Time
	failSince time.Time // the first failure since the last answer
	lastErr   error
}

var (
	_ kgo.HookBrokerConnect = (*reachWatch)(nil)
	_ kgo.HookBrokerE2E     = (*reachWatch)(nil)
)

func newReachWatch() *reachWatch { return &reachWatch{now: time.Now} }

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (w *reachWatch) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		w.failed(err)
	}
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (w *reachWatch) OnBrokerE2E(_ kgo.BrokerMetadata, _ int16, e2e kgo.BrokerE2E) {
	if err := e2e.Err(); err != nil {
		w.failed(err)
		return
	}
	w.mu.Lock()
	w.failSince, w.lastErr = time.Time{}, nil
	w.mu.Unlock()
}

func (w *reachWatch) failed(err error) {
	if errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	w.mu.Lock()
	if w.failSince.IsZero() {
		w.failSince = w.now()
	}
	w.lastErr = err
	w.mu.Unlock()
}

// Unreachable returns since when no broker answered, and the last error.
func (w *reachWatch) Unreachable() (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failSince, w.lastErr
}

// progress is what the analyzer's loop tells its health checks; the checks
// run on the HTTP server's goroutines.
type progress struct {
	mu        sync.Mutex
	started   time.Time // Run began
	lastStep  time.Time // a batch committed, or a trigger found nothing to do
	ran       bool      // a batch has committed in this process
	planSince time.Time // planning has failed since
	planErr   error
}

func (p *progress) stepDone(now time.Time, ran bool) {
	p.mu.Lock()
	p.lastStep = now
	p.ran = p.ran || ran
	p.planSince, p.planErr = time.Time{}, nil
	p.mu.Unlock()
}

func (p *progress) planFailed(now time.Time, err error) {
	p.mu.Lock()
	if p.planSince.IsZero() {
		p.planSince = now
	}
	p.planErr = err
	p.mu.Unlock()
}

// stallAfter is how long the analyzer may go without completing a trigger
// before /healthz says it is stuck: several trigger intervals, and at least
// a minute (a batch is bounded to a third of the transaction timeout, and
// a stop drains for up to 10 s).
func (c Config) stallAfter() time.Duration {
	if c.AvailableNow {
		return time.Minute
	}
	return max(5*c.Trigger, time.Minute)
}

// addHealthChecks registers the analyzer's checks.
func (a *Analyzer) addHealthChecks() {
	hs, _ := a.d.Source.(healthSource)
	since := func(t time.Time) string { return a.d.Now().Sub(t).Round(time.Second).String() }
	a.health.Live("kafka", func() error {
		if hs != nil {
			if t, err := hs.Unreachable(); !t.IsZero() && a.d.Now().Sub(t) >= KafkaDownAfter {
				return fmt.Errorf("no Kafka broker has answered for %s: %v", since(t), err)
			}
		}
		a.prog.mu.Lock()
		t, err := a.prog.planSince, a.prog.planErr
		a.prog.mu.Unlock()
		if !t.IsZero() && a.d.Now().Sub(t) >= KafkaDownAfter {
			return fmt.Errorf("planning a batch has failed for %s: %v", since(t), err)
		}
		return nil
	})
	a.health.Live("batches", func() error {
		a.prog.mu.Lock()
		last, started := a.prog.lastStep, a.prog.started
		a.prog.mu.Unlock()
		if started.IsZero() {
			return nil // not running yet
		}
		if hs != nil && hs.Waiting() != "" {
			return nil // restoring, or no partition: /readyz says so
		}
		if last.IsZero() {
			last = started
		}
		if d := a.d.Now().Sub(last); d >= a.cfg.stallAfter() {
			return fmt.Errorf("no batch committed for %s (more than %v; the trigger is %v)", since(last), a.cfg.stallAfter(), a.cfg.Trigger)
		}
		return nil
	})
	a.health.Ready("state", func() error {
		if hs != nil {
			if w := hs.Waiting(); w != "" {
				return errors.New(w)
			}
		}
		a.prog.mu.Lock()
		ran := a.prog.ran || !a.prog.lastStep.IsZero()
		a.prog.mu.Unlock()
		if !ran {
			return errors.New("the first batch has not run yet")
		}
		return nil
	})
}
