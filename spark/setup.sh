#!/usr/bin/env bash
# Install what the Spark job and the conformance harness need, into a cache
# directory that later runs reuse:
#   - a Python venv with spark/requirements.txt (pyspark, confluent-kafka)
#   - the Kafka connector of the installed pyspark (spark-sql-kafka-0-10_<scala>)
#     and its runtime dependencies, resolved from Maven Central with mvn
#   - a Java that Spark 4.2 runs on (17, 21 or 25), 21 or 25 when there is one:
#     from Java 19 on, Double.toString prints the shortest digits, as
#     cordstream's console does; Java 17 prints more digits for some doubles
# and write an environment file to source before running the job:
#   . "$(spark/setup.sh --env-file)"
#
# Usage: spark/setup.sh [--env-file] [--quiet]
#   --env-file   print only the path of the environment file (after installing)
#   --quiet      no progress messages
# Environment:
#   CORDSTREAM_CACHE       cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cordstream)
#   CORDSTREAM_SPARK_VENV  venv path (default $CORDSTREAM_CACHE/spark-venv)
#   PYTHON                 Python 3.10+ used to create the venv (default python3)
#   JAVA_HOME              Java 17, 21 or 25 to use (default: the newest of those among java on
#                          PATH and /usr/lib/jvm/*)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CORDSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cordstream}
venv=${CORDSTREAM_SPARK_VENV:-$cache/spark-venv}
python=${PYTHON:-python3}
print_env_file=0
quiet=0
for arg in "$@"; do
	case $arg in
	--env-file) print_env_file=1 ;;
	--quiet) quiet=1 ;;
	-h | --help)
		sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

say() { if [ "$quiet" = 0 ]; then echo "spark-setup: $*" >&2; fi; }
die() {
	echo "spark-setup: error: $1" >&2
	[ -n "${2:-}" ] && echo "hint: $2" >&2
	exit 1
}

start=$(date +%s)
mkdir -p "$cache"

# --- Java -----------------------------------------------------------------
java_major() { # $1 = java binary; prints the feature version (17, 21, ...)
	"$1" -XshowSettings:properties -version 2>&1 |
		sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}
java_ok() { case $(java_major "$1" 2>/dev/null) in 17 | 21 | 25) return 0 ;; *) return 1 ;; esac }

# An explicit JAVA_HOME wins. Otherwise the newest supported Java found: Spark
# prints DOUBLE columns with Double.toString, which Java 19 and later specify as
# the shortest digits that read back (what cordstream prints); Java 17 prints
# longer digits for about 2 % of arbitrary doubles (never for averages of
# integer counts, measured on 25 million of them).
java_home=""
if [ -n "${JAVA_HOME:-}" ] && java_ok "$JAVA_HOME/bin/java"; then
	java_home=$JAVA_HOME
else
	best=0
	candidates=()
	if command -v java >/dev/null; then
		candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
	fi
	for d in /usr/lib/jvm/*; do
		candidates+=("$d")
	done
	for d in "${candidates[@]}"; do
		if [ -x "$d/bin/java" ] && java_ok "$d/bin/java"; then
			v=$(java_major "$d/bin/java")
			if [ "$v" -gt "$best" ]; then
				best=$v
				java_home=$d
			fi
		fi
	done
fi
[ -n "$java_home" ] || die "no Java 17, 21 or 25 found (Spark 4.2 runs on those)" \
	"install one (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
if [ "$(java_major "$java_home/bin/java")" = 17 ]; then
	say "java: $java_home is Java 17: Spark's console may print some doubles with more digits than cordstream (Java 21 or later prints the same)"
fi
say "java: $java_home ($(java_major "$java_home/bin/java"))"

# --- Python venv ----------------------------------------------------------
req_sum=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
stamp=$venv/.cordstream-requirements
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_sum" ] && [ -x "$venv/bin/python" ]; then
	say "venv: $venv (up to date)"
else
	command -v "$python" >/dev/null || die "$python not found" "install Python 3.10+ or set PYTHON"
	say "venv: creating $venv and installing $(grep -v '^#' "$here/requirements.txt" | xargs)"
	"$python" -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
	"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt" >&2 ||
		die "pip install failed" "check access to the Python package index, then rerun spark/setup.sh"
	echo "$req_sum" >"$stamp"
fi

# --- Kafka connector jars -------------------------------------------------
# The connector's coordinates follow the installed pyspark: its version, and the
# Scala binary version of the spark-core jar it ships (2.13 for Spark 4).
read -r spark_version scala_version pyspark_jars < <("$venv/bin/python" - <<'EOF'
import glob, os, re, pyspark
jars = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "spark-core_*.jar"))
m = re.search(r"spark-core_(\d+\.\d+)-", os.path.basename(jars[0])) if jars else None
print(pyspark.__version__, m.group(1) if m else ("2.13" if pyspark.__version__ >= "4" else "2.12"),
      os.path.join(os.path.dirname(pyspark.__file__), "jars"))
EOF
)
jars=$cache/spark-jars/spark-sql-kafka-0-10_${scala_version}-${spark_version}
if [ -f "$jars/.complete" ]; then
	say "connector: $jars (cached)"
else
	command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka connector from Maven Central)" \
		"install Maven (Debian: apt-get install maven), or run the job with --packages instead"
	say "connector: resolving org.apache.spark:spark-sql-kafka-0-10_${scala_version}:${spark_version} from Maven Central"
	rm -rf "$jars.tmp"
	mkdir -p "$jars.tmp"
	if ! mvn -B -Dstyle.color=never -f "$here/connector/pom.xml" \
		-Dspark.version="$spark_version" -Dscala.binary.version="$scala_version" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$jars.tmp" \
		>"$cache/spark-mvn.log" 2>&1; then
		tail -n 30 "$cache/spark-mvn.log" >&2
		die "mvn could not resolve the connector (log: $cache/spark-mvn.log)" \
			"check access to Maven Central, then rerun spark/setup.sh"
	fi
	# Leave out what pyspark already ships (same artifact, any version): its own
	# copy is the one on the class path anyway.
	for jar in "$jars.tmp"/*.jar; do
		artifact=$(basename "$jar" | sed -E 's/-[0-9][A-Za-z0-9.]*(-[A-Za-z0-9.]+)*\.jar$//')
		if compgen -G "$pyspark_jars/$artifact-[0-9]*.jar" >/dev/null; then
			rm -f "$jar"
		fi
	done
	touch "$jars.tmp/.complete"
	rm -rf "$jars"
	mv "$jars.tmp" "$jars"
fi

# --- environment file -----------------------------------------------------
env_file=$cache/spark.env
cat >"$env_file" <<EOF
# Written by spark/setup.sh. Source it before running spark/discord_consumer.py.
export JAVA_HOME='$java_home'
export CORDSTREAM_SPARK_PYTHON='$venv/bin/python'
export CORDSTREAM_SPARK_JARS='$jars'
export PYSPARK_PYTHON='$venv/bin/python'
export SPARK_LOCAL_IP=\${SPARK_LOCAL_IP:-127.0.0.1}
EOF
say "pyspark $spark_version (Scala $scala_version) ready in $(($(date +%s) - start)) s; environment: $env_file"
if [ "$print_env_file" = 1 ]; then
	echo "$env_file"
else
	say "run the job with:  . $env_file && \"\$CORDSTREAM_SPARK_PYTHON\" spark/discord_consumer.py --brokers localhost:9092"
fi
