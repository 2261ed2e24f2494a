//! `igloo serve`: the ingest API and table writers alone, against engines that already match
//! the schema (started by `igloo dev --no-server`, or existing clusters). It never changes
//! tables or topics: a schema the engines lack is an error naming the missing steps.

use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::channel;

use anyhow::{bail, Context};
use igloo_server::config::{InfraMode, Project};

use crate::dev::engines::{connect, resolve_mode};
use crate::dev::migrate::plan_for;
use crate::dev::server::{settings, RunningServer};

/// Run the ingest API and the table writers (no engines, no migrations)
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo dev --no-server & igloo serve     # engines in one process, the server in another\n  IGLOO_INFRA_MODE=external igloo serve   # against existing clusters\n\nStops on Ctrl-C or SIGTERM: in-flight requests finish and each writer finishes its batch."
)]
pub struct Args {
    /// Where the engines are (default: igloo.yaml's infra.mode, else docker if a Docker engine
    /// answers, else native).
    #[arg(long, value_parser = ["native", "docker", "external"])]
    pub mode: Option<String>,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let mode = match args.mode.as_deref() {
        Some(m) => m.parse::<InfraMode>().map_err(anyhow::Error::msg)?,
        None => resolve_mode(&project),
    };
    let endpoints = connect(&project, mode).context("igloo serve needs running engines")?;
    let checked = crate::project_check::check_project(&project, Some(endpoints.dialect))?;
    checked.ensure_valid("the schema has errors; fix them before serving")?;
    let ir = checked.ir;
    let plan = plan_for(&endpoints, &ir, &project.config.database())?;
    let missing: Vec<String> =
        plan.steps.iter().filter(|s| !s.is_destructive()).map(|s| s.summary(&plan.database)).collect();
    if !missing.is_empty() {
        bail!(
            "the engines do not match the schema yet; `igloo migrate` applies these steps (`igloo dev` does on the local engines):\n  {}",
            missing.join("\n  ")
        );
    }
    let (tx, rx) = channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })?;
    let server = RunningServer::start(settings(&project, &endpoints), ir)?;
    println!("igloo serve: ingest API on http://{} for project {}", server.addr(), project.config.name);
    println!("  console on http://{}/console", server.addr());
    let _ = rx.recv();
    println!("Stopping…");
    server.stop();
    println!("Stopped.");
    Ok(ExitCode::SUCCESS)
}
