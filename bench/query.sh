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

. bench/dev.sh
"$BIN/igloo-bench-query" --api http://127.0.0.1:24000 --clickhouse http://127.0.0.1:28123/ --database bench \
  --rows "$ROWS" --seconds "$SECONDS_PER_PHASE"
echo "storage: $(curl -s localhost:28123 --data-binary "SELECT arrayStringConcat(groupArray(concat(table, ' ', formatReadableSize(b))), ', ') FROM (SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE active AND database = 'bench' AND table NOT LIKE '%offsets%' AND table NOT LIKE '%migrations%' GROUP BY table ORDER BY table)")"
