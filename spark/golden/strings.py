#!/usr/bin/env python3
"""Golden values of the strings Spark's from_json makes, for internal/sparkexpr.

Spark reads a Kafka value as bytes, CAST(value AS STRING), and from_json decodes it
through a java.io.Reader (UTF-8, malformed input replaced by U+FFFD) and Jackson
(\\uXXXX escapes become UTF-16 code units, lone surrogates included); the string
it keeps is String.getBytes(UTF_8) of that (a lone surrogate becomes '?'). This
script runs that path on records {"content":"<body>"} whose bodies hold raw bytes
(valid and invalid UTF-8) and escapes, and writes, per body, the bytes of the
string Spark holds and length(content):

  internal/sparkexpr/testdata/from-json-strings.txt.gz
      lines "<body hex> <content hex or 'null'> <length or 'null'>"
  internal/sparkexpr/testdata/length.txt
      length(CAST(<bytes> AS STRING)) on byte strings that are not valid UTF-8
      (Spark's numChars counts lead bytes); lines "<hex> <length>"

The bodies: every two-byte sequence whose first byte is not ASCII; every three-
byte sequence of a set of 24 bytes chosen around the UTF-8 boundaries; every
four-byte sequence of 16 of them; a list of escape cases. Bytes that are JSON
syntax inside a string (control characters, '"', '\\\\') are left out of the raw
sets: they are JSON errors or escapes, not UTF-8 questions.

Usage:
  . "$(spark/setup.sh --env-file)"
  "$CORDSTREAM_SPARK_PYTHON" spark/golden/strings.py [--out internal/sparkexpr/testdata]
  go test ./internal/sparkexpr/
"""

import argparse
import gzip
import itertools
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql.types import BinaryType, StructField, StructType

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SET3 = [0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED,
        0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
SET4 = [0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]

ESCAPES = [
    r"\ud800", r"\udc00", r"\udfff", r"\ud83d\ude00", r"\ud83d", r"\ud83dA", r"\ude00\ud83d",
    r"\ud83d\ud83d\ude00", r"\ud83d\ude00\ude00", r"\u0000", r"\u00e9", r"\ufffd", r"\uffff", r"\ud800\n",
    r"\ud800\\", r"\ud800\u0041", r"\uD83D\uDE00", r"a\ud800b", r"\ud800\ud800", r"\udc00\udc00",
    r"\/", r"\"", r"\b\f\n\r\t", "olá 👋", "", "plain",
]


def raw_bodies():
    def ok(b):  # not JSON syntax inside a string
        return b >= 0x20 and b not in (0x22, 0x5C)
    for a in range(0x80, 0x100):
        for b in range(0x100):
            if ok(b):
                yield bytes([a, b])
    for t in itertools.product(SET3, repeat=3):
        if t[0] >= 0x80:
            yield bytes(t)
    for t in itertools.product(SET4, repeat=4):
        if t[0] >= 0x80:
            yield bytes(t)
    # Escapes next to raw bytes.
    for e in (r"\ud83d", r"\ud800", r"\ude00"):
        for raw in (b"\xed\xb8\x80", b"\xed\xa0\xbd", b"\xf0\x9f\x98", b"\x80", b"\xf0\x9f\x98\x80"):
            yield e.encode() + raw
            yield raw + e.encode()


def bodies():
    yield from (e.encode("utf-8") for e in ESCAPES)
    yield from raw_bodies()


LENGTH_CASES = ["80", "bf", "c0", "c0 80", "c1 bf", "c2", "c2 41", "df", "e0", "e0 80", "e2 82", "e2 82 41",
                "ed a0 80", "ef bf", "f0", "f0 9f", "f0 9f 98", "f4 90 80 80", "f5 80 80 80", "f8 88 80 80 80",
                "fc 84 80 80 80 80", "fe", "ff", "41 80 42", "e2 82 ac 80", "f0 9f 98 80 f0", "c3 a9 c3",
                "80 80 80 80", "e0 41 41", "f0 41 41 41 41"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "internal", "sparkexpr", "testdata"))
    a = ap.parse_args()
    spark = (SparkSession.builder.master("local[2]").appName("cordstream-strings-golden")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    os.makedirs(a.out, exist_ok=True)

    bs = list(bodies())
    schema = StructType([StructField("body", BinaryType()), StructField("value", BinaryType())])
    rows = [(bytearray(b), bytearray(b'{"content":"' + b + b'"}')) for b in bs]
    df = spark.createDataFrame(rows, schema)
    out = (df.selectExpr("body", "from_json(CAST(value AS STRING), 'content STRING').content AS c")
           .selectExpr("hex(body) AS b", "hex(CAST(c AS BINARY)) AS h", "length(c) AS n").collect())
    got = {r[0]: r for r in out}
    lines = ["# from_json('{\"content\":\"<body>\"}', 'content STRING') in Spark: body hex, the bytes of",
             "# content (hex; '-' for the empty string), length(content); 'null' when Spark gives null"]
    for b in bs:
        r = got[b.hex().upper()]
        h = "null" if r[1] is None else (r[1].lower() or "-")
        n = "null" if r[2] is None else str(r[2])
        lines.append(f"{b.hex() or '-'} {h} {n}")
    path = os.path.join(a.out, "from-json-strings.txt.gz")
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as z:
            z.write(("\n".join(lines) + "\n").encode())
    print(f"wrote {path} ({len(bs)} bodies)", file=sys.stderr)

    lines = ["# length(CAST(X'<hex>' AS STRING)) in Spark: raw bytes, not valid UTF-8; lines 'hex length'"]
    for c in LENGTH_CASES:
        h = c.replace(" ", "")
        n = spark.sql(f"SELECT length(CAST(X'{h}' AS STRING))").first()[0]
        lines.append(f"{h} {n}")
    path = os.path.join(a.out, "length.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    spark.stop()


if __name__ == "__main__":
    main()
