#!/usr/bin/env bash
# Ingest through the compose stack (`igloo build` + `igloo deploy --target compose --up`, release
# build, the local stand-in images) beside the same load on `igloo dev` with native engines, in
# the same run. Also prints the size of the project image. Prints Markdown for BENCHMARKS.md.
# Usage: bash bench/compose.sh [seconds per phase, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
SECONDS_PER_PHASE="${1:-8}"
REPO="$PWD"

eval "$(bash scripts/local-images.sh --print-env)"
# Native first (bench/dev.sh leaves us in its project, with igloo dev running).
. bench/dev.sh
echo "### native: igloo dev (tansu and ClickHouse 18.16 as child processes)"
"$BIN/igloo-bench" --connections 64 --url http://127.0.0.1:24000/ingest/Measurement --clickhouse http://127.0.0.1:28123/ --table bench.Measurement --seconds "$SECONDS_PER_PHASE"
"$BIN/igloo" down >/dev/null 2>&1 || true
sleep 2

# The same project as a compose stack; ClickHouse published for the benchmark's row counts.
STACK=igloo-bench-deploy
"$BIN/igloo" build --base-image "$IGLOO_BASE_IMAGE" --tag igloo-bench:compose | tail -1
export IGLOO_IMAGE=igloo-bench:compose IGLOO_INGEST_PORTS=24000-24001 IGLOO_QUERY_PORT=24002
export IGLOO_CLICKHOUSE_NOFILE="$(ulimit -Hn)"
"$BIN/igloo" deploy --target compose --out deploy/compose >/dev/null
cat > deploy/compose/bench.yml <<'YAML'
services:
  clickhouse:
    ports: ["127.0.0.1:28123:8123"]
YAML
trap 'docker compose -f "$WORK/bench/deploy/compose/docker-compose.yml" -p '"$STACK"' down -v >/dev/null 2>&1; cd "$REPO"; rm -rf "$WORK"' EXIT
# The load generator sends no credential: the figures are ingest's own cost, without auth.
echo "IGLOO_SERVER_AUTH=off" > deploy/compose/.env
docker compose -f deploy/compose/docker-compose.yml -f deploy/compose/bench.yml -p "$STACK" up -d --wait >/dev/null 2>&1
echo "### compose: igloo build + igloo deploy --target compose (2 ingest, 2 writers; the load on one ingest replica)"
"$BIN/igloo-bench" --connections 64 --url http://127.0.0.1:24000/ingest/Measurement --clickhouse http://127.0.0.1:28123/ --table bench.Measurement --seconds "$SECONDS_PER_PHASE"
# The same stack with batch framing (several rows per Kafka message), which tansu favours:
# the stand-in broker is tansu, and `auto` framing means `record` everywhere but native mode.
docker compose -f deploy/compose/docker-compose.yml -f deploy/compose/bench.yml -p "$STACK" down -v >/dev/null 2>&1
printf 'IGLOO_SERVER_AUTH=off\nIGLOO_BROKER_FRAMING=batch\n' > deploy/compose/.env
docker compose -f deploy/compose/docker-compose.yml -f deploy/compose/bench.yml -p "$STACK" up -d --wait >/dev/null 2>&1
echo "### compose, broker.framing: batch (.env)"
"$BIN/igloo-bench" --connections 64 --url http://127.0.0.1:24000/ingest/Measurement --clickhouse http://127.0.0.1:28123/ --table bench.Measurement --seconds "$SECONDS_PER_PHASE"
echo "image igloo-bench:compose: $(docker image inspect --format '{{.Size}}' igloo-bench:compose | awk '{printf "%.0f MB", $1/1e6}') (base $IGLOO_BASE_IMAGE: $(docker image inspect --format '{{.Size}}' "$IGLOO_BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
