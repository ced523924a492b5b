#!/usr/bin/env python3
"""Golden values of Spark's approx_count_distinct (HyperLogLog++) for internal/hllpp.

Runs a local Spark (the pyspark that spark/requirements.txt pins) and writes what
Spark computes into internal/hllpp/testdata/, where the Go tests read it without
Spark:

  xxhash.txt         xxhash64(v) (seed 42, the HLL++ hash) of strings, ints, longs
  precision.txt      the precision Spark derives from a relative standard deviation
  sweeps.txt.gz      approx_count_distinct over every prefix of a value sequence
                     (a running window aggregate), for precisions 4, 5, 6, 9, 12, 14
                     and string, int and bigint values
  groups.txt.gz      approx_count_distinct per group at p=9, group n holding the n
                     distinct strings "k<n>-<i>", n = 1..4000 (partial buffers merged
                     across partitions by Spark)
  bias.txt.gz        HyperLogLogPlusPlusHelper.estimateBias(e) on a grid of e for
                     every precision 4..18 (every table entry reached)
  query.txt          HyperLogLogPlusPlusHelper.query on registers filled from
                     pseudo-random hashes, every precision 4..18, every range
  tables.go          (with --tables) Spark's copy of the HLL++ paper's bias tables as
                     a Go file, for internal/hllpp/tables.go

Usage:
  . "$(spark/setup.sh --env-file)"
  "$CORDSTREAM_SPARK_PYTHON" spark/golden/hllpp.py [--out internal/hllpp/testdata] [--tables FILE]
  go test ./internal/hllpp/

Regenerating and getting no `git diff` in internal/hllpp/testdata is the check that
the committed values are Spark's. The value sequences are described in each file's
header, and the Go tests rebuild them the same way.
"""

import argparse
import gzip
import os
import struct
import sys

from pyspark.sql import SparkSession

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

MASK64 = (1 << 64) - 1

# A relative standard deviation per precision, the ones the Spark docs and users
# pick; precision.txt records the precision Spark derives from each.
RSD = {4: 0.3, 5: 0.25, 6: 0.15, 9: 0.05, 12: 0.02, 14: 0.01}


def mid_rsd(p):
    """An rsd whose precision is p with the most margin: 2*log2(1.106/rsd) = p - 0.5."""
    return 1.106 / 2 ** ((p - 0.5) / 2)


def splitmix64(state):
    """One step of SplitMix64: (new state, output). The Go tests use the same generator."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def signed64(u):
    return u - (1 << 64) if u >= 1 << 63 else u


def session():
    return (SparkSession.builder.master("local[2]")
            .appName("cordstream-hllpp-golden")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate())


def helper_class(spark):
    return spark._jvm.org.apache.spark.sql.catalyst.util.HyperLogLogPlusPlusHelper


def precision_of(spark, helper):
    from py4j.java_gateway import get_field
    return get_field(helper, "org$apache$spark$sql$catalyst$util$HyperLogLogPlusPlusHelper$$p")


# ---------------------------------------------------------------------------------------------
# xxhash64

XXHASH_STRINGS = ["", "a", "abc", "Spark", "alice", "olá 👋", "12345678901234567", "?", "\ufffd",
                  "0123456789abcdef0123456789abcdef", "x" * 31, "y" * 32, "z" * 33, "\u0000",
                  "ü" * 20, "🦀" * 9]
XXHASH_INTS = [0, 1, -1, 2, 42, 2147483647, -2147483648, 123456, -654321, 5, 2000]
XXHASH_LONGS = [0, 1, -1, 42, 9223372036854775807, -9223372036854775808, 1234567890123456789,
                1105394453412093982, -7001672635703045582]


def gen_xxhash(spark, out):
    lines = ["# xxhash64(v) in Spark (seed 42): kind, value (strings as hex of their UTF-8 bytes), hash"]
    for s in XXHASH_STRINGS:
        lit = "X'" + s.encode().hex() + "'"
        h = spark.sql(f"SELECT xxhash64(CAST({lit} AS STRING))").first()[0]
        lines.append(f"string {s.encode().hex() or '-'} {h}")
    for v in XXHASH_INTS:
        h = spark.sql(f"SELECT xxhash64(CAST({v} AS INT))").first()[0]
        lines.append(f"int {v} {h}")
    for v in XXHASH_LONGS:
        h = spark.sql(f"SELECT xxhash64(CAST('{v}' AS BIGINT))").first()[0]
        lines.append(f"long {v} {h}")
    write(out, "xxhash.txt", lines)


# ---------------------------------------------------------------------------------------------
# precision

def gen_precision(spark, out):
    H = helper_class(spark)
    rsds = sorted(set([0.39, 0.3906, 0.391, 0.4, 0.5, 0.3, 0.25, 0.2, 0.15, 0.1, 0.07, 0.05, 0.04,
                       0.03, 0.02, 0.015, 0.01, 0.008, 0.005, 0.004, 0.003, 0.0025, 0.002, 0.001,
                       0.0391, 0.0553, 0.078, 0.2765] + [mid_rsd(p) for p in range(4, 24)]))
    lines = ["# relative standard deviation (Python repr), precision Spark derives (or 'error')"]
    for r in rsds:
        try:
            p = precision_of(spark, H(float(r)))
            lines.append(f"{r!r} {p}")
        except Exception:  # require(p >= 4) fails
            lines.append(f"{r!r} error")
    write(out, "precision.txt", lines)


# ---------------------------------------------------------------------------------------------
# sweeps: every prefix of a value sequence, through a running window aggregate

# The value sequences, as SQL over i = 0, 1, 2, ...; the Go tests build the same values.
SWEEP_VALUES = {
    "string": "concat('é', CAST(i AS STRING))",      # "é0", "é1", ...
    "int": "CAST(i * 3 - 5000 AS INT)",               # -5000, -4997, ...
    "long": "i * 1000000007 - 4611686018427387904",   # BIGINT
}
SWEEP_LEN = {4: 400, 5: 800, 6: 1500, 9: 8000, 12: 40000, 14: 120000}


def sweep_keep(p, n):
    """Which prefix lengths the file keeps: all of them up to p=9, else a sample that is
    denser where the estimate switches range (E near 2.5m and 5m)."""
    if p <= 9:
        return True
    m = 1 << p
    if n <= 200 or (n <= 1000 and n % 10 == 0) or n % 499 == 0:
        return True
    step = 7 if p <= 12 else 21
    for edge in (2.5 * m, 5 * m):
        if abs(n - edge) <= 0.03 * edge and n % step == 0:
            return True
    return False


def gen_sweeps(spark, out):
    lines = ["# approx_count_distinct(v, rsd) OVER (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
             "# in Spark: the estimate of the first n values of a sequence.",
             "# 'sweep <p> <rsd> <type> <length>' starts a sequence; values for i = 0..length-1:",
             "#   string: 'é' followed by i in decimal; int: i*3 - 5000; long: i*1000000007 - 4611686018427387904",
             "# then lines 'n estimate' for a sample of n (all n up to p=9)"]
    for p, rsd in sorted(RSD.items()):
        n_max = SWEEP_LEN[p]
        for typ, expr in SWEEP_VALUES.items():
            rows = spark.sql(
                f"SELECT i + 1 AS n, approx_count_distinct(v, {rsd!r}D) OVER "
                f"(ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS e "
                f"FROM (SELECT id AS i, {expr} AS v FROM range({n_max}))").collect()
            rows.sort(key=lambda r: r[0])
            assert len(rows) == n_max
            # The running aggregate must agree with a plain aggregate of the same prefix.
            for n in (1, n_max // 3, n_max):
                e = spark.sql(f"SELECT approx_count_distinct(v, {rsd!r}D) FROM "
                              f"(SELECT {expr} AS v FROM range({n}) AS t(i))").first()[0]
                if e != rows[n - 1][1]:
                    sys.exit(f"hllpp golden: window and aggregate disagree at p={p} {typ} n={n}")
            lines.append(f"sweep {p} {rsd!r} {typ} {n_max}")
            lines.extend(f"{r[0]} {r[1]}" for r in rows if sweep_keep(p, r[0]))
            print(f"sweep p={p} {typ}: {n_max} prefixes", file=sys.stderr)
    write(out, "sweeps.txt.gz", lines)


# ---------------------------------------------------------------------------------------------
# groups: 4000 disjoint sets, aggregated by group over several partitions

def gen_groups(spark, out, n_max=4000):
    df = spark.sql(
        f"SELECT n, approx_count_distinct(v) AS e FROM ("
        f"  SELECT n, concat('k', CAST(n AS STRING), '-', CAST(i AS STRING)) AS v FROM ("
        f"    SELECT id AS n, explode(sequence(0, id - 1)) AS i FROM range(1, {n_max + 1}))"
        f") GROUP BY n")
    rows = sorted(df.repartition(8).collect(), key=lambda r: r[0])
    assert len(rows) == n_max
    lines = ["# SELECT n, approx_count_distinct(v) (rsd 0.05, p=9) GROUP BY n, where group n holds",
             "# the n distinct strings 'k<n>-<i>' for i = 0..n-1; lines 'n estimate'"]
    lines.extend(f"{r[0]} {r[1]}" for r in rows)
    write(out, "groups.txt.gz", lines)


# ---------------------------------------------------------------------------------------------
# estimateBias and query, called directly

def gen_bias(spark, out):
    H = helper_class(spark)
    raw = H.RAW_ESTIMATE_DATA()
    lines = ["# HyperLogLogPlusPlusHelper(rsd).estimateBias(e): lines 'p e bias' (Python repr of doubles)",
             "# e: a grid of 600 steps over [RAW[0] - 5, 5m], every table entry, the midpoints between",
             "# neighbouring entries"]
    for p in range(4, 19):
        h = H(mid_rsd(p))
        assert precision_of(spark, h) == p
        est = list(raw[p - 4])
        m = 1 << p
        lo, hi = est[0] - 5.0, 5.0 * m
        es = [lo + (hi - lo) * k / 600 for k in range(601)]
        es += est
        es += [(a + b) / 2 for a, b in zip(est, est[1:])]
        for e in es:
            lines.append(f"{p} {e!r} {h.estimateBias(float(e))!r}")
    write(out, "bias.txt.gz", lines)


QUERY_MULTIPLES = [0, 1 / 512, 1 / 64, 0.25, 0.7, 1.0, 2.0, 2.4, 2.5, 2.6, 3.0, 3.5, 4.0, 4.5, 4.9,
                   5.1, 6.0, 8.0]


def gen_query(spark, out):
    H = helper_class(spark)
    jvm = spark._jvm
    lines = ["# HyperLogLogPlusPlusHelper(rsd).query(buffer) on the registers that n pseudo-random hashes",
             "# set (SplitMix64 from the seed: each output is a hash; register idx = h >> (64-p), value =",
             "# leading zeros of (h << p | 1 << (p-1)) + 1, kept at its maximum): lines 'p seed n estimate'"]
    for p in range(4, 19):
        h = H(mid_rsd(p))
        m = 1 << p
        words = h.numWords()
        for k, mult in enumerate(QUERY_MULTIPLES):
            if p >= 16 and mult > 5.1:
                continue  # big and slow in Python; the raw range is covered at lower precisions
            n = int(mult * m)
            seed = p * 1000 + k
            regs = [0] * m
            state = seed
            for _ in range(n):
                state, x = splitmix64(state)
                idx = x >> (64 - p)
                w = ((x << p) & MASK64) | (1 << (p - 1))
                pw = 64 - w.bit_length() + 1
                if pw > regs[idx]:
                    regs[idx] = pw
            # Spark's buffer: 10 six-bit registers per long word, in an UnsafeRow of numWords longs.
            buf = bytearray(8 * ((words + 63) // 64) + 8 * words)
            base = 8 * ((words + 63) // 64)
            for i in range(words):
                word = 0
                for j in range(10):
                    r = i * 10 + j
                    if r < m:
                        word |= regs[r] << (6 * j)
                struct.pack_into("<q", buf, base + 8 * i, signed64(word))
            row = jvm.org.apache.spark.sql.catalyst.expressions.UnsafeRow(words)
            row.pointTo(buf, len(buf))
            lines.append(f"{p} {seed} {n} {h.query(row, 0)}")
        print(f"query p={p}", file=sys.stderr)
    write(out, "query.txt", lines)


# ---------------------------------------------------------------------------------------------
# the tables, as a Go file

def gen_tables(spark, path):
    H = helper_class(spark)
    raw = [list(a) for a in H.RAW_ESTIMATE_DATA()]
    bias = [list(a) for a in H.BIAS_DATA()]
    thresholds = list(H.THRESHOLDS())
    spark_version = spark.version

    def floats(vals, indent="\t\t"):
        out, line = [], indent
        for v in vals:
            s = repr(float(v)) + ", "
            if len(line) + len(s) > 100:
                out.append(line.rstrip())
                line = indent
            line += s
        out.append(line.rstrip())
        return "\n".join(out)

    g = []
    g.append(f"// Code generated by spark/golden/hllpp.py --tables from Spark {spark_version}; DO NOT EDIT.")
    g.append("")
    g.append("package hllpp")
    g.append("")
    g.append("// The empirical tables of HyperLogLog++: Stefan Heule, Marc Nunkesser, Alexander Hall,")
    g.append("// \"HyperLogLog in Practice: Algorithmic Engineering of a State of The Art Cardinality")
    g.append("// Estimation Algorithm\", EDBT 2013, and its online appendix (the data of its figures),")
    g.append("// as Apache Spark carries them for approx_count_distinct. They are the means of")
    g.append("// simulations and cannot be recomputed: equal estimates need these exact numbers, so the")
    g.append("// file is generated from Spark's own copy, and tables_test.go checks lengths, the")
    g.append("// raw - bias = integer cardinality grid, and SHA-256 sums of both tables.")
    g.append("")
    g.append("// thresholds[p-4]: below this linear-counting estimate the linear count is used")
    g.append("// (precisions 4..18). The appendix has 11500 for p=14; Spark keeps 15500.")
    g.append("var thresholds = [...]float64{")
    g.append(floats(thresholds, "\t"))
    g.append("}")
    for name, data, doc in (
            ("rawEstimateData", raw, "rawEstimateData[p-4][i]: the mean raw estimate E observed at the i-th\n"
                                      "// cardinality of the simulation, for precisions 4..18."),
            ("biasData", bias, "biasData[p-4][i]: the mean bias of the raw estimate at that cardinality\n"
                                "// (rawEstimateData[p-4][i] minus the cardinality).")):
        g.append("")
        g.append(f"// {doc}")
        g.append(f"var {name} = [...][]float64{{")
        for p in range(4, 19):
            g.append(f"\t// p = {p}: {len(data[p - 4])} values")
            g.append("\t{")
            g.append(floats(data[p - 4]))
            g.append("\t},")
        g.append("}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(g) + "\n")
    print(f"wrote {path}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------

def write(out, name, lines):
    path = os.path.join(out, name)
    data = ("\n".join(lines) + "\n").encode()
    if name.endswith(".gz"):
        # mtime 0 and no file name: the same values give the same bytes.
        with open(path, "wb") as f:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as z:
                z.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    print(f"wrote {path} ({len(lines)} lines)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "internal", "hllpp", "testdata"))
    ap.add_argument("--tables", metavar="FILE", help="also write Spark's bias tables as a Go file")
    ap.add_argument("--only", action="append",
                    choices=("xxhash", "precision", "sweeps", "groups", "bias", "query"),
                    help="generate only these files (repeatable)")
    a = ap.parse_args()
    spark = session()
    spark.sparkContext.setLogLevel("ERROR")
    if spark.version != "4.2.0":
        print(f"hllpp golden: warning: Spark {spark.version}, the committed values are Spark 4.2.0's",
              file=sys.stderr)
    os.makedirs(a.out, exist_ok=True)
    steps = {"xxhash": gen_xxhash, "precision": gen_precision, "sweeps": gen_sweeps,
             "groups": gen_groups, "bias": gen_bias, "query": gen_query}
    for name, fn in steps.items():
        if not a.only or name in a.only:
            fn(spark, a.out)
    if a.tables:
        gen_tables(spark, a.tables)
    spark.stop()


if __name__ == "__main__":
    main()
