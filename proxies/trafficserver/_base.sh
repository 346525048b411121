#!/bin/sh
# Base frame for every ssegate Apache Traffic Server hop (ATS 9.2, standalone traffic_server, no
# traffic_manager). ATS reads a whole config directory, not one file, and ssegate renders one file: so
# this rendered file is a small POSIX sh script (run as `/bin/sh {config}`) that writes the directory into
# the prefix and then exec's traffic_server in the foreground (same pid, same process group).
# ssegate fills in the double-brace placeholders; the profile's lines (proxies/trafficserver/<config>.sh)
# replace the {{config}} line INSIDE records.config, so a profile is a list of `CONFIG ...` records
# (comments start with #). Nothing here changes how ATS proxies: the frame keeps it private (loopback
# listener, every state/log/cache file under the prefix, root kept instead of switching to a user that
# could not write the 0700 prefix), maps every path to the origin and answers ssegate's readiness check.
set -e
P='{{prefix}}'
mkdir -p "$P/etc" "$P/var" "$P/run" "$P/log" "$P/cache" "$P/share"

# The layout: binaries and plugins from the package, everything writable in the prefix.
cat > "$P/runroot.yaml" <<'EOF'
prefix: {{prefix}}
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: {{prefix}}/etc
datadir: {{prefix}}/share
includedir: /usr/include
libdir: /usr/lib/trafficserver
libexecdir: /usr/lib/trafficserver/modules
localstatedir: {{prefix}}/var
runtimedir: {{prefix}}/run
logdir: {{prefix}}/log
cachedir: {{prefix}}/cache
EOF

cat > "$P/etc/records.config" <<'EOF'
CONFIG proxy.config.http.server_ports STRING {{port}}:ipv4:ip-in=127.0.0.1
# "#-1": do not switch user (a switched user could not write the 0700 prefix).
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.url_remap.remap_required INT 1
# Error page templates from the package (read-only).
CONFIG proxy.config.body_factory.template_sets_dir STRING /etc/trafficserver/body_factory
# Small: one event thread, 8 MiB RAM cache (the 64 MiB disk cache below is a sparse file in the prefix).
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT 1
CONFIG proxy.config.cache.ram_cache.size INT 8388608
# -- profile --
{{config}}
EOF

# Every path goes to the origin; /__ssegate_ready is answered by ATS itself (header_rewrite sets the
# status and body at remap time, so the origin is never asked): the nonce proves that this
# traffic_server, not another process that raced for the port, is answering.
cat > "$P/etc/remap.config" <<'EOF'
map /__ssegate_ready http://{{upstream}}/ @plugin=header_rewrite.so @pparam={{prefix}}/etc/ready.conf
map / http://{{upstream}}/
EOF
cat > "$P/etc/ready.conf" <<'EOF'
cond %{REMAP_PSEUDO_HOOK}
set-status 200
set-body {{nonce}}
EOF
cat > "$P/etc/ip_allow.yaml" <<'EOF'
ip_allow:
  - apply: in
    ip_addrs: 127.0.0.1
    action: allow
EOF
echo '{{prefix}}/cache 64M' > "$P/etc/storage.config"

exec /usr/bin/traffic_server --run-root="$P/runroot.yaml"
