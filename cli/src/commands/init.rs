//! `igloo init`: scaffolds a project from a template. Prompts for what was not given when a
//! terminal is attached; `--yes` or no terminal takes the defaults, for scripts and CI.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use dialoguer::{Input, Select};
use igloo_server::config::valid_project_name;

use crate::templates::{self, Template, TemplateVars};

const DEFAULT_NAME: &str = "igloo-app";

/// Create a new igloo project
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo init shop --template timeseries   # ./shop, the reference time-series model\n  igloo init shop --template python --yes\n  igloo init .                            # the current directory, named after it"
)]
pub struct Args {
    /// Directory to create the project in; its last component is the project name.
    /// Asked for when omitted on a terminal; `igloo-app` otherwise.
    pub path: Option<PathBuf>,
    /// Template to start from. Asked for when omitted on a terminal; `ts` otherwise.
    #[arg(short, long, value_enum)]
    pub template: Option<Template>,
    /// Project name, when it should differ from the directory name.
    #[arg(long)]
    pub name: Option<String>,
    /// Language of transforms and SDK for the timeseries template (ts or python).
    #[arg(long, value_parser = ["ts", "python"], default_value = "ts")]
    pub language: String,
    /// Never prompt: take defaults for everything not given.
    #[arg(short, long)]
    pub yes: bool,
    /// Write into a non-empty directory (files of the same name are overwritten).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let interactive = !args.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let path = match (&args.path, interactive) {
        (Some(p), _) => p.clone(),
        (None, true) => PathBuf::from(
            Input::<String>::new()
                .with_prompt("Project directory")
                .default(DEFAULT_NAME.into())
                .validate_with(|p: &String| match Path::new(p).file_name().and_then(|n| n.to_str()) {
                    Some(n) if valid_project_name(n) => Ok(()),
                    _ => Err("the last part of the path names the project: letters, digits, `-` and `_`, starting with a letter"),
                })
                .interact_text()?,
        ),
        (None, false) => PathBuf::from(DEFAULT_NAME),
    };
    let dest = cwd.join(&path);
    let name = match &args.name {
        Some(n) => n.clone(),
        None => dir_name(&dest).context("cannot tell the project name from the path; pass --name")?,
    };
    if !valid_project_name(&name) {
        bail!("`{name}` is not a valid project name: use letters, digits, `-` and `_`, starting with a letter (or pass --name)");
    }
    let template = match (args.template, interactive) {
        (Some(t), _) => t,
        (None, true) => {
            let items: Vec<String> =
                Template::ALL.iter().map(|t| format!("{:<10} {}", t.dir_name(), t.title())).collect();
            Template::ALL[Select::new().with_prompt("Template").items(&items).default(0).interact()?]
        }
        (None, false) => Template::Ts,
    };
    check_destination(&dest, args.force)?;
    let language = match template {
        Template::Ts => "ts",
        Template::Python => "python",
        Template::Timeseries => {
            if args.language == "python" {
                "python"
            } else {
                "ts"
            }
        }
    };
    let vars = TemplateVars {
        database: name.replace('-', "_"),
        module: name.replace('-', "_"),
        name: name.clone(),
        language,
        template_title: template.title(),
        timeseries: template == Template::Timeseries,
    };
    let mut written = templates::write(template, &vars, &dest)?;
    // The SDK module now, so transforms and their tests can import its types before `igloo dev`.
    let project = igloo_server::config::Project::discover(&dest)?;
    let checked = crate::project_check::check_project(&project, None)?;
    if !checked.diags.has_errors() {
        for path in crate::sdk::write_missing(&project, &checked.ir, &checked.apis)? {
            written.push(path.strip_prefix(&project.root).unwrap_or(&path).to_path_buf());
        }
    }
    println!("Created {} project `{name}` in {}:", template.title(), dest.display());
    for file in &written {
        println!("  {}", file.display());
    }
    println!("\nNext:\n  cd {}\n  igloo check\n  igloo test\n  igloo dev", path.display());
    Ok(ExitCode::SUCCESS)
}

fn dir_name(dest: &Path) -> Option<String> {
    let absolute = if dest.ends_with(".") { dest.parent()?.to_path_buf() } else { dest.to_path_buf() };
    let canonical = absolute.canonicalize().unwrap_or(absolute);
    canonical.file_name()?.to_str().map(str::to_string)
}

fn check_destination(dest: &Path, force: bool) -> anyhow::Result<()> {
    if dest.is_file() {
        bail!("{} is a file, not a directory", dest.display());
    }
    let non_empty = dest.is_dir()
        && std::fs::read_dir(dest).with_context(|| format!("cannot read {}", dest.display()))?.next().is_some();
    if non_empty && !force {
        bail!("{} is not empty; choose another directory, or pass --force to write the template into it (files of the same name are overwritten)", dest.display());
    }
    Ok(())
}
