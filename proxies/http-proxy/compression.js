// Debian's `compression` middleware (expressjs/compression 1.7.4) with its defaults in front of the
// proxy, as webpack-dev-server / http-proxy-middleware setups do: gzip/deflate for compressible types
// (text/event-stream counts, through its ^text/ fallback), threshold 1 KB, no flush after writes.
use(require('compression')());
