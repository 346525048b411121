#!/usr/bin/env bash
# Stop the private Docker engine `scripts/containers-up.sh` started: its containers first (those ssegate
# labelled), then dockerd by the PID in its PID file, then its directories. Safe to run when nothing runs.
set -euo pipefail

dir=${SSEGATE_DOCKER_DIR:-/tmp/ssegate-docker}
sock=$dir/docker.sock
pidfile=$dir/docker.pid

say() { echo "containers-down: $*" >&2; }

if [[ -S $sock ]] && command -v docker > /dev/null; then
    ids=$(docker -H "unix://$sock" ps -aq --filter label=ssegate.hop 2> /dev/null || true)
    if [[ -n $ids ]]; then
        # shellcheck disable=SC2086
        docker -H "unix://$sock" rm -f $ids > /dev/null 2>&1 || true
        say "removed leftover hop containers"
    fi
fi
if [[ -f $pidfile ]]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2> /dev/null; then
        kill "$pid"
        for _ in $(seq 100); do
            kill -0 "$pid" 2> /dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2> /dev/null; then
            say "dockerd (pid $pid) did not stop within 20 s; killing it"
            kill -9 "$pid" 2> /dev/null || true
        fi
        say "stopped dockerd (pid $pid)"
    fi
fi
# The engine's mounts (overlay layers, its exec root) go before the directory does.
if [[ -d $dir ]]; then
    grep -o " $dir/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2> /dev/null || true; done
    rm -rf "$dir"
fi
