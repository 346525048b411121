// The stock `app.use(compression())` (Debian's expressjs/compression 1.7.4, defaults): gzip/deflate
// for compressible types (text/event-stream counts, through its ^text/ fallback), threshold 1 KB, and no
// `res.flush()` after writes, so zlib emits only when its 16 KiB chunk fills or the stream ends.
app.use(require('compression')());
