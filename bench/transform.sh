#!/usr/bin/env bash
# Transform throughput: starts `igloo dev` on a fresh time-series project (native engines,
# release build), loads N reference events into Measurement's topic, then lets trivial
# transforms (TypeScript and Python, 1 and 2 workers) work through that backlog. Prints a
# Markdown table for BENCHMARKS.md. Usage: bash bench/transform.sh [events, default 200000]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
. scripts/common.sh
EVENTS="${1:-200000}"

. bench/dev.sh
python3 "$REPO/bench/transform.py" --events "$EVENTS" --server http://127.0.0.1:24000 --clickhouse http://127.0.0.1:28123/
