#!/usr/bin/env bash
# Peak RSS of ssegate on hostile streams, one line each (`/usr/bin/time -v`). Build first:
# `cargo build --release`. Needs python3 and GNU time (Debian `time`).
#
#   scripts/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ssegate
[[ -x $bin ]] || { echo "memory: build first: cargo build --release" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "memory: needs GNU time (apt-get install -y time)" >&2; exit 2; }

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # start PORT COMMAND…: run a server and wait for its "listening" line
    local port=$1; shift
    "$@" > "/tmp/ssegate-memory-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q listening "/tmp/ssegate-memory-$port.log" 2>/dev/null && return; sleep 0.05; done
    echo "memory: server on $port did not start" >&2; exit 1
}
fire=$(free_port); start "$fire" python3 scripts/firehose.py "$fire" 20000000
bomb=$(free_port); start "$bomb" python3 scripts/firehose.py "$bomb" 200000000 --gzip
line=$(free_port); start "$line" python3 tests/servers/sse_origin.py "$line" --line-bytes 104857600 --gap-ms 100

measure() { # measure LABEL ARGS…
    local label=$1; shift
    local err; err=$(mktemp)
    /usr/bin/time -v "$bin" "$@" > /dev/null 2> "$err" || true
    printf '%-58s %8s KiB  %s\n' "$label" \
        "$(awk -F': ' '/Maximum resident/ {print $2}' "$err")" \
        "$(awk '/Elapsed/ {print $NF}' "$err")"
    rm -f "$err"
}
printf '%-58s %12s  %s\n' "stream" "peak RSS" "wall"
measure "probe --format json, 20 MB firehose of tiny events" probe "http://127.0.0.1:$fire/" --format json
measure "probe (human), 20 MB firehose of tiny events" probe "http://127.0.0.1:$fire/"
measure "probe --format json, gzip of 200 MB of tiny events" probe "http://127.0.0.1:$bomb/" --format json
measure "probe, one 100 MiB line (--max-bytes 200000000)" probe "http://127.0.0.1:$line/events" --max-bytes 200000000
measure "check --url --format json, 20 MB firehose, default matrix" check --url "http://127.0.0.1:$fire/" --format json
# The worst valid case file: the largest body a profile may describe (32 MiB), held until the end.
worst=$(mktemp -d)
printf 'description: the largest valid body, held\ntarget:\n  profile: plain\n  overrides: {hold_until_end: true, events: {count: 32, size: 1048576, gap_ms: 100}}\nrequest: {duration_ms: 30000}\nexpect:\n  delivery: held-until-end\n' > "$worst/worst.yaml"
measure "run, the worst valid case (32 x 1 MiB events, held)" run --no-report "$worst/worst.yaml"
rm -rf "$worst"
