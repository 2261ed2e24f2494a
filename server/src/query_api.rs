//! Reading data back over HTTP, streamed from ClickHouse:
//! - `GET /consumption/{name}?…&format=json|ndjson|csv`: the project's `apis/<name>.sql`, its
//!   parameters typed and rendered by `igloo_schemas::sql::consumption`;
//! - `GET /export/{Model}?start=&end=&format=ndjson|csv|json`: a model's raw rows, filtered on
//!   its time-series time field when one is declared.
//!
//! Rows are never buffered here: ClickHouse's output is forwarded as it arrives (JSON arrays
//! are made from JSONEachRow on the fly).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use igloo_schemas::consumption::ParamType;
use igloo_schemas::ir::{BaseType, ScalarType};
use igloo_schemas::sql::consumption::{render_api, typed_literal, ExportQuery, OutputFormat};

use crate::api_error::ApiError;
use crate::app_state::AppState;

fn format_param(params: &HashMap<String, String>) -> Result<OutputFormat, ApiError> {
    match params.get("format") {
        None => Ok(OutputFormat::Json),
        Some(f) => OutputFormat::parse(f)
            .ok_or_else(|| ApiError::bad("format", format!("`{f}` is not one of json, ndjson, csv"))),
    }
}

pub async fn consumption(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let api = state.api(&name).ok_or_else(|| ApiError::UnknownApi { name: name.clone(), known: state.api_names() })?;
    let format = format_param(&params)?;
    let sql = render_api(&api, &params, format).map_err(|e| ApiError::bad(e.parameter(), e.to_string()))?;
    stream(&state, sql, format).await
}

pub async fn export(
    State(state): State<Arc<AppState>>,
    Path(model_name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let ir = state.ir();
    let model = ApiError::model(&ir, &model_name)?;
    let format = format_param(&params)?;
    let bounds = [params.get("start"), params.get("end")];
    let range = match (&model.timeseries, bounds) {
        (_, [None, None]) => None,
        (None, _) => {
            return Err(ApiError::bad(
                "start",
                format!("`{}` declares no time field (`@@timeseries`); export it without start/end", model.name),
            ))
        }
        (Some(ts), [start, end]) => {
            let field = model.field(&ts.time).expect("validated");
            let ty = match field.ty.base {
                BaseType::Scalar(ScalarType::DateTime) => ParamType::DateTime,
                _ => ParamType::BigInt,
            };
            let literal = |name: &str, v: Option<&String>| {
                v.map(|v| typed_literal(ty, v).map_err(|reason| ApiError::bad(name, reason.reason))).transpose()
            };
            Some((field.column.as_str(), literal("start", start)?, literal("end", end)?))
        }
    };
    for name in params.keys() {
        if !["start", "end", "format"].contains(&name.as_str()) {
            return Err(ApiError::bad(name, "unknown parameter; export takes start, end and format"));
        }
    }
    let sql = ExportQuery {
        database: &state.database,
        table: &model.table,
        columns: model.fields.iter().map(|f| f.column.as_str()).collect(),
        range,
        format,
    }
    .render();
    stream(&state, sql, format).await
}

/// Forwards ClickHouse's output; for JSON, wraps JSONEachRow lines into one array.
async fn stream(state: &AppState, sql: String, format: OutputFormat) -> Result<Response, ApiError> {
    let rows = state.clickhouse.stream(&state.database, sql).await?;
    let body = match format {
        OutputFormat::Json => {
            let mut first = true;
            let mut pending_newline = false;
            let open = futures_util::stream::once(async { Ok::<Bytes, reqwest::Error>(Bytes::from_static(b"[")) });
            let close = futures_util::stream::once(async { Ok(Bytes::from_static(b"]")) });
            let inner = rows.map(move |chunk| {
                chunk.map(|c| {
                    let mut out = Vec::with_capacity(c.len() + 8);
                    for &b in c.iter() {
                        if b == b'\n' {
                            pending_newline = true;
                            continue;
                        }
                        if pending_newline && !first {
                            out.push(b',');
                        }
                        pending_newline = false;
                        first = false;
                        out.push(b);
                    }
                    Bytes::from(out)
                })
            });
            Body::from_stream(open.chain(inner).chain(close))
        }
        _ => Body::from_stream(rows),
    };
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}
