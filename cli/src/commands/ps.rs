//! `igloo ps`: the engines of this project's running `igloo dev`.

use std::path::Path;
use std::process::ExitCode;

use igloo_server::config::Project;

use crate::dev::state;
use crate::infra::process::alive;
use crate::ui::print_table;

/// Show the engines of the running `igloo dev`
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  igloo ps\n  igloo ps --json")]
pub struct Args {
    /// Print the state as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let Some(s) = state::running(&project.root) else {
        println!("igloo dev is not running in {}", project.root.display());
        return Ok(ExitCode::FAILURE);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("igloo dev (pid {}, {} mode)", s.pid, s.mode);
    let rows: Vec<Vec<String>> = s
        .engines
        .iter()
        .map(|e| {
            let (pid, status) = match e.pid {
                Some(p) if alive(p) => (p.to_string(), "running"),
                Some(p) => (p.to_string(), "exited"),
                None => ("-".into(), s.mode.as_str()),
            };
            vec![e.name.clone(), pid, status.to_string(), e.address.clone()]
        })
        .collect();
    print_table(&["ENGINE", "PID", "STATUS", "ADDRESS"], &rows);
    Ok(ExitCode::SUCCESS)
}
