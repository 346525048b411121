# mitmproxy's defaults in reverse mode: every response body is read completely before it is passed on
# (stream_large_bodies unset), HTTP/1 and HTTP/2 offered, no idle timeout on a proxied response.
