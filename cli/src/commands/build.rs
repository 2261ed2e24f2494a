//! `igloo build`: the project's OCI image, from the Dockerfile igloo writes (or the project's
//! own `Dockerfile`, from `igloo generate dockerfile`). The build context is staged in
//! `.igloo/build/`: this igloo binary, the project's files, and tsx when transforms need it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context};
use igloo_server::config::Project;

use crate::deploy::{default_image, render_dockerfile, DockerfileInput};

/// The base image when neither --base-image nor IGLOO_BASE_IMAGE says otherwise.
pub const DEFAULT_BASE_IMAGE: &str = "debian:bookworm-slim";

/// Build the project's image (igloo, the project, the runtimes its transforms need)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  igloo build                                  # igloo-<project>:latest
  igloo build --tag registry.example.com/shop:1.4
  igloo build --base-image debian:bookworm     # any Debian bookworm (or newer) based image

The image runs `igloo serve` as a non-root user, with a healthcheck on /health. To change the
Dockerfile, write it into the project with `igloo generate dockerfile`; `igloo build` then uses it.")]
pub struct Args {
    /// The image's name and tag (default: igloo-<project>:latest, what `igloo deploy` expects).
    #[arg(long, short = 't', env = "IGLOO_IMAGE")]
    pub tag: Option<String>,
    /// The image to build on: Debian bookworm or newer (igloo's binary needs its glibc).
    #[arg(long, env = "IGLOO_BASE_IMAGE", default_value = DEFAULT_BASE_IMAGE)]
    pub base_image: String,
}

/// Which runtimes the project's transforms need: (Node, Python).
pub fn transform_runtimes(root: &Path) -> (bool, bool) {
    let files: Vec<PathBuf> =
        std::fs::read_dir(root.join("transforms")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    let is = |ext: &str| {
        files.iter().any(|f| {
            f.extension().is_some_and(|e| e == ext)
                && !f.file_name().is_some_and(|n| n.to_string_lossy().contains(".test."))
        })
    };
    (is("ts"), is("py"))
}

pub fn dockerfile(project: &Project, base_image: &str) -> anyhow::Result<String> {
    let (node, python) = transform_runtimes(&project.root);
    let input =
        DockerfileInput { project: project.config.name.clone(), base_image: base_image.to_string(), node, python };
    Ok(render_dockerfile(&input)?)
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let checked = crate::project_check::check_project(&project, None)?;
    checked.ensure_valid("the project has errors; `igloo check` lists them")?;
    let tag = args.tag.unwrap_or_else(|| default_image(&project.config.name));
    let context = project.root.join(".igloo").join("build");
    let _ = std::fs::remove_dir_all(&context);
    std::fs::create_dir_all(&context).with_context(|| format!("cannot create {}", context.display()))?;

    let exe = std::env::current_exe().context("cannot find the igloo binary")?;
    std::fs::copy(&exe, context.join("igloo")).with_context(|| format!("cannot copy {}", exe.display()))?;
    copy_tree(&project.root, &context.join("project"), &[".igloo", ".git", "node_modules", "target"])?;
    let (node, _) = transform_runtimes(&project.root);
    if node {
        let tsx = crate::dev::server::tsx_dir(&project).context(
            "the project has TypeScript transforms but no tsx: `npm install tsx` in the project (or set transforms.tsx)",
        )?;
        // tsx and its dependencies, which are its siblings in node_modules.
        let modules = tsx.parent().context("tsx has no parent directory")?;
        for package in dependency_closure(modules, "tsx") {
            copy_tree(&modules.join(&package), &context.join("tsx").join(&package), &[])?;
        }
    }
    let own = project.root.join("Dockerfile");
    let dockerfile = if own.is_file() {
        println!("  using the project's Dockerfile");
        own
    } else {
        let path = context.join("Dockerfile");
        std::fs::write(&path, dockerfile(&project, &args.base_image)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        path
    };

    let pb = crate::ui::spinner(format!("Building {tag} on {}", args.base_image));
    let started = Instant::now();
    let output = Command::new("docker")
        .args(["build", "--quiet", "--tag", &tag, "--file"])
        .arg(&dockerfile)
        .arg(&context)
        .output()
        .context("cannot run `docker build`; is Docker installed?")?;
    pb.finish_and_clear();
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let mut message = format!("docker build of {tag} failed:\n{}", crate::infra::process::last_lines(&err, 20));
        if crate::dev::engines::is_pull_failure(&err) {
            message.push_str(&format!("\nThe base image {} cannot be pulled here: pass --base-image (or IGLOO_BASE_IMAGE) with a Debian bookworm image this machine has.", args.base_image));
        }
        bail!(message);
    }
    let size = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", &tag])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "✓ built {tag} ({:.0} MB) in {:.1} s; run it: docker run --rm -p 127.0.0.1:4000:4000 -e IGLOO_CLICKHOUSE_URL=… -e IGLOO_BROKER_BOOTSTRAP_SERVERS=… {tag}",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `root` and every package it depends on (dependencies and the optional ones present), as
/// found in the flat `modules` directory (npm's layout); names as in `node_modules/<name>`.
fn dependency_closure(modules: &Path, root: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        let manifest = modules.join(&name).join("package.json");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        if !seen.insert(name) {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for key in ["dependencies", "optionalDependencies"] {
            if let Some(deps) = json[key].as_object() {
                todo.extend(deps.keys().filter(|d| !seen.contains(*d)).cloned());
            }
        }
    }
    seen.into_iter().collect()
}

/// Copies `from` into `to`, recursively, leaving out top-level entries named in `skip`.
fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst, &[])?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst).with_context(|| format!("cannot copy {}", src.display()))?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src)?;
            let _ = std::fs::remove_file(&dst);
            std::os::unix::fs::symlink(target, &dst)
                .with_context(|| format!("cannot copy the link {}", src.display()))?;
        }
    }
    Ok(())
}
