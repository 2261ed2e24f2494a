//! Queries over igloo's own tables (`crate::internal`): the dead-letter viewer's, the migration
//! history and lock, and the table writer's recovery queries.

use crate::internal::{
    DLQ, MIGRATIONS_TABLE, MIGRATION_COLUMNS, MIGRATION_LOCK_TABLE, OFFSETS_TABLE, OFFSET_COLUMN, PARTITION_COLUMN,
};
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

/// The migration lock and history of `igloo migrate`.
pub mod migrations {
    use super::*;

    fn lock_table(database: &str) -> String {
        format!("{}.{}", quote::ident(database), quote::ident(MIGRATION_LOCK_TABLE))
    }

    /// Takes the lock: fails (table exists, code 57) while another run holds it.
    pub fn lock_create(database: &str, holder: &str) -> String {
        format!(
            "CREATE TABLE {} ENGINE = Log AS SELECT {} AS holder, toUnixTimestamp(now()) AS since",
            lock_table(database),
            quote::string(holder)
        )
    }

    /// Rows `{"holder", "since"}` (seconds since the epoch) of the lock.
    pub fn lock_holder(database: &str) -> String {
        format!("SELECT holder, since FROM {} FORMAT JSONEachRow", lock_table(database))
    }

    /// Releases the lock.
    pub fn lock_drop(database: &str) -> String {
        crate::sql::DropTable { database: database.to_string(), table: MIGRATION_LOCK_TABLE.into() }.render()
    }

    /// The newest `limit` applies, newest first: `applied_unix` (seconds), the recorded columns.
    pub fn history(database: &str, limit: usize) -> String {
        format!(
            "SELECT toUnixTimestamp(applied_at) AS applied_unix, {} FROM {}.{} ORDER BY applied_at DESC LIMIT {limit} FORMAT JSONEachRow",
            MIGRATION_COLUMNS.iter().map(|c| quote::ident(c)).collect::<Vec<_>>().join(", "),
            quote::ident(database),
            quote::ident(MIGRATIONS_TABLE)
        )
    }
}
