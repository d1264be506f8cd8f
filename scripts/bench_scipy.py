#!/usr/bin/env python3
"""Time scipy.stats.ks_2samp(window, reference) on the inputs of core/benches/ks.rs.

The samples come from the same generator as the Rust bench (splitmix64 + Box-Muller,
reimplemented bit for bit); compare the printed checksums with the ones the bench prints.
Usage: python3 scripts/bench_scipy.py [--repeat N] [--ours criterion_dir]
With --ours (default target/criterion or $CARGO_TARGET_DIR/criterion if present), the table
also shows the Rust median time and the speed-up.
"""
import argparse
import json
import math
import os
import statistics
import time

import numpy as np
import scipy
from scipy import stats

MASK = (1 << 64) - 1
SIZES = [(100, 569), (500, 569), (1000, 569), (10000, 569), (1000, 10000), (20000, 100000)]
SHIFTS = [0.0, 0.3]


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        """Uniform on (0, 1]: 53 random bits plus one, times 2^-53 (exact in binary64)."""
        return float((self.next_u64() >> 11) + 1) * (1.0 / 9007199254740992.0)


def normals(seed, n, shift):
    rng = SplitMix64(seed)
    out = []
    while len(out) < n:
        u1 = rng.uniform()
        u2 = rng.uniform()
        r = math.sqrt(-2.0 * math.log(u1))
        theta = 2.0 * math.pi * u2
        out.append(r * math.cos(theta) + shift)
        out.append(r * math.sin(theta) + shift)
    return np.array(out[:n], dtype=np.float64)


def checksum(values):
    h = 0xCBF29CE484222325
    for bits in values.view(np.uint64).tolist():
        h = ((h ^ bits) * 0x00000100000001B3) & MASK
    return h


def time_call(fn, repeat):
    """Median and min seconds per call, after a warm-up; batches short calls."""
    fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    inner = max(1, int(0.05 / max(once, 1e-9)))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples), min(samples)


def criterion_median(directory, name):
    path = os.path.join(directory, "ks_evaluate", name, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"] * 1e-9
    except (OSError, KeyError, ValueError):
        return None


def fmt(seconds):
    if seconds is None:
        return "-"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    default_dir = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
    parser.add_argument("--ours", default=default_dir)
    args = parser.parse_args()

    print(f"scipy {scipy.__version__}, numpy {np.__version__}")
    rows = []
    for n_window, n_reference in SIZES:
        reference = normals(1_000_003 + n_reference, n_reference, 0.0)
        for shift in SHIFTS:
            window = normals(2_000_003 + n_window, n_window, shift)
            r = stats.ks_2samp(window, reference)
            print(
                f"config window={n_window} reference={n_reference} shift={shift}: "
                f"checksums {checksum(window):016x} {checksum(reference):016x}, "
                f"D={float(r.statistic)!r} p={float(r.pvalue):e}"
            )
            median, best = time_call(lambda: stats.ks_2samp(window, reference), args.repeat)
            ours = criterion_median(args.ours, f"{n_window}x{n_reference}_shift{shift:.1f}")
            rows.append((n_window, n_reference, shift, median, best, ours))

    print()
    print(f"{'window':>7} {'reference':>9} {'shift':>5} {'scipy median':>13} {'scipy min':>11}"
          f" {'ours median':>12} {'speed-up':>9}")
    for n_window, n_reference, shift, median, best, ours in rows:
        ratio = f"{median / ours:.1f}x" if ours else "-"
        print(f"{n_window:>7} {n_reference:>9} {shift:>5} {fmt(median):>13} {fmt(best):>11}"
              f" {fmt(ours):>12} {ratio:>9}")


if __name__ == "__main__":
    main()
