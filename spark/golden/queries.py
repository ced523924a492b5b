#!/usr/bin/env python3
"""Golden outputs of cordstream's query presets, computed by Spark Structured Streaming.

For each preset of internal/query (docs/QUERIES.md) this program makes a dataset meant
for it, feeds it to the preset's Spark query one micro-batch at a time (one file per
batch through Spark's file source, maxFilesPerTrigger=1, waiting for the no-data batch
Spark runs after a batch that moved the watermark), and writes what every batch
emitted, in every output mode the preset allows, into internal/query/testdata/spark/:

  <preset>/input-NN.jsonl.gz   the records of batch NN, in the topic's wire format
  <preset>/<mode>.jsonl        one line per Spark batch: its id, input rows, the watermark
                               it ran with, the rows it dropped as late and the rows it
                               emitted ([window start µs, window end µs, keys..., values...],
                               values as Spark's CAST(v AS STRING) prints them)
  rejected.txt                 the errors Spark gives at start() for the modes it refuses

The Go test internal/query TestPresetsEqualSpark replays the same batches through the
engine and requires every row of every batch to be equal (approximate distinct counts
included: equality, not closeness).

Usage:
  . "$(spark/setup.sh --env-file)"
  "$CORDSTREAM_SPARK_PYTHON" spark/golden/queries.py [--out internal/query/testdata/spark] [--only PRESET]
  go test ./internal/query/

The datasets come from a seeded generator: regenerating gives the same inputs, and (the
check) the same outputs.
"""

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, IntegerType, StringType, StructField, StructType

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SCHEMA = StructType([
    StructField("message_id", StringType()),
    StructField("guild_id", StringType()),
    StructField("channel_id", StringType()),
    StructField("author_id", StringType()),
    StructField("author_name", StringType()),
    StructField("author_global_name", StringType()),
    StructField("author_is_bot", BooleanType()),
    StructField("webhook_id", StringType()),
    StructField("content", StringType()),
    StructField("message_timestamp", StringType()),
    StructField("edited_timestamp", StringType()),
    StructField("event_kind", StringType()),
    StructField("schema_version", IntegerType()),
])

BASE = datetime(2025, 11, 7, 18, 0, 0, tzinfo=timezone.utc)


def ts(dt):
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


class Gen:
    """Makes records; message ids count up."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.n = 0

    def rec(self, at, author=None, channel="c1", guild="g1", content="hi", name=None):
        self.n += 1
        aid = author
        if name is None and author is not None:
            name = "user_" + author
        return {"message_id": str(1436431234567800000 + self.n), "guild_id": guild, "channel_id": channel,
                "author_id": aid, "author_name": name, "author_is_bot": False,
                "content": content, "message_timestamp": ts(at), "event_kind": "create",
                "schema_version": 1}


WORDS = ["hello", "ok", "anyone here?", "héllo wörld", "日本語のテキスト", "👋🏽 hi", "e\u0301", "🦀🦀🦀",
         "the build is green again", "", "a" * 200, "Ça marche 👍", "x"]


def data_seed(g):
    """The seed's query: authors in 1 min / 30 s windows, late and out-of-order events."""
    authors = ["alice", "bob", "carol", "dave", "eve"]
    out = []
    t = BASE
    for b in range(6):
        batch = []
        for _ in range(40):
            at = t + timedelta(milliseconds=g.r.randrange(0, 150_000))
            a = g.r.choice(authors)
            batch.append(g.rec(at, author=a, name=a))
        # late ones: before the watermark of the previous batch
        if b >= 2:
            for _ in range(5):
                at = t - timedelta(seconds=g.r.randrange(60, 200))
                a = g.r.choice(authors)
                batch.append(g.rec(at, author=a, name=a))
        batch.append(g.rec(t, author=None, name=None))  # NULL author_name: a group of its own
        out.append(batch)
        t += timedelta(seconds=90)
    return out


def data_channels(g):
    """Messages and content lengths per channel per 5 minutes: sum/min/max/avg, NULL contents."""
    channels = ["c1", "c2", "c3", "c4"]
    out = []
    t = BASE
    for b in range(8):
        batch = []
        for _ in range(120):
            at = t + timedelta(milliseconds=g.r.randrange(-30_000, 240_000))
            ch = g.r.choice(channels)
            content = g.r.choice(WORDS + [None])
            if ch == "c4":
                content = None if b % 2 == 0 else content  # a channel with no content at all in some windows
            batch.append(g.rec(at, author=str(g.r.randrange(50)), channel=ch, content=content))
        if b >= 2:
            for _ in range(6):
                at = t - timedelta(minutes=g.r.randrange(6, 12))
                batch.append(g.rec(at, author="7", channel=g.r.choice(channels), content="late"))
        out.append(batch)
        t += timedelta(minutes=4)
    return out


def data_members(g):
    """Distinct authors per channel per hour, from a few hundred to thousands (every range of
    HyperLogLog++ at precision 9: linear counting, bias correction, raw estimate)."""
    # (channel, hour) -> distinct authors
    plan = {("c1", 0): 180, ("c2", 0): 900, ("c3", 0): 4200,
            ("c1", 1): 2600, ("c2", 1): 450, ("c3", 1): 1500,
            ("c1", 2): 3300, ("c2", 2): 60, ("c3", 2): 2100}
    events = []
    for (ch, h), n in plan.items():
        ids = g.r.sample(range(10_000_000, 10_100_000), n)
        for i, a in enumerate(ids):
            for _ in range(1 + (i % 3 == 0)):
                at = BASE + timedelta(hours=h, milliseconds=g.r.randrange(0, 3_600_000))
                events.append((at, str(a), ch))
    events.sort()
    # a few NULL authors: skipped by approx_count_distinct
    out = []
    per = (len(events) + 5) // 6
    for b in range(6):
        batch = [g.rec(at, author=a, channel=ch, content=None) for at, a, ch in events[b * per:(b + 1) * per]]
        # shuffle within the batch and add some out of order arrivals from earlier
        g.r.shuffle(batch)
        batch.append(g.rec(BASE + timedelta(hours=b // 2, minutes=5), author=None, channel="c1", content=None))
        out.append(batch)
    return out


def data_guilds(g):
    """Messages per guild per hour (heatmap data), DMs (NULL guild) included."""
    guilds = ["g1", "g2", "g3", None]
    out = []
    t = BASE
    for b in range(7):
        batch = []
        for _ in range(100):
            at = t + timedelta(milliseconds=g.r.randrange(-600_000, 2_700_000))
            batch.append(g.rec(at, author=str(g.r.randrange(30)), guild=g.r.choice(guilds)))
        if b >= 2:
            batch.append(g.rec(t - timedelta(hours=2), author="1", guild="g1"))  # late
        out.append(batch)
        t += timedelta(minutes=45)
    return out


def data_top(g):
    """The most active channels per day (complete mode)."""
    channels = [f"c{i}" for i in range(1, 8)]
    weights = [40, 25, 12, 8, 6, 5, 4]
    out = []
    t = BASE
    for b in range(6):
        batch = []
        for _ in range(150):
            at = t + timedelta(milliseconds=g.r.randrange(-3_600_000, 6 * 3_600_000))
            batch.append(g.rec(at, author=str(g.r.randrange(30)), channel=g.r.choices(channels, weights)[0]))
        out.append(batch)
        t += timedelta(hours=5)
    return out


def data_sessions(g):
    """Activity sessions per member, 10 minute gap: sessions that touch (exactly the gap apart:
    they merge), miss by a millisecond, merge across batches (a late-arriving event bridges two
    stored sessions), and events too late for any session."""
    m = timedelta(minutes=1)
    ms = timedelta(milliseconds=1)
    B = BASE
    batches = [
        # ann: two sessions 10 min + 1 ms apart (stay apart); bob: events exactly 10 min apart (merge)
        [("ann", B), ("ann", B + 2 * m), ("ann", B + 12 * m + ms), ("bob", B), ("bob", B + 10 * m),
         ("cid", B + 1 * m), ("cid", B + 30 * m), ("joy", B + 30 * m)],
        # cid: an event bridging its two sessions of batch 0; dan starts
        # joy: an event exactly the gap before its stored session: they touch, the session starts earlier
        [("cid", B + 16 * m), ("dan", B + 20 * m), ("bob", B + 19 * m), ("ann", B + 25 * m), ("joy", B + 20 * m)],
        # time moves on: watermark passes the first sessions (append emits them)
        [("dan", B + 45 * m), ("eve", B + 46 * m), ("ann", B + 27 * m)],
        # late: ann at B+1m (its session would end at B+11m <= watermark): dropped;
        # dan at B+38m: not late (ends after the watermark), merges with dan's B+45m session
        [("ann", B + 1 * m), ("dan", B + 38 * m), ("eve", B + 55 * m + 500 * ms)],
        [("fay", B + 80 * m), ("eve", B + 64 * m)],
        [("fay", B + 120 * m)],
    ]
    out = []
    for batch in batches:
        out.append([g.rec(at, author=a, name=a) for a, at in batch])
    # random sessions for three more members, spread over the batches
    for b in range(len(out)):
        for _ in range(25):
            a = g.r.choice(["gus", "hal", "ivy"])
            at = B + timedelta(minutes=20 * b) + timedelta(seconds=g.r.randrange(-900, 1800))
            out[b].append(g.rec(at, author=a, name=a))
    return out


def win(col, size, slide=None):
    return F.window(col, size, slide) if slide else F.window(col, size)


# Each preset: dataset, the Spark query (a function of the parsed stream), the modes.
PRESETS = {
    "seed": dict(data=data_seed, modes=["update", "append", "complete"], watermark="1 minute",
                 group=lambda: [win("ts", "1 minute", "30 seconds"), "author_name"],
                 aggs=lambda: [F.count(F.lit(1)).alias("message_count")]),
    "channel-activity": dict(data=data_channels, modes=["update", "append", "complete"], watermark="2 minutes",
                             group=lambda: [win("ts", "5 minutes"), "channel_id"],
                             aggs=lambda: [F.count(F.lit(1)).alias("message_count"),
                                           F.sum(F.length("content")).alias("total_chars"),
                                           F.avg(F.length("content")).alias("avg_chars"),
                                           F.min(F.length("content")).alias("min_chars"),
                                           F.max(F.length("content")).alias("max_chars")]),
    "active-members": dict(data=data_members, modes=["update", "append", "complete"], watermark="10 minutes",
                           group=lambda: [win("ts", "1 hour"), "channel_id"],
                           aggs=lambda: [F.approx_count_distinct("author_id").alias("active_members")]),
    "guild-heatmap": dict(data=data_guilds, modes=["update", "append", "complete"], watermark="10 minutes",
                          group=lambda: [win("ts", "1 hour"), "guild_id"],
                          aggs=lambda: [F.count(F.lit(1)).alias("message_count")]),
    "top-channels": dict(data=data_top, modes=["complete"], watermark=None,
                         group=lambda: [win("ts", "1 day"), "channel_id"],
                         aggs=lambda: [F.count(F.lit(1)).alias("message_count")],
                         order=lambda: [F.col("window").asc(), F.col("message_count").desc()]),
    "member-sessions": dict(data=data_sessions, modes=["append", "complete"], watermark="10 minutes",
                            group=lambda: [F.session_window("ts", "10 minutes").alias("window"), "author_name"],
                            aggs=lambda: [F.count(F.lit(1)).alias("message_count")]),
}

# What Spark refuses: (preset, mode)
REJECTED = [("member-sessions", "update"), ("top-channels", "update"), ("top-channels", "append")]


def session():
    return (SparkSession.builder.master("local[1]")
            .appName("cordstream-queries-golden")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "1")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.streaming.numRecentProgressUpdates", "1000")
            .getOrCreate())


def build(spark, p, src):
    df = (spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(src)
          .withColumn("ts", F.expr("try_cast(message_timestamp AS TIMESTAMP)")))
    if p["watermark"]:
        df = df.withWatermark("ts", p["watermark"])
    group = p["group"]()
    out = df.groupBy(*group).agg(*p["aggs"]())
    if "order" in p:
        out = out.orderBy(*p["order"]())
    return out


def write_gz(path, lines):
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as z:
            z.write("".join(l + "\n" for l in lines).encode())


def run(spark, name, p, mode, batches, work):
    src = os.path.join(work, name + "-" + mode + "-src")
    os.makedirs(src)
    out = build(spark, p, src)
    ncols = len(p["group"]())
    key_cols = out.columns[1:ncols]
    val_cols = out.columns[ncols:]
    emitted = {}

    def each(bdf, bid):
        sel = bdf.select(F.unix_micros(F.col("window.start")).alias("s"), F.unix_micros(F.col("window.end")).alias("e"),
                         *[F.col(k) for k in key_cols], *[F.col(v).cast("string").alias(v) for v in val_cols])
        emitted[bid] = [list(r) for r in sel.collect()]

    q = out.writeStream.outputMode(mode).foreachBatch(each).start()
    try:
        for i, batch in enumerate(batches):
            shutil.copy(os.path.join(work, name, f"input-{i:02d}.jsonl.gz"), os.path.join(src, f"input-{i:02d}.jsonl.gz"))
            q.processAllAvailable()
            settle(q)
        q.processAllAvailable()
        settle(q)
    finally:
        q.stop()
    lines = []
    # Spark also reports idle triggers (no batch ran; numInputRows 0, no addBatch): skip them.
    for pr in q.recentProgress:
        if "addBatch" not in (pr.get("durationMs") or {}):
            continue
        bid = pr["batchId"]
        ops = pr.get("stateOperators") or [{}]
        wm = (pr.get("eventTime") or {}).get("watermark")
        rows = emitted.get(bid, [])
        if "order" not in p:
            rows = sorted(rows, key=lambda r: json.dumps(r))
        lines.append(json.dumps({"batch": bid, "input": pr["numInputRows"], "watermark": wm,
                                 "dropped": ops[0].get("numRowsDroppedByWatermark", 0),
                                 "rows": rows}, ensure_ascii=False))
    return lines


def settle(q):
    """Waits until no batch has started for a second (the no-data batch Spark runs right after a
    batch that moved the watermark has run)."""
    last, since = None, time.time()
    while time.time() - since < 1.5:
        time.sleep(0.2)
        cur = q.lastProgress["batchId"] if q.lastProgress else None
        if cur != last or q.status["isTriggerActive"]:
            last, since = cur, time.time()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "internal", "query", "testdata", "spark"))
    ap.add_argument("--only")
    args = ap.parse_args()
    spark = session()
    spark.sparkContext.setLogLevel("ERROR")
    work = tempfile.mkdtemp(prefix="cordstream-queries-")
    os.makedirs(args.out, exist_ok=True)
    try:
        for seed, (name, p) in enumerate(PRESETS.items()):
            if args.only and name != args.only:
                continue
            batches = p["data"](Gen(1000 + seed))
            d = os.path.join(args.out, name)
            os.makedirs(d, exist_ok=True)
            os.makedirs(os.path.join(work, name))
            for i, b in enumerate(batches):
                lines = [json.dumps(r, ensure_ascii=False) for r in b]
                write_gz(os.path.join(d, f"input-{i:02d}.jsonl.gz"), lines)
                write_gz(os.path.join(work, name, f"input-{i:02d}.jsonl.gz"), lines)
            for mode in p["modes"]:
                t0 = time.time()
                lines = run(spark, name, p, mode, batches, work)
                with open(os.path.join(d, mode + ".jsonl"), "w") as f:
                    f.write("\n".join(lines) + "\n")
                print(f"{name} {mode}: {len(lines)} batches, {sum(len(b) for b in batches)} records, "
                      f"{time.time() - t0:.0f} s", file=sys.stderr)
        if not args.only:
            rej = ["# preset mode: the error Spark gives at start()"]
            for name, mode in REJECTED:
                p = PRESETS[name]
                src = os.path.join(work, "rejected-" + name + mode)
                os.makedirs(src)
                try:
                    q = build(spark, p, src).writeStream.outputMode(mode).format("console").start()
                    q.stop()
                    rej.append(f"{name} {mode}: ACCEPTED")
                except Exception as e:  # AnalysisException
                    msg = str(e).splitlines()[0]
                    rej.append(f"{name} {mode}: {msg}")
            with open(os.path.join(args.out, "rejected.txt"), "w") as f:
                f.write("\n".join(rej) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        spark.stop()


if __name__ == "__main__":
    main()
