#!/usr/bin/env bash
# The fault matrix (issue 19): cli/tests/faults.rs with 20 kill -9s of each process (the ingest
# server, the table writer, a transform worker, the broker, ClickHouse) under a load of about
# 6k events/s, then the broker and ClickHouse each down for 30 s. Prints the table that goes to
# BENCHMARKS.md. CI runs the same test with 2 kills of the three servers, no engine phases.
#   bash scripts/fault-matrix.sh [KILLS] [OUTAGE_SECONDS]
# About 20 minutes with the defaults: igloo dev restarts an engine at most 3 times a minute, so
# engine kills are 21 s apart.
# The broker is tansu with its PostgreSQL storage (the test makes a fresh database with
# scripts/tansu-postgres.sh): with SQLite storage, tansu 0.6 panics or spins within a few kills
# (BENCHMARKS.md). IGLOO_BROKER_STORAGE=sqlite://tansu.db runs it on SQLite anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
KILLS="${1:-20}"
OUTAGE="${2:-30}"
export IGLOO_TEST_PYTHON="${IGLOO_TEST_PYTHON:-$IGLOO_CACHE/venv/bin/python}"
echo "### Fault matrix: $KILLS kills per process, ${OUTAGE} s outages, $(nproc) cores, $(date -u +%Y-%m-%d), broker storage ${IGLOO_BROKER_STORAGE:-PostgreSQL}"
started=$SECONDS
IGLOO_FAULT_KILLS="$KILLS" IGLOO_FAULT_OUTAGE_SECS="$OUTAGE" \
  cargo test --locked -q -p igloo-cli --test faults -- --nocapture 2>&1 \
  | grep -E -A1 '^\||^Fault matrix|test result|panicked|assertion' || true
echo "took $((SECONDS - started)) s"
