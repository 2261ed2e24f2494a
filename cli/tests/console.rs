//! The dev console on real engines (ClickHouse 18.16 and tansu, through `igloo dev`): the JSON
//! it reads, and the page itself in headless Chromium (`console/console.browser.mjs`, driven by
//! playwright-core), also under `igloo serve` with auth required
//! (`console/console.auth.browser.mjs`), with screenshots saved as artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod support;
use support::*;

fn post(ports: &Ports, model: &str, body: &str) -> u16 {
    http_post(&ports.api(&format!("/ingest/{model}")), &[("Content-Type", "application/json")], body).status
}

fn overview(ports: &Ports) -> serde_json::Value {
    let (status, body) = get_json(&ports.api("/console/api/overview"));
    assert_eq!(status, 200, "{body}");
    body
}

fn model<'a>(overview: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    overview["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {overview}"))
}

#[test]
fn console_json_reflects_the_running_project() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project_from(tmp.path(), "ts");
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("transform PageView__SectionView", START);
    let url = dev.expect("Console ", START);
    assert!(url.contains(&format!("http://127.0.0.1:{}/console", ports.server)), "{url}");

    // The page and its assets come from the binary; the web components are sdk-ts's file.
    let (status, kind, page) = get(&ports.api("/console"));
    assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.contains("/console/assets/console.js") && page.contains("/console/assets/elements.js"));
    let (_, _, elements) = get(&ports.api("/console/assets/elements.js"));
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-ts/src/elements.js")).unwrap();
    assert_eq!(elements, shipped);
    assert_eq!(get(&ports.api("/console/assets/nope.js")).0, 404);

    // No dead letter yet: an empty list, not an error about a missing table.
    assert_eq!(get_json(&ports.api("/console/api/dead-letters")), (200, serde_json::json!([])));

    // The playground's example of every model is accepted as it is.
    let ov = overview(&ports);
    let ingestible: Vec<String> = ov["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["ingest"] == true)
        .map(|m| m["name"].as_str().unwrap().into())
        .collect();
    assert!(ingestible.contains(&"PageView".to_string()));
    for name in &ingestible {
        let (status, _, example) = get(&ports.api(&format!("/console/api/models/{name}/example")));
        assert_eq!(status, 200);
        assert_eq!(post(&ports, name, &example), 200, "example of {name} rejected: {example}");
    }

    // Rows, counters, rates and the transform's state follow.
    let ov = eventually(Duration::from_secs(15), "rows counted", || {
        let ov = overview(&ports);
        (model(&ov, "PageView")["rows"] == 1 && model(&ov, "SectionView")["rows"] == 1).then_some(ov)
    });
    let page_view = model(&ov, "PageView");
    assert_eq!(page_view["accepted"], 1);
    assert_eq!(page_view["topic"], "PageView");
    assert_eq!(model(&ov, "SectionView")["filled_by"]["transform"], "PageView__SectionView");
    let t = &ov["transforms"][0];
    assert_eq!(
        (t["name"].as_str(), t["running"].as_bool(), t["language"].as_str()),
        (Some("PageView__SectionView"), Some(true), Some("TypeScript"))
    );
    assert_eq!(
        (t["in"].as_u64(), t["workers_running"].as_u64(), &t["error"]),
        (Some(1), Some(1), &serde_json::Value::Null)
    );
    assert_eq!(ov["problems"], serde_json::json!([]));
    assert_eq!(ov["sdk_module"], "sdk/devapp");
    assert_eq!(page_view["sdk"]["ingest"], serde_json::json!({ "ts": "ingestPageView", "py": "ingest_page_view" }));
    // One snapshot a second: the post shows as a rate once the next one is taken.
    let hist = eventually(Duration::from_secs(5), "the ingest rate", || {
        let hist = get_json(&ports.api("/console/api/history")).1;
        let rate = hist["models"]["PageView"]["ingested"].as_array()?;
        rate.iter().any(|v| v.as_f64() > Some(0.0)).then_some(hist)
    });
    let n = hist["t"].as_array().unwrap().len();
    for series in ["ingested", "written", "lag"] {
        assert_eq!(hist["models"]["PageView"][series].as_array().unwrap().len(), n, "{series} is aligned with t");
    }

    // The topic and table views hold the record; limits are checked.
    let (_, peek) = get_json(&ports.api("/console/api/models/PageView/topic?limit=5"));
    assert_eq!(peek.as_array().unwrap().len(), 1, "{peek}");
    assert!(peek[0]["record"]["visitorId"].is_string(), "{peek}");
    let (_, rows) = get_json(&ports.api("/console/api/models/SectionView/rows"));
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let (status, body) = get_json(&ports.api("/console/api/models/PageView/rows?limit=5000"));
    assert_eq!(status, 400);
    assert_eq!(body["error"], "bad parameter `limit`: must be an integer from 1 to 1000");
    assert_eq!(get(&ports.api("/console/api/models/Nope/topic")).0, 404);

    // A broken transform file shows with its error while the previous version keeps running.
    let file = root.join("transforms/PageView__SectionView.ts");
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{good}\nexport const = ;\n")).unwrap();
    let ov = eventually(Duration::from_secs(20), "the load error", || {
        let ov = overview(&ports);
        ov["transforms"][0]["error"].is_string().then_some(ov)
    });
    assert_eq!(ov["transforms"][0]["running"], true);
    std::fs::write(&file, good).unwrap();
    eventually(Duration::from_secs(20), "the error cleared", || {
        overview(&ports)["transforms"][0]["error"].is_null().then_some(())
    });

    // A killed igloo dev leaves no transform worker behind (the kernel signals them).
    dev.child.kill().unwrap();
    dev.child.wait().unwrap();
    eventually(Duration::from_secs(10), "no orphaned worker", || orphan_workers(&root).is_empty().then_some(()));
}

/// Where playwright-core is: scripts/install-engines.sh installs it into the igloo cache.
fn node_modules() -> PathBuf {
    let cache = std::env::var_os("IGLOO_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/igloo"));
    cache.join("node/node_modules")
}

/// Runs `tests/console/<script>` in node against `url` with `env`, in headless Chromium; fails
/// with the script's report and `server`'s output unless every step passed and each of `shots`
/// is a PNG.
fn browser_run(script: &str, url: &str, env: &[(&str, &str)], server: &Dev, shots: &[&str]) {
    let chromium = std::env::var("IGLOO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = node_modules();
    assert!(
        Path::new(&chromium).exists() && modules.join("playwright-core/package.json").exists(),
        "needs Chromium at {chromium} and playwright-core in {}: run `bash scripts/install-engines.sh`",
        modules.display()
    );
    let artifacts = std::env::var_os("IGLOO_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .join("console");
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console").join(script))
        .env("IGLOO_URL", url)
        .envs(env.iter().copied())
        .env("IGLOO_ARTIFACTS", &artifacts)
        .env("IGLOO_NODE_MODULES", &modules)
        .env("IGLOO_CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}\nscreenshots: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        artifacts.display()
    );
    println!("{report}");
    assert!(out.status.success(), "the browser run failed:\n{report}\nserver output:\n{}", server.seen.join("\n"));
    for shot in shots {
        let png = std::fs::read(artifacts.join(format!("{shot}.png"))).unwrap_or_else(|e| panic!("{shot}.png: {e}"));
        assert_eq!(&png[1..4], b"PNG", "{shot}.png is a PNG");
    }
}

const ALERT_SCHEMA: &str =
    "/// A measurement whose first value is over 100, written by transforms/Measurement__Alert.py.
model Alert {
  time  BigInt
  tag   String
  value Float

  @@id([tag, time])
}
";

const ALERT_TRANSFORM: &str = r#"def transform(m):
    if m["tag"].startswith("boom"):
        raise ValueError(f"{m['tag']} is not a tag")
    if m["values"] and m["values"][0] > 100:
        return {"time": m["time"], "tag": m["tag"], "value": m["values"][0]}
    return None
"#;

#[test]
fn console_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project_from(tmp.path(), "timeseries");
    std::fs::write(root.join("schema/alert.prisma"), ALERT_SCHEMA).unwrap();
    std::fs::write(root.join("transforms/Measurement__Alert.py"), ALERT_TRANSFORM).unwrap();
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("transform Measurement__Alert", START);
    dev.expect("Console ", START);
    let project = root.display().to_string();
    browser_run(
        "console.browser.mjs",
        &ports.api(""),
        &[("IGLOO_PROJECT", &project)],
        &dev,
        &[
            "01-overview",
            "02-data",
            "03-ingest",
            "04-api-tag-stats",
            "05-api-samples",
            "06-charts",
            "07-dead-letters",
            "08-problems",
        ],
    );
}

/// The console under `server.auth: required` (the default of `igloo serve`): it asks for a
/// credential on the first 401, keeps the admin key for the tab, and hands it to
/// `<igloo-timeseries>` as its `token`, which reads `/api` and `/subscribe` with it.
#[test]
fn console_under_auth_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, _engines, engine_ports) = project_with_engines(tmp.path(), &[]);
    let (server, ports) = serve_beside(&root, &engine_ports, &[], |cmd| {
        cmd.env_remove("IGLOO_SERVER_AUTH");
    });
    wait_ready(&ports);
    let key = create_key(&root, &engine_ports, &["--name", "console", "--scope", "admin"]);
    // The server reads new keys within seconds.
    eventually(Duration::from_secs(15), "the key known to the server", || {
        (get_with(&ports.api("/metrics"), &[("Authorization", &format!("Bearer {key}"))]).0 == 200).then_some(())
    });
    browser_run(
        "console.auth.browser.mjs",
        &ports.api(""),
        &[("IGLOO_KEY", &key)],
        &server,
        &["auth-01-overview", "auth-02-chart"],
    );
}
