#!/usr/bin/env python3
"""Checks that Spark prints a DOUBLE as the JVM's Double.toString, on the JVM it runs on.

Runs spark/golden/DoubleToString.java (golden) with $JAVA_HOME/bin/java, then puts
the same doubles through Spark and compares, for every one, Double.toString with
  - Spark's console table (Dataset.showString, what the console sink and show() print),
  - CAST(d AS STRING),
  - to_json(named_struct('v', d)) (Spark's JSON writer; non-finite values quoted).
With --write FILE it also writes the golden lines (what
internal/sparkfmt/testdata/double-tostring-jdk25.txt.gz holds, gzipped, for Java 25).

Usage:
  . "$(spark/setup.sh --env-file)"
  "$CORDSTREAM_SPARK_PYTHON" spark/golden/doubles.py [--write FILE.gz]
Exit status 0 when Spark printed every double as Double.toString.
"""

import argparse
import gzip
import os
import struct
import subprocess
import sys

from pyspark.sql import SparkSession
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", metavar="FILE", help="also write the golden lines (gzipped if FILE ends in .gz)")
    a = ap.parse_args()
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
    golden = subprocess.run([java, os.path.join(HERE, "DoubleToString.java"), "golden"],
                            check=True, capture_output=True, text=True).stdout.splitlines()
    cases = []
    for line in golden:
        bits, s = line.split(" ", 1)
        cases.append((int(bits, 16), s))

    spark = (SparkSession.builder.master("local[2]").appName("cordstream-doubles-golden")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    version = spark.sparkContext._jvm.java.lang.System.getProperty("java.version")
    rows = [(i, struct.unpack("<d", struct.pack("<Q", b))[0]) for i, (b, _) in enumerate(cases)]
    df = spark.createDataFrame(rows, StructType([StructField("i", LongType()), StructField("d", DoubleType())]))
    got = {r[0]: (r[1], r[2]) for r in
           df.selectExpr("i", "CAST(d AS STRING)", "to_json(named_struct('v', d))").collect()}
    # The console table, one row per double, in order: cells are padded to the widest.
    table = df.orderBy("i").select("d")._jdf.showString(len(cases) + 1, 0, False)
    cells = [ln.strip("|").strip() for ln in table.splitlines() if ln.startswith("|")][1:]

    bad = 0
    for i, (bits, want) in enumerate(cases):
        cast, js = got[i]
        want_json = '{"v":' + (f'"{want}"' if want in ("NaN", "Infinity", "-Infinity") else want) + "}"
        if cast != want or js != want_json or cells[i] != want:
            bad += 1
            if bad <= 10:
                print(f"{bits:016x}: Double.toString {want}, CAST {cast}, to_json {js}, console {cells[i]}")
    print(f"Java {version}: {len(cases)} doubles, {bad} printed by Spark otherwise than Double.toString")
    if a.write:
        data = ("\n".join(golden) + "\n").encode()
        if a.write.endswith(".gz"):
            with open(a.write, "wb") as f:
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as z:
                    z.write(data)
        else:
            with open(a.write, "wb") as f:
                f.write(data)
    spark.stop()
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
