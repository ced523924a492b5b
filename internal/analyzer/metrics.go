package analyzer

import (
	"github.com/cordstream/cordstream/internal/metrics"
)

// analyzerMetrics are the analyzer's Prometheus metrics.
type analyzerMetrics struct {
	reg           *metrics.Registry
	recordsIn     metrics.Counter
	counted       metrics.Counter
	skipped       metrics.CounterVec
	badRecords    metrics.CounterVec
	deadLettered  metrics.Counter
	lateRows      metrics.Counter
	rowsOut       metrics.Counter
	batches       metrics.CounterVec
	batchDuration *metrics.Histogram
	watermark     metrics.Gauge
	stateRows     metrics.Gauge
	lag           metrics.Gauge
	duplicates    metrics.Counter
	lateRecords   metrics.Counter
	queryLate     metrics.Counter
	shareWait     *metrics.Histogram
	repartOut     metrics.Counter
	repartIn      metrics.Counter
	restores      metrics.Counter
	rollbacks     metrics.Counter
}

func newAnalyzerMetrics(reg *metrics.Registry) *analyzerMetrics {
	return &analyzerMetrics{
		reg:           reg,
		recordsIn:     reg.NewCounter("cordstream_analyze_records_in_total", "Input records read (data records, bad ones included)."),
		counted:       reg.NewCounter("cordstream_analyze_records_counted_total", "Input records counted in at least one window (by this instance, or sent to the instance owning their key); late, bad, duplicate and skipped records are not."),
		skipped:       reg.NewCounterVec("cordstream_analyze_records_skipped_total", "Valid records not counted because they are not new messages, by event kind.", "kind"),
		badRecords:    reg.NewCounterVec("cordstream_analyze_bad_records_total", "Records that could not be used, by reason.", "reason"),
		deadLettered:  reg.NewCounter("cordstream_analyze_dead_letter_records_total", "Bad records copied to the dead-letter topic."),
		lateRows:      reg.NewCounter("cordstream_analyze_late_rows_dropped_total", "Window rows dropped because the watermark had passed the window end."),
		rowsOut:       reg.NewCounter("cordstream_analyze_rows_emitted_total", "Result rows emitted to the outputs."),
		batches:       reg.NewCounterVec("cordstream_analyze_batches_total", "Batches run, by kind (data: new input; no_data: watermark-driven eviction or the first batch).", "kind"),
		batchDuration: reg.NewHistogram("cordstream_analyze_batch_duration_seconds", "Time from planning a batch to committing it.", metrics.DefaultLatencyBuckets),
		watermark:     reg.NewGauge("cordstream_analyze_watermark_seconds", "Event-time watermark, Unix seconds (0 until the first data)."),
		stateRows:     reg.NewGauge("cordstream_analyze_state_rows", "Window rows held in state."),
		lag:           reg.NewGauge("cordstream_analyze_consumer_lag_records", "Records available in the input beyond the last planned batch, from the partitions' high watermarks."),
		duplicates:    reg.NewCounter("cordstream_analyze_duplicates_dropped_total", "Records not counted because a record with the same message_id was counted within the watermark horizon."),
		lateRecords:   reg.NewCounter("cordstream_analyze_late_records_dropped_total", "Records not counted because every window they belong to had closed (the watermark had passed them), including partial counts other instances sent."),
		queryLate:     reg.NewCounter("cordstream_analyze_query_late_records_dropped_total", "On the instance that runs the query's window engine (the leader, or the only instance): records of the whole query not counted because every window they belong to had closed, those the other instances found in their shares included; 0 on the other instances."),
		shareWait:     reg.NewHistogram("cordstream_analyze_share_wait_seconds", "On the leader of several instances: how long each batch waited, once planned, for the other instances' shares of it.", metrics.DefaultLatencyBuckets),
		repartOut:     reg.NewCounter("cordstream_analyze_repartitioned_records_total", "Records counted by the instance that owns their group-by key, sent through the repartition topic."),
		repartIn:      reg.NewCounter("cordstream_analyze_records_from_other_instances_total", "Records other instances counted for keys this instance owns, received through the repartition topic."),
		restores:      reg.NewCounter("cordstream_analyze_state_restores_total", "Times the window state was rebuilt from the state topics (start, rebalance, rolled-back batch)."),
		rollbacks:     reg.NewCounter("cordstream_analyze_batches_rolled_back_total", "Batches whose transaction was rolled back because the group rebalanced; their input is read again."),
	}
}
