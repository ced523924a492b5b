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
	FailSpoolEntry      = "spool_entry"      // an entry read back from the spool could not be decoded
)

// Filter reason for a create the pipeline already took in this run (the
// Gateway and the REST backfill both delivered it, or Discord sent it
// twice).
const FilterDuplicate = "duplicate"

// Metrics are the pipeline's counters, exported in the Prometheus format and
// summarised at shutdown.
type Metrics struct {
	received  metrics.CounterVec
	published metrics.Counter
	failed    metrics.CounterVec
	filtered  metrics.CounterVec
	buffered  metrics.Gauge
	latency   *metrics.Histogram
	bpEvents  metrics.Counter
	bpSeconds metrics.Counter
	reachable metrics.Gauge
	noContent metrics.Gauge

	spoolBytes    metrics.Gauge
	spoolEntries  metrics.Gauge
	spoolAppended metrics.Counter
	spoolReplayed metrics.Counter
	spoolErrors   metrics.Counter
	spoolBlocked  metrics.Gauge
	spoolDamaged  metrics.Counter
	retries       metrics.Counter

	backfilled   metrics.Counter
	bfRequests   metrics.Counter
	bfChannels   metrics.CounterVec
	bfSkippedOld metrics.Counter
	nReceived    atomic.Int64
	nBackfilled  atomic.Int64
	nReplayed    atomic.Int64
	spooledLeft  atomic.Int64
	nPublished   atomic.Int64
	nFailed      atomic.Int64
	nFiltered    atomic.Int64
	nBackpressd  atomic.Int64
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
		spoolBytes: r.NewGauge("cordstream_bot_spool_bytes",
			"Size of the spool's files on disk (bounded by --spool-max-bytes)."),
		spoolEntries: r.NewGauge("cordstream_bot_spool_entries",
			"Records in the spool that Kafka has not acknowledged yet."),
		spoolAppended: r.NewCounter("cordstream_bot_spool_appended_total",
			"Records written to the spool."),
		spoolReplayed: r.NewCounter("cordstream_bot_spool_replayed_total",
			"Records found in the spool at start (left by a previous run) and sent to Kafka again."),
		spoolErrors: r.NewCounter("cordstream_bot_spool_write_errors_total",
			"Failed writes to the spool other than a full disk (retried every second while reads from Discord pause)."),
		spoolBlocked: r.NewGauge("cordstream_bot_spool_blocked",
			"1 while the spool takes no message (full, its file system full, or a write failing): reading from Discord is paused."),
		spoolDamaged: r.NewCounter("cordstream_bot_spool_damaged_total",
			"Damaged places, torn tails and unreadable segments found when the spool was opened."),
		retries: r.NewCounter("cordstream_bot_publish_retries_total",
			"Records Kafka refused with an unexpected error and that are sent again from the spool."),
		backfilled: r.NewCounter("cordstream_bot_backfilled_messages_total",
			"Messages fetched through the REST API after a gap and handed to the pipeline (duplicates and filtered ones included)."),
		bfRequests: r.NewCounter("cordstream_bot_backfill_requests_total",
			"REST history requests made by the backfill."),
		bfChannels: r.NewCounterVec("cordstream_bot_backfill_channels_total",
			"Channel backfills by outcome: done, nothing_new, no_permission, unknown_channel, limited, failed.", "outcome"),
		bfSkippedOld: r.NewCounter("cordstream_bot_backfill_max_age_limited_total",
			"Channel backfills that started at --backfill-max-age rather than at the last published message."),
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

func (m *Metrics) addBackfilled() {
	m.backfilled.Inc()
	m.nBackfilled.Add(1)
}

func (m *Metrics) addReplayed() {
	m.spoolReplayed.Inc()
	m.nReplayed.Add(1)
}

// Counts is a snapshot of the pipeline totals.
type Counts struct {
	Received, Published, Failed, Filtered, Backpressure int64
	Buffered                                            int64
	// Backfilled: messages fetched through REST after a gap. Replayed:
	// records a previous run left in the spool. Spooled: records left in
	// the spool at shutdown (set by the spool's Close).
	Backfilled, Replayed, Spooled int64
}

// Counts returns the current totals. Received + Backfilled + Replayed =
// Published + Failed + Filtered + records waiting (Buffered without a
// spool; in the spool with one) once nothing is in flight between the
// counters.
func (m *Metrics) Counts() Counts {
	return Counts{
		Received: m.nReceived.Load(), Published: m.nPublished.Load(), Failed: m.nFailed.Load(),
		Filtered: m.nFiltered.Load(), Backpressure: m.nBackpressd.Load(), Buffered: int64(m.buffered.Value()),
		Backfilled: m.nBackfilled.Load(), Replayed: m.nReplayed.Load(), Spooled: m.spooledLeft.Load(),
	}
}

// SpoolRecovered counts what opening the spool found damaged.
func (m *Metrics) SpoolRecovered(damaged int) { m.spoolDamaged.Add(float64(damaged)) }
