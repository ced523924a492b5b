#!/usr/bin/env bash
# Build the Kafka Streams application of the benchmark (bench/streams: the
# seed's query in Kafka Streams) with Maven, from Maven Central, into a cache
# directory that later runs reuse; print that directory. Run it as
#   java -cp "<dir>/*" io.cordstream.bench.streams.CountByAuthor --help
#
# The cache is keyed by the sources and the Kafka version, so a change to
# either builds again. Maven runs on a copy of this directory: nothing is
# written into the source tree. The build runs the application's tests.
#
# Usage: bench/streams/setup.sh [--quiet]
# Environment:
#   CORDSTREAM_CACHE          cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cordstream)
#   CORDSTREAM_KAFKA_VERSION  kafka-streams version (default: the broker's, from scripts/kafka)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${CORDSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cordstream}
quiet=0
for arg in "$@"; do
	case $arg in
	--quiet) quiet=1 ;;
	-h | --help)
		sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "bench/streams/setup.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done
say() { if [[ $quiet == 0 ]]; then echo "streams-setup: $*" >&2; fi; }
die() {
	echo "streams-setup: error: $1" >&2
	[[ -n ${2:-} ]] && echo "hint: $2" >&2
	exit 1
}

version=${CORDSTREAM_KAFKA_VERSION:-$(sed -n 's/^KAFKA_VERSION=\${CORDSTREAM_KAFKA_VERSION:-\(.*\)}$/\1/p' "$root/scripts/kafka")}
[[ -n $version ]] || die "cannot tell the Kafka version" "set CORDSTREAM_KAFKA_VERSION"
sum=$( (
	cd "$here"
	echo "kafka $version"
	find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum
) | sha256sum | cut -c1-16)
lib=$cache/bench-streams-$version-$sum
if [[ -f $lib/.complete ]]; then
	say "Kafka Streams application: $lib (cached)"
	echo "$lib"
	exit 0
fi

command -v mvn >/dev/null || die "mvn not found (needed once to build the Kafka Streams application)" \
	"install Maven (Debian: apt-get install maven)"
command -v java >/dev/null || die "java not found" "install a Java 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"
say "building the Kafka Streams application (kafka-streams $version) into $lib"
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/pom.xml" "$here/src" "$work/"
if ! (cd "$work" && mvn -B -Dstyle.color=never -Dkafka.version="$version" \
	package dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/lib") \
	>"$work/mvn.log" 2>&1; then
	tail -n 40 "$work/mvn.log" >&2
	cp "$work/mvn.log" "$cache/bench-streams-mvn.log"
	die "the Maven build failed (log: $cache/bench-streams-mvn.log)" \
		"check access to Maven Central and that org.apache.kafka:kafka-streams:$version is published"
fi
cp "$work"/target/cordstream-bench-streams-*.jar "$work/lib/"
touch "$work/lib/.complete"
rm -rf "$lib"
mv "$work/lib" "$lib"
# Builds of other sources are of no further use.
for old in "$cache"/bench-streams-*; do
	[[ $old != "$lib" && -d $old ]] && rm -rf "$old"
done
say "built in ${SECONDS}s: $(find "$lib" -name '*.jar' | wc -l) jars"
echo "$lib"
