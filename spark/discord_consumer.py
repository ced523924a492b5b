#!/usr/bin/env python3
"""Count Discord messages per author in sliding event-time windows, with Spark.

The original pipeline's Spark Structured Streaming consumer, corrected so that it
runs, reading the topic that `cordstream bot` writes, unchanged:

    value (JSON) -> from_json(flat schema of every wire-format field)
    only event_kind = 'create' (or missing: records of the original producer)
    timestamp = CAST(message_timestamp AS TIMESTAMP), in a UTC session time zone
    withWatermark(timestamp, 1 minute)
    groupBy(window(timestamp, 1 minute, 30 seconds), author_name).count()
    update output mode, 5 s processing-time trigger, console output

Rows of every batch are printed sorted by window, then key (what the original's
orderBy wanted: Spark rejects a sort on a streaming aggregation outside complete
mode, so the sort happens in a foreachBatch printer that prints Spark's console
table). `--output jsonl` writes one JSON object per row instead, the same lines as
`cordstream analyze --output jsonl`.

Run locally after spark/setup.sh:

    . "$(spark/setup.sh --env-file)"
    "$CORDSTREAM_SPARK_PYTHON" spark/discord_consumer.py --brokers localhost:9092

On a cluster:

    spark-submit --packages org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version> \\
        spark/discord_consumer.py --brokers broker:9092 --checkpoint-location hdfs:///...
"""

import argparse
import contextlib
import datetime
import glob
import json
import os
import re
import shutil
import signal
import sys
import tempfile

# findspark is only needed when pyspark is not importable (a Spark distribution
# unpacked under SPARK_HOME, not installed with pip), and it must run before the
# first pyspark import.
try:
    import pyspark
except ImportError:  # pragma: no cover - depends on the installation
    try:
        import findspark
    except ImportError:
        sys.exit(
            "discord_consumer: pyspark is not installed.\n"
            "hint: run spark/setup.sh, or `pip install pyspark`, or set SPARK_HOME and "
            "`pip install findspark`"
        )
    findspark.init()
    import pyspark

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

# The wire format (schema/discord_message.schema.json): every field, flat.
# from_json is PERMISSIVE: malformed JSON yields a row of nulls, which has no
# timestamp and so is dropped before windowing.
MESSAGE_SCHEMA = StructType(
    [
        StructField("author_id", StringType(), True),
        StructField("author_name", StringType(), True),
        StructField("channel_id", StringType(), True),
        StructField("content", StringType(), True),
        StructField("message_timestamp", StringType(), True),
        StructField("message_id", StringType(), True),
        StructField("guild_id", StringType(), True),
        StructField("author_global_name", StringType(), True),
        StructField("author_is_bot", BooleanType(), True),
        StructField("webhook_id", StringType(), True),
        StructField("event_kind", StringType(), True),
        StructField("edited_timestamp", StringType(), True),
        StructField("schema_version", LongType(), True),
    ]
)

GROUP_KEYS = ("author_name", "author_id", "channel_id", "guild_id")

MINUTE = 60 * 1000_000
HOUR = 60 * MINUTE

# cordstream's query presets (internal/query/presets.go, docs/QUERIES.md), as Spark
# queries: aggregates are (function, column, length(column)?, alias); a column of None
# is count(*). internal/query's TestPresetsEqualSpark holds cordstream to Spark on each.
PRESETS = {
    "seed": dict(window=MINUTE, slide=30 * 1000_000, watermark=MINUTE, group_by=["author_name"],
                 aggs=[("count", None, False, "message_count")], mode="update"),
    "channel-activity": dict(window=5 * MINUTE, slide=5 * MINUTE, watermark=2 * MINUTE, group_by=["channel_id"],
                             aggs=[("count", None, False, "message_count"), ("sum", "content", True, "total_chars"),
                                   ("avg", "content", True, "avg_chars"), ("min", "content", True, "min_chars"),
                                   ("max", "content", True, "max_chars")], mode="update"),
    "active-members": dict(window=HOUR, slide=HOUR, watermark=10 * MINUTE, group_by=["channel_id"],
                           aggs=[("approx_count_distinct", "author_id", False, "active_members")], mode="update"),
    "guild-heatmap": dict(window=HOUR, slide=HOUR, watermark=10 * MINUTE, group_by=["guild_id"],
                          aggs=[("count", None, False, "message_count")], mode="update"),
    "top-channels": dict(window=24 * HOUR, slide=24 * HOUR, watermark=None, group_by=["channel_id"],
                         aggs=[("count", None, False, "message_count")], mode="complete",
                         order=[("window", False), ("message_count", True)]),
    "member-sessions": dict(session_gap=10 * MINUTE, watermark=10 * MINUTE, group_by=["author_name"],
                            aggs=[("count", None, False, "message_count")], mode="append"),
}

_DURATION_UNITS_US = {
    "us": 1,
    "µs": 1,
    "ms": 1000,
    "s": 1000_000,
    "m": 60 * 1000_000,
    "h": 3600 * 1000_000,
}
_SPARK_UNITS_US = {
    "microsecond": 1,
    "millisecond": 1000,
    "second": 1000_000,
    "minute": 60 * 1000_000,
    "hour": 3600 * 1000_000,
    "day": 86400 * 1000_000,
    "week": 7 * 86400 * 1000_000,
}


def parse_duration(text):
    """Return microseconds for a Go-style duration ("1m30s", "500ms") or a
    Spark interval ("1 minute", "30 seconds")."""
    s = text.strip()
    if re.fullmatch(r"(\d+(\.\d+)?(us|µs|ms|s|m|h))+", s):
        total = 0.0
        for num, _, unit in re.findall(r"(\d+(\.\d+)?)(us|µs|ms|s|m|h)", s):
            total += float(num) * _DURATION_UNITS_US[unit]
        return int(round(total))
    parts = re.findall(r"(\d+)\s*([a-z]+?)s?\b", s.lower())
    if parts and re.fullmatch(r"(\s*\d+\s*[a-z]+\s*)+", s.lower()):
        total = 0
        for num, unit in parts:
            if unit not in _SPARK_UNITS_US:
                break
            total += int(num) * _SPARK_UNITS_US[unit]
        else:
            return total
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a duration (want e.g. 1m, 30s, 1m30s, 500ms, or '1 minute')"
    )


def spark_interval(us):
    """A Spark interval string for a positive number of microseconds."""
    if us % 1000_000 == 0:
        return f"{us // 1000_000} seconds"
    if us % 1000 == 0:
        return f"{us // 1000} milliseconds"
    return f"{us} microseconds"


def connector_coordinates():
    """Maven coordinates of the Kafka connector matching the installed pyspark:
    its version, and the Scala binary version of the spark-core jar it ships."""
    version = pyspark.__version__
    scala = None
    jars = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "spark-core_*.jar"))
    home = os.environ.get("SPARK_HOME")
    if not jars and home:
        jars = glob.glob(os.path.join(home, "jars", "spark-core_*.jar"))
    for jar in jars:
        m = re.search(r"spark-core_(\d+\.\d+)-", os.path.basename(jar))
        if m:
            scala = m.group(1)
            break
    if scala is None:
        scala = "2.13" if int(version.split(".")[0]) >= 4 else "2.12"
    return f"org.apache.spark:spark-sql-kafka-0-10_{scala}:{version}"


def connector_jars(spec):
    """Jar files named by spec: a directory (every *.jar in it) or a comma list."""
    if not spec:
        return []
    jars = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if os.path.isdir(part):
            jars.extend(sorted(glob.glob(os.path.join(part, "*.jar"))))
        elif os.path.isfile(part):
            jars.append(os.path.abspath(part))
        else:
            raise SystemExit(
                f"discord_consumer: connector jar {part!r} does not exist.\n"
                "hint: rerun spark/setup.sh, or use --packages to resolve the connector from Maven Central"
            )
    return jars


def _civil_from_days(days):
    """(year, month, day) of the proleptic Gregorian calendar, days since
    1970-01-01; any year (Python's datetime stops at 9999, Spark does not)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def rfc3339(us):
    """Microseconds since the epoch as RFC 3339 in UTC, with the fraction only
    when nonzero, as Go's time.RFC3339Nano formats it (also past year 9999)."""
    if us is None:
        return None
    days, rest = divmod(us, 86400 * 1000_000)
    secs, frac = divmod(rest, 1000_000)
    y, mo, d = _civil_from_days(days)
    year = f"-{-y:04d}" if y < 0 else f"{y:04d}"
    text = f"{year}-{mo:02d}-{d:02d}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    if frac:
        text += ("." + f"{frac:06d}").rstrip("0")
    return text + "Z"


def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="discord_consumer.py",
        description="Count Discord messages per author in sliding event-time windows "
        "(Spark Structured Streaming).",
        epilog="example: discord_consumer.py --brokers localhost:9092 --starting-offsets earliest",
    )
    p.add_argument("--brokers", default=env("CORDSTREAM_BROKERS", "localhost:9092"),
                   help="Kafka bootstrap servers, comma separated (default localhost:9092)")
    p.add_argument("--topic", default=env("CORDSTREAM_TOPIC", "discord_messages"),
                   help="topic to read (default discord_messages)")
    p.add_argument("--starting-offsets", choices=("latest", "earliest"), default="latest",
                   help="where a new query starts (default latest; a checkpoint overrides it)")
    p.add_argument("--window", type=parse_duration, default=parse_duration("1m"),
                   help="window size (default 1m)")
    p.add_argument("--slide", type=parse_duration, default=None,
                   help="window slide (default 30s, or the window size when that is smaller)")
    p.add_argument("--watermark", type=parse_duration, default=parse_duration("1m"),
                   help="watermark delay (default 1m)")
    p.add_argument("--group-by", action="append", default=None,
                   help="key column(s): author_name (default), author_id, channel_id, guild_id; "
                        "repeat or comma-separate for several")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="run one of cordstream's query presets (docs/QUERIES.md): its window or session gap, "
                        "watermark, group-by, aggregates, mode (--mode may pick another the preset allows) and sort")
    p.add_argument("--mode", choices=("update", "append", "complete"), default=None,
                   help="output mode (default update)")
    p.add_argument("--trigger", type=parse_duration, default=parse_duration("5s"),
                   help="processing-time trigger interval (default 5s)")
    p.add_argument("--available-now", action="store_true",
                   help="process what is in the topic now, then stop")
    p.add_argument("--max-offsets-per-trigger", "--max-records-per-batch", type=int, default=None,
                   dest="max_offsets_per_trigger", metavar="N",
                   help="at most N records per batch")
    p.add_argument("--output", action="append", choices=("console", "jsonl"), default=None,
                   help="console (Spark's table, default) or jsonl (one JSON object per row)")
    p.add_argument("--jsonl-file", default="-",
                   help="where --output jsonl writes (default standard output)")
    p.add_argument("--console-file", default="-",
                   help="where --output console writes (default standard output)")
    p.add_argument("--rows", type=int, default=20,
                   help="rows shown per batch in the console table (default 20)")
    p.add_argument("--checkpoint-location", default=env("CORDSTREAM_SPARK_CHECKPOINT"),
                   help="checkpoint directory (default: a temporary one, deleted at exit, "
                        "so state and offsets are lost on restart)")
    p.add_argument("--timezone", default="UTC",
                   help="session time zone for CAST and the console (default UTC: the producer writes UTC)")
    p.add_argument("--no-create-filter", action="store_true",
                   help="count every record, not only event_kind create (updates and deletes too)")
    p.add_argument("--master", default=None,
                   help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument("--jars", default=env("CORDSTREAM_SPARK_JARS"),
                   help="Kafka connector jars: a directory or a comma list "
                        "(default $CORDSTREAM_SPARK_JARS, written by spark/setup.sh)")
    p.add_argument("--packages", default=None,
                   help="Maven coordinates of the connector when --jars is not given "
                        "(default: derived from the installed pyspark, e.g. "
                        "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0)")
    p.add_argument("--shuffle-partitions", type=int, default=None,
                   help="spark.sql.shuffle.partitions (Spark's default is 200; a few is faster locally)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="any other Spark configuration, repeatable")
    p.add_argument("--progress-file", default=None,
                   help="append every query progress report (JSON, one per line) to this file")
    p.add_argument("--log-level", default="WARN",
                   help="Spark log level once the session runs (default WARN)")
    a = p.parse_args(argv)

    a.session_gap, a.order = None, []
    a.aggs = [("count", None, False, "message_count")]
    if a.preset:
        pre = PRESETS[a.preset]
        a.window, a.slide = pre.get("window", 0), pre.get("slide", 0)
        a.session_gap, a.watermark, a.order = pre.get("session_gap"), pre["watermark"], pre.get("order", [])
        a.group_by, a.aggs = list(pre["group_by"]), pre["aggs"]
        a.mode = a.mode or pre["mode"]
        if a.session_gap and a.mode == "update":
            p.error("--preset member-sessions: Spark refuses update mode for session windows; use append or complete")
        if a.order and a.mode != "complete":
            p.error(f"--preset {a.preset}: Spark sorts a streaming aggregation only in complete mode")
        a.output = a.output or ["console"]
        return a
    a.mode = a.mode or "update"
    if a.slide is None:
        a.slide = min(parse_duration("30s"), a.window)
    if a.window <= 0 or a.slide <= 0 or a.watermark < 0:
        p.error("--window and --slide must be positive and --watermark not negative")
    if a.slide > a.window:
        p.error(f"--slide ({a.slide} us) must not be longer than --window ({a.window} us)")
    keys = []
    for item in a.group_by or ["author_name"]:
        for k in item.split(","):
            k = k.strip()
            if k not in GROUP_KEYS:
                p.error(f"--group-by {k!r}: want one of {', '.join(GROUP_KEYS)}")
            if k not in keys:
                keys.append(k)
    a.group_by = keys
    a.output = a.output or ["console"]
    if a.max_offsets_per_trigger is not None and a.max_offsets_per_trigger < 1:
        p.error("--max-offsets-per-trigger must be at least 1")
    for kv in a.conf:
        if "=" not in kv:
            p.error(f"--conf {kv!r}: want KEY=VALUE")
    return a


def build_session(a):
    builder = SparkSession.builder.appName("DiscordKafkaConsumer")
    if a.master:  # else spark-submit's --master, or local[*]
        builder = builder.master(a.master)
    jars = connector_jars(a.jars)
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    else:
        builder = builder.config("spark.jars.packages", a.packages or connector_coordinates())
    builder = builder.config("spark.sql.session.timeZone", a.timezone)
    if a.shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(a.shuffle_partitions))
    for kv in a.conf:
        k, v = kv.split("=", 1)
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(a.log_level)
    return spark


def build_query_frame(spark, a):
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", a.brokers)
        .option("subscribe", a.topic)
        .option("startingOffsets", a.starting_offsets)
    )
    if a.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(a.max_offsets_per_trigger))
    raw = reader.load()

    data = raw.select(F.from_json(F.col("value").cast("string"), MESSAGE_SCHEMA).alias("data")).select("data.*")
    if not a.no_create_filter:
        # Edits and deletes are not new messages. Records without event_kind
        # (the original producer's) are creates.
        data = data.where(F.col("event_kind").isNull() | (F.col("event_kind") == "create"))
    # try_cast is CAST with the same grammar, null instead of a query failure
    # when a timestamp does not parse (Spark 4 runs with ANSI mode on).
    inputs = sorted({c for _, c, _, _ in a.aggs if c and c not in a.group_by})
    parsed = data.select(
        *[F.col(k) for k in a.group_by],
        *[F.col(c) for c in inputs],
        F.expr("try_cast(message_timestamp AS TIMESTAMP)").alias("timestamp_processed"),
    )
    if a.watermark is not None:
        parsed = parsed.withWatermark("timestamp_processed", spark_interval(a.watermark))
    if a.session_gap:
        win = F.session_window(F.col("timestamp_processed"), spark_interval(a.session_gap)).alias("window")
    else:
        win = F.window(F.col("timestamp_processed"), spark_interval(a.window), spark_interval(a.slide))
    out = parsed.groupBy(win, *[F.col(k) for k in a.group_by]).agg(*[aggregate(x) for x in a.aggs])
    if a.order:
        out = out.orderBy(*[F.col(c).desc() if desc else F.col(c).asc() for c, desc in a.order])
    return out


def aggregate(spec):
    """The Spark column of an aggregate (function, column, length(column)?, alias)."""
    func, col, length, alias = spec
    if col is None:
        return F.count(F.lit(1)).alias(alias)
    x = F.length(col) if length else F.col(col)
    return {"count": F.count, "approx_count_distinct": F.approx_count_distinct, "sum": F.sum,
            "avg": F.avg, "min": F.min, "max": F.max}[func](x).alias(alias)


def raw_json_field(text, name):
    """The raw JSON text of top-level field name in a flat JSON object of numbers (as to_json wrote it)."""
    m = re.search(re.escape(json.dumps(name)) + r":(-?[0-9][0-9.eE+-]*|\"[^\"]*\"|null)", text)
    return m.group(1) if m else "null"


class BatchPrinter:
    """foreachBatch function: prints each micro-batch as Spark's console sink
    does, sorted by window then key, and/or as JSON lines."""

    def __init__(self, a):
        self.keys = a.group_by
        self.values = [alias for _, _, _, alias in a.aggs]
        self.order = a.order
        self.rows = a.rows
        self.console = "console" in a.output
        self.jsonl = "jsonl" in a.output
        self.out = None
        self.console_out = None
        if self.jsonl:
            self.out = sys.stdout if a.jsonl_file == "-" else open(a.jsonl_file, "a", encoding="utf-8")
        if self.console:
            self.console_out = (sys.stdout if a.console_file == "-"
                                else open(a.console_file, "a", encoding="utf-8"))

    def __call__(self, df, batch_id):
        if self.console and self.jsonl:
            df = df.persist()  # two outputs, one run of the batch
        if self.order:
            ordered = df  # sorted by the query itself (complete mode)
        else:
            ordered = df.orderBy(
                F.col("window.start").asc(), *[F.col(k).asc_nulls_first() for k in self.keys]
            )
        if self.console:
            out = self.console_out
            out.write("-------------------------------------------\n")
            out.write(f"Batch: {batch_id}\n")
            out.write("-------------------------------------------\n")
            with contextlib.redirect_stdout(out):  # DataFrame.show prints to sys.stdout
                ordered.show(self.rows, truncate=False)
            out.flush()
        if self.jsonl:
            lines = []
            # Window bounds as epoch microseconds: collect() would turn
            # timestamps into naive datetimes in this process's local zone.
            # Values as Spark's JSON writer writes them (a DOUBLE as Java prints it).
            flat = ordered.select(
                F.unix_micros(F.col("window.start")).alias("window_start"),
                F.unix_micros(F.col("window.end")).alias("window_end"),
                *self.keys,
                F.to_json(F.struct(*self.values)).alias("values_json"),
            )
            for row in flat.collect():
                obj = {
                    "batch_id": batch_id,
                    "window_start": rfc3339(row["window_start"]),
                    "window_end": rfc3339(row["window_end"]),
                }
                for k in self.keys:
                    obj[k] = row[k]
                line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
                # to_json leaves out NULL fields; the values are written in order, NULL as null.
                vals = json.loads(row["values_json"])
                parts = [json.dumps(v) + ":" + (raw_json_field(row["values_json"], v) if v in vals else "null")
                         for v in self.values]
                lines.append(line[:-1] + "," + ",".join(parts) + "}\n")
            self.out.write("".join(lines))
            self.out.flush()
        if self.console and self.jsonl:
            df.unpersist()

    def close(self):
        for f in (self.out, self.console_out):
            if f is not None and f is not sys.stdout:
                f.close()


def progress_listener(path):
    """A listener appending every progress report to path, one JSON per line."""
    from pyspark.sql.streaming import StreamingQueryListener

    class Listener(StreamingQueryListener):
        def onQueryStarted(self, event):
            pass

        def onQueryProgress(self, event):
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(json.loads(event.progress.json), separators=(",", ":")) + "\n")

        def onQueryIdle(self, event):
            pass

        def onQueryTerminated(self, event):
            pass

    return Listener()


def start_query(spark, a, printer, checkpoint, name="discord_message_counts"):
    """Start the streaming query described by a, writing through printer."""
    writer = (
        build_query_frame(spark, a)
        .writeStream.outputMode(a.mode)
        .foreachBatch(printer)
        .option("checkpointLocation", checkpoint)
        .queryName(name)
    )
    if a.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=spark_interval(a.trigger))
    return writer.start()


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    checkpoint = a.checkpoint_location
    temp_checkpoint = None
    if not checkpoint:
        temp_checkpoint = tempfile.mkdtemp(prefix="discord-consumer-checkpoint-")
        checkpoint = temp_checkpoint
        print(f"discord_consumer: temporary checkpoint {checkpoint} (deleted at exit; "
              "use --checkpoint-location to keep state across restarts)", file=sys.stderr)

    spark = build_session(a)
    printer = BatchPrinter(a)
    if a.progress_file:
        spark.streams.addListener(progress_listener(a.progress_file))
    query = start_query(spark, a, printer, checkpoint)

    # Signal handlers only set a flag: calling into the JVM from a handler would
    # interrupt the py4j call the main thread is blocked in. A second signal aborts.
    stopping = []

    def on_signal(signum, frame):
        if stopping:
            os._exit(130)
        stopping.append(signum)
        os.write(2, b"discord_consumer: stopping (again to abort)\n")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    failed = None
    try:
        while not query.awaitTermination(1):
            if stopping:
                query.stop()
                break
    except Exception as e:  # StreamingQueryException: the query failed
        failed = e
    finally:
        printer.close()
        spark.stop()
        if temp_checkpoint and failed is None:
            shutil.rmtree(temp_checkpoint, ignore_errors=True)
    if failed is not None:
        print(f"discord_consumer: query failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
