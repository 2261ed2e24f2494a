//! `igloo test`: the project's transform tests, without engines: `transforms/*.test.ts` with
//! `node --test` (through tsx) and `transforms/test_*.py` / `*_test.py` with pytest.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use igloo_server::config::Project;

#[derive(Debug, clap::Args)]
#[command(
    about = "Run the transform tests in transforms/ (node --test, pytest), without engines",
    after_help = "Examples:\n  igloo test\n  igloo test --lang py\n\nTypeScript tests are `transforms/*.test.ts`, Python tests `transforms/test_*.py`.\nThe generated SDK module is written first if it is missing, so tests can import its types."
)]
pub struct Args {
    /// Only this language's tests.
    #[arg(long, value_enum)]
    lang: Option<crate::sdk::Lang>,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let checked = crate::project_check::check_project(&project, None)?;
    checked.ensure_valid("the project has errors; `igloo check` lists them")?;
    for path in
        crate::sdk::write_missing(&project, &checked.ir, &checked.apis).context("cannot write the SDK module")?
    {
        println!("✓ wrote {}", path.strip_prefix(&project.root).unwrap_or(&path).display());
    }
    let (ts, py) = test_files(&project.root.join("transforms"));
    let wants = |lang| args.lang.is_none_or(|l| l == lang);
    let mut failed = Vec::new();
    let mut ran = 0;
    if wants(crate::sdk::Lang::Ts) && !ts.is_empty() {
        ran += 1;
        println!("TypeScript: {}", crate::ui::plural(ts.len(), "test file"));
        if !run_node(&project, &ts)? {
            failed.push("TypeScript");
        }
    }
    if wants(crate::sdk::Lang::Py) && !py.is_empty() {
        ran += 1;
        println!("Python: {}", crate::ui::plural(py.len(), "test file"));
        if !run_pytest(&project, &py)? {
            failed.push("Python");
        }
    }
    if ran == 0 {
        println!("No transform tests: add transforms/<name>.test.ts or transforms/test_<name>.py");
        return Ok(ExitCode::SUCCESS);
    }
    if !failed.is_empty() {
        bail!("{} tests failed (see above)", failed.join(" and "));
    }
    println!("✓ transform tests passed");
    Ok(ExitCode::SUCCESS)
}

fn test_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|e| e.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    let name = |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    let ts = files.iter().filter(|p| name(p).ends_with(".test.ts")).cloned().collect();
    let py = files
        .iter()
        .filter(|p| {
            let n = name(p);
            n.ends_with(".py") && (n.starts_with("test_") || n.ends_with("_test.py"))
        })
        .cloned()
        .collect();
    (ts, py)
}

fn run_node(project: &Project, files: &[PathBuf]) -> anyhow::Result<bool> {
    let node = &project.config.transforms.node;
    let loader = crate::dev::server::tsx_dir(project)
        .and_then(|d| igloo_server::transform::worker::tsx_loader(&d))
        .ok_or_else(|| anyhow::anyhow!(igloo_server::transform::worker::WorkerError::NoTsx))?;
    let status = Command::new(node)
        .arg("--import")
        .arg(igloo_server::transform::worker::file_url(&loader))
        .args(["--test", "--test-reporter=spec"])
        .args(files)
        .current_dir(&project.root)
        .status()
        .with_context(|| format!("cannot run `{node}` (transforms.node in igloo.yaml, IGLOO_NODE)"))?;
    Ok(status.success())
}

fn run_pytest(project: &Project, files: &[PathBuf]) -> anyhow::Result<bool> {
    let python = &project.config.transforms.python;
    let has_pytest = Command::new(python)
        .args(["-c", "import pytest"])
        .output()
        .with_context(|| format!("cannot run `{python}` (transforms.python in igloo.yaml, IGLOO_PYTHON)"))?
        .status
        .success();
    if !has_pytest {
        bail!("pytest is not installed for `{python}`: `{python} -m pip install pytest`, or point IGLOO_PYTHON at a Python that has it");
    }
    let status = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .args(files)
        .current_dir(&project.root)
        .env("PYTHONPATH", &project.root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .with_context(|| format!("cannot run `{python} -m pytest`"))?;
    Ok(status.success())
}
