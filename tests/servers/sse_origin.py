"""A small SSE origin on the standard library, for `ssegate check` regression tests.

    python3 sse_origin.py PORT [--events N] [--gap-ms G] [--linger-ms L] [--single]
                               [--die-after K] [--content-length] [--hold] [--no-cache-control]
                               [--no-done]

Serves GET /events: N events (`id: i`, `data: tick i`, 20 bytes each for i < 10), G ms apart, then waits L
ms and ends the chunked body (or, with --content-length, a body of the exact length written as it goes).
--single answers one request at a time, as a sync worker or a single-threaded dev server does.
--die-after K exits with status 7 after K responses, printing a last log line. --hold writes every event
only at the end (an origin that buffers its own output).

Also serves POST /v1/chat/completions: the same N events as OpenAI Chat Completions chunks (a role chunk,
N content deltas, a finish chunk), then `data: [DONE]` unless --no-done (a stream truncated on its way).
"""
import argparse
import html
import http.server
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--events", type=int, default=6)
ap.add_argument("--gap-ms", type=int, default=400)
ap.add_argument("--linger-ms", type=int, default=0)
ap.add_argument("--single", action="store_true")
ap.add_argument("--die-after", type=int, default=0)
ap.add_argument("--content-length", action="store_true")
ap.add_argument("--hold", action="store_true")
# Write each event in two pieces (its fields, then its blank line), the second this many ms later: the
# wait Nagle's algorithm gives a small second write without TCP_NODELAY (werkzeug's shape).
ap.add_argument("--pieces-ms", type=int, default=0)
ap.add_argument("--no-cache-control", action="store_true")
# /redirect?QUERY answers 302 with the query echoed in Location, as many login redirects do.
ap.add_argument("--redirect", action="store_true")
# /echo answers a short stream whose events echo the request: its line and each header as received, then
# the same JSON-escaped and HTML-escaped (a debug endpoint, a 401 page, a gateway's error body).
# The first event's data is one line of this many bytes (0: the usual short data).
ap.add_argument("--line-bytes", type=int, default=0)
ap.add_argument("--no-done", action="store_true")
args = ap.parse_args()


def chat_events():
    """OpenAI Chat Completions chunks: no ids, as OpenAI sends them."""
    def chunk(delta, finish=None):
        body = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n".encode()
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": f"tok{i} "}) for i in range(1, args.events + 1)]
    out.append(chunk({}, "stop"))
    if not args.no_done:
        out.append(b"data: [DONE]\n\n")
    return out

served = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        global served
        if args.redirect and self.path.split("?")[0] == "/redirect":
            query = self.path.split("?", 1)[1] if "?" in self.path else ""
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{args.port}/login?next=/events&{query}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.split("?")[0] == "/echo":
            seen = [self.requestline] + [f"{k}: {v}" for k, v in self.headers.items()]
            datas = seen + [json.dumps(seen), html.escape(" | ".join(seen))]
            body = b"".join(f"id: {i}\ndata: {d}\n\n".encode() for i, d in enumerate(datas, 1))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("X-Echo-Authorization-Count", str(len(self.headers.get_all("Authorization") or [])))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            return
        if self.path.split("?")[0] != "/events":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        events = [f"id: {i}\ndata: tick {i}\n\n".encode() for i in range(1, args.events + 1)]
        if args.line_bytes and events:
            events[0] = b"id: 1\ndata: " + b"x" * args.line_bytes + b"\n\n"
        self.stream(events)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.split("?")[0] != "/v1/chat/completions":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.stream(chat_events())

    def stream(self, events):
        global served
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if not args.no_cache_control:
            self.send_header("Cache-Control", "no-cache")
        if args.content_length:
            self.send_header("Content-Length", str(sum(map(len, events))))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

        def write(b):
            if args.content_length:
                self.wfile.write(b)
            else:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            self.wfile.flush()

        try:
            held = b""
            for i, e in enumerate(events):
                if i:
                    time.sleep(args.gap_ms / 1000)
                if args.hold:
                    held += e
                elif args.pieces_ms:
                    write(e[:-1])
                    time.sleep(args.pieces_ms / 1000)
                    write(e[-1:])
                else:
                    write(e)
            time.sleep(args.linger_ms / 1000)
            if held:
                write(held)
            if not args.content_length:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        served += 1
        if args.die_after and served >= args.die_after:
            sys.stderr.write(f"fatal: served {served} responses, exiting\n")
            sys.stderr.flush()
            os._exit(7)


server_class = http.server.HTTPServer if args.single else http.server.ThreadingHTTPServer
server_class.allow_reuse_address = True
srv = server_class(("127.0.0.1", args.port), Handler)
print(f"listening on {args.port}", flush=True)
srv.serve_forever()
