//! `igloo migrate`: bring the configured engines (igloo.yaml and `IGLOO_*`: a staging or
//! production ClickHouse and broker, or the local ones) in line with the schema — the same
//! plan `igloo plan` prints, applied under the migration lock, recorded in `_igloo_migrations`
//! with the schema's fingerprint. Exit codes for CI: 0 applied or nothing to do, 2 steps wait
//! for consent, 1 error.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use igloo_schemas::plan::Plan;
use igloo_server::config::{InfraMode, Project};
use serde::{Deserialize, Serialize};

use crate::dev::engines::{connect, resolve_mode, Endpoints};
use crate::dev::lock::{self, MigrationLock};
use crate::dev::migrate;
use crate::ui;

/// Apply the schema to the configured ClickHouse and broker (for CI and deploys)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  igloo migrate --dry-run                 # the plan, nothing applied
  igloo migrate                           # apply; destructive steps need consent
  igloo migrate --allow-destructive       # also drop, retype and rebuild
  igloo migrate --status                  # applied, pending, and drift
  IGLOO_INFRA_MODE=external IGLOO_CLICKHOUSE_URL=http://ch:8123 IGLOO_BROKER_BOOTSTRAP_SERVERS=k:9092 igloo migrate --json

Exit codes: 0 applied or nothing to do, 2 steps wait for consent (destructive steps without
--allow-destructive, no terminal to ask on), 1 error. Two runs never interleave: the second
waits for the migration lock (--lock-timeout), then fails naming the holder.")]
pub struct Args {
    /// Print the plan without applying it.
    #[arg(long, conflicts_with_all = ["status", "release_lock"])]
    pub dry_run: bool,
    /// Applied, pending and drift: what was applied (newest first), what the schema still
    /// needs, and what changed outside igloo.
    #[arg(long, conflicts_with = "release_lock")]
    pub status: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Apply steps that need consent (drop, retype, rebuild) without asking.
    #[arg(long, alias = "yes", short = 'y')]
    pub allow_destructive: bool,
    /// Seconds to wait for another run's migration lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
    /// Remove the migration lock left by a run that died, then exit.
    #[arg(long)]
    pub release_lock: bool,
    /// Where the engines are (default: igloo.yaml's infra.mode).
    #[arg(long, value_parser = ["native", "docker", "external"])]
    pub mode: Option<String>,
}

/// What `--json` prints for a run.
#[derive(Serialize)]
struct Outcome {
    database: String,
    clickhouse: String,
    fingerprint: String,
    /// `applied`, `up_to_date`, `needs_consent` or `dry_run`.
    status: &'static str,
    plan: igloo_schemas::plan::PlanJson,
    applied: Vec<String>,
    held_back: Vec<String>,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let mode = match args.mode.as_deref() {
        Some(m) => m.parse::<InfraMode>().map_err(anyhow::Error::msg)?,
        None => resolve_mode(&project),
    };
    let endpoints = connect(&project, mode).context("igloo migrate needs the engines it migrates")?;
    let database = project.config.database();
    if args.release_lock {
        return release_lock(&endpoints, &database);
    }
    let checked = crate::project_check::check_project(&project, Some(endpoints.dialect))?;
    checked.ensure_valid("the schema has errors; nothing applied")?;
    let ir = checked.ir;
    let fingerprint = igloo_schemas::ir::fingerprint(&ir);
    if args.status {
        return status(&endpoints, &ir, &database, &fingerprint, args.json);
    }
    let against = format!("against {} and {}", endpoints.clickhouse.url, endpoints.broker.bootstrap);
    if args.dry_run {
        let plan = migrate::plan_for(&endpoints, &ir, &database)?;
        print_outcome(&plan, &fingerprint, "dry_run", &migrate::Applied::default(), args.json, &against);
        return Ok(ExitCode::SUCCESS);
    }
    // The lock lives in the project's database: create it first (what the plan's first step
    // would do anyway).
    let create = igloo_schemas::sql::CreateDatabase { name: database.clone() };
    migrate::run(&endpoints, igloo_schemas::sql::Statement::CreateDatabase(create))
        .context("cannot create the database")?;
    let lock = MigrationLock::acquire(&endpoints, &database, Duration::from_secs(args.lock_timeout), |h| {
        eprintln!("waiting for the migration lock, held by {h} (up to {} s)", args.lock_timeout);
    })?;
    let plan = migrate::plan_for(&endpoints, &ir, &database)?;
    let consent = migrate::ask_consent(&plan, args.allow_destructive, |line| eprintln!("{line}"));
    let pb =
        if args.json { None } else { Some(ui::spinner(format!("applying {}", ui::plural(plan.steps.len(), "step")))) };
    // Each step as it is applied (a backfill can take minutes); the spinner steps aside.
    let result = migrate::apply(&endpoints, &plan, &fingerprint, consent, |step| {
        if let Some(pb) = &pb {
            pb.suspend(|| println!("  {}", step.summary(&plan.database)));
        }
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    lock.release().context("cannot release the migration lock")?;
    let applied = result?;
    let status = match (applied.applied.is_empty(), applied.held_back.is_empty()) {
        (_, false) => "needs_consent",
        (true, true) => "up_to_date",
        (false, true) => "applied",
    };
    print_outcome(&plan, &fingerprint, status, &applied, args.json, &against);
    Ok(if status == "needs_consent" { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn print_outcome(
    plan: &Plan,
    fingerprint: &str,
    status: &'static str,
    applied: &migrate::Applied,
    json: bool,
    against: &str,
) {
    if json {
        let outcome = Outcome {
            database: plan.database.clone(),
            clickhouse: plan.dialect.to_string(),
            fingerprint: fingerprint.to_string(),
            status,
            plan: plan.to_json(),
            applied: applied.applied.clone(),
            held_back: applied.held_back.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&outcome).expect("the outcome serializes"));
        return;
    }
    match status {
        "dry_run" => crate::commands::plan::print_plan(plan, against),
        "up_to_date" => {
            println!("✓ up to date: database {} matches schema {fingerprint}", plan.database);
            migrate::print_report(applied, "igloo migrate", "");
        }
        _ => migrate::print_report(
            applied,
            "igloo migrate",
            &format!(" (schema {fingerprint}, recorded in {}._igloo_migrations)", plan.database),
        ),
    }
}

fn release_lock(endpoints: &Endpoints, database: &str) -> anyhow::Result<ExitCode> {
    match lock::force_release(endpoints, database)? {
        Some(h) => println!("✓ released the migration lock of {database}, held by {h}"),
        None => println!("✓ the migration lock of {database} was not held"),
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `_igloo_migrations`.
#[derive(Debug, Deserialize, Serialize)]
struct Applied {
    applied_unix: u64,
    igloo_version: String,
    clickhouse: String,
    risk: String,
    steps: u64,
    error: String,
    fingerprint: String,
}

#[derive(Serialize)]
struct Status {
    database: String,
    fingerprint: String,
    applied: Vec<Applied>,
    /// Steps the schema needs because it changed since the last apply.
    pending: Vec<String>,
    /// Steps the schema needs although it was applied as it is: changed outside igloo.
    drift: Vec<String>,
    notes: Vec<String>,
}

fn status(
    endpoints: &Endpoints,
    ir: &igloo_schemas::Ir,
    database: &str,
    fingerprint: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let plan = migrate::plan_for(endpoints, ir, database)?;
    let applied: Vec<Applied> =
        if plan.steps.iter().any(|s| matches!(s, igloo_schemas::plan::PlanStep::CreateDatabase { .. })) {
            Vec::new()
        } else {
            migrate::ensure_migrations_table(endpoints, database)?;
            endpoints.clickhouse.rows(&igloo_schemas::sql::internal::migrations::history(database, 10))?
        };
    let last_ok = applied.iter().find(|a| a.error.is_empty()).map(|a| a.fingerprint.clone());
    let steps: Vec<String> = plan.steps.iter().map(|s| s.summary(database)).collect();
    let (pending, drift) =
        if last_ok.as_deref() == Some(fingerprint) { (Vec::new(), steps) } else { (steps, Vec::new()) };
    let s = Status {
        database: database.to_string(),
        fingerprint: fingerprint.to_string(),
        applied,
        pending,
        drift,
        notes: plan.notes.clone(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Migrations of database {database} (ClickHouse {} at {}), schema now {fingerprint}",
        endpoints.dialect, endpoints.clickhouse.url
    );
    println!("\nApplied (newest first):");
    if s.applied.is_empty() {
        println!("  nothing yet");
    }
    for a in &s.applied {
        let outcome = if a.error.is_empty() { String::new() } else { format!("  FAILED: {}", a.error) };
        let fp = if a.fingerprint.is_empty() { "-".to_string() } else { a.fingerprint.clone() };
        println!(
            "  {}  {}  {}  schema {fp}  igloo {}{outcome}",
            ui::utc(a.applied_unix),
            ui::plural(a.steps as usize, "step"),
            a.risk,
            a.igloo_version
        );
    }
    println!(
        "\nPending ({}):",
        if s.pending.is_empty() {
            "none".to_string()
        } else {
            format!("the schema changed since {}", last_ok.unwrap_or_else(|| "nothing was applied".into()))
        }
    );
    for p in &s.pending {
        println!("  {p}");
    }
    println!(
        "\nDrift ({}):",
        if s.drift.is_empty() { "none" } else { "changed outside igloo since this schema was applied" }
    );
    for d in &s.drift {
        println!("  {d}");
    }
    for n in &s.notes {
        println!("  note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}
