#!/usr/bin/env python3
"""HTTP fuzz run against a live igloo server: malformed and adversarial requests, loopback only.

Every request is built to be wrong: broken request lines and heads, bad lengths and encodings,
bodies that break JSON or the schema in one way or another, unknown routes, garbage
parameters. Every answer must be a 4xx; a 5xx, an accepted (2xx) request, a failed health
check or RSS growth beyond --rss-bound-mb fails the run. Connections the server closes
without an answer (it may, for garbage that is not HTTP) are counted, not failed.

    python3 bench/fuzz_http.py --url http://127.0.0.1:24000 --requests 100000 --pid PID

Prints the figures BENCHMARKS.md records; exit status 0 when the run passed.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import random
import socket
import sys
import threading
import time
import urllib.parse

MODEL = "Measurement"


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def event(r: random.Random) -> dict:
    return {"time": r.randrange(1, 10**12), "tag": f"t{r.randrange(100)}", "values": [r.random() for _ in range(3)]}


def broken_json_body(r: random.Random) -> bytes:
    """A body ingest must refuse: each breaks the JSON, or the schema, in one way."""
    e = event(r)
    kind = r.randrange(16)
    if kind == 0:
        return json.dumps(e).encode()[: r.randrange(1, 20)]  # truncated
    if kind == 1:
        return b'{"time": 1, "tag": "a", "tag": "b", "values": [1]}'  # duplicate key
    if kind == 2:
        return b'{"time": 1, "tag": "a", "values": [NaN]}'
    if kind == 3:
        return b'{"time": 1e999, "tag": "a", "values": [1]}'
    if kind == 4:
        return b'{"time": 1, "tag": "\xff\xfe\xfd", "values": [1]}'  # invalid UTF-8
    if kind == 5:
        depth = r.choice([65, 1000, 100000])
        return b'{"time": 1, "tag": "a", "values": [1], "x": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == 6:
        e["time"] = r.choice(["now", None, [], {}, True, -1.5, 2**70])
        return json.dumps(e).encode()
    if kind == 7:
        e["values"] = r.choice(["x", [None], [[1]], {"a": 1}, 5])
        return json.dumps(e).encode()
    if kind == 8:
        del e[r.choice(["time", "tag"])]  # (a missing list is an empty one: valid)
        return json.dumps(e).encode()
    if kind == 9:
        e["tag"] = r.choice([5, None, ["a"], {"x": "y" * 100_000}])
        return json.dumps(e).encode()
    if kind == 10:
        return bytes(r.randrange(256) for _ in range(r.randrange(1, 200)))  # random bytes
    if kind == 11:
        return b"[" + b",".join(json.dumps(event(r)).encode() for _ in range(3)) + b",{]"
    if kind == 12:
        return json.dumps([e, 5]).encode()  # an array with a non-object
    if kind == 13:
        return b'"just a string"'
    if kind == 14:
        return json.dumps(e).encode() + b" trailing"
    return b""  # empty


def request(r: random.Random, host: str) -> tuple[bytes, str]:
    """One raw request and its kind."""
    kind = r.randrange(14)
    ct = r.choice(["application/json", "application/x-ndjson"])
    if kind <= 4:
        body = broken_json_body(r)
        if r.random() < 0.2:
            body, enc = gzip.compress(body), "Content-Encoding: gzip\r\n"
        else:
            enc = ""
        head = f"POST /ingest/{MODEL} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ct}\r\n{enc}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        return head.encode() + body, "bad body"
    if kind == 5:
        body = json.dumps(event(r)).encode()
        bad = r.choice([
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}",
            f"Content-Type: {ct}\r\nContent-Encoding: br\r\nContent-Length: {len(body)}",
            f"Content-Type: {ct}\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}",  # not gzip
            f"Content-Type: {ct}\r\nContent-Length: -1",
            f"Content-Type: {ct}\r\nContent-Length: 1x",
        ])
        return f"POST /ingest/{MODEL} HTTP/1.1\r\nHost: {host}\r\n{bad}\r\nConnection: close\r\n\r\n".encode() + body, "bad head"
    if kind == 6:
        name = "".join(r.choice("abcXYZ_-.%/\\'\"<>") for _ in range(r.randrange(1, 30)))
        path = r.choice(["/ingest/", "/consumption/", "/export/", "/api/", "/subscribe/", "/", "/console/api/", "/x/"]) + urllib.parse.quote(name, safe="%/")
        return f"{r.choice(['GET', 'POST', 'PUT', 'DELETE', 'PATCH'])} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode(), "unknown route"
    if kind == 7:
        params = r.choice([
            "start=x&end=1", "start=1", "start=1&end=2&limit=-5000000000", "start=1&end=2&nope=1",
            "start=1e999&end=2", "start=%ff%fe&end=1", "start=1&end=2&format=xml", "start='&end=1; DROP",
        ])
        return f"GET /consumption/tag_stats?{params} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(), "bad parameters"
    if kind == 8:
        params = r.choice(["series=a", "series=a&start=x&end=1", "series=a&start=5&end=1", "start=1&end=2", "series=&start=1&end=2&points=0", "series=a&start=1&end=2&points=99999999999"])
        return f"GET /api/{MODEL}/samples?{params} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(), "bad samples"
    if kind == 9:
        return f"GET /export/{MODEL}?format={r.choice(['xml', 'json;', 'csv%00', 'JSON '])} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(), "bad export"
    if kind == 10:
        line = r.choice([
            b"GET / HTTP/9.9", b"\x00\x01\x02\x03", b"GET\t/health\tHTTP/1.1", b"GET /health", b"/health HTTP/1.1",
            b"G E T /health HTTP/1.1", b"GET /he\x00alth HTTP/1.1", b"GET " + b"/" * 9000 + b" HTTP/1.1",
        ])
        return line + f"\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(), "bad request line"
    if kind == 11:
        bad = r.choice([
            "X-Big: " + "a" * 300_000,
            "".join(f"X-H{i}: v\r\n" for i in range(150)).rstrip("\r\n"),
            "Content-Length: 5\r\nContent-Length: 7",
            "Transfer-Encoding: chunked\r\nContent-Length: 3",
            "Bad Header: x",
            "X-\x7f: x",
        ])
        # With Transfer-Encoding beside Content-Length the chunks win: end them.
        body = b"0\r\n\r\n" if "Transfer-Encoding" in bad else b""
        return f"POST /ingest/{MODEL} HTTP/1.1\r\nHost: {host}\r\n{bad}\r\nConnection: close\r\n\r\n".encode() + body, "bad headers"
    if kind == 12:
        # Only chunkings that end: a body announced and never sent is a slow client, which
        # server.max_concurrent_requests bounds, not a malformed request.
        chunks = r.choice([b"zz\r\nabc\r\n0\r\n\r\n", b"-1\r\n\r\n", b"3\r\n{x}\r\n0\r\n\r\n", b"2\r\n{}\r\n0\r\n\r\n"])
        return f"POST /ingest/{MODEL} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode() + chunks, "bad chunks"
    body = b"\n".join(broken_json_body(r) for _ in range(r.randrange(1, 5)))
    return f"POST /ingest/{MODEL} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body, "bad ndjson"


def send(host: str, port: int, data: bytes, timeout: float) -> int | None:
    """The answer's status, or None when the connection closed without one."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        out = b""
        try:
            while b"\r\n" not in out:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
    try:
        return int(out.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def healthy(host: str, port: int) -> bool:
    try:
        return send(host, port, f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(), 5) == 200
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:24000")
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=900, help="stop after this long, whatever the count")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--pid", type=int, help="the server's pid, for RSS")
    ap.add_argument("--rss-bound-mb", type=float, default=64, help="allowed RSS growth")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("loopback only", file=sys.stderr)
        return 2
    if not healthy(host, port):
        print(f"no healthy server at {args.url}", file=sys.stderr)
        return 2
    rss_before = rss_mb(args.pid)
    statuses: collections.Counter[str] = collections.Counter()
    slowest: dict[str, float] = collections.defaultdict(float)
    bad: list[str] = []
    lock = threading.Lock()
    counter = iter(range(args.requests))
    deadline = time.monotonic() + args.seconds
    rss_peak = rss_before or 0.0

    def worker(n: int) -> None:
        nonlocal rss_peak
        r = random.Random(args.seed * 1000 + n)
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            data, kind = request(r, host)
            t0 = time.monotonic()
            try:
                status = send(host, port, data, timeout=15)
            except OSError as e:
                status = None
                with lock:
                    statuses[f"error {type(e).__name__}"] += 1
                continue
            key = "closed" if status is None else str(status)
            with lock:
                slowest[kind] = max(slowest[kind], time.monotonic() - t0)
                statuses[key] += 1
                if status is not None and not 400 <= status < 500:
                    bad.append(f"{kind}: {status}: {data[:120]!r}")
                if i % 5000 == 0:
                    rss_peak = max(rss_peak, rss_mb(args.pid) or 0.0)
                    if not healthy(host, port):
                        bad.append(f"unhealthy after {i} requests")

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    sent = sum(statuses.values())
    time.sleep(1)
    rss_after = rss_mb(args.pid)
    ok_health = healthy(host, port)
    print(f"requests: {sent} in {took:.0f} s ({sent / took:.0f}/s), {args.workers} workers, seed {args.seed}")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    if rss_before is not None:
        print(f"server RSS: {rss_before:.0f} MB before, {rss_peak:.0f} MB peak sampled, {rss_after:.0f} MB after (bound: +{args.rss_bound_mb:.0f} MB)")
    print("slowest answer by kind: " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(slowest.items(), key=lambda kv: -kv[1])[:5]))
    print(f"healthy after: {ok_health}")
    failed = bool(bad) or not ok_health
    if rss_before is not None and rss_after is not None and rss_after - rss_before > args.rss_bound_mb:
        print(f"FAIL: RSS grew by {rss_after - rss_before:.0f} MB")
        failed = True
    for b in bad[:20]:
        print(f"FAIL: {b}")
    if sent < min(args.requests, 1):
        failed = True
    print("PASS" if not failed else "FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
