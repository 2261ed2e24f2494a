//! `igloo deploy`: the files that take a project to production, written into `--out`.
//! `--target k8s`: Kubernetes manifests (a Kustomize base). `--target compose`: one compose
//! file for a Docker host, which `--up` starts and `--down` stops.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use igloo_server::config::{Project, FILE_NAME};

use crate::deploy::{default_image, dns_label, write_compose, write_k8s, ComposeInput, K8sInput};
use crate::dev::engines::{clickhouse_nofile, NOFILE_VAR};
use crate::infra::process::last_lines;

/// Write deployment files for this project (Kubernetes manifests or a compose stack)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  igloo deploy --target k8s --out deploy/k8s
  IGLOO_IMAGE=registry.example.com/shop:1.4 igloo deploy --target k8s --out deploy/k8s
  kubectl apply -f deploy/k8s/migrate-job.yaml && kubectl apply -k deploy/k8s
  igloo build && igloo deploy --target compose --out deploy/compose --up
  igloo deploy --target compose --out deploy/compose --down")]
pub struct Args {
    /// What to write: `k8s` (Kubernetes manifests, Kustomize layout) or `compose` (one Docker host).
    #[arg(long, value_parser = ["k8s", "compose"])]
    pub target: String,
    /// The directory to write into (created; existing files of the same names are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The project's image (default: igloo-<project>:latest, as `igloo build` tags it).
    #[arg(long, env = "IGLOO_IMAGE")]
    pub image: Option<String>,
    /// compose: then start the stack and wait until every service is healthy.
    #[arg(long, conflicts_with = "down")]
    pub up: bool,
    /// compose: stop and remove the stack's containers (its data volumes are kept).
    #[arg(long)]
    pub down: bool,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    if (args.up || args.down) && args.target != "compose" {
        bail!("--up and --down start and stop a compose stack; use them with --target compose");
    }
    let c = &project.config;
    let out = cwd.join(&args.out);
    let image = args.image.clone().unwrap_or_else(|| default_image(&c.name));
    let compose_name = format!("igloo-{}-deploy", dns_label(&c.name));
    if args.down {
        compose(&out, &compose_name, &["down", "--remove-orphans"])?;
        println!("✓ stopped {compose_name} (its volumes are kept; `docker compose -p {compose_name} down -v` deletes the data)");
        return Ok(ExitCode::SUCCESS);
    }
    let checked = crate::project_check::check_project(&project, None)?;
    checked.ensure_valid("the schema has errors; fix them before deploying")?;
    let transforms = !igloo_server::transform::discover(&project.root.join("transforms"), &checked.ir).0.is_empty();
    let yaml = std::fs::read_to_string(project.root.join(FILE_NAME)).context("cannot read igloo.yaml")?;
    let written = if args.target == "k8s" {
        let input = K8sInput {
            project: c.name.clone(),
            image: image.clone(),
            clickhouse_url: c.clickhouse.url.clone().unwrap_or_else(|| "http://clickhouse:8123".into()),
            bootstrap: c.broker.bootstrap_servers.clone().unwrap_or_else(|| "redpanda:9092".into()),
            transforms,
        };
        write_k8s(&input, &yaml, &out)?
    } else {
        // Engines configured in igloo.yaml are used as they are; otherwise the stack runs its own.
        let external = c.clickhouse.url.is_some() && c.broker.bootstrap_servers.is_some();
        let input = ComposeInput {
            project: c.name.clone(),
            compose_name: compose_name.clone(),
            image: image.clone(),
            engines: !external,
            clickhouse_url: c.clickhouse.url.clone().unwrap_or_else(|| "http://clickhouse:8123".into()),
            bootstrap: c.broker.bootstrap_servers.clone().unwrap_or_else(|| "redpanda:9092".into()),
            transforms,
        };
        write_compose(&input, &yaml, &out)?
    };
    for path in &written {
        println!("  wrote {}", path.strip_prefix(cwd).unwrap_or(path).display());
    }
    if args.target == "k8s" {
        println!("✓ Kubernetes manifests for {} in {} (image {image}); see its README.md", c.name, args.out.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!("✓ compose stack for {} in {} (image {image})", c.name, args.out.display());
    if args.up {
        let pb = crate::ui::spinner("Starting the stack (engines, migrate, then the roles) and waiting until healthy");
        let started = std::time::Instant::now();
        compose(&out, &compose_name, &["up", "-d", "--wait", "--remove-orphans"])
            .inspect_err(|_| pb.finish_and_clear())?;
        crate::ui::finish(pb, format!("✓ {compose_name} is up ({:.1} s)", started.elapsed().as_secs_f64()));
        println!("  ingest on http://127.0.0.1:4000 and :4001, query on http://127.0.0.1:4002 (unless IGLOO_INGEST_PORTS / IGLOO_QUERY_PORT say otherwise)");
    } else {
        println!("  start it: igloo deploy --target compose --out {} --up", args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `docker compose -f <out>/docker-compose.yml -p <name> <args>`, its output shown on failure.
fn compose(out: &Path, name: &str, args: &[&str]) -> anyhow::Result<()> {
    let file = out.join("docker-compose.yml");
    if !file.is_file() {
        bail!(
            "{} does not exist; write it with `igloo deploy --target compose --out {}`",
            file.display(),
            out.display()
        );
    }
    let mut cmd = Command::new("docker");
    if std::env::var_os(NOFILE_VAR).is_none() {
        cmd.env(NOFILE_VAR, clickhouse_nofile().to_string());
    }
    let output = cmd
        .arg("compose")
        .arg("-f")
        .arg(&file)
        .arg("-p")
        .arg(name)
        .args(args)
        .output()
        .context("cannot run `docker compose`; is Docker installed?")?;
    if !output.status.success() {
        bail!(
            "docker compose {} failed:\n{}\n(`docker compose -p {name} logs` shows the services' logs)",
            args.join(" "),
            last_lines(&String::from_utf8_lossy(&output.stderr), 15)
        );
    }
    Ok(())
}
