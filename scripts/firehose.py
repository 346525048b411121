#!/usr/bin/env python3
# A raw-socket SSE firehose for memory measurements: `firehose.py PORT BYTES [--gzip]` answers every
# connection with BYTES of `data: x` events as fast as the socket takes them, then closes.
import gzip, socket, sys, threading
port = int(sys.argv[1]); total = int(sys.argv[2]); gz = "--gzip" in sys.argv
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", port)); s.listen(16)
print("listening", flush=True)
chunk = b"data: x\n\n" * 10000
def serve(c):
    try:
        c.recv(65536)
        coding = b"Content-Encoding: gzip\r\n" if gz else b""
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n" + coding + b"Connection: close\r\n\r\n")
        if gz:
            c.sendall(gzip.compress(b"data: x\n\n" * (total // 9)))
            return
        sent = 0
        while sent < total:
            c.sendall(chunk); sent += len(chunk)
    except Exception: pass
    finally: c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
