#!/usr/bin/env python3
"""Random ks_2samp cases from scipy (ties, -0.0, all methods and alternatives), in the
format of core/tests/data/ks_public.json.  Usage: gen_cases.py SEED N OUT.json [MAXN]"""
import json, sys, warnings, math
import numpy as np
from scipy import stats

def case(name, x, y, alt, method):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = stats.ks_2samp(x, y, alternative=alt, method='asymp' if method == 'asymptotic' else method)
    eff = 'exact'
    msgs = [str(m.message) for m in w]
    if method == 'asymptotic' or any('asymp' in m for m in msgs) or (method == 'auto' and max(len(x), len(y)) > 10000):
        eff = 'asymptotic'
    return dict(name=name, x=[float(v) for v in x], y=[float(v) for v in y], alternative=alt, method=method,
                statistic=float(r.statistic), pvalue=float(r.pvalue), statistic_location=float(r.statistic_location),
                statistic_sign=int(r.statistic_sign), effective_method=eff, warnings=msgs)

def main(seed, n_cases, out, maxn=3000, mode='mixed'):
    rng = np.random.default_rng(seed)
    cases = []
    alts = ['two-sided', 'less', 'greater']
    for k in range(n_cases):
        kind = rng.integers(0, 8)
        def size():
            r = rng.random()
            if r < 0.3: return int(rng.integers(1, 30))
            if r < 0.6: return int(rng.integers(30, 300))
            if r < 0.9: return int(rng.integers(300, maxn))
            return int(rng.choice([569, 1000, 500, 250, 100, 2000]))
        n1, n2 = size(), size()
        if rng.random() < 0.15: n2 = n1
        if kind == 0:   # ties from small int set
            x = rng.integers(0, int(rng.integers(2, 8)), n1).astype(float)
            y = rng.integers(0, int(rng.integers(2, 8)), n2).astype(float)
        elif kind == 1: # negzero mix
            x = rng.choice([-0.0, 0.0, 1.0, -1.0, 2.0], n1)
            y = rng.choice([-0.0, 0.0, 1.0, 3.0], n2)
        else:
            shift = float(rng.choice([0, 0, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5]))
            scale = float(rng.choice([1, 1, 1, 0.5, 2]))
            x = rng.normal(shift, scale, n1)
            y = rng.normal(0, 1, n2)
            if rng.random() < 0.2:
                x = np.round(x, 1); y = np.round(y, 1)
        alt = alts[rng.integers(0, 3)]
        method = ['auto', 'auto', 'exact', 'asymptotic'][rng.integers(0, 4)]
        cases.append(case(f"r{seed}_{k}_{kind}_{n1}x{n2}_{alt}_{method}", x, y, alt, method))
    json.dump({"meta": {"seed": seed}, "cases": cases}, open(out, 'w'))

if __name__ == '__main__':
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 3000)
