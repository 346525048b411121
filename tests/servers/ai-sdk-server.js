// The Vercel AI SDK serving a chat answer as its UI message stream, as a Next.js or Express app does:
// `streamText` with the SDK's own mock model (`ai/test`), piped to Express's response by
// `pipeUIMessageStreamToResponse` (which sets the stream's headers). The model's first token comes
// 600 ms after the request, then one every 30 ms.
//   NODE_PATH=/usr/share/nodejs:…/node_modules node ai-sdk-server.js PORT
const express = require('express');
const { streamText, simulateReadableStream } = require('ai');
const { MockLanguageModelV4 } = require('ai/test');

const words = ('Streaming works on a laptop and arrives as one lump in production, because something on '
  + 'the path holds it: a proxy buffer, a compressor, or a platform that waits for the whole body.').split(' ');

function model() {
  return new MockLanguageModelV4({
    doStream: async () => ({
      stream: simulateReadableStream({
        initialDelayInMs: 600,
        chunkDelayInMs: 30,
        chunks: [
          { type: 'stream-start', warnings: [] },
          { type: 'text-start', id: 't0' },
          ...words.map((w, i) => ({ type: 'text-delta', id: 't0', delta: (i ? ' ' : '') + w })),
          { type: 'text-end', id: 't0' },
          {
            type: 'finish',
            finishReason: 'stop',
            usage: { inputTokens: 3, outputTokens: words.length, totalTokens: words.length + 3 },
          },
        ],
      }),
    }),
  });
}

const app = express();
app.use(express.json());
app.post('/api/chat', (req, res) => {
  const result = streamText({ model: model(), prompt: 'hi' });
  result.pipeUIMessageStreamToResponse(res);
});
const port = Number(process.argv[2] || 3000);
app.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
