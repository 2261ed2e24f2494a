//! `igloo logs`: the native engines' log files, optionally followed.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use igloo_server::config::Project;

use crate::dev::state::igloo_dir;
use crate::infra::process::tail;

/// Show the engines' logs
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo logs                   # the last lines of every engine's log\n  igloo logs clickhouse -n 100\n  igloo logs broker -f         # follow; Ctrl-C to stop"
)]
pub struct Args {
    /// Which engine (default: all).
    #[arg(value_parser = ["clickhouse", "broker"])]
    pub engine: Option<String>,
    /// How many lines to show.
    #[arg(short = 'n', long, default_value_t = 40)]
    pub lines: usize,
    /// Keep printing new lines as they are written.
    #[arg(short, long)]
    pub follow: bool,
}

fn log_files(root: &Path) -> Vec<(&'static str, PathBuf)> {
    let dir = igloo_dir(root);
    vec![
        ("clickhouse", dir.join("clickhouse/log/clickhouse-server.log")),
        ("clickhouse", dir.join("clickhouse/log/stdout.log")),
        ("broker", dir.join("broker/log/broker.log")),
    ]
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let files: Vec<(&str, PathBuf)> = log_files(&project.root)
        .into_iter()
        .filter(|(e, p)| args.engine.as_deref().is_none_or(|w| w == *e) && p.is_file())
        .collect();
    if files.is_empty() {
        bail!(
            "no engine logs in {} yet; they appear once `igloo dev` has started native engines",
            igloo_dir(&project.root).display()
        );
    }
    for (engine, path) in &files {
        println!("==> {engine}: {} <==", path.display());
        println!("{}", tail(path, args.lines));
    }
    if args.follow {
        follow(&files)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what is appended to the files, until interrupted.
fn follow(files: &[(&str, PathBuf)]) -> anyhow::Result<()> {
    let mut offsets: Vec<u64> = files.iter().map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len())).collect();
    loop {
        for ((engine, path), offset) in files.iter().zip(offsets.iter_mut()) {
            let Ok(mut f) = std::fs::File::open(path) else { continue };
            let len = f.metadata()?.len();
            if len < *offset {
                *offset = 0; // rotated
            }
            if len > *offset {
                f.seek(SeekFrom::Start(*offset))?;
                let mut buf = String::new();
                f.read_to_string(&mut buf)?;
                for line in buf.lines() {
                    println!("{engine}: {line}");
                }
                *offset = len;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
