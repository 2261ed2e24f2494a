//! Membership in a consumer group, to share a topic's partitions among replicas. The group
//! only says who *should* own which partition; members read with their own assigned consumer
//! at their own offsets, and fence one another elsewhere (the table writer's claims). The
//! member's consumer pauses whatever it is given, so it fetches nothing: it exists to join,
//! heartbeat and hear about rebalances.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use tokio::sync::watch;

use super::Broker;

/// The partitions the group gives this member now; `generation` counts the rebalances seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assignment {
    pub generation: u64,
    pub partitions: BTreeSet<i32>,
}

struct GroupContext {
    topic: String,
    tx: watch::Sender<Assignment>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = match rebalance {
            Rebalance::Assign(tpl) => {
                if let Err(e) = consumer.pause(tpl) {
                    tracing::warn!(topic = %self.topic, error = %e, "cannot pause the group member's partitions");
                }
                tpl.elements_for_topic(&self.topic).iter().map(|e| e.partition()).collect()
            }
            Rebalance::Revoke(_) => BTreeSet::new(),
            Rebalance::Error(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "consumer group rebalance failed");
                BTreeSet::new()
            }
        };
        self.tx.send_modify(|a| {
            a.generation += 1;
            a.partitions = partitions;
        });
    }
}

/// A running member; leaves the group when dropped (the others rebalance at once).
pub struct Membership {
    rx: watch::Receiver<Assignment>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Membership {
    /// Joins `group` for `topic`. A member that stops heartbeating (killed, frozen, cut off)
    /// loses its partitions after `session_timeout`.
    pub fn join(
        broker: &Broker,
        group: &str,
        topic: &str,
        session_timeout: Duration,
    ) -> Result<Membership, KafkaError> {
        let (tx, rx) = watch::channel(Assignment::default());
        let consumer: BaseConsumer<GroupContext> = broker
            .group_config(group, session_timeout)
            .create_with_context(GroupContext { topic: topic.to_string(), tx })?;
        consumer.subscribe(&[topic])?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("group {group}"))
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    // Messages cannot come (every partition is paused as it is assigned), but a
                    // fetch may have started before the pause: dropped, the reader has them.
                    let _ = consumer.poll(Duration::from_millis(100));
                }
                consumer.unsubscribe();
            })
            .expect("a thread can be spawned");
        Ok(Membership { rx, stop, thread: Some(thread) })
    }

    /// Follows the assignment: `changed().await`, then `borrow()`.
    pub fn watch(&self) -> watch::Receiver<Assignment> {
        self.rx.clone()
    }

    /// Leaves the group, waiting for the member's thread off the async workers: dropping a
    /// `Membership` joins that thread, whose last poll and unsubscribe can wait on the broker.
    pub async fn leave(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Partitions the group gave to someone who does not read them: a member the group still
/// counts although it is gone. Kafka drops such a member when its session times out; tansu 0.6
/// keeps it, and its partitions, until someone joins. Observed every two session timeouts, a
/// partition not this member's, behind the topic's end and with the same progress as at the
/// previous observation, is stalled; the member then rejoins the group.
#[derive(Debug, Default)]
pub struct StallWatch {
    /// Partition → progress (the last offset done, if any) of the partitions behind, at the
    /// previous observation.
    behind: BTreeMap<i32, Option<i64>>,
}

impl StallWatch {
    /// `done`: the last offset done per partition; `ends`: each partition's high watermark.
    pub fn observe(&mut self, done: &BTreeMap<i32, i64>, ends: &[(i32, i64)], mine: &BTreeSet<i32>) -> Vec<i32> {
        let behind: BTreeMap<i32, Option<i64>> = ends
            .iter()
            .filter(|(p, end)| !mine.contains(p) && done.get(p).map_or(0, |d| d + 1) < *end)
            .map(|(p, _)| (*p, done.get(p).copied()))
            .collect();
        let stalled = behind.iter().filter(|(p, d)| self.behind.get(p) == Some(d)).map(|(p, _)| *p).collect();
        self.behind = behind;
        stalled
    }
}

/// Each partition of `topic` with its high watermark (blocking; partitions that do not answer
/// are left out).
pub fn ends<C: Consumer>(consumer: &C, topic: &str, timeout: Duration) -> Vec<(i32, i64)> {
    let parts = super::consumer::partitions(consumer.client(), topic, timeout).unwrap_or_default();
    parts
        .into_iter()
        .filter_map(|p| consumer.fetch_watermarks(topic, p, timeout).ok().map(|(_, high)| (p, high)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_behind_without_progress_twice_is_stalled() {
        let mut w = StallWatch::default();
        let ends = [(0, 10), (1, 10), (2, 10), (3, 5)];
        let mine = BTreeSet::from([0]);
        // 0 is mine; 1 and 2 are behind; 3 is done (last offset 4 of 5).
        let done = BTreeMap::from([(0, 1), (1, 3), (3, 4)]);
        assert_eq!(w.observe(&done, &ends, &mine), Vec::<i32>::new());
        // 1 progressed, 2 (never done) did not: stalled; 0 never is, being mine.
        let done = BTreeMap::from([(0, 1), (1, 5), (3, 4)]);
        assert_eq!(w.observe(&done, &ends, &mine), vec![2]);
        let done = BTreeMap::from([(0, 1), (1, 5), (2, 9), (3, 4)]);
        assert_eq!(w.observe(&done, &ends, &mine), vec![1]);
    }
}
