// Package faulttest holds the analyzer's fault tests against the real
// broker: `cordstream analyze` runs in child processes (the test binary
// re-executes itself as the command), which the tests kill with SIGKILL at
// random moments, and the final counts are compared with an independent
// count of what was produced.
//
//   - TestKillNineReplay: one instance replays a topic (available-now, a
//     fixed number of records per batch) and is killed at random moments;
//     each restart resumes from the durable state. The results topic, read
//     committed, must hold exactly the records an uninterrupted run writes
//     (same batches, same counts), the final count of every window must
//     equal a brute-force count of the distinct messages produced, and
//     every poison record must be in the dead-letter topic exactly once.
//   - TestThreeInstancesOneKilled: three instances share a live stream
//     grouped by a column that is not the record key; one is killed and
//     not restarted; the two others take over its partitions and state.
//     The final counts must equal the brute-force count.
//   - TestInstancesCountAsOne: a topic of partitions of very different
//     sizes and event-time spreads, with duplicates, replayed with
//     available-now and a batch cap by one instance, by instances killed,
//     restarted, joined and stopped along the way, and by two instances
//     of which one is paused and has another cap. Each run's results topic
//     must equal, row for row, a model of Spark's rule for the whole group
//     (the cap prorated over every partition, one watermark).
//   - TestBrokerOutage: a private broker (scripts/kafka on its own ports)
//     is stopped for 20 s under a running analyzer and started again; the
//     analyzer waits, or exits with an error when the outage broke a
//     transaction and is then restarted, as a supervisor would; the final
//     counts must equal the brute-force count.
//
// CI runs them small (scripts/test runs them like every test). The full
// sizes (200,000 messages, 8 kills; 100,000 messages for three instances;
// 150,000 for TestInstancesCountAsOne):
//
//	CORDSTREAM_FAULT_FULL=1 scripts/test -run 'TestKillNineReplay|TestThreeInstancesOneKilled|TestInstancesCountAsOne' -v ./internal/analyzer/faulttest/
//
// CORDSTREAM_FAULT_MESSAGES and CORDSTREAM_FAULT_KILLS override the sizes.
package faulttest
