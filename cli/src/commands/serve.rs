//! `igloo serve`: the production server. No file watcher, no engines, no prompts: it runs the
//! roles it is given (`--role ingest,query,writer,transform`, default all) against engines that
//! already match the schema (`igloo migrate` makes them), with configuration from igloo.yaml
//! and `IGLOO_*`. SIGTERM (or Ctrl-C) stops it gracefully within `--grace-period`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use igloo_server::config::{InfraMode, Project};
use igloo_server::runtime::Roles;
use igloo_server::writer::Sharing;

use crate::dev::engines::{connect, resolve_mode};
use crate::dev::migrate::plan_for;
use crate::dev::server::{settings, RunningServer};

/// Run the server: ingest, query, table writers and transforms, or some of them
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  igloo serve                                   # every role, against igloo.yaml's engines
  igloo serve --role ingest,query               # the HTTP APIs only; scale them on their own
  igloo serve --role writer                     # table writers only
  IGLOO_INFRA_MODE=external igloo serve --log-format json
  igloo dev --no-server & igloo serve           # engines in one process, the server in another

Probes: GET /health (alive) and GET /ready (each role can serve now: ingest the broker, query
ClickHouse, writer its partitions, transform its workers; 503 names what cannot).
On SIGTERM or Ctrl-C: stop accepting, answer the requests in flight, writers finish and log
their batch, transform workers drain — within --grace-period, then exit.")]
pub struct Args {
    /// Where the engines are (default: igloo.yaml's infra.mode, else docker if a Docker engine
    /// answers, else native).
    #[arg(long, value_parser = ["native", "docker", "external"])]
    pub mode: Option<String>,
    /// What this process does: ingest, query, writer, transform (comma-separated), or all.
    #[arg(long, value_name = "ROLES", default_value = "all", env = "IGLOO_ROLE")]
    pub role: String,
    /// Seconds a graceful stop may take before the process exits anyway.
    #[arg(long, value_name = "SECONDS", default_value_t = 25, env = "IGLOO_GRACE_PERIOD")]
    pub grace_period: u64,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let roles = Roles::parse(&args.role)?;
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
    let sharing = Sharing::Replicas {
        writer_id: igloo_server::writer::replica_id(),
        session_timeout: Duration::from_millis(project.config.writer.session_timeout_ms),
    };
    let server = RunningServer::start(settings(&project, &endpoints, roles, sharing), ir)?;
    println!(
        "igloo serve: project {}, roles {}, on http://{} (/health, /ready, /metrics)",
        project.config.name,
        roles.names().join(","),
        server.addr()
    );
    if roles.query {
        println!("  console on http://{}/console", server.addr());
    }
    let _ = rx.recv();
    println!("Stopping (at most {} s)…", args.grace_period);
    let started = Instant::now();
    if server.stop_within(Duration::from_secs(args.grace_period)) {
        println!("Stopped in {} ms.", started.elapsed().as_millis());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: not stopped within {} s; exiting (a writer's unfinished batch is read again by the next writer)",
            args.grace_period
        );
        Ok(ExitCode::FAILURE)
    }
}
