#!/usr/bin/env bash
# Reference query benchmark: a fresh time-series project under `igloo dev` (native engines,
# release build), ROWS reference events loaded over 24 h, then `/api` at 10 req/s for the
# top-100 tags while ingest runs at 10k events/s, against a raw-table baseline in the same run.
# Prints a Markdown table for BENCHMARKS.md.
# Usage: bash bench/query.sh [rows, default 50000000] [seconds per phase, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ROWS="${1:-50000000}"
SECONDS_PER_PHASE="${2:-60}"

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
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; ClickHouse $(curl -s localhost:28123 --data-binary 'SELECT version()')"
"$BIN/igloo-bench-query" --api http://127.0.0.1:24000 --clickhouse http://127.0.0.1:28123/ --database bench \
  --rows "$ROWS" --seconds "$SECONDS_PER_PHASE"
echo "storage: $(curl -s localhost:28123 --data-binary "SELECT arrayStringConcat(groupArray(concat(table, ' ', formatReadableSize(b))), ', ') FROM (SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE active AND database = 'bench' AND table NOT LIKE '%offsets%' AND table NOT LIKE '%migrations%' GROUP BY table ORDER BY table)")"
