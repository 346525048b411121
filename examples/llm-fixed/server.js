// The same OpenAI-compatible chat endpoint with the stream let through: it opts out of compression and
// of proxy buffering, sends its headers and a comment at once (so a first-byte timeout does not fire
// while the model thinks), and writes each chunk as it comes. Tokens come 600 ms after the request,
// then about every 30 ms, then `data: [DONE]`.
const express = require('express');
const compression = require('compression');

const app = express();
app.use(compression());
app.use(express.json());

const words = ('Streaming works on a laptop and arrives as one lump in production, because something on '
  + 'the path holds it: a proxy buffer, a compressor, or a platform that waits for the whole body.').split(' ');

function chunk(delta, finish) {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-example', object: 'chat.completion.chunk', model: 'example',
    choices: [{ index: 0, delta, finish_reason: finish || null }],
  })}\n\n`;
}

app.post('/v1/chat/completions', (req, res) => {
  res.set({
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache, no-transform', // compression skips the response; CDNs leave it alone
    'X-Accel-Buffering': 'no', // nginx passes each chunk on at once
  });
  res.flushHeaders();
  res.write(':ok\n\n');
  let i = 0;
  let timer = setTimeout(function next() {
    if (i === 0) res.write(chunk({ role: 'assistant', content: '' }));
    if (i < words.length) {
      res.write(chunk({ content: (i ? ' ' : '') + words[i] }));
      i += 1;
      timer = setTimeout(next, 20 + Math.random() * 20);
    } else {
      res.write(chunk({}, 'stop'));
      res.write('data: [DONE]\n\n');
      res.end();
    }
  }, 600);
  res.on('close', () => clearTimeout(timer)); // the client left (req's 'close' fires once its body is read)
});

const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
