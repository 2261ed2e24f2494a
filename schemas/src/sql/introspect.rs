//! Queries igloo runs to observe what exists. Results come back as JSONEachRow (unambiguous,
//! unlike TSV, which escapes the quotes inside type names).

use super::quote::string;

pub fn version_query() -> String {
    "SELECT version()".into()
}

/// Rows `{"name"}` when the database exists.
pub fn database_query(database: &str) -> String {
    format!("SELECT name FROM system.databases WHERE name = {} FORMAT JSONEachRow", string(database))
}

/// Rows `{"name", "engine", "sorting_key"}`, one per table in `database`.
pub fn tables_query(database: &str) -> String {
    format!(
        "SELECT name, engine, sorting_key FROM system.tables WHERE database = {} ORDER BY name FORMAT JSONEachRow",
        string(database)
    )
}

/// Rows `{"table", "name", "type"}`, one per column in `database`, in table order.
pub fn columns_query(database: &str) -> String {
    format!("SELECT table, name, type FROM system.columns WHERE database = {} FORMAT JSONEachRow", string(database))
}

/// Rows `{"table", "rows"}`: the rows in each table of `database`, from its active parts
/// (cheap: no table is read). On a cluster, the parts of one replica of each shard, under the
/// local tables' names.
pub fn row_counts_query(database: &str, cluster: Option<&super::Cluster>) -> String {
    let parts = match cluster {
        Some(c) => format!("cluster({}, system, parts)", string(&c.name)),
        None => "system.parts".into(),
    };
    format!(
        "SELECT table, sum(rows) AS rows FROM {parts} WHERE database = {} AND active GROUP BY table FORMAT JSONEachRow",
        string(database)
    )
}

/// The newest `limit` rows the table writer wrote (highest Kafka offsets first), model columns
/// only, as JSONEachRow.
pub fn latest_rows(database: &str, table: &str, columns: &[String], limit: usize) -> String {
    use super::quote::ident;
    let cols = columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    format!(
        "SELECT {cols} FROM {}.{} ORDER BY {} DESC LIMIT {limit} FORMAT JSONEachRow",
        ident(database),
        ident(table),
        ident(crate::internal::OFFSET_COLUMN)
    )
}

/// Rows `{"shard_num", "host_name", "port"}`: the nodes of `cluster` (native-protocol
/// addresses).
pub fn cluster_nodes_query(cluster: &str) -> String {
    format!(
        "SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = {} ORDER BY shard_num, replica_num FORMAT JSONEachRow",
        string(cluster)
    )
}

/// One row `{"n": 1}` when the node at `address` (`host:port`) answers the node asked.
pub fn node_ping_query(address: &str) -> String {
    format!("SELECT 1 AS n FROM remote({}, system, one) FORMAT JSONEachRow", string(address))
}

/// Rows `{"name"}`: `database` itself (as `""`) if it exists on the node at `address`
/// (`host:port`), and each of its tables there.
pub fn node_tables_query(address: &str, database: &str) -> String {
    let on = |table: &str| format!("remote({}, system, {table})", string(address));
    format!(
        "SELECT '' AS name FROM (SELECT name AS db FROM {} WHERE db = {db}) UNION ALL SELECT name FROM {} WHERE database = {db} FORMAT JSONEachRow",
        on("databases"),
        on("tables"),
        db = string(database)
    )
}
