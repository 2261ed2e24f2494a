#!/usr/bin/env bash
# Parser and validation fuzzing (issue 19): the property tests of the schema parser, checker
# and importer (schemas/tests/never_panics.rs) and of ingest's JSON and validation
# (server/src/validate/tests.rs), each with IGLOO_FUZZ_CASES generated inputs (default 10
# million; the importer's two properties a tenth of that, each case being four imports and four
# checks), release build. CI runs the same properties with their small defaults.
#   bash scripts/fuzz.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
CASES="${1:-10000000}"
echo "### Fuzzing: $CASES inputs per property, $(nproc) cores, $(date -u +%Y-%m-%d)"
run() {
  local what="$1"; shift
  local started=$SECONDS
  IGLOO_FUZZ_CASES="$CASES" IGLOO_FUZZ_IMPORT_CASES="$((CASES / 10))" cargo test --release --locked -q "$@" 2>&1 | grep -E "test result|panicked|minimal failing" || true
  echo "$what: $((SECONDS - started)) s"
}
run "schema parser, checker and importer" -p igloo-schemas --test never_panics
run "ingest JSON and validation" -p igloo-server --lib validate::tests::properties
