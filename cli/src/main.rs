//! The `igloo` binary: parses arguments, sets up logging, and dispatches. All work happens in
//! the library.

use std::process::ExitCode;

use clap::Parser;
use igloo_cli::commands::{self, Cli, Command, LogFormat};

/// mimalloc instead of glibc's malloc: the server allocates per request and per row, and glibc
/// spent ~17% of its CPU there under single-event load (BENCHMARKS.md, issue 20).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(name) = &cli.environment {
        // The one config loader reads it with the other IGLOO_* settings.
        std::env::set_var("IGLOO_ENV", name);
    }
    // A server logs what it does; interactive commands only what goes wrong.
    let level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IGLOO_LOG").unwrap_or_else(|_| level.into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
