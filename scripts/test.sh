#!/usr/bin/env bash
# Runs every igloo test, after installing what the tests need. CI runs exactly this.
# The cargo target directory lives outside the checkout ($IGLOO_CACHE/target) so that fresh
# clones reuse earlier builds.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/common.sh
# Engine tests run Python with chdb-core from the virtualenv install-engines.sh made.
export IGLOO_TEST_PYTHON="${IGLOO_TEST_PYTHON:-$IGLOO_CACHE/venv/bin/python}"
# Screenshots of the console's browser test land here (CI keeps them as artifacts).
export IGLOO_TEST_ARTIFACTS="${IGLOO_TEST_ARTIFACTS:-$PWD/artifacts}"

bash scripts/install-engines.sh
# The Docker tests: a daemon (started here when none runs) and the local stand-in images (no
# registry is reachable on these machines). Without an engine, those tests say so and skip.
if bash scripts/docker-daemon.sh; then
  bash scripts/local-images.sh --with-igloo
else
  echo "==> Docker: no engine could be started; the Docker tests will skip"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
cargo test --workspace --locked 2>&1 | tee "$LOG"
echo "==> sdk-py: mypy --strict, pytest"
"$IGLOO_TEST_PYTHON" -m mypy --strict sdk-py/src sdk-py/tests
"$IGLOO_TEST_PYTHON" -m pytest -q sdk-py/tests 2>&1 | tee -a "$LOG"
echo "==> sdk-ts: tsc --strict, node --test"
(cd sdk-ts && npm run --silent build && node --test test/) 2>&1 | tee -a "$LOG"
echo "==> console.js: tsc (// @ts-check)"
sdk-ts/node_modules/.bin/tsc -p server/src/console/assets
# One closing line with the totals over every test binary and suite (cargo, pytest, node).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     /^[0-9]+ passed/ && / in [0-9.]+s/ { p += $1; for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) f += $i }
     /^# pass / { p += $3 } /^# fail / { f += $3 } /^# skipped / { s += $3 }
     END { printf "\ntotal: %d passed, %d failed, %d skipped\n", p, f, s }' "$LOG"
