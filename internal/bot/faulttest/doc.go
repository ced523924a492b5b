// Package faulttest holds the bot's fault tests: the real command, run as a
// child process against the Discord simulator and a real Kafka broker of
// its own (started with scripts/kafka on other ports, so that stopping it
// disturbs no other test), under the faults an operator meets: the broker
// stopped while messages arrive, the bot stopped while messages keep
// coming, the bot killed with SIGKILL while Kafka is unreachable; and a
// bot group of several instances with one killed, or with its
// coordination broker restarted (group_test.go).
//
// The tests run when the test broker's environment is set (scripts/test
// sets it) and skip otherwise, or fail with CORDSTREAM_REQUIRE_KAFKA=1. By
// default they use short faults; CORDSTREAM_FAULT_FULL=1 runs the full
// sizes (10 000 messages and a 30 s broker outage; the bot down for 2
// minutes). See the test functions for the environment variables.
package faulttest
