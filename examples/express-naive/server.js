// The classic SSE bugs in one Express app (run with Debian's node-express and node-compression):
//  1. `compression()` without `res.flush()`: gzip output waits for a 16 KiB block, so events arrive at the end;
//  2. no `Cache-Control: no-transform` (so compression and other layers feel free to transform);
//  3. the last event is written without its blank line, so browsers never dispatch it.
const express = require('express');
const compression = require('compression');

const app = express();
app.use(compression());

app.get('/events', (req, res) => {
  res.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  let n = 0;
  const timer = setInterval(() => {
    n += 1;
    if (n < 6) {
      res.write(`id: ${n}\ndata: {"token": ${n}}\n\n`);
    } else {
      res.write(`id: ${n}\ndata: [DONE]\n`); // bug 3: no blank line
      clearInterval(timer);
      res.end();
    }
  }, 300);
  req.on('close', () => clearInterval(timer));
});

const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
