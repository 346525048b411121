# Base frame for every ssegate mitmproxy hop: an addon script run as `mitmdump -s {config} ...`.
# mitmproxy takes its reverse-proxy target and port as options, and ssegate's argv can name only the
# prefix and this file, so the addon sets them (and the profile's options) when it loads, before any
# listener starts. ssegate fills in the double-brace placeholders and puts the profile's lines
# (proxies/mitmproxy/<config>.py) at the {{config}} line, where a profile may change OPTIONS.
# Nothing here changes how mitmproxy proxies: the frame only points it at the origin on loopback and
# answers ssegate's readiness check itself.
import os

from mitmproxy import ctx, http

# mitmdump logs (including "address already in use") to stdout, which ssegate discards: send fd 1 to
# stderr (<prefix>/stderr.log) instead, and print no line per flow.
os.dup2(2, 1)

OPTIONS = {
    "mode": ["reverse:http://{{upstream}}/"],
    "listen_host": "127.0.0.1",
    "listen_port": {{port}},
    "flow_detail": 0,
}

# -- profile ----------------------------------------------------------------------------------------------
{{config}}
# ---------------------------------------------------------------------------------------------------------


def load(loader):
    ctx.options.update(**OPTIONS)


def request(flow: http.HTTPFlow) -> None:
    # ssegate's readiness check: this exact nonce proves that this mitmdump, not another process that
    # raced for the port, is answering (the origin is never asked).
    if flow.request.path == "/__ssegate_ready":
        flow.response = http.Response.make(200, b"{{nonce}}", {"Content-Type": "text/plain"})
