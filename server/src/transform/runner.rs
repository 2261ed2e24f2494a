//! One slot of a transform: the source partitions `p` with `p % slots == slot`, one worker
//! process, and the loop read a batch → run it → validate the outputs against the destination
//! model → produce them → dead-letter the failures → commit the source offsets.
//!
//! A worker that crashes on a batch is restarted (with backoff) and the batch is redelivered
//! one record at a time; a record that crashes a fresh worker [`MAX_CRASHES`] times goes to the
//! dead-letter queue instead of looping forever. New code (a save) is picked up between
//! batches: the new worker must load before the old one is stopped, so a broken save leaves the
//! previous version running.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use igloo_schemas::ir::Model;
use igloo_schemas::Ir;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tokio::sync::watch;

use super::protocol::{records_frame, RecordResult};
use super::spec::TransformSpec;
use super::worker::{Worker, WorkerError, WorkerRuntime};
use crate::backoff::Backoff;
use crate::config::TransformsConfig;
use crate::dlq::{DeadLetter, DeadLetters};
use crate::kafka::consumer::{self, BatchLimits, ConsumerError, Received};
use crate::kafka::group::{self, StallWatch};
use crate::kafka::producer::Producer;
use crate::kafka::wire::KeyedRow;
use crate::metrics::TransformMetrics;
use crate::validate::{validate_record, Context};

/// Crashes of a fresh worker on one record before the record is dead-lettered.
pub const MAX_CRASHES: usize = 3;

/// What every slot of one transform shares.
pub struct TransformContext {
    pub spec: TransformSpec,
    pub runtime: WorkerRuntime,
    pub config: TransformsConfig,
    pub broker: crate::kafka::Broker,
    pub database: String,
    pub ir: Arc<Ir>,
    pub producer: Producer,
    pub dead_letters: DeadLetters,
    pub metrics: Arc<TransformMetrics>,
    /// Under `igloo serve`: every slot of every replica is a member of the transform's consumer
    /// group, which shares the source partitions; a member silent this long loses them.
    /// None (`igloo dev`): the slots split the partitions among themselves.
    pub group_session: Option<Duration>,
}

impl TransformContext {
    fn source(&self) -> &Model {
        self.ir.model(&self.spec.source).expect("checked by discover")
    }

    fn destination(&self) -> &Model {
        self.ir.model(&self.spec.destination).expect("checked by discover")
    }
}

/// One source record: where it came from and its JSON text with field (not column) names.
struct Record {
    partition: i32,
    offset: i64,
    text: String,
    /// The source message's `igloo-idempotency` header, if it has one.
    idempotency: Option<std::sync::Arc<str>>,
}

/// What became of one record.
enum Outcome {
    Out(Vec<Value>),
    Dead(String),
}

/// Told to stop while waiting.
struct Stopped;

pub async fn run_slot(
    ctx: Arc<TransformContext>,
    slot: usize,
    slots: usize,
    mut code: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = ctx.spec.name.clone();
    let mut backoff = Backoff::default();
    let consumer = loop {
        match assign(&ctx, slot, slots) {
            Ok(Some(c)) => break Arc::new(c),
            Ok(None) => {
                tracing::info!(transform = %name, slot, "more workers than source partitions: slot {slot} stays idle");
                let _ = shutdown.changed().await;
                return;
            }
            Err(e) => tracing::warn!(transform = %name, error = %e, "cannot read the source topic yet; retrying"),
        }
        if backoff.wait(&mut shutdown).await {
            return;
        }
    };
    let Ok(first) = start_worker(&ctx, &mut code, &mut shutdown).await else { return };
    let mut worker = Some(first);
    ctx.metrics.workers.fetch_add(1, Ordering::Relaxed);
    let positions = Arc::new(Mutex::new(BTreeMap::new()));
    let lag_metrics = ctx.metrics.clone();
    let lag_task = tokio::spawn(consumer::track_lag(
        consumer.clone(),
        ctx.source().topic.name.clone(),
        positions.clone(),
        move |lag| {
            lag_metrics.lag.write().expect("lag lock").insert(slot, lag);
        },
    ));
    let mut stall_watch = StallWatch::default();
    let mut check = tokio::time::interval(ctx.group_session.unwrap_or(Duration::from_secs(3600)) * 2);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            _ = shutdown.changed() => break,
            _ = code.changed() => {
                worker = reload(&ctx, worker).await;
                continue;
            }
            _ = check.tick(), if ctx.group_session.is_some() => {
                rejoin_if_stalled(&ctx, &consumer, &mut stall_watch).await;
                continue;
            }
            m = consumer.recv() => m,
        };
        let batch = match first {
            Ok(m) => collect(&consumer, &ctx.config, Received::from_message(&m)).await,
            Err(e) => {
                tracing::warn!(transform = %name, error = %e, "consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        match process_batch(&ctx, &mut worker, &consumer, batch, &mut shutdown).await {
            Ok(done) => positions.lock().expect("positions lock").extend(done),
            Err(Stopped) => break,
        }
    }
    lag_task.abort();
    if let Some(w) = worker {
        w.stop().await;
    }
    ctx.metrics.workers.fetch_sub(1, Ordering::Relaxed);
}

/// Why a slot cannot read its source yet (it retries).
#[derive(Debug, thiserror::Error)]
enum AssignError {
    #[error("cannot create the consumer of topic {topic}: {source}")]
    Create { topic: String, source: rdkafka::error::KafkaError },
    #[error(transparent)]
    Topic(#[from] ConsumerError),
}

/// A consumer assigned this slot's partitions at their committed offsets (None if there are
/// none), or, for a replica, a member of the transform's group.
fn assign(ctx: &TransformContext, slot: usize, slots: usize) -> Result<Option<StreamConsumer>, AssignError> {
    let topic = &ctx.source().topic.name;
    let group = format!("igloo-transform.{}.{}", ctx.database, ctx.spec.name);
    let create = |source| AssignError::Create { topic: topic.clone(), source };
    if let Some(session) = ctx.group_session {
        let consumer: StreamConsumer =
            ctx.broker.group_config(&group, session).set("fetch.wait.max.ms", "20").create().map_err(create)?;
        consumer.subscribe(&[topic.as_str()]).map_err(create)?;
        return Ok(Some(consumer));
    }
    let consumer: StreamConsumer = ctx.broker.consumer(&group, 20).map_err(create)?;
    let partitions = consumer::partitions(consumer.client(), topic, Duration::from_secs(5))?;
    let mine: Vec<(i32, Offset)> =
        partitions.into_iter().filter(|p| *p as usize % slots == slot).map(|p| (p, Offset::Stored)).collect();
    if mine.is_empty() {
        return Ok(None);
    }
    consumer::assign(&consumer, topic, &mine)?;
    Ok(Some(consumer))
}

/// The first worker; while the file does not load, waits for a save that fixes it (or retries
/// every 5 s). `Err` when told to stop.
async fn start_worker(
    ctx: &TransformContext,
    code: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Worker, Stopped> {
    loop {
        match Worker::start(&ctx.spec, &ctx.runtime).await {
            Ok(w) => return Ok(w),
            Err(e) => tracing::error!(transform = %ctx.spec.name, "{e}"),
        }
        tokio::select! {
            _ = shutdown.changed() => return Err(Stopped),
            _ = code.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// New code: a new worker replaces the old one once it loaded; if it does not, the old one
/// keeps running.
async fn reload(ctx: &TransformContext, old: Option<Worker>) -> Option<Worker> {
    match Worker::start(&ctx.spec, &ctx.runtime).await {
        Ok(new) => {
            match old {
                Some(old) => old.stop().await,
                // The old one had crashed: the gauge counted it out already.
                None => _ = ctx.metrics.workers.fetch_add(1, Ordering::Relaxed),
            }
            Some(new)
        }
        Err(e) => {
            tracing::error!(transform = %ctx.spec.name, "{e}\n(the previous version keeps running)");
            old
        }
    }
}

/// The first message and whatever follows within `flush_ms`, up to `max_batch` records, one
/// [`Record`] per row.
async fn collect(consumer: &StreamConsumer, cfg: &TransformsConfig, first: Received) -> Vec<Record> {
    let limits =
        BatchLimits { max_rows: cfg.max_batch, max_bytes: usize::MAX, flush: Duration::from_millis(cfg.flush_ms) };
    consumer::collect_after(consumer, first, limits)
        .await
        .into_iter()
        .flat_map(|m| {
            let idempotency: Option<std::sync::Arc<str>> = m.idempotency.map(Into::into);
            m.rows.to_strings().into_iter().map(move |text| Record {
                partition: m.partition,
                offset: m.offset,
                text,
                idempotency: idempotency.clone(),
            })
        })
        .collect()
}

/// Runs, delivers and commits one batch; returns the next offset of each partition in it.
async fn process_batch(
    ctx: &TransformContext,
    worker: &mut Option<Worker>,
    consumer: &Arc<StreamConsumer>,
    mut batch: Vec<Record>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<BTreeMap<i32, i64>, Stopped> {
    rename_to_fields(ctx.source(), &mut batch);
    ctx.metrics.records_in.fetch_add(batch.len() as u64, Ordering::Relaxed);
    let outcomes = run_records(ctx, worker, &batch, shutdown).await?;
    let (outputs, letters) = deliverables(ctx, &batch, outcomes);
    let mut backoff = Backoff::default();
    let topic = &ctx.destination().topic.name;
    while let Err(e) = ctx.producer.send_keyed_groups(topic, &outputs).await {
        tracing::warn!(transform = %ctx.spec.name, error = %e, "outputs not acknowledged; retrying");
        if backoff.wait(shutdown).await {
            return Err(Stopped);
        }
    }
    while let Err(e) = ctx.dead_letters.send(&letters).await {
        tracing::warn!(transform = %ctx.spec.name, error = %e, "dead letters not stored; retrying");
        if backoff.wait(shutdown).await {
            return Err(Stopped);
        }
    }
    let produced: usize = outputs.iter().map(|(_, rows)| rows.len()).sum();
    ctx.metrics.records_out.fetch_add(produced as u64, Ordering::Relaxed);
    ctx.metrics.dead_lettered.fetch_add(letters.len() as u64, Ordering::Relaxed);
    let mut next = BTreeMap::new();
    for r in &batch {
        let n = next.entry(r.partition).or_insert(r.offset + 1);
        *n = (*n).max(r.offset + 1);
    }
    loop {
        if ctx.group_session.is_some() {
            // Partitions the group moved meanwhile are the new owner's: it reads them from the
            // last commit (at least once); committing them here could only move it back.
            let assigned: Vec<i32> =
                consumer.assignment().map(|a| a.elements().iter().map(|e| e.partition()).collect()).unwrap_or_default();
            let moved: Vec<i32> = next.keys().copied().filter(|p| !assigned.contains(p)).collect();
            if !moved.is_empty() {
                tracing::info!(transform = %ctx.spec.name, partitions = ?moved, "partitions moved to another replica during the batch; not committing them");
                next.retain(|p, _| !moved.contains(p));
            }
            if next.is_empty() {
                break;
            }
        }
        match commit(consumer, &ctx.source().topic.name, &next).await {
            Ok(()) => break,
            Err(e) => tracing::warn!(transform = %ctx.spec.name, error = %e, "source offsets not committed; retrying"),
        }
        if backoff.wait(shutdown).await {
            return Err(Stopped);
        }
    }
    Ok(next)
}

/// A replica's check for partitions the group gave to a member that is gone (see
/// [`StallWatch`]): by the group's committed offsets; seeing one, it leaves and joins again.
async fn rejoin_if_stalled(ctx: &TransformContext, consumer: &Arc<StreamConsumer>, watch: &mut StallWatch) {
    let (c, topic) = (consumer.clone(), ctx.source().topic.name.clone());
    let seen = tokio::task::spawn_blocking(move || {
        let ends = group::ends(c.as_ref(), &topic, Duration::from_secs(2));
        let mut tpl = TopicPartitionList::new();
        for (p, _) in &ends {
            tpl.add_partition(&topic, *p);
        }
        let committed = c.committed_offsets(tpl, Duration::from_secs(2)).ok()?;
        let done: BTreeMap<i32, i64> = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(n) => Some((e.partition(), n - 1)),
                _ => None,
            })
            .collect();
        let mine = c.assignment().ok()?.elements().iter().map(|e| e.partition()).collect();
        Some((done, ends, mine))
    })
    .await;
    let Ok(Some((done, ends, mine))) = seen else { return };
    let stalled = watch.observe(&done, &ends, &mine);
    if stalled.is_empty() {
        return;
    }
    tracing::warn!(transform = %ctx.spec.name, partitions = ?stalled, "partitions with unread records and no progress for two session timeouts: rejoining the group so that it drops members that are gone");
    consumer.unsubscribe();
    if let Err(e) = consumer.subscribe(&[ctx.source().topic.name.as_str()]) {
        tracing::error!(transform = %ctx.spec.name, error = %e, "cannot rejoin the transform's consumer group");
    }
}

/// The source offsets were not committed (the slot retries).
#[derive(Debug, thiserror::Error)]
enum CommitError {
    #[error("cannot commit the offsets of topic {topic}: {source}")]
    Kafka { topic: String, source: rdkafka::error::KafkaError },
    #[error("the commit of topic {topic} did not finish")]
    Task { topic: String },
}

async fn commit(consumer: &Arc<StreamConsumer>, topic: &str, next: &BTreeMap<i32, i64>) -> Result<(), CommitError> {
    let error = |source| CommitError::Kafka { topic: topic.into(), source };
    let mut tpl = TopicPartitionList::new();
    for (p, n) in next {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*n)).map_err(error)?;
    }
    let c = consumer.clone();
    let mut task = tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync));
    // librdkafka waits for a synchronous commit without a bound (until the group coordinator
    // answers): a slot stalled here says so rather than going quiet.
    let done = match tokio::time::timeout(SLOW_COMMIT, &mut task).await {
        Ok(done) => done,
        Err(_) => {
            tracing::warn!(
                topic,
                "the source offsets' commit has not finished after {} s; still waiting",
                SLOW_COMMIT.as_secs()
            );
            task.await
        }
    };
    done.map_err(|_| CommitError::Task { topic: topic.into() })?.map_err(error)
}

/// A commit taking longer than this is logged (see [`commit`]).
const SLOW_COMMIT: Duration = Duration::from_secs(30);

/// Topic rows are keyed by column; transforms see field names (they differ under `@map`).
fn rename_to_fields(model: &Model, batch: &mut [Record]) {
    let renames: Vec<(&str, &str)> =
        model.fields.iter().filter(|f| f.column != f.name).map(|f| (f.column.as_str(), f.name.as_str())).collect();
    if renames.is_empty() {
        return;
    }
    for r in batch {
        let Ok(Value::Object(mut row)) = serde_json::from_str::<Value>(&r.text) else { continue };
        for (column, field) in &renames {
            if let Some(v) = row.remove(*column) {
                row.insert((*field).to_string(), v);
            }
        }
        r.text = Value::Object(row).to_string();
    }
}

/// Every record's outcome: the whole batch at once, or after a crash one record at a time.
async fn run_records(
    ctx: &TransformContext,
    worker: &mut Option<Worker>,
    batch: &[Record],
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Vec<Outcome>, Stopped> {
    let timeout = Duration::from_millis(ctx.config.timeout_ms);
    let mut backoff = Backoff::default();
    let w = running(ctx, worker, &mut backoff, shutdown).await?;
    let frame = records_frame(batch.iter().map(|r| r.text.as_str()));
    let reason = match w.process(&frame, batch.len(), timeout).await {
        Ok(results) => return Ok(results.into_iter().map(|r| outcome(&ctx.spec, r)).collect()),
        Err(e) => e,
    };
    crashed(ctx, worker, &reason, batch.len());
    let mut outcomes = Vec::with_capacity(batch.len());
    for r in batch {
        let mut crashes = 0;
        let result = loop {
            let w = running(ctx, worker, &mut backoff, shutdown).await?;
            match w.process(&records_frame([r.text.as_str()]), 1, timeout).await {
                Ok(mut results) => break outcome(&ctx.spec, results.remove(0)),
                Err(e) => {
                    crashes += 1;
                    crashed(ctx, worker, &e, 1);
                    if crashes == MAX_CRASHES {
                        break Outcome::Dead(format!(
                            "transform {}: the worker crashed {MAX_CRASHES} times on this record; {e}",
                            ctx.spec.name
                        ));
                    }
                }
            }
        };
        outcomes.push(result);
    }
    Ok(outcomes)
}

fn crashed(ctx: &TransformContext, worker: &mut Option<Worker>, error: &WorkerError, records: usize) {
    tracing::warn!(transform = %ctx.spec.name, records, "{error}; restarting the worker and redelivering one record at a time");
    ctx.metrics.crashes.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.workers.fetch_sub(1, Ordering::Relaxed);
    *worker = None;
}

/// The worker, restarted (with backoff) if it crashed.
async fn running<'w>(
    ctx: &TransformContext,
    worker: &'w mut Option<Worker>,
    backoff: &mut Backoff,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<&'w mut Worker, Stopped> {
    while worker.is_none() {
        if backoff.wait(shutdown).await {
            return Err(Stopped);
        }
        match Worker::start(&ctx.spec, &ctx.runtime).await {
            Ok(w) => {
                ctx.metrics.workers.fetch_add(1, Ordering::Relaxed);
                *worker = Some(w);
            }
            Err(e) => tracing::error!(transform = %ctx.spec.name, "cannot restart the worker: {e}"),
        }
    }
    Ok(worker.as_mut().expect("just set"))
}

fn outcome(spec: &TransformSpec, result: RecordResult) -> Outcome {
    match result {
        RecordResult::Out { out } => Outcome::Out(out),
        RecordResult::Error { error, stack } => Outcome::Dead(match stack {
            Some(stack) if !stack.is_empty() => format!("transform {} threw {error}\n{stack}", spec.name),
            _ => format!("transform {} threw {error}", spec.name),
        }),
    }
}

/// The keyed outputs to produce and the dead letters. A record is all or nothing: if
/// one of its outputs does not fit the destination model, none is produced and the record is
/// dead-lettered with the reason.
/// The outputs, one group per source message under the idempotency key of that message (so a
/// batch replayed after a crash is written once by the destination's table writer), and the
/// dead letters.
fn deliverables(ctx: &TransformContext, batch: &[Record], outcomes: Vec<Outcome>) -> (Outputs, Vec<DeadLetter>) {
    let destination = ctx.destination();
    let mut outputs: Outputs = Vec::new();
    let mut last_source: Option<(i32, i64)> = None;
    let mut letters = Vec::new();
    let mut uuid = || uuid::Uuid::new_v4().to_string();
    let mut vctx = Context { now: chrono::Utc::now(), uuid: &mut uuid };
    for (record, outcome) in batch.iter().zip(outcomes) {
        let checked = match outcome {
            Outcome::Dead(error) => Err(error),
            Outcome::Out(values) => {
                if values.is_empty() {
                    ctx.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                }
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        validate_record(&ctx.ir, destination, v, i, &mut vctx)
                            .map_err(|errors| mismatch(ctx, i, v, &errors))
                    })
                    .collect::<Result<Vec<_>, String>>()
            }
        };
        match checked {
            Ok(rows) if rows.is_empty() => {}
            Ok(rows) => {
                // One group per source message (two messages with one header stay two groups:
                // each encodes as the first did, and the destination writer keeps one).
                let at = (record.partition, record.offset);
                match (outputs.last_mut(), last_source == Some(at)) {
                    (Some((_, group)), true) => group.extend(rows),
                    _ => outputs.push((source_key(ctx, record), rows)),
                }
                last_source = Some(at);
            }
            Err(error) => letters.push(DeadLetter {
                topic: ctx.source().topic.name.clone(),
                partition: record.partition,
                offset: record.offset,
                error,
                payload: record.text.clone(),
            }),
        }
    }
    (outputs, letters)
}

/// A transform's outputs, grouped by the source message they came from, each with its key.
type Outputs = Vec<(String, Vec<KeyedRow>)>;

/// The idempotency key of the outputs of one source message: the transform and the source
/// message's own idempotency header when it has one (a request sent twice is two messages
/// with one header: their outputs are then one), else its place on the source topic.
fn source_key(ctx: &TransformContext, record: &Record) -> String {
    match &record.idempotency {
        Some(header) => format!("igloo-transform:{}:{header}", ctx.spec.name),
        None => format!("igloo-transform:{}@{}:{}", ctx.spec.name, record.partition, record.offset),
    }
}

fn mismatch(ctx: &TransformContext, index: usize, value: &Value, errors: &[crate::validate::RecordError]) -> String {
    let reasons: Vec<String> = errors
        .iter()
        .map(|e| if e.path.is_empty() { e.reason.clone() } else { format!("`{}`: {}", e.path, e.reason) })
        .collect();
    let shown = value.to_string();
    let shown =
        if shown.chars().count() > 300 { format!("{}…", shown.chars().take(300).collect::<String>()) } else { shown };
    format!(
        "transform {} returned a record (output {index}) that is not a {}: {}; it returned {shown}",
        ctx.spec.name,
        ctx.spec.destination,
        reasons.join("; ")
    )
}
