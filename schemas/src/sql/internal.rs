//! Queries over igloo's own tables (`crate::internal`): the dead-letter viewer's, and the table
//! writer's recovery queries.

use crate::internal::{DLQ, OFFSETS_TABLE, OFFSET_COLUMN, PARTITION_COLUMN};
use crate::sql::quote;

/// The newest `limit` dead letters, newest first, as JSONEachRow.
pub fn latest_dead_letters(database: &str, limit: usize) -> String {
    format!(
        "SELECT at, topic, partition, offset, error, payload FROM {}.{} ORDER BY at DESC LIMIT {limit} FORMAT JSONEachRow",
        quote::ident(database),
        quote::ident(DLQ)
    )
}

/// The queries of the table writer's recovery. Results as JSONEachRow.
pub mod writer_sql {
    use super::*;

    fn table(database: &str, table: &str) -> String {
        format!("{}.{}", quote::ident(database), quote::ident(table))
    }

    /// Rows `{"partition", "last"}`: the last offset written per partition of `topic`.
    pub fn committed_offsets(database: &str, topic: &str) -> String {
        format!(
            "SELECT partition, max(last_offset) AS last FROM {} WHERE topic = {} GROUP BY partition FORMAT JSONEachRow",
            table(database, OFFSETS_TABLE),
            quote::string(topic)
        )
    }

    /// One row `{"n"}`: rows of `partition` beyond `offset` (written without their log entry).
    pub fn rows_after(database: &str, t: &str, partition: i32, after: Option<i64>) -> String {
        format!(
            "SELECT count() AS n FROM {} WHERE {} = {partition} AND {} > {} FORMAT JSONEachRow",
            table(database, t),
            quote::ident(PARTITION_COLUMN),
            quote::ident(OFFSET_COLUMN),
            after.map_or_else(|| "-1".to_string(), |o| o.to_string()),
        )
    }

    /// Deletes the rows of `partition` beyond `offset` (a mutation).
    pub fn delete_after(database: &str, t: &str, partition: i32, after: Option<i64>) -> String {
        format!(
            "ALTER TABLE {} DELETE WHERE {} = {partition} AND {} > {}",
            table(database, t),
            quote::ident(PARTITION_COLUMN),
            quote::ident(OFFSET_COLUMN),
            after.map_or_else(|| "-1".to_string(), |o| o.to_string()),
        )
    }

    /// One row `{"n"}`: unfinished mutations of the table.
    pub fn pending_mutations(database: &str, t: &str) -> String {
        format!(
            "SELECT count() AS n FROM system.mutations WHERE database = {} AND table = {} AND is_done = 0 FORMAT JSONEachRow",
            quote::string(database),
            quote::string(t)
        )
    }
}
