#!/usr/bin/env python3
"""Conformance harness: the same records through Spark and `cordstream analyze`,
every batch compared.

For each dataset (the fixed ones in spark/datasets/ and N seeded random ones):
  1. write its records, in order, to a fresh one-partition topic on a real broker;
  2. run the corrected Spark job (spark/discord_consumer.py, in this process: one
     local[2] Spark application for all runs) with availableNow,
     maxOffsetsPerTrigger=K, startingOffsets=earliest and JSON Lines output;
  3. run `cordstream analyze --available-now --max-records-per-batch K
     --starting-offsets earliest --output jsonl` with a fresh consumer group;
  4. compare the rows of every batch (order within a batch aside) and the final
     counts, in each output mode (update, append, complete).
A reference model of the semantics in the design notes is also run; where Spark
and the model disagree the harness says so (Spark is the reference, the model
is only a cross-check).

Exit status: 0 when every batch matched, 1 on any mismatch or failed run, 2 on a
usage or setup error (no broker, no Spark, cordstream does not build).

Run it with spark/conformance.sh (installs Spark, checks the broker), or after
`. "$(spark/setup.sh --env-file)"`:

    "$CORDSTREAM_SPARK_PYTHON" spark/conformance.py --brokers 127.0.0.1:9092 --random 3 --seed 7

Dataset files (*.records): one Kafka record value per line, in offset order.
  # text            a comment
  #! key=value ...  settings: window, slide, watermark (Go durations), group_by
                    (comma list), batch_size, modes (comma list), model=off (records
                    the reference model cannot read: skip it), max_event_time_ahead
                    (cordstream's --max-event-time-ahead; 0 for Spark's behaviour on
                    event times far ahead of the time the records are written)
  @null             a record with a null value (a tombstone)
  @empty            a record with an empty value
  @hex:HEX          a record with these raw bytes
  @json:"..."       a record whose value is this JSON string, decoded (newlines...)
  anything else     the value itself, UTF-8
"""

import argparse
import collections
import datetime
import difflib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

ALL_MODES = ("update", "append", "complete")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
SECOND = 1_000_000
MINUTE = 60 * SECOND


# --------------------------------------------------------------------------
# Datasets


class Dataset:
    """Records (bytes, or None for a null value) in offset order, and the query
    settings to run them with."""

    def __init__(self, name, records, window=MINUTE, slide=30 * SECOND, watermark=MINUTE,
                 group_by=("author_name",), batch_size=3, modes=ALL_MODES, source=None, model=True,
                 max_event_time_ahead=None):
        self.name = name
        self.records = records
        self.window = window
        self.slide = slide
        self.watermark = watermark
        self.group_by = list(group_by)
        self.batch_size = batch_size
        self.modes = list(modes)
        self.source = source
        self.model = model
        # cordstream's --max-event-time-ahead for this dataset (None: its
        # default). Spark has no such check: a dataset whose event times run
        # far ahead of the records' Kafka timestamps (the time it is written)
        # sets 0 to compare with Spark's strict behaviour.
        self.max_event_time_ahead = max_event_time_ahead

    def settings(self):
        return (f"window={go_duration(self.window)} slide={go_duration(self.slide)} "
                f"watermark={go_duration(self.watermark)} group_by={','.join(self.group_by)} "
                f"batch_size={self.batch_size}")

    def dump(self, path):
        """Write the dataset as a .records file that load_dataset reads back."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# {self.name}\n#! {self.settings()} modes={','.join(self.modes)}"
                    f"{'' if self.model else ' model=off'}"
                    f"{'' if self.max_event_time_ahead is None else ' max_event_time_ahead=' + self.max_event_time_ahead}\n")
            for r in self.records:
                f.write(encode_record_line(r) + "\n")


def go_duration(us):
    if us == 0:
        return "0s"
    if us % SECOND == 0:
        return f"{us // SECOND}s"
    if us % 1000 == 0:
        return f"{us // 1000}ms"
    return f"{us}us"


def encode_record_line(value):
    if value is None:
        return "@null"
    if value == b"":
        return "@empty"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "@hex:" + value.hex()
    if "\n" in text or "\r" in text or text.startswith(("#", "@")) or text != text.strip("\x85\u2028\u2029"):
        return "@json:" + json.dumps(text)
    return text


def parse_setting_duration(text):
    from discord_consumer import parse_duration

    return parse_duration(text)


def load_dataset(path):
    name = os.path.splitext(os.path.basename(path))[0]
    records = []
    settings = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip(b"\n").rstrip(b"\r")
            if line.startswith(b"#!"):
                for item in line[2:].decode("utf-8").split():
                    if "=" not in item:
                        raise SystemExit(f"{path}:{lineno}: setting {item!r}: want key=value")
                    k, v = item.split("=", 1)
                    settings[k] = v
                continue
            if line.startswith(b"#") or not line.strip():
                continue
            if line == b"@null":
                records.append(None)
            elif line == b"@empty":
                records.append(b"")
            elif line.startswith(b"@hex:"):
                records.append(bytes.fromhex(line[5:].decode("ascii")))
            elif line.startswith(b"@json:"):
                records.append(json.loads(line[6:].decode("utf-8")).encode("utf-8"))
            else:
                records.append(line)
    ds = Dataset(name, records, source=path)
    for k, v in settings.items():
        if k == "window":
            ds.window = parse_setting_duration(v)
        elif k == "slide":
            ds.slide = parse_setting_duration(v)
        elif k == "watermark":
            ds.watermark = parse_setting_duration(v)
        elif k == "group_by":
            ds.group_by = v.split(",")
        elif k == "batch_size":
            ds.batch_size = int(v)
        elif k == "modes":
            ds.modes = [m for m in v.split(",") if m]
        elif k == "model":
            ds.model = v not in ("off", "false", "0")
        elif k == "max_event_time_ahead":
            ds.max_event_time_ahead = v
        else:
            raise SystemExit(f"{path}: unknown setting {k!r} (window, slide, watermark, group_by, batch_size, modes, model, "
                             "max_event_time_ahead)")
    return ds


# --------------------------------------------------------------------------
# Random datasets

NAMES = [
    "alice", "bob", "carol", "dave", "erin",
    "Ünïcødé", "emoji😀", "日本語の名前", "한국어", "ｆｕｌｌｗｉｄｔｈ", "mixed漢字abc",
    "", "a b", "tab\tname", "new\nline", "quote\"back\\slash", "<html>&amp;",
]
CHANNELS = ["1100000000000000001", "1100000000000000002", "1100000000000000003"]
GUILDS = ["1200000000000000001", "1200000000000000002", None]
CONFIGS = [  # window, slide, watermark
    (MINUTE, 30 * SECOND, MINUTE),  # the original's
    (MINUTE, 30 * SECOND, MINUTE),
    (MINUTE, 30 * SECOND, MINUTE),
    (30 * SECOND, 30 * SECOND, 0),  # tumbling, no delay
    (MINUTE, 20 * SECOND, 30 * SECOND),
    (MINUTE, 25 * SECOND, 45 * SECOND),  # size not a multiple of the slide
    (10 * SECOND, 10 * SECOND, 5 * SECOND),
]
GROUPS = [["author_name"]] * 5 + [["author_id"], ["channel_id"], ["guild_id", "author_name"]]
BAD_TIMESTAMPS = ["garbage", "", "2025-13-01 00:00:00.000", "2025-11-07 25:00:00.000",
                  "2025-02-29 18:00:00.000", "2025/11/07 18:00:00", "2025-11-07 18:00:60.000",
                  "2025-11-07T", "2025-11-07 18:00:00,000"]


def fmt_ts(us, style):
    dt = EPOCH + datetime.timedelta(microseconds=us)
    if style == "wire":
        return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"
    if style == "iso":
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    if style == "micro":
        return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond:06d}"
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def generate(rng, name):
    """A random dataset with the tricky cases: window edges, out-of-order and
    late events, bad records, edits and deletes, odd names."""
    window, slide, watermark = rng.choice(CONFIGS)
    group_by = rng.choice(GROUPS)
    n = rng.randint(30, 160)
    base = int(datetime.datetime(2025, 11, 7, 18, 0, tzinfo=datetime.timezone.utc).timestamp()) * SECOND
    cursor = base + rng.randint(0, 59) * SECOND
    authors = {nm: str(1000000000000000000 + i) for i, nm in enumerate(NAMES)}
    records = []
    message_id = 1300000000000000000
    for _ in range(n):
        cursor += rng.choice([0, 0, 1, 2, 3, 5, 8]) * SECOND + rng.randint(0, 999) * 1000
        roll = rng.random()
        if roll < 0.60:
            ts = cursor - rng.randint(0, 5000) * 1000  # slightly out of order
        elif roll < 0.70:
            ts = cursor - cursor % (30 * SECOND) + rng.choice([0, 0, 0, -1000, 1000])  # :00 / :30 edges
        elif roll < 0.78:
            ts = cursor - watermark - rng.randint(0, slide // 1000) * 1000  # late for one window
        elif roll < 0.83:
            ts = cursor - rng.randint(3 * 60, 2 * 3600) * SECOND  # very late
        elif roll < 0.86:
            cursor += rng.randint(60, 300) * SECOND  # a jump ahead
            ts = cursor
        else:
            ts = cursor + rng.randint(0, 2000) * 1000
        style = rng.choices(["wire", "iso", "micro", "seconds"], [80, 8, 6, 6])[0]
        if style == "micro":
            ts += rng.randint(0, 999)
        name_ = rng.choice(NAMES[:5] * 4 + NAMES[5:])
        message_id += rng.randint(1, 1000)
        rec = {
            "author_id": authors[name_],
            "author_name": name_,
            "channel_id": rng.choice(CHANNELS),
            "content": rng.choice(["hi", "", None, "olá 👋"]),
            "message_timestamp": fmt_ts(ts, style),
            "message_id": str(message_id),
            "guild_id": rng.choice(GUILDS),
            "author_global_name": rng.choice([None, name_.title()]),
            "author_is_bot": rng.random() < 0.1,
            "webhook_id": None,
            "event_kind": "create",
            "edited_timestamp": None,
            "schema_version": 1,
        }
        roll = rng.random()
        value = None
        if roll < 0.04:
            value = rng.choice([b"not json", b"{", b'{"author_name":"x",', b"[]", b"123", b"true",
                                b'{"author_name":"bob","message_timestamp":"2025-11-07 18:00:00.000"'])
        elif roll < 0.06:
            value = None
            records.append(None)
            continue
        elif roll < 0.07:
            value = b""
        elif roll < 0.10:
            del rec["message_timestamp"]
        elif roll < 0.12:
            rec["message_timestamp"] = None
        elif roll < 0.15:
            rec["message_timestamp"] = rng.choice(BAD_TIMESTAMPS)
        elif roll < 0.19:
            rec["author_name"] = None
        elif roll < 0.22:
            del rec["author_name"]
        elif roll < 0.29:
            # An edit or a deletion, often far ahead in time: it must neither
            # count nor move the watermark.
            rec["event_kind"] = rng.choice(["update", "delete"])
            if rng.random() < 0.5:
                rec["message_timestamp"] = fmt_ts(cursor + rng.randint(5, 30) * MINUTE, "wire")
            if rec["event_kind"] == "delete":
                rec["author_id"] = rec["author_name"] = rec["content"] = None
            else:
                rec["edited_timestamp"] = fmt_ts(cursor, "wire")
        elif roll < 0.39:
            rec = {k: rec[k] for k in ("author_id", "author_name", "content", "message_timestamp")}
            if rng.random() < 0.5:
                rec["channel_id"] = rng.choice(CHANNELS)
        elif roll < 0.41:
            if records and records[-1] is not None:
                records.append(records[-1])  # the same record twice
                continue
        if value is None:
            value = json.dumps(rec, ensure_ascii=rng.random() < 0.3, separators=(",", ":")).encode("utf-8")
        records.append(value)
    # At most ~30 batches per run: Spark takes a fraction of a second per batch.
    batch_size = max(rng.choice([1, 2, 3, 5, 7, 10, 16, 25, 50]), -(-len(records) // 30))
    return Dataset(name, records, window, slide, watermark, group_by, batch_size)


# --------------------------------------------------------------------------
# Reference model (the semantics written in the design notes)

_TS = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?)?"
                 r"(Z|[+-]\d{2}(?::?\d{2})?)?$")


def model_timestamp(text):
    """Microseconds for the timestamp forms the generator writes; None when
    unparseable. Not all of Spark's CAST: the model is a cross-check only."""
    if not isinstance(text, str):
        return None
    m = _TS.match(text.strip(" "))
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    offset = 0
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60) * (1 if zone[0] == "+" else -1)
    try:
        dt = datetime.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                               tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    us = (int(frac[:6].ljust(6, "0")) if frac else 0)
    delta = dt - EPOCH
    return (delta.days * 86400 + delta.seconds - offset) * SECOND + us


def model_windows(ts, window, slide):
    last_start = ts - (ts + slide) % slide  # startTime 0; Python's % floors
    out = []
    for i in range((window + slide - 1) // slide):
        start = last_start - i * slide
        if start <= ts < start + window:
            out.append((start, start + window))
    return out


def model_run(ds, mode):
    """Rows per batch id, as the JSON Lines output would have them."""
    k = ds.batch_size
    batches = [ds.records[i:i + k] for i in range(0, len(ds.records), k)]
    state = {}
    wm_ms = 0  # watermark this batch runs with (ms)
    prev_wm_ms = 0
    out = {}
    batch_id = 0
    pending_no_data = False
    for i, batch in enumerate(batches + [None]):
        if batch is None:
            if not pending_no_data or mode == "complete":
                break
            batch = []
        rows = []
        max_ms = None
        updated = set()
        for value in batch:
            try:
                rec = json.loads(value) if value else None
            except (ValueError, UnicodeDecodeError):
                rec = None
            if not isinstance(rec, dict):
                continue
            kind = rec.get("event_kind")
            if kind is not None and kind != "create":
                continue
            ts = model_timestamp(rec.get("message_timestamp"))
            if ts is None:
                continue
            ms = ts // 1000 if ts >= 0 else -((-ts) // 1000)
            max_ms = ms if max_ms is None else max(max_ms, ms)
            keys = tuple(rec.get(g) if isinstance(rec.get(g), str) or rec.get(g) is None else None for g in ds.group_by)
            for w in model_windows(ts, ds.window, ds.slide):
                if mode != "complete" and w[1] <= prev_wm_ms * 1000:
                    continue  # late for this window
                state[(w, keys)] = state.get((w, keys), 0) + 1
                updated.add((w, keys))
        if mode == "update":
            rows = [(w, keys, state[(w, keys)]) for (w, keys) in updated]
        elif mode == "complete":
            rows = [(w, keys, c) for (w, keys), c in state.items()]
        if mode != "complete":
            evicted = [(w, keys) for (w, keys) in state if w[1] <= wm_ms * 1000]
            for key in evicted:
                if mode == "append":
                    rows.append((key[0], key[1], state[key]))
                del state[key]
        out[batch_id] = [model_row(batch_id, w, keys, c, ds.group_by) for w, keys, c in rows]
        batch_id += 1
        new_wm = wm_ms
        if max_ms is not None:
            new_wm = max(wm_ms, max_ms - ds.watermark // 1000)
        pending_no_data = new_wm > wm_ms
        prev_wm_ms, wm_ms = wm_ms, new_wm
    return out


def rfc3339(us):
    from discord_consumer import rfc3339 as f

    return f(us)


def model_row(batch_id, w, keys, count, group_by):
    row = {"batch_id": batch_id, "window_start": rfc3339(w[0]), "window_end": rfc3339(w[1])}
    for g, v in zip(group_by, keys):
        row[g] = v
    row["message_count"] = count
    return row


# --------------------------------------------------------------------------
# Kafka


def check_broker(brokers):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": brokers, "log_level": 0})
    try:
        admin.list_topics(timeout=10)
    except Exception as e:
        raise SetupError(f"no Kafka broker answers at {brokers}: {e}",
                         "start one with scripts/kafka start, or pass --brokers")


def write_topic(brokers, topic, records):
    """Create a one-partition topic and write records to it in order; check
    that record i landed at offset i."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": brokers, "log_level": 0})
    for fut in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        fut.result(timeout=30)
    producer = Producer({
        "bootstrap.servers": brokers,
        "acks": "all",
        "enable.idempotence": False,
        "max.in.flight.requests.per.connection": 1,
        "linger.ms": 5,
        "log_level": 0,
    })
    offsets = [None] * len(records)
    errors = []

    def done(i):
        def cb(err, msg):
            if err is not None:
                errors.append(f"record {i}: {err}")
            else:
                offsets[i] = msg.offset()
        return cb

    for i, value in enumerate(records):
        while True:
            try:
                producer.produce(topic, value=value, partition=0, on_delivery=done(i))
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(60)
    if left or errors:
        raise RunError(f"writing {topic}: {left} records not delivered; {errors[:3]}")
    if offsets != list(range(len(records))):
        raise RunError(f"writing {topic}: records landed at offsets {offsets[:10]}..., want 0..{len(records) - 1}")


def delete_topics(brokers, topics):
    if not topics:
        return
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": brokers, "log_level": 0})
    for fut in admin.delete_topics(list(topics), operation_timeout=30).values():
        try:
            fut.result(timeout=30)
        except Exception:
            pass


# --------------------------------------------------------------------------
# The two engines


class SetupError(Exception):
    def __init__(self, msg, hint=None):
        super().__init__(msg)
        self.hint = hint


class RunError(Exception):
    pass


def start_spark(work, log_path):
    import discord_consumer as dc

    log4j = os.path.join(HERE, "log4j2-conformance.properties")
    a = dc.parse_args([
        "--master", "local[2]",
        "--shuffle-partitions", "2",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.sql.streaming.numRecentProgressUpdates=100000",
        "--conf", f"spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=file:{log4j} "
                  f"-Dcordstream.spark.log={log_path}",
        "--conf", f"spark.local.dir={os.path.join(work, 'spark-tmp')}",
    ])
    return dc.build_session(a)


def run_spark(spark, ds, mode, brokers, topic, out_path, console_path, work, preset=None):
    import discord_consumer as dc

    args = [
        "--brokers", brokers, "--topic", topic, "--starting-offsets", "earliest",
        "--available-now", "--max-offsets-per-trigger", str(ds.batch_size), "--mode", mode,
        "--output", "jsonl", "--jsonl-file", out_path,
        "--output", "console", "--console-file", console_path,
    ]
    if preset:
        args += ["--preset", preset]
    else:
        args += ["--window", go_duration(ds.window), "--slide", go_duration(ds.slide),
                 "--watermark", go_duration(ds.watermark), "--group-by", ",".join(ds.group_by)]
    a = dc.parse_args(args)
    printer = dc.BatchPrinter(a)
    checkpoint = tempfile.mkdtemp(prefix="checkpoint-", dir=work)
    query = dc.start_query(spark, a, printer, checkpoint,
                           name=f"{ds.name}-{preset or 'flags'}-{mode}".replace(".", "_"))
    try:
        if not query.awaitTermination(600):
            query.stop()
            raise RunError("Spark did not finish within 600 s")
    except RunError:
        raise
    except Exception as e:
        raise RunError(f"Spark query failed: {e}")
    finally:
        printer.close()
    progress = [json.loads(p.json) for p in query.recentProgress]
    shutil.rmtree(checkpoint, ignore_errors=True)
    return progress


def build_cordstream(work):
    binary = os.path.join(work, "cordstream")
    r = subprocess.run(["go", "build", "-o", binary, "./cmd/cordstream"], cwd=REPO,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SetupError("go build ./cmd/cordstream failed:\n" + r.stderr[-3000:],
                         "fix the build, or pass --cordstream BIN, or --spark-only")
    return binary


def run_cordstream(binary, ds, mode, brokers, topic, out_path, console_path, err_path, preset=None):
    cmd = [
        binary, "analyze", "--brokers", brokers, "--topic", topic,
        "--group", f"conformance-{uuid.uuid4().hex[:12]}",
        "--starting-offsets", "earliest", "--available-now",
        "--max-records-per-batch", str(ds.batch_size), "--no-create-topic",
        # Spark has no de-duplication step: count repeated message_ids as it does.
        "--dedup=false",
    ]
    if preset and mode == preset_default_mode(preset):
        # The preset as it is: analyze --preset NAME.
        cmd += ["--preset", preset, "--output", "console,jsonl", "--jsonl-file", out_path]
    elif preset:
        # The preset in another mode: a query file of one query (its
        # console then prints as the flags' query does, without a heading).
        qfile = out_path + ".queries.yaml"
        with open(qfile, "w", encoding="utf-8") as f:
            f.write(f"queries:\n  {preset}:\n    preset: {preset}\n    mode: {mode}\n"
                    f"    outputs: [console, {json.dumps('jsonl:' + out_path)}]\n")
        cmd += ["--queries", qfile]
    else:
        cmd += ["--mode", mode, "--window", go_duration(ds.window), "--slide", go_duration(ds.slide),
                "--watermark", go_duration(ds.watermark), "--group-by", ",".join(ds.group_by),
                "--output", "console,jsonl", "--jsonl-file", out_path]
    if ds.max_event_time_ahead is not None:
        cmd += ["--max-event-time-ahead", ds.max_event_time_ahead]
    with open(err_path, "w") as err, open(console_path, "w") as console:
        try:
            r = subprocess.run(cmd, stdout=console, stderr=err, timeout=300)
        except subprocess.TimeoutExpired:
            raise RunError(f"cordstream analyze did not finish within 300 s (log {err_path})")
    if r.returncode != 0:
        with open(err_path) as f:
            tail = f.read()[-2000:]
        raise RunError(f"cordstream analyze exited {r.returncode}:\n{tail}\n(command: {' '.join(cmd)})")
    return cmd


# --------------------------------------------------------------------------
# Comparison


def read_rows(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise RunError(f"{path}:{lineno}: not JSON: {e}: {line[:200]!r}")
    return rows


def row_key(row):
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def by_batch(rows):
    out = collections.defaultdict(list)
    for r in rows:
        out[r.get("batch_id")].append(r)
    return out


def final_counts(rows, mode):
    """(window, keys) -> count at the end of the run."""
    final = {}
    if mode == "complete":
        batches = by_batch(rows)
        if not batches:
            return final
        rows = batches[max(batches, key=lambda b: (b is not None, b or 0))]
    for r in sorted(rows, key=lambda r: r.get("batch_id") or 0):
        key = json.dumps({k: v for k, v in r.items() if k not in ("batch_id", "message_count")},
                         sort_keys=True, ensure_ascii=False)
        final[key] = r.get("message_count")
    return final


def shape_errors(rows, group_by, name, values=("message_count",)):
    """Rows whose keys are not batch_id, window_start, window_end, the group-by
    columns and the values (message_count), in that order (the JSON Lines contract)."""
    want = ["batch_id", "window_start", "window_end", *group_by, *values]
    bad = [r for r in rows if list(r) != want]
    if not bad:
        return []
    return [f"  {len(bad)} rows from {name} do not have the keys {want} in order, e.g. "
            f"{json.dumps(bad[0], ensure_ascii=False)}"]


def console_batches(path):
    """Batch id -> the console text of that batch (Spark's console sink format)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = {}
    for part in re.split(r"(?m)^-{43}\nBatch: ", text)[1:]:
        head, _, body = part.partition("\n")
        out[head.strip()] = body
    return out


def compare_console(spark_path, cs_path, limit=30, ties=False):
    """Differences between the console outputs, batch by batch (rows sorted by
    window then key on both sides, so the text must be identical). With ties
    (a query sorted by its own order_by) Spark leaves rows equal in the sort
    columns in no defined order: a table's lines are then compared as a
    multiset."""
    want, got = console_batches(spark_path), console_batches(cs_path)
    diff = []
    for b in sorted(set(want) | set(got), key=lambda b: int(b) if b.isdigit() else -1):
        if want.get(b) == got.get(b):
            continue
        if ties and sorted((want.get(b) or "").splitlines()) == sorted((got.get(b) or "").splitlines()):
            continue
        diff.append(f"  console, batch {b}: the tables differ (spark {spark_path}, cordstream {cs_path})")
        for line in difflib.unified_diff((want.get(b) or "").splitlines(), (got.get(b) or "").splitlines(),
                                         "spark", "cordstream", lineterm="", n=1):
            diff.append("    " + line)
    if len(diff) > limit:
        diff = diff[:limit] + [f"  ... {len(diff) - limit} more lines"]
    return diff


def batch_count_errors(progress, log_path):
    """Compare the number of batches Spark ran (empty ones included, which the
    JSON Lines cannot show) with the count cordstream logs at the end of an
    available-now run ("all available data processed ... batches=N"), when
    its log has that line."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            found = re.findall(r"all available data processed.*?\bbatches=(\d+)", f.read())
    except OSError:
        return []
    if not found:
        return []
    got = int(found[-1])
    if got != len(progress):
        ids = [p["batchId"] for p in progress]
        return [f"  cordstream ran {got} batches, Spark {len(progress)} (ids {ids[:1]}..{ids[-1:]}, "
                "the last ones may be empty: a no-data batch after the watermark moved)"]
    return []


def compare(want_rows, got_rows, want_name, got_name, mode, limit=40):
    """Differences between two runs, as printable lines (empty when equal)."""
    diff = []
    shown = {}
    for r in list(want_rows) + list(got_rows):
        shown.setdefault(row_key(r), json.dumps(r, ensure_ascii=False, separators=(",", ":")))
    want, got = by_batch(want_rows), by_batch(got_rows)
    for b in sorted(set(want) | set(got), key=lambda b: (b is None, b if isinstance(b, int) else 0)):
        wc = collections.Counter(row_key(r) for r in want.get(b, []))
        gc = collections.Counter(row_key(r) for r in got.get(b, []))
        if wc == gc:
            continue
        diff.append(f"  batch {b}: {sum(wc.values())} rows from {want_name}, {sum(gc.values())} from {got_name}")
        for k in sorted(wc - gc):
            diff.append(f"    only {want_name:10} {shown[k]}" + (f" (x{(wc - gc)[k]})" if (wc - gc)[k] > 1 else ""))
        for k in sorted(gc - wc):
            diff.append(f"    only {got_name:10} {shown[k]}" + (f" (x{(gc - wc)[k]})" if (gc - wc)[k] > 1 else ""))
    fw, fg = final_counts(want_rows, mode), final_counts(got_rows, mode)
    if fw != fg:
        bad = [k for k in sorted(set(fw) | set(fg)) if fw.get(k) != fg.get(k)]
        diff.append(f"  final counts differ for {len(bad)} (window, key) rows:")
        for k in bad[:10]:
            diff.append(f"    {k}: {want_name} {fw.get(k)}, {got_name} {fg.get(k)}")
    if len(diff) > limit:
        diff = diff[:limit] + [f"  ... {len(diff) - limit} more lines"]
    return diff


# --------------------------------------------------------------------------


def spark_batches_summary(progress):
    if not progress:
        return "no batches"
    parts = []
    for p in progress:
        wm = (p.get("eventTime") or {}).get("watermark", "")
        parts.append(f"{p['batchId']}:{p['numInputRows']}")
    last_wm = (progress[-1].get("eventTime") or {}).get("watermark")
    return f"batches(id:rows) {' '.join(parts)}; last watermark {last_wm}"


def preset_modes(name):
    """The output modes Spark allows for a preset: a sort complete only,
    session windows append and complete, otherwise all three."""
    import discord_consumer as dc

    pre = dc.PRESETS[name]
    if pre.get("order"):
        return ("complete",)
    if pre.get("session_gap"):
        return ("append", "complete")
    return ALL_MODES


def preset_default_mode(name):
    """A preset's own output mode."""
    import discord_consumer as dc

    return dc.PRESETS[name]["mode"]


def preset_sorted(name):
    """Whether a preset sorts its rows by its own order_by."""
    import discord_consumer as dc

    return bool(dc.PRESETS[name].get("order"))


def preset_columns(name):
    """A preset's group-by columns and value columns."""
    import discord_consumer as dc

    pre = dc.PRESETS[name]
    return pre["group_by"], tuple(alias for _, _, _, alias in pre["aggs"])


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="conformance.py",
        description="Run the same records through Spark and cordstream analyze; compare every batch.",
        epilog="example: conformance.py --brokers 127.0.0.1:9092 --random 3 --seed 7",
    )
    p.add_argument("--brokers", default=os.environ.get("CORDSTREAM_TEST_BROKERS", "127.0.0.1:9092"),
                   help="Kafka bootstrap servers (default $CORDSTREAM_TEST_BROKERS or 127.0.0.1:9092)")
    p.add_argument("--datasets", default=os.path.join(HERE, "datasets"),
                   help="directory of fixed *.records datasets (default spark/datasets)")
    p.add_argument("--dataset", action="append", default=[], metavar="FILE",
                   help="run only this dataset file (repeatable); implies --no-fixed unless given too")
    p.add_argument("--no-fixed", action="store_true", help="skip the fixed datasets")
    p.add_argument("--random", type=int, default=0, metavar="N", help="also run N random datasets")
    p.add_argument("--seed", type=int, default=None, help="seed of the random datasets (default: time)")
    p.add_argument("--batch-size", type=int, default=None, metavar="K",
                   help="records per batch for every dataset (default: each dataset's own)")
    p.add_argument("--modes", default=",".join(ALL_MODES),
                   help="output modes to compare (default update,append,complete)")
    p.add_argument("--cordstream", default=None, metavar="BIN",
                   help="cordstream binary (default: go build ./cmd/cordstream)")
    p.add_argument("--spark-only", action="store_true",
                   help="run Spark and the model only (no cordstream)")
    p.add_argument("--work", default=None, help="keep outputs, logs and datasets in this directory")
    p.add_argument("--keep-topics", action="store_true", help="do not delete the topics afterwards")
    p.add_argument("--show", action="store_true", help="also print Spark's console tables here")
    p.add_argument("--preset", action="append", default=[], metavar="NAME",
                   help="compare this query preset (docs/QUERIES.md; repeatable) on each dataset, in every mode "
                        "it allows, instead of the dataset's own window and group-by: Spark runs "
                        "discord_consumer.py --preset NAME, cordstream analyze --queries with the preset")
    p.add_argument("--no-console", action="store_true",
                   help="do not compare the console tables (rows are still compared)")
    a = p.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")  # lone surrogates in odd records

    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in ALL_MODES:
            p.error(f"--modes: {m!r} is not one of {', '.join(ALL_MODES)}")
    if a.preset:
        import discord_consumer as dc

        for name in a.preset:
            if name not in dc.PRESETS:
                p.error(f"--preset: {name!r} is not one of {', '.join(sorted(dc.PRESETS))}")
    if a.batch_size is not None and a.batch_size < 1:
        p.error("--batch-size must be at least 1")
    seed = a.seed if a.seed is not None else int(time.time()) % 100000

    work = a.work or tempfile.mkdtemp(prefix="cordstream-conformance-")
    os.makedirs(work, exist_ok=True)
    os.makedirs(os.path.join(work, "spark-tmp"), exist_ok=True)
    log_path = os.path.join(work, "spark.log")
    started = time.time()

    datasets = []
    if not a.no_fixed and not a.dataset:
        names = sorted(f for f in os.listdir(a.datasets) if f.endswith(".records"))
        datasets += [load_dataset(os.path.join(a.datasets, f)) for f in names]
    datasets += [load_dataset(f) for f in a.dataset]
    rng = random.Random(seed)
    for i in range(a.random):
        ds = generate(rng, f"random-{seed}-{i}")
        ds.dump(os.path.join(work, ds.name + ".records"))
        datasets.append(ds)
    if a.batch_size is not None:
        for ds in datasets:
            ds.batch_size = a.batch_size
    if not datasets:
        p.error("no datasets: give --random N, --dataset FILE, or a --datasets directory with *.records")

    try:
        check_broker(a.brokers)
        binary = None
        if not a.spark_only:
            binary = a.cordstream or build_cordstream(work)
        print(f"conformance: {len(datasets)} datasets, modes {','.join(modes)}, seed {seed}, "
              f"broker {a.brokers}, work dir {work}", flush=True)
        spark = start_spark(work, log_path)
    except SetupError as e:
        print(f"conformance: error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 2
    import pyspark

    print(f"conformance: Spark {pyspark.__version__} running (log {log_path})", flush=True)

    results = []
    topics = []
    for ds in datasets:
        topic = f"conformance-{re.sub(r'[^A-Za-z0-9._-]', '_', ds.name)}-{uuid.uuid4().hex[:8]}"
        try:
            write_topic(a.brokers, topic, ds.records)
            topics.append(topic)
        except Exception as e:
            results.append((ds.name, "-", "ERROR", [f"  {e}"]))
            print(f"ERROR {ds.name}: {e}", flush=True)
            continue
        print(f"dataset {ds.name}: {len(ds.records)} records -> {topic} ({ds.settings()})", flush=True)
        runs = [(None, m) for m in modes if m in ds.modes]
        if a.preset:
            runs = [(pre, m) for pre in a.preset for m in modes if m in preset_modes(pre)]
        for preset, mode in runs:
            label = f"{ds.name} {preset} {mode}" if preset else f"{ds.name} {mode}"
            base = os.path.join(work, f"{ds.name}.{preset}.{mode}" if preset else f"{ds.name}.{mode}")
            spark_out, cs_out = base + ".spark.jsonl", base + ".cordstream.jsonl"
            for f in (spark_out, cs_out):
                if os.path.exists(f):
                    os.remove(f)
            lines = []
            status = "PASS"
            t0 = time.time()
            try:
                progress = run_spark(spark, ds, mode, a.brokers, topic, spark_out,
                                     base + ".spark.console", work, preset)
                if a.show:
                    with open(base + ".spark.console", encoding="utf-8") as f:
                        sys.stdout.write(f.read())
                with open(base + ".spark-progress.jsonl", "w") as f:
                    for pr in progress:
                        f.write(json.dumps(pr) + "\n")
                spark_rows = read_rows(spark_out)
                t_spark = time.time() - t0
                summary = f"spark {t_spark:.1f}s {spark_batches_summary(progress)}"
                group_by, values = ds.group_by, ("message_count",)
                if preset:
                    group_by, values = preset_columns(preset)
                model_diff = shape_errors(spark_rows, group_by, "spark", values)
                if ds.model and not preset:
                    model_rows = [r for rows in model_run(ds, mode).values() for r in rows]
                    model_diff += compare(spark_rows, model_rows, "spark", "model", mode)
                if binary:
                    run_cordstream(binary, ds, mode, a.brokers, topic, cs_out, base + ".cordstream.console",
                                   base + ".cordstream.log", preset)
                    cs_rows = read_rows(cs_out)
                    lines = compare(spark_rows, cs_rows, "spark", "cordstream", mode)
                    lines += shape_errors(cs_rows, group_by, "cordstream", values)
                    lines += batch_count_errors(progress, base + ".cordstream.log")
                    if not lines and not a.no_console:
                        lines += compare_console(base + ".spark.console", base + ".cordstream.console",
                                                 ties=bool(preset and preset_sorted(preset)))
                    if lines:
                        status = "FAIL"
                    summary += f"; {len(spark_rows)} rows from spark, {len(cs_rows)} from cordstream"
                else:
                    status = "SPARK"
                    summary += f"; {len(spark_rows)} rows"
                if model_diff:
                    summary += "; model differs from spark (see below)"
            except RunError as e:
                status, lines, summary, model_diff = "ERROR", [f"  {e}"], "", []
            print(f"{status:5} {label}: {summary}", flush=True)
            for line in lines:
                print(line, flush=True)
            if model_diff:
                print("  [model vs spark; informational]", flush=True)
                for line in model_diff:
                    print("  " + line, flush=True)
            results.append((ds.name, f"{preset} {mode}" if preset else mode, status, lines))

    if not a.keep_topics:
        delete_topics(a.brokers, topics)
    spark.stop()

    failed = [r for r in results if r[2] in ("FAIL", "ERROR")]
    passed = [r for r in results if r[2] == "PASS"]
    spark_only = len([r for r in results if r[2] == "SPARK"])
    keep = a.work is not None or bool(failed)
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            made = f.read().count("Streaming query made progress")
        print(f"conformance: Spark's log reports {made} micro-batches ('Streaming query made progress')",
              flush=True)
    except OSError:
        pass
    print(f"conformance: {len(results)} runs in {time.time() - started:.0f} s"
          + (f", {spark_only} of them Spark only (not compared)" if spark_only else "")
          + (f"; outputs in {work}" if keep else "; outputs deleted (--work DIR keeps them)"), flush=True)
    print(f"conformance: {len(passed)} passed, {len(failed)} failed", flush=True)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print("failed: " + ", ".join(f"{n} {m}" for n, m, _, _ in failed), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
