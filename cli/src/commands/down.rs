//! `igloo down`: stop this project's running `igloo dev` and its engines.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use igloo_server::config::Project;

use crate::dev::state;
use crate::infra::process::{alive, terminate};

/// Stop the running `igloo dev` and its engines (data is kept)
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo down\n\nThe data stays in .igloo/ for the next `igloo dev`; `igloo clean` deletes it."
)]
pub struct Args {}

pub fn run(_args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let Some(s) = state::running(&project.root) else {
        println!("igloo dev is not running in {}", project.root.display());
        return Ok(ExitCode::SUCCESS);
    };
    println!("Stopping igloo dev (pid {})…", s.pid);
    terminate(s.pid);
    let start = Instant::now();
    while alive(s.pid) || s.engines.iter().filter_map(|e| e.pid).any(alive) {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("igloo dev (pid {}) did not stop within 60 s; see `igloo logs`", s.pid);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("Stopped.");
    Ok(ExitCode::SUCCESS)
}
