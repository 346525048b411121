#!/usr/bin/env bash
# Create the venv the `litellm` hop runs from: LiteLLM's proxy (`litellm[proxy]` from PyPI; Debian has
# none) in ${XDG_CACHE_HOME:-~/.cache}/ssegate/litellm. The hop starts the venv's Python on its launcher
# (proxies/litellm/_base.py), so the venv gets `bin/litellm-python`, a link to its own python3, under a
# name no other program has on PATH (or point SSEGATE_LITELLM at a Python that can import litellm).
# About 60 s and 760 MB. Idempotent. 1.108.7 is the newest whose `proxy` extra installs from PyPI as
# this project's CI sees it (2026-12-07): later ones pin `litellm-enterprise`, `litellm-proxy-extras`
# or `litellm-proxy` releases that are not there.
#
#   bash scripts/litellm-venv.sh
set -euo pipefail
version=1.108.7
venv="${XDG_CACHE_HOME:-$HOME/.cache}/ssegate/litellm"
installed() {
    "$venv/bin/litellm-python" -c 'import importlib.metadata as m; print("LiteLLM", m.version("litellm"))' 2>/dev/null || true
}
if [[ -x $venv/bin/litellm-python ]] && [[ $(installed) == "LiteLLM $version" ]]; then
    echo "litellm $version is in $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "litellm[proxy]==$version"
ln -sf python3 "$venv/bin/litellm-python"
installed
echo "litellm $version installed in $venv"
