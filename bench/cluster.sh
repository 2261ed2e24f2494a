#!/usr/bin/env bash
# Ingest and `/api` on the local ClickHouse cluster beside a single server, same run, same
# machine: each target gets a fresh time-series project under `igloo dev` (release build) —
# native engines for the single server; scripts/local-cluster.sh's cluster (ZooKeeper, 4
# ClickHouse 18.16 servers = 2 shards × 2 replicas, a broker) for the cluster — then
# bench/src/main.rs (single-event and batched ingest, ingest → queryable lag) and
# bench/src/query.rs (`/api` at 10 req/s over ROWS preloaded events while ingest runs).
# Every process shares the same 2 cores, so the cluster runs 4 ClickHouse servers where the
# single server runs one: the figures say what the cluster costs here, not what it scales to.
# Prints Markdown for BENCHMARKS.md.
# Usage: bash bench/cluster.sh [rows, default 5000000] [seconds per phase, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ROWS="${1:-5000000}"
SECONDS_PER_PHASE="${2:-20}"
REPO="$PWD"

cargo build --release --locked -p igloo-cli -p igloo-bench 2>&1 | tail -1
BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d)"
CLUSTER_DIR="$WORK/cluster"
stop_all() {
  for p in single cluster; do
    [ -d "$WORK/$p/bench" ] && (cd "$WORK/$p/bench" && "$BIN/igloo" down >/dev/null 2>&1 || true)
    [ -f "$WORK/$p.pid" ] && kill "$(cat "$WORK/$p.pid")" 2>/dev/null || true
  done
  IGLOO_CLUSTER_DIR="$CLUSTER_DIR" bash "$REPO/scripts/local-cluster.sh" down >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap stop_all EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "command: bash bench/cluster.sh $ROWS $SECONDS_PER_PHASE"

# run TARGET CLICKHOUSE_URL: igloo dev on a fresh project in $WORK/TARGET (the environment
# says which engines), then both benchmarks.
run() {
  local target="$1" ch="$2"
  mkdir -p "$WORK/$target" && cd "$WORK/$target"
  "$BIN/igloo" init bench --template timeseries --yes >/dev/null
  cd bench
  "$BIN/igloo" dev > dev.out 2>&1 &
  echo $! > "$WORK/$target.pid"
  for _ in $(seq 1 600); do grep -q "Ingest API" dev.out && break; sleep 0.1; done
  grep -q "Ingest API" dev.out || { cat dev.out; exit 1; }
  echo
  echo "### $target"
  echo
  "$BIN/igloo-bench" --connections 64 --url http://127.0.0.1:24000/ingest/Measurement --clickhouse "$ch/" \
    --table bench.Measurement --pid "$(cat "$WORK/$target.pid")" --seconds "$SECONDS_PER_PHASE"
  "$BIN/igloo-bench-query" --api http://127.0.0.1:24000 --clickhouse "$ch/?insert_distributed_sync=1" --database bench \
    --rows "$ROWS" --seconds "$SECONDS_PER_PHASE"
  kill -INT "$(cat "$WORK/$target.pid")"; wait "$(cat "$WORK/$target.pid")" 2>/dev/null || true
  rm -f "$WORK/$target.pid"
  cd "$REPO"
}

export IGLOO_SERVER_LISTEN=127.0.0.1:24000
IGLOO_INFRA_MODE=native IGLOO_CLICKHOUSE_HTTP_PORT=28123 IGLOO_CLICKHOUSE_TCP_PORT=29000 IGLOO_BROKER_PORT=29092 \
  run single http://127.0.0.1:28123

eval "$(IGLOO_CLUSTER_DIR="$CLUSTER_DIR" bash scripts/local-cluster.sh up | grep '^export')"
run cluster "$IGLOO_CLICKHOUSE_URL"
echo
echo "cluster: $(curl -s "$IGLOO_CLICKHOUSE_URL/" --data-binary "SELECT arrayStringConcat(groupArray(concat('shard ', toString(shard_num), ': ', toString(c))), ', ') FROM (SELECT shard_num, c FROM (SELECT 1 AS shard_num, count() AS c FROM remote('$(curl -s "$IGLOO_CLICKHOUSE_URL/" --data-binary "SELECT concat(host_name, ':', toString(port)) FROM system.clusters WHERE cluster = 'igloo' AND shard_num = 1 AND replica_num = 1")', bench, Measurement_local) UNION ALL SELECT 2, count() FROM remote('$(curl -s "$IGLOO_CLICKHOUSE_URL/" --data-binary "SELECT concat(host_name, ':', toString(port)) FROM system.clusters WHERE cluster = 'igloo' AND shard_num = 2 AND replica_num = 1")', bench, Measurement_local)) ORDER BY shard_num)") rows"
