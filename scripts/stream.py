#!/usr/bin/env python3
"""Streams live-like rows to the drift monitor (fallback for `drift-sim`; stdlib only).

    python3 scripts/stream.py --target http://127.0.0.1:8002 --drift false --rows 2000
    python3 scripts/stream.py --target http://127.0.0.1:8002 --drift true  --rows 2000

Rows are posted as `{"columns": [...], "data": [[...], ...]}` batches to
POST {target}/v1/monitors/{monitor}/rows. The feature names and the per-column reference
statistics come from data/breast_cancer.csv (`target` excluded).

Generators (--mode):
  resample (default)  each value is drawn from the reference column (bootstrap) plus a
                      small Gaussian jitter (2 % of the column's sd), clipped to the
                      column's minimum. Without --drift, windows look like the reference,
                      so a KS test should not flag them.
  gaussian            each value ~ Normal(column mean, column sd). Many reference columns
                      are strongly skewed (areas, *_error, concavity), so with windows of
                      a few hundred rows the KS test flags about two thirds of the features
                      even WITHOUT --drift: use it to see drift everywhere, not as a
                      "no drift" baseline.
With --drift true, --feature (default mean_radius) is shifted by --shift-sd column sds
(default 1.0) in every row.

Exit status: 0 when every batch was accepted (2xx), 1 otherwise.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RETRY_STATUS = {429, 502, 503, 504}


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes", "on"):
        return True
    if t in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def load_reference(path: str) -> tuple[list[str], dict[str, list[float]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        cols = [h for h in header if h != "target"]
        idx = [header.index(h) for h in cols]
        values: dict[str, list[float]] = {h: [] for h in cols}
        for row in reader:
            if not row:
                continue
            for h, i in zip(cols, idx):
                values[h].append(float(row[i]))
    return cols, values


class Generator:
    def __init__(self, columns, values, mode, drift, feature, shift_sd, seed):
        self.columns = columns
        self.values = values
        self.mode = mode
        self.rng = random.Random(seed)
        self.mean = {h: statistics.fmean(v) for h, v in values.items()}
        self.sd = {h: statistics.stdev(v) for h, v in values.items()}
        self.min = {h: min(v) for h, v in values.items()}
        self.shift = {h: 0.0 for h in columns}
        if drift:
            if feature not in values:
                raise SystemExit(f"stream: unknown feature {feature!r}; known: {', '.join(columns)}")
            self.shift[feature] = shift_sd * self.sd[feature]

    def value(self, h: str) -> float:
        if self.mode == "gaussian":
            x = self.rng.gauss(self.mean[h], self.sd[h])
        else:
            x = self.rng.choice(self.values[h]) + self.rng.gauss(0.0, 0.02 * self.sd[h])
            x = max(x, self.min[h])
        x += self.shift[h]
        # 6 significant digits keep the JSON small; always finite.
        return float(f"{x:.6g}")

    def rows(self, n: int) -> list[list[float]]:
        return [[self.value(h) for h in self.columns] for _ in range(n)]


def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "drift-stream.py"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(getattr(e, "reason", e))


def main() -> int:
    ap = argparse.ArgumentParser(description="Stream rows to the drift monitor (drift-sim fallback).")
    ap.add_argument("--target", default="http://127.0.0.1:8002", help="gateway or API base URL")
    ap.add_argument("--drift", type=parse_bool, default=False, help="true|false: shift --feature")
    ap.add_argument("--rows", type=int, default=2000, help="rows to send in total")
    ap.add_argument("--rate", type=float, default=500.0, help="rows per second (0 = as fast as possible)")
    ap.add_argument("--batch", type=int, default=50, help="rows per request")
    ap.add_argument("--monitor", default="breast_cancer")
    ap.add_argument("--feature", default="mean_radius", help="feature shifted by --drift")
    ap.add_argument("--shift-sd", type=float, default=1.0, help="shift in column standard deviations")
    ap.add_argument("--mode", choices=["resample", "gaussian"], default="resample")
    ap.add_argument("--csv", default=os.path.join(ROOT, "data", "breast_cancer.csv"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    ap.add_argument("--retries", type=int, default=5, help="retries of a batch on 429/5xx/connection errors")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.rows < 0 or args.batch < 1 or args.rate < 0:
        ap.error("--rows must be >= 0, --batch >= 1, --rate >= 0")

    columns, values = load_reference(args.csv)
    gen = Generator(columns, values, args.mode, args.drift, args.feature, args.shift_sd, args.seed)
    url = f"{args.target.rstrip('/')}/v1/monitors/{args.monitor}/rows"

    sent = accepted = failed_batches = 0
    last_seq = None
    start = time.monotonic()
    while sent < args.rows:
        n = min(args.batch, args.rows - sent)
        body = json.dumps({"columns": columns, "data": gen.rows(n)}, separators=(",", ":")).encode()
        status, text = 0, ""
        for attempt in range(args.retries + 1):
            status, text = post(url, body, args.timeout)
            if status not in RETRY_STATUS and status != 0:
                break
            time.sleep(min(2.0, 0.1 * 2 ** attempt))
        sent += n
        if 200 <= status < 300:
            accepted += n
            try:
                last_seq = json.loads(text).get("seq", last_seq)
            except (ValueError, AttributeError):
                pass
        else:
            failed_batches += 1
            print(f"stream: batch of {n} rows failed: HTTP {status or 'connection error'}: {text[:300]}",
                  file=sys.stderr)
            if 400 <= status < 500 and status not in RETRY_STATUS:
                print("stream: client error, stopping (the request itself is wrong)", file=sys.stderr)
                break
        if args.rate > 0:
            due = start + sent / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if not args.quiet and sent % max(args.batch * 20, 1) < args.batch:
            print(f"stream: {sent}/{args.rows} rows sent", file=sys.stderr)

    elapsed = max(time.monotonic() - start, 1e-9)
    summary = {"monitor": args.monitor, "drift": args.drift, "mode": args.mode, "rows_sent": sent,
               "rows_accepted": accepted, "failed_batches": failed_batches,
               "elapsed_s": round(elapsed, 3), "rows_per_s": round(accepted / elapsed, 1), "last_seq": last_seq}
    print(json.dumps(summary))
    return 0 if failed_batches == 0 and accepted == args.rows else 1


if __name__ == "__main__":
    sys.exit(main())
