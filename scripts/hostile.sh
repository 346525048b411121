#!/usr/bin/env bash
# Hostile streams against the release binary: for each shape of tests/servers/hostile.py (and an origin
# with one 100 MiB line, and the worst valid case file), through `probe` and `check --url`, the exit code, wall time, peak RSS
# (GNU `time -v`) and what ssegate said. The table goes into BENCHMARKS.md. Build first:
# `cargo build --release`. Needs python3 and GNU time (Debian `time`); the zstd and brotli bombs need the
# `zstd` and `brotli` commands (Debian packages of the same names) and are skipped without them.
#
#   scripts/hostile.sh            # Markdown table on stdout
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ssegate
[[ -x $bin ]] || { echo "hostile: build first: cargo build --release" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "hostile: needs GNU time (apt-get install -y time)" >&2; exit 2; }

pids=()
work=$(mktemp -d)
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap stop EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # start PORT COMMAND…: run a server and wait for its "listening" line
    local port=$1; shift
    "$@" > "$work/server-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q listening "$work/server-$port.log" 2>/dev/null && return; sleep 0.05; done
    echo "hostile: server on $port did not start" >&2; exit 1
}
h=$(free_port); start "$h" python3 tests/servers/hostile.py "$h"
line=$(free_port); start "$line" python3 tests/servers/sse_origin.py "$line" --line-bytes 104857600 --gap-ms 100

# What ssegate said, in one cell: its error line, or the delivery and the findings that are not the
# usual header advice.
said() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
out, err = open(sys.argv[1]).read(), open(sys.argv[2]).read()
usual = {"missing-no-transform", "missing-x-accel-buffering", "close-delimited-body", "cacheable-stream"}
lines = [l for l in out.splitlines() if l.startswith("{")]
docs = []
for l in lines if len(lines) > 1 else [out]:
    try:
        docs.append(json.loads(l))
    except ValueError:
        pass
if not docs:
    said = [l for l in err.splitlines() if l.startswith("ssegate:")] or out.strip().splitlines()[-1:] or ["(nothing)"]
    print(said[0].replace("|", "\\|")[:160])
    sys.exit()
d = docs[-1]
if d.get("type") == "summary":
    s = d["data"]
    print(f"gate {'passed' if s['passed'] else 'failed'}: {len(docs) - 3} chains, failed {', '.join(s['failed']) or 'none'}")
    sys.exit()
f = [x["id"] for x in d.get("findings", []) if x["id"] not in usual]
print(f"{d.get('delivery')}, {d.get('events_total', len(d.get('events', [])))} events; " + ", ".join(f))
EOF
}

measure() { # measure LABEL ARGS…
    local label=$1; shift
    local started code
    started=$(date +%s.%N)
    set +e
    timeout 120 /usr/bin/time -v "$bin" "$@" > "$work/out" 2> "$work/err"
    code=$?
    set -e
    local wall; wall=$(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.2f} s')" "$started")
    local rss; rss=$(awk -F': ' '/Maximum resident/ {printf "%.1f MiB", $2/1024}' "$work/err")
    printf '| %s | %s | %s | %s | %s |\n' "$label" "$code" "$wall" "$rss" "$(said "$work/out" "$work/err")"
}
u="http://127.0.0.1:$h"
echo "| stream | exit | wall | peak RSS | what ssegate said |"
echo "|---|---|---|---|---|"
# Each shape through `probe`, then through `check --url` (the default matrix: every chain decodes its
# own copy of the stream, and its tap another, all at once).
shape() { # shape LABEL PATH [ARGS…]
    local label=$1 path=$2; shift 2
    measure "$label (\`probe\`)" probe "$u/$path" --format json "$@"
    measure "$label (\`check --url\`)" check --url "$u/$path" --format json "$@"
}
shape "20 MB firehose of tiny events" firehose
shape "firehose of events with 300-byte ids" long-ids
shape "gzip bomb, 200 MB of tiny events" gzip-bomb
if command -v zstd >/dev/null; then shape "zstd bomb, 200 MB of tiny events" zstd-bomb; fi
if command -v brotli >/dev/null; then shape "brotli bomb, 200 MB of tiny events" br-bomb; fi
shape "gzip bomb, one endless line of 1 GB of zeros" gzip-zeros
if command -v zstd >/dev/null; then shape "zstd bomb, one endless line of 1 GB of zeros" zstd-zeros; fi
if command -v brotli >/dev/null; then shape "brotli bomb, one endless line of 1 GB of zeros" br-zeros; fi
measure "one 100 MiB line, raw socket (\`--max-bytes 200000000\`)" probe "$u/long-line" --format json --max-bytes 200000000
measure "one 100 MiB line from an HTTP server" probe "http://127.0.0.1:$line/events" --format json --max-bytes 200000000
measure "one 100 MiB line (\`check --url\`)" check --url "$u/long-line" --format json
shape "endless bytes, no line break" endless
shape "invalid UTF-8" invalid-utf8
shape "NUL in data and id" nul
shape "1 byte a second (\`--duration 5s\`)" drip --duration 5s
shape "headers that never finish (\`--duration 5s\`)" headers-never-finish --duration 5s
shape "accepts, never answers (\`--duration 5s\`)" silent --duration 5s
shape "TCP reset mid-event" reset-mid-event
shape "garbage status line" garbage-status
shape "1 MiB of response headers" huge-headers
shape "bogus chunk size" bogus-chunk
shape "chunk longer than its size line" bad-chunk-crlf
shape "chunk size of 16 hex digits" bad-chunk-huge
shape "Content-Length shorter than the stream" short-length
shape "Content-Length longer than the body" long-length
shape "Content-Length never reached, connection left open (\`--duration 5s\`)" hanging-length --duration 5s
shape "redirect loop" redirect-loop
# The worst valid case file: the largest body a profile may describe (32 MiB), held until the end.
printf 'description: the largest valid body, held\ntarget:\n  profile: plain\n  overrides: {hold_until_end: true, events: {count: 32, size: 1048576, gap_ms: 100}}\nrequest: {duration_ms: 30000}\nexpect:\n  delivery: held-until-end\n' > "$work/worst.yaml"
measure "\`run\`, the worst valid case (32 × 1 MiB events, held)" run --no-report "$work/worst.yaml"
# A target that writes 300 MB of log before its ready line: the log is scanned as it grows, not re-read.
mkdir -p "$work/biglog"
cat > "$work/biglog/ssegate.yaml" <<YAML
target:
  command: ["sh", "-c", "head -c 300000000 /dev/zero | tr '\\\\0' x; echo; exec python3 $PWD/tests/servers/sse_origin.py \$PORT --gap-ms 100"]
  url: {path: /events}
  ready: {log: listening, timeout_ms: 60000}
matrix: [coalesce]
YAML
measure "\`check\`, a target that logs 300 MB before its ready line" check --config "$work/biglog/ssegate.yaml"
