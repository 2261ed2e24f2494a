//! `igloo deploy`: the files that take a project to production. `--target k8s` writes
//! Kubernetes manifests (a Kustomize base) into `--out`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use igloo_server::config::{Project, FILE_NAME};

use crate::deploy::{write_k8s, K8sInput};

/// Write deployment files for this project (Kubernetes manifests)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  igloo deploy --target k8s --out deploy/k8s
  IGLOO_IMAGE=registry.example.com/shop:1.4 igloo deploy --target k8s --out deploy/k8s
  kubectl apply -f deploy/k8s/migrate-job.yaml && kubectl apply -k deploy/k8s")]
pub struct Args {
    /// What to write: `k8s` (Kubernetes manifests, Kustomize layout).
    #[arg(long, value_parser = ["k8s"])]
    pub target: String,
    /// The directory to write into (created; existing files of the same names are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The project's image (default: igloo-<project>:latest, as `igloo build` tags it).
    #[arg(long, env = "IGLOO_IMAGE")]
    pub image: Option<String>,
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let c = &project.config;
    let checked = crate::project_check::check_project(&project, None)?;
    checked.ensure_valid("the schema has errors; fix them before deploying")?;
    let transforms = !igloo_server::transform::discover(&project.root.join("transforms"), &checked.ir).0.is_empty();
    let input = K8sInput {
        project: c.name.clone(),
        image: args.image.unwrap_or_else(|| format!("igloo-{}:latest", crate::deploy::dns_label(&c.name))),
        clickhouse_url: c.clickhouse.url.clone().unwrap_or_else(|| "http://clickhouse:8123".into()),
        bootstrap: c.broker.bootstrap_servers.clone().unwrap_or_else(|| "redpanda:9092".into()),
        transforms,
    };
    let yaml = std::fs::read_to_string(project.root.join(FILE_NAME)).context("cannot read igloo.yaml")?;
    let out = cwd.join(&args.out);
    let written = write_k8s(&input, &yaml, &out)?;
    for path in &written {
        println!("  wrote {}", path.strip_prefix(cwd).unwrap_or(path).display());
    }
    println!(
        "✓ Kubernetes manifests for {} in {} (image {}); see its README.md",
        c.name,
        args.out.display(),
        input.image
    );
    Ok(ExitCode::SUCCESS)
}
