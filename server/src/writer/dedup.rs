//! End-to-end idempotency at the table writer: a message whose `igloo-idempotency` header
//! ([`crate::kafka::wire`]) was already written to the table within the window is skipped
//! (its offset still advances). The keys written are logged in `_igloo_offsets` in the same
//! insert as the batch's offsets, so a message counts as written exactly when its key does:
//! after a crash, the recovery that deletes unlogged rows also forgets their keys, and both
//! are read again. A restarted writer (or one that claims a partition) loads the partition's
//! keys of the window from the log.
//!
//! Memory: one entry per idempotent message written in the window (its header value and a
//! time); a client sending 100 batches a second with keys holds about 8.6M entries a day.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use igloo_schemas::sql::internal::writer_sql;
use serde::Deserialize;

use super::WriterSpec;
use crate::clickhouse::{u64_json, ClickHouse, ClickHouseError};
use crate::kafka::consumer::Received;

#[derive(Deserialize)]
struct Logged {
    partition: u32,
    key: String,
    #[serde(deserialize_with = "u64_json")]
    at: u64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The idempotency keys written per partition in the window, with when (seconds since 1970).
pub struct Seen {
    window_secs: u64,
    by_partition: HashMap<i32, HashMap<String, u64>>,
    pruned_at: u64,
}

/// What to write of a batch: the messages not written before, and per partition the keys
/// they carry (to log with the offsets, then [`Seen::remember`]).
pub struct Fresh<'a> {
    pub messages: Vec<&'a Received>,
    pub keys: BTreeMap<i32, Vec<String>>,
    /// Rows skipped as already written.
    pub skipped_rows: u64,
}

impl Seen {
    pub fn new(window: Duration) -> Seen {
        Seen { window_secs: window.as_secs().max(1), by_partition: HashMap::new(), pruned_at: now_secs() }
    }

    /// Reads the keys of the window from the offsets log, for `partition` (None: every
    /// partition), in place of what was known of them.
    pub async fn load(
        &mut self,
        spec: &WriterSpec,
        ch: &ClickHouse,
        partition: Option<i32>,
    ) -> Result<(), ClickHouseError> {
        let query = writer_sql::logged_idempotency(&spec.database, &spec.topic, partition, self.window_secs);
        let rows = ch.rows::<Logged>(&query).await?;
        self.by_partition.retain(|p, _| partition.is_some_and(|only| only != *p));
        for r in rows {
            self.by_partition.entry(r.partition as i32).or_default().insert(r.key, r.at);
        }
        Ok(())
    }

    /// Keeps only the partitions `hold` keeps (those this writer still holds).
    pub fn retain(&mut self, hold: impl Fn(i32) -> bool) {
        self.by_partition.retain(|p, _| hold(*p));
    }

    /// The messages of `batch` to write: those without a key, and the first of each key not
    /// written before (a retry can land in the same batch as its original).
    pub fn fresh<'a>(&self, batch: &[&'a Received]) -> Fresh<'a> {
        let mut in_batch: HashSet<(i32, &str)> = HashSet::new();
        let mut out = Fresh { messages: Vec::with_capacity(batch.len()), keys: BTreeMap::new(), skipped_rows: 0 };
        for m in batch {
            let Some(key) = m.idempotency.as_deref() else {
                out.messages.push(m);
                continue;
            };
            let written = self.by_partition.get(&m.partition).is_some_and(|seen| seen.contains_key(key));
            if written || !in_batch.insert((m.partition, key)) {
                out.skipped_rows += m.rows.len() as u64;
                continue;
            }
            out.keys.entry(m.partition).or_default().push(key.to_string());
            out.messages.push(m);
        }
        out
    }

    /// Keys now logged as written; drops those past the window (at most once a minute).
    pub fn remember(&mut self, keys: BTreeMap<i32, Vec<String>>) {
        let now = now_secs();
        for (p, ks) in keys {
            let seen = self.by_partition.entry(p).or_default();
            seen.extend(ks.into_iter().map(|k| (k, now)));
        }
        if now >= self.pruned_at + 60 {
            self.pruned_at = now;
            let oldest = now.saturating_sub(self.window_secs);
            for seen in self.by_partition.values_mut() {
                seen.retain(|_, at| *at >= oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(partition: i32, offset: i64, key: Option<&str>) -> Received {
        Received {
            partition,
            offset,
            timestamp_ms: None,
            rows: crate::kafka::wire::Rows::of(&["{}", "{}"]),
            idempotency: key.map(str::to_string),
        }
    }

    #[test]
    fn a_key_is_written_once_per_partition_whether_seen_before_or_in_the_same_batch() {
        let mut seen = Seen::new(Duration::from_secs(86_400));
        let batch = [msg(0, 1, Some("0:a")), msg(0, 2, None), msg(1, 3, Some("0:a")), msg(0, 4, Some("0:a"))];
        let refs: Vec<&Received> = batch.iter().collect();
        let fresh = seen.fresh(&refs);
        assert_eq!(fresh.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(fresh.skipped_rows, 2);
        assert_eq!(fresh.keys[&0], ["0:a"]);
        // Not remembered until logged: the same batch again is the same.
        assert_eq!(seen.fresh(&refs).messages.len(), 3);
        seen.remember(fresh.keys);
        let again = [msg(0, 9, Some("0:a")), msg(0, 10, Some("1:a")), msg(1, 11, Some("0:a"))];
        let refs: Vec<&Received> = again.iter().collect();
        let fresh = seen.fresh(&refs);
        assert_eq!(fresh.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [10]);
        seen.retain(|p| p != 0);
        assert_eq!(seen.fresh(&refs).messages.len(), 2);
    }
}
