// The official OpenAI Node client reading a streamed chat completion, as an application does:
//   NODE_PATH=…/node_modules node openai-stream.js BASE_URL
// Prints one JSON line: when each chunk the stream iterator yielded arrived (ms from the request), and
// whether it carried content.
const OpenAI = require('openai');

async function main() {
  const baseURL = process.argv[2];
  const client = new OpenAI({ baseURL, apiKey: 'sk-ssegate-test', maxRetries: 0, timeout: 30000 });
  const t0 = performance.now();
  const stream = await client.chat.completions.create({
    model: 'ssegate-fixture',
    stream: true,
    messages: [{ role: 'user', content: 'hi' }],
  });
  const chunks = [];
  for await (const chunk of stream) {
    const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
    chunks.push({ at_ms: performance.now() - t0, content: Boolean(delta && delta.content) });
  }
  console.log(JSON.stringify({ chunks }));
}

main().catch((e) => {
  console.error(`openai-stream: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
