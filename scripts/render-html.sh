#!/usr/bin/env bash
# Render an ssegate HTML report in headless Chromium and save a PNG, to check it displays.
#   apt-get install -y chromium        (Debian's package; nothing is downloaded at run time)
#   scripts/render-html.sh report.html report.png
set -euo pipefail
html=$(realpath "$1")
png=${2:-${html%.html}.png}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1100,900 --screenshot="$png" "file://$html" 2>/dev/null
test -s "$png"
echo "$png"
