#!/usr/bin/env bash
# Wall time of the 2x2 grid `python src/train.py -m model.optimizer.lr=1e-2,1e-3
# data.batch_size=32,64` with the basic launcher (one job after another) and with joblib (2 workers),
# imports included. Run on a quiet machine (`uptime` load below 0.5) after `make install`; extra
# arguments are added to both sweeps (e.g. trainer.max_epochs=5).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TIMEFORMAT='%R s'
out=$(mktemp -d)
grid=(-m model.optimizer.lr=1e-2,1e-3 data.batch_size=32,64 "$@")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
for launcher in basic joblib; do
  extra=()
  [[ $launcher == joblib ]] && extra=(hydra.launcher.n_jobs=2)
  echo "$launcher: python src/train.py ${grid[*]} hydra/launcher=$launcher ${extra[*]}"
  time "$PY" src/train.py "${grid[@]}" hydra/launcher=$launcher "${extra[@]}" \
    hydra.sweep.dir="$out/$launcher" >"$out/$launcher.log" 2>&1
  echo "  jobs with test metrics: $(grep -l test/acc "$out/$launcher"/*/csv/metrics.csv | wc -l)"
done
