//! `GET /subscribe/{Model}?<key field>=<value>…`: new records of a model as server-sent events
//! (`event: record`, `data: <the row as JSON>`, `id: <cursor>`), read from the model's topic
//! from the moment of the request. Each subscriber has its own consumer that never commits; it
//! is dropped when the client goes away. Filters compare key fields with their JSON text.
//!
//! **Resuming.** Every event's `id` is a [`Cursor`]: for each partition, the next message and
//! how many rows of it were already sent. A client that reconnects with `Last-Event-ID` (as
//! browsers' `EventSource` and both SDKs do) continues exactly after the last event it
//! received: nothing lost, nothing repeated, as long as the topic still holds those messages.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Offset;
use serde_json::Value;

use crate::api_error::ApiError;
use crate::app_state::AppState;
use crate::kafka::consumer::{self, Received};

/// Per partition: the offset of the next message, and how many of its rows were sent already.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor(BTreeMap<i32, (i64, usize)>);

impl Cursor {
    /// `0:15,1:7+2` — partition:offset, `+rows` when part of that message was sent.
    pub fn parse(text: &str) -> Option<Cursor> {
        let mut map = BTreeMap::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (p, rest) = part.split_once(':')?;
            let (offset, skip) = match rest.split_once('+') {
                Some((o, s)) => (o.parse().ok()?, s.parse().ok()?),
                None => (rest.parse().ok()?, 0),
            };
            if offset < 0 {
                return None;
            }
            map.insert(p.parse().ok()?, (offset, skip));
        }
        Some(Cursor(map))
    }

    pub fn render(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(p, (o, skip))| if *skip == 0 { format!("{p}:{o}") } else { format!("{p}:{o}+{skip}") })
            .collect();
        parts.join(",")
    }

    /// Row `index` of the `rows`-row message at `offset` of `partition` was handled.
    fn advance(&mut self, partition: i32, offset: i64, index: usize, rows: usize) {
        let next = if index + 1 >= rows { (offset + 1, 0) } else { (offset, index + 1) };
        self.0.insert(partition, next);
    }

    /// Whether row `index` of the message at `offset` was sent before the cursor was taken.
    fn already_sent(&self, partition: i32, offset: i64, index: usize) -> bool {
        match self.0.get(&partition) {
            Some((o, skip)) => offset < *o || (offset == *o && index < *skip),
            None => false,
        }
    }
}

pub async fn subscribe(
    State(state): State<Arc<AppState>>,
    Path(model_name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ir = state.ir();
    let model = ApiError::model(&ir, &model_name)?;
    for key in params.keys() {
        if !model.primary_key.contains(key) {
            let keys = if model.primary_key.is_empty() { "none".into() } else { model.primary_key.join(", ") };
            return Err(ApiError::bad(key, format!("filters apply to key fields only; `{}` has: {keys}", model.name)));
        }
    }
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(Cursor::parse).ok_or_else(|| {
            ApiError::bad("Last-Event-ID", "expected the id of an event of this stream, e.g. `0:15,1:7+2`")
        })?),
    };
    let group = format!("igloo-subscribe.{}", uuid::Uuid::new_v4());
    let consumer: StreamConsumer =
        state.broker.consumer(&group, 50).map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // Without a cursor, start at each partition's end as of now, resolved before the response
    // starts: a record acknowledged after the client sees the stream open is always delivered
    // (`Offset::End` would be resolved later, at the first fetch, and could skip it).
    let topic = model.topic.name.clone();
    let (consumer, cursor) = tokio::task::spawn_blocking(move || start_at(consumer, &topic, resume))
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
    let start = cursor.clone();
    let state = (Arc::new(consumer), VecDeque::<Event>::new(), cursor, start, filters);
    let events =
        futures_util::stream::unfold(state, |(consumer, mut pending, mut cursor, start, filters)| async move {
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((Ok(event), (consumer, pending, cursor, start, filters)));
                }
                let Some(msg) = consumer::next_message(&consumer).await else { continue };
                let (wanted, integers) = filters.as_ref();
                pending.extend(events_of(&msg, &mut cursor, &start, wanted, integers));
            }
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Assigns the topic's partitions at the cursor (partitions it does not name: from their
/// start) or, without one, at their ends now; returns the consumer and the starting cursor.
fn start_at(
    consumer: StreamConsumer,
    topic: &str,
    resume: Option<Cursor>,
) -> Result<(StreamConsumer, Cursor), consumer::ConsumerError> {
    let timeout = std::time::Duration::from_secs(5);
    let mut cursor = Cursor::default();
    let mut at = Vec::new();
    for p in consumer::partitions(consumer.client(), topic, timeout)? {
        let offset = match resume.as_ref().and_then(|c| c.0.get(&p)) {
            Some((offset, skip)) => {
                cursor.0.insert(p, (*offset, *skip));
                Offset::Offset(*offset)
            }
            None if resume.is_some() => Offset::Beginning,
            None => {
                let (_, high) = consumer
                    .fetch_watermarks(topic, p, timeout)
                    .map_err(|source| consumer::ConsumerError::Kafka { topic: topic.into(), source })?;
                cursor.0.insert(p, (high, 0));
                Offset::Offset(high)
            }
        };
        at.push((p, offset));
    }
    consumer::assign(&consumer, topic, &at)?;
    Ok((consumer, cursor))
}

/// The events of one message: its rows that pass the filters and were not sent before the
/// stream (re)started, each with the cursor after it.
fn events_of(
    msg: &Received,
    cursor: &mut Cursor,
    start: &Cursor,
    filters: &[(String, String)],
    integers: &[String],
) -> Vec<Event> {
    let mut out = Vec::new();
    for (i, row) in msg.rows.iter().enumerate() {
        if start.already_sent(msg.partition, msg.offset, i) {
            continue;
        }
        cursor.advance(msg.partition, msg.offset, i, msg.rows.len());
        if let Some(data) = client_row(row, filters, integers) {
            out.push(Event::default().event("record").id(cursor.render()).data(data));
        }
    }
    out
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
    use super::{client_row, Cursor};

    #[test]
    fn cursors_round_trip_and_skip_what_was_sent() {
        let c = Cursor::parse("0:15,1:7+2").unwrap();
        assert_eq!(c.render(), "0:15,1:7+2");
        assert!(c.already_sent(0, 14, 0) && !c.already_sent(0, 15, 0));
        assert!(c.already_sent(1, 7, 1) && !c.already_sent(1, 7, 2));
        assert!(!c.already_sent(2, 0, 0));
        let mut c = c;
        c.advance(1, 7, 2, 3);
        assert_eq!(c.render(), "0:15,1:8");
        c.advance(0, 15, 0, 2);
        assert_eq!(c.render(), "0:15+1,1:8");
        assert!(Cursor::parse("x").is_none() && Cursor::parse("0:-1").is_none() && Cursor::parse("0:1+a").is_none());
    }

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
