//! Membership in a consumer group, to share a topic's partitions among replicas. The group
//! only says who *should* own which partition; members read with their own assigned consumer
//! at their own offsets, and fence one another elsewhere (the table writer's claims). The
//! member's consumer pauses whatever it is given, so it fetches nothing: it exists to join,
//! heartbeat and hear about rebalances.

use std::collections::BTreeSet;
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
        let heartbeat = (session_timeout.as_millis() / 3).max(100);
        let consumer: BaseConsumer<GroupContext> = broker
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", heartbeat.to_string())
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
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
