"""An OpenAI-compatible chat endpoint as FastAPI apps serve one: `EventSourceResponse` from
sse-starlette, an async generator yielding Chat Completions chunks (a role chunk, one chunk per word
after 600 ms then about every 30 ms, a finish chunk, `[DONE]`), served by uvicorn on 127.0.0.1.

    python fastapi_llm.py PORT      (with the venv scripts/fastapi-venv.sh makes)
"""
import asyncio
import json
import sys

import uvicorn
from fastapi import FastAPI
from sse_starlette.sse import EventSourceResponse

WORDS = ("Streaming works on a laptop and arrives as one lump in production, because something on "
         "the path holds it: a proxy buffer, a compressor, or a platform that waits for the whole body.").split()

app = FastAPI()


def chunk(delta, finish=None):
    return json.dumps({
        "id": "chatcmpl-fastapi", "object": "chat.completion.chunk", "model": "example",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })


@app.post("/v1/chat/completions")
async def chat():
    async def tokens():
        yield {"data": chunk({"role": "assistant", "content": ""})}
        await asyncio.sleep(0.6)
        for i, w in enumerate(WORDS):
            yield {"data": chunk({"content": (" " if i else "") + w})}
            await asyncio.sleep(0.03)
        yield {"data": chunk({}, "stop")}
        yield {"data": "[DONE]"}

    return EventSourceResponse(tokens())


if __name__ == "__main__":
    port = int(sys.argv[1])
    print(f"listening on {port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
