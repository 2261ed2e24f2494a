//! The same statements on a ClickHouse cluster (`clickhouse.cluster` in igloo.yaml).
//!
//! Every table igloo creates for data becomes a pair, both created `ON CLUSTER`:
//! - `<table>_local`, the rows: the same engine, replicated (`Replicated*MergeTree`, keeper
//!   path and replica name from [`Cluster`]);
//! - `<table>`, a `Distributed` table over the local ones, under the name everything reads and
//!   writes. Rows carrying a Kafka partition (`_igloo_partition`) are sharded by it, so
//!   partition p lives on shard `p mod shards`, stably; anything else is spread at random.
//!
//! igloo's control tables (offsets log, claims, migrations) are one replicated table on every
//! node instead ([`Placement::EveryNode`]): the node igloo talks to reads and writes them
//! locally, so no shard being down blocks another shard's writes.
//!
//! Rollups are views from each shard's local table into the rollup's local table, so a shard's
//! rows and their rollup rows come from one insert on that shard; user views are views on the
//! `Distributed` tables, fired on the node that receives an insert. Alters go to both tables of
//! a pair; a writer's recovery deletes on the local tables of every shard.

use serde::Serialize;

use super::ddl::{CreateTable, Placement};
use super::quote::{ident, string};

/// The suffix of a table's local (replicated) part: `<table>_local` holds the rows of `<table>`.
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

    /// The keeper path of a table replicated on every node: the shard's place says `all`.
    pub fn path_everywhere(&self, database: &str, table: &str) -> String {
        self.path(database, table).replace("{shard}", "all")
    }

    /// The replica name of a table replicated on every node: unique across shards.
    pub fn replica_everywhere(&self) -> String {
        format!("{{shard}}-{}", self.replica)
    }

    /// The statements that create `t`: on every node, or as the local (replicated) table and
    /// the `Distributed` table over it.
    pub fn create_table(&self, t: &CreateTable, dialect: crate::Dialect) -> Vec<String> {
        match t.placement {
            Placement::EveryNode => vec![t.render_replicated(dialect, self)],
            Placement::Sharded => vec![t.render_replicated(dialect, self), self.distributed(t)],
        }
    }

    /// `t`'s `Distributed` table dropped and created again over `<t>_local`.
    pub fn redistribute(&self, t: &CreateTable) -> Vec<String> {
        let drop = super::DropTable { database: t.database.clone(), table: t.name.clone() };
        vec![drop.render_on(Some(self)), self.distributed(t)]
    }

    /// The `Distributed` table `t` over `<t>_local`, sharded by the Kafka partition when the
    /// rows carry one, else at random.
    fn distributed(&self, t: &CreateTable) -> String {
        let local = local_name(&t.name);
        let partition = crate::internal::PARTITION_COLUMN;
        let shard_by = match t.columns.iter().any(|c| c.name == partition) {
            true => ident(partition),
            false => "rand()".into(),
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{}{} AS {db}.{} ENGINE = Distributed({}, {}, {}, {shard_by})",
            ident(&t.name),
            self.on(),
            ident(&local),
            string(&self.name),
            string(&t.database),
            string(&local),
            db = ident(&t.database),
        )
    }
}

/// The name of a table's local (replicated) part on a cluster.
pub fn local_name(table: &str) -> String {
    format!("{table}{LOCAL_SUFFIX}")
}

/// `ReplicatedMergeTree` → `MergeTree`: the engine a schema asked for.
pub fn unreplicated(engine: &str) -> &str {
    engine.strip_prefix("Replicated").filter(|e| e.ends_with("MergeTree")).unwrap_or(engine)
}
