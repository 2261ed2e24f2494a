//! `igloo clean`: delete the local engines' data (`.igloo/`), after asking.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use igloo_server::config::Project;

use crate::dev::state::{self, igloo_dir};
use crate::ui;

/// Delete the local engines' data and logs (.igloo/)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  igloo clean          # asks first\n  igloo clean --yes    # for scripts")]
pub struct Args {
    /// Delete without asking.
    #[arg(short, long)]
    pub yes: bool,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let dir = igloo_dir(&project.root);
    if let Some(s) = state::running(&project.root) {
        bail!("igloo dev is running (pid {}); stop it with `igloo down` first", s.pid);
    }
    if !dir.exists() {
        println!("Nothing to clean: {} does not exist", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let size = dir_size(&dir);
    let question =
        format!("Delete {} ({:.1} MB: all local topics, tables and logs)?", dir.display(), size as f64 / 1e6);
    let confirmed = if args.yes {
        true
    } else if ui::interactive() {
        dialoguer::Confirm::new().with_prompt(question).default(false).interact()?
    } else {
        bail!("{question} Pass --yes to confirm when not on a terminal");
    };
    if !confirmed {
        println!("Kept {}", dir.display());
        return Ok(ExitCode::FAILURE);
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot delete {}", dir.display()))?;
    println!("Deleted {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
