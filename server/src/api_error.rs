//! The one error type of every HTTP handler: each variant knows its status code, and the body
//! is always `{"error": <Display>, "details": [...]}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use igloo_schemas::ir::Model;
use igloo_schemas::Ir;
use serde_json::json;

use crate::validate::RecordError;

/// Every way a request can fail, with its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown model `{model}`; models that accept ingest: {}", known.join(", "))]
    UnknownModel { model: String, known: Vec<String> },
    #[error("model `{0}` does not accept ingest (it is declared with @@ingest(false))")]
    NotIngestible(String),
    #[error("no route {0}")]
    NoRoute(String),
    #[error("unsupported {what} `{got}`; send application/json (an object or an array) or application/x-ndjson, optionally with Content-Encoding: gzip")]
    UnsupportedMediaType { what: &'static str, got: String },
    #[error("the request body is larger than {limit} bytes (server.max_body_bytes); send smaller batches")]
    TooLarge { limit: usize },
    #[error("the body is not valid {format}: {message}")]
    Malformed { format: &'static str, message: String },
    #[error(
        "{invalid} of {total} records are invalid; nothing was accepted (add ?partial=true to accept the valid ones)"
    )]
    Invalid { invalid: usize, total: usize, details: Vec<RecordError> },
    #[error("the broker is unavailable, nothing was acknowledged; retry: {0}")]
    Unavailable(String),
    #[error("bad parameter `{name}`: {reason}")]
    BadParameter { name: String, reason: String },
    #[error("model `{0}` is not a time series; declare `@@timeseries(time: …, series: …)` to get samples")]
    NotTimeSeries(String),
    #[error("unknown series `{0}`: no events of it have been written")]
    UnknownSeries(String),
    #[error("unknown API `{name}`; the project's apis/ folder defines: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownApi { name: String, known: Vec<String> },
    #[error("ClickHouse is unavailable; retry: {0}")]
    QueryUnavailable(String),
    #[error("the query failed: {0}")]
    QueryFailed(String),
    /// A missing or invalid credential (`had_credential`: one was sent).
    #[error("{message}")]
    Unauthenticated { message: String, had_credential: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    #[error("the API keys cannot be read yet (ClickHouse unreachable); retry")]
    KeysUnavailable,
    #[error("the URI is longer than {0} bytes; send large inputs in the body")]
    UriTooLong(usize),
    #[error("the server is at its limit of {0} requests in progress (server.max_concurrent_requests); retry")]
    Overloaded(usize),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::UnknownModel { .. }
            | ApiError::NotIngestible(_)
            | ApiError::NoRoute(_)
            | ApiError::UnknownApi { .. } => StatusCode::NOT_FOUND,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Malformed { .. }
            | ApiError::Invalid { .. }
            | ApiError::BadParameter { .. }
            | ApiError::NotTimeSeries(_)
            | ApiError::UnknownSeries(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_)
            | ApiError::QueryUnavailable(_)
            | ApiError::KeysUnavailable
            | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::QueryFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
        };
        let details = match &self {
            ApiError::Invalid { details, .. } => json!(details),
            _ => json!([]),
        };
        let mut resp = (status, Json(json!({ "error": self.to_string(), "details": details }))).into_response();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after, .. } => Some((*retry_after).max(1)),
            // The keys are re-read every 2 s.
            ApiError::KeysUnavailable => Some(2),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let ApiError::Unauthenticated { had_credential, .. } = &self {
            let challenge = if *had_credential {
                r#"Bearer realm="igloo", error="invalid_token""#
            } else {
                r#"Bearer realm="igloo""#
            };
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        resp
    }
}

impl ApiError {
    pub fn bad(name: &str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParameter { name: name.to_string(), reason: reason.into() }
    }

    /// The model named in a request's path, or 404 listing every model.
    pub fn model<'a>(ir: &'a Ir, name: &str) -> Result<&'a Model, ApiError> {
        ir.model(name).ok_or_else(|| ApiError::UnknownModel {
            model: name.to_string(),
            known: ir.models.iter().map(|m| m.name.clone()).collect(),
        })
    }
}

impl From<crate::clickhouse::ClickHouseError> for ApiError {
    fn from(e: crate::clickhouse::ClickHouseError) -> ApiError {
        match e {
            // An outage (a server or, on a cluster, a shard away) is a 503 to retry; a table or
            // database that is not there is not one for a query.
            e if e.is_transient() && !matches!(e.code(), Some(60 | 81)) => ApiError::QueryUnavailable(e.to_string()),
            e => ApiError::QueryFailed(e.to_string()),
        }
    }
}
