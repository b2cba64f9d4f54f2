#!/usr/bin/env bash
# Screenshot of the Ray dashboard's job page while the smoke study runs as a Ray Job, taken with headless
# Chromium (Debian package `chromium`). Writes docs/dashboard-job.png. Stops every Ray process of this user
# on this machine at the end (ray stop), so run it where no other Ray is needed.
#   bash docs/dashboard_screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RAY=.venv/bin/ray
export RAY_AUTH_MODE=disabled  # a loopback-only head for the picture: the dashboard page then asks no token
trap '$RAY stop --force >/dev/null 2>&1 || true' EXIT
$RAY start --head --num-cpus=2 --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port=8265 >/dev/null
sleep 5
job="smoke-$(date +%s)"
$RAY job submit --address http://127.0.0.1:8265 --no-wait --submission-id "$job" -- \
  "$PWD/.venv/bin/python" -m study.run --space smoke --subset kinetics-motion --storage /tmp/stgcn-dashboard-shot \
  --no-report >/dev/null
echo "job: $job; waiting for trials to report" >&2
sleep "${WAIT_S:-45}"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1000 \
  --virtual-time-budget=20000 --screenshot="$PWD/docs/dashboard-job.png" "http://127.0.0.1:8265/#/jobs/$job" 2>/dev/null
echo "wrote docs/dashboard-job.png" >&2
