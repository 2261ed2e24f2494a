#!/usr/bin/env bash
# Sets everything up and runs the time-series example end to end: installs the engines, builds
# igloo, creates the example project, checks it, shows the offline plans for ClickHouse 18.16
# and current ClickHouse, then runs `igloo dev` (native ClickHouse + broker, tables and topics
# created from the schema), inspects it, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

. scripts/common.sh

bash scripts/install-engines.sh

echo "==> Building igloo"
cargo build --release --locked -p igloo-cli
IGLOO="$CARGO_TARGET_DIR/release/igloo"

WORK="${IGLOO_EXAMPLE_DIR:-$ROOT/examples/timeseries}"
echo "==> Creating the time-series example in $WORK"
if [ -f "$WORK/igloo.yaml" ]; then (cd "$WORK" && "$IGLOO" down >/dev/null || true); fi
"$IGLOO" init "$WORK" --template timeseries --yes --force >/dev/null
cd "$WORK"

echo "==> igloo check"
"$IGLOO" check
for target in 18.16 current; do
  echo "==> igloo plan --offline --target $target"
  "$IGLOO" plan --offline --target "$target"
done

echo "==> igloo dev (in the background; its output goes to $WORK/.igloo/dev.out)"
mkdir -p .igloo
"$IGLOO" dev --mode native > .igloo/dev.out 2>&1 &
DEV_PID=$!
trap 'kill $DEV_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  if grep -q "Ready in" .igloo/dev.out; then break; fi
  if ! kill -0 $DEV_PID 2>/dev/null; then cat .igloo/dev.out; echo "igloo dev exited" >&2; exit 1; fi
  sleep 0.1
done
cat .igloo/dev.out
echo "==> igloo ps"
"$IGLOO" ps
echo "==> igloo plan (against the running engines)"
"$IGLOO" plan
echo "==> igloo down"
"$IGLOO" down
wait $DEV_PID || true
trap - EXIT
echo
echo "Done. The project is in $WORK; igloo is at $IGLOO."
