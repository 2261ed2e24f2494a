#!/usr/bin/env bash
# Builds local stand-ins for the images igloo's Docker files name, from what a machine without
# registry access can reach: a Debian base made with debootstrap, Debian's ClickHouse, tansu and
# igloo built on this machine. Idempotent: an image that exists is kept (--rebuild replaces).
#
#   bash scripts/local-images.sh               # build what is missing
#   bash scripts/local-images.sh --with-igloo  # also igloo-local/igloo:dev (docker/reference)
#   bash scripts/local-images.sh --rebuild     # build everything again
#   bash scripts/local-images.sh --print-env   # only print the export lines (after building)
#
# The images, and what they stand in for:
#   igloo-local/debian:bookworm     debian:bookworm-slim (the base of everything below, and of
#                                   `igloo build --base-image`)
#   igloo-local/clickhouse:18.16    clickhouse/clickhouse-server (Debian's 18.16; same ports,
#                                   volume and healthcheck command)
#   igloo-local/redpanda:tansu      docker.redpanda.com/redpandadata/redpanda (tansu behind a
#                                   `redpanda start` / `rpk cluster health` shim)
#   igloo-local/igloo:dev           docker/Dockerfile's image (igloo, igloo-bench-reference and
#                                   the /reference project), from this checkout's release build;
#                                   only with --with-igloo (IGLOO_IMAGE is then printed too)
# Then: eval "$(bash scripts/local-images.sh --print-env)" and igloo's compose files, `igloo dev`
# in docker mode and `igloo deploy --target compose` use them.
set -euo pipefail
cd "$(dirname "$0")/.."

REBUILD=0
PRINT=0
WITH_IGLOO=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) REBUILD=1 ;;
    --print-env) PRINT=1 ;;
    --with-igloo) WITH_IGLOO=1 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "local-images.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

BASE=igloo-local/debian:bookworm
CLICKHOUSE=igloo-local/clickhouse:18.16
BROKER=igloo-local/redpanda:tansu
IGLOO=igloo-local/igloo:dev

print_env() {
  echo "export IGLOO_BASE_IMAGE=$BASE"
  echo "export IGLOO_CLICKHOUSE_IMAGE=$CLICKHOUSE"
  echo "export IGLOO_BROKER_IMAGE=$BROKER"
  if [ "$WITH_IGLOO" = 1 ]; then echo "export IGLOO_IMAGE=$IGLOO"; fi
}

step() { printf '==> %s\n' "$*" >&2; }
have() { [ "$REBUILD" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }
# `docker build` quietly; its output only when it fails.
build() {
  local tag="$1" dir="$2"
  docker build -q -t "$tag" "$dir" >"$dir/build.log" 2>&1 || { cat "$dir/build.log" >&2; exit 1; }
}

bash scripts/docker-daemon.sh >&2
# One build at a time (tests running in parallel call this script too).
exec 9>"${TMPDIR:-/tmp}/igloo-local-images.lock"
flock 9
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
WORK="$(mktemp -d)"
trap '$SUDO rm -rf "$WORK"' EXIT

# The Debian mirror apt uses on this machine (deb822 or one-line sources).
mirror() {
  local m
  m="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)"
  [ -n "$m" ] || m="$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)"
  echo "${m:-http://deb.debian.org/debian}"
}

if have "$BASE"; then
  step "$BASE: already built"
else
  step "$BASE: debootstrap of Debian bookworm (minbase, about a minute)"
  $SUDO debootstrap --variant=minbase bookworm "$WORK/rootfs" "$(mirror)" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  $SUDO rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  $SUDO tar -C "$WORK/rootfs" -c . | docker import -c 'CMD ["bash"]' - "$BASE" >/dev/null
fi

if have "$CLICKHOUSE"; then
  step "$CLICKHOUSE: already built"
else
  step "$CLICKHOUSE: Debian's clickhouse-server on $BASE"
  mkdir -p "$WORK/clickhouse"
  cat >"$WORK/clickhouse/Dockerfile" <<EOF
FROM $BASE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      clickhouse-server wget ca-certificates >/dev/null \\
    && rm -rf /var/lib/apt/lists/* \\
    && sed -i -e '0,/<yandex>/s||<yandex><listen_host>0.0.0.0</listen_host>|' /etc/clickhouse-server/config.xml \\
    && mkdir -p /var/lib/clickhouse /var/log/clickhouse-server \\
    && chown -R clickhouse:clickhouse /var/lib/clickhouse /var/log/clickhouse-server
USER clickhouse
EXPOSE 8123 9000
VOLUME /var/lib/clickhouse
CMD ["clickhouse-server", "--config-file=/etc/clickhouse-server/config.xml"]
EOF
  build "$CLICKHOUSE" "$WORK/clickhouse"
fi

if have "$BROKER"; then
  step "$BROKER: already built"
else
  step "$BROKER: tansu behind Redpanda's command line on $BASE"
  TANSU="$(command -v tansu || echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu")"
  [ -x "$TANSU" ] || { echo "local-images.sh: tansu not found (bash scripts/install-engines.sh builds it)" >&2; exit 1; }
  mkdir -p "$WORK/broker"
  cp "$TANSU" "$WORK/broker/tansu"
  cat >"$WORK/broker/redpanda" <<'EOF'
#!/bin/bash
# igloo's stand-in for the Redpanda image: `redpanda start --kafka-addr=… --advertise-kafka-addr=…`
# runs tansu with one listener: the `external` one when there is one, else the first.
set -euo pipefail
[ "${1:-}" = "redpanda" ] && shift
[ "${1:-}" = "start" ] && shift
kafka="internal://0.0.0.0:9092"; advertise=""
for a in "$@"; do
  case "$a" in
    --kafka-addr=*) kafka="${a#*=}" ;;
    --advertise-kafka-addr=*) advertise="${a#*=}" ;;
  esac
done
pick() {
  local item; IFS=, read -ra items <<<"$1"
  for item in "${items[@]}"; do [[ $item == external://* ]] && { echo "${item#*://}"; return; }; done
  echo "${items[0]#*://}"
}
listen="$(pick "$kafka")"; adv="$(pick "${advertise:-internal://$(hostname):${listen##*:}}")"
echo "${listen##*:}" >/tmp/broker-port
mkdir -p /var/lib/redpanda/data && cd /var/lib/redpanda/data
exec tansu broker --cluster-id igloo --listener-url "tcp://$listen" --advertised-listener-url "tcp://$adv" --storage-engine sqlite://tansu.db
EOF
  cat >"$WORK/broker/rpk" <<'EOF'
#!/bin/bash
# igloo's stand-in for `rpk cluster health`: healthy once the broker's port accepts connections.
port="$(cat /tmp/broker-port 2>/dev/null || echo 9092)"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "Healthy: true"; else echo "Healthy: false"; exit 1; fi
EOF
  chmod +x "$WORK/broker/redpanda" "$WORK/broker/rpk"
  cat >"$WORK/broker/Dockerfile" <<EOF
FROM $BASE
COPY tansu redpanda rpk /usr/local/bin/
VOLUME /var/lib/redpanda/data
ENTRYPOINT ["/usr/local/bin/redpanda"]
CMD ["redpanda", "start"]
EOF
  build "$BROKER" "$WORK/broker"
fi

if [ "$WITH_IGLOO" = 1 ] && [ -n "${IGLOO_LOCAL_IMAGES_NO_CARGO:-}" ]; then
  # Inside `cargo test` (which holds cargo's build lock): use the image test.sh built.
  docker image inspect "$IGLOO" >/dev/null 2>&1 \
    || { echo "local-images.sh: $IGLOO is missing; build it first: bash scripts/local-images.sh --with-igloo" >&2; exit 1; }
elif [ "$WITH_IGLOO" = 1 ]; then
  # Rebuilt whenever this checkout's release binaries differ from the image's (a label).
  . scripts/common.sh
  step "$IGLOO: cargo build --release (igloo, igloo-bench-reference)"
  cargo build --release --locked -q -p igloo-cli -p igloo-bench
  BINS=("$CARGO_TARGET_DIR/release/igloo" "$CARGO_TARGET_DIR/release/igloo-bench-reference")
  SUM="$(cat "${BINS[@]}" | sha256sum | cut -c1-16)"
  if [ "$REBUILD" = 0 ] && [ "$(docker image inspect --format '{{ index .Config.Labels "igloo.binaries" }}' "$IGLOO" 2>/dev/null)" = "$SUM" ]; then
    step "$IGLOO: up to date"
  else
    step "$IGLOO: igloo and igloo-bench-reference on $BASE"
    mkdir -p "$WORK/igloo"
    cp "${BINS[@]}" "$WORK/igloo/"
    # The runtime stage of docker/Dockerfile, on the local base.
    cat >"$WORK/igloo/Dockerfile" <<EOF
FROM $BASE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      ca-certificates curl libssl3 zlib1g >/dev/null && rm -rf /var/lib/apt/lists/*
COPY igloo igloo-bench-reference /usr/local/bin/
WORKDIR /
RUN igloo init reference --template timeseries --yes >/dev/null
WORKDIR /reference
LABEL igloo.binaries=$SUM
EXPOSE 4000
CMD ["igloo", "serve"]
EOF
    build "$IGLOO" "$WORK/igloo"
  fi
fi

if [ "$PRINT" = 1 ]; then
  print_env
else
  step "Done. To use them: eval \"\$(bash scripts/local-images.sh --print-env)\""
fi
