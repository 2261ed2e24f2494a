#!/usr/bin/env bash
# Sets everything up and runs the time-series example end to end:
# installs the engines, builds igloo, creates the example project, checks it, and shows the
# plan for ClickHouse 18.16 and for current ClickHouse.
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
"$IGLOO" init "$WORK" --template timeseries --yes --force >/dev/null
cd "$WORK"

echo "==> igloo check"
"$IGLOO" check
for target in 18.16 current; do
  echo "==> igloo plan --offline --target $target"
  "$IGLOO" plan --offline --target "$target"
done
echo
echo "Done. The project is in $WORK; igloo is at $IGLOO."
