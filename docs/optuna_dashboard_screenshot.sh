#!/usr/bin/env bash
# Screenshot of optuna-dashboard (python -m study.watch) on the kinetics-motion journal while the learning-rate study
# runs, taken with headless Chromium (Debian package `chromium`) once EPOCHS (default 14) epochs are in the journal
# (op code 7: an intermediate value). Writes docs/optuna-dashboard.png. The study runs under /tmp/stgcn-watch-shot
# and is stopped with Ctrl-C once the picture is taken (resumable, not needed after).
#   bash docs/optuna_dashboard_screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
storage=/tmp/stgcn-watch-shot
name="watch-$(date +%s)"
$PY -m study.run --space sgd_lr --storage "$storage" --name "$name" --no-report -q &
study=$!
trap 'kill -INT $study 2>/dev/null || true; kill ${watch:-} 2>/dev/null || true; wait' EXIT
journal="$storage/$name/optuna/kinetics-motion.journal"
echo "study $name: waiting for trials to report epochs" >&2
until [ -f "$journal" ] && [ "$(grep -c "\"op_code\":7," "$journal" 2>/dev/null || true)" -ge "${EPOCHS:-14}" ]; do
  sleep 5
  kill -0 $study 2>/dev/null || { echo "the study ended before enough epochs were reported" >&2; exit 1; }
done
$PY -m study.watch "$name" --storage "$storage" --port 8090 > /tmp/stgcn-watch.out &
watch=$!
sleep 5
url=$(grep '^kinetics-motion:' /tmp/stgcn-watch.out | sed 's/^kinetics-motion: //')
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1000 \
  --virtual-time-budget=20000 --screenshot="$PWD/docs/optuna-dashboard.png" "${url}studies/0" 2>/dev/null
echo "wrote docs/optuna-dashboard.png from ${url}studies/0" >&2
