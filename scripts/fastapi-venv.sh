#!/usr/bin/env bash
# Create the venv the FastAPI test server runs from (tests/servers/fastapi_llm.py): FastAPI, uvicorn and
# sse-starlette from PyPI, pinned, in ${XDG_CACHE_HOME:-~/.cache}/ssegate/fastapi. About 8 s. Idempotent.
#
#   bash scripts/fastapi-venv.sh
#   bash scripts/fastapi-venv.sh --python   # prints the venv's python
set -euo pipefail
pins=(fastapi==0.165.0 uvicorn==0.55.0 sse-starlette==3.7.1)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/ssegate/fastapi"
have() {
    # Read whole before compared (a `| grep -q` closing the pipe early can fail under pipefail).
    local v
    v=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("fastapi"), m.version("uvicorn"), m.version("sse-starlette"))' 2>/dev/null || true)
    [[ $v == "0.165.0 0.55.0 3.7.1" ]]
}
if ! have; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
    have || { echo "fastapi-venv: ${pins[*]} did not install in $venv" >&2; exit 1; }
    echo "fastapi-venv: ${pins[*]} installed in $venv" >&2
fi
[[ ${1:-} == --python ]] && echo "$venv/bin/python"
exit 0
