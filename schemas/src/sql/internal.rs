//! Queries over igloo's own tables (`crate::internal`): the dead-letter viewer's, the migration
//! history and lock, the API keys, and the table writer's recovery queries.

use crate::internal::{
    CLAIMS_TABLE, CLAIM_COLUMNS, DLQ, EPOCH_COLUMN, IDEMPOTENCY_COLUMN, KEYS_TABLE, KEY_COLUMNS, MIGRATIONS_TABLE,
    MIGRATION_COLUMNS, MIGRATION_LOCK_TABLE, OFFSETS_STAGE_TABLE, OFFSETS_TABLE, OFFSET_COLUMN, OFFSET_LOG_COLUMNS,
    PARTITION_COLUMN, STAGE_TABLE,
};
use crate::sql::{quote, Cluster};

/// The newest `limit` dead letters, newest first, as JSONEachRow.
pub fn latest_dead_letters(database: &str, limit: usize) -> String {
    format!(
        "SELECT at, topic, partition, offset, error, payload FROM {}.{} ORDER BY at DESC LIMIT {limit} FORMAT JSONEachRow",
        quote::ident(database),
        quote::ident(DLQ)
    )
}

fn table(database: &str, table: &str) -> String {
    format!("{}.{}", quote::ident(database), quote::ident(table))
}

/// The queries of the table writer's recovery. Results as JSONEachRow.
pub mod writer_sql {
    use super::*;

    /// Rows `{"partition", "last"}`: the last offset written per partition of `topic`.
    pub fn committed_offsets(database: &str, topic: &str) -> String {
        format!(
            "SELECT partition, max(last_offset) AS last FROM {} WHERE topic = {} GROUP BY partition FORMAT JSONEachRow",
            table(database, OFFSETS_TABLE),
            quote::string(topic)
        )
    }

    /// Rows `{"partition", "key", "at"}`: the idempotency keys written to `topic` (only to
    /// `partition`, when given) in the last `window_secs` seconds, with when (seconds since 1970).
    pub fn logged_idempotency(database: &str, topic: &str, partition: Option<i32>, window_secs: u64) -> String {
        let partition = partition.map(|p| format!(" AND partition = {p}")).unwrap_or_default();
        format!(
            "SELECT partition, key, toUInt64(written_at) AS at FROM {} ARRAY JOIN {} AS key WHERE topic = {}{partition} AND written_at >= now() - {window_secs} FORMAT JSONEachRow",
            table(database, OFFSETS_TABLE),
            quote::ident(IDEMPOTENCY_COLUMN),
            quote::string(topic)
        )
    }

    /// The rows of `partition` beyond offset `after` (all, for None) written under an epoch
    /// below `below_epoch` (any epoch, for None).
    fn beyond(partition: i32, after: Option<i64>, below_epoch: Option<u64>) -> String {
        let mut cond = format!(
            "{} = {partition} AND {} > {}",
            quote::ident(PARTITION_COLUMN),
            quote::ident(OFFSET_COLUMN),
            after.map_or_else(|| "-1".to_string(), |o| o.to_string()),
        );
        if let Some(e) = below_epoch {
            cond.push_str(&format!(" AND {} < {e}", quote::ident(EPOCH_COLUMN)));
        }
        cond
    }

    /// One row `{"n"}`: rows of `partition` beyond `after` (written without their log entry),
    /// of epochs below `below_epoch` when given.
    pub fn rows_after(database: &str, t: &str, partition: i32, after: Option<i64>, below_epoch: Option<u64>) -> String {
        format!(
            "SELECT count() AS n FROM {} WHERE {} FORMAT JSONEachRow",
            table(database, t),
            beyond(partition, after, below_epoch)
        )
    }

    /// One row `{"n"}`: what [`rows_after`] counts, in the local table of one node of a
    /// cluster (`address` is its `host:port`), read through `remote()`. A query through the
    /// `Distributed` table reads one replica of each shard, which may not have fetched yet a
    /// part another replica took from an insert whose answer was lost.
    pub fn rows_after_on(
        address: &str,
        database: &str,
        t: &str,
        partition: i32,
        after: Option<i64>,
        below_epoch: Option<u64>,
    ) -> String {
        format!(
            "SELECT count() AS n FROM remote({}, {}, {}) WHERE {} FORMAT JSONEachRow",
            quote::string(address),
            quote::string(database),
            quote::string(&crate::sql::cluster::local_name(t)),
            beyond(partition, after, below_epoch)
        )
    }

    /// Deletes the rows `rows_after` counts (a mutation); on a cluster, from the local table
    /// of every shard.
    pub fn delete_after(
        database: &str,
        t: &str,
        partition: i32,
        after: Option<i64>,
        below_epoch: Option<u64>,
        cluster: Option<&Cluster>,
    ) -> String {
        let (t, on) = match cluster {
            Some(c) => (crate::sql::cluster::local_name(t), c.on()),
            None => (t.to_string(), String::new()),
        };
        format!("ALTER TABLE {}{on} DELETE WHERE {}", table(database, &t), beyond(partition, after, below_epoch))
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

/// One partition's entry in the offsets log, as a fenced writer logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRange {
    pub partition: u32,
    /// The claim it was written under.
    pub epoch: u64,
    pub first: u64,
    pub last: u64,
    pub rows: u64,
    /// The idempotency header values of the messages written.
    pub keys: Vec<String>,
}

/// The queries of table writers that share a topic: partition claims, the staged batch and
/// the gate that lets only the current claim's rows into a table (docs/ARCHITECTURE.md,
/// "Several writers per model").
pub mod claim_sql {
    use super::*;

    fn claims(database: &str) -> String {
        format!("{}.{}", quote::ident(database), quote::ident(CLAIMS_TABLE))
    }

    /// `(partition, epoch, writer)` of each partition's current claim: its highest
    /// `(epoch, writer)`.
    fn current(database: &str, topic: &str) -> String {
        format!(
            "SELECT partition, max(epoch), argMax(writer, (epoch, writer)) FROM {} WHERE topic = {} GROUP BY partition",
            claims(database),
            quote::string(topic)
        )
    }

    /// Rows `{"partition", "claim_epoch", "claim_writer"}`: the current claim of each claimed
    /// partition.
    pub fn current_claims(database: &str, topic: &str) -> String {
        format!(
            "SELECT partition, max(epoch) AS claim_epoch, argMax(writer, (epoch, writer)) AS claim_writer FROM {} WHERE topic = {} GROUP BY partition FORMAT JSONEachRow",
            claims(database),
            quote::string(topic)
        )
    }

    /// Records a claim: the body is one JSON row of `CLAIM_COLUMNS`.
    pub fn insert_claim(database: &str) -> String {
        crate::sql::InsertJsonRows {
            database: database.to_string(),
            table: CLAIMS_TABLE.into(),
            columns: CLAIM_COLUMNS.map(String::from).to_vec(),
        }
        .render()
    }

    /// The session's stage: a `Memory` table with the model table's columns and defaults.
    pub fn create_stage(database: &str, t: &str) -> String {
        format!(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {} AS {} ENGINE = Memory",
            quote::ident(STAGE_TABLE),
            table(database, t)
        )
    }

    pub fn truncate_stage() -> String {
        format!("TRUNCATE TABLE {}", quote::ident(STAGE_TABLE))
    }

    /// Stages rows of `columns`, sent in `format`.
    pub fn insert_stage(columns: &[String], format: crate::sql::RowFormat) -> String {
        let cols = columns.iter().map(|c| quote::ident(c)).collect::<Vec<_>>().join(", ");
        format!("INSERT INTO {} ({cols}) FORMAT {}", quote::ident(STAGE_TABLE), format.name())
    }

    /// Moves the staged rows whose `(partition, epoch)` is still `writer`'s current claim of
    /// `topic` into the table. The claims are read inside the insert: a zombie's rows are
    /// dropped however late its insert arrives.
    pub fn gated_insert(database: &str, t: &str, columns: &[String], topic: &str, writer: &str) -> String {
        let cols = columns.iter().map(|c| quote::ident(c)).collect::<Vec<_>>().join(", ");
        format!(
            "INSERT INTO {} ({cols}) SELECT {cols} FROM {} WHERE ({}, {}, {}) IN ({})",
            table(database, t),
            quote::ident(STAGE_TABLE),
            quote::ident(PARTITION_COLUMN),
            quote::ident(EPOCH_COLUMN),
            quote::string(writer),
            current(database, topic)
        )
    }

    /// The offsets stage's columns: the log's, but the topic, and with each range's epoch.
    const OFFSETS_STAGE_COLUMNS: [(&str, &str); 6] = [
        ("partition", "UInt32"),
        ("epoch", "UInt64"),
        ("first_offset", "UInt64"),
        ("last_offset", "UInt64"),
        ("rows", "UInt64"),
        (IDEMPOTENCY_COLUMN, "Array(String)"),
    ];

    /// The session's offsets stage ([`OFFSETS_STAGE_TABLE`]).
    pub fn create_offsets_stage() -> String {
        let cols = OFFSETS_STAGE_COLUMNS
            .iter()
            .map(|(c, t)| format!("{} {t}", quote::ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("CREATE TEMPORARY TABLE IF NOT EXISTS {} ({cols}) ENGINE = Memory", quote::ident(OFFSETS_STAGE_TABLE))
    }

    pub fn truncate_offsets_stage() -> String {
        format!("TRUNCATE TABLE {}", quote::ident(OFFSETS_STAGE_TABLE))
    }

    /// Stages [`LoggedRange`]s: the query, and its JSONEachRow body.
    pub fn insert_offsets_stage(ranges: &[LoggedRange]) -> (String, String) {
        let cols = OFFSETS_STAGE_COLUMNS.iter().map(|(c, _)| quote::ident(c)).collect::<Vec<_>>().join(", ");
        let query = format!("INSERT INTO {} ({cols}) FORMAT JSONEachRow", quote::ident(OFFSETS_STAGE_TABLE));
        let [partition, epoch, first, last, rows, keys] = OFFSETS_STAGE_COLUMNS.map(|(c, _)| c);
        let body = ranges
            .iter()
            .map(|r| {
                serde_json::json!({partition: r.partition, epoch: r.epoch, first: r.first, last: r.last, rows: r.rows, keys: r.keys})
                    .to_string()
                    + "\n"
            })
            .collect();
        (query, body)
    }

    /// Logs the staged ranges whose epoch is still `writer`'s current claim of the partition,
    /// one offsets-log row each.
    pub fn gated_offsets(database: &str, topic: &str, writer: &str) -> String {
        let cols = OFFSET_LOG_COLUMNS.iter().map(|c| quote::ident(c)).collect::<Vec<_>>().join(", ");
        let [partition, epoch, ..] = OFFSETS_STAGE_COLUMNS.map(|(c, _)| c);
        let staged = OFFSETS_STAGE_COLUMNS.iter().filter(|(c, _)| *c != epoch).map(|(c, _)| quote::ident(c));
        format!(
            "INSERT INTO {} ({cols}) SELECT {}, {} FROM {} WHERE ({}, {}, {}) IN ({})",
            table(database, OFFSETS_TABLE),
            quote::string(topic),
            staged.collect::<Vec<_>>().join(", "),
            quote::ident(OFFSETS_STAGE_TABLE),
            quote::ident(partition),
            quote::ident(epoch),
            quote::string(writer),
            current(database, topic)
        )
    }

    /// Rows `{"query_id"}`: the running queries whose id starts with `prefix`.
    pub fn running_queries(prefix: &str) -> String {
        format!(
            "SELECT query_id FROM system.processes WHERE substring(query_id, 1, {}) = {} FORMAT JSONEachRow",
            prefix.len(),
            quote::string(prefix)
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

/// `igloo keys` and the server's key store.
pub mod keys_sql {
    use super::*;

    /// Every API key as it stands, one row per key: `key_id`, its creation row's fields as
    /// `key_<column>`, `key_revoked` 1 once revoked, `key_created` (seconds). (Aliases differ
    /// from the columns: ClickHouse would substitute an alias inside the aggregates.)
    pub fn current(database: &str) -> String {
        let created = |c: &str| format!("anyIf({}, revoked = 0) AS key_{c}", quote::ident(c));
        let fields: Vec<String> = KEY_COLUMNS[1..8].iter().map(|c| created(c)).collect();
        format!(
            "SELECT id AS key_id, {}, max(revoked) AS key_revoked, toUnixTimestamp(minIf(created_at, revoked = 0)) AS key_created FROM {}.{} GROUP BY id ORDER BY key_created FORMAT JSONEachRow",
            fields.join(", "),
            quote::ident(database),
            quote::ident(KEYS_TABLE)
        )
    }
}
