//! `igloo dev`: start the engines, create topics and tables from the schema, and keep them in
//! step with every save until Ctrl-C.

use std::path::Path;
use std::process::ExitCode;

use igloo_server::config::InfraMode;

use crate::dev::watch::{self, DevOptions};

/// Run the engines and keep them in step with the schema as you edit it
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo dev                        # native engines here, Docker where a Docker engine answers\n  igloo dev --allow-destructive    # also apply drops, type changes and table rebuilds\n  igloo dev --mode external        # use clickhouse.url / broker.bootstrap_servers from igloo.yaml\n\nAdditive changes (new model, new field) apply on save. Drops, type changes and sorting-key\nchanges are shown and applied only with consent: a yes on a terminal, or --allow-destructive.\nEngine data lives in .igloo/ and is reused by the next `igloo dev`; `igloo clean` deletes it."
)]
pub struct Args {
    /// Apply steps that can lose data or rebuild tables without asking.
    #[arg(long)]
    pub allow_destructive: bool,
    /// Where the engines come from (default: igloo.yaml's infra.mode, else docker if a Docker
    /// engine answers, else native).
    #[arg(long, value_parser = ["native", "docker", "external"])]
    pub mode: Option<String>,
    /// Run only the engines and keep them in step with the schema; no ingest server or table
    /// writers (run those with `igloo serve`).
    #[arg(long)]
    pub no_server: bool,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let mode = args.mode.as_deref().map(|m| m.parse::<InfraMode>()).transpose().map_err(anyhow::Error::msg)?;
    watch::run(cwd, DevOptions { allow_destructive: args.allow_destructive, mode, no_server: args.no_server })?;
    Ok(ExitCode::SUCCESS)
}
