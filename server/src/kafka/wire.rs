//! The topic wire format: how a model's rows travel on its topic. This is a public interface
//! (third-party producers and consumers read and write these topics), so it is owned here, once:
//! every producer encodes with [`Framing::encode`], every reader decodes with [`rows_of`].
//!
//! - **Message value.** `record` framing: one JSON object per message (the Kafka convention,
//!   what Kafka Connect, ClickHouse's Kafka engine or a plain consumer expect). `batch` framing:
//!   NDJSON, several rows of one partition per message — for brokers whose cost is per message
//!   (the local tansu). Readers accept both on any topic, since a topic holds both after a
//!   configuration change: a value on one line is one row; a value over several lines is one
//!   row if it is one JSON object (a pretty-printed record), else one row per line. No header
//!   marks a batch: tansu stores headers at a cost per message that cut single-event ingest to
//!   a third (measured, BENCHMARKS.md).
//! - **Message key.** The values of the model's key fields (`@@topic(key: [...])`; by default
//!   the series of a time series, else the id): one field is its value as UTF-8 text, several a
//!   JSON array of the values.
//! - **Partition.** murmur2 of the key, as Java clients (and librdkafka's `murmur2_random`)
//!   compute it, so other producers writing the same keys land in the same partitions.
//! - **Idempotency header.** A request sent with `Idempotency-Key: K` produces its messages
//!   with the header `igloo-idempotency: <i>:K`, `i` being the message's place among the
//!   request's messages (0, 1, …). The table writer writes a message whose header it already
//!   wrote within its window only once. The same body always encodes to the same messages in
//!   the same partitions (rows without a key go to the partition of K, not by turns), so a
//!   retry's message `i` is the first attempt's message `i`. Messages without the header
//!   (every other request, third-party producers) are never deduplicated.

use rdkafka::message::Message;
use serde_json::Value;

/// Largest value of one `batch` message.
const MAX_BATCH_BYTES: usize = 512 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One JSON object per message.
    Record,
    /// NDJSON, several rows of one partition per message.
    Batch,
}

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Framing::Record => "record",
            Framing::Batch => "batch",
        })
    }
}

/// A validated row on its way to a topic: its message key and its JSON object text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedRow {
    pub key: String,
    pub row: String,
}

/// One message to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutMessage {
    pub partition: i32,
    pub key: String,
    pub value: String,
}

/// The header that carries a request's idempotency key (see the module's documentation).
pub const IDEMPOTENCY_HEADER: &str = "igloo-idempotency";

/// The `igloo-idempotency` value of a request's `i`-th message.
pub fn idempotency_value(i: usize, key: &str) -> String {
    format!("{i}:{key}")
}

/// The `igloo-idempotency` header of a consumed message, if it has one.
pub fn idempotency_of<M: Message>(m: &M) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == IDEMPOTENCY_HEADER)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

impl Framing {
    /// The messages carrying `rows` on a topic of `partitions` partitions. Rows of one key keep
    /// their order. Rows without a key go to the partition of `unkeyed` when it is given (an
    /// idempotent request's key: the same body then encodes the same way every time), else
    /// by turns.
    pub fn encode(self, rows: &[KeyedRow], partitions: i32, unkeyed: Option<&str>) -> Vec<OutMessage> {
        let partition = |key: &str| match (key.is_empty(), unkeyed) {
            (true, Some(seed)) => partition_of(seed.as_bytes(), partitions),
            _ => partition_for(key, partitions),
        };
        match self {
            Framing::Record => rows
                .iter()
                .map(|r| OutMessage { partition: partition(&r.key), key: r.key.clone(), value: r.row.clone() })
                .collect(),
            Framing::Batch => encode_batches(rows, partition),
        }
    }
}

fn encode_batches(rows: &[KeyedRow], partition: impl Fn(&str) -> i32) -> Vec<OutMessage> {
    let mut groups: std::collections::BTreeMap<i32, Vec<&KeyedRow>> = std::collections::BTreeMap::new();
    for row in rows {
        groups.entry(partition(&row.key)).or_default().push(row);
    }
    let mut out = Vec::new();
    for (partition, rows) in groups {
        // Sized once: grown by doubling, a batch's text would be copied about twice over.
        let bytes: usize = rows.iter().map(|r| r.row.len() + 1).sum();
        let mut value = String::with_capacity(bytes.min(MAX_BATCH_BYTES + 1));
        let mut key = rows[0].key.clone();
        for r in rows {
            if !value.is_empty() && value.len() + r.row.len() > MAX_BATCH_BYTES {
                let key = std::mem::replace(&mut key, r.key.clone());
                let full = std::mem::replace(&mut value, String::with_capacity(bytes.min(MAX_BATCH_BYTES + 1)));
                out.push(OutMessage { partition, key, value: full });
            }
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(&r.row);
        }
        out.push(OutMessage { partition, key, value });
    }
    out
}

/// The message key of a row: one key value as text (a string as itself, anything else as its
/// JSON), several as a JSON array; empty for a model without key fields (such rows are
/// produced without a key and spread over the partitions).
pub fn message_key(values: &[&Value]) -> String {
    match values {
        [] => String::new(),
        [Value::String(s)] => s.clone(),
        [v] => v.to_string(),
        many => serde_json::to_string(many).expect("JSON values serialize"),
    }
}

/// A keyed row's partition by [`partition_of`]; an unkeyed one's by turns.
fn partition_for(key: &str, partitions: i32) -> i32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    if key.is_empty() {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return (n % partitions.max(1) as u32) as i32;
    }
    partition_of(key.as_bytes(), partitions)
}

/// The partition of a key: `(murmur2(key) & 0x7fffffff) % partitions`, Kafka's default
/// partitioner for keyed records.
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as u32 % partitions.max(1) as u32) as i32
}

/// Kafka's murmur2 (seed 0x9747b28c), as `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// A message's rows: its text, held once, and where each row lies in it (a row is not copied
/// out on its own: BENCHMARKS.md, issue 20).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Rows {
    /// Rows of texts, each a JSON object without a newline.
    pub fn of<S: AsRef<str>>(rows: &[S]) -> Rows {
        let mut out = Rows::default();
        for r in rows {
            out.push(r.as_ref());
        }
        out
    }

    fn push(&mut self, row: &str) {
        let start = self.text.len();
        self.text.push_str(row);
        self.spans.push((start, self.text.len()));
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The rows' text, in bytes.
    pub fn bytes(&self) -> usize {
        self.spans.iter().map(|(a, b)| b - a).sum()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        self.spans.iter().map(|&(a, b)| &self.text[a..b])
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

/// The rows of a message value, whatever its framing: JSON object texts.
pub fn decode(value: &[u8]) -> Rows {
    let text = match std::str::from_utf8(value) {
        Ok(text) => text.to_string(),
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Rows::default();
    }
    let start = trimmed.as_ptr() as usize - text.as_ptr() as usize;
    if !trimmed.contains('\n') {
        let spans = vec![(start, start + trimmed.len())];
        return Rows { text, spans };
    }
    // One object over several lines (a third-party producer's pretty-printed record). An NDJSON
    // batch fails this at the end of its first row, scanned without building a value.
    if trimmed.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok() {
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(trimmed) {
            return Rows::of(&[v.to_string()]);
        }
    }
    let spans = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let a = l.as_ptr() as usize - text.as_ptr() as usize;
            (a, a + l.len())
        })
        .collect();
    Rows { text, spans }
}

/// The rows of a consumed message, whatever its framing.
pub fn rows_of<M: Message>(m: &M) -> Rows {
    decode(m.payload().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn keys_are_text_for_one_field_and_json_arrays_for_several() {
        assert_eq!(message_key(&[&Value::from("pump-1")]), "pump-1");
        assert_eq!(message_key(&[&Value::from(42)]), "42");
        assert_eq!(message_key(&[&Value::from("a"), &Value::from(1)]), r#"["a",1]"#);
    }

    fn rows(keys: &[&str]) -> Vec<KeyedRow> {
        keys.iter().enumerate().map(|(i, k)| KeyedRow { key: k.to_string(), row: format!("{{\"i\":{i}}}") }).collect()
    }

    #[test]
    fn record_framing_is_one_message_per_row_in_the_key_partition() {
        let out = Framing::Record.encode(&rows(&["a", "b", "a"]), 4, None);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|m| m.partition == partition_of(m.key.as_bytes(), 4) && !m.value.contains('\n')));
        assert_eq!(out[0].partition, out[2].partition);
        assert_eq!(decode(out[1].value.as_bytes()).to_strings(), vec!["{\"i\":1}"]);
    }

    #[test]
    fn batch_framing_groups_rows_by_partition_in_order() {
        let out = Framing::Batch.encode(&rows(&["a", "b", "a", "c"]), 2, None);
        let total: usize = out.iter().map(|m| decode(m.value.as_bytes()).len()).sum();
        assert_eq!(total, 4);
        let pa = partition_of(b"a", 2);
        let msg = out.iter().find(|m| m.partition == pa).unwrap();
        let got = decode(msg.value.as_bytes()).to_strings();
        let a: Vec<_> = got.iter().filter(|r| *r == "{\"i\":0}" || *r == "{\"i\":2}").collect();
        assert_eq!(a, ["{\"i\":0}", "{\"i\":2}"]);
    }

    #[test]
    fn decode_reads_either_framing_and_multi_line_objects() {
        assert_eq!(decode(b"{\"a\":1}\n{\"a\":2}\n").to_strings(), ["{\"a\":1}", "{\"a\":2}"]);
        assert_eq!(decode(b"{\"a\":1}").to_strings(), ["{\"a\":1}"]);
        // A pretty-printed record is one row, not three lines.
        assert_eq!(decode(b"{\n  \"a\": 1\n}\n").to_strings(), ["{\"a\":1}"]);
        // A row with a newline inside a string is one row in either framing.
        assert_eq!(decode(b"{\"a\":\"x\\ny\"}").to_strings(), ["{\"a\":\"x\\ny\"}"]);
        assert!(decode(b"  \n").is_empty());
        // Rows sit in the message's text as sent: spaces around a line are not theirs.
        let rows = decode(b" {\"a\":1} \r\n\n\t{\"b\":2}\n");
        assert_eq!(rows.iter().collect::<Vec<_>>(), ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!((rows.len(), rows.bytes()), (2, 14));
        // Invalid UTF-8 is replaced, as before.
        assert_eq!(decode(b"{\"a\":\"\xff\"}").to_strings(), ["{\"a\":\"\u{fffd}\"}"]);
    }

    #[test]
    fn an_idempotent_request_encodes_the_same_way_every_time() {
        // Unkeyed rows go by turns, unless the request has a key: then to its partition.
        let unkeyed = rows(&["", "", "", "", "b"]);
        for framing in [Framing::Record, Framing::Batch] {
            let first = framing.encode(&unkeyed, 8, Some("req-1"));
            assert_eq!(first, framing.encode(&unkeyed, 8, Some("req-1")), "{framing}");
            let p = partition_of(b"req-1", 8);
            assert!(first.iter().filter(|m| m.key.is_empty()).all(|m| m.partition == p), "{framing}");
        }
        let spread: std::collections::BTreeSet<i32> =
            Framing::Record.encode(&unkeyed, 8, None).iter().map(|m| m.partition).collect();
        assert!(spread.len() > 1, "{spread:?}");
    }

    #[test]
    fn partitions_spread() {
        let mut seen = [0; 4];
        for i in 0..1000 {
            seen[partition_of(format!("tag-{i:05}").as_bytes(), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (200..300).contains(n)), "{seen:?}");
    }
}
