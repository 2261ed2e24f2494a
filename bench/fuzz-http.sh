#!/usr/bin/env bash
# HTTP fuzz run (issue 19): 100k malformed and adversarial requests against `igloo dev` (release
# build, native engines, loopback only), then the figures for BENCHMARKS.md. Every answer must
# be a 4xx, the server healthy afterwards, and its RSS within +64 MB.
#   bash bench/fuzz-http.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
. scripts/common.sh
. bench/dev.sh
REQUESTS="${1:-100000}"
SERVER_PID=$(python3 -c "import json;print(json.load(open('.igloo/dev.json'))['pid'])")
echo "### HTTP fuzz: $REQUESTS requests, igloo dev (release), $(date -u +%Y-%m-%d)"
python3 "$REPO/bench/fuzz_http.py" --url http://127.0.0.1:24000 --requests "$REQUESTS" --pid "$SERVER_PID"
