//! igloo's own tables and columns, defined once: the migrations log, the table writer's
//! offsets log and partition claims, and the hidden columns every model table carries so that
//! a writer can tell, after a crash or a takeover, exactly which Kafka messages are already in
//! ClickHouse and who wrote them. The queries over
//! these tables are rendered in `sql::internal`.

use crate::sql::{ChType, ColumnDef, CreateTable, Placement, TableEngine, ValueExpr};

/// Tables, columns and topics whose names start with this belong to igloo itself.
pub const INTERNAL_PREFIX: &str = "_igloo";

/// Hidden column: the Kafka partition a row came from.
pub const PARTITION_COLUMN: &str = "_igloo_partition";
/// `_igloo_partition` of rows that did not come through the table writer (direct inserts,
/// copies): no topic has this partition, so the writer's recovery never touches them.
pub const FOREIGN_PARTITION: u32 = u32::MAX;
/// Hidden column: the Kafka offset a row came from.
pub const OFFSET_COLUMN: &str = "_igloo_offset";
/// Hidden column: the claim epoch of the writer that wrote the row (0: a writer that does not
/// claim: `igloo dev`'s on one server). A writer taking a partition over deletes only older
/// epochs' rows.
pub const EPOCH_COLUMN: &str = "_igloo_epoch";

/// Who writes which partition, when several table writers share a topic: one row per claim;
/// the partition's owner is its highest `(epoch, writer)`.
pub const CLAIMS_TABLE: &str = "_igloo_claims";
pub const CLAIM_COLUMNS: [&str; 4] = ["topic", "partition", "epoch", "writer"];
/// The per-session temporary table a claiming writer stages a batch in, before the gated
/// `INSERT … SELECT` moves the rows its claim still covers into the model table.
pub const STAGE_TABLE: &str = "_igloo_stage";
/// The per-session temporary table a claiming writer stages its offsets-log rows in (with the
/// claim epoch each was written under), before the gated `INSERT … SELECT` logs those its
/// claim still covers. Staged as data, not written into the query: a batch's idempotency keys
/// can outgrow ClickHouse's query size (256 KiB by default).
pub const OFFSETS_STAGE_TABLE: &str = "_igloo_offsets_stage";

/// Where applied plans are recorded, one row per apply.
pub const MIGRATIONS_TABLE: &str = "_igloo_migrations";
/// The columns of [`MIGRATIONS_TABLE`] that apply writes (`applied_at` is filled by default).
pub const MIGRATION_COLUMNS: [&str; 7] =
    ["igloo_version", "clickhouse", "risk", "steps", "plan", "error", MIGRATION_FINGERPRINT];
/// The schema fingerprint column of [`MIGRATIONS_TABLE`] (`ir::fingerprint`), added after the
/// others: older tables get it with [`migrations_fingerprint_column`].
pub const MIGRATION_FINGERPRINT: &str = "fingerprint";

/// Held while `igloo migrate` applies: created atomically (`CREATE TABLE` fails for the
/// second creator), holding who took it and when; dropped when the run ends.
pub const MIGRATION_LOCK_TABLE: &str = "_igloo_migration_lock";

/// Rows ClickHouse rejected: a topic (for consumers) and a table (to query), both this name.
pub const DLQ: &str = "_igloo_dlq";

/// The columns of the dead-letter table that a writer fills (`at` is filled by default); the
/// first three say where the record came from.
pub const DLQ_COLUMNS: [&str; 5] = ["topic", "partition", "offset", "error", "payload"];

/// The dead-letter topic: one partition, kept 7 days.
pub fn dlq_topic(name: &str) -> crate::ir::Topic {
    crate::ir::Topic {
        name: name.into(),
        partitions: 1,
        retention_ms: Some(crate::ir::DEFAULT_RETENTION_MS),
        key: Vec::new(),
    }
}

/// The dead-letter table: the error and the original message of every rejected row.
pub fn dlq_table(database: &str) -> CreateTable {
    let mut columns = vec![
        written_at("at"),
        col("topic", ChType::String),
        col("partition", ChType::UInt32),
        col("offset", ChType::UInt64),
    ];
    columns.extend(DLQ_COLUMNS[3..].iter().map(|&c| col(c, ChType::String)));
    internal_table(
        database,
        DLQ,
        columns,
        vec!["at".into()],
        "Rows ClickHouse rejected, with the error and the original message.",
    )
}

/// Where the table writer records each batch it wrote, after the batch's rows are in.
pub const OFFSETS_TABLE: &str = "_igloo_offsets";
pub const OFFSET_LOG_COLUMNS: [&str; 6] =
    ["topic", "partition", "first_offset", "last_offset", "rows", IDEMPOTENCY_COLUMN];
/// The `igloo-idempotency` header values of the batch's messages that were written: logged in
/// the same insert as their offsets, so a message counts as written exactly when its key does.
pub const IDEMPOTENCY_COLUMN: &str = "idempotency_keys";

/// API keys: an append-only log, one row when a key is created and one when it is revoked
/// (`revoked = 1`). Only a salted argon2id hash of each key's secret is stored.
pub const KEYS_TABLE: &str = "_igloo_keys";
/// The columns `igloo keys` writes (`created_at` is filled by default).
pub const KEY_COLUMNS: [&str; 9] = ["id", "name", "scope", "models", "apis", "rate", "expires_at", "hash", "revoked"];

/// `_igloo_keys` (see [`KEYS_TABLE`]); on a cluster, on every node.
pub fn keys_table(database: &str) -> CreateTable {
    let columns = vec![
        col("id", ChType::String),
        col("name", ChType::String),
        col("scope", ChType::String),
        col("models", ChType::Array(Box::new(ChType::String))),
        col("apis", ChType::Array(Box::new(ChType::String))),
        col("rate", ChType::Float64),
        col("expires_at", ChType::UInt64),
        col("hash", ChType::String),
        col("revoked", ChType::UInt8),
        written_at("created_at"),
    ];
    internal_table(
        database,
        KEYS_TABLE,
        columns,
        vec!["id".into(), "revoked".into()],
        "API keys of igloo's server: salted argon2id hashes, one row per create or revoke.",
    )
    .on_every_node()
}

fn col(name: &str, ty: ChType) -> ColumnDef {
    ColumnDef { name: name.into(), ty, default: None, comment: None }
}

fn written_at(name: &str) -> ColumnDef {
    ColumnDef { default: Some(ValueExpr::Call("now", vec![])), ..col(name, ChType::DateTime) }
}

/// The hidden columns appended to every model table.
pub fn hidden_columns() -> Vec<ColumnDef> {
    vec![
        ColumnDef {
            default: Some(ValueExpr::Number(FOREIGN_PARTITION.to_string())),
            comment: Some(
                "Kafka partition of the row's message; 4294967295 for rows not written by igloo's table writer".into(),
            ),
            ..col(PARTITION_COLUMN, ChType::UInt32)
        },
        ColumnDef {
            comment: Some("Kafka offset of the row's message (igloo)".into()),
            ..col(OFFSET_COLUMN, ChType::UInt64)
        },
        ColumnDef {
            default: Some(ValueExpr::Number("0".into())),
            comment: Some("Claim epoch of the table writer that wrote the row (igloo)".into()),
            ..col(EPOCH_COLUMN, ChType::UInt64)
        },
    ]
}

/// `_igloo_migrations`: when, which version, what was applied (the plan as JSON) and any error.
pub fn migrations_table(database: &str) -> CreateTable {
    let mut columns = vec![written_at("applied_at")];
    columns.extend(MIGRATION_COLUMNS.iter().map(|&c| match c {
        "steps" => col(c, ChType::UInt32),
        MIGRATION_FINGERPRINT => fingerprint_column(),
        _ => col(c, ChType::String),
    }));
    internal_table(
        database,
        MIGRATIONS_TABLE,
        columns,
        vec!["applied_at".into()],
        "Plans applied by igloo, one row per apply.",
    )
    .on_every_node()
}

/// The `fingerprint` column for a `_igloo_migrations` table created before it existed.
pub fn migrations_fingerprint_column(database: &str) -> crate::sql::AlterTable {
    crate::sql::AlterTable {
        database: database.to_string(),
        table: MIGRATIONS_TABLE.into(),
        action: crate::sql::AlterAction::AddColumn { column: fingerprint_column(), after: None },
    }
}

/// The `idempotency_keys` column for an `_igloo_offsets` table created before it existed.
pub fn offsets_idempotency_column(database: &str) -> crate::sql::AlterTable {
    crate::sql::AlterTable {
        database: database.to_string(),
        table: OFFSETS_TABLE.into(),
        action: crate::sql::AlterAction::AddColumn { column: idempotency_column(), after: None },
    }
}

/// `idempotency_keys Array(String) DEFAULT []`.
fn idempotency_column() -> ColumnDef {
    ColumnDef {
        default: Some(ValueExpr::EmptyArray),
        ..col(IDEMPOTENCY_COLUMN, ChType::Array(Box::new(ChType::String)))
    }
}

/// `fingerprint String DEFAULT ''`: empty for applies recorded before fingerprints existed.
fn fingerprint_column() -> ColumnDef {
    ColumnDef { default: Some(ValueExpr::String(String::new())), ..col(MIGRATION_FINGERPRINT, ChType::String) }
}

/// `_igloo_offsets`: one row per batch the table writer inserted.
pub fn offsets_table(database: &str) -> CreateTable {
    let mut columns = vec![col("topic", ChType::String), col("partition", ChType::UInt32)];
    columns.extend(["first_offset", "last_offset", "rows"].map(|c| col(c, ChType::UInt64)));
    columns.push(written_at("written_at"));
    columns.push(idempotency_column());
    let order = vec!["topic".into(), "partition".into(), "last_offset".into()];
    internal_table(
        database,
        OFFSETS_TABLE,
        columns,
        order,
        "Batches written by igloo's table writer, one row per batch.",
    )
    .on_every_node()
}

/// `_igloo_claims`: one row per partition claim of a table writer.
pub fn claims_table(database: &str) -> CreateTable {
    let mut columns = vec![col("topic", ChType::String), col("partition", ChType::UInt32)];
    columns.extend([col("epoch", ChType::UInt64), col("writer", ChType::String), written_at("claimed_at")]);
    let order = vec!["topic".into(), "partition".into(), "epoch".into()];
    internal_table(
        database,
        CLAIMS_TABLE,
        columns,
        order,
        "Partition claims of igloo's table writers; the owner is the highest (epoch, writer).",
    )
    .on_every_node()
}

fn internal_table(
    database: &str,
    name: &str,
    columns: Vec<ColumnDef>,
    order_by: Vec<String>,
    comment: &str,
) -> CreateTable {
    CreateTable {
        database: database.to_string(),
        name: name.into(),
        columns,
        engine: TableEngine::MergeTree,
        partition_by: None,
        order_by,
        second_key: None,
        primary_key: vec![],
        ttl: None,
        comment: Some(comment.into()),
        settings: vec![],
        placement: Placement::Sharded,
        keeper_name: None,
    }
}
