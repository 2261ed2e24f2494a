//! The table writer: one per model, consuming the model's topic into its table.
//!
//! **Exactly once.** ClickHouse itself records what was written: every row carries its Kafka
//! `_igloo_partition` / `_igloo_offset`, and after each batch insert one row per partition goes
//! into `_igloo_offsets` (a single-part insert, so atomic). On start, and before retrying any
//! failed insert, the writer reads the last logged offset C of each partition and deletes the
//! partition's rows beyond C — rows that can only exist if an insert landed (fully or in
//! part) without its log entry, i.e. after a crash or a lost response — then resumes at C+1.
//! Nothing is committed to Kafka: lag is the topic's high watermark minus the writer's own
//! position (`igloo_consumer_lag`).
//! Works the same on ClickHouse 18.16 (no insert deduplication tokens) and current versions.
//!
//! **Idempotent requests.** A message carrying an `Idempotency-Key` already written within
//! `writer.idempotency_window` is skipped ([`dedup`]); its key is logged with the offsets.
//!
//! Rows ClickHouse rejects as data (not as an outage) are retried one by one, and those that
//! still fail go to `_igloo_dlq` with the error and the original payload, so one poison row
//! never blocks the table. An outage is retried with backoff forever: lag grows, nothing is lost.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use igloo_schemas::internal::{self, EPOCH_COLUMN, OFFSETS_TABLE, OFFSET_COLUMN, OFFSET_LOG_COLUMNS, PARTITION_COLUMN};
use igloo_schemas::sql::internal::writer_sql;
use igloo_schemas::sql::{ChType, Cluster, InsertJsonRows, RowFormat};
use igloo_schemas::Dialect;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Offset;
use serde::Deserialize;
use tokio::sync::watch;

mod dedup;
mod fenced;
mod row_binary;

pub use row_binary::RowEncoder;

use crate::backoff::Backoff;
use crate::clickhouse::{u64_json, ClickHouse, ClickHouseError};
use crate::config::WriterConfig;
use crate::dlq::{DeadLetter, DeadLetterError, DeadLetters};
use crate::kafka::consumer::{self, BatchLimits, Received};
use crate::kafka::producer::Producer;
use crate::kafka::Broker;
use crate::metrics::ModelMetrics;

/// Where a writer reads and writes.
#[derive(Clone, Debug)]
pub struct WriterSpec {
    pub model: String,
    pub topic: String,
    pub database: String,
    pub table: String,
    /// The model's columns, in table order, without the hidden ones.
    pub columns: Vec<String>,
    /// Their types, in the same order.
    pub column_types: Vec<ChType>,
    /// Where rows ClickHouse rejects go.
    pub dlq_topic: String,
    pub dialect: Dialect,
    /// The ClickHouse cluster the tables live on, if any.
    pub cluster: Option<Cluster>,
}

#[derive(Deserialize)]
struct Committed {
    partition: u32,
    #[serde(deserialize_with = "u64_json")]
    last: u64,
}

#[derive(Deserialize)]
struct Count {
    #[serde(deserialize_with = "u64_json")]
    n: u64,
}

/// How a table writer shares its topic with the other writers of the model.
#[derive(Clone, Debug)]
pub enum Sharing {
    /// The only writer (`igloo dev`): it reads every partition and claims none.
    Alone,
    /// One of any number of replicas (`igloo serve --role writer`): a consumer group shares
    /// the partitions, and each is claimed in ClickHouse before it is written ([`fenced`]).
    Replicas { writer_id: String, session_timeout: Duration },
}

/// The epoch after `last`: one more, or the time in milliseconds since 1970 when that is
/// higher. Time-based epochs order a claim after the generations of a lone writer on a cluster
/// ([`Generation`]), which are times too.
pub(crate) fn next_epoch(last: Option<u64>) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (last.unwrap_or(0) + 1).max(now.as_millis() as u64)
}

/// Where a lone writer is: the next offset of each partition, its generation, and the
/// idempotency keys written in the window.
struct Position {
    next: BTreeMap<i32, i64>,
    generation: Generation,
    seen: dedup::Seen,
}

/// The epoch a lone writer stamps its rows with: 0 on one server; on a cluster a new one
/// ([`next_epoch`]) at start and at every recovery. A recovery deletes only rows of earlier
/// generations, so its `ALTER … DELETE ON CLUSTER`, which a shard that is down runs when it is
/// back, can never delete rows written after it was issued.
struct Generation(Option<u64>);

impl Generation {
    fn new(on_cluster: bool) -> Generation {
        Generation(on_cluster.then_some(0))
    }

    /// Starts a new generation (on a cluster) and returns it: the bound of a recovery.
    fn advance(&mut self) -> Option<u64> {
        if let Some(g) = &mut self.0 {
            *g = next_epoch(Some(*g));
        }
        self.0
    }
}

/// A writer id unique among replicas, now and later: host, process and start time.
pub fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    format!("{}-{}-{since}", host.trim(), std::process::id())
}

/// Writes `spec`'s topic into its table until `shutdown`; rows ClickHouse rejects go to the
/// dead-letter topic through `producer` (the process's one producer, shared with ingest).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    spec: WriterSpec,
    cfg: WriterConfig,
    sharing: Sharing,
    broker: Broker,
    producer: Producer,
    ch: ClickHouse,
    metrics: Arc<ModelMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    let dlq =
        DeadLetters::new(producer, &spec.dlq_topic, ch.clone(), &spec.database, spec.dialect, spec.cluster.clone());
    while let Err(e) = dlq.ensure_table().await {
        tracing::warn!(model = %spec.model, error = %e, "cannot create the dead-letter table yet; retrying");
        if backoff.wait(&mut shutdown).await {
            return;
        }
    }
    // The insert format: RowBinary when the table's types allow it (see [`row_binary`]).
    let encoder = loop {
        match row_encoder(&spec, &ch).await {
            Ok(encoder) => break encoder,
            Err(e) => {
                tracing::warn!(model = %spec.model, error = %e, "cannot read the table's columns yet; retrying");
                if backoff.wait(&mut shutdown).await {
                    return;
                }
            }
        }
    };
    let format = if encoder.is_some() { RowFormat::RowBinary } else { RowFormat::JsonEachRow };
    tracing::info!(model = %spec.model, format = %format.name(), "table writer insert format");
    if let Sharing::Replicas { writer_id, session_timeout } = sharing {
        while let Err(e) = replica_tables(&spec, &ch).await {
            tracing::warn!(model = %spec.model, error = %e, "table writer cannot start yet; retrying");
            if backoff.wait(&mut shutdown).await {
                return;
            }
        }
        let seen = dedup::Seen::new(cfg.idempotency_window.0);
        let replica = fenced::Replica { writer_id, session_timeout, dlq, seen, encoder };
        return fenced::run(spec, cfg, broker, ch, metrics, shutdown, replica).await;
    }
    // Set-up (tables, partitions, recovery) is retried until it succeeds or we are told to stop.
    let mut generation = Generation::new(spec.cluster.is_some());
    let mut seen = dedup::Seen::new(cfg.idempotency_window.0);
    let (consumer, next) = loop {
        match start(&spec, &broker, &ch, generation.advance(), &mut seen).await {
            Ok(started) => break started,
            Err(e) => {
                tracing::warn!(model = %spec.model, error = %e, "table writer cannot start yet; retrying");
                if backoff.wait(&mut shutdown).await {
                    return;
                }
            }
        }
    };
    metrics.assigned.store(1, Ordering::Relaxed);
    let next_shared = Arc::new(Mutex::new(next.clone()));
    let mut pos = Position { next, generation, seen };
    let lag_metrics = metrics.clone();
    let lag_task =
        tokio::spawn(consumer::track_lag(consumer.clone(), spec.topic.clone(), next_shared.clone(), move |lag| {
            lag_metrics.lag.store(lag, Ordering::Relaxed)
        }));
    tracing::info!(model = %spec.model, topic = %spec.topic, "table writer running");
    let limits =
        BatchLimits { max_rows: cfg.max_rows, max_bytes: cfg.max_bytes, flush: Duration::from_millis(cfg.flush_ms) };
    loop {
        let batch = tokio::select! {
            _ = shutdown.changed() => break,
            b = collect(&consumer, limits) => b,
        };
        let Some(batch) = batch else { continue };
        let batch: Vec<&Received> = batch.iter().collect();
        if write_batch(&spec, &ch, encoder.as_ref(), &dlq, &batch, &mut pos, &metrics, &mut shutdown).await.is_err() {
            break; // told to stop while ClickHouse was down; the batch will be re-read
        }
        *next_shared.lock().expect("lag lock") = pos.next.clone();
    }
    lag_task.abort();
    metrics.assigned.store(0, Ordering::Relaxed);
    tracing::info!(model = %spec.model, "table writer stopped");
}

type Started = (Arc<StreamConsumer>, BTreeMap<i32, i64>);

/// Why a batch (or one row of it) was not written.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("a row of the message at partition {partition}, offset {offset} is not a JSON object")]
    NotAnObject { partition: i32, offset: i64 },
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
}

impl BatchError {
    /// The data is wrong (retrying the same rows cannot succeed); anything else is an outage.
    fn is_bad_data(&self) -> bool {
        match self {
            BatchError::ClickHouse(e @ ClickHouseError::Rejected { .. }) => !e.is_transient(),
            BatchError::NotAnObject { .. } => true,
            BatchError::ClickHouse(_) | BatchError::DeadLetter(_) => false,
        }
    }
}

/// Why a table writer cannot start yet (it retries).
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error(transparent)]
    Kafka(#[from] consumer::ConsumerError),
    #[error("cannot create the consumer of topic {topic}: {source}")]
    Consumer { topic: String, source: rdkafka::error::KafkaError },
    #[error("the metadata request for topic {topic} did not finish")]
    Task { topic: String },
}

/// The offsets log and the claims, which replicas share.
async fn replica_tables(spec: &WriterSpec, ch: &ClickHouse) -> Result<(), ClickHouseError> {
    ensure_offsets_table(spec, ch).await?;
    create_table(spec, ch, internal::claims_table(&spec.database)).await
}

#[derive(Deserialize)]
struct ColumnRow {
    table: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

/// RowBinary for the table's rows when ClickHouse reports exactly the types the encoder writes
/// for its columns (the data columns, and the hidden ones the writer adds); else `None`, and
/// rows go as JSONEachRow.
async fn row_encoder(spec: &WriterSpec, ch: &ClickHouse) -> Result<Option<RowEncoder>, ClickHouseError> {
    let columns: Vec<(String, ChType)> = spec.columns.iter().cloned().zip(spec.column_types.iter().cloned()).collect();
    let Some(encoder) = RowEncoder::new(&columns) else { return Ok(None) };
    let actual = ch.rows::<ColumnRow>(&igloo_schemas::sql::columns_query(&spec.database)).await?;
    let actual: BTreeMap<&str, &str> =
        actual.iter().filter(|c| c.table == spec.table).map(|c| (c.name.as_str(), c.ty.as_str())).collect();
    let hidden = [(PARTITION_COLUMN, "UInt32"), (OFFSET_COLUMN, "UInt64"), (EPOCH_COLUMN, "UInt64")];
    let expected = RowEncoder::expected_types(&columns, spec.dialect);
    let same = expected.iter().all(|(name, ty)| actual.get(name.as_str()) == Some(&ty.as_str()))
        && hidden.iter().all(|(name, ty)| actual.get(name) == Some(ty));
    Ok(same.then_some(encoder))
}

/// Creates `_igloo_offsets` if it is missing, and adds `idempotency_keys` to one created
/// before that column existed (writers of other models may be doing the same at once).
async fn ensure_offsets_table(spec: &WriterSpec, ch: &ClickHouse) -> Result<(), ClickHouseError> {
    create_table(spec, ch, internal::offsets_table(&spec.database)).await?;
    let has_column = || async {
        let columns = ch.rows::<ColumnRow>(&igloo_schemas::sql::columns_query(&spec.database)).await?;
        Ok::<_, ClickHouseError>(
            columns.iter().any(|c| c.table == OFFSETS_TABLE && c.name == internal::IDEMPOTENCY_COLUMN),
        )
    };
    if has_column().await? {
        return Ok(());
    }
    let alter =
        igloo_schemas::sql::Statement::AlterTable(Box::new(internal::offsets_idempotency_column(&spec.database)));
    match ch.execute_all(alter.render_for(spec.dialect, spec.cluster.as_ref())).await {
        Err(_) if has_column().await? => Ok(()), // another writer added it meanwhile
        other => other,
    }
}

/// `generation`: the lone writer's epoch from now on (see [`Generation`]). Loads the
/// idempotency keys of the window into `seen`.
async fn start(
    spec: &WriterSpec,
    broker: &Broker,
    ch: &ClickHouse,
    generation: Option<u64>,
    seen: &mut dedup::Seen,
) -> Result<Started, WriterError> {
    ensure_offsets_table(spec, ch).await?;
    // Nothing is ever committed to the group: offsets live in ClickHouse, and a pending commit
    // makes the consumer's close wait, without bound, for a broker that may be down.
    let group = format!("igloo-writer.{}.{}", spec.database, spec.table);
    let consumer: StreamConsumer =
        broker.consumer(&group, 50).map_err(|source| WriterError::Consumer { topic: spec.topic.clone(), source })?;
    let consumer = Arc::new(consumer);
    let (c, topic) = (consumer.clone(), spec.topic.clone());
    let partitions =
        tokio::task::spawn_blocking(move || consumer::partitions(c.client(), &topic, Duration::from_secs(5)))
            .await
            .map_err(|_| WriterError::Task { topic: spec.topic.clone() })??;
    let committed = logged_offsets(spec, ch).await?;
    seen.load(spec, ch, None).await?;
    let mut next = BTreeMap::new();
    let mut at = Vec::new();
    for p in partitions {
        let last = committed.get(&p).copied();
        recover_below(spec, ch, p, last, generation).await?;
        let start = last.map_or(0, |l| l + 1);
        next.insert(p, start);
        at.push((p, Offset::Offset(start)));
    }
    consumer::assign(consumer.as_ref(), &spec.topic, &at)?;
    Ok((consumer, next))
}

/// The last offset in the offsets log of each partition of the spec's topic.
async fn logged_offsets(spec: &WriterSpec, ch: &ClickHouse) -> Result<BTreeMap<i32, i64>, ClickHouseError> {
    let rows = ch.rows::<Committed>(&writer_sql::committed_offsets(&spec.database, &spec.topic)).await?;
    Ok(rows.into_iter().map(|c| (c.partition as i32, c.last as i64)).collect())
}

/// The dead letter of a row ClickHouse rejected as data: ClickHouse's own message as the error.
fn dead_letter(spec: &WriterSpec, m: &Received, row: &str, e: BatchError) -> DeadLetter {
    let error = match e {
        BatchError::ClickHouse(ClickHouseError::Rejected { message }) => message,
        other => other.to_string(),
    };
    DeadLetter { topic: spec.topic.clone(), partition: m.partition, offset: m.offset, error, payload: row.to_string() }
}

/// Deletes the partition's rows beyond its last logged offset, if there are any (only those
/// of epochs below `below_epoch`, when given: a claiming writer's predecessors').
async fn recover_below(
    spec: &WriterSpec,
    ch: &ClickHouse,
    partition: i32,
    last: Option<i64>,
    below_epoch: Option<u64>,
) -> Result<(), ClickHouseError> {
    let (db, t) = (&spec.database, &spec.table);
    let found = match &spec.cluster {
        None => count(ch, &writer_sql::rows_after(db, t, partition, last, below_epoch)).await?,
        Some(cluster) => rows_on_every_replica(spec, ch, &cluster.name, partition, last, below_epoch).await?,
    };
    if found == 0 {
        return Ok(());
    }
    tracing::warn!(model = %spec.model, partition, after = ?last, rows = found, "removing rows written without their offset log entry");
    let delete = writer_sql::delete_after(db, t, partition, last, below_epoch, spec.cluster.as_ref());
    if spec.cluster.is_none() {
        ch.execute(&delete).await?;
        return wait_for_mutations(spec, ch).await;
    }
    // On a cluster the delete runs ON CLUSTER, on the local table of every shard; a shard's
    // replicas share the mutation through the keeper. A node that is down runs the statement
    // from the DDL queue when it is back, so waiting for it times out without failing.
    match ch.with_settings(&[("distributed_ddl_task_timeout", "10")]).execute(&delete).await {
        Err(e) if e.code() == Some(159) => {
            tracing::warn!(model = %spec.model, partition, error = %e, "a node of the cluster will delete when it is back")
        }
        other => drop(other?),
    }
    // Done when no shard shows such rows any more.
    while count(ch, &writer_sql::rows_after(db, t, partition, last, below_epoch)).await? > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The `n` of a query's one row `{"n"}` (0 without a row).
async fn count(ch: &ClickHouse, query: &str) -> Result<u64, ClickHouseError> {
    Ok(ch.rows::<Count>(query).await?.first().map_or(0, |c| c.n))
}

/// On a cluster, what `rows_after` counts, summed over every node's local table: a query
/// through `Distributed` reads one replica per shard, and the one it reads may not have fetched
/// yet the part an unanswered insert left on another (the rows would stay, and be written again:
/// duplicates). A node that does not answer counts as holding such rows (1): the delete, bounded
/// by epoch, is then issued anyway, and the node runs it from the DDL queue when it is back.
async fn rows_on_every_replica(
    spec: &WriterSpec,
    ch: &ClickHouse,
    cluster: &str,
    partition: i32,
    last: Option<i64>,
    below_epoch: Option<u64>,
) -> Result<u64, ClickHouseError> {
    let mut n = 0;
    for node in ch.cluster_nodes(cluster).await? {
        let q = writer_sql::rows_after_on(&node.address(), &spec.database, &spec.table, partition, last, below_epoch);
        n += match count(ch, &q).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(model = %spec.model, partition, node = %node.address(), error = %e, "cannot count this node's rows beyond the offsets log; deleting them without counting");
                1
            }
        };
    }
    Ok(n)
}

/// Creates one of igloo's own tables if it is missing (on a cluster: the pair, ON CLUSTER).
async fn create_table(
    spec: &WriterSpec,
    ch: &ClickHouse,
    table: igloo_schemas::sql::CreateTable,
) -> Result<(), ClickHouseError> {
    let statement = igloo_schemas::sql::Statement::CreateTable(Box::new(table));
    ch.execute_all(statement.render_for(spec.dialect, spec.cluster.as_ref())).await
}

/// Returns once the table has no unfinished mutation.
async fn wait_for_mutations(spec: &WriterSpec, ch: &ClickHouse) -> Result<(), ClickHouseError> {
    while count(ch, &writer_sql::pending_mutations(&spec.database, &spec.table)).await? > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The next batch: a first message, then what follows within the limits.
async fn collect(consumer: &StreamConsumer, limits: BatchLimits) -> Option<Vec<Received>> {
    let first = consumer::next_message(consumer).await?;
    Some(consumer::collect_after(consumer, first, limits).await)
}

/// Writes the batch exactly once; returns Err only when told to stop while waiting to retry.
#[allow(clippy::too_many_arguments)]
async fn write_batch(
    spec: &WriterSpec,
    ch: &ClickHouse,
    encoder: Option<&RowEncoder>,
    dlq: &DeadLetters,
    batch: &[&Received],
    pos: &mut Position,
    metrics: &ModelMetrics,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ()> {
    // Messages already written (a re-read after reassignment) are skipped.
    let fresh: Vec<&Received> =
        batch.iter().copied().filter(|m| m.offset >= pos.next.get(&m.partition).copied().unwrap_or(0)).collect();
    if fresh.is_empty() {
        return Ok(());
    }
    // Messages of idempotent requests already written are not written again.
    let dedup::Fresh { messages: new, keys, skipped_rows } = pos.seen.fresh(&fresh);
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let result = insert_rows(spec, ch, encoder, rows_of(&new), pos.generation.0).await;
        let outcome = match result {
            Ok(()) => Ok(new.iter().map(|m| m.rows.len() as u64).sum()),
            Err(e) if e.is_bad_data() => {
                tracing::warn!(model = %spec.model, error = %e, "batch rejected; writing its rows one by one");
                match recover_batch(spec, ch, &pos.next, &fresh, pos.generation.advance()).await {
                    Ok(()) => write_one_by_one(spec, ch, dlq, &new, pos.generation.0, metrics).await,
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        };
        let logged = match outcome {
            Ok(written) => log_offsets(spec, ch, &fresh, &keys).await.map(|()| written).map_err(BatchError::from),
            Err(e) => Err(e),
        };
        match logged {
            Ok(written) => {
                for m in &fresh {
                    pos.next.insert(m.partition, m.offset + 1);
                }
                pos.seen.remember(keys);
                metrics.duplicates_skipped.fetch_add(skipped_rows, Ordering::Relaxed);
                metrics.written.fetch_add(written, Ordering::Relaxed);
                metrics.batches.fetch_add(1, Ordering::Relaxed);
                metrics.insert_ms_total.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => tracing::warn!(model = %spec.model, error = %e, "batch not written; retrying"),
        }
        if backoff.wait(shutdown).await {
            return Err(());
        }
        // Whatever the failed attempt left behind is removed before the next one.
        let bound = pos.generation.advance();
        while let Err(e) = recover_batch(spec, ch, &pos.next, &fresh, bound).await {
            tracing::warn!(model = %spec.model, error = %e, "recovery failed; retrying");
            if backoff.wait(shutdown).await {
                return Err(());
            }
        }
    }
}

async fn recover_batch(
    spec: &WriterSpec,
    ch: &ClickHouse,
    next: &BTreeMap<i32, i64>,
    batch: &[&Received],
    generation: Option<u64>,
) -> Result<(), ClickHouseError> {
    let mut partitions: Vec<i32> = batch.iter().map(|m| m.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    for p in partitions {
        let last = next.get(&p).map(|n| n - 1).filter(|l| *l >= 0);
        recover_below(spec, ch, p, last, generation).await?;
    }
    Ok(())
}

fn insert_query(spec: &WriterSpec, table: &str, columns: Vec<String>, format: RowFormat) -> String {
    InsertJsonRows { database: spec.database.clone(), table: table.to_string(), columns }.render_as(format)
}

fn data_columns(spec: &WriterSpec) -> Vec<String> {
    spec.columns.iter().cloned().chain([PARTITION_COLUMN.to_string(), OFFSET_COLUMN.to_string()]).collect()
}

/// Appends a row (a JSON object) with the hidden columns added, and a newline, to `out`: the
/// message's partition and offset, and the writer's claim epoch when it has one. False (and
/// `out` unchanged) when the row is not an object. Written in place: the body grows, no string
/// is made per row (BENCHMARKS.md, issue 20).
fn push_row(out: &mut String, row: &str, partition: i32, offset: i64, epoch: Option<u64>) -> bool {
    use std::fmt::Write;
    let Some(body) = row.trim_end().strip_suffix('}') else { return false };
    out.push_str(body);
    if !body.trim_end().ends_with('{') {
        out.push(',');
    }
    let _ = write!(out, "\"{PARTITION_COLUMN}\":{partition},\"{OFFSET_COLUMN}\":{offset}");
    if let Some(e) = epoch {
        let _ = write!(out, ",\"{EPOCH_COLUMN}\":{e}");
    }
    out.push_str("}\n");
    true
}

/// An insert's rows, and the format they are in.
struct Body {
    format: RowFormat,
    bytes: Vec<u8>,
}

/// The insert body of `(message, row)` pairs, each row with its hidden columns; `epoch` gives
/// the claim epoch of a message's partition. RowBinary when there is an `encoder` and it
/// writes every row; else JSONEachRow, one row a line, as the rows came.
fn rows_body<'a, I>(
    encoder: Option<&RowEncoder>,
    rows: I,
    epoch: impl Fn(i32) -> Option<u64>,
) -> Result<Body, BatchError>
where
    I: IntoIterator<Item = (&'a Received, &'a str)>,
    I::IntoIter: Clone,
{
    let rows = rows.into_iter();
    // Sized once: grown by doubling, a body of megabytes is copied about twice over, into
    // fresh pages each time. RowBinary is shorter than the rows' text; JSON adds the hidden
    // columns.
    let text: usize = rows.clone().map(|(_, row)| row.len()).sum();
    if let Some(encoder) = encoder {
        let mut bytes = Vec::with_capacity(text);
        if rows.clone().all(|(m, row)| encoder.encode(row, m.partition, m.offset, epoch(m.partition), &mut bytes)) {
            return Ok(Body { format: RowFormat::RowBinary, bytes });
        }
    }
    let mut body = String::with_capacity(text + text / 4);
    for (m, row) in rows {
        if !push_row(&mut body, row, m.partition, m.offset, epoch(m.partition)) {
            return Err(BatchError::NotAnObject { partition: m.partition, offset: m.offset });
        }
    }
    Ok(Body { format: RowFormat::JsonEachRow, bytes: body.into_bytes() })
}

/// Every row of the messages, each with its message.
fn rows_of<'a>(batch: &'a [&'a Received]) -> impl Iterator<Item = (&'a Received, &'a str)> + Clone + 'a {
    batch.iter().flat_map(|m| m.rows.iter().map(move |r| (*m, r)))
}

/// Inserts `(message, row)` pairs in one statement (see [`rows_body`] for the format).
async fn insert_rows<'a, I>(
    spec: &WriterSpec,
    ch: &ClickHouse,
    encoder: Option<&RowEncoder>,
    rows: I,
    epoch: Option<u64>,
) -> Result<(), BatchError>
where
    I: IntoIterator<Item = (&'a Received, &'a str)>,
    I::IntoIter: Clone,
{
    let body = rows_body(encoder, rows, |_| epoch)?;
    if body.bytes.is_empty() {
        return Ok(()); // every message of the batch was a duplicate
    }
    let mut columns = data_columns(spec);
    columns.extend(epoch.map(|_| EPOCH_COLUMN.to_string()));
    Ok(ch.insert(&insert_query(spec, &spec.table, columns, body.format), body.bytes).await?)
}

/// After a rejected batch: each row alone; the ones ClickHouse still rejects go to the DLQ.
async fn write_one_by_one(
    spec: &WriterSpec,
    ch: &ClickHouse,
    dlq: &DeadLetters,
    batch: &[&Received],
    epoch: Option<u64>,
    metrics: &ModelMetrics,
) -> Result<u64, BatchError> {
    let mut written = 0;
    for (m, row) in rows_of(batch) {
        // As JSON text: ClickHouse is the judge of a row it rejected in a batch.
        match insert_rows(spec, ch, None, [(m, row)], epoch).await {
            Ok(()) => written += 1,
            Err(e) if e.is_bad_data() => {
                let letter = dead_letter(spec, m, row, e);
                tracing::warn!(model = %spec.model, partition = m.partition, offset = m.offset, error = %letter.error, "row rejected; sent to the dead-letter queue");
                dlq.send(&[letter]).await?;
                metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// One `_igloo_offsets` row per partition of the batch, with the idempotency keys written, in
/// one insert.
async fn log_offsets(
    spec: &WriterSpec,
    ch: &ClickHouse,
    batch: &[&Received],
    keys: &BTreeMap<i32, Vec<String>>,
) -> Result<(), ClickHouseError> {
    let mut ranges: BTreeMap<i32, (i64, i64, u64)> = BTreeMap::new();
    for m in batch {
        let r = ranges.entry(m.partition).or_insert((m.offset, m.offset, 0));
        r.0 = r.0.min(m.offset);
        r.1 = r.1.max(m.offset);
        r.2 += 1;
    }
    let body: String = ranges
        .iter()
        .map(|(p, (first, last, rows))| {
            let keys = keys.get(p).map(Vec::as_slice).unwrap_or_default();
            let [topic, partition, first_offset, last_offset, n, idempotency] = OFFSET_LOG_COLUMNS;
            serde_json::json!({topic: spec.topic, partition: p, first_offset: first, last_offset: last, n: rows, idempotency: keys}).to_string() + "\n"
        })
        .collect();
    let columns = OFFSET_LOG_COLUMNS.map(String::from).to_vec();
    ch.insert(&insert_query(spec, OFFSETS_TABLE, columns, RowFormat::JsonEachRow), body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_columns_are_appended_to_each_row() {
        let row = |r: &str, epoch| {
            let mut out = String::from("{\"z\":0}\n");
            push_row(&mut out, r, 2, 41, epoch).then(|| out["{\"z\":0}\n".len()..].to_string())
        };
        assert_eq!(row("{\"a\":1}", None).unwrap(), "{\"a\":1,\"_igloo_partition\":2,\"_igloo_offset\":41}\n");
        assert_eq!(row("{}", None).unwrap(), "{\"_igloo_partition\":2,\"_igloo_offset\":41}\n");
        assert_eq!(
            row("{\"a\":1} ", Some(7)).unwrap(),
            "{\"a\":1,\"_igloo_partition\":2,\"_igloo_offset\":41,\"_igloo_epoch\":7}\n"
        );
        assert!(row("[1]", None).is_none());
        assert!(row("\u{0}", None).is_none());
    }
}
