#!/usr/bin/env python3
"""Benchmark of the `igloo dev` loop: cold start to ready, warm start, and save → applied.

Baselines measured in the same run on the same machine:
- engines alone: clickhouse-server and tansu started directly with the configs igloo wrote,
  until ClickHouse answers /ping and the broker accepts a TCP connection;
- the DDL alone: the same ALTER TABLE … ADD COLUMN sent straight to ClickHouse over HTTP.

Usage: python3 bench/dev_loop.py [path/to/igloo] [--runs N] [--saves N]
Standard library only. Prints a Markdown table for BENCHMARKS.md.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dev:
    """A running `igloo dev` whose output lines are timestamped as they arrive."""

    def __init__(self, igloo, cwd, env, args=()):
        self.proc = subprocess.Popen([igloo, "dev", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()

    def wait_for(self, pattern, after=0, timeout=60):
        """Time of the first line matching `pattern` among lines after index `after`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines[after:]:
                    if re.search(pattern, line):
                        return t
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no line matching {pattern!r}; output:\n" + "\n".join(l for _, l in self.lines))
                self.cond.wait(left)

    def count(self):
        with self.cond:
            return len(self.lines)

    def stop(self):
        """Ctrl-C; seconds until igloo dev and its engines have exited."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        return time.monotonic() - t0


def http(url, body=None):
    req = urllib.request.Request(url, data=body.encode() if body else None)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def wait_until(check, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("timed out")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def baseline_engines(project, env):
    """Start the engines directly with igloo's configs: (seconds until both answer, seconds
    from SIGTERM until both exited)."""
    d = os.path.join(project, ".igloo")
    ch_bin = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
    tansu = shutil.which("tansu") or os.path.expanduser("~/.cargo/bin/tansu")
    http_port, broker_port = env["IGLOO_CLICKHOUSE_HTTP_PORT"], env["IGLOO_BROKER_PORT"]
    listener = f"tcp://127.0.0.1:{broker_port}"
    t0 = time.monotonic()
    ch = subprocess.Popen([ch_bin, f"--config-file={d}/clickhouse/config.xml"], cwd=f"{d}/clickhouse", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    br = subprocess.Popen([tansu, "broker", "--cluster-id", "igloo", "--listener-url", listener, "--advertised-listener-url", listener, "--storage-engine", "sqlite://tansu.db"],
                          cwd=f"{d}/broker/data", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: http(f"http://127.0.0.1:{http_port}/ping").startswith("Ok"))
        wait_until(lambda: socket.create_connection(("127.0.0.1", int(broker_port)), timeout=1).close() is None)
        started = time.monotonic() - t0
    finally:
        t1 = time.monotonic()
        for p in (br, ch):
            p.terminate()
        for p in (br, ch):
            p.wait(timeout=30)
    return started, time.monotonic() - t1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("igloo", nargs="?", default=os.path.expanduser("~/.cache/igloo/target/release/igloo"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--saves", type=int, default=20)
    a = ap.parse_args()
    a.igloo = os.path.abspath(a.igloo)
    tmp = tempfile.mkdtemp(prefix="igloo-bench-")
    subprocess.run([a.igloo, "init", "bench", "--template", "timeseries", "--yes"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    project = os.path.join(tmp, "bench")
    env = dict(os.environ, IGLOO_INFRA_MODE="native", IGLOO_CLICKHOUSE_HTTP_PORT=str(free_port()),
               IGLOO_CLICKHOUSE_TCP_PORT=str(free_port()), IGLOO_BROKER_PORT=str(free_port()))
    ch_url = f"http://127.0.0.1:{env['IGLOO_CLICKHOUSE_HTTP_PORT']}/"

    cold, warm, base, stops, base_stops = [], [], [], [], []
    for _ in range(a.runs):
        shutil.rmtree(os.path.join(project, ".igloo"), ignore_errors=True)
        t0 = time.monotonic()
        dev = Dev(a.igloo, project, env)
        cold.append(dev.wait_for(r"^Ready in") - t0)
        stops.append(dev.stop())
        t0 = time.monotonic()
        dev = Dev(a.igloo, project, env)
        warm.append(dev.wait_for(r"^Ready in") - t0)
        stops.append(dev.stop())
        started, stopped = baseline_engines(project, env)
        base.append(started)
        base_stops.append(stopped)

    dev = Dev(a.igloo, project, env)
    dev.wait_for(r"^Ready in")
    schema = os.path.join(project, "schema", "measurement.prisma")
    text = open(schema).read()
    saves, ddl = [], []
    for i in range(a.saves):
        n = dev.count()
        text = text.replace("  values Float[]\n", f"  values Float[]\n  extra{i} Int @default({i})\n")
        t0 = time.monotonic()
        with open(schema, "w") as f:
            f.write(text)
        saves.append(dev.wait_for(r"^✓ applied", after=n) - t0)
        t0 = time.monotonic()
        http(ch_url, f"ALTER TABLE bench.Measurement ADD COLUMN direct{i} Int32 DEFAULT {i}")
        ddl.append(time.monotonic() - t0)
    dev.stop()
    shutil.rmtree(tmp, ignore_errors=True)

    ms = lambda x: f"{x * 1000:.0f} ms"
    print(f"| measure | p50 | p99 | max | baseline p50 (same run) | ratio |")
    print(f"|---|---|---|---|---|---|")
    rows = [
        (f"cold `igloo dev` → ready ({a.runs} runs)", cold, base, "engines alone to healthy"),
        (f"warm `igloo dev` → ready ({a.runs} runs)", warm, base, "engines alone to healthy"),
        (f"save → applied, add column ({a.saves} saves)", saves, ddl, "the ALTER alone over HTTP"),
    ]
    rows.append((f"Ctrl-C → igloo dev and engines exited ({len(stops)} runs)", stops, base_stops, "SIGTERM to both engines alone → exited"))
    for name, xs, b, bname in rows:
        print(f"| {name} | {ms(pct(xs, 50))} | {ms(pct(xs, 99))} | {ms(max(xs))} | {ms(statistics.median(b))} ({bname}) | {pct(xs, 50) / statistics.median(b):.1f}× |")


if __name__ == "__main__":
    sys.exit(main())
