//! `.igloo/dev.json`: what a running `igloo dev` started, so that `igloo ps`, `logs`, `down`
//! and `clean` can find it from another terminal. Removed when `igloo dev` stops.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::infra::process::alive;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DevState {
    /// The `igloo dev` process.
    pub pid: u32,
    pub mode: String,
    pub started_at_unix: u64,
    pub clickhouse_url: String,
    pub bootstrap_servers: String,
    pub engines: Vec<EngineState>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineState {
    pub name: String,
    /// Set for native engines (child processes of `igloo dev`).
    pub pid: Option<u32>,
    pub address: String,
    pub log: Option<PathBuf>,
}

pub fn igloo_dir(root: &Path) -> PathBuf {
    root.join(".igloo")
}

fn path(root: &Path) -> PathBuf {
    igloo_dir(root).join("dev.json")
}

pub fn write(root: &Path, state: &DevState) -> std::io::Result<()> {
    std::fs::create_dir_all(igloo_dir(root))?;
    let tmp = path(root).with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state).expect("state serializes"))?;
    std::fs::rename(tmp, path(root))
}

pub fn remove(root: &Path) {
    let _ = std::fs::remove_file(path(root));
}

/// The state of an `igloo dev` that is still running; a stale file (its process gone) is removed.
pub fn running(root: &Path) -> Option<DevState> {
    let text = std::fs::read_to_string(path(root)).ok()?;
    let state: DevState = serde_json::from_str(&text).ok()?;
    if alive(state.pid) {
        Some(state)
    } else {
        remove(root);
        None
    }
}
