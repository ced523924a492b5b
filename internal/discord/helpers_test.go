package discord

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cordstream/cordstream/internal/discord/sim"
	"github.com/cordstream/cordstream/internal/metrics"
	"github.com/cordstream/cordstream/internal/testio"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testHeartbeat is the simulator's heartbeat interval in these tests.
const testHeartbeat = 200 * time.Millisecond

func newSim(t *testing.T, mod func(*sim.Config)) *sim.Server {
	t.Helper()
	cfg := sim.Config{
		PrivilegedIntents: sim.IntentMessageContent,
		HeartbeatInterval: testHeartbeat,
		GatewaySendLimit:  100000,
		IdentifyInterval:  -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv := sim.New(cfg)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// collector is a Handler that records events.
type collector struct {
	mu     sync.Mutex
	events []Event
	block  chan struct{} // when set, Handle waits on it once
	wake   chan struct{}
}

func newCollector() *collector { return &collector{wake: make(chan struct{}, 1)} }

func (c *collector) Handle(ctx context.Context, ev *Event) error {
	c.mu.Lock()
	block := c.block
	c.block = nil
	c.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	c.events = append(c.events, *ev)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) snapshot() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// waitIDs waits until every id has been seen, or fails after timeout.
func (c *collector) waitIDs(t *testing.T, timeout time.Duration, ids ...string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		seen := map[string]bool{}
		for _, ev := range c.snapshot() {
			seen[ev.Message.MessageID] = true
		}
		missing := 0
		for _, id := range ids {
			if !seen[id] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-c.wake:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d messages not delivered within %s", missing, len(ids), timeout)
		}
	}
}

type runningGateway struct {
	g      *Gateway
	cancel context.CancelFunc
	done   chan error
	logs   *testio.Buffer
	reg    *metrics.Registry
}

// startGateway runs a Gateway against srv until the test ends.
func startGateway(t *testing.T, srv *sim.Server, h Handler, mod func(*Config)) *runningGateway {
	t.Helper()
	logs := &testio.Buffer{}
	reg := metrics.NewRegistry()
	cfg := Config{
		Token:             srv.Token(),
		APIURL:            srv.APIURL(),
		Intents:           DefaultIntents | IntentDirectMessages,
		Handler:           h,
		Updates:           true,
		Log:               slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:           reg,
		IdentifyInterval:  10 * time.Millisecond,
		InvalidSessionMin: 10 * time.Millisecond,
		InvalidSessionMax: 50 * time.Millisecond,
		MaxBackoff:        300 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rg := &runningGateway{g: g, cancel: cancel, done: make(chan error, 1), logs: logs, reg: reg}
	go func() { rg.done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rg.done:
		case <-time.After(5 * time.Second):
			t.Error("Gateway.Run did not return within 5s of cancel")
		}
	})
	return rg
}

// waitReady waits until every shard is connected.
func (rg *runningGateway) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, 5*time.Second, "gateway ready", func() bool {
		rg.g.mu.Lock()
		shards := rg.g.shards
		rg.g.mu.Unlock()
		if len(shards) == 0 {
			return false
		}
		for _, s := range shards {
			if !s.ready.Load() {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
