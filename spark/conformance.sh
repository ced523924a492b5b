#!/usr/bin/env bash
# Run the Spark conformance harness end to end:
#   1. install pyspark and the Kafka connector (spark/setup.sh; cached after the first run)
#   2. use the broker in $CORDSTREAM_TEST_BROKERS, else the one scripts/kafka runs,
#      starting it (and stopping it afterwards) when none runs
#   3. build cordstream and run spark/conformance.py with the arguments given here
#
# Usage: spark/conformance.sh [conformance.py options]
#   e.g. spark/conformance.sh                      the fixed datasets, every mode
#        spark/conformance.sh --random 5 --seed 42 plus 5 random datasets
#        spark/conformance.sh --spark-only         Spark and the reference model only
# Exit status: that of conformance.py (0 all batches matched, 1 mismatch, 2 setup error).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

env_file=$("$here/setup.sh" --env-file)
# shellcheck disable=SC1090
. "$env_file"

started=0
stop_broker() {
	if [ "$started" = 1 ]; then
		"$repo/scripts/kafka" stop >&2 || true
	fi
}
trap stop_broker EXIT

if [ -z "${CORDSTREAM_TEST_BROKERS:-}" ]; then
	if [ ! -x "$repo/scripts/kafka" ]; then
		echo "conformance: error: no broker: CORDSTREAM_TEST_BROKERS is not set and scripts/kafka is missing" >&2
		exit 2
	fi
	if ! "$repo/scripts/kafka" status >/dev/null 2>&1; then
		"$repo/scripts/kafka" start >&2
		started=1
	fi
	# shellcheck disable=SC1090
	. "$("$repo/scripts/kafka" env)"
fi

status=0
"$CORDSTREAM_SPARK_PYTHON" "$here/conformance.py" --brokers "$CORDSTREAM_TEST_BROKERS" "$@" || status=$?
exit "$status"
