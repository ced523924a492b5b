package bot

import (
	"sync/atomic"

	"github.com/cordstream/cordstream/internal/metrics"
)

// Failure reasons, used as the "reason" label of the failed counter.
const (
	FailMalformed       = "malformed"        // the Discord payload could not be mapped
	FailEncode          = "encode"           // the record could not be encoded
	FailShutdown        = "shutdown"         // shutdown began while waiting for buffer space
	FailShutdownTimeout = "shutdown_timeout" // still unacknowledged when the shutdown deadline passed
	FailTooLarge        = "too_large"        // Kafka refused the record as too large
	FailKafka           = "kafka_error"      // any other error Kafka reported
)

// Metrics are the pipeline's counters, exported in the Prometheus format and
// summarised at shutdown.
type Metrics struct {
	received    metrics.CounterVec
	published   metrics.Counter
	failed      metrics.CounterVec
	filtered    metrics.CounterVec
	buffered    metrics.Gauge
	latency     *metrics.Histogram
	bpEvents    metrics.Counter
	bpSeconds   metrics.Counter
	reachable   metrics.Gauge
	noContent   metrics.Gauge
	nReceived   atomic.Int64
	nPublished  atomic.Int64
	nFailed     atomic.Int64
	nFiltered   atomic.Int64
	nBackpressd atomic.Int64
}

// NewMetrics registers the pipeline metrics on r (a fresh registry if nil).
func NewMetrics(r *metrics.Registry) *Metrics {
	if r == nil {
		r = metrics.NewRegistry()
	}
	m := &Metrics{
		received: r.NewCounterVec("cordstream_bot_messages_received_total",
			"Message events received from Discord, by kind (create, update, delete).", "kind"),
		published: r.NewCounter("cordstream_bot_messages_published_total",
			"Records Kafka acknowledged (acks=all)."),
		failed: r.NewCounterVec("cordstream_bot_messages_failed_total",
			"Message events that were neither published nor filtered, by reason.", "reason"),
		filtered: r.NewCounterVec("cordstream_bot_messages_filtered_total",
			"Message events dropped on purpose by a filter, by reason.", "reason"),
		buffered: r.NewGauge("cordstream_bot_records_buffered",
			"Records handed to the producer and not yet acknowledged."),
		latency: r.NewHistogram("cordstream_bot_publish_latency_seconds",
			"Time from reading the event from Discord to Kafka's acknowledgement.", metrics.DefaultLatencyBuckets),
		bpEvents: r.NewCounter("cordstream_bot_backpressure_total",
			"Times the buffer was full and reading from Discord paused."),
		bpSeconds: r.NewCounter("cordstream_bot_backpressure_seconds_total",
			"Time spent with reading from Discord paused for a full buffer."),
		reachable: r.NewGauge("cordstream_bot_kafka_reachable",
			"1 while Kafka acknowledges records (or none are waiting), 0 while records wait unacknowledged."),
		noContent: r.NewGauge("cordstream_bot_message_content_missing",
			"1 when guild messages keep arriving without content: the Message Content intent is probably not enabled."),
	}
	m.reachable.Set(1)
	return m
}

func (m *Metrics) addReceived(kind string) {
	m.received.With(kind).Inc()
	m.nReceived.Add(1)
}

func (m *Metrics) addPublished() {
	m.published.Inc()
	m.nPublished.Add(1)
}

func (m *Metrics) addFailed(reason string) {
	m.failed.With(reason).Inc()
	m.nFailed.Add(1)
}

func (m *Metrics) addFiltered(reason string) {
	m.filtered.With(reason).Inc()
	m.nFiltered.Add(1)
}

// Counts is a snapshot of the pipeline totals.
type Counts struct {
	Received, Published, Failed, Filtered, Backpressure int64
	Buffered                                            int64
}

// Counts returns the current totals. Received = Published + Failed +
// Filtered + Buffered once nothing is in flight between the counters.
func (m *Metrics) Counts() Counts {
	return Counts{
		Received: m.nReceived.Load(), Published: m.nPublished.Load(), Failed: m.nFailed.Load(),
		Filtered: m.nFiltered.Load(), Backpressure: m.nBackpressd.Load(), Buffered: int64(m.buffered.Value()),
	}
}
