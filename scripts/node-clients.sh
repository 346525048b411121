#!/usr/bin/env bash
# Install the npm clients the tests run against a chain's entry: the official OpenAI Node client
# (`openai`), into ${XDG_CACHE_HOME:-~/.cache}/ssegate/node-clients (its node_modules is what the tests put
# on NODE_PATH). From the npm registry, pinned; about 5 s and 10 MB. Idempotent.
#
#   bash scripts/node-clients.sh
#   bash scripts/node-clients.sh --dir   # prints the node_modules directory
set -euo pipefail
openai=7.60.0
dir="${XDG_CACHE_HOME:-$HOME/.cache}/ssegate/node-clients"
modules=$dir/node_modules
installed() {
    # Read whole before searched (a `| grep -q` closing the pipe early can fail under pipefail).
    local v
    v=$(node -e "console.log(require('$modules/openai/package.json').version)" 2>/dev/null || true)
    [[ $v == "$openai" ]]
}
if ! installed; then
    mkdir -p "$dir"
    [[ -f $dir/package.json ]] || echo '{"name":"ssegate-node-clients","private":true}' > "$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --silent "openai@$openai" >&2
    installed || { echo "node-clients: openai $openai did not install in $dir" >&2; exit 1; }
    echo "node-clients: openai $openai installed in $dir" >&2
fi
[[ ${1:-} == --dir ]] && echo "$modules"
exit 0
