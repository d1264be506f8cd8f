#!/usr/bin/env python3
"""Generate core/tests/data/stats-vectors.json: numpy/scipy reference values for
drift_core::stats (chi-square, chi2.sf, normed Wasserstein, decile bins, PSI, Jensen-Shannon).

Deterministic (fixed seed; the file records the numpy and scipy versions). Usage:
    python3 scripts/stats_vectors.py [output]
The PSI, zero filling and binning below are written plainly after Evidently's code
(evidentlyai/evidently, src/evidently/legacy/calculations/stattests/utils.py
`get_binned_data`, psi.py, jensenshannon.py, wasserstein_distance_norm.py), except the
bins: the reference's deciles instead of Evidently's Sturges histogram of both samples
(see core/src/stats/effects.rs).
"""
import json
import math
import os
import sys

import numpy as np
import scipy
from scipy import special, stats
from scipy.spatial import distance

SEED = 20260502
BINS = 10

# The counts core/tests/stats_vectors.rs asserts.
N_CHI2_SF = 208
N_CHISQUARE = 170
N_NUMERIC = 66
N_CATEGORICAL = 40


def fl(values):
    return [float(v) for v in values]


# --- chi-square -------------------------------------------------------------------------


def chisquare_reference(observed, expected):
    """scipy.stats.chisquare with drift_core's rules for degenerate bins (chisq.rs)."""
    observed = np.asarray(observed, dtype=float)
    expected = np.asarray(expected, dtype=float)
    keep = ~((observed == 0) & (expected == 0))
    observed, expected = observed[keep], expected[keep]
    if np.any((expected == 0) & (observed != 0)):
        return math.inf, 0.0, max(len(observed) - 1, 0)
    if len(observed) < 2:
        return 0.0, 1.0, 0
    r = stats.chisquare(observed, expected)
    return float(r.statistic), float(r.pvalue), len(observed) - 1


def chisquare_case(name, observed, expected):
    statistic, p_value, df = chisquare_reference(observed, expected)
    return {
        "name": name,
        "observed": fl(observed),
        "expected": fl(expected),
        # JSON has no infinity: null stands for +inf.
        "statistic": None if math.isinf(statistic) else statistic,
        "p_value": p_value,
        "df": df,
    }


def chisquare_cases(rng):
    cases = []
    # Counts under the null: multinomial draws from the expected proportions. Small
    # Dirichlet concentrations give tiny proportions, hence zero observed counts.
    while len(cases) < 100:
        k = int(rng.integers(2, 61))
        alpha = float(rng.choice([0.3, 1.0, 5.0]))
        props = rng.dirichlet(np.full(k, alpha))
        total = int(rng.integers(20, 5001))
        observed = rng.multinomial(total, props)
        cases.append(chisquare_case(f"null-{len(cases)}", observed, props * total))
    # A zero-count bin in observed for sure: one proportion made tiny.
    for i in range(20):
        k = int(rng.integers(2, 61))
        props = rng.dirichlet(np.ones(k))
        props[int(rng.integers(0, k))] = 1e-5
        props /= props.sum()
        total = int(rng.integers(20, 2001))
        observed = rng.multinomial(total, props)
        if observed.min() > 0:
            # Move the tiny bin's count elsewhere: the totals must still agree.
            j = int(np.argmin(props))
            observed[int(np.argmax(observed))] += observed[j]
            observed[j] = 0
        cases.append(chisquare_case(f"zero-observed-{i}", observed, props * total))
    # Drift: counts from other proportions, large totals, p from about 1e-10 down to
    # underflow (1e-50, 1e-200 and past 1e-300 among them).
    for i in range(25):
        k = int(rng.integers(2, 61))
        props = rng.dirichlet(np.full(k, 2.0))
        other = rng.dirichlet(np.full(k, 2.0))
        strength = [0.02, 0.05, 0.1, 0.2, 0.4][i % 5]
        drifted = (1 - strength) * props + strength * other
        total = int(rng.choice([2_000, 20_000, 200_000]))
        observed = rng.multinomial(total, drifted)
        cases.append(chisquare_case(f"drift-{i}", observed, props * total))
    # p near 1: expected proportions equal to the observed ones up to a small jitter.
    for i in range(15):
        k = int(rng.integers(2, 61))
        total = int(rng.integers(1_000, 1_000_001))
        observed = rng.multinomial(total, rng.dirichlet(np.full(k, 5.0)))
        props = (observed + 0.5) * (1 + 0.05 * rng.standard_normal(k) / np.sqrt(observed + 1))
        props /= props.sum()
        cases.append(chisquare_case(f"near-one-{i}", observed, props * total))
    # Degenerate bins (drift_core's rules, not scipy's NaN).
    degenerate = [
        ([10, 0, 20, 30], [20, 0, 20, 20]),
        ([0, 5, 0, 7, 0], [0, 6, 0, 6, 0]),
        ([3, 1, 8], [4, 0, 8]),
        ([0, 2], [0, 0]),
        ([12, 0], [12, 0]),
        ([0, 0, 0], [0, 0, 0]),
        ([4], [4]),
        ([5, 0, 0, 9], [7, 0, 7, 0]),
        ([0, 40, 60], [1e-9, 40, 60 - 1e-9]),
        ([1, 0, 99], [0.5, 0.5, 99]),
    ]
    for i, (o, e) in enumerate(degenerate):
        cases.append(chisquare_case(f"degenerate-{i}", np.array(o, float), np.array(e, float)))
    assert len(cases) == N_CHISQUARE, len(cases)
    return cases


def chi2_sf_cases():
    cases = []
    dfs = [0.5, 1, 1.5, 2, 2.7, 3, 5, 9, 10, 17.3, 29, 59, 99, 250, 999, 10_000]
    ratios = [1e-6, 0.01, 0.3, 0.8, 0.95, 1.0, 1.05, 1.3, 2.0, 5.0]
    for df in dfs:
        for r in ratios:
            x = df * r
            cases.append({"x": float(x), "df": float(df), "sf": float(special.chdtrc(df, x))})
    # Far tails: each df at sf near 1e-50, 1e-200 and 1e-300.
    for df in dfs:
        for target in [1e-50, 1e-200, 1e-300]:
            x = float(stats.chi2.isf(target, df))
            cases.append({"x": x, "df": float(df), "sf": float(special.chdtrc(df, x))})
    assert len(cases) == N_CHI2_SF, len(cases)
    return cases


# --- effect sizes ------------------------------------------------------------------------


def fill_zeroes(percents):
    """get_binned_data(..., feel_zeroes=True) in Evidently's utils.py, for one vector."""
    percents = np.array(percents, dtype=float)
    np.place(
        percents,
        percents == 0,
        min(percents[percents != 0]) / 10**6
        if min(percents[percents != 0]) <= 0.0001
        else 0.0001,
    )
    return percents


def psi(reference_percents, current_percents):
    """Evidently's psi.py after the zero filling of each vector."""
    reference_percents = fill_zeroes(reference_percents)
    current_percents = fill_zeroes(current_percents)
    psi_values = (reference_percents - current_percents) * np.log(
        reference_percents / current_percents
    )
    return float(np.sum(psi_values))


def jensenshannon(reference_percents, current_percents):
    """Evidently's jensenshannon.py: no zero filling (feel_zeroes=False), natural log."""
    return float(distance.jensenshannon(reference_percents, current_percents))


def wasserstein_normed(reference, current):
    """Evidently's wasserstein_distance_norm.py."""
    norm = max(float(np.std(reference)), 0.001)
    return float(stats.wasserstein_distance(reference, current) / norm)


def decile_edges(reference):
    return np.unique(np.quantile(reference, np.arange(1, BINS) / BINS))


def shares(edges, values):
    bins = np.searchsorted(edges, values, side="left")
    return np.bincount(bins, minlength=len(edges) + 1) / len(values)


def numeric_case(name, reference, current):
    reference = np.sort(np.asarray(reference, dtype=float))
    current = np.sort(np.asarray(current, dtype=float))
    edges = decile_edges(reference)
    reference_shares = shares(edges, reference)
    current_shares = shares(edges, current)
    return {
        "name": name,
        "reference": fl(reference),
        "current": fl(current),
        "wasserstein": float(stats.wasserstein_distance(reference, current)),
        "std_reference": float(np.std(reference)),
        "wasserstein_normed": wasserstein_normed(reference, current),
        "edges": fl(edges),
        "reference_shares": fl(reference_shares),
        "current_shares": fl(current_shares),
        "psi": psi(reference_shares, current_shares),
        "jensenshannon": jensenshannon(reference_shares, current_shares),
    }


def numeric_cases(rng):
    cases = []

    def size():
        return int(rng.integers(20, 601))

    kinds = [
        ("normal", lambda n: rng.normal(0, 1, n), lambda n: rng.normal(0, 1, n)),
        ("shifted", lambda n: rng.normal(5, 2, n), lambda n: rng.normal(5 + rng.uniform(0.1, 3), 2, n)),
        ("scaled", lambda n: rng.normal(0, 1, n), lambda n: rng.normal(0, rng.uniform(0.3, 3), n)),
        ("lognormal", lambda n: rng.lognormal(0, 1, n), lambda n: rng.lognormal(0.2, 1.2, n)),
        ("poisson-ties", lambda n: rng.poisson(2.0, n), lambda n: rng.poisson(2.5, n)),
        ("rounded-ties", lambda n: np.round(rng.normal(0, 1, n), 1), lambda n: np.round(rng.normal(0.3, 1, n), 1)),
        ("large-offset", lambda n: 1e6 + rng.normal(0, 1e-3, n), lambda n: 1e6 + rng.normal(0, 1e-3, n)),
        ("outside", lambda n: rng.uniform(0, 1, n), lambda n: rng.uniform(2, 3, n)),
        ("binary", lambda n: rng.integers(0, 2, n), lambda n: rng.integers(0, 2, n)),
        ("mixed", lambda n: rng.normal(0, 1, n), lambda n: np.concatenate([rng.normal(0, 1, n // 2), rng.exponential(3, n - n // 2)])),
    ]
    for i in range(6):
        for name, reference, current in kinds:
            cases.append(numeric_case(f"{name}-{i}", reference(size()), current(size())))
    # Small or degenerate references: a constant one (normed by 0.001) and tiny samples.
    cases.append(numeric_case("constant-reference", np.full(20, 3.0), rng.normal(3, 1, 50)))
    cases.append(numeric_case("identical", np.arange(30.0), np.arange(30.0)))
    cases.append(numeric_case("one-value-each", [1.5], [2.0]))
    cases.append(numeric_case("two-and-three", [0.0, 1.0], [0.5, 0.5, 4.0]))
    cases.append(numeric_case("negative-zero", [-0.0, 0.0, 0.0, 1.0], [0.0, -0.0, 2.0]))
    cases.append(numeric_case("current-one-bin", rng.normal(0, 1, 200), np.full(40, 0.0)))
    assert len(cases) == N_NUMERIC, len(cases)
    return cases


def categorical_case(name, reference_counts, current_counts):
    reference_shares = np.asarray(reference_counts, float) / np.sum(reference_counts)
    current_shares = np.asarray(current_counts, float) / np.sum(current_counts)
    return {
        "name": name,
        "reference_shares": fl(reference_shares),
        "current_shares": fl(current_shares),
        "psi": psi(reference_shares, current_shares),
        "jensenshannon": jensenshannon(reference_shares, current_shares),
    }


def categorical_cases(rng):
    cases = []
    for i in range(30):
        k = int(rng.integers(2, 41))
        props = rng.dirichlet(np.full(k, float(rng.choice([0.2, 1.0, 4.0]))))
        other = (1 - 0.3 * (i % 3)) * props + 0.3 * (i % 3) * rng.dirichlet(np.ones(k))
        reference = rng.multinomial(int(rng.integers(30, 2001)), props)
        current = rng.multinomial(int(rng.integers(30, 2001)), other)
        cases.append(categorical_case(f"multinomial-{i}", reference, current))
    # Shares at or below 1e-4, so that the zero filling uses min / 1e6.
    for i in range(5):
        k = int(rng.integers(3, 30))
        props = rng.dirichlet(np.ones(k))
        props[0] = 2e-6
        props[1] = 0.0
        props /= props.sum()
        reference = rng.multinomial(1_000_000, props)
        reference[0] = max(reference[0], 1)
        current = rng.multinomial(5_000, np.roll(props, 1))
        cases.append(categorical_case(f"tiny-share-{i}", reference, current))
    cases.append(categorical_case("identical", [3, 0, 5, 2], [3, 0, 5, 2]))
    cases.append(categorical_case("disjoint", [4, 6, 0, 0], [0, 0, 1, 9]))
    cases.append(categorical_case("new-category", [50, 50, 0], [45, 45, 10]))
    cases.append(categorical_case("lost-category", [30, 30, 40], [50, 50, 0]))
    cases.append(categorical_case("binary", [1, 999], [2, 998]))
    assert len(cases) == N_CATEGORICAL, len(cases)
    return cases


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "core", "tests", "data", "stats-vectors.json"
    )
    rng = np.random.default_rng(SEED)
    data = {
        "generator": "scripts/stats_vectors.py",
        "seed": SEED,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "bins": BINS,
        "chi2_sf": chi2_sf_cases(),
        "chisquare": chisquare_cases(rng),
        "numeric": numeric_cases(rng),
        "categorical": categorical_cases(rng),
    }
    with open(out, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(
        f"{out}: {len(data['chi2_sf'])} chi2.sf, {len(data['chisquare'])} chisquare, "
        f"{len(data['numeric'])} numeric, {len(data['categorical'])} categorical, "
        f"{os.path.getsize(out)} bytes"
    )


if __name__ == "__main__":
    main()
