#!/usr/bin/env bash
# Sets everything up and runs the time-series example end to end: installs the engines, builds
# igloo, creates the example project, checks it, shows the offline plans for ClickHouse 18.16
# and current ClickHouse, then runs `igloo dev` (native ClickHouse + broker, tables, rollups and
# topics created from the schema), posts events, reads them back (query, peek, the /api samples,
# a consumption API, the OpenAPI document) and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

. scripts/common.sh

bash scripts/install-engines.sh

echo "==> Building igloo"
cargo build --release --locked -p igloo-cli
IGLOO="$CARGO_TARGET_DIR/release/igloo"

WORK="${IGLOO_EXAMPLE_DIR:-$ROOT/examples/timeseries}"
echo "==> Creating the time-series example in $WORK"
# A fresh run: stop a previous one and delete its data, so the counts below are this run's.
if [ -f "$WORK/igloo.yaml" ]; then (cd "$WORK" && { "$IGLOO" down >/dev/null || true; "$IGLOO" clean --yes >/dev/null || true; }); fi
"$IGLOO" init "$WORK" --template timeseries --yes --force >/dev/null
cd "$WORK"

echo "==> igloo check"
"$IGLOO" check
for target in 18.16 current; do
  echo "==> igloo plan --offline --target $target"
  "$IGLOO" plan --offline --target "$target"
done

echo "==> igloo dev (in the background; its output goes to $WORK/.igloo/dev.out)"
mkdir -p .igloo
"$IGLOO" dev --mode native > .igloo/dev.out 2>&1 &
DEV_PID=$!
trap 'kill $DEV_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  if grep -q "Ready in" .igloo/dev.out; then break; fi
  if ! kill -0 $DEV_PID 2>/dev/null; then cat .igloo/dev.out; echo "igloo dev exited" >&2; exit 1; fi
  sleep 0.1
done
cat .igloo/dev.out
echo "==> igloo ps"
"$IGLOO" ps
echo "==> igloo plan (against the running engines)"
"$IGLOO" plan

echo "==> POST 10,000 time-series events to /save (the reference route), 1,000 per request"
python3 - <<'PY'
import json, random, time, urllib.request
now = time.time_ns()
for batch in range(10):
    rows = []
    for i in range(1000):
        n = batch * 1000 + i
        rows.append(json.dumps({"time": now + n, "tag": f"sensor-{n % 20:02d}", "values": [round(random.uniform(0, 100), 3) for _ in range(10)]}))
    req = urllib.request.Request("http://127.0.0.1:4000/save", data="\n".join(rows).encode(), headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req) as r:
        assert json.load(r)["accepted"] == 1000
print("accepted 10000 events")
PY
for _ in $(seq 1 50); do
  [ "$("$IGLOO" query "SELECT count() FROM Measurement" --format csv | tail -1)" = "10000" ] && break
  sleep 0.1
done
echo "==> igloo query (the events, read back from ClickHouse)"
"$IGLOO" query "SELECT tag, count() AS events, round(avg(values[1]), 2) AS avg_first_value FROM Measurement GROUP BY tag ORDER BY tag LIMIT 5"
echo "==> igloo peek Measurement -n 3"
"$IGLOO" peek Measurement -n 3
echo "==> GET /api?tag=sensor-03&start=…&end=… (the reference query: 1000 samples from the rollups)"
python3 - <<'PY'
import json, time, urllib.request
def get(path):
    with urllib.request.urlopen("http://127.0.0.1:4000" + path) as r:
        return json.load(r)
end = time.time_ns() + 10**9
body = get(f"/api?tag=sensor-03&start={end - 60 * 10**9}&end={end}")
samples = body["samples"]
filled = [s for s in samples if s["values"] is not None]
assert len(samples) == 1000 and filled, body
print(f"tagName={body['tagName']}: {len(samples)} samples, {len(filled)} with a value; last: {filled[-1]['values'][:3]}…")
stats = get(f"/consumption/tag_stats?start=0&end={end}&limit=3")
print("GET /consumption/tag_stats (apis/tag_stats.sql):", json.dumps(stats))
paths = sorted(get("/openapi.json")["paths"])
print("GET /openapi.json:", ", ".join(paths))
PY
echo "==> igloo down"
"$IGLOO" down
wait $DEV_PID || true
trap - EXIT
echo
echo "Done. The project is in $WORK; igloo is at $IGLOO."
