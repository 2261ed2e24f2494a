#!/usr/bin/env bash
# The reference workload end to end (issue 10): a fresh time-series project under `igloo dev`
# (native engines, release build), history loaded over the last 24 h, then each stage's
# ceiling alone, the reference profile as single-event POSTs with 10 query clients and a
# freshness probe, batched ingest, and the loss check; CPU and RSS of igloo, ClickHouse, the
# broker and the load generator throughout. Prints Markdown for BENCHMARKS.md, and writes the
# figures as JSON to $IGLOO_BENCH_OUT (default bench/out/reference.json).
# Usage: bash bench/reference.sh [profile seconds, default 180] [history rows, default 20000000]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
PROFILE_SECONDS="${1:-180}"
PRELOAD_ROWS="${2:-20000000}"
export IGLOO_BENCH_OUT="${IGLOO_BENCH_OUT:-$PWD/bench/out/reference.json}"

. bench/dev.sh
pid() { python3 -c "import json,sys;s=json.load(open('.igloo/dev.json'));print(s['pid'] if sys.argv[1]=='igloo' else [e['pid'] for e in s['engines'] if e['name'].startswith(sys.argv[1])][0])" "$1"; }
BROKER_NAME=$(python3 -c "import json;print(json.load(open('.igloo/dev.json'))['engines'][1]['name'])")
echo "command: bash bench/reference.sh $PROFILE_SECONDS $PRELOAD_ROWS"
"$BIN/igloo-bench-reference" --api http://127.0.0.1:24000 --clickhouse http://127.0.0.1:28123/ --database bench \
  --bootstrap 127.0.0.1:29092 --profile-seconds "$PROFILE_SECONDS" --preload-rows "$PRELOAD_ROWS" \
  --process "igloo=$(pid igloo)" --process "clickhouse=$(pid clickhouse)" --process "$BROKER_NAME=$(pid "$BROKER_NAME")" \
  ${REFERENCE_ARGS:-}
