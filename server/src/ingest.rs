//! `POST /ingest/{Model}` (and the alias routes in `server.routes`): decode, validate against the
//! IR, produce to the model's topic, and answer 2xx only once the broker acknowledged every
//! record. Invalid batches are rejected whole, listing every bad record, unless the client asks
//! for `?partial=true`, which accepts the good records and returns the rejected ones.

use std::borrow::Cow;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::api_error::ApiError;
use crate::app_state::{AppState, Route};
use crate::kafka::producer::{ProduceError, Producer};
use crate::kafka::wire::KeyedRow;
use crate::metrics::ModelMetrics;
use crate::strict_json::{self, Record};
use crate::validate::{not_an_object, validate_object, Context, RecordError};

#[derive(Debug, Deserialize)]
pub struct IngestParams {
    /// Accept the valid records of a batch and return the rejected ones.
    #[serde(default)]
    pub partial: bool,
    /// `false`: answer 202 once the records are valid and queued for the broker, without
    /// waiting for its acknowledgement. Faster, not durable: records queued when the process
    /// dies, or that the broker never acknowledges, are lost (counted by
    /// `igloo_ingest_unacknowledged_total`). Never the default.
    #[serde(default = "yes")]
    pub wait: bool,
}

fn yes() -> bool {
    true
}

/// `POST /ingest/{Model}` through the router: a path the listener's edge does not answer
/// itself ([`crate::http`]), such as a percent-encoded one. The request is taken whole, so its
/// headers are read in place (a `HeaderMap` extractor copies them).
pub async fn ingest_model(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    ingest_with_query(&state, &model, &parts, body).await
}

/// What follows `/ingest/` in a path.
pub fn model_in_path(path: &str) -> Option<&str> {
    path.strip_prefix("/ingest/")
}

/// The model a `POST` to `path` ingests into when the listener's edge answers it without the
/// router ([`crate::http`]): a plain `/ingest/{Model}` (no `/`, no `%` in the name), or an
/// alias route of `server.routes` naming a model (the reference's `POST /save`).
pub fn direct_model<'p>(state: &AppState, path: &'p str) -> Option<Cow<'p, str>> {
    if let Some(model) = model_in_path(path) {
        return (!model.is_empty() && !model.contains(['/', '%'])).then_some(Cow::Borrowed(model));
    }
    match state.routes.read().expect("routes lock").get(path) {
        Some(Route::Ingest(model)) => Some(Cow::Owned(model.clone())),
        _ => None,
    }
}

/// `POST` into `model` as [`crate::http`] hands it over, without the router.
pub async fn ingest_direct(state: &AppState, model: &str, parts: &axum::http::request::Parts, body: Body) -> Response {
    ingest_with_query(state, model, parts, body).await.unwrap_or_else(IntoResponse::into_response)
}

/// Both ways in: the query's parameters (a JSON 400 naming them when they do not parse), then
/// [`ingest`].
async fn ingest_with_query(
    state: &AppState,
    model: &str,
    parts: &axum::http::request::Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(params) =
        Query::<IngestParams>::try_from_uri(&parts.uri).map_err(|e| ApiError::bad("query", e.body_text()))?;
    ingest(state, model, params, &parts.headers, body).await
}

/// Alias routes (`server.routes`) and everything else unmatched.
pub async fn fallback(
    State(state): State<Arc<AppState>>,
    Query(params): Query<IngestParams>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let (method, uri) = (parts.method, parts.uri);
    let route = state.routes.read().expect("routes lock").get(uri.path()).cloned();
    match (method, route) {
        (axum::http::Method::POST, Some(Route::Ingest(model))) if state.roles.ingest => {
            ingest(&state, &model, params, &parts.headers, body).await
        }
        (axum::http::Method::GET, Some(Route::Samples(model))) if state.roles.query => {
            let params = Query::<std::collections::HashMap<String, String>>::try_from_uri(&uri)
                .map_err(|e| ApiError::bad("query", e.body_text()))?;
            crate::samples::samples(&state, &model, &params.0, crate::samples::Shape::Reference).await
        }
        (m, _) => Err(ApiError::NoRoute(format!("{m} {}", uri.path()))),
    }
}

async fn ingest(
    state: &AppState,
    model_name: &str,
    params: IngestParams,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ir = state.ir();
    let Some(model) = ir.model(model_name) else {
        let known = ir.models.iter().filter(|m| m.ingest).map(|m| m.name.clone()).collect();
        return Err(ApiError::UnknownModel { model: model_name.to_string(), known });
    };
    if !model.ingest {
        return Err(ApiError::NotIngestible(model.name.clone()));
    }
    let ndjson = content_kind(headers)?;
    let idempotency = idempotency_key(headers)?;
    let raw = to_bytes(body, state.max_body).await.map_err(|e| body_error(&e, state.max_body))?;
    let bytes = decode(headers, raw, state.max_body)?;
    let records = parse(&bytes, ndjson)?;
    if records.is_empty() {
        return Err(ApiError::Malformed {
            format: if ndjson { "NDJSON" } else { "JSON" },
            message: "the body holds no records".into(),
        });
    }
    let metrics = state.metrics.model(&model.name);

    let (rows, errors) = validate_all(&ir, model, &records);
    let invalid = records.len() - rows.len();
    metrics.rejected.fetch_add(invalid as u64, Ordering::Relaxed);
    if invalid > 0 && (!params.partial || rows.is_empty()) {
        return Err(ApiError::Invalid { invalid, total: records.len(), details: errors });
    }
    let accepted = rows.len();
    let answer = || {
        let mut body = json!({ "accepted": accepted });
        if invalid > 0 {
            body["rejected"] = serde_json::to_value(&errors).unwrap_or_default();
        }
        body
    };
    if !params.wait {
        // Answering before the acknowledgement must not let memory grow without bound when
        // the broker is slower than the clients: past this many unsettled rows, 503.
        if state.producer.unsettled_rows() + accepted > MAX_UNSETTLED_ROWS {
            return Err(ApiError::Unavailable(format!(
                "more than {MAX_UNSETTLED_ROWS} rows await the broker's acknowledgement; retry, or send with the default ?wait=true"
            )));
        }
        let (producer, topic) = (state.producer.clone(), model.topic.name.clone());
        let idempotency = idempotency.map(str::to_string);
        tokio::spawn(async move {
            if let Err(e) = send(&producer, &topic, idempotency.as_deref(), rows, &metrics).await {
                metrics.unacknowledged.fetch_add(accepted as u64, Ordering::Relaxed);
                tracing::warn!(error = %e, rows = accepted, "rows answered 202 (?wait=false) were not acknowledged by the broker: lost");
            }
        });
        let mut body = answer();
        body["acknowledged"] = json!(false);
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    send(&state.producer, &model.topic.name, idempotency, rows, &metrics)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    crash_after_produce_if_asked();
    if invalid == 0 {
        // The usual answer, written without building a JSON value.
        let text = format!("{{\"accepted\":{accepted}}}");
        return Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], text).into_response());
    }
    Ok((StatusCode::OK, Json(answer())).into_response())
}

/// Produces the rows (alone when the request has an idempotency key) and counts them once
/// acknowledged.
async fn send(
    producer: &Producer,
    topic: &str,
    idempotency: Option<&str>,
    rows: Vec<KeyedRow>,
    metrics: &ModelMetrics,
) -> Result<(), ProduceError> {
    let accepted = rows.len() as u64;
    match idempotency {
        Some(key) => producer.send_idempotent(topic, &rows, key).await?,
        None => producer.send_rows(topic, rows).await?,
    }
    metrics.accepted.fetch_add(accepted, Ordering::Relaxed);
    metrics.produced.fetch_add(accepted, Ordering::Relaxed);
    Ok(())
}

/// Validates every record: the rows to produce (key, JSON) and every error. Synchronous, so
/// nothing in it is held across an await.
fn validate_all(
    ir: &igloo_schemas::Ir,
    model: &igloo_schemas::ir::Model,
    records: &[Record],
) -> (Vec<KeyedRow>, Vec<RecordError>) {
    let mut uuid = || uuid::Uuid::new_v4().to_string();
    let mut ctx = Context { now: chrono::Utc::now(), uuid: &mut uuid };
    let mut rows = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let row = match r {
            Record::Object(fields) => validate_object(ir, model, fields, i, &mut ctx),
            Record::Other(v) => Err(vec![not_an_object(v, i)]),
        };
        match row {
            Ok(row) => rows.push(row),
            Err(e) => errors.extend(e),
        }
    }
    (rows, errors)
}

/// Rows answered 202 (`?wait=false`) and not yet acknowledged, at most (with those of waiting
/// requests); beyond, `?wait=false` requests get 503.
const MAX_UNSETTLED_ROWS: usize = 200_000;

/// Longest `Idempotency-Key` accepted (Stripe's bound too).
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The request's `Idempotency-Key`, if it sent one: 1 to 255 printable ASCII characters (a
/// UUID is the usual choice); quotes around it (the IETF draft's structured-field form) are
/// not part of it.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let bad = |reason: &str| ApiError::bad("Idempotency-Key", reason);
    let text = value.to_str().map_err(|_| bad("it must be printable ASCII, such as a UUID"))?.trim();
    let key = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    if key.is_empty() {
        return Err(bad("it is empty; send a unique value per batch, such as a UUID, or no header"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(bad(&format!("it is {} characters long; at most {MAX_IDEMPOTENCY_KEY} are accepted", key.len())));
    }
    if !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(bad("it must be printable ASCII, such as a UUID"));
    }
    Ok(Some(key))
}

/// A fault-injection point for the tests of idempotency: with
/// `IGLOO_FAULT=crash-after-produce`, the process aborts once the broker acknowledged a
/// request's records and before it answers (the window a client's retry must survive).
fn crash_after_produce_if_asked() {
    static FAULT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *FAULT.get_or_init(|| std::env::var("IGLOO_FAULT").is_ok_and(|f| f == "crash-after-produce")) {
        tracing::error!("IGLOO_FAULT=crash-after-produce: aborting after the broker acknowledged, before answering");
        std::process::abort();
    }
}

/// True for NDJSON, false for JSON; 415 for anything else.
fn content_kind(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else { return Ok(false) };
    let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim();
    let is = |name: &str| ct.eq_ignore_ascii_case(name);
    if ct.is_empty() || is("application/json") {
        Ok(false)
    } else if is("application/x-ndjson") || is("application/jsonl") || is("application/ndjson") {
        Ok(true)
    } else {
        Err(ApiError::UnsupportedMediaType { what: "Content-Type", got: ct.to_ascii_lowercase() })
    }
}

/// Undoes `Content-Encoding: gzip`, holding the decompressed size to the same limit.
fn decode(headers: &HeaderMap, raw: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let Some(enc) = headers.get(header::CONTENT_ENCODING) else { return Ok(raw) };
    let enc = enc.to_str().unwrap_or("identity").trim().to_ascii_lowercase();
    match enc.as_str() {
        "identity" | "" => Ok(raw),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::Malformed { format: "gzip", message: e.to_string() })?;
            if out.len() > limit {
                return Err(ApiError::TooLarge { limit });
            }
            Ok(out.into())
        }
        other => Err(ApiError::UnsupportedMediaType { what: "Content-Encoding", got: other.to_string() }),
    }
}

/// A body that could not be read: too large (413), or broken on the wire (400: a bad chunk,
/// a connection cut mid-body).
fn body_error(e: &axum::Error, limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return ApiError::TooLarge { limit };
        }
        source = err.source();
    }
    ApiError::Malformed { format: "HTTP body", message: e.to_string() }
}

fn parse(bytes: &[u8], ndjson: bool) -> Result<Vec<Record<'_>>, ApiError> {
    if ndjson {
        return bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, line)| {
                strict_json::parse_record(line)
                    .map_err(|e| ApiError::Malformed { format: "NDJSON", message: format!("line {}: {e}", i + 1) })
            })
            .collect();
    }
    strict_json::parse_records(bytes).map_err(|e| ApiError::Malformed { format: "JSON", message: e.to_string() })
}
