//! Deployment files for a project, rendered from `templates/deploy/`:
//! - `igloo deploy --target k8s`: Kubernetes manifests in a Kustomize layout. One Deployment per
//!   role (`igloo serve --role`), with probes, resources, a preStop pause and a
//!   PodDisruptionBudget; Services and autoscalers for the HTTP roles; the migration Job;
//!   igloo.yaml as a ConfigMap; secrets by reference only.
//! - `igloo deploy --target compose`: one compose file with the engines (unless external), a
//!   one-shot migration and each role as a service.
//! - `igloo build` / `igloo generate dockerfile`: the project's Dockerfile.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::templates::{render_file, TemplateError};

/// What the manifests are made from.
#[derive(Debug, Serialize)]
pub struct K8sInput {
    /// The project's name as in igloo.yaml.
    pub project: String,
    /// The image `igloo build` makes.
    pub image: String,
    pub clickhouse_url: String,
    pub bootstrap: String,
    /// Whether the project has transforms (then a transform Deployment is written).
    pub transforms: bool,
}

#[derive(Debug, Serialize)]
struct Role {
    name: &'static str,
    what: &'static str,
    replicas: u32,
    max_replicas: u32,
    /// Exactly one replica at a time.
    single: bool,
    http: bool,
    cpu_request: &'static str,
    memory: &'static str,
}

#[derive(Serialize)]
struct Vars<'a> {
    project: &'a str,
    /// A DNS-1123 label made from the project name: the prefix of every object's name.
    app: String,
    image: &'a str,
    clickhouse_url: &'a str,
    bootstrap: &'a str,
    roles: &'a [Role],
    resources: Vec<String>,
    role: Option<&'a Role>,
}

fn roles(transforms: bool) -> Vec<Role> {
    let mut roles = vec![
        Role {
            name: "ingest",
            what: "validate and produce (POST /ingest)",
            replicas: 2,
            max_replicas: 10,
            single: false,
            http: true,
            cpu_request: "250m",
            memory: "256Mi",
        },
        Role {
            name: "query",
            what: "samples, consumption APIs, exports, subscriptions, console",
            replicas: 2,
            max_replicas: 10,
            single: false,
            http: true,
            cpu_request: "250m",
            memory: "256Mi",
        },
        Role {
            name: "writer",
            what: "topics to ClickHouse, exactly once (replicas share the partitions)",
            replicas: 2,
            max_replicas: 10,
            single: false,
            http: false,
            cpu_request: "250m",
            memory: "512Mi",
        },
    ];
    if transforms {
        roles.push(Role {
            name: "transform",
            what: "the transforms' workers (replicas share the source partitions)",
            replicas: 2,
            max_replicas: 10,
            single: false,
            http: false,
            cpu_request: "250m",
            memory: "512Mi",
        });
    }
    roles
}

/// What the compose file is made from.
#[derive(Debug, Serialize)]
pub struct ComposeInput {
    pub project: String,
    /// The compose project name (`docker compose -p`).
    pub compose_name: String,
    pub image: String,
    /// Whether the engines run in the stack (else `clickhouse_url` and `bootstrap` are external).
    pub engines: bool,
    pub clickhouse_url: String,
    pub bootstrap: String,
    pub transforms: bool,
}

/// Writes `docker-compose.yml`, `env.example` and a copy of igloo.yaml into `out`.
pub fn write_compose(input: &ComposeInput, igloo_yaml: &str, out: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let mut files = Vec::new();
    for (name, template) in [("docker-compose.yml", "docker-compose.yml.hbs"), ("env.example", "env.example.hbs")] {
        files.push((name.to_string(), render_file(&format!("deploy/compose/{template}"), input)?));
    }
    write_files(out, files, igloo_yaml)
}

/// Writes `(name, text)` files and a copy of igloo.yaml into `out` (created); the paths written.
fn write_files(out: &Path, files: Vec<(String, String)>, igloo_yaml: &str) -> Result<Vec<PathBuf>, TemplateError> {
    std::fs::create_dir_all(out).map_err(|source| TemplateError::Write { path: out.into(), source })?;
    let mut written = Vec::new();
    for (name, text) in files.into_iter().chain([("igloo.yaml".to_string(), igloo_yaml.to_string())]) {
        let path = out.join(&name);
        std::fs::write(&path, text).map_err(|source| TemplateError::Write { path: path.clone(), source })?;
        written.push(path);
    }
    Ok(written)
}

/// What the project's Dockerfile is made from.
#[derive(Debug, Serialize)]
pub struct DockerfileInput {
    pub project: String,
    pub base_image: String,
    /// TypeScript transforms: Node and tsx.
    pub node: bool,
    /// Python transforms: Python 3.
    pub python: bool,
}

pub fn render_dockerfile(input: &DockerfileInput) -> Result<String, TemplateError> {
    render_file("deploy/Dockerfile.hbs", input)
}

/// The default image of a project, as `igloo build` tags it.
pub fn default_image(project: &str) -> String {
    format!("igloo-{}:latest", dns_label(project))
}

/// `Shop_2` → `shop-2`.
pub fn dns_label(name: &str) -> String {
    let s: String =
        name.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    s.trim_matches('-').chars().take(50).collect()
}

/// Writes the manifests into `out` (with a copy of `igloo_yaml`); returns the written files.
pub fn write_k8s(input: &K8sInput, igloo_yaml: &str, out: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let roles = roles(input.transforms);
    let mut files: Vec<(String, String, Option<&Role>)> =
        vec![("migrate-job.yaml".into(), "migrate-job.yaml.hbs".into(), None)];
    for r in &roles {
        files.push((format!("deployment-{}.yaml", r.name), "deployment.yaml.hbs".into(), Some(r)));
        files.push((format!("pdb-{}.yaml", r.name), "pdb.yaml.hbs".into(), Some(r)));
        if r.http {
            files.push((format!("service-{}.yaml", r.name), "service.yaml.hbs".into(), Some(r)));
            files.push((format!("hpa-{}.yaml", r.name), "hpa.yaml.hbs".into(), Some(r)));
        }
    }
    // The Job is applied first (see README.md), not by the kustomization.
    let resources: Vec<String> = files.iter().skip(1).map(|(f, _, _)| f.clone()).collect();
    let vars = |role| Vars {
        project: &input.project,
        app: dns_label(&input.project),
        image: &input.image,
        clickhouse_url: &input.clickhouse_url,
        bootstrap: &input.bootstrap,
        roles: &roles,
        resources: resources.clone(),
        role,
    };
    files.push(("kustomization.yaml".into(), "kustomization.yaml.hbs".into(), None));
    files.push(("README.md".into(), "README.md.hbs".into(), None));
    let mut rendered = Vec::new();
    for (name, template, role) in files {
        rendered.push((name, render_file(&format!("deploy/k8s/{template}"), &vars(role))?));
    }
    write_files(out, rendered, igloo_yaml)
}

#[cfg(test)]
mod tests {
    use super::dns_label;

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(dns_label("Shop_2"), "shop-2");
        assert_eq!(dns_label("_x_"), "x");
    }
}
