//! `GET /subscribe/{Model}?<key field>=<value>…`: new records of a model as server-sent events
//! (`event: record`, `data: <the row as JSON>`), read from the model's topic from the moment
//! of the request. Each subscriber has its own consumer that never commits; it is dropped when
//! the client goes away. Filters compare key fields with their JSON text.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

use crate::api_error::ApiError;
use crate::runtime::AppState;

pub async fn subscribe(
    State(state): State<Arc<AppState>>,
    Path(model_name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ir = state.ir();
    let model = ApiError::model(&ir, &model_name)?;
    for key in params.keys() {
        if !model.primary_key.contains(key) {
            let keys = if model.primary_key.is_empty() { "none".into() } else { model.primary_key.join(", ") };
            return Err(ApiError::bad(key, format!("filters apply to key fields only; `{}` has: {keys}", model.name)));
        }
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &state.bootstrap)
        .set("group.id", format!("igloo-subscribe.{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "50")
        .set("log_level", "3")
        .create()
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // Start at each partition's end as of now, resolved before the response starts: a record
    // acknowledged after the client sees the stream open is always delivered (`Offset::End`
    // would be resolved later, at the first fetch, and could skip it).
    let (topic, partitions) = (model.topic.name.clone(), model.topic.partitions as i32);
    let consumer = tokio::task::spawn_blocking(move || -> Result<StreamConsumer, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let (_, high) = consumer.fetch_watermarks(&topic, p, std::time::Duration::from_secs(5))?;
            tpl.add_partition_offset(&topic, p, Offset::Offset(high))?;
        }
        consumer.assign(&tpl)?;
        Ok(consumer)
    })
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?
    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let filters: Vec<(String, String)> = params.into_iter().collect();
    // Topics carry 64-bit integers as strings (exact for ClickHouse); clients get numbers, as
    // from /export.
    let integers: Vec<String> = model
        .fields
        .iter()
        .filter(|f| {
            f.ty.arity != igloo_schemas::ir::Arity::List
                && matches!(f.ty.base, igloo_schemas::ir::BaseType::Scalar(igloo_schemas::ir::ScalarType::BigInt))
        })
        .map(|f| f.name.clone())
        .collect();
    let filters = Arc::new((filters, integers));
    let state = (Arc::new(consumer), VecDeque::<String>::new(), filters);
    let events = futures_util::stream::unfold(state, |(consumer, mut pending, filters)| async move {
        loop {
            if let Some(row) = pending.pop_front() {
                return Some((Ok(Event::default().event("record").data(row)), (consumer, pending, filters)));
            }
            let msg = match consumer.recv().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "subscription read failed");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    continue;
                }
            };
            let payload = msg.payload().map(String::from_utf8_lossy).unwrap_or_default();
            let (wanted, integers) = filters.as_ref();
            pending.extend(payload.lines().filter_map(|row| client_row(row, wanted, integers)));
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The row as the client sees it, if its key fields equal the filters (compared as text:
/// `"a"` and `5` match `a` and `5`).
fn client_row(row: &str, filters: &[(String, String)], integers: &[String]) -> Option<String> {
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(row) else { return None };
    let matches = filters.iter().all(|(k, want)| match obj.get(k) {
        Some(Value::String(s)) => s == want,
        Some(v) => serde_json::from_str::<Value>(want).ok().as_ref() == Some(v),
        None => false,
    });
    if !matches {
        return None;
    }
    for name in integers {
        if let Some(Value::String(s)) = obj.get(name) {
            if let Ok(n) = s.parse::<i64>() {
                obj.insert(name.clone(), Value::from(n));
            }
        }
    }
    Some(Value::Object(obj).to_string())
}

#[cfg(test)]
mod tests {
    use super::client_row;

    #[test]
    fn filters_compare_key_fields_as_text_and_integers_become_numbers() {
        let row = r#"{"tag":"a","time":"5","values":[1]}"#;
        let ints = ["time".to_string()];
        assert_eq!(client_row(row, &[], &ints).unwrap(), r#"{"tag":"a","time":5,"values":[1]}"#);
        assert!(client_row(row, &[("tag".into(), "a".into()), ("time".into(), "5".into())], &ints).is_some());
        assert!(client_row(row, &[("tag".into(), "b".into())], &ints).is_none());
        assert!(client_row(row, &[("missing".into(), "a".into())], &ints).is_none());
    }
}
