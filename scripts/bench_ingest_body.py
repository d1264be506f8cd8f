#!/usr/bin/env python3
"""Writes an ingest body of BATCH reference rows (JSON), or with --resp the same batch as
N raw EVALSHA commands of the ingest script (RESP), for scripts/bench_ingest.sh."""
import csv
import json
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "data", "breast_cancer.csv")) as f:
    rows = list(csv.reader(f))
header = rows[0][:-1]  # drop target
data = [[float(v) for v in r[:-1]] for r in rows[1:]]
batch = int(sys.argv[1])
chosen = [data[i % len(data)] for i in range(batch)]
if "--resp" not in sys.argv:
    json.dump({"columns": header, "data": chosen}, sys.stdout)
    sys.exit(0)
sha, version, n = sys.argv[3], sys.argv[4], int(sys.argv[5])
base = "drift:{breast_cancer}"
keys = [f"{base}:config", f"{base}:seq", f"{base}:events", f"{base}:jobs", f"{base}:stats"]
keys += [f"{base}:win:{f}" for f in header]
args = [version.encode(), str(batch).encode(), b"1000", b"100000"]
for j in range(len(header)):
    for r in chosen:
        args.append(struct.pack("<d", r[j]))
parts = [b"EVALSHA", sha.encode(), str(len(keys)).encode()] + [k.encode() for k in keys] + args
cmd = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
out = sys.stdout.buffer
for _ in range(n):
    out.write(cmd)
