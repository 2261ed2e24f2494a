//! The same statements on a ClickHouse cluster (`clickhouse.cluster` in igloo.yaml).
//!
//! Every table igloo creates becomes a pair, both created `ON CLUSTER`:
//! - `<table>_local`, the rows: the same engine, replicated (`Replicated*MergeTree`, keeper
//!   path and replica name from [`Cluster`]);
//! - `<table>`, a `Distributed` table over the local ones, under the name everything reads and
//!   writes. Rows carrying a Kafka partition (`_igloo_partition` in model tables, `partition`
//!   in the offsets log and the claims) are sharded by it, so partition p lives on shard
//!   `p mod shards`, stably; anything else is spread at random.
//!
//! Materialized views (rollups, user views) are created `ON CLUSTER` on the `Distributed`
//! tables: an insert into a model's `Distributed` table fires them on the node that received
//! it, and their rows go through the target's `Distributed` table to its shards. Alters go to
//! both tables of a pair; a writer's recovery deletes on the local tables of every shard.

use serde::Serialize;

use super::ddl::CreateTable;
use super::quote::{ident, string};

/// What a name in a cluster statement means.
pub const LOCAL_SUFFIX: &str = "_local";

/// A ClickHouse cluster as igloo uses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// The cluster's name in the servers' `remote_servers`.
    pub name: String,
    /// Keeper path of a replicated table. igloo fills `{database}` and `{table}`; ClickHouse
    /// fills its macros (`{shard}`).
    pub zookeeper_path: String,
    /// Replica name, usually the `{replica}` macro.
    pub replica: String,
}

impl Cluster {
    /// The default keeper path: one per shard, database and table.
    pub const DEFAULT_PATH: &'static str = "/clickhouse/tables/{shard}/{database}/{table}";
    pub const DEFAULT_REPLICA: &'static str = "{replica}";

    pub fn named(name: &str) -> Cluster {
        Cluster {
            name: name.to_string(),
            zookeeper_path: Cluster::DEFAULT_PATH.into(),
            replica: Cluster::DEFAULT_REPLICA.into(),
        }
    }

    /// ` ON CLUSTER name`, to follow the object a statement names.
    pub fn on(&self) -> String {
        format!(" ON CLUSTER {}", ident(&self.name))
    }

    /// The keeper path of `database.table`'s replicas.
    pub fn path(&self, database: &str, table: &str) -> String {
        self.zookeeper_path.replace("{database}", database).replace("{table}", table)
    }

    /// The local (replicated) table and the `Distributed` table over it.
    pub fn create_table(&self, t: &CreateTable, dialect: crate::Dialect) -> [String; 2] {
        let local = local_name(&t.name);
        let shard_by = match t.columns.iter().find(|c| SHARD_COLUMNS.contains(&c.name.as_str())) {
            Some(c) => ident(&c.name),
            None => "rand()".into(),
        };
        [
            t.render_replicated(dialect, self),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.{}{} AS {db}.{} ENGINE = Distributed({}, {}, {}, {shard_by})",
                ident(&t.name),
                self.on(),
                ident(&local),
                string(&self.name),
                string(&t.database),
                string(&local),
                db = ident(&t.database),
            ),
        ]
    }
}

/// Columns holding a Kafka partition, which shards a table's rows (the first one a table has).
const SHARD_COLUMNS: [&str; 2] = [crate::internal::PARTITION_COLUMN, "partition"];

/// The name of a table's local (replicated) part on a cluster.
pub fn local_name(table: &str) -> String {
    format!("{table}{LOCAL_SUFFIX}")
}

/// `ReplicatedMergeTree` → `MergeTree`: the engine a schema asked for.
pub fn unreplicated(engine: &str) -> &str {
    engine.strip_prefix("Replicated").filter(|e| e.ends_with("MergeTree")).unwrap_or(engine)
}
