//! `igloo plan`: the topics and ClickHouse statements that would bring the engines in line with
//! the schema. `--offline` plans against an empty cluster for a chosen ClickHouse version.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use igloo_schemas::plan::{plan, Observed, PlanStep};
use igloo_schemas::Dialect;

/// Show the topics and ClickHouse DDL the schema needs
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo plan --offline                  # for igloo.yaml's clickhouse.target\n  igloo plan --offline --target 18.16   # as ClickHouse 18.16 needs it\n  igloo plan --offline --sql > ddl.sql  # only the SQL\n  igloo plan --offline --json"
)]
pub struct Args {
    /// Plan against an empty cluster instead of running engines.
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
    if !args.offline {
        bail!(
            "planning against running engines is not available yet; `igloo plan --offline` shows what an empty cluster needs"
        );
    }
    let (project, checked) = super::load_and_check(cwd, &args.paths, args.target)?;
    if checked.diags.has_errors() {
        super::report(&checked);
        return Ok(ExitCode::FAILURE);
    }
    let database = project.map_or_else(|| "default".to_string(), |p| p.config.database());
    let plan = plan(&checked.ir, &Observed::default(), &database, checked.target);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan.to_json())?);
    } else if args.sql {
        let statements: Vec<String> = plan.steps.iter().flat_map(|s| plan.sql(s)).collect();
        println!("{};", statements.join(";\n\n"));
    } else {
        print_plan(&plan);
    }
    if !checked.diags.is_empty() {
        eprintln!("{}", checked.diags.render(&checked.files));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(plan: &igloo_schemas::plan::Plan) {
    println!("Plan for ClickHouse {} (offline: against an empty cluster)\n", plan.dialect);
    for step in &plan.steps {
        println!("{}", step.summary(&plan.database));
        for sql in plan.sql(step) {
            for line in sql.lines() {
                println!("    {line}");
            }
        }
        println!();
    }
    let topics = plan.steps.iter().filter(|s| matches!(s, PlanStep::CreateTopic { .. })).count();
    let destructive = plan.steps.iter().filter(|s| s.is_destructive()).count();
    println!(
        "{}: {}, {} SQL, {} destructive",
        super::plural(plan.steps.len(), "step"),
        super::plural(topics, "topic"),
        plan.steps.len() - topics,
        destructive
    );
}
