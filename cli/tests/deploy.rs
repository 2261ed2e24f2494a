//! `igloo deploy --target k8s`: the manifests pass `kubernetes-validate --strict` (PyPI, the
//! Kubernetes API schemas, offline) and follow the platform's conventions: a Deployment per
//! role with probes on /health and /ready, resources and a preStop pause; Services and HPAs
//! for the HTTP roles; a PodDisruptionBudget per role; the migration Job; secrets referenced,
//! never inlined; `app.kubernetes.io/*` labels; a kustomization listing what exists.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod support;
use support::*;

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn k8s_manifests_validate_strictly_and_follow_conventions() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project_from(tmp.path(), "ts"); // a project with a transform
    let ports = Ports::free();
    let out = igloo(&root, &ports)
        .args(["deploy", "--target", "k8s", "--out", "deploy/k8s"])
        .env("IGLOO_IMAGE", "registry.example.com/devapp:1.0")
        .env("IGLOO_CLICKHOUSE_PASSWORD", "s3cret-do-not-write")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = root.join("deploy/k8s");

    let manifests: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !["kustomization.yaml", "igloo.yaml"].contains(&p.file_name().unwrap().to_str().unwrap())
        })
        .collect();
    assert_eq!(manifests.len(), 13, "{manifests:?}");
    let python = std::env::var("IGLOO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let validate =
        Command::new(python).args(["-m", "kubernetes_validate", "--strict"]).args(&manifests).output().unwrap();
    let report = String::from_utf8_lossy(&validate.stdout).to_string() + &String::from_utf8_lossy(&validate.stderr);
    assert!(validate.status.success(), "{report}");
    assert_eq!(report.matches(" passed for resource ").count(), 13, "{report}");

    for role in ["ingest", "query", "writer", "transform"] {
        let d = yaml(&dir.join(format!("deployment-{role}.yaml")));
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/component"], role);
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/instance"], "devapp");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "registry.example.com/devapp:1.0");
        assert_eq!(c["args"][2], role, "{c}");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
        assert!(c["resources"]["requests"]["memory"].is_string());
        assert_eq!(c["lifecycle"]["preStop"]["exec"]["command"][0], "sleep");
        let secret = &c["env"][1]["valueFrom"]["secretKeyRef"];
        assert_eq!(
            (secret["name"].as_str(), secret["key"].as_str()),
            (Some("devapp-secrets"), Some("clickhouse-password"))
        );
        let grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(grace > 25, "above igloo serve's own stop bound");
        assert!(dir.join(format!("pdb-{role}.yaml")).exists());
    }
    // Writer and transform replicas share partitions through consumer groups: rolling updates.
    for role in ["writer", "transform"] {
        let d = yaml(&dir.join(format!("deployment-{role}.yaml")));
        assert_eq!(d["spec"]["replicas"], 2, "{role}");
        assert!(d["spec"]["strategy"].is_null(), "{role}");
    }
    for role in ["ingest", "query"] {
        assert_eq!(
            yaml(&dir.join(format!("hpa-{role}.yaml")))["spec"]["scaleTargetRef"]["name"],
            format!("devapp-{role}")
        );
        assert!(dir.join(format!("service-{role}.yaml")).exists());
    }
    assert!(!dir.join("hpa-writer.yaml").exists() && !dir.join("service-writer.yaml").exists());
    let job = yaml(&dir.join("migrate-job.yaml"));
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["args"][0], "migrate");

    // The kustomization lists exactly the files written (the Job is applied first, apart).
    let k = yaml(&dir.join("kustomization.yaml"));
    let listed: Vec<&str> = k["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(listed.len(), 12);
    assert!(listed.iter().all(|f| dir.join(f).exists()), "{listed:?}");
    assert_eq!(k["configMapGenerator"][0]["files"][0], "igloo.yaml");
    // Secrets are referenced, never written.
    for f in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains("s3cret-do-not-write"));
    }
}
