#!/usr/bin/env bash
# Create the venv the `mitmproxy` hop runs from: mitmproxy from PyPI (there is no usable Debian package),
# in ${XDG_CACHE_HOME:-~/.cache}/ssegate/mitmproxy, where ssegate looks for `bin/mitmdump` after PATH
# (or point SSEGATE_MITMDUMP at another mitmdump). About 30 s and 130 MB. Idempotent.
#
#   bash scripts/mitmproxy-venv.sh
set -euo pipefail
version=11.0.2
venv="${XDG_CACHE_HOME:-$HOME/.cache}/ssegate/mitmproxy"
# The version is read whole before it is searched: `mitmdump --version | grep -q` (or `| head -1`) closes
# the pipe early, mitmdump dies of the broken pipe, and under pipefail that failed the script.
installed() { "$venv/bin/mitmdump" --version 2>/dev/null || true; }
if [[ -x $venv/bin/mitmdump ]] && [[ $(installed) == *"Mitmproxy: $version"* ]]; then
    echo "mitmproxy $version is in $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "mitmproxy==$version"
installed | sed -n 1p
echo "mitmproxy $version installed in $venv"
