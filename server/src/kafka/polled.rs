//! A librdkafka producer whose delivery reports are served by the tokio runtime, not by a
//! thread of its own. rust-rdkafka's `FutureProducer` polls librdkafka's queue from a thread
//! that wakes ten times a second with nothing to do, and for every acknowledgement hands the
//! waiting request over to a tokio worker (a second wakeup). Here librdkafka writes to an
//! `eventfd` when its queue stops being empty (`rd_kafka_queue_io_event_enable`, one write per
//! time the queue is served), and a runtime task serves the queue when that fd is readable: the
//! acknowledgement runs where the request is waiting.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::oneshot;

use super::context::Diagnosed;

/// A message's outcome: acknowledged, or librdkafka's error.
pub type Delivered = Result<(), KafkaError>;

/// The client context: [`Diagnosed`] for what librdkafka reports, and each message's outcome
/// sent to whoever waits for it.
pub struct Delivering(pub Diagnosed);

impl ClientContext for Delivering {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.0.log(level, fac, message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(error, reason)
    }
}

impl ProducerContext for Delivering {
    type DeliveryOpaque = Box<oneshot::Sender<Delivered>>;

    fn delivery(&self, result: &DeliveryResult<'_>, done: Self::DeliveryOpaque) {
        let _ = done.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// Producers alive in this process (`igloo_kafka_producers` in `/metrics`).
static ALIVE: AtomicUsize = AtomicUsize::new(0);

/// How many producers this process has now: one, except for a moment while one is replaced.
pub fn alive() -> usize {
    ALIVE.load(Ordering::Relaxed)
}

/// librdkafka's main (reply) queue of the producer, signalling `fd`.
struct MainQueue(NonNull<rdsys::rd_kafka_queue_t>);

// librdkafka's queues are locked internally: any thread may poll, measure or destroy them.
unsafe impl Send for MainQueue {}
unsafe impl Sync for MainQueue {}

/// A producer, and what serves its delivery reports. Dropping it stops the signals before the
/// fd can close, then drops the producer (which waits up to 500 ms for its last reports).
pub struct Polled {
    producer: BaseProducer<Delivering>,
    queue: MainQueue,
    /// Kept open while librdkafka may write to it (the serving task holds it too).
    _fd: Arc<AsyncFd<OwnedFd>>,
}

impl Drop for Polled {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::Relaxed);
        unsafe {
            rdsys::rd_kafka_queue_io_event_enable(self.queue.0.as_ptr(), -1, std::ptr::null(), 0);
            rdsys::rd_kafka_queue_destroy(self.queue.0.as_ptr());
        }
    }
}

impl Polled {
    /// Creates the producer and spawns its serving task on the current runtime; the task ends
    /// once the producer is dropped.
    pub fn create(config: &ClientConfig, context: Delivering) -> Result<Arc<Polled>, KafkaError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(KafkaError::ClientCreation(
                "a producer is created inside a tokio runtime, which serves it".into(),
            ));
        }
        let producer: BaseProducer<Delivering> = config.create_with_context(context)?;
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(KafkaError::ClientCreation(format!("eventfd: {}", std::io::Error::last_os_error())));
        }
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an OwnedFd stays open, the same descriptor, as long as the AsyncFd owns it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| KafkaError::ClientCreation(format!("eventfd: {}", e.into_parts().1)))?;
        let fd = Arc::new(fd);
        let main = unsafe { rdsys::rd_kafka_queue_get_main(producer.client().native_ptr()) };
        let queue = MainQueue(NonNull::new(main).ok_or_else(|| KafkaError::ClientCreation("no main queue".into()))?);
        // An eventfd takes 8-byte writes: each adds 1 to its counter.
        let one = 1u64.to_ne_bytes();
        unsafe { rdsys::rd_kafka_queue_io_event_enable(main, fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        let polled = Arc::new(Polled { producer, queue, _fd: fd.clone() });
        ALIVE.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(fd, Arc::downgrade(&polled)));
        // Reports queued before the signal was set would wait for the next one: serve them now.
        polled.serve();
        Ok(polled)
    }

    pub fn client(&self) -> &Client<Delivering> {
        self.producer.client()
    }

    /// Queues a message; `Err` when librdkafka refused it (a full queue, a fatal error).
    pub fn send(&self, record: BaseRecord<'_, [u8], [u8], Box<oneshot::Sender<Delivered>>>) -> Result<(), KafkaError> {
        self.producer.send(record).map_err(|(e, _)| e)
    }

    /// Runs the callbacks of every queued event (delivery reports, errors) without waiting.
    fn serve(&self) {
        while unsafe { rdsys::rd_kafka_queue_length(self.queue.0.as_ptr()) } > 0 {
            self.producer.poll(Duration::ZERO);
        }
    }
}

/// Serves the queue whenever librdkafka signals it, and once a second in any case (a signal is
/// written only once per time the queue is served, so none can be missed, but a second costs
/// nothing at rest); ends once the producer is gone.
async fn serve(fd: Arc<AsyncFd<OwnedFd>>, producer: Weak<Polled>) {
    loop {
        if let Ok(Ok(mut ready)) = tokio::time::timeout(Duration::from_secs(1), fd.readable()).await {
            let mut counter = [0u8; 8];
            // Resets the counter; nothing to read (EAGAIN) is fine too.
            let _ = unsafe { libc::read(fd.as_raw_fd(), counter.as_mut_ptr().cast(), counter.len()) };
            ready.clear_ready();
        }
        let Some(p) = producer.upgrade() else { return };
        p.serve();
    }
}
