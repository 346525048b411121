#!/usr/bin/env bash
# Instructions per byte of ssegate's SSE parser and of its peers (eventsource-stream, sse-stream), counted
# by `valgrind --tool=callgrind`, which does not depend on machine load.
#
#   scripts/parser-bench.sh
#
# Builds the `parser` bench, then for each input (small: ~60-byte events; 64k: 64 KiB events; tokens:
# 60-120-byte LLM chunks; all in 4 KiB reads) runs every parser alone under callgrind and once with no parser (`--only none`: building
# the input and the reads), and prints (parser's instructions - harness's) / input bytes. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind > /dev/null || { echo "parser-bench: needs valgrind (apt-get install -y valgrind)" >&2; exit 2; }
cargo bench --bench parser --no-run 2> /dev/null
exe=$(ls -t target/release/deps/parser-* | grep -v '\.d$' | head -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # PARSER INPUT -> total instructions
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$exe" --only "$1" --input "$2" > /dev/null 2> "$out/log" \
        || { cat "$out/log" >&2; exit 1; }
    grep -E '^(summary|totals):' "$out/cg" | head -1 | awk '{print $2}'
}
printf '%-8s %-20s %14s %18s\n' input parser instructions "instructions/byte"
for input in small 64k tokens; do
    base=$(count none "$input")
    bytes=$("$exe" --only none --input "$input" | awk '{print $2}')
    for p in ssegate eventsource-stream sse-stream; do
        total=$(count "$p" "$input")
        awk -v i="$input" -v p="$p" -v t="$total" -v b="$base" -v n="$bytes" \
            'BEGIN { printf "%-8s %-20s %14.0f %18.2f\n", i, p, t - b, (t - b) / n }'
    done
done
