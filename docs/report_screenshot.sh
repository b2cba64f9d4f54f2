#!/usr/bin/env bash
# Picture of the top of a study's report page (the answer, the next command, the first trials), taken with headless
# Chromium (Debian package `chromium`). Writes docs/report-top.png.
#   bash docs/report_screenshot.sh studies/NAME
set -euo pipefail
page="$(cd "${1:?usage: bash docs/report_screenshot.sh STUDY_DIR}" && pwd)/report/index.html"
cd "$(dirname "$0")/.."
[ -f "$page" ] || { echo "no report at $page: python -m reports.build $1" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" --window-size=1280,900 \
  --screenshot="$PWD/docs/report-top.png" "file://$page" 2>/dev/null
echo "wrote docs/report-top.png from $page" >&2
