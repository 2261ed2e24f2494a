#!/usr/bin/env bash
# Ingest benchmark: starts `igloo dev` on a fresh time-series project (native engines, release
# build) and drives its ingest API with bench/src/main.rs. Prints a Markdown table for
# BENCHMARKS.md. Usage: bash bench/ingest.sh [seconds per phase, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
SECONDS_PER_PHASE="${1:-10}"

cargo build --release --locked -p igloo-cli -p igloo-bench 2>&1 | tail -1
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d)"
trap 'cd "$WORK/bench" 2>/dev/null && "$BIN/igloo" down >/dev/null 2>&1; rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN/igloo" init bench --template timeseries --yes >/dev/null
cd bench
export IGLOO_INFRA_MODE=native IGLOO_CLICKHOUSE_HTTP_PORT=28123 IGLOO_CLICKHOUSE_TCP_PORT=29000 IGLOO_BROKER_PORT=29092 IGLOO_SERVER_LISTEN=127.0.0.1:24000
"$BIN/igloo" dev > dev.out 2>&1 &
for _ in $(seq 1 600); do grep -q "Ingest API" dev.out && break; sleep 0.1; done
grep -q "Ingest API" dev.out || { cat dev.out; exit 1; }
PID=$(python3 -c "import json;print(json.load(open('.igloo/dev.json'))['pid'])")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; ClickHouse $(curl -s localhost:28123 --data-binary 'SELECT version()'), broker: $(python3 -c "import json;print(json.load(open('.igloo/dev.json'))['engines'][1]['name'])") ($(basename "$(readlink -f "$(command -v tansu || echo ~/.cargo/bin/tansu)")"))"
"$BIN/igloo-bench" --connections "${CONNECTIONS:-64}" --url http://127.0.0.1:24000/ingest/Measurement --clickhouse http://127.0.0.1:28123/ --table bench.Measurement --pid "$PID" --seconds "$SECONDS_PER_PHASE"
echo "rows in ClickHouse: $(curl -s localhost:28123 --data-binary 'SELECT count() FROM bench.Measurement'), acknowledged: $(curl -s localhost:24000/metrics | awk '/^igloo_ingest_accepted_total/{print $2}'), consumer lag: $(curl -s localhost:24000/metrics | awk '/^igloo_consumer_lag/{print $2}')"
