#!/usr/bin/env bash
# Create the venv the `mitmproxy` hop runs from: mitmproxy from PyPI (there is no usable Debian package),
# in ${XDG_CACHE_HOME:-~/.cache}/ssegate/mitmproxy, where ssegate looks for `bin/mitmdump` after PATH
# (or point SSEGATE_MITMDUMP at another mitmdump). About 30 s and 130 MB. Idempotent.
#
#   bash scripts/mitmproxy-venv.sh
set -euo pipefail
version=11.0.2
venv="${XDG_CACHE_HOME:-$HOME/.cache}/ssegate/mitmproxy"
if [[ -x $venv/bin/mitmdump ]] && "$venv/bin/mitmdump" --version 2>/dev/null | grep -q "Mitmproxy: $version"; then
    echo "mitmproxy $version is in $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "mitmproxy==$version"
"$venv/bin/mitmdump" --version | head -1
echo "mitmproxy $version installed in $venv"
