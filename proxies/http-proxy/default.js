// http-proxy's defaults: no proxyTimeout/timeout (no idle cut), no buffering, headers forwarded as
// received (xfwd off, changeOrigin off).
