# Base frame for every ssegate LiteLLM hop: a launcher run by the venv's Python
# (`litellm-python {config}`, see scripts/litellm-venv.sh). It writes LiteLLM's config to the prefix and
# runs LiteLLM's own command line (`litellm --config ... --host 127.0.0.1 --port ...`), so every default
# of the proxy is the one users get. ssegate fills in the double-brace placeholders and puts the
# profile's lines (proxies/litellm/<config>.py) at the {{config}} line, where a profile sets MODEL,
# API_BASE and ROUTE.
#
# Three things differ from a stock deployment, none on the stream's path:
# - no master key (LiteLLM's `dangerously_permit_weak_or_unset_master_key`): a client in a chain sends no
#   key, and authentication runs before the response starts;
# - `forward_client_headers_to_llm_api`, so that the `x-ssegate-route` header below reaches the origin;
# - the ASGI app is wrapped: `GET /__ssegate_ready` answers the readiness nonce, and a request for one of
#   ssegate's fixture paths (`/events/...`, which LiteLLM does not serve) is given ROUTE as its path and
#   its own path in `x-ssegate-route`, by which the fixture tells the scenarios it serves apart. Every
#   other request reaches LiteLLM untouched.
# - it is warm: the first request a LiteLLM process serves costs it 150-270 ms more than the next ones
#   (measured: the head 150-265 ms after the origin sent it, then 23-34 ms), which a deployed proxy paid
#   long ago. Before it answers the nonce, the launcher streams one completion through LiteLLM's Chat
#   Completions route from a model of its own (`__ssegate_warmup`) that the wrapper answers itself, so
#   the origin sees no request.
import os
import sys

# This file is rendered as `<prefix>/litellm.py`: its directory must not shadow the `litellm` package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

# mitmdump-style: LiteLLM prints its banner and request lines to stdout, which ssegate discards; send
# fd 1 to stderr (<prefix>/stderr.log) instead.
os.dup2(2, 1)

MODEL = "openai/*"
API_BASE = "http://{{upstream}}/v1"
ROUTE = "/v1/chat/completions"

# -- profile ----------------------------------------------------------------------------------------------
{{config}}
# ---------------------------------------------------------------------------------------------------------

WARMUP = "__ssegate_warmup"
PORT = {{port}}

CONFIG = f"""\
model_list:
  - model_name: "{WARMUP}"
    litellm_params:
      model: "openai/{WARMUP}"
      api_base: "http://127.0.0.1:{PORT}/{WARMUP}/v1"
      api_key: ssegate-placeholder-key
  - model_name: "*"
    litellm_params:
      model: "{MODEL}"
      api_base: "{API_BASE}"
      api_key: ssegate-placeholder-key
general_settings:
  dangerously_permit_weak_or_unset_master_key: true
  forward_client_headers_to_llm_api: true
"""

NONCE = b"{{nonce}}"

WARMUP_STREAM = b"".join(
    b"data: " + chunk + b"\n\n"
    for chunk in [
        b'{"id":"w","object":"chat.completion.chunk","created":0,"model":"w",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":"ok"},"finish_reason":null}]}',
        b'{"id":"w","object":"chat.completion.chunk","created":0,"model":"w",'
        b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
        b"[DONE]",
    ]
)


async def respond(send, status, body, content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def warm_up():
    import httpx

    request = {"model": WARMUP, "stream": True, "messages": [{"role": "user", "content": "warm-up"}]}
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", f"http://127.0.0.1:{PORT}/v1/chat/completions", json=request) as r:
            body = b"".join([chunk async for chunk in r.aiter_bytes()])
    if r.status_code != 200 or b"[DONE]" not in body:
        raise RuntimeError(f"the warm-up completion answered {r.status_code}: {body[:300]!r}")


def wrap(app):
    import asyncio

    warming = []

    async def ready(send):
        if not warming:
            warming.append(asyncio.ensure_future(warm_up()))
        task = warming[0]
        if not task.done():
            await respond(send, 503, b"warming up")
        elif task.exception() is not None:
            print(f"ssegate launcher: {task.exception()}", file=sys.stderr, flush=True)
            await respond(send, 500, b"the warm-up failed")
        else:
            await respond(send, 200, NONCE)

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/__ssegate_ready":
                await ready(send)
                return
            if path == f"/{WARMUP}/v1/chat/completions":
                await respond(send, 200, WARMUP_STREAM, b"text/event-stream")
                return
            if path == "/events" or path.startswith("/events/"):
                scope = dict(scope)
                scope["path"] = ROUTE
                scope["raw_path"] = ROUTE.encode()
                scope["query_string"] = b""
                scope["headers"] = [*scope["headers"], (b"x-ssegate-route", path.encode())]
        await app(scope, receive, send)

    return wrapped


def main():
    import uvicorn
    from uvicorn.importer import import_from_string

    config = os.path.join("{{prefix}}", "litellm.yaml")
    with open(config, "w") as f:
        f.write(CONFIG)

    run = uvicorn.run

    def run_wrapped(*args, **kwargs):
        app = kwargs.get("app", args[0] if args else None)
        if isinstance(app, str):
            app = import_from_string(app)
        kwargs["app"] = wrap(app)
        return run(*args[1:], **kwargs)

    uvicorn.run = run_wrapped
    from litellm.proxy.proxy_cli import run_server

    sys.argv = ["litellm", "--config", config, "--host", "127.0.0.1", "--port", "{{port}}"]
    run_server()


main()
