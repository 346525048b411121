#!/usr/bin/env python3
"""A raw-socket server of hostile HTTP responses, for ssegate's reliability tests and scripts/hostile.sh.

    python3 hostile.py PORT

Prints `listening` once bound to 127.0.0.1:PORT, then answers each connection by the first path segment
of its request line (a query `?n=N` sets a size where one applies):

    /firehose?n=BYTES     `data: x` events as fast as the socket takes them, then close (default 20 MB)
    /gzip-bomb?n=BYTES    one gzip body that inflates to BYTES of tiny events (default 200 MB)
    /zstd-bomb, /br-bomb  the same with zstd or brotli (needs the `zstd` or `brotli` command)
    /gzip-zeros?n=BYTES   one gzip body that inflates to one `data:` line of BYTES zero bytes that never
                          ends (default 1 GB); /zstd-zeros and /br-zeros the same with zstd or brotli
    /long-ids?n=BYTES     a firehose of events that each carry a 300-byte id (default 20 MB)
    /hanging-length       `Content-Length: 100000`, two events, then the connection stays open, silent
    /bad-chunk-crlf       a chunk whose data is longer than its size line says
    /bad-chunk-huge       a chunk size of 16 hex digits
    /long-line?n=BYTES    one `data:` line of BYTES bytes, then a normal event (default 100 MiB)
    /endless              bytes without a single line break, forever
    /invalid-utf8         events whose data holds bytes that are not UTF-8
    /nul                  events whose data holds NUL bytes
    /drip                 a valid event stream written one byte per second
    /headers-never-finish a status line, then one header line per second, never the blank line
    /silent               accepts the request and never answers
    /reset-mid-event      half an event, then a TCP reset
    /garbage-status       a status line that is not HTTP
    /huge-headers?n=BYTES a response head of BYTES bytes of headers (default 1 MiB)
    /bogus-chunk          a chunked body whose second chunk size is not hexadecimal
    /short-length         `Content-Length: 20` on a longer stream
    /long-length          `Content-Length: 100000` on a short body, then close
    /redirect-loop        302 to itself, forever
"""
import gzip
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
TINY = b"data: x\n\n"


def head(extra=b""):
    return HEAD + extra + b"Connection: close\r\n\r\n"


def bomb(coding, n):
    raw = TINY * (n // len(TINY))
    if coding == "gzip":
        return gzip.compress(raw)
    tool = {"zstd": ["zstd", "-19", "-c"], "br": ["brotli", "-c", "-q", "5"]}[coding]
    if shutil.which(tool[0]) is None:
        return None
    return subprocess.run(tool, input=raw, capture_output=True, check=True).stdout


def zeros(coding, n):
    """`data: ` and n zero bytes, no line break: compressed in pieces so the server never holds n bytes."""
    piece = b"\0" * (1 << 20)
    if coding == "gzip":
        z = zlib.compressobj(9, zlib.DEFLATED, 31)
        out = [z.compress(b"data: ")]
        for _ in range(n // len(piece)):
            out.append(z.compress(piece))
        out.append(z.flush())
        return b"".join(out)
    tool = {"zstd": ["zstd", "-19", "-c"], "br": ["brotli", "-c", "-q", "9"]}[coding]
    if shutil.which(tool[0]) is None:
        return None
    p = subprocess.Popen(tool, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()))
    reader.start()
    p.stdin.write(b"data: ")
    for _ in range(n // len(piece)):
        p.stdin.write(piece)
    p.stdin.close()
    reader.join()
    p.wait()
    return out[0]


# Compressed bodies already made, by shape and size (`check` asks for each once per chain).
BODIES = {}


def serve(c, path, n):
    if path == "firehose":
        n = n or 20_000_000
        c.sendall(head())
        chunk, sent = TINY * 10_000, 0
        while sent < n:
            c.sendall(chunk)
            sent += len(chunk)
    elif path.endswith(("-bomb", "-zeros")) and path.split("-")[0] in ("gzip", "zstd", "br"):
        coding, shape = path.split("-")
        make, default = (bomb, 200_000_000) if shape == "bomb" else (zeros, 1_000_000_000)
        key = (path, n or default)
        if key not in BODIES:
            BODIES[key] = make(coding, key[1])
        body = BODIES[key]
        if body is None:
            c.sendall(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
            return
        c.sendall(head(b"Content-Encoding: " + coding.encode() + b"\r\n") + body)
        if shape == "zeros":
            time.sleep(1)
    elif path == "long-ids":
        n = n or 20_000_000
        c.sendall(head())
        sent, i = 0, 0
        while sent < n:
            chunk = b"".join(b"id: %0300d\ndata: x\n\n" % (i + k) for k in range(1000))
            c.sendall(chunk)
            sent += len(chunk)
            i += 1000
    elif path == "hanging-length":
        c.sendall(HEAD + b"Content-Length: 100000\r\n\r\n" + b"data: one\n\ndata: two\n\n")
        time.sleep(3600)
    elif path == "bad-chunk-crlf":
        c.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        c.sendall(b"9\r\ndata: x\n\n\r\n")
        time.sleep(0.3)
        c.sendall(b"3\r\ndata: y\n\n\r\n0\r\n\r\n")
        time.sleep(0.3)
    elif path == "bad-chunk-huge":
        c.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        c.sendall(b"9\r\ndata: x\n\n\r\n")
        time.sleep(0.3)
        c.sendall(b"ffffffffffffffff\r\ndata: y\n\n")
        time.sleep(0.3)
    elif path == "long-line":
        n = n or 100 << 20
        c.sendall(head() + b"data: ")
        block = b"x" * (1 << 20)
        for _ in range(n // len(block)):
            c.sendall(block)
        c.sendall(b"\n\ndata: after\n\n")
    elif path == "endless":
        c.sendall(head())
        block = b"y" * 65536
        while True:
            c.sendall(block)
    elif path == "invalid-utf8":
        c.sendall(head() + b"data: \xff\xfe\xc3(\n\ndata: ok\n\n")
    elif path == "nul":
        c.sendall(head() + b"data: a\x00b\n\nid: x\x00y\ndata: c\n\n")
    elif path == "drip":
        c.sendall(head())
        for b in b"data: one\n\ndata: two\n\n" * 100:
            c.sendall(bytes([b]))
            time.sleep(1)
    elif path == "headers-never-finish":
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        i = 0
        while True:
            time.sleep(1)
            c.sendall(b"X-Wait-%d: still\r\n" % i)
            i += 1
    elif path == "silent":
        time.sleep(3600)
    elif path == "reset-mid-event":
        c.sendall(head() + b"data: first\n\ndata: hal")
        time.sleep(0.3)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif path == "garbage-status":
        c.sendall(b"SSE/9 sure thing\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n")
    elif path == "huge-headers":
        n = n or 1 << 20
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        line = b"X-Pad: " + b"p" * 1000 + b"\r\n"
        for _ in range(n // len(line)):
            c.sendall(line)
        c.sendall(b"\r\ndata: x\n\n")
    elif path == "bogus-chunk":
        c.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        c.sendall(b"9\r\ndata: x\n\n\r\n")
        time.sleep(0.3)
        c.sendall(b"zz\r\ndata: y\n\n\r\n")
    elif path == "short-length":
        c.sendall(HEAD + b"Content-Length: 20\r\n\r\n" + b"data: first event\n\ndata: second\n\n")
        time.sleep(0.5)
    elif path == "long-length":
        c.sendall(HEAD + b"Content-Length: 100000\r\n\r\n" + b"data: only\n\n")
        time.sleep(0.3)
    elif path == "redirect-loop":
        c.sendall(b"HTTP/1.1 302 Found\r\nLocation: /redirect-loop\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.2)
    else:
        c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def handle(c):
    try:
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 65536:
            got = c.recv(65536)
            if not got:
                return
            req += got
        target = req.split(b" ", 2)[1].decode("latin-1") if req.count(b" ") >= 2 else "/"
        path, _, query = target.lstrip("/").partition("?")
        n = int(query[2:]) if query.startswith("n=") and query[2:].isdigit() else 0
        serve(c, path.split("/")[0], n)
    except OSError:
        pass
    finally:
        c.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(64)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
