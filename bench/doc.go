// Package bench holds the benchmarks of cordstream's hot paths on the
// realistic workload (bench/workload), with allocations and CPU time per
// operation:
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// The end-to-end harness that measures cordstream against the broker and
// Spark on a real Kafka is bench/cmd/bench (run it with bench/run); see
// docs/BENCHMARKS.md.
package bench
