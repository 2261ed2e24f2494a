#!/usr/bin/env bash
# A real ClickHouse cluster on this machine, for igloo's cluster tests and for trying
# `clickhouse.cluster`: Debian's ZooKeeper, 4 ClickHouse servers (cluster `igloo`: 2 shards × 2
# replicas, `{shard}` / `{replica}` macros, distributed DDL) and one Kafka-API broker (tansu), on
# free local ports. Every process runs in the background; data and logs live in one directory.
#
#   bash scripts/local-cluster.sh up        # start; prints `export IGLOO_…=…` lines
#   bash scripts/local-cluster.sh status    # which processes run
#   bash scripts/local-cluster.sh kill N    # kill -9 ClickHouse node N (1..4)
#   bash scripts/local-cluster.sh start N   # start node N again, same ports and data
#   bash scripts/local-cluster.sh down      # stop everything and delete the directory
#
# Nodes 1 and 2 are shard 1's replicas, 3 and 4 shard 2's. The directory is
# $IGLOO_CLUSTER_DIR (default $IGLOO_CACHE/cluster, ~/.cache/igloo/cluster); `up` on a running
# cluster prints its variables again. Needs: clickhouse-server, zookeeper and a JRE, tansu
# (bash scripts/install-engines.sh installs them all).
set -euo pipefail

IGLOO_CACHE="${IGLOO_CACHE:-$HOME/.cache/igloo}"
DIR="${IGLOO_CLUSTER_DIR:-$IGLOO_CACHE/cluster}"
STATE="$DIR/ports.env"
NODES=4

die() { echo "local-cluster.sh: $*" >&2; exit 1; }
# N distinct free ports below the kernel's ephemeral range (32768+ here), so that no outgoing
# connection holds a stopped node's port when it starts again; the tests' own ports are
# 30000-32699, these 20000-29999.
free_ports() {
  python3 -c '
import random, socket, sys
n, found = int(sys.argv[1]), []
while len(found) < n:
    p = random.randint(20000, 29999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in found:
            found.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, found)))' "$1"
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() { # command, what, seconds
  for _ in $(seq 1 "$(( $3 * 10 ))"); do if eval "$1" >/dev/null 2>&1; then return 0; fi; sleep 0.1; done
  die "$2 did not come up within $3 s (logs in $DIR)"
}

# spawn PIDFILE DIR LOG COMMAND…: runs COMMAND in DIR in its own session, in the background;
# the process itself writes PIDFILE (setsid forks, so $! would not be its pid).
spawn() {
  local pidfile="$1" dir="$2" log="$3"
  shift 3
  (cd "$dir" && exec setsid --fork bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$log" 2>&1 </dev/null)
  for _ in $(seq 1 50); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
  die "$1 did not start"
}

print_env() {
  # shellcheck disable=SC1090
  . "$STATE"
  echo "export IGLOO_INFRA_MODE=external"
  echo "export IGLOO_CLICKHOUSE_URL=http://127.0.0.1:$HTTP_1"
  echo "export IGLOO_CLICKHOUSE_CLUSTER=igloo"
  echo "export IGLOO_BROKER_BOOTSTRAP_SERVERS=127.0.0.1:$BROKER_PORT"
  echo "# nodes (shard.replica → HTTP): 1.1 → $HTTP_1, 1.2 → $HTTP_2, 2.1 → $HTTP_3, 2.2 → $HTTP_4; ZooKeeper 127.0.0.1:$ZK_PORT"
}

node_config() { # N
  local n="$1" shard=$(( ($1 + 1) / 2 )) d="$DIR/ch$1"
  # shellcheck disable=SC1090
  . "$STATE"
  local http="HTTP_$n" tcp="TCP_$n" inter="INTER_$n"
  mkdir -p "$d/data/tmp" "$d/data/user_files" "$d/data/format_schemas" "$d/log"
  cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/local-cluster.sh: node $n, shard $shard of cluster igloo. -->
<yandex>
    <logger><level>information</level><log>$d/log/clickhouse-server.log</log><errorlog>$d/log/clickhouse-server.err.log</errorlog><size>50M</size><count>2</count></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>${!http}</http_port>
    <tcp_port>${!tcp}</tcp_port>
    <interserver_http_port>${!inter}</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>$d/data/</path>
    <tmp_path>$d/data/tmp/</tmp_path>
    <user_files_path>$d/data/user_files/</user_files_path>
    <format_schema_path>$d/data/format_schemas/</format_schema_path>
    <users_config>$d/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>134217728</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <shutdown_wait_unfinished>1</shutdown_wait_unfinished>
    <keep_alive_timeout>1</keep_alive_timeout>
    <!-- A killed node's session (and its replicas' is_active) expires in 6 s, not 30. -->
    <zookeeper><node><host>127.0.0.1</host><port>$ZK_PORT</port></node><session_timeout_ms>6000</session_timeout_ms></zookeeper>
    <!-- A node killed with -9 can hold a part its keeper never committed (an insert that was
         never acknowledged). ClickHouse detaches such parts at start, but refuses to start when
         they are more than half a table's rows, as in a small rollup table: allow any ratio. -->
    <merge_tree><replicated_max_ratio_of_wrong_parts>1</replicated_max_ratio_of_wrong_parts></merge_tree>
    <macros><shard>$shard</shard><replica>r$n</replica></macros>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
    <remote_servers>
        <igloo>
            <shard><internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$TCP_1</port></replica>
                <replica><host>127.0.0.1</host><port>$TCP_2</port></replica>
            </shard>
            <shard><internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$TCP_3</port></replica>
                <replica><host>127.0.0.1</host><port>$TCP_4</port></replica>
            </shard>
        </igloo>
    </remote_servers>
</yandex>
EOF
  cat >"$d/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
EOF
}

start_node() { # N
  local n="$1" d="$DIR/ch$1"
  alive "$d/pid" && return 0
  # shellcheck disable=SC1090
  . "$STATE"
  local http="HTTP_$n"
  spawn "$d/pid" "$d" "$d/log/stdout.log" clickhouse-server --config-file="$d/config.xml"
  if ! (wait_for "curl -sf http://127.0.0.1:${!http}/ping" "ClickHouse node $n" 60); then
    # The errors without their stack frames.
    grep -v '^[0-9]*\. ' "$d/log/clickhouse-server.err.log" 2>/dev/null | tail -n 6 | cut -c1-600 >&2 || true
    die "ClickHouse node $n did not come up within 60 s (logs in $d/log)"
  fi
}

up() {
  command -v clickhouse-server >/dev/null || die "clickhouse-server is not installed (bash scripts/install-engines.sh)"
  [ -x /usr/share/zookeeper/bin/zkServer.sh ] || die "ZooKeeper is not installed (apt-get install zookeeper openjdk-17-jre-headless, or bash scripts/install-engines.sh)"
  local tansu
  tansu="$(command -v tansu || echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu")"
  [ -x "$tansu" ] || die "tansu is not installed (bash scripts/install-engines.sh)"
  if [ -f "$STATE" ] && alive "$DIR/zk.pid"; then
    for n in $(seq 1 $NODES); do start_node "$n"; done
    print_env
    return
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR/zk" "$DIR/broker"
  local ports
  read -r -a ports <<<"$(free_ports $(( 2 + 3 * NODES )))"
  {
    echo "ZK_PORT=${ports[0]}"
    echo "BROKER_PORT=${ports[1]}"
    for n in $(seq 1 $NODES); do
      echo "HTTP_$n=${ports[$(( 3 * n - 1 ))]}"; echo "TCP_$n=${ports[$(( 3 * n ))]}"; echo "INTER_$n=${ports[$(( 3 * n + 1 ))]}"
    done
  } >"$STATE"
  # shellcheck disable=SC1090
  . "$STATE"

  printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s/zk\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=200\n' "$DIR" "$ZK_PORT" >"$DIR/zoo.cfg"
  ZOO_LOG_DIR="$DIR/zk" spawn "$DIR/zk.pid" "$DIR/zk" "$DIR/zk/stdout.log" /usr/share/zookeeper/bin/zkServer.sh start-foreground "$DIR/zoo.cfg"
  wait_for "(exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT)" "ZooKeeper" 60

  spawn "$DIR/broker.pid" "$DIR/broker" "$DIR/broker/stdout.log" "$tansu" broker --cluster-id igloo \
    --listener-url "tcp://127.0.0.1:$BROKER_PORT" --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
    --storage-engine sqlite://tansu.db
  wait_for "(exec 3<>/dev/tcp/127.0.0.1/$BROKER_PORT)" "the broker" 30

  for n in $(seq 1 $NODES); do node_config "$n"; start_node "$n"; done
  # Distributed DDL answers once every node has registered with ZooKeeper.
  wait_for "curl -sf 'http://127.0.0.1:$HTTP_1/' --data-binary 'CREATE DATABASE IF NOT EXISTS _igloo_cluster_check ON CLUSTER igloo' && curl -sf 'http://127.0.0.1:$HTTP_1/' --data-binary 'DROP DATABASE IF EXISTS _igloo_cluster_check ON CLUSTER igloo'" "distributed DDL on cluster igloo" 120
  print_env
}

stop_pid() { # pidfile
  if alive "$1"; then
    local pid; pid="$(cat "$1")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # Only if it is still there: an exited pid can be another process's soon (pid_max 32768).
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$1"
}

case "${1:-}" in
  up) up ;;
  down)
    [ -d "$DIR" ] || exit 0
    for n in $(seq 1 $NODES); do stop_pid "$DIR/ch$n/pid"; done
    stop_pid "$DIR/broker.pid"
    stop_pid "$DIR/zk.pid"
    rm -rf "$DIR"
    ;;
  kill)
    n="${2:?kill N: which node, 1..$NODES}"
    [ -f "$DIR/ch$n/pid" ] || die "node $n is not running"
    kill -KILL "$(cat "$DIR/ch$n/pid")" 2>/dev/null || true
    rm -f "$DIR/ch$n/pid"
    echo "node $n killed"
    ;;
  start)
    n="${2:?start N: which node, 1..$NODES}"
    [ -f "$STATE" ] || die "no cluster here; run up first"
    start_node "$n"
    echo "node $n running"
    ;;
  status)
    [ -f "$STATE" ] || { echo "no cluster in $DIR"; exit 0; }
    for p in zk broker; do echo "$p: $(alive "$DIR/$p.pid" && echo running || echo stopped)"; done
    for n in $(seq 1 $NODES); do echo "clickhouse $n: $(alive "$DIR/ch$n/pid" && echo running || echo stopped)"; done
    print_env
    ;;
  -h|--help|"") sed -n '2,19p' "$0" ;;
  *) die "unknown command $1 (see --help)" ;;
esac
