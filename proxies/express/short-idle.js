// Node's http server has no idle timeout by default (server.timeout 0 since Node 13); this profile sets a
// 1 s socket inactivity timeout per request (what `server.setTimeout(1000)` does), without compression,
// so a case can show what an idle cut does to a stream.
app.use((req, res, next) => { req.setTimeout(1000); next(); });
