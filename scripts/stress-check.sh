#!/usr/bin/env bash
# Run `check` N times on three origins with every core saturated by busy loops, and print every chain
# whose gate outcome changed from the first run, with each run's wall time. The `check` counterpart of
# scripts/stress.sh.
#
#   scripts/stress-check.sh [RUNS] [--idle | --heavy]
#
# The origins: examples/express-fixed, examples/express-naive (both need node and node-express), and a
# threaded Python server (tests/servers/sse_origin.py, 6 events 400 ms apart) on the default matrix.
# One `yes > /dev/null` per core (by PID, stopped on every exit path) unless `--idle`; `--heavy` adds
# `ssegate run --no-report` in a loop beside them (the suite: real proxies, a browser; stopped by its
# process group). Exits 1 when an
# outcome changed. Build first: `cargo build --release` (or point `SSEGATE_BIN` at another binary).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=10
load=1
for a in "$@"; do
    case $a in
        --idle) load=0 ;;
        --heavy) load=2 ;;
        *) runs=$a ;;
    esac
done
bin=${SSEGATE_BIN:-target/release/ssegate}
[[ -x $bin ]] || { echo "stress-check: build first: cargo build --release" >&2; exit 2; }

pids=()
groups=()
work=$(mktemp -d)
stop() {
    for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT INT TERM
if [[ $load -ge 1 ]]; then
    for _ in $(seq "$(nproc)"); do
        yes > /dev/null &
        pids+=($!)
    done
fi
if [[ $load == 2 ]]; then
    setsid bash -c "while :; do '$bin' run --no-report > /dev/null 2>&1; done" &
    groups+=($!)
fi
echo "stress-check: ${#pids[@]} busy loops, ${#groups[@]} suite loops, $runs runs"

targets=(express-fixed express-naive python-threaded)
check() { # check TARGET: JSON Lines on stdout
    case $1 in
        express-fixed | express-naive) "$bin" check -c "examples/$1/ssegate.yaml" --format json ;;
        python-threaded)
            "$bin" check --path /events --format json -- \
                python3 tests/servers/sse_origin.py '{port}' --events 6 --gap-ms 400 ;;
    esac
}

for i in $(seq "$runs"); do
    for t in "${targets[@]}"; do
        started=$(date +%s.%N)
        check "$t" > "$work/$t.$i.jsonl" 2> "$work/$t.$i.err" || true
        python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$started" > "$work/$t.$i.wall"
    done
done

python3 - "$work" "$runs" "${targets[@]}" <<'EOF'
import json, os, sys
work, runs, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def outcomes(path):
    out, took = {}, None
    for line in open(path):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        data = d.get("data", {})
        if d.get("type") in ("baseline", "chain"):
            out[data.get("name", "direct")] = f"{data.get('result')} ({data.get('delivery')})"
        elif d.get("type") == "not-run":
            out[data["name"]] = "not run"
        elif d.get("type") == "summary":
            took = data.get("took_ms")
            if data.get("concurrency"):
                out["(re-run alone)"] = ",".join(data["concurrency"].get("queued", []))
    return out

changed = 0
for t in targets:
    first = None
    walls = []
    for i in range(1, runs + 1):
        o = outcomes(os.path.join(work, f"{t}.{i}.jsonl"))
        walls.append(open(os.path.join(work, f"{t}.{i}.wall")).read().strip())
        if not o:
            err = open(os.path.join(work, f"{t}.{i}.err")).read().strip().splitlines()
            o = {"(run)": "error: " + (err[-1] if err else "no output")}
        if first is None:
            first = o
            continue
        for k in sorted(set(first) | set(o)):
            if first.get(k) != o.get(k):
                changed += 1
                print(f"{t} run {i}: {k}: {first.get(k)} -> {o.get(k)}")
    print(f"{t}: wall {', '.join(walls)} s; first run: " + ", ".join(f"{k} {v}" for k, v in sorted(first.items())))
print(f"stress-check: {runs} runs x {len(targets)} origins, {changed} changed outcomes")
sys.exit(1 if changed else 0)
EOF
