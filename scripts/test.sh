#!/usr/bin/env bash
# Runs every igloo test, after installing what the tests need. CI runs exactly this.
# The cargo target directory lives outside the checkout ($IGLOO_CACHE/target) so that fresh
# clones reuse earlier builds.
set -euo pipefail
cd "$(dirname "$0")/.."

IGLOO_CACHE="${IGLOO_CACHE:-$HOME/.cache/igloo}"
export IGLOO_CACHE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$IGLOO_CACHE/target}"
# Engine tests run Python with chdb-core from the virtualenv install-engines.sh made.
export IGLOO_TEST_PYTHON="${IGLOO_TEST_PYTHON:-$IGLOO_CACHE/venv/bin/python}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: cargo not found; install Rust from https://rustup.rs and re-run" >&2
  exit 1
fi

bash scripts/install-engines.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
cargo test --workspace --locked 2>&1 | tee "$LOG"
# One closing line with the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "\ntotal: %d passed, %d failed, %d skipped\n", p, f, s }' "$LOG"
