# Sourced by the benchmark scripts (from the repository root, after scripts/common.sh): builds
# igloo and igloo-bench in release mode, creates a fresh time-series project `bench` in a
# temporary directory, starts `igloo dev` on it with native engines on fixed ports (ClickHouse
# HTTP 28123, broker 29092, server 24000), waits until the ingest API is up, and prints the
# machine line. Leaves BIN (the release binaries) set and the working directory in the project;
# stops everything on exit. IGLOO_BENCH_BIN=DIR runs the `igloo` and `igloo-bench` in DIR
# instead of building them (to compare two builds, copied aside, round by round).
if [ -n "${IGLOO_BENCH_BIN:-}" ]; then
  BIN="$IGLOO_BENCH_BIN"
else
  cargo build --release --locked -p igloo-cli -p igloo-bench 2>&1 | tail -1
  BIN="$CARGO_TARGET_DIR/release"
fi
WORK="$(mktemp -d)"
trap 'cd "$WORK/bench" 2>/dev/null && "$BIN/igloo" down >/dev/null 2>&1; rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN/igloo" init bench --template timeseries --yes >/dev/null
cd bench
export IGLOO_INFRA_MODE=native IGLOO_CLICKHOUSE_HTTP_PORT=28123 IGLOO_CLICKHOUSE_TCP_PORT=29000 IGLOO_BROKER_PORT=29092 IGLOO_SERVER_LISTEN=127.0.0.1:24000
"$BIN/igloo" dev > dev.out 2>&1 &
for _ in $(seq 1 600); do grep -q "Ingest API" dev.out && break; sleep 0.1; done
grep -q "Ingest API" dev.out || { cat dev.out; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; ClickHouse $(curl -s localhost:28123 --data-binary 'SELECT version()'), broker: $(python3 -c "import json;print(json.load(open('.igloo/dev.json'))['engines'][1]['name'])") ($(basename "$(readlink -f "$(command -v tansu || echo ~/.cargo/bin/tansu)")"))"
