#!/usr/bin/env bash
# Run the conformance suite N times with every core saturated by busy loops, and count verdict flips.
#
#   scripts/stress.sh [RUNS] [--heavy] [-- extra `ssegate run` arguments]
#
# Starts one `yes > /dev/null` per core (by PID, stopped on every exit path; `--heavy` adds a `cargo build
# --release` of this tree into a private target directory, in a loop, in its own process group), runs
# `target/release/ssegate run --no-report` RUNS times (default 10), and prints per run the failures and the
# wall time against the longest case, then a summary: runs, flips per case, cases measured again alone
# (their first measurement failed on a starved machine) and inconclusive ones, and the worst
# wall/longest ratio. Exits 1 when any case failed in any run. Build first: `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=10
if [[ $# -gt 0 && $1 != "--" ]]; then
    runs=$1
    shift
fi
heavy=false
if [[ ${1:-} == "--heavy" ]]; then
    heavy=true
    shift
fi
[[ ${1:-} == "--" ]] && shift
bin=target/release/ssegate
[[ -x $bin ]] || { echo "stress: build first: cargo build --release" >&2; exit 2; }

pids=()
groups=()
build_dir=$(mktemp -d)
stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for g in "${groups[@]}"; do kill -- "-$g" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$build_dir"
}
trap stop EXIT INT TERM
for _ in $(seq "$(nproc)"); do
    yes > /dev/null &
    pids+=($!)
done
if $heavy; then
    setsid bash -c "while :; do rm -rf '$build_dir/t'; cargo build --release --target-dir '$build_dir/t' > /dev/null 2>&1; done" &
    groups+=($!)
fi
echo "stress: ${#pids[@]} busy loops (pids ${pids[*]}), ${#groups[@]} build loops, $runs runs"

declare -A flips=()
remeasured=0
inconclusive=0
failed_runs=0
worst=0
for i in $(seq "$runs"); do
    out=$("$bin" run --no-report "$@" 2>&1) || true
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ inconclusive[^,;]*)?(, [0-9]+ skipped)?; wall' <<<"$out" || echo "no summary")
    again=$(awk '/^measured again, alone/ {p=1; next} p && /^  - / {print; next} {p=0}' <<<"$out")
    if [[ -n $again ]]; then
        remeasured=$((remeasured + $(wc -l <<<"$again")))
        inconclusive=$((inconclusive + $(grep -c "too busy both times" <<<"$again" || true)))
        sed 's/^/  again:/' <<<"$again"
    fi
    bad=$(grep -E '^\S+ did not meet its expectation:$' <<<"$out" | sed 's/ did not meet.*//' || true)
    errs=$(grep -E '^error: ' <<<"$out" || true)
    # wall and longest case, in ms, for the ratio
    ratio=$(sed -nE 's/.*wall ([0-9.]+) (m?s) \(longest case ([0-9.]+) (m?s)\).*/\1 \2 \3 \4/p' <<<"$summary" |
        awk '{w=$1*($2=="s"?1000:1); l=$3*($4=="s"?1000:1); if (l>0) printf "%.2f", w/l; else print "0"}')
    echo "run $i: $summary (wall/longest ${ratio:-?})"
    if [[ -n $bad || -n $errs ]]; then
        failed_runs=$((failed_runs + 1))
        for c in $bad; do
            flips[$c]=$((${flips[$c]:-0} + 1))
            echo "  FAIL $c:"
            awk -v c="$c" '$0 == c " did not meet its expectation:" {p=1; next} p && /^  - / {print "   " $0; next} {p=0}' <<<"$out"
        done
        [[ -n $errs ]] && sed 's/^/  /' <<<"$errs"
    fi
    worst=$(awk -v a="$worst" -v b="${ratio:-0}" 'BEGIN{print (b>a)?b:a}')
done
echo "stress: $runs runs, $failed_runs with a failure, $remeasured cases measured again ($inconclusive inconclusive), worst wall/longest $worst"
for c in "${!flips[@]}"; do echo "  $c: failed ${flips[$c]}/$runs"; done
[[ $failed_runs -eq 0 ]]
