//! `GET /api/{Model}/samples?series=&start=&end=&points=1000&agg=last|min|max|avg`, and alias
//! routes (`server.routes: {/api: Model.samples}`) answering in the reference shape
//! `{"tagName", "start", "end", "samples"}` with the series parameter named after its field.
//!
//! One ClickHouse query (built by `igloo_schemas::sql::timeseries`) returns a row per period
//! that has events; this module turns those rows into exactly `points` samples. `last` carries
//! the latest value forward across empty periods (and from before `start`); before a series'
//! first event, and for empty periods of min/max/avg, the values are `null`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use igloo_schemas::ir::{BaseType, Model, ScalarType};
use igloo_schemas::sql::timeseries::{SampleAgg, SamplesPlan, SamplesQuery, SeriesValue, TimeSeriesTables};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::api_error::ApiError;
use crate::app_state::AppState;

/// Which response shape a route answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `{"series", "start", "end", "points", "agg", "samples"}`; the parameter is `series`.
    Native,
    /// `{"<field>Name", "start", "end", "samples"}`; the parameter is the series field's name.
    Reference,
}

pub async fn samples_model(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    samples(&state, &model, &params, Shape::Native).await
}

pub async fn samples(
    state: &AppState,
    model_name: &str,
    params: &HashMap<String, String>,
    shape: Shape,
) -> Result<Response, ApiError> {
    let ir = state.ir();
    let model = ir.model(model_name).ok_or_else(|| ApiError::UnknownModel {
        model: model_name.to_string(),
        known: ir.models.iter().filter(|m| m.timeseries.is_some()).map(|m| m.name.clone()).collect(),
    })?;
    let ts = model.timeseries.as_ref().ok_or_else(|| ApiError::NotTimeSeries(model.name.clone()))?;
    let tables = TimeSeriesTables::for_model(model, &ir, &state.database).expect("declared a time series");
    let series_param = match shape {
        Shape::Native => "series",
        Shape::Reference => ts.series.as_str(),
    };
    let request = SampleRequest::parse(params, series_param, model)?;
    let mut q = SamplesQuery {
        tables: &tables,
        series: request.series.clone(),
        start: request.start,
        end: request.end,
        points: request.points,
        agg: request.agg,
        raw_lookback: None,
    };
    q.check().map_err(|e| ApiError::bad(e.parameter(), e.to_string()))?;
    // How many events the window holds decides how to read it, and the rate around `start`
    // how far back the raw plan looks (from the series' hourly counts, kept a few seconds);
    // no events may mean no such series.
    let cache_key = format!("{}\0{}", model.name, request.series_text);
    let hourly = match state.hourly_events.get(&cache_key).filter(|h| q.estimate_from(&h[..]) > 0) {
        Some(kept) => kept,
        None => {
            let rows: Vec<Map<String, Value>> = state.clickhouse.rows(&q.hourly_events()).await?;
            let read: Vec<(i64, u64)> = rows
                .iter()
                .filter_map(|r| Some((integer(r.get("bucket")?)?, integer(r.get("events")?)? as u64)))
                .collect();
            state.hourly_events.put(cache_key, read)
        }
    };
    let events = q.estimate_from(&hourly);
    q.raw_lookback = q.raw_lookback_from(&hourly);
    if events == 0 {
        let exists = igloo_schemas::sql::timeseries::series_exists(&tables, &request.series);
        if state.clickhouse.execute(&exists).await?.trim().is_empty() {
            return Err(ApiError::UnknownSeries(request.series_text));
        }
    }
    let plan = request.plan.unwrap_or_else(|| q.cheapest_plan(events));
    let sql = q.render(state.dialect, plan);
    tracing::debug!(sql = %sql, events, ?plan, "samples query");
    let text = state.clickhouse.execute(&sql).await?;
    // The result column of each value field, in the order the schema lists them.
    let columns: Vec<String> = (0..ts.values.len()).map(|j| format!("_v{j}")).collect();
    let rows = period_rows(&text, &columns)?;
    // The raw plan reads only the window: `last` with an empty first period carries the
    // latest earlier event.
    let period0 = rows.first().map(|r| r.period) == Some(0);
    let before_text = match q.lookback() {
        Some(lookback) if plan == SamplesPlan::Raw && !period0 => {
            Some(state.clickhouse.execute(&lookback.render(state.dialect, SamplesPlan::Rollups)).await?)
        }
        _ => None,
    };
    let before = match &before_text {
        Some(t) => period_rows(t, &columns)?.pop(),
        None => None,
    };
    // The answer is written directly: ClickHouse's values go through as the text it sent,
    // never parsed into numbers and formatted again (BENCHMARKS.md, issue 20).
    let mut out = String::with_capacity(64 + q.points as usize * (16 + 24 * ts.values.len()));
    let string = |v: &str| serde_json::to_string(v).expect("a string");
    match shape {
        Shape::Native => {
            out += &format!(
                r#"{{"series":{},"start":{},"end":{},"points":{},"agg":"{}","samples":"#,
                string(&request.series_text),
                request.start,
                request.end,
                request.points,
                request.agg.name()
            );
        }
        Shape::Reference => {
            out += &format!(
                r#"{{{}:{},"start":{},"end":{},"samples":"#,
                string(&format!("{}Name", ts.series)),
                string(&request.series_text),
                request.start,
                request.end
            );
        }
    }
    let names: Vec<String> = ts.values.iter().map(|v| string(v)).collect();
    write_samples(&mut out, &q, &names, &rows, before.as_ref());
    out.push('}');
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// One row of a samples query: its period and its value columns `_v0…`, as ClickHouse wrote
/// them.
struct PeriodRow<'t> {
    period: i64,
    values: Vec<&'t RawValue>,
}

/// The rows of a samples query's JSONEachRow output, the value `columns` borrowed from `text`.
fn period_rows<'t>(text: &'t str, columns: &[String]) -> Result<Vec<PeriodRow<'t>>, ApiError> {
    let unexpected = |line: &str| ApiError::QueryFailed(format!("unexpected row {line}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: HashMap<&str, &RawValue> = serde_json::from_str(line).map_err(|_| unexpected(line))?;
            // ClickHouse 18.16 quotes 64-bit integers.
            let period = fields
                .get("_p")
                .and_then(|p| p.get().trim_matches('"').parse().ok())
                .ok_or_else(|| unexpected(line))?;
            let values = columns
                .iter()
                .map(|c| fields.get(c.as_str()).copied().ok_or_else(|| unexpected(line)))
                .collect::<Result<_, _>>()?;
            Ok(PeriodRow { period, values })
        })
        .collect()
}

struct SampleRequest {
    series: SeriesValue,
    series_text: String,
    start: i64,
    end: i64,
    points: u32,
    agg: SampleAgg,
    /// `plan=raw|rollups` forces a read plan (for comparing them); by default the window's
    /// event count chooses.
    plan: Option<SamplesPlan>,
}

impl SampleRequest {
    fn parse(params: &HashMap<String, String>, series_param: &str, model: &Model) -> Result<SampleRequest, ApiError> {
        let ts = model.timeseries.as_ref().expect("a time series");
        let required =
            |name: &str| params.get(name).filter(|v| !v.is_empty()).ok_or_else(|| ApiError::bad(name, "is required"));
        let integer = |name: &str| -> Result<i64, ApiError> {
            required(name)?
                .parse::<i64>()
                .map_err(|_| ApiError::bad(name, format!("must be an integer time in {}", ts.unit.name())))
        };
        let series_text = required(series_param)?.clone();
        let integer_series = model
            .field(&ts.series)
            .is_some_and(|f| matches!(f.ty.base, BaseType::Scalar(ScalarType::Int | ScalarType::BigInt)));
        let series = if integer_series {
            SeriesValue::Integer(series_text.parse().map_err(|_| ApiError::bad(series_param, "must be an integer"))?)
        } else {
            SeriesValue::Text(series_text.clone())
        };
        let (start, end) = (integer("start")?, integer("end")?);
        if start >= end {
            return Err(ApiError::bad("end", "must be after start"));
        }
        let points = match params.get("points") {
            None => 1000,
            Some(p) => p.parse::<u32>().map_err(|_| ApiError::bad("points", "must be a whole number"))?,
        };
        let agg = match params.get("agg").map(String::as_str) {
            None => SampleAgg::Last,
            Some(a) => SampleAgg::ALL
                .into_iter()
                .find(|x| x.name() == a)
                .ok_or_else(|| ApiError::bad("agg", format!("`{a}` is not one of last, min, max, avg")))?,
        };
        let plan = match params.get("plan").map(String::as_str) {
            None | Some("auto") => None,
            Some("raw") => Some(SamplesPlan::Raw),
            Some("rollups") => Some(SamplesPlan::Rollups),
            Some(p) => return Err(ApiError::bad("plan", format!("`{p}` is not one of auto, raw, rollups"))),
        };
        Ok(SampleRequest { series, series_text, start, end, points, agg, plan })
    }
}

/// Exactly `points` samples from the per-period rows, as a JSON array appended to `out`:
/// `{"time": b(i), "<value field>": …}` each, `names` the value fields' names as JSON strings.
fn write_samples(out: &mut String, q: &SamplesQuery, names: &[String], rows: &[PeriodRow], before: Option<&PeriodRow>) {
    use std::fmt::Write;
    let by_period: HashMap<i64, &PeriodRow> = rows.iter().map(|r| (r.period, r)).collect();
    let mut carried = before;
    out.push('[');
    for i in 0..q.points {
        let row = by_period.get(&i64::from(i)).copied();
        let row = match q.agg {
            SampleAgg::Last => {
                carried = row.or(carried);
                carried
            }
            _ => row,
        };
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, r#"{{"time":{}"#, q.period_end(i));
        for (j, name) in names.iter().enumerate() {
            out.push(',');
            out.push_str(name);
            out.push(':');
            out.push_str(row.map_or("null", |r| r.values[j].get()));
        }
        out.push('}');
    }
    out.push(']');
}

/// Each series' events per hour bucket, as read for the last `/api` request on it, kept for
/// [`HourlyEvents::TTL`]: they only choose a read plan (never the answer), so a few seconds'
/// staleness costs nothing, and a request saves a ClickHouse query (about 2–4 ms of its CPU
/// on 18.16; BENCHMARKS.md, issue 20). A count of 0 is never trusted: it is read again.
#[derive(Default)]
pub struct HourlyEvents {
    entries: std::sync::Mutex<HashMap<String, (std::time::Instant, Hourly)>>,
}

/// `(hour bucket, events)` of one series.
type Hourly = Arc<Vec<(i64, u64)>>;

impl HourlyEvents {
    const TTL: std::time::Duration = std::time::Duration::from_secs(30);
    /// Series kept at most; past it, expired entries are dropped, then all.
    const MAX_SERIES: usize = 20_000;

    fn get(&self, key: &str) -> Option<Hourly> {
        let entries = self.entries.lock().expect("hourly events lock");
        entries.get(key).filter(|(at, _)| at.elapsed() < Self::TTL).map(|(_, v)| v.clone())
    }

    fn put(&self, key: String, hourly: Vec<(i64, u64)>) -> Hourly {
        let mut entries = self.entries.lock().expect("hourly events lock");
        if entries.len() >= Self::MAX_SERIES {
            entries.retain(|_, (at, _)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::MAX_SERIES {
                entries.clear();
            }
        }
        let hourly = Arc::new(hourly);
        entries.insert(key, (std::time::Instant::now(), hourly.clone()));
        hourly
    }
}

/// ClickHouse 18.16 quotes 64-bit integers in JSON.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
