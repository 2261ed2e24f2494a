//! A table writer that is one of several replicas of a model's writer (`igloo serve --role
//! writer`, any number of processes). The argument is in docs/ARCHITECTURE.md ("Several
//! writers per model"); in short:
//!
//! - **Who should write a partition:** a Kafka consumer group ([`Membership`]) shares the
//!   topic's partitions among the replicas.
//! - **Who may:** before writing a partition, a writer *claims* it in `_igloo_claims` with the
//!   next epoch. The owner is the highest `(epoch, writer)`.
//! - **The fence is inside ClickHouse:** a batch is staged in the session's temporary table and
//!   moved into the model table by one `INSERT … SELECT` that keeps only rows whose
//!   `(partition, epoch)` is still this writer's current claim; the offsets log entry is gated
//!   the same way. A zombie's insert that arrives after a newer claim writes nothing.
//! - **Takeover:** after claiming, the writer waits for every write query on the table that
//!   was running at its claim (their gates may have read the older claim), then recovers as a
//!   lone writer does (rows beyond the last logged offset are deleted, but only those of older
//!   epochs) and reads from there.
//! - **After every batch** the writer reads the claims again: a partition whose claim is no
//!   longer its own is dropped (its rows, if they passed, are the new owner's to keep or
//!   delete). Any failure re-claims the batch's partitions and re-reads them from the log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use igloo_schemas::internal::{self, CLAIM_COLUMNS};
use igloo_schemas::sql::internal::{claim_sql, LoggedRange};
use igloo_schemas::sql::RowFormat;
use rdkafka::consumer::StreamConsumer;
use rdkafka::Offset;
use serde::Deserialize;
use tokio::sync::watch;

use super::dedup::{Fresh, Seen};
use super::{
    collect, data_columns, dead_letter, logged_offsets, next_epoch, recover_below, rows_body, rows_of,
    wait_for_mutations, BatchError, RowEncoder, WriterSpec,
};
use crate::backoff::Backoff;
use crate::clickhouse::u64_json;
use crate::clickhouse::{ClickHouse, ClickHouseError};
use crate::config::WriterConfig;
use crate::dlq::DeadLetters;
use crate::kafka::consumer::{self, BatchLimits, Received};
use crate::kafka::group::{self, Membership, StallWatch};
use crate::kafka::Broker;
use crate::metrics::ModelMetrics;

#[derive(Deserialize)]
struct Claim {
    partition: u32,
    #[serde(deserialize_with = "u64_json")]
    claim_epoch: u64,
    claim_writer: String,
}

#[derive(Deserialize)]
struct Running {
    query_id: String,
}

/// What one replica has besides the spec and the engines.
pub struct Replica {
    /// Unique among the writers of the topic, now and before (it is kept in the claims).
    pub writer_id: String,
    /// How soon the group moves the partitions of a writer that stopped heartbeating.
    pub session_timeout: Duration,
    /// Where rows ClickHouse rejects go.
    pub dlq: DeadLetters,
    /// The idempotency keys written in the window, of the partitions this replica holds.
    pub seen: Seen,
    /// RowBinary for the table's rows, when its types allow (else JSONEachRow).
    pub encoder: Option<RowEncoder>,
}

/// The ClickHouse side of one replica: its session (the stage lives there) with ids every
/// writer of the table can find in `system.processes`, and a plain client for reads.
struct Fence<'a> {
    spec: &'a WriterSpec,
    me: &'a str,
    ch: &'a ClickHouse,
    session: ClickHouse,
    /// `igloo-write:<database>.<table>:`: the start of every write query's id on this table.
    prefix: String,
    encoder: Option<&'a RowEncoder>,
}

/// A write query's id prefix on a table, for any writer.
fn write_prefix(spec: &WriterSpec) -> String {
    format!("igloo-write:{}.{}:", spec.database, spec.table)
}

impl<'a> Fence<'a> {
    fn new(spec: &'a WriterSpec, ch: &'a ClickHouse, me: &'a str, encoder: Option<&'a RowEncoder>) -> Fence<'a> {
        let prefix = write_prefix(spec);
        let session =
            ch.in_session(&format!("igloo-writer-{me}-{}", spec.table)).with_query_ids(&format!("{prefix}{me}:"));
        Fence { spec, me, ch, session, prefix, encoder }
    }

    async fn claims(&self) -> Result<BTreeMap<i32, (u64, String)>, ClickHouseError> {
        let rows = self.ch.rows::<Claim>(&claim_sql::current_claims(&self.spec.database, &self.spec.topic)).await?;
        Ok(rows.into_iter().map(|c| (c.partition as i32, (c.claim_epoch, c.claim_writer))).collect())
    }

    /// Claims `partition`: Some((epoch, next offset)) once it is this writer's, recovered, and
    /// its idempotency keys loaded into `seen`; None if another claim won the race.
    async fn claim(&self, partition: i32, seen: &mut Seen) -> Result<Option<(u64, i64)>, ClickHouseError> {
        let spec = self.spec;
        let epoch = next_epoch(self.claims().await?.get(&partition).map(|(e, _)| *e));
        let row = serde_json::json!({
            CLAIM_COLUMNS[0]: spec.topic, CLAIM_COLUMNS[1]: partition, CLAIM_COLUMNS[2]: epoch, CLAIM_COLUMNS[3]: self.me,
        });
        self.ch.insert(&claim_sql::insert_claim(&spec.database), format!("{row}\n")).await?;
        if self.claims().await?.get(&partition) != Some(&(epoch, self.me.to_string())) {
            return Ok(None);
        }
        // Writes whose gate may have read the older claim are the ones running now.
        self.wait_for_running_writes().await?;
        wait_for_mutations(spec, self.ch).await?;
        let last = logged_offsets(spec, self.ch).await?.get(&partition).copied();
        recover_below(spec, self.ch, partition, last, Some(epoch)).await?;
        seen.load(spec, self.ch, Some(partition)).await?;
        tracing::info!(model = %spec.model, partition, epoch, from = last.map_or(0, |l| l + 1), "claimed partition");
        Ok(Some((epoch, last.map_or(0, |l| l + 1))))
    }

    /// Returns once every write query on the table running now has ended.
    async fn wait_for_running_writes(&self) -> Result<(), ClickHouseError> {
        let query = claim_sql::running_queries(&self.prefix);
        let running: BTreeSet<String> =
            self.ch.rows::<Running>(&query).await?.into_iter().map(|r| r.query_id).collect();
        let started = Instant::now();
        let mut warned = false;
        loop {
            let now: BTreeSet<String> =
                self.ch.rows::<Running>(&query).await?.into_iter().map(|r| r.query_id).collect();
            if running.intersection(&now).next().is_none() {
                return Ok(());
            }
            if !warned && started.elapsed() > Duration::from_secs(5) {
                warned = true;
                tracing::warn!(model = %self.spec.model, queries = ?now, "waiting for earlier writes to the table to end before taking the partition");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stages the rows of the batch's new messages (rows ClickHouse rejects as data go to the
    /// dead letters), moves those the claims still allow into the table, logs the offsets and
    /// idempotency keys the same way. Returns the rows written and the partitions whose claim
    /// is no longer this writer's.
    async fn write(
        &self,
        batch: &[&Received],
        fresh: &Fresh<'_>,
        owned: &BTreeMap<i32, u64>,
        dlq: &DeadLetters,
        metrics: &ModelMetrics,
    ) -> Result<(u64, BTreeSet<i32>), BatchError> {
        let spec = self.spec;
        let new = &fresh.messages;
        let mut columns = data_columns(spec);
        columns.push(internal::EPOCH_COLUMN.to_string());
        self.session.execute(&claim_sql::create_stage(&spec.database, &spec.table)).await?;
        self.session.execute(&claim_sql::truncate_stage()).await?;
        let mut staged: BTreeMap<i32, u64> = BTreeMap::new();
        let staged_all = match rows_body(self.encoder, rows_of(new), |p| owned.get(&p).copied()) {
            Ok(body) if body.bytes.is_empty() => Ok(()), // every message was a duplicate
            Ok(body) => self
                .session
                .insert(&claim_sql::insert_stage(&columns, body.format), body.bytes)
                .await
                .map_err(BatchError::from),
            Err(e) => Err(e),
        };
        match staged_all {
            Ok(()) => rows_of(new).for_each(|(m, _)| *staged.entry(m.partition).or_default() += 1),
            Err(e) if e.is_bad_data() => {
                tracing::warn!(model = %spec.model, error = %e, "batch rejected; staging its rows one by one");
                self.session.execute(&claim_sql::truncate_stage()).await?;
                let mut letters = Vec::new();
                // As JSON text: ClickHouse is the judge of a row it rejected in a batch.
                let insert = claim_sql::insert_stage(&columns, RowFormat::JsonEachRow);
                for (m, row) in rows_of(new) {
                    let one = match rows_body(None, [(m, row)], |p| owned.get(&p).copied()) {
                        Ok(t) => self.session.insert(&insert, t.bytes).await.map_err(BatchError::from),
                        Err(e) => Err(e),
                    };
                    match one {
                        Ok(()) => *staged.entry(m.partition).or_default() += 1,
                        Err(e) if e.is_bad_data() => letters.push(dead_letter(spec, m, row, e)),
                        Err(e) => return Err(e),
                    }
                }
                tracing::warn!(model = %spec.model, rows = letters.len(), "rows rejected; sent to the dead-letter queue");
                metrics.dead_lettered.fetch_add(letters.len() as u64, Ordering::Relaxed);
                dlq.send(&letters).await?;
            }
            Err(e) => return Err(e),
        }
        let mut ranges: BTreeMap<i32, (u64, u64, u64, u64)> = BTreeMap::new();
        for m in batch {
            let epoch = owned.get(&m.partition).copied().unwrap_or_default();
            let (o, rows) = (m.offset as u64, staged.get(&m.partition).copied().unwrap_or_default());
            let r = ranges.entry(m.partition).or_insert((epoch, o, o, rows));
            r.1 = r.1.min(o);
            r.2 = r.2.max(o);
        }
        let ranges: Vec<LoggedRange> = ranges
            .iter()
            .map(|(p, (epoch, first, last, rows))| LoggedRange {
                partition: *p as u32,
                epoch: *epoch,
                first: *first,
                last: *last,
                rows: *rows,
                keys: fresh.keys.get(p).cloned().unwrap_or_default(),
            })
            .collect();
        // The ranges go through a stage as data (their keys can outgrow a query), staged
        // before the rows move, so that the two gated inserts follow each other: the shorter
        // the time between them, the rarer a claim lost in between, which costs a rewrite.
        self.session.execute(&claim_sql::create_offsets_stage()).await?;
        self.session.execute(&claim_sql::truncate_offsets_stage()).await?;
        let (stage, body) = claim_sql::insert_offsets_stage(&ranges);
        self.session.insert(&stage, body).await?;
        self.session
            .execute(&claim_sql::gated_insert(&spec.database, &spec.table, &columns, &spec.topic, self.me))
            .await?;
        self.session.execute(&claim_sql::gated_offsets(&spec.database, &spec.topic, self.me)).await?;
        let claims = self.claims().await?;
        let lost: BTreeSet<i32> = ranges
            .iter()
            .map(|r| r.partition as i32)
            .filter(|p| claims.get(p) != Some(&(owned[p], self.me.to_string())))
            .collect();
        let written = staged.iter().filter(|(p, _)| !lost.contains(p)).map(|(_, n)| n).sum();
        Ok((written, lost))
    }
}

/// The partitions stalled in the group (see [`StallWatch`]), by the offsets log's progress.
async fn stalled(
    watch: &mut StallWatch,
    fence: &Fence<'_>,
    consumer: &Arc<StreamConsumer>,
    owned: &BTreeMap<i32, u64>,
) -> Vec<i32> {
    let spec = fence.spec;
    let Ok(done) = logged_offsets(spec, fence.ch).await else {
        return Vec::new(); // ClickHouse is away: nobody can progress, nothing to conclude.
    };
    let (c, topic) = (consumer.clone(), spec.topic.clone());
    let ends = tokio::task::spawn_blocking(move || group::ends(c.as_ref(), &topic, Duration::from_secs(2)))
        .await
        .unwrap_or_default();
    watch.observe(&done, &ends, &owned.keys().copied().collect())
}

/// Runs one replica until `shutdown`.
pub async fn run(
    spec: WriterSpec,
    cfg: WriterConfig,
    broker: Broker,
    ch: ClickHouse,
    metrics: Arc<ModelMetrics>,
    mut shutdown: watch::Receiver<bool>,
    replica: Replica,
) {
    let Replica { writer_id, session_timeout, dlq, mut seen, encoder } = replica;
    let dlq = &dlq;
    let mut backoff = Backoff::default();
    let group = format!("igloo-writers.{}.{}", spec.database, spec.table);
    let (mut membership, consumer) = loop {
        let joined = Membership::join(&broker, &group, &spec.topic, session_timeout)
            .and_then(|m| broker.consumer::<StreamConsumer>(&format!("{group}.reader"), 50).map(|c| (m, c)));
        match joined {
            Ok(j) => break j,
            Err(e) => {
                tracing::warn!(model = %spec.model, error = %e, "cannot join the writers' consumer group yet; retrying")
            }
        }
        if backoff.wait(&mut shutdown).await {
            return;
        }
    };
    let consumer = Arc::new(consumer);
    let fence = Fence::new(&spec, &ch, &writer_id, encoder.as_ref());
    let mut assignment = membership.watch();
    // Partition → (claim epoch), and the next offset to write, of the partitions this writer holds.
    let mut owned: BTreeMap<i32, u64> = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let next_shared = Arc::new(Mutex::new(BTreeMap::new()));
    let lag_metrics = metrics.clone();
    let lag_task =
        tokio::spawn(consumer::track_lag(consumer.clone(), spec.topic.clone(), next_shared.clone(), move |lag| {
            lag_metrics.lag.store(lag, Ordering::Relaxed)
        }));
    let limits =
        BatchLimits { max_rows: cfg.max_rows, max_bytes: cfg.max_bytes, flush: Duration::from_millis(cfg.flush_ms) };
    tracing::info!(model = %spec.model, topic = %spec.topic, writer = %writer_id, %group, "table writer replica running");
    let mut rebalance = true;
    // Partitions this writer should hold but could not claim yet (a race, ClickHouse away): the
    // others are written meanwhile, and these are claimed again at this time.
    let mut reclaim_at: Option<tokio::time::Instant> = None;
    let mut stall_watch = StallWatch::default();
    let mut check = tokio::time::interval(session_timeout * 2);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if rebalance {
            rebalance = false;
            let wanted = assignment.borrow_and_update().partitions.clone();
            owned.retain(|p, _| wanted.contains(p));
            next.retain(|p, _| wanted.contains(p));
            seen.retain(|p| owned.contains_key(&p));
            let to_claim: Vec<i32> = wanted.iter().copied().filter(|p| !owned.contains_key(p)).collect();
            let mut unclaimed = false;
            for p in to_claim {
                match fence.claim(p, &mut seen).await {
                    Ok(Some((epoch, from))) => {
                        owned.insert(p, epoch);
                        next.insert(p, from);
                    }
                    Ok(None) => {
                        tracing::info!(model = %spec.model, partition = p, "another writer claimed the partition at the same time; claiming again");
                        unclaimed = true;
                    }
                    Err(e) => {
                        tracing::warn!(model = %spec.model, partition = p, error = %e, "cannot claim the partition yet; retrying");
                        unclaimed = true;
                    }
                }
            }
            reclaim_at = unclaimed.then(|| tokio::time::Instant::now() + Duration::from_millis(500));
            let at: Vec<(i32, Offset)> = next.iter().map(|(p, o)| (*p, Offset::Offset(*o))).collect();
            if let Err(e) = consumer::assign(consumer.as_ref(), &spec.topic, &at) {
                tracing::warn!(model = %spec.model, error = %e, "cannot assign the partitions yet; retrying");
                owned.clear();
                next.clear();
                rebalance = true;
            }
            *next_shared.lock().expect("lag lock") = next.clone();
            metrics.assigned.store(u64::from(!rebalance && reclaim_at.is_none()), Ordering::Relaxed);
            if rebalance {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = assignment.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                rebalance = true;
                continue;
            }
        }
        // A batch in hand is written before a rebalance is looked at: the fence decides
        // whether it lands, so a writer that was frozen mid-batch is checked, not trusted.
        let batch = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            b = collect(&consumer, limits), if !owned.is_empty() => b,
            _ = assignment.changed() => { rebalance = true; continue }
            _ = tokio::time::sleep_until(reclaim_at.unwrap_or_else(tokio::time::Instant::now)), if reclaim_at.is_some() => {
                rebalance = true;
                continue;
            }
            _ = check.tick() => {
                let orphans = stalled(&mut stall_watch, &fence, &consumer, &owned).await;
                if !orphans.is_empty() {
                    tracing::warn!(model = %spec.model, partitions = ?orphans, "partitions with unwritten messages and no progress for two session timeouts: rejoining the group so that it drops members that are gone");
                    match Membership::join(&broker, &group, &spec.topic, session_timeout) {
                        // The old member leaves meanwhile; the new one is already in.
                        Ok(m) => drop(tokio::spawn(std::mem::replace(&mut membership, m).leave())),
                        Err(e) => {
                            tracing::error!(model = %spec.model, error = %e, "cannot rejoin the writers' consumer group");
                            break;
                        }
                    }
                    assignment = membership.watch();
                }
                // A batch being collected was dropped: read again from the next offsets.
                rebalance = true;
                continue;
            }
        };
        let Some(batch) = batch else { continue };
        let fresh: Vec<&Received> = batch
            .iter()
            .filter(|m| owned.contains_key(&m.partition) && m.offset >= next.get(&m.partition).copied().unwrap_or(0))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let started = Instant::now();
        let new = seen.fresh(&fresh);
        match fence.write(&fresh, &new, &owned, dlq, &metrics).await {
            Ok((written, lost)) => {
                for m in fresh.iter().filter(|m| !lost.contains(&m.partition)) {
                    next.insert(m.partition, m.offset + 1);
                }
                let Fresh { mut keys, skipped_rows, .. } = new;
                keys.retain(|p, _| !lost.contains(p));
                seen.remember(keys);
                metrics.duplicates_skipped.fetch_add(skipped_rows, Ordering::Relaxed);
                if !lost.is_empty() {
                    tracing::warn!(model = %spec.model, partitions = ?lost, "another writer claimed these partitions; leaving them");
                    owned.retain(|p, _| !lost.contains(p));
                    next.retain(|p, _| !lost.contains(p));
                    seen.retain(|p| owned.contains_key(&p));
                    rebalance = true;
                }
                metrics.written.fetch_add(written, Ordering::Relaxed);
                metrics.batches.fetch_add(1, Ordering::Relaxed);
                metrics.insert_ms_total.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                *next_shared.lock().expect("lag lock") = next.clone();
            }
            Err(e) => {
                // Whatever the attempt left is the next claim's to clean: claim again, re-read.
                tracing::warn!(model = %spec.model, error = %e, "batch not written; claiming its partitions again");
                for m in &fresh {
                    owned.remove(&m.partition);
                    next.remove(&m.partition);
                }
                seen.retain(|p| owned.contains_key(&p));
                rebalance = true;
                if backoff.wait(&mut shutdown).await {
                    break;
                }
            }
        }
    }
    lag_task.abort();
    metrics.assigned.store(0, Ordering::Relaxed);
    membership.leave().await;
    tracing::info!(model = %spec.model, "table writer replica stopped");
}
