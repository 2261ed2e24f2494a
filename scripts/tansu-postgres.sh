#!/usr/bin/env bash
# A PostgreSQL database for the local broker's storage (broker.storage, IGLOO_BROKER_STORAGE):
# tansu then keeps topics, data and offsets in PostgreSQL and holds no state of its own, so a
# tansu that is killed comes back to exactly what it had. The fault matrix uses it
# (scripts/fault-matrix.sh): tansu's SQLite storage panics after repeated kill -9s.
#
#   bash scripts/tansu-postgres.sh up [DB]     # start; prints `export IGLOO_BROKER_STORAGE=…`
#   bash scripts/tansu-postgres.sh reset [DB]  # the database DB (default tansu), empty again
#   bash scripts/tansu-postgres.sh down        # stop PostgreSQL and delete its directory
#
# Needs PostgreSQL 16 or later (tansu 0.6's queries do not parse on 15, Debian 12's): PyPI's
# pgserver in $IGLOO_CACHE/venv, or /usr/lib/postgresql/16+ (bash scripts/install-engines.sh
# installs pgserver), and a tansu built with the `postgres` feature (install-engines.sh builds it
# so). Data in $IGLOO_TANSU_PG_DIR (default /tmp/igloo-tansu-postgres); port
# $IGLOO_TANSU_PG_PORT (default 25432).
set -euo pipefail
cd "$(dirname "$0")"
IGLOO_CACHE="${IGLOO_CACHE:-$HOME/.cache/igloo}"
# Not under $HOME: run as root, PostgreSQL runs as `postgres`, which cannot enter /root.
DIR="${IGLOO_TANSU_PG_DIR:-${TMPDIR:-/tmp}/igloo-tansu-postgres}"
PORT="${IGLOO_TANSU_PG_PORT:-25432}"

die() { echo "tansu-postgres.sh: $*" >&2; exit 1; }
BIN="$(ls -d "$IGLOO_CACHE"/venv/lib/python3*/site-packages/pgserver/pginstall/bin /usr/lib/postgresql/1[6-9]/bin \
  2>/dev/null | head -1 || true)"
[ -n "$BIN" ] || die "PostgreSQL 16 or later is not installed: bash scripts/install-engines.sh installs it (PyPI pgserver)"
[ "$(id -u)" -eq 0 ] && [ -x "$DIR/pg/bin/postgres" ] && BIN="$DIR/pg/bin"
# PostgreSQL refuses to run as root: as root, its files belong to the `postgres` user.
as_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
psql_pg() { PGOPTIONS='-c client_min_messages=warning' "$BIN/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
running() { [ -f "$DIR/data/postmaster.pid" ] && as_pg "'$BIN/pg_ctl' -D '$DIR/data' status" >/dev/null 2>&1; }

DB="${2:-tansu}"
[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || die "database name \`$DB\`: lower-case letters, digits and _ only"
URL="postgres://postgres@127.0.0.1:$PORT/$DB"

start() {
  running && return
  mkdir -p "$DIR"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    # The `postgres` user cannot read root's home: run a copy of the binaries it owns
    # (pgserver's find their libraries at $ORIGIN/../../../pgserver.libs).
    if [ ! -x "$DIR/pg/bin/postgres" ]; then
      mkdir -p "$DIR/pgroot/pgserver"
      cp -a "$BIN/.." "$DIR/pgroot/pgserver/pginstall"
      [ -d "$BIN/../../../pgserver.libs" ] && cp -a "$BIN/../../../pgserver.libs" "$DIR/pgroot/"
      ln -sfn "$DIR/pgroot/pgserver/pginstall" "$DIR/pg"
    fi
    BIN="$DIR/pg/bin"
    chown -R postgres "$DIR"
  fi
  if [ ! -d "$DIR/data" ]; then
    as_pg "'$BIN/initdb' -D '$DIR/data' -U postgres --auth=trust" >"$DIR/initdb.log" 2>&1 \
      || die "initdb failed: see $DIR/initdb.log"
  fi
  as_pg "'$BIN/pg_ctl' -D '$DIR/data' -w -l '$DIR/postgres.log' -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1\" start" >/dev/null \
    || die "PostgreSQL did not start: see $DIR/postgres.log"
}

# The database, empty, with tansu's tables.
create_database() {
  psql_pg -d postgres -c "drop database if exists $DB" -c "create database $DB"
  psql_pg -d "$DB" -f "$PWD/tansu-postgres.sql"
}

case "${1:-}" in
  up)
    start
    psql_pg -d "$DB" -c "select 1 from topic limit 1" >/dev/null 2>&1 || create_database
    echo "export IGLOO_BROKER_STORAGE=$URL"
    ;;
  reset)
    start
    create_database
    echo "export IGLOO_BROKER_STORAGE=$URL"
    ;;
  down)
    if running; then as_pg "'$BIN/pg_ctl' -D '$DIR/data' -m fast stop" >/dev/null; fi
    rm -rf "$DIR"
    ;;
  *) sed -n '2,16p' "$(basename "$0")"; exit 2 ;;
esac
