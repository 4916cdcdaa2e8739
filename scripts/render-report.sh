#!/usr/bin/env bash
# Renders a report's HTML page to a PNG screenshot and a printed PDF with headless Chromium
# (Debian's chromium, installed here when missing), to look at a report as a reader or a printer
# would. Usage: scripts/render-report.sh REPORT.html [OUT_PREFIX]  -> OUT_PREFIX.png, OUT_PREFIX.pdf
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "--help" ]; then
  echo "usage: scripts/render-report.sh REPORT.html [OUT_PREFIX]"
  echo "writes OUT_PREFIX.png (a 1200 px wide screenshot, up to 16000 px of the page) and OUT_PREFIX.pdf (printed, A4)"
  [ $# -lt 1 ] && exit 2 || exit 0
fi
html=$(realpath "$1")
prefix=${2:-${html%.html}}
. "$(dirname "$0")/lib/apt-install-missing.sh"
apt_install_missing render-report chromium
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --hide-scrollbars)
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium "${flags[@]}" --user-data-dir="$profile" --window-size=1200,16000 --screenshot="$prefix.png" \
  "file://$html" >/dev/null 2>&1
chromium "${flags[@]}" --user-data-dir="$profile" --no-pdf-header-footer --print-to-pdf="$prefix.pdf" \
  "file://$html" >/dev/null 2>&1
echo "render-report: $prefix.png, $prefix.pdf"
