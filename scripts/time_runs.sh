#!/usr/bin/env bash
# Wall time of the embedded default run (`python src/train.py`, imports included) and of the fast
# test suite, on this machine. Run after `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TIMEFORMAT='%R s'
out=$(mktemp -d)
echo "default run: python src/train.py"
time "$PY" src/train.py hydra.run.dir="$out/run" >"$out/run.log" 2>&1
grep -E "test/acc" "$out/run.log" | tail -1
echo "fast test suite: pytest"
time "$PY" -m pytest -q -p no:cacheprovider >"$out/tests.log" 2>&1
tail -1 "$out/tests.log"
