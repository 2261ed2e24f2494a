//! The `igloo` binary: parses arguments, sets up logging, and dispatches. All work happens in
//! the library.

use std::process::ExitCode;

use clap::Parser;
use igloo_cli::commands::{self, Cli, Command, LogFormat};

/// mimalloc instead of glibc's malloc: the server allocates per request and per row, and glibc
/// spent ~17% of its CPU there under single-event load (BENCHMARKS.md, issue 20).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` asks for them.
/// mimalloc advises huge pages for its arenas, and the kernel then zeroes a whole 2 MiB page
/// on the first touch of any fresh or purged part of it: 7% of igloo's CPU under batched ingest
/// (BENCHMARKS.md, issue 20). The engines `igloo dev` starts inherit the setting; ClickHouse's
/// own advice is to run without transparent huge pages too.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes integers and only sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

fn main() -> ExitCode {
    without_transparent_huge_pages();
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
