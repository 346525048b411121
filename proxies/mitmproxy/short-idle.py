# mitmproxy's idle cut is a module constant, not an option: TCP_TIMEOUT = 600 s of no traffic on a
# connection (mitmproxy/proxy/server.py). Scaled down to 1 s here, with bodies streamed as in `stream`,
# so a case can show what the cut does to a stream.
import mitmproxy.proxy.server as _server
_server.TCP_TIMEOUT = 1
OPTIONS["stream_large_bodies"] = "1"
