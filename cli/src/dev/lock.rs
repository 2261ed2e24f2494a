//! The migration lock: two `igloo migrate` runs against one database never interleave. The
//! lock is a table (`_igloo_migration_lock`) created atomically — ClickHouse lets exactly one
//! `CREATE TABLE` of a name succeed — holding who took it and when, and dropped when the run
//! ends. A second run waits up to its timeout, then fails naming the holder. A holder that died
//! leaves the table behind: the error says so and `igloo migrate --release-lock` removes it
//! (as Liquibase's `releaseLocks`; a lock that expires by itself could let two runs overlap).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use igloo_schemas::sql::internal::migrations;
use serde::Deserialize;

use super::engines::Endpoints;
use crate::infra::clickhouse::ClickHouseError;

/// Who holds the lock, and since when (seconds since the epoch).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub holder: String,
    pub since: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        write!(f, "{} ({} s ago)", self.holder, now.saturating_sub(self.since))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another igloo migrate holds the migration lock of database {database}: {holder}; waited {waited} s. It is released when that run ends; if that process is gone, run `igloo migrate --release-lock`")]
    Held { database: String, holder: Holder, waited: u64 },
    #[error("cannot take the migration lock of database {database}: {source}")]
    ClickHouse { database: String, source: ClickHouseError },
}

/// A held lock; released by [`MigrationLock::release`], or when dropped.
pub struct MigrationLock<'a> {
    endpoints: &'a Endpoints,
    database: String,
    held: bool,
}

/// `user@host pid N`: who this process is, for the lock and its error messages.
pub fn this_process() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host} pid {}", std::process::id())
}

impl<'a> MigrationLock<'a> {
    /// Takes the lock of `database` (which must exist), waiting up to `timeout` while another
    /// run holds it; `on_wait` is told the holder once, when waiting starts.
    pub fn acquire(
        endpoints: &'a Endpoints,
        database: &str,
        timeout: Duration,
        mut on_wait: impl FnMut(&Holder),
    ) -> Result<MigrationLock<'a>, LockError> {
        let ch = &endpoints.clickhouse;
        let error = |source| LockError::ClickHouse { database: database.to_string(), source };
        let started = Instant::now();
        let mut told = false;
        loop {
            match ch.execute(&migrations::lock_create(database, &this_process())) {
                Ok(_) => return Ok(MigrationLock { endpoints, database: database.to_string(), held: true }),
                Err(ClickHouseError::Client(e)) if e.is_table_exists() => {}
                Err(e) => return Err(error(e)),
            }
            // Between its CREATE and its first row, a new lock reads as empty: ask again.
            let holder = holder(endpoints, database).map_err(error)?;
            if let Some(h) = &holder {
                if !told {
                    on_wait(h);
                    told = true;
                }
            }
            if started.elapsed() >= timeout {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let holder = holder.unwrap_or(Holder { holder: "a run whose lock holds no row".into(), since: now });
                let waited = started.elapsed().as_secs();
                return Err(LockError::Held { database: database.to_string(), holder, waited });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn release(mut self) -> Result<(), ClickHouseError> {
        self.held = false;
        self.endpoints.clickhouse.execute(&migrations::lock_drop(&self.database)).map(drop)
    }
}

impl Drop for MigrationLock<'_> {
    fn drop(&mut self) {
        if self.held {
            let _ = self.endpoints.clickhouse.execute(&migrations::lock_drop(&self.database));
        }
    }
}

/// The current holder, if the lock is held (and its row written).
pub fn holder(endpoints: &Endpoints, database: &str) -> Result<Option<Holder>, ClickHouseError> {
    match endpoints.clickhouse.rows::<Holder>(&migrations::lock_holder(database)) {
        Ok(rows) => Ok(rows.into_iter().next()),
        Err(ClickHouseError::Client(e)) if e.is_unknown_table() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the lock whoever holds it (`igloo migrate --release-lock`); returns who held it.
pub fn force_release(endpoints: &Endpoints, database: &str) -> Result<Option<Holder>, ClickHouseError> {
    let was = holder(endpoints, database)?;
    endpoints.clickhouse.execute(&migrations::lock_drop(database))?;
    Ok(was)
}
