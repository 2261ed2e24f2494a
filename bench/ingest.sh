#!/usr/bin/env bash
# Ingest benchmark: starts `igloo dev` on a fresh time-series project (native engines, release
# build) and drives its ingest API with bench/src/main.rs. Prints a Markdown table for
# BENCHMARKS.md. Usage: bash bench/ingest.sh [seconds per phase, default 10]
# CONNECTIONS (default 64) sets the single-event connections; INGEST_PATH (default
# /ingest/Measurement) is the path posted to (`/save` is the alias route the reference uses);
# INGEST_QUERY is appended to it (e.g. `?wait=false` for the fast, not durable answer). RATE=N
# sends the single events open loop at N per second (to igloo and to the trivial handler
# alike), as the reference profile does, instead of closed loop.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
SECONDS_PER_PHASE="${1:-10}"

. bench/dev.sh
PID=$(python3 -c "import json;print(json.load(open('.igloo/dev.json'))['pid'])")
"$BIN/igloo-bench" --connections "${CONNECTIONS:-64}" --url "http://127.0.0.1:24000${INGEST_PATH:-/ingest/Measurement}${INGEST_QUERY:-}" --clickhouse http://127.0.0.1:28123/ --table bench.Measurement --pid "$PID" --seconds "$SECONDS_PER_PHASE" ${RATE:+--rate "$RATE"}
for _ in $(seq 1 100); do [ "$(curl -s localhost:24000/metrics | awk '/^igloo_consumer_lag/{print $2}')" = "0" ] && break; sleep 0.1; done
echo "duplicates skipped: $(curl -s localhost:24000/metrics | awk '/^igloo_idempotent_duplicates_total/{print $2}')"
echo "rows in ClickHouse: $(curl -s localhost:28123 --data-binary 'SELECT count() FROM bench.Measurement'), acknowledged: $(curl -s localhost:24000/metrics | awk '/^igloo_ingest_accepted_total/{print $2}'), consumer lag: $(curl -s localhost:24000/metrics | awk '/^igloo_consumer_lag/{print $2}')"
