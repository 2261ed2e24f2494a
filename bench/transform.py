"""Transform throughput, driven by bench/transform.sh inside a running `igloo dev` project.

1. Adds one destination model per run to the schema and waits until igloo dev applied it.
2. Posts EVENTS reference events to /ingest/Measurement in batches of 5,000 (the baseline: how
   fast the same machine accepts them over HTTP).
3. Per run, writes transforms/Measurement__<Dest>.<ext> (a trivial function: the first value
   of each event) and times the transform through the backlog, from its first record to its
   last, from igloo's own counters (/metrics). Then checks the destination table holds exactly
   EVENTS rows (nothing lost, nothing doubled).
"""

import argparse
import json
import random
import re
import time
import urllib.request

RUNS = [("FirstTs1", "ts", 1), ("FirstTs2", "ts", 2), ("FirstPy1", "py", 1), ("FirstPy2", "py", 2)]
TS = """import type { MeasurementRecord, %(dest)s } from "../sdk/bench.ts";

export default function transform(m: MeasurementRecord): %(dest)s {
  return { time: m.time, tag: m.tag, value: m.values[0] };
}
"""
PY = """from sdk.bench import MeasurementRecord, %(dest)s


def transform(m: MeasurementRecord) -> %(dest)s:
    return {"time": m["time"], "tag": m["tag"], "value": m["values"][0]}
"""
MODEL = """
model %s {
  time  BigInt
  tag   String
  value Float

  @@id([tag, time])
  @@ingest(false)
  @@topic(partitions: 4)
}
"""


def http(url, body=None, ctype="application/x-ndjson"):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype} if body else {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read().decode()


def metric(server, name, transform):
    text = http(server + "/metrics")
    m = re.search(r'^%s\{transform="%s"\} (\d+)$' % (name, transform), text, re.M)
    return int(m.group(1)) if m else 0


def count(ch, table):
    return int(http(ch, ("SELECT count() FROM bench.%s" % table).encode(), "text/plain").strip() or 0)


def wait_for(what, f, timeout=600):
    start = time.time()
    while time.time() - start < timeout:
        v = f()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--server", required=True)
    ap.add_argument("--clickhouse", required=True)
    a = ap.parse_args()

    with open("schema/measurement.prisma", "a") as f:
        f.write("".join(MODEL % dest for dest, _, _ in RUNS))
    overrides = "".join("    Measurement__%s: %d\n" % (dest, w) for dest, _, w in RUNS)
    with open("igloo.yaml") as f:
        yaml = f.read()
    if "\ntransforms:\n" in yaml:
        yaml = yaml.replace("\ntransforms:\n", "\ntransforms:\n  overrides:\n" + overrides, 1)
    else:
        yaml += "\ntransforms:\n  overrides:\n" + overrides
    with open("igloo.yaml", "w") as f:
        f.write(yaml)
    wait_for("the destination tables", lambda: all(
        http(a.clickhouse, ("EXISTS TABLE bench.%s" % d).encode(), "text/plain").strip() == "1" for d, _, _ in RUNS))

    rnd = random.Random(7)
    t0 = 1_700_000_000_000_000_000
    lines = [json.dumps({"time": t0 + i * 100_000, "tag": "tag-%05d" % rnd.randint(1, 10_000),
                         "values": [rnd.random() for _ in range(10)]}) for i in range(a.events)]
    start = time.time()
    for i in range(0, a.events, 5000):
        http(a.server + "/ingest/Measurement", "\n".join(lines[i:i + 5000]).encode())
    ingest_rate = a.events / (time.time() - start)
    print("baseline: %d events posted in batches of 5,000 at %.0f events/s" % (a.events, ingest_rate))

    print("\n| transform | workers | events/s | vs. batched HTTP ingest | rows in destination |")
    print("|---|---|---|---|---|")
    for dest, lang, workers in RUNS:
        name = "Measurement__" + dest
        with open("transforms/%s.%s" % (name, lang), "w") as f:
            f.write((TS if lang == "ts" else PY) % {"dest": dest})
        wait_for(name + " to start", lambda: metric(a.server, "igloo_transform_in_total", name) > 0)
        first = time.time()
        n0 = metric(a.server, "igloo_transform_in_total", name)
        wait_for(name + " to finish", lambda: metric(a.server, "igloo_transform_in_total", name) >= a.events)
        rate = (a.events - n0) / (time.time() - first)
        rows = wait_for(dest + " rows", lambda: (lambda n: n if n >= a.events else 0)(count(a.clickhouse, dest)))
        time.sleep(1)
        rows = count(a.clickhouse, dest)
        label = "TypeScript (Node %s)" % "20" if lang == "ts" else "Python 3"
        print("| %s | %d | %.0f | %.2f× | %d%s |" % (label, workers, rate, rate / ingest_rate, rows,
                                                  "" if rows == a.events else " ✗"))


if __name__ == "__main__":
    main()
