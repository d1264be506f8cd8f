#!/usr/bin/env bash
# Cross-checks the KS engine against scipy on freshly generated random cases (beyond the
# committed vectors). Installs numpy and scipy into a venv under target/ on first use.
#   scripts/ks_crosscheck.sh [SEED] [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-1}
N=${2:-2000}
VENV=target/ks-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q numpy "scipy==1.17.1" || "$VENV/bin/pip" install -q numpy scipy
fi
cargo build -q -p drift-worker
OUT=target/ks-crosscheck
mkdir -p "$OUT"
"$VENV/bin/python" scripts/ks_crosscheck/gen_cases.py "$SEED" "$N" "$OUT/cases-$SEED.json"
target/debug/drift-worker ks --cases "$OUT/cases-$SEED.json" > "$OUT/ours-$SEED.jsonl"
python3 scripts/ks_crosscheck/compare.py "$OUT/cases-$SEED.json" "$OUT/ours-$SEED.jsonl"
