#!/usr/bin/env bash
# Runs every igloo test, after installing what the tests need. CI runs exactly this.
# The cargo target directory lives outside the checkout ($IGLOO_CACHE/target) so that fresh
# clones reuse earlier builds.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/common.sh
# Engine tests run Python with chdb-core from the virtualenv install-engines.sh made.
export IGLOO_TEST_PYTHON="${IGLOO_TEST_PYTHON:-$IGLOO_CACHE/venv/bin/python}"

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
