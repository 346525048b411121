// The same app with the bugs fixed: compression stays, but the stream opts out of it and of proxy
// buffering, headers are flushed at once, every event ends with a blank line, and a heartbeat keeps idle
// proxies from cutting the connection.
const express = require('express');
const compression = require('compression');

const app = express();
app.use(compression());

app.get('/events', (req, res) => {
  res.set({
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache, no-transform', // compression skips the response; CDNs leave it alone
    'X-Accel-Buffering': 'no', // nginx passes each event on at once
  });
  res.flushHeaders();
  res.write(':ok\n\n');
  let n = 0;
  const heartbeat = setInterval(() => res.write(':\n\n'), 15000);
  const timer = setInterval(() => {
    n += 1;
    res.write(n < 6 ? `id: ${n}\ndata: {"token": ${n}}\n\n` : `id: ${n}\ndata: [DONE]\n\n`);
    if (n >= 6) {
      clearInterval(timer);
      clearInterval(heartbeat);
      res.end();
    }
  }, 300);
  req.on('close', () => {
    clearInterval(timer);
    clearInterval(heartbeat);
  });
});

const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
