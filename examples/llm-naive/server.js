// An OpenAI-compatible chat endpoint written the way many are: compression for the whole app, and a
// stream of Chat Completions chunks with nothing that tells a proxy or the compressor to let it through.
// Its tokens come 600 ms after the request, then about every 30 ms, then `data: [DONE]`.
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
  res.set({ 'Content-Type': 'text/event-stream' });
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
