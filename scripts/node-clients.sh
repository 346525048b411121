#!/usr/bin/env bash
# Install the npm packages the tests run: the official OpenAI Node client (`openai`), read against a
# chain's entry, and the Vercel AI SDK (`ai`), whose `streamText` with its mock model serves a UI message
# stream (tests/servers/ai-sdk-server.js), into ${XDG_CACHE_HOME:-~/.cache}/ssegate/node-clients (its node_modules is what the tests put
# on NODE_PATH). From the npm registry, pinned; about 10 s and 60 MB. Idempotent.
#
#   bash scripts/node-clients.sh
#   bash scripts/node-clients.sh --dir   # prints the node_modules directory
set -euo pipefail
openai=7.60.0
ai=7.0.185
dir="${XDG_CACHE_HOME:-$HOME/.cache}/ssegate/node-clients"
modules=$dir/node_modules
installed() {
    # Read whole before compared (a `| grep -q` closing the pipe early can fail under pipefail).
    local v w
    v=$(node -e "console.log(require('$modules/openai/package.json').version)" 2>/dev/null || true)
    w=$(node -e "console.log(require('$modules/ai/package.json').version)" 2>/dev/null || true)
    [[ $v == "$openai" && $w == "$ai" ]]
}
if ! installed; then
    mkdir -p "$dir"
    [[ -f $dir/package.json ]] || echo '{"name":"ssegate-node-clients","private":true}' > "$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --silent "openai@$openai" "ai@$ai" >&2
    installed || { echo "node-clients: openai $openai and ai $ai did not install in $dir" >&2; exit 1; }
    echo "node-clients: openai $openai and ai $ai installed in $dir" >&2
fi
[[ ${1:-} == --dir ]] && echo "$modules"
exit 0
