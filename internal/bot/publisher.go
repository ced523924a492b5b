package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cordstream/cordstream/internal/chat"
)

// Outlet is where the pipeline hands records on their way to Kafka (the
// Publisher, or the Spooled publisher in front of it). Publish may block
// while the outlet is full (back-pressure) and returns an error only when ctx
// ends first; the outlet counts each record's outcome itself. Close delivers
// or fails everything accepted, within ctx's deadline.
type Outlet interface {
	Publish(ctx context.Context, m *chat.Message, receivedAt time.Time) error
	Close(ctx context.Context) error
}

// DefaultMaxBuffered is PublisherConfig.MaxBuffered's default, and the
// command's --max-buffered.
const DefaultMaxBuffered = 10000

// PublisherConfig configures a Kafka publisher.
type PublisherConfig struct {
	// Topic receives the records. Required.
	Topic string
	// MaxBuffered is how many records may wait for Kafka's acknowledgement
	// before Publish blocks (DefaultMaxBuffered when zero).
	MaxBuffered int
	// StallAfter: records waiting this long without any acknowledgement make
	// Kafka "unreachable" (5 s when zero).
	StallAfter time.Duration
	// LogEvery is how often the unreachable warning repeats (5 s when zero).
	LogEvery time.Duration
	Log      *slog.Logger
	Metrics  *Metrics
	Now      func() time.Time
	// Cursors, when set, learns which creates Kafka acknowledged (or
	// refused for good), for the REST backfill's per-channel positions.
	Cursors *Cursors
	// ProbeEvery is how often Run asks a broker whether it answers while
	// no record waits (10 s when zero), so that an outage shows when
	// Discord is quiet too.
	ProbeEvery time.Duration
	// Linger is how long the producer waits for more records before it
	// sends a batch (DefaultLinger when zero): records arriving one by one
	// then go to Kafka together. SpooledLinger behind a Spooled outlet.
	Linger time.Duration
}

// DefaultLinger is PublisherConfig.Linger's default (franz-go's own).
const DefaultLinger = 10 * time.Millisecond

// Publisher is the Kafka Outlet: an idempotent, acks=all franz-go producer
// with a bounded buffer.
type Publisher struct {
	cfg PublisherConfig
	cl  *kgo.Client
	log *slog.Logger
	m   *Metrics

	sem           chan struct{} // one token per record waiting for Kafka
	deliverCtx    context.Context
	cancelDeliver context.CancelFunc

	waiting      atomic.Int64
	lastProgress atomic.Int64 // unix nanos: last ack or failure, or when waiting became non-zero
	lastErr      atomic.Pointer[string]
	bpLogged     atomic.Int64 // unix nanos of the last "buffer full" log line
	probeFailed  atomic.Int64 // unix nanos: since when no broker answers the idle probe (0: it does)
	probeErr     atomic.Pointer[string]

	closeOnce sync.Once
	closeErr  error
}

// ProducerOptions are the franz-go options the publisher relies on. They are
// franz-go's defaults made explicit, plus the buffer limit, the topic, and a
// hook that remembers the last connection error for the logs.
func (p *Publisher) producerOptions() []kgo.Opt {
	return []kgo.Opt{
		kgo.DefaultProduceTopic(p.cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotency (the default) requires it
		// Never give up on a record: retries and delivery time are unlimited
		// (franz-go's defaults), and a missing topic is retried too rather
		// than failing every buffered record after four metadata refreshes.
		kgo.UnknownTopicRetries(-1),
		// franz-go's own limit sits above ours so that Produce never blocks
		// on it (our semaphore blocks first, cancellably).
		kgo.MaxBufferedRecords(p.cfg.MaxBuffered + 1024),
		kgo.ProducerLinger(p.cfg.Linger),
		kgo.WithHooks(connHook{p}),
	}
}

// NewPublisher builds the producer with newClient (which receives the
// options the publisher needs, e.g. kafka.NewClient bound to the connection
// settings) and checks that idempotence and acks=all are in force.
func NewPublisher(cfg PublisherConfig, newClient func(opts ...kgo.Opt) (*kgo.Client, error)) (*Publisher, error) {
	if cfg.Topic == "" {
		return nil, errors.New("publisher: no topic")
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = DefaultMaxBuffered
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = 5 * time.Second
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 5 * time.Second
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = 10 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{cfg: cfg, log: log.With("component", "publisher"), m: cfg.Metrics, sem: make(chan struct{}, cfg.MaxBuffered)}
	cl, err := newClient(p.producerOptions()...)
	if err != nil {
		return nil, err
	}
	if err := CheckDurability(cl); err != nil {
		cl.Close()
		return nil, err
	}
	p.cl = cl
	p.deliverCtx, p.cancelDeliver = context.WithCancel(context.Background())
	p.lastProgress.Store(cfg.Now().UnixNano())
	return p, nil
}

// CheckDurability verifies that cl produces idempotently with acks=all and
// never stops retrying a record on its own.
func CheckDurability(cl *kgo.Client) error {
	if acks, _ := cl.OptValue(kgo.RequiredAcks).(kgo.Acks); acks != kgo.AllISRAcks() {
		return errors.New("producer: acks must be all (-1) so that a record survives a broker failure")
	}
	if off, _ := cl.OptValue(kgo.DisableIdempotentWrite).(bool); off {
		return errors.New("producer: idempotent writes must stay enabled so that retries cannot duplicate records")
	}
	if d, _ := cl.OptValue(kgo.RecordDeliveryTimeout).(time.Duration); d != 0 {
		return fmt.Errorf("producer: record delivery timeout %s would drop records while Kafka is down", d)
	}
	if n, _ := cl.OptValue(kgo.RecordRetries).(int64); n < 1<<30 {
		return fmt.Errorf("producer: record retries %d would drop records while Kafka is down", n)
	}
	return nil
}

// Client returns the underlying client.
func (p *Publisher) Client() *kgo.Client { return p.cl }

// Publish encodes m and hands it to the producer, keyed by author id (message
// id for deletes). It blocks while MaxBuffered records wait for Kafka; it
// returns ctx's error if ctx ends first (the record is then counted as failed
// with reason "shutdown"). Encoding failures are counted and logged, not
// returned.
func (p *Publisher) Publish(ctx context.Context, m *chat.Message, receivedAt time.Time) error {
	val, err := chat.Encode(m)
	if err != nil {
		p.m.addFailed(FailEncode)
		p.log.Error("cannot encode message; not published", "message_id", m.MessageID, "err", err)
		p.cfg.Cursors.Done(m)
		return nil
	}
	if err := p.acquire(ctx, true); err != nil {
		p.m.addFailed(FailShutdown)
		return err
	}
	id := m.MessageID
	done := *m
	p.produce(m.Key(), val, receivedAt, func(err error) {
		if err == nil {
			p.cfg.Cursors.Done(&done)
			return
		}
		reason := failReason(err)
		p.m.addFailed(reason)
		if reason == FailTooLarge {
			p.cfg.Cursors.Done(&done) // retrying cannot help
		}
		p.log.Error("Kafka did not accept a message; it is not published", "message_id", id, "reason", reason, "err", err)
	})
	return nil
}

// acquire takes one of the MaxBuffered slots, blocking while none is free
// until ctx ends. pause says that waiting stops reading from Discord (it is
// then counted and logged as back-pressure).
func (p *Publisher) acquire(ctx context.Context, pause bool) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	default:
	}
	if !pause {
		select {
		case p.sem <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.waitForSpace(ctx)
}

// produce hands a record to the producer; a slot must have been acquired.
// done is called once with Kafka's answer (nil: acknowledged, counted as
// published); it runs on the producer's goroutine and must not block.
func (p *Publisher) produce(key, val []byte, receivedAt time.Time, done func(error)) {
	if p.waiting.Add(1) == 1 {
		p.lastProgress.Store(p.cfg.Now().UnixNano())
	}
	p.m.buffered.Add(1)
	rec := &kgo.Record{Topic: p.cfg.Topic, Key: key, Value: val}
	p.cl.Produce(p.deliverCtx, rec, func(_ *kgo.Record, err error) {
		now := p.cfg.Now()
		p.lastProgress.Store(now.UnixNano())
		if err == nil {
			p.probeFailed.Store(0)
		}
		p.waiting.Add(-1)
		p.m.buffered.Add(-1)
		<-p.sem
		if err == nil {
			p.m.addPublished()
			p.m.latency.Observe(now.Sub(receivedAt).Seconds())
		}
		done(err)
	})
}

func failReason(err error) string {
	switch {
	case errors.Is(err, kgo.ErrAborting), errors.Is(err, context.Canceled), errors.Is(err, kgo.ErrClientClosed):
		return FailShutdownTimeout
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return FailTooLarge
	}
	return FailKafka
}

// waitForSpace blocks until a buffer slot frees up or ctx ends, counting
// the pause.
func (p *Publisher) waitForSpace(ctx context.Context) error {
	p.m.bpEvents.Inc()
	p.m.nBackpressd.Add(1)
	start := p.cfg.Now()
	if last := p.bpLogged.Load(); start.UnixNano()-last >= int64(p.cfg.LogEvery) {
		p.bpLogged.Store(start.UnixNano())
		p.log.Warn("buffer full: pausing reads from Discord until Kafka acknowledges records",
			"waiting", p.waiting.Load(), "max_buffered", p.cfg.MaxBuffered)
	}
	defer func() { p.m.bpSeconds.Add(p.cfg.Now().Sub(start).Seconds()) }()
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run watches delivery until ctx ends: while records wait without any
// acknowledgement for StallAfter, it logs "Kafka unreachable" every LogEvery
// and marks Kafka unreachable for Healthy. While none wait, it asks a broker
// every ProbeEvery whether it answers (the same outage with Discord quiet).
func (p *Publisher) Run(ctx context.Context) error {
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		p.probe(ctx)
	}()
	defer func() { <-probeDone }()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var stalledSince, lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := p.cfg.Now()
		stall := p.stalledFor(now)
		switch {
		case stall > 0 && stalledSince.IsZero():
			stalledSince = now.Add(-stall)
			p.m.reachable.Set(0)
			fallthrough
		case stall > 0 && now.Sub(lastLog) >= p.cfg.LogEvery:
			lastLog = now
			args := []any{"waiting", p.waiting.Load(), "for", stall.Truncate(100 * time.Millisecond), "max_buffered", p.cfg.MaxBuffered}
			if e := p.lastErr.Load(); e != nil {
				args = append(args, "last_error", *e)
			}
			p.log.Warn(fmt.Sprintf("Kafka unreachable, %d messages waiting", p.waiting.Load()), args...)
		case stall == 0 && !stalledSince.IsZero():
			p.log.Info("Kafka reachable again", "after", now.Sub(stalledSince).Round(time.Second))
			stalledSince = time.Time{}
			p.m.reachable.Set(1)
		}
	}
}

// probe asks a broker every ProbeEvery, while no record waits, whether it
// answers, until ctx ends.
func (p *Publisher) probe(ctx context.Context) {
	t := time.NewTicker(p.cfg.ProbeEvery)
	defer t.Stop()
	logged := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.waiting.Load() > 0 {
			continue // the stall watch covers it
		}
		timeout := min(p.cfg.ProbeEvery, 5*time.Second)
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := p.cl.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", timeout)
		}
		now := p.cfg.Now()
		if err == nil {
			if logged {
				p.log.Info("Kafka answers again")
			}
			p.probeFailed.Store(0)
			logged = false
			continue
		}
		msg := err.Error()
		p.probeErr.Store(&msg)
		p.probeFailed.CompareAndSwap(0, now.UnixNano())
		if since := time.Unix(0, p.probeFailed.Load()); !logged && now.Sub(since) >= p.cfg.StallAfter {
			logged = true
			p.log.Warn("Kafka does not answer (no message is waiting for it)", "for", now.Sub(since).Round(time.Second), "err", msg)
		}
	}
}

// stalledFor returns how long records have waited without progress, or 0 if
// none wait or progress is recent.
func (p *Publisher) stalledFor(now time.Time) time.Duration {
	if p.waiting.Load() == 0 {
		return 0
	}
	d := now.Sub(time.Unix(0, p.lastProgress.Load()))
	if d < p.cfg.StallAfter {
		return 0
	}
	return d
}

// Healthy returns an error while records have waited longer than maxStall
// without any acknowledgement, or while no broker has answered Run's probe
// for longer than maxStall.
func (p *Publisher) Healthy(maxStall time.Duration) error {
	now := p.cfg.Now()
	if d := p.stalledFor(now); d > maxStall {
		return fmt.Errorf("Kafka has acknowledged nothing for %s; %d messages waiting", d.Round(time.Second), p.waiting.Load())
	}
	if since := p.probeFailed.Load(); since != 0 {
		if d := now.Sub(time.Unix(0, since)); d > maxStall {
			why := ""
			if e := p.probeErr.Load(); e != nil {
				why = ": " + *e
			}
			return fmt.Errorf("no Kafka broker has answered for %s%s", d.Round(time.Second), why)
		}
	}
	return nil
}

// Close waits until every accepted record is acknowledged or ctx's deadline
// passes; records still unacknowledged then are failed (reason
// shutdown_timeout, each logged with its message id). It closes the client
// and returns an error if any record was not delivered.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		before := p.m.nFailed.Load()
		if err := p.cl.Flush(ctx); err != nil {
			left := p.waiting.Load()
			p.log.Error("shutdown deadline passed with messages not acknowledged by Kafka; failing them",
				"waiting", left)
			p.cancelDeliver()
			actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := p.cl.AbortBufferedRecords(actx); err != nil {
				p.cl.UnsafeAbortBufferedRecords()
			}
			cancel()
		}
		p.cancelDeliver()
		p.cl.Close()
		// Aborted and closed records are failed through their promises,
		// which franz-go runs on its own goroutine: wait for them (bounded),
		// so that the counts and the error below are final.
		for deadline := time.Now().Add(5 * time.Second); p.waiting.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if n := p.m.nFailed.Load() - before; n > 0 {
			p.closeErr = fmt.Errorf("%d messages were not acknowledged by Kafka before the shutdown deadline (their ids are logged)", n)
		}
	})
	return p.closeErr
}

// connHook remembers the last broker connection error for the logs.
type connHook struct{ p *Publisher }

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		s := fmt.Sprintf("connect to %s:%d: %v", meta.Host, meta.Port, err)
		h.p.lastErr.Store(&s)
	}
}

var _ kgo.HookBrokerConnect = connHook{}
var _ Outlet = (*Publisher)(nil)
