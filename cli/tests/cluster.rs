//! scripts/local-cluster.sh, the cluster the cluster tests run on: ZooKeeper, 4 ClickHouse
//! 18.16 servers (cluster `igloo`, 2 shards × 2 replicas) and a broker. `ON CLUSTER` DDL
//! reaches every node, `ReplicatedMergeTree` replicates within a shard, `Distributed` reads
//! every shard, and a killed node started again catches up with its peer.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::eventually;

fn script(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/local-cluster.sh"))
        .args(args)
        .env("IGLOO_CLUSTER_DIR", dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "local-cluster.sh {}: {text}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/local-cluster.sh"))
            .arg("down")
            .env("IGLOO_CLUSTER_DIR", self.0)
            .output();
    }
}

fn sql(port: u16, q: &str) -> String {
    let client = reqwest::blocking::Client::new();
    match client.post(format!("http://127.0.0.1:{port}/")).body(q.to_string()).send() {
        Ok(r) => r.text().unwrap_or_default().trim().to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn the_local_cluster_replicates_distributes_and_recovers_a_killed_node() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _down = Down(&dir);
    let env = script(&dir, &["up"]);
    assert!(env.contains("export IGLOO_CLICKHOUSE_CLUSTER=igloo"), "{env}");
    assert!(env.contains("export IGLOO_BROKER_BOOTSTRAP_SERVERS=127.0.0.1:"), "{env}");
    // "# nodes (shard.replica → HTTP): 1.1 → P, 1.2 → P, 2.1 → P, 2.2 → P; …"
    let nodes: Vec<u16> = env
        .lines()
        .find(|l| l.starts_with("# nodes"))
        .unwrap()
        .split("→ ")
        .skip(2)
        .map(|s| s.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(nodes.len(), 4, "{env}");

    sql(nodes[0], "CREATE DATABASE c ON CLUSTER igloo");
    sql(
        nodes[0],
        "CREATE TABLE c.t_local ON CLUSTER igloo (k UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/c/t', '{replica}') ORDER BY k",
    );
    sql(nodes[0], "CREATE TABLE c.t ON CLUSTER igloo AS c.t_local ENGINE = Distributed(igloo, c, t_local, k)");
    for n in nodes.iter() {
        assert_eq!(sql(*n, "EXISTS TABLE c.t_local"), "1", "node {n}");
    }
    assert_eq!(sql(nodes[0], "INSERT INTO c.t_local VALUES (1), (2)"), "");
    assert_eq!(sql(nodes[2], "INSERT INTO c.t_local VALUES (3)"), "");
    eventually(Duration::from_secs(20), "shard 1's rows on its second replica", || {
        (sql(nodes[1], "SELECT count() FROM c.t_local") == "2").then_some(())
    });
    eventually(Duration::from_secs(20), "every shard's rows through Distributed", || {
        (sql(nodes[3], "SELECT count() FROM c.t") == "3").then_some(())
    });

    // A replica killed while its shard takes writes catches up once started again.
    script(&dir, &["kill", "2"]);
    assert!(sql(nodes[1], "SELECT 1").starts_with("error"));
    assert_eq!(sql(nodes[0], "INSERT INTO c.t_local VALUES (4), (5)"), "");
    script(&dir, &["start", "2"]);
    eventually(Duration::from_secs(30), "the restarted replica caught up", || {
        (sql(nodes[1], "SELECT count() FROM c.t_local") == "4").then_some(())
    });
    script(&dir, &["down"]);
    assert!(!dir.exists());
}
