#!/usr/bin/env python3
"""Compares `drift-worker ks` output with scipy cases by the project's matching rule.
Usage: compare.py CASES.json OUTPUT.jsonl"""
import json, sys, math
cases = {c['name']: c for c in json.load(open(sys.argv[1]))['cases']}
bad = 0; n = 0
for line in open(sys.argv[2]):
    o = json.loads(line); c = cases[o['name']]; n += 1
    if 'error' in o:
        print('ERR', o['name'], o['error']); bad += 1; continue
    p, q = o['pvalue'], c['pvalue']
    probs = []
    if not abs(o['statistic'] - c['statistic']) <= 1e-15: probs.append(f"stat {o['statistic']!r} vs {c['statistic']!r}")
    if p is None: p = float('nan')
    if not ((math.isnan(p) and math.isnan(q)) or (p <= 1e-300 and q <= 1e-300) or abs(p - q) <= 1e-9 * abs(q)):
        probs.append(f"p {p!r} vs {q!r} rel {abs(p-q)/max(abs(q),1e-300):.2e}")
    if o['statistic_location'] != c['statistic_location']: probs.append(f"loc {o['statistic_location']} vs {c['statistic_location']}")
    if o['statistic_sign'] != c['statistic_sign']: probs.append('sign')
    if o['effective_method'] != c['effective_method']: probs.append(f"method {o['effective_method']} vs {c['effective_method']}")
    if probs:
        bad += 1; print(o['name'], '; '.join(probs))
print(f"{n} cases, {bad} mismatches")
mx = 0; worst = None
for line in open(sys.argv[2]):
    o = json.loads(line); c = cases[o['name']]
    if 'error' in o or o['pvalue'] is None: continue
    p, q = o['pvalue'], c['pvalue']
    if q > 1e-300:
        r = abs(p - q) / q
        if r > mx: mx = r; worst = o['name']
print('max rel p diff', mx, worst)
sys.exit(1 if bad else 0)
