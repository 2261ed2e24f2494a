//! igloo on a real ClickHouse cluster (scripts/local-cluster.sh: ZooKeeper, 4 ClickHouse 18.16
//! servers = cluster `igloo` of 2 shards × 2 replicas, a broker). `igloo migrate` creates every
//! table on every node and completes a node that lacks one; `igloo serve` writes a stream
//! exactly once through a replica killed mid-stream (queries keep answering) and a whole shard
//! down (queries answer 503, `/ready` names the shard), while ingest keeps acknowledging;
//! rows left on one replica only are found and deleted; exports, consumption APIs and
//! subscriptions work on the cluster.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::*;

/// Waits until `acked` grows, i.e. ingest is acknowledged now.
fn ingest_goes_on(acked: &AtomicU64, what: &str) {
    let before = acked.load(Ordering::Relaxed);
    eventually(Duration::from_secs(10), what, || (acked.load(Ordering::Relaxed) > before + 200).then_some(()));
}

/// `igloo migrate --yes`, or `igloo plan`: the output, once it succeeded.
/// Waits until each shard holds its partitions' rows once, its replicas agree, and together
/// they hold the `acked` events written `0..acked`; then checks it stays so and reads the same
/// through `Distributed` on every node. Returns the rows of shard 1 and shard 2.
///
/// While a shard that was down catches up, rows written again can be visible beside the ones
/// its late delete removes, until its DDL queue runs that delete (docs/ARCHITECTURE.md, "A
/// delete that runs late"): duplicates are allowed on the way, not once settled.
fn all_written_once(cluster: &LocalCluster, acked: u64) -> (u64, u64) {
    let local = "SELECT count(), uniqExact(tag, time), max(time) FROM devapp.Measurement_local FORMAT TSV";
    // (rows, distinct rows) of a node's local table.
    let counts = |node: usize| -> Option<(u64, u64)> {
        let got = cluster.sql(node, local);
        let mut f = got.split('\t');
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    };
    let since = std::time::Instant::now();
    let settled = eventually(Duration::from_secs(125), "every event on its shard, once", || {
        let c: Vec<Option<(u64, u64)>> = (1..=4).map(counts).collect();
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "(rows, distinct) per node {c:?}, acknowledged {acked}{}",
            cluster.diagnose()
        );
        let c: Vec<(u64, u64)> = c.into_iter().collect::<Option<_>>()?;
        let once = c.iter().all(|(n, distinct)| n == distinct);
        (once && c[0] == c[1] && c[2] == c[3] && c[0].0 + c[2].0 == acked).then_some(c)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!((1..=4).map(|n| counts(n).unwrap()).collect::<Vec<_>>(), settled, "acknowledged {acked}");
    let settled: Vec<u64> = settled.into_iter().map(|(n, _)| n).collect();
    for node in 1..=4 {
        let count = "SELECT count(), uniqExact(tag, time) FROM devapp.Measurement FORMAT TSV";
        assert_eq!(cluster.sql(node, count), format!("{acked}\t{acked}"), "through Distributed on node {node}");
    }
    let partitions = "SELECT groupUniqArray(_igloo_partition % 2) FROM devapp.Measurement_local";
    assert_eq!((cluster.sql(1, partitions).as_str(), cluster.sql(3, partitions).as_str()), ("[0]", "[1]"));
    (settled[0], settled[2])
}

/// The rows each shard's 1 h rollup counted, once both replicas of each agree.
fn rollups(cluster: &LocalCluster) -> (u64, u64) {
    let rolled = "SELECT countMerge(_count) FROM devapp._igloo_rollup_Measurement_1h_local";
    eventually(Duration::from_secs(60), "the replicas' rollups agree", || {
        let r: Vec<u64> = (1..=4).map(|n| cluster.sql(n, rolled).parse().ok()).collect::<Option<_>>()?;
        (r[0] == r[1] && r[2] == r[3]).then_some((r[0], r[2]))
    })
}

fn migrate(root: &std::path::Path, ports: &Ports, cmd: &str) -> String {
    let args: &[&str] = if cmd == "migrate" { &["migrate", "--yes"] } else { &[cmd] };
    let out = igloo(root, ports).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "igloo {cmd}: {text}");
    text
}

#[test]
fn igloo_on_a_cluster_writes_exactly_once_through_a_replica_and_a_shard_down() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::up(&tmp.path().join("cluster"));
    assert_eq!(cluster.var("IGLOO_CLICKHOUSE_CLUSTER"), "igloo");
    assert_eq!(cluster.nodes.len(), 4);
    let root = project(tmp.path());
    let ports = cluster.ports();

    // Every table on every node: a replicated local table under a Distributed one.
    let out = migrate(&root, &ports, "migrate");
    assert!(out.contains("+ table devapp.Measurement"), "{out}");
    let tables = "SELECT name, engine FROM system.tables WHERE database = 'devapp' ORDER BY name FORMAT TSV";
    let on_node1 = cluster.sql(1, tables);
    assert!(on_node1.contains("Measurement\tDistributed\nMeasurement_local\tReplicatedMergeTree"), "{on_node1}");
    assert!(on_node1.contains("_igloo_rollup_Measurement_1s_local\tReplicatedAggregatingMergeTree"), "{on_node1}");
    for node in 2..=4 {
        assert_eq!(cluster.sql(node, tables), on_node1, "node {node}");
    }
    assert!(migrate(&root, &ports, "migrate").contains("up to date"));

    // A node that lost a table (or joined the cluster later) gets it back.
    cluster.sql(4, "DROP TABLE devapp.Measurement_local");
    let plan = migrate(&root, &ports, "plan");
    assert!(plan.contains("+ table devapp.Measurement (3 columns) on 127.0.0.1:"), "{plan}");
    assert!(plan.contains("(missing there; the other nodes have it)"), "{plan}");
    migrate(&root, &ports, "migrate");
    assert_eq!(cluster.sql(4, tables), on_node1);

    let mut server = serve(&root, &ports);
    eventually(START, "the server ready", || (get_json(&ports.api("/ready")).0 == 200).then_some(()));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = stream_events(ports.api("/ingest/Measurement"), stop.clone(), acked.clone(), 0);
    ingest_goes_on(&acked, "ingest before any failure");
    eventually(Duration::from_secs(30), "events written", || {
        (cluster.sql(1, "SELECT count() FROM devapp.Measurement WHERE tag = 't1'") != "0").then_some(())
    });
    let samples = ports.api("/api/Measurement/samples?series=t1&start=0&end=100000");

    // One replica of shard 1 killed mid-stream: nothing stops.
    cluster.kill(2);
    ingest_goes_on(&acked, "ingest with a replica down");
    let (status, body) = get_json(&samples);
    assert_eq!(status, 200, "{body}");
    let (status, ready) = get_json(&ports.api("/ready"));
    assert_eq!(status, 200, "{ready}");
    assert!(
        ready["warnings"][0].as_str().unwrap().starts_with("shard 1 of cluster igloo: replica 127.0.0.1:"),
        "{ready}"
    );
    cluster.start(2);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let first = acked.load(Ordering::Relaxed);
    // Every event once on its shard, the restarted replica caught up, and the rollups (each
    // shard's, written by the same inserts) counted every row once.
    let rows = all_written_once(&cluster, first);
    assert_eq!(rollups(&cluster), rows);

    // Exports and consumption APIs read every shard; subscriptions read the topic.
    let (status, _, body) = get(&ports.api("/export/Measurement?format=ndjson"));
    assert_eq!((status, body.lines().count() as u64), (200, first));
    let (status, body) = get_json(&ports.api(&format!("/consumption/tag_stats?start=0&end={first}&limit=100")));
    assert_eq!(status, 200, "{body}");
    let events: u64 = body.as_array().unwrap().iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(events, first, "{body}");
    let (status, _, mut lines) = open_stream(&ports.api("/subscribe/Measurement?tag=live"), &[]);
    assert_eq!(status, 200);
    post_ndjson(&ports.api("/ingest/Measurement"), "{\"time\":1,\"tag\":\"live\",\"values\":[2]}\n");
    let record = lines.find(|l| l.as_ref().is_ok_and(|l| l.starts_with("data:"))).unwrap().unwrap();
    assert!(record.contains("\"tag\":\"live\""), "{record}");
    acked.fetch_add(1, Ordering::Relaxed);
    let first = first + 1;

    // Shard 2 entirely down: ingest is still acknowledged (the broker holds the events), the
    // writer waits for the shard (a Distributed insert needs every shard), and /ready says
    // which one is down.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = stream_events(ports.api("/ingest/Measurement"), stop.clone(), acked.clone(), first);
    ingest_goes_on(&acked, "ingest before the shard goes");
    cluster.kill(3);
    cluster.kill(4);
    ingest_goes_on(&acked, "ingest with a shard down");
    let (status, ready) = get_json(&ports.api("/ready"));
    assert_eq!(status, 503, "{ready}");
    let details = ready["details"].to_string();
    assert!(details.contains("shard 2 of cluster igloo is down: none of its replicas answers"), "{ready}");
    // A query that needs the shard is an outage to retry, not a server error.
    let (status, body) = get_json(&samples);
    assert_eq!(status, 503, "{body}");
    std::thread::sleep(Duration::from_secs(3));
    cluster.start(3);
    cluster.start(4);
    ingest_goes_on(&acked, "ingest after the shard is back");
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let acked = acked.load(Ordering::Relaxed);
    let rows = all_written_once(&cluster, acked);
    // The batch in flight when the shard died may have landed on shard 1 without an answer:
    // it is deleted from the table and written again, but its rollup rows stay (ClickHouse has
    // no insert spanning a table and its views), so the rollups may count it twice, never miss
    // a row (docs/ARCHITECTURE.md, "On a ClickHouse cluster").
    let rolled = rollups(&cluster);
    assert!(rolled.0 >= rows.0 && rolled.1 >= rows.1, "the rollups miss rows: {rolled:?} < {rows:?}");
    let (status, body) = get_json(&samples);
    assert_eq!(status, 200, "{body}");
    server.signal(libc::SIGTERM);
    server.wait_exit(Duration::from_secs(30));

    // Rows an unanswered insert left on one replica of a shard, which the other replica has not
    // fetched yet (fetches stopped, to hold that state): the writer's recovery counts them on
    // every replica, not only on the one a query through Distributed reads, and deletes them.
    // Partition 1's row is on node 4 alone, partition 3's on node 3 alone: the writer recovers
    // partition 1 first, and a Distributed count that reads node 3 (the first replica) misses
    // it. A replica mutates only once it can fetch: fetches start again once the delete of
    // partition 1's rows was issued.
    let local = "devapp.Measurement_local";
    let orphans = format!("SELECT count() FROM {local} WHERE tag = 'orphan'");
    let deletes_of_partition_1 = "SELECT count() FROM system.mutations WHERE database = 'devapp' AND table = 'Measurement_local' AND position(command, '(_igloo_partition = 1)') > 0";
    let before = cluster.sql(3, deletes_of_partition_1);
    for node in [3, 4] {
        assert_eq!(cluster.sql(node, &format!("SYSTEM STOP FETCHES {local}")), "");
    }
    for (node, partition) in [(4, 1), (3, 3)] {
        let orphan = format!("INSERT INTO {local} (time, tag, values, _igloo_partition, _igloo_offset, _igloo_epoch) VALUES (1, 'orphan', [1], {partition}, 1000000000, 1)");
        assert_eq!(cluster.sql(node, &orphan), "");
        assert_eq!(cluster.sql(node, &orphans), "1", "node {node}");
    }
    let mut server = serve(&root, &ports);
    eventually(Duration::from_secs(60), "the delete of partition 1's rows on node 4", || {
        (cluster.sql(3, deletes_of_partition_1) != before).then_some(())
    });
    for node in [3, 4] {
        assert_eq!(cluster.sql(node, &format!("SYSTEM START FETCHES {local}")), "");
    }
    eventually(Duration::from_secs(60), "the rows left on one replica deleted on both", || {
        (cluster.sql(3, &orphans) == "0" && cluster.sql(4, &orphans) == "0").then_some(())
    });
    assert_eq!(all_written_once(&cluster, acked), rows);
    server.signal(libc::SIGTERM);
    server.wait_exit(Duration::from_secs(30));

    // A rebuild (another engine), with consent: the rows move into new replicated tables on
    // every node, the old pair stays as the backup, and a second migrate has nothing to do.
    let schema = root.join("schema/measurement.prisma");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(
        &schema,
        text.replace("  @@id([tag, time])\n", "  @@id([tag, time])\n  @@engine(ReplacingMergeTree)\n"),
    )
    .unwrap();
    let out = igloo(&root, &ports).args(["migrate", "--yes"]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("rebuild"), "{text}");
    let engine = "SELECT engine FROM system.tables WHERE database = 'devapp' AND name = 'Measurement_local'";
    for node in 1..=4 {
        assert_eq!(cluster.sql(node, engine), "ReplicatedReplacingMergeTree", "node {node}");
        let count = "SELECT count() FROM devapp.Measurement";
        assert_eq!(cluster.sql(node, count), acked.to_string(), "node {node}");
        assert_eq!(cluster.sql(node, "SELECT count() FROM devapp._igloo_old_Measurement_1"), acked.to_string());
    }
    assert!(migrate(&root, &ports, "migrate").contains("up to date"));

    // API keys live in a table replicated on every node: a key created through node 1 lets a
    // client into a server that reads node 3 (the other shard), and its revocation shuts it.
    let key = create_key(&root, &ports, &["--name", "reader", "--scope", "query"]);
    let keys_engine = "SELECT engine FROM system.tables WHERE database = 'devapp' AND name = '_igloo_keys'";
    for node in 1..=4 {
        assert_eq!(cluster.sql(node, keys_engine), "ReplicatedMergeTree", "node {node}");
        eventually(Duration::from_secs(30), "the key on every node", || {
            (cluster.sql(node, "SELECT count() FROM devapp._igloo_keys") == "1").then_some(())
        });
    }
    let mut on_node3 = ports.with_new_server();
    on_node3.env.retain(|(k, _)| k != "IGLOO_CLICKHOUSE_URL");
    on_node3.env.push(("IGLOO_CLICKHOUSE_URL".into(), format!("http://127.0.0.1:{}", cluster.nodes[2])));
    on_node3.env.push(("IGLOO_SERVER_AUTH".into(), "required".into()));
    let mut reader = serve_roles(&root, &on_node3, "query");
    wait_ready(&on_node3);
    let bearer = format!("Bearer {key}");
    let export = on_node3.api("/export/Measurement?format=ndjson");
    eventually(Duration::from_secs(10), "the key accepted", || {
        (get_with(&export, &[("Authorization", &bearer)]).0 == 200).then_some(())
    });
    assert_eq!(get(&export).0, 401);
    let out = keys(&root, &ports, &["revoke", "reader", "--yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(Duration::from_secs(5), "the revocation everywhere", || {
        (get_with(&export, &[("Authorization", &bearer)]).0 == 401).then_some(())
    });
    reader.signal(libc::SIGTERM);
    reader.wait_exit(Duration::from_secs(30));

    cluster.script(&["down"]);
    assert!(!cluster.dir.exists());
}
