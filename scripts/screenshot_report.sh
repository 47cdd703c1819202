#!/usr/bin/env bash
# Render a study report in headless Chromium and save a screenshot, to check that report.html displays.
#   scripts/screenshot_report.sh STUDY_DIR/report.html [OUT.png] [WIDTHxHEIGHT]
# Needs Chromium (Debian: apt-get update && apt-get install -y chromium). Nothing is fetched from the network:
# the report is self-contained (inline CSS, base64 figures) and Chromium's background services are off.
set -euo pipefail
html=${1:?usage: $0 REPORT.html [OUT.png] [WIDTHxHEIGHT]}
out=${2:-${html%.html}.png}
size=${3:-1200x2400}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "chromium not found: apt-get update && apt-get install -y chromium" >&2
  exit 3
fi
[ -f "$html" ] || { echo "$html: no such file" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
url="file://$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$profile" --screenshot="$(realpath -m "$out")" --window-size="${size/x/,}" "$url" \
  >/dev/null 2>&1 || true
[ -s "$out" ] || { echo "chromium wrote no screenshot for $url" >&2; exit 1; }
echo "$out"
