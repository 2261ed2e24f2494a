//! Exponential backoff between retries, interruptible by a shutdown signal.

use std::time::Duration;

use tokio::sync::watch;

/// Exponential backoff from 100 ms to 5 s.
#[derive(Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// Sleeps; true if told to stop meanwhile.
    pub async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let ms = (100u64 << self.attempt.min(6)).min(5_000);
        self.attempt += 1;
        tokio::select! {
            _ = shutdown.changed() => true,
            _ = tokio::time::sleep(Duration::from_millis(ms)) => *shutdown.borrow(),
        }
    }

    /// After a success: the next wait starts short again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
