//! `igloo check`: diagnostics for every schema file; exit 1 on errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use igloo_schemas::Dialect;

/// Check the schema files and print every problem with file:line:col and a hint
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo check                      # the project's schema/ directory\n  igloo check --target 18.16       # also check what ClickHouse 18.16 lacks\n  igloo check --json | jq .ir      # the IR, for tools\n  igloo check other/schema.prisma  # explicit files or directories, no project needed"
)]
pub struct Args {
    /// Schema files or directories (default: the project's schema/ directory).
    pub paths: Vec<PathBuf>,
    /// ClickHouse version to check against: `current` or e.g. `18.16` (default: igloo.yaml's
    /// clickhouse.target).
    #[arg(long, value_name = "VERSION")]
    pub target: Option<Dialect>,
    /// Print `{"ir": …, "diagnostics": […]}` as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let (_, checked) = crate::project_check::load_and_check(cwd, &args.paths, args.target)?;
    if args.json {
        let out = serde_json::json!({
            "target": checked.target.to_string(),
            "ir": checked.ir,
            "diagnostics": checked.diags.located(&checked.files),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    let failed = crate::project_check::report(&checked);
    if !checked.apis.is_empty() {
        eprintln!(
            "  {} in apis/, {} in views/",
            crate::ui::plural(checked.apis.len(), "API"),
            crate::ui::plural(checked.ir.views.len(), "view")
        );
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
