#!/usr/bin/env python3
"""Count secret leaks: every command x every format x every secret form, against a server that echoes its
request (raw, JSON-escaped and HTML-escaped, as a debug endpoint or an error page does).

    cargo build --release && python3 scripts/secrets.py [--bin target/release/ssegate] [--no-browser]

For each run it searches stdout, stderr and every file the run wrote (`-o`, `--html`, `--summary`) for
each secret in every form a leak could take: as sent, decoded, re-encoded (`+`, `%xx` in either case,
base64 of `user:password`), JSON-escaped and XML-escaped. With a browser (`chromium` and
`chromedriver` on PATH), `probe --browser` runs too, and while it runs the files under its `TMPDIR` are
read every 100 ms (chromedriver's log, Chromium's profile) and `ss -lnt` is sampled for listeners
beyond loopback. Prints a table and the totals; exits 1 on any leak.
"""
import argparse
import base64
import html
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def forms(secret):
    """Every way `secret` could show up in an output."""
    out = {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret, safe="").lower(),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        json.dumps(html.escape(secret))[1:-1],
    }
    return {f for f in out if len(f) >= 6}


def basic(user, password):
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# Each group is one request: the URL suffix, the headers, and the secrets it carries (a secret's value
# as the server receives it, and any value derived from it that a client sends).
def groups(port):
    base = f"127.0.0.1:{port}/echo"
    quoted = 'SECjs"q\\x9'
    xml = "SECxm<&>l7"
    return [
        (
            "userinfo",
            f"http://alice:PWuser1nfo@{base}",
            [],
            ["PWuser1nfo", basic("alice", "PWuser1nfo")],
        ),
        (
            "basic header",
            f"http://{base}",
            ["Authorization: Basic " + basic("bob", "PWbas1c")],
            ["PWbas1c", basic("bob", "PWbas1c")],
        ),
        (
            "bare user token",
            f"http://TOKbareuser9@{base}",
            [],
            ["TOKbareuser9", basic("TOKbareuser9", "")],
        ),
        (
            "query + and %xx",
            f"http://{base}?token=SECpl+us1&api_key=SEClo%2fwer2&access_token=SECUP%2FPER3",
            [],
            ["SECpl+us1", "SECpl us1", "SEClo%2fwer2", "SEClo/wer2", "SECUP%2FPER3", "SECUP/PER3"],
        ),
        (
            "escaped header values",
            f"http://{base}",
            [f"X-Api-Key: {quoted}", f"Cookie: sid={xml}; theme=dark", 'Cookie: q="SECqu0ted"'],
            [quoted, xml, "SECqu0ted"],
        ),
    ]


def scan(text, secrets):
    return sorted({s for s in secrets for f in forms(s) if f in text})


LAST_ERROR = {}


def run(bin_, args, secrets, files, env=None):
    for f in files:
        if os.path.exists(f):
            os.remove(f)
    p = subprocess.run([bin_] + args, capture_output=True, timeout=300, env=env)
    texts = [p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")]
    LAST_ERROR["text"] = texts[1].strip().splitlines()[-12:] if p.returncode not in (0, 4) else []
    for f in files:
        if os.path.exists(f):
            texts.append(open(f, encoding="utf-8", errors="replace").read())
    return p.returncode, scan("\n".join(texts), secrets)


class DiskWatch(threading.Thread):
    """Reads every file under `root` every 100 ms, and samples `ss -lnt`, until stopped."""

    def __init__(self, root, secrets, before):
        super().__init__(daemon=True)
        self.root, self.secrets, self.before = root, secrets, before
        self.leaks, self.listeners, self.files_seen, self.samples = set(), set(), set(), 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for d, _, names in os.walk(self.root):
                for n in names:
                    path = os.path.join(d, n)
                    try:
                        with open(path, "rb") as f:
                            data = f.read(4 << 20).decode("utf-8", "replace")
                    except OSError:
                        continue
                    self.files_seen.add(os.path.relpath(path, self.root))
                    for s in scan(data, self.secrets):
                        self.leaks.add((os.path.relpath(path, self.root), s))
            self.listeners |= listeners() - self.before
            self.samples += 1
            time.sleep(0.1)


def listeners():
    """Listening TCP addresses that are not loopback."""
    out = subprocess.run(["ss", "-lntH"], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 4:
            local = cols[3]
            host = local.rsplit(":", 1)[0]
            if not (host.startswith("127.") or host in ("[::1]", "::1")):
                found.add(local)
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/ssegate"))
    ap.add_argument("--no-browser", action="store_true")
    a = ap.parse_args()
    port = free_port()
    origin = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests/servers/sse_origin.py"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    work = tempfile.mkdtemp(prefix="ssegate-secrets-")
    try:
        origin.stdout.readline()
        rows, total = [], 0
        out_file = os.path.join(work, "report.out")
        html_file = os.path.join(work, "report.html")
        summary = os.path.join(work, "summary.md")
        browser = None
        if not a.no_browser and all(
            subprocess.run(["sh", "-c", f"command -v {p}"], capture_output=True).returncode == 0
            for p in ("chromedriver", "ss")
        ):
            name, url, headers, secrets = groups(port)[0]
            all_secrets = [s for g in groups(port) for s in g[3]]
            tmp = tempfile.mkdtemp(prefix="ssegate-secrets-tmp-")
            watch = DiskWatch(tmp, all_secrets, listeners())
            watch.start()
            env = dict(os.environ, TMPDIR=tmp)
            url = groups(port)[3][1].replace("http://", "http://alice:PWuser1nfo@")
            args = ["probe", url, "--browser", "--duration", "5s", "--format", "json"]
            for h in groups(port)[4][2]:
                args += ["-H", h]
            args += ["--secret-header", "X-Api-Key"]
            code, leaked = run(a.bin, args, all_secrets, [], env)
            if LAST_ERROR["text"]:
                print(f"probe --browser exited {code}:", *LAST_ERROR["text"], sep="\n  ", file=sys.stderr)
            watch.stop.set()
            watch.join()
            subprocess.run(["rm", "-rf", tmp])
            total += len(leaked) + len(watch.leaks)
            browser = (code, leaked, watch)
        for name, url, headers, secrets in groups(port):
            hargs = [x for h in headers for x in ("-H", h)] + ["--secret-header", "X-Api-Key"]
            for fmt in ["human", "json", "junit", "markdown"]:
                cmds = [
                    ("probe", ["probe", url, "--format", fmt, "--duration", "5s", "-o", out_file], [out_file]),
                    ("doctor", ["doctor", url, "--format", fmt, "--duration", "5s", "-o", out_file], [out_file]),
                    (
                        "check --url",
                        ["check", "--url", url, "--matrix", "coalesce", "--duration", "5s", "--format", fmt,
                         "-o", out_file, "--html", html_file, "--summary", summary],
                        [out_file, html_file, summary],
                    ),
                ]
                for cmd, args, files in cmds:
                    args = args + hargs
                    code, leaked = run(a.bin, args, secrets, files)
                    total += len(leaked)
                    rows.append((name, cmd, fmt, code, leaked))
        print("| secret form | command | format | exit | leaked |")
        print("|---|---|---|---|---|")
        for name, cmd, fmt, code, leaked in rows:
            print(f"| {name} | `{cmd}` | {fmt} | {code} | {', '.join(leaked) or '0'} |")
        if browser:
            code, leaked, w = browser
            print(f"| all forms | `probe --browser` | json | {code} | {', '.join(leaked) or '0'} |")
            print(
                f"\nwhile the browser ran: {w.samples} samples of {len(w.files_seen)} files under TMPDIR, "
                f"{len(w.leaks)} holding a secret {sorted(w.leaks) or ''}; listeners beyond loopback: "
                f"{sorted(w.listeners) or 'none'}"
            )
        else:
            print("\nbrowser: not run (needs chromedriver and ss on PATH)")
        runs = len(rows) + (1 if browser else 0)
        print(f"\n{runs} runs, {total} leaks")
        return 1 if total or (browser and browser[2].listeners) else 0
    finally:
        origin.kill()
        origin.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
