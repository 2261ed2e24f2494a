//! The command tree. Each command is a module with an `Args` struct and a `run` function.

mod check;
mod clean;
mod dev;
mod down;
mod generate;
pub use generate::project_lang;
mod init;
mod inspect;
mod logs;
mod plan;
mod ps;
mod serve;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "igloo",
    version,
    about = "Real-time data products on ClickHouse and a Kafka-API broker, from schema files",
    long_about = "igloo turns Prisma-like schema files into topics, ClickHouse tables and an ingest API.\n\nStart with `igloo init`, describe your events in schema/*.prisma, and check them with `igloo check`.",
    after_help = "Examples:\n  igloo init shop --template timeseries\n  cd shop && igloo check\n  igloo plan --offline --target 18.16\n  igloo dev"
)]
pub struct Cli {
    /// Run as if started in this directory.
    #[arg(short = 'C', long = "project-dir", global = true, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    Check(check::Args),
    Plan(plan::Args),
    Dev(dev::Args),
    Ps(ps::Args),
    Logs(logs::Args),
    Down(down::Args),
    Clean(clean::Args),
    Serve(serve::Args),
    Ls(inspect::LsArgs),
    Peek(inspect::PeekArgs),
    Query(inspect::QueryArgs),
    Generate(generate::Args),
    Test(test::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cwd = match cli.project_dir {
        Some(dir) => dir,
        None => std::env::current_dir()?,
    };
    match cli.command {
        Command::Init(args) => init::run(args, &cwd),
        Command::Check(args) => check::run(args, &cwd),
        Command::Plan(args) => plan::run(args, &cwd),
        Command::Generate(args) => generate::run(args, &cwd),
        Command::Dev(args) => dev::run(args, &cwd),
        Command::Ps(args) => ps::run(args, &cwd),
        Command::Logs(args) => logs::run(args, &cwd),
        Command::Down(args) => down::run(args, &cwd),
        Command::Clean(args) => clean::run(args, &cwd),
        Command::Serve(args) => serve::run(args, &cwd),
        Command::Ls(args) => inspect::ls(args, &cwd),
        Command::Peek(args) => inspect::peek(args, &cwd),
        Command::Query(args) => inspect::query(args, &cwd),
        Command::Test(args) => test::run(args, &cwd),
    }
}

/// A checked schema: the files read, the IR and every diagnostic.
pub(crate) struct Checked {
    pub files: Vec<igloo_schemas::SourceFile>,
    pub ir: igloo_schemas::Ir,
    pub diags: igloo_schemas::Diagnostics,
    pub target: igloo_schemas::Dialect,
    /// Problems in the project's `views/*.sql` and `apis/*.sql` files.
    pub sql_errors: Vec<igloo_schemas::consumption::ApiFileError>,
    /// The valid APIs of `apis/`.
    pub apis: Vec<igloo_schemas::consumption::ConsumptionApi>,
    /// Files of `transforms/` named like transforms that cannot be (unknown model, …).
    pub transform_errors: Vec<igloo_server::transform::spec::SpecError>,
}

/// Reads the schema files (explicit `paths`, else the project's `schema/`) and checks them
/// for `target` (else the project's configured target).
pub(crate) fn load_and_check(
    cwd: &std::path::Path,
    paths: &[PathBuf],
    target: Option<igloo_schemas::Dialect>,
) -> anyhow::Result<(Option<igloo_server::config::Project>, Checked)> {
    if paths.is_empty() {
        let project = igloo_server::config::Project::discover(cwd)?;
        let checked = check_project(&project, Some(target.unwrap_or_else(|| project.config.target())))?;
        return Ok((Some(project), checked));
    }
    let files = crate::schema_files::load_paths(&paths.iter().map(|p| cwd.join(p)).collect::<Vec<_>>(), cwd)?;
    let target = target.unwrap_or(igloo_schemas::Dialect::CURRENT);
    let (ir, diags) = igloo_schemas::check_for(&files, target);
    Ok((
        None,
        Checked { files, ir, diags, target, sql_errors: Vec::new(), apis: Vec::new(), transform_errors: Vec::new() },
    ))
}

/// Reads a project's `schema/` and checks it, against `target` when given (else without the
/// version checks, shown as the project's target).
pub(crate) fn check_project(
    project: &igloo_server::config::Project,
    target: Option<igloo_schemas::Dialect>,
) -> anyhow::Result<Checked> {
    let files = crate::schema_files::load_dir(&project.schema_dir(), &project.root)?;
    let (ir, diags) = match target {
        Some(t) => igloo_schemas::check_for(&files, t),
        None => igloo_schemas::check(&files),
    };
    let (mut ir, diags) = (ir, diags);
    let mut sql_errors = Vec::new();
    if !diags.has_errors() {
        sql_errors = crate::sql_files::attach_views(&project.root, &mut ir);
    }
    let (apis, api_errors) = crate::sql_files::load(&project.root);
    sql_errors.extend(api_errors);
    let transform_errors = if diags.has_errors() {
        Vec::new()
    } else {
        igloo_server::transform::discover(&project.root.join("transforms"), &ir).1
    };
    let target = target.unwrap_or_else(|| project.config.target());
    Ok(Checked { files, ir, diags, target, sql_errors, apis, transform_errors })
}

impl Checked {
    /// Prints the diagnostics and fails with `message` when the schema has errors.
    pub(crate) fn ensure_valid(&self, message: &str) -> anyhow::Result<()> {
        if self.diags.has_errors() || !self.sql_errors.is_empty() || !self.transform_errors.is_empty() {
            eprintln!("{}", self.diags.render(&self.files));
            for e in &self.sql_errors {
                eprintln!("error: {e}");
            }
            for e in &self.transform_errors {
                eprintln!("error: {e}");
            }
            anyhow::bail!("{message}");
        }
        Ok(())
    }
}

/// Prints diagnostics to stderr and a one-line summary; true when there were errors.
pub(crate) fn report(checked: &Checked) -> bool {
    let d = &checked.diags;
    if !d.is_empty() {
        eprintln!("{}", d.render(&checked.files));
    }
    for e in &checked.sql_errors {
        eprintln!("error: {e}");
    }
    for e in &checked.transform_errors {
        eprintln!("error: {e}");
    }
    let (errors, warnings) =
        (d.errors().len() + checked.sql_errors.len() + checked.transform_errors.len(), d.warnings().len());
    if errors > 0 {
        eprintln!("✗ {} in {}", counts(errors, warnings), plural(checked.files.len(), "file"));
    } else {
        eprintln!(
            "✓ {}, {} in {} (ClickHouse {}){}",
            plural(checked.ir.models.len(), "model"),
            plural(checked.ir.enums.len(), "enum"),
            plural(checked.files.len(), "file"),
            checked.target,
            if warnings > 0 { format!(", {}", plural(warnings, "warning")) } else { String::new() }
        );
    }
    errors > 0
}

fn counts(errors: usize, warnings: usize) -> String {
    if warnings == 0 {
        plural(errors, "error")
    } else {
        format!("{}, {}", plural(errors, "error"), plural(warnings, "warning"))
    }
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
