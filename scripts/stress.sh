#!/usr/bin/env bash
# Run the conformance suite N times with every core saturated by busy loops, and count verdict flips.
#
#   scripts/stress.sh [RUNS] [-- extra `ssegate run` arguments]
#
# Starts one `yes > /dev/null` per core (by PID, stopped on every exit path), runs
# `target/release/ssegate run --no-report` RUNS times (default 10), and prints per run the failures and the
# wall time against the longest case, then a summary: runs, flips per case, and the worst wall/longest ratio.
# Exits 1 when any case failed in any run. Build first: `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=10
if [[ $# -gt 0 && $1 != "--" ]]; then
    runs=$1
    shift
fi
[[ ${1:-} == "--" ]] && shift
bin=target/release/ssegate
[[ -x $bin ]] || { echo "stress: build first: cargo build --release" >&2; exit 2; }

pids=()
stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM
for _ in $(seq "$(nproc)"); do
    yes > /dev/null &
    pids+=($!)
done
echo "stress: ${#pids[@]} busy loops (pids ${pids[*]}), $runs runs"

declare -A flips=()
failed_runs=0
worst=0
for i in $(seq "$runs"); do
    out=$("$bin" run --no-report "$@" 2>&1) || true
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?; wall' <<<"$out" || echo "no summary")
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
echo "stress: $runs runs, $failed_runs with a failure, worst wall/longest $worst"
for c in "${!flips[@]}"; do echo "  $c: failed ${flips[$c]}/$runs"; done
[[ $failed_runs -eq 0 ]]
