//! The command tree. Each command is a module with an `Args` struct and a `run` function.

mod build;
mod check;
mod clean;
mod deploy;
mod dev;
mod down;
mod generate;
mod import;
mod init;
mod inspect;
mod keys;
mod logs;
mod migrate;
pub(crate) mod plan;
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
    after_help = "Examples:\n  igloo init shop --template timeseries\n  cd shop && igloo check\n  igloo plan --offline --target 18.16\n  igloo dev\n  igloo migrate --dry-run                 # against igloo.yaml's (or IGLOO_*) engines"
)]
pub struct Cli {
    /// Run as if started in this directory.
    #[arg(short = 'C', long = "project-dir", global = true, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Logs as text (for people) or JSON lines (for log shippers), on stderr. The level is
    /// IGLOO_LOG (e.g. `info`, `igloo_server=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "IGLOO_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Use igloo.yaml's `environments.<NAME>` settings over the top-level ones (IGLOO_ENV).
    #[arg(long = "env", global = true, value_name = "NAME")]
    pub environment: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    Check(check::Args),
    Plan(plan::Args),
    Migrate(migrate::Args),
    Deploy(deploy::Args),
    Build(build::Args),
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
    Import(import::Args),
    Keys(keys::Args),
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
        Command::Migrate(args) => migrate::run(args, &cwd),
        Command::Deploy(args) => deploy::run(args, &cwd),
        Command::Build(args) => build::run(args, &cwd),
        Command::Generate(args) => generate::run(args, &cwd),
        Command::Import(args) => import::run(args, &cwd),
        Command::Keys(args) => keys::run(args, &cwd),
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
