#!/usr/bin/env bash
# Makes sure a Docker daemon answers: starts `dockerd` in the background when none does (on
# machines without systemd, such as CI containers). Idempotent; prints where its log goes.
#
#   bash scripts/docker-daemon.sh          # start if needed, wait until `docker info` answers
#   bash scripts/docker-daemon.sh --check  # exit 0 if a daemon answers, 1 if not (no start)
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-daemon.sh: dockerd is not installed (bash scripts/install-engines.sh installs it)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
LOG="${TMPDIR:-/tmp}/igloo-dockerd.log"
echo "==> Docker: starting dockerd (log: $LOG)"
$SUDO setsid dockerd >"$LOG" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-daemon.sh: dockerd did not answer within 60 s; its log:" >&2
tail -20 "$LOG" >&2
exit 1
