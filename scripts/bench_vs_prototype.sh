#!/usr/bin/env bash
# Ours against the Python prototype, single-row POST /datadrift, in one run:
# wrk -> NGINX -> 3 x drift-api (2 workers evaluating) and wrk -> 1 drift-api, then
# wrk -> the prototype (scripts/prototype_server.py: FastAPI + scipy, one uvicorn process,
# window of 10 rows per feature, 30 ks_2samp per request) straight and behind an NGINX
# from the same template. Prints one line per point (requests/s, p50/p99/max, non-2xx, CPU
# per process group) and the ratios ours/prototype with the verdict on the targets
# (ours >= 100x the prototype, p99 < 25 ms through NGINX).
#
#   scripts/bench_vs_prototype.sh [seconds-per-point]      (default 20)
#
# It is scripts/bench_gateway.sh with POINTS=vs-prototype: every setting of that script
# applies (CONNS [32], THREADS [1], APIS [3], WORKERS [2 here], PROTO_CONNS [$CONNS],
# PROTO_NGINX [1], SKIP_BUILD, BIN_DIR, NGINX_WORKERS, NGINX_ACCESS_LOG). The prototype's
# dependencies (fastapi, uvicorn[standard], scipy, numpy) are installed on first use into a
# venv, $PROTO_VENV or ${CARGO_TARGET_DIR:-target}/prototype-venv (PyPI must be reachable).
# Needs: wrk, nginx (nginx-light), redis-server, curl, python3 (with venv).
set -euo pipefail
POINTS=vs-prototype exec "$(dirname "$0")/bench_gateway.sh" "$@"
