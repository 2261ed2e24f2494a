//! `igloo plan`: the topics and ClickHouse statements that would bring the engines in line with
//! the schema. `--offline` plans against an empty cluster for a chosen ClickHouse version.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use igloo_schemas::plan::{plan, Observed, PlanStep};
use igloo_schemas::Dialect;

use crate::dev::engines::{connect, resolve_mode};
use crate::dev::migrate::plan_for;

/// Show the topics and ClickHouse DDL the schema needs
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo plan --offline                  # for igloo.yaml's clickhouse.target\n  igloo plan --offline --target 18.16   # as ClickHouse 18.16 needs it\n  igloo plan --offline --sql > ddl.sql  # only the SQL\n  igloo plan --offline --json"
)]
pub struct Args {
    /// Plan against an empty cluster instead of the running engines (of `igloo dev`, or the
    /// external clusters in igloo.yaml).
    #[arg(long)]
    pub offline: bool,
    /// ClickHouse version to render SQL for: `current` or e.g. `18.16` (default: igloo.yaml's
    /// clickhouse.target).
    #[arg(long, value_name = "VERSION")]
    pub target: Option<Dialect>,
    /// Print only the SQL statements, separated by `;`.
    #[arg(long, conflicts_with = "json")]
    pub sql: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Schema files or directories (default: the project's schema/ directory).
    pub paths: Vec<PathBuf>,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    if !args.offline && !args.paths.is_empty() {
        bail!("explicit schema paths need --offline; without it igloo plans the project in this directory against its running engines");
    }
    if !args.offline && args.target.is_some() {
        bail!("--target needs --offline; against running engines igloo renders for the server's own version");
    }
    let endpoints =
        if args.offline {
            None
        } else {
            let project = igloo_server::config::Project::discover(cwd)?;
            let mode = resolve_mode(&project);
            Some(connect(&project, mode).context(
                "cannot plan against the running engines; `igloo plan --offline` plans for an empty cluster",
            )?)
        };
    let target = args.target.or(endpoints.as_ref().map(|e| e.dialect));
    let (project, checked) = crate::project_check::load_and_check(cwd, &args.paths, target)?;
    if checked.diags.has_errors() {
        crate::project_check::report(&checked);
        return Ok(ExitCode::FAILURE);
    }
    let database = project.as_ref().map_or_else(|| "default".to_string(), |p| p.config.database());
    let cluster = project.as_ref().and_then(|p| p.config.cluster());
    let (plan, against) = match &endpoints {
        None => (
            plan(&checked.ir, &Observed::default(), &database, checked.target, cluster.as_ref()),
            match &cluster {
                Some(c) => format!("offline: against an empty cluster `{}`", c.name),
                None => "offline: against an empty server".to_string(),
            },
        ),
        Some(e) => {
            (plan_for(e, &checked.ir, &database)?, format!("against {} and {}", e.clickhouse.url, e.broker.bootstrap))
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan.to_json())?);
    } else if args.sql {
        let statements: Vec<String> = plan.steps.iter().flat_map(|s| plan.sql(s)).collect();
        println!("{};", statements.join(";\n\n"));
    } else {
        print_plan(&plan, &against);
    }
    if !checked.diags.is_empty() {
        eprintln!("{}", checked.diags.render(&checked.files));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_plan(plan: &igloo_schemas::plan::Plan, against: &str) {
    println!("Plan for ClickHouse {} ({against})\n", plan.dialect);
    if plan.steps.is_empty() {
        println!("Nothing to change.");
    }
    for step in &plan.steps {
        println!("{}", step.summary(&plan.database));
        for sql in plan.sql(step) {
            for line in sql.lines() {
                println!("    {line}");
            }
        }
        println!();
    }
    for note in &plan.notes {
        println!("note: {note}");
    }
    let topics = plan.steps.iter().filter(|s| matches!(s, PlanStep::CreateTopic { .. })).count();
    let destructive = plan.steps.iter().filter(|s| s.is_destructive()).count();
    println!(
        "{}: {}, {} SQL, {} destructive",
        crate::ui::plural(plan.steps.len(), "step"),
        crate::ui::plural(topics, "topic"),
        plan.steps.len() - topics,
        destructive
    );
}
