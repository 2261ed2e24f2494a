//! The dev console: a web page at `/console` that shows the whole project live, served by the
//! server itself (assets compiled into the binary; no build step, no CDN), and the JSON it
//! reads under `/console/api/`:
//!
//! - `overview`: models (topic, table, rows, rates, lag, who fills them), views, APIs,
//!   transforms with their state, and the problems `igloo dev` currently sees;
//! - `history`: per-second rates and lag over the last ten minutes, for the charts;
//! - `models/{Model}/topic`, `models/{Model}/rows`: the latest messages and table rows;
//! - `models/{Model}/example`: a record the ingest API accepts, for the playground;
//! - `dead-letters`: the newest rows of `_igloo_dlq`.
//!
//! The page also uses the public API: `/ingest`, `/subscribe` (live peek), `/consumption`
//! and `/api/{Model}/samples` (API explorer, `<igloo-timeseries>` from sdk-ts).

pub mod example;
mod history;
pub mod json;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use igloo_schemas::codegen::{api_fn, ingest_fn, module_stem, samples_fn};
use igloo_schemas::ir::{Arity, BaseType, Field};
use serde_json::Value;

pub use history::History;

use crate::api_error::ApiError;
use crate::app_state::{AppState, Route};
use crate::metrics::load;
use crate::transform::set::TransformStatus;

/// What the console shows beyond the IR and the counters.
#[derive(Debug, Default)]
pub struct ConsoleState {
    /// The project's name (the generated SDK module is `sdk/<name>.ts|py`).
    pub project: String,
    problems: RwLock<Vec<String>>,
    transforms: RwLock<(Vec<TransformStatus>, Vec<String>)>,
    pub history: History,
}

impl ConsoleState {
    pub fn new(project: &str) -> ConsoleState {
        ConsoleState { project: project.to_string(), ..ConsoleState::default() }
    }

    /// What is wrong with the project files now (schema diagnostics, view errors, a failed
    /// migration); empty once a save applied cleanly.
    pub fn set_problems(&self, problems: Vec<String>) {
        *self.problems.write().expect("problems lock") = problems;
    }

    pub fn set_transforms(&self, status: (Vec<TransformStatus>, Vec<String>)) {
        *self.transforms.write().expect("transforms lock") = status;
    }

    /// The transforms' state after the last sync, and the files that cannot be transforms.
    pub fn transforms(&self) -> (Vec<TransformStatus>, Vec<String>) {
        self.transforms.read().expect("transforms lock").clone()
    }
}

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");
/// The web components of sdk-ts, served as they are shipped.
const ELEMENTS: &str = include_str!("../../../sdk-ts/src/elements.js");

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(|| async { asset("index.html") }))
        .route("/console/", get(|| async { asset("index.html") }))
        .route("/console/assets/{file}", get(|Path(file): Path<String>| async move { asset(&file) }))
        .route("/console/api/overview", get(overview))
        .route("/console/api/history", get(history))
        .route("/console/api/models/{model}/topic", get(topic))
        .route("/console/api/models/{model}/rows", get(rows))
        .route("/console/api/models/{model}/example", get(example))
        .route("/console/api/dead-letters", get(dead_letters))
}

fn asset(file: &str) -> Response {
    let (body, kind) = match file {
        "index.html" => (INDEX, "text/html; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "elements.js" => (ELEMENTS, "text/javascript; charset=utf-8"),
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return ApiError::NoRoute(format!("/console/assets/{file}")).into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `?limit=` between 1 and 1000, 20 when absent.
fn limit(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(20),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(ApiError::bad("limit", "must be an integer from 1 to 1000")),
        },
    }
}

/// `Float[]`, `String?`, `Level`.
fn type_name(f: &Field) -> String {
    let base = match &f.ty.base {
        BaseType::Scalar(s) => s.name().to_string(),
        BaseType::Enum(e) => e.clone(),
    };
    match f.ty.arity {
        Arity::Required => base,
        Arity::Optional => format!("{base}?"),
        Arity::List => format!("{base}[]"),
    }
}

/// Rows per table of the project's database; `Err` says why ClickHouse did not answer.
async fn row_counts(state: &AppState) -> Result<HashMap<String, u64>, String> {
    let sql = igloo_schemas::sql::row_counts_query(&state.database, state.cluster.as_ref());
    let rows: Vec<Value> = state.clickhouse.rows(&sql).await.map_err(|e| e.to_string())?;
    // ClickHouse quotes 64-bit integers in JSON.
    Ok(rows
        .iter()
        .filter_map(|r| {
            let n = r["rows"].as_u64().or_else(|| r["rows"].as_str()?.parse().ok())?;
            let table = r["table"].as_str()?;
            let table = match state.cluster {
                Some(_) => table.strip_suffix(igloo_schemas::sql::cluster::LOCAL_SUFFIX)?,
                None => table,
            };
            Some((table.to_string(), n))
        })
        .collect())
}

async fn overview(State(state): State<Arc<AppState>>) -> Json<json::Overview> {
    let ir = state.ir();
    let counts = row_counts(&state).await;
    let rates = state.console.history.recent_rates(5);
    let (transforms, invalid) = state.console.transforms.read().expect("transforms lock").clone();
    let routes = state.routes.read().expect("routes lock").clone();
    let metrics: BTreeMap<String, _> = state.metrics.models().into_iter().collect();
    let transform_metrics: BTreeMap<String, _> = state.metrics.transforms().into_iter().collect();
    let mut problems = state.console.problems.read().expect("problems lock").clone();
    problems.extend(invalid);
    if let Err(e) = &counts {
        problems.push(format!("row counts unavailable: {e}"));
    }
    let models = ir
        .models
        .iter()
        .map(|m| {
            let aliases = |want: fn(&Route, &str) -> bool| {
                routes.iter().filter(|(_, r)| want(r, &m.name)).map(|(p, _)| p.clone()).collect::<Vec<_>>()
            };
            let c = metrics.get(&m.name);
            let counter = |f: fn(&crate::metrics::ModelMetrics) -> u64| c.map(|c| f(c)).unwrap_or(0);
            let (ingest_rate, write_rate) = rates.get(&m.name).copied().unwrap_or((0.0, 0.0));
            let filled_by = if ir.filled_by_view(&m.name) {
                Some(json::FilledBy::View(format!("views/{}.sql", m.name)))
            } else {
                transforms.iter().find(|t| t.destination == m.name).map(|t| json::FilledBy::Transform(t.name.clone()))
            };
            json::ModelInfo {
                name: m.name.clone(),
                doc: m.doc.clone(),
                topic: m.topic.name.clone(),
                partitions: m.topic.partitions,
                table: m.table.clone(),
                // A table without parts has no row in system.parts.
                rows: counts.as_ref().ok().map(|c| c.get(&m.table).copied().unwrap_or(0)),
                ingest: m.ingest,
                filled_by,
                fields: m
                    .fields
                    .iter()
                    .map(|f| json::FieldInfo { name: f.name.clone(), ty: type_name(f), doc: f.doc.clone() })
                    .collect(),
                key: m.primary_key.clone(),
                timeseries: m.timeseries.clone(),
                ingest_routes: aliases(|r, n| matches!(r, Route::Ingest(m) if m == n)),
                samples_routes: aliases(|r, n| matches!(r, Route::Samples(m) if m == n)),
                accepted: counter(|c| load(&c.accepted)),
                rejected: counter(|c| load(&c.rejected)),
                written: counter(|c| load(&c.written)),
                dead_lettered: counter(|c| load(&c.dead_lettered)),
                lag: counter(|c| load(&c.lag)),
                ingest_rate,
                write_rate,
                sdk: json::ModelSdk {
                    ingest: ingest_fn(&m.name),
                    samples: m.timeseries.as_ref().map(|_| samples_fn(&m.name)),
                },
            }
        })
        .collect();
    let transforms = transforms
        .iter()
        .map(|t| {
            let m = transform_metrics.get(&t.name);
            let n = |f: fn(&crate::metrics::TransformMetrics) -> u64| m.map(|m| f(m)).unwrap_or(0);
            json::TransformInfo {
                name: t.name.clone(),
                source: t.source.clone(),
                destination: t.destination.clone(),
                language: t.language.clone(),
                workers: t.workers,
                workers_running: n(|m| load(&m.workers)),
                running: t.running,
                error: t.error.clone(),
                records_in: n(|m| load(&m.records_in)),
                out: n(|m| load(&m.records_out)),
                dropped: n(|m| load(&m.dropped)),
                dead_lettered: n(|m| load(&m.dead_lettered)),
                crashes: n(|m| load(&m.crashes)),
                lag: n(|m| m.total_lag()),
            }
        })
        .collect();
    let apis = state
        .apis()
        .iter()
        .map(|a| json::ApiInfo {
            name: a.name.clone(),
            doc: a.doc.clone(),
            params: a.params.clone(),
            sdk: api_fn(&a.name),
        })
        .collect();
    let views = ir.views.iter().map(|v| json::ViewInfo { model: v.model.clone(), select: v.select.clone() }).collect();
    let dlq = igloo_schemas::internal::DLQ;
    Json(json::Overview {
        project: state.console.project.clone(),
        sdk_module: format!("sdk/{}", module_stem(&state.console.project)),
        database: state.database.clone(),
        clickhouse: state.dialect.to_string(),
        bootstrap: state.broker.bootstrap.clone(),
        problems,
        models,
        views,
        apis,
        transforms,
        dead_letters: counts.as_ref().ok().and_then(|c| c.get(dlq)).copied().unwrap_or(0),
    })
}

async fn history(State(state): State<Arc<AppState>>) -> Json<history::Series> {
    Json(state.console.history.series())
}

async fn topic(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<json::TopicRow>>, ApiError> {
    let n = limit(&params)?;
    let topic = ApiError::model(&state.ir(), &name)?.topic.name.clone();
    let broker = state.broker.clone();
    let peeked =
        tokio::task::spawn_blocking(move || crate::peek::latest_messages(&broker, &topic, n, Duration::from_secs(3)))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // The newest `n` rows over all partitions (by message time, then offset), newest first.
    let mut peeked = peeked;
    peeked.sort_by_key(|p| std::cmp::Reverse((p.timestamp_ms, p.offset)));
    let rows = peeked
        .into_iter()
        .take(n)
        .map(|p| json::TopicRow {
            partition: p.partition,
            offset: p.offset,
            timestamp_ms: p.timestamp_ms,
            record: serde_json::from_str::<Value>(&p.row).unwrap_or(Value::String(p.row)),
        })
        .collect();
    Ok(Json(rows))
}

async fn rows(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let n = limit(&params)?;
    let ir = state.ir();
    let m = ApiError::model(&ir, &name)?;
    let columns: Vec<String> = m.fields.iter().map(|f| f.column.clone()).collect();
    let sql = igloo_schemas::sql::latest_rows(&state.database, &m.table, &columns, n);
    Ok(Json(Value::Array(state.clickhouse.rows(&sql).await?)))
}

async fn example(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let ir = state.ir();
    let m = ApiError::model(&ir, &name)?;
    let record = example::example_record(&ir, m, chrono::Utc::now());
    // As text: a JSON number past 2^53 (nanosecond times) must reach the page exactly.
    let text = serde_json::to_string_pretty(&record).expect("JSON values serialize");
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

async fn dead_letters(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let n = limit(&params)?;
    let sql = igloo_schemas::sql::internal::latest_dead_letters(&state.database, n);
    match state.clickhouse.rows::<Value>(&sql).await {
        Ok(rows) => Ok(Json(Value::Array(rows))),
        // No dead letter yet: the table is created with the first one.
        Err(e) if e.is_unknown_table() => Ok(Json(Value::Array(Vec::new()))),
        Err(e) => Err(e.into()),
    }
}
