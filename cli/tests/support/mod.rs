//! Helpers shared by the integration tests: a running `igloo` process with its output lines,
//! free ports for every engine and server, projects from templates.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use igloo_cli::infra::clickhouse::{free_port, ClickHouseHttp};

pub const START: Duration = Duration::from_secs(60);
pub const APPLY: Duration = Duration::from_secs(15);

pub struct Dev {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

pub struct Ports {
    pub http: u16,
    pub tcp: u16,
    pub broker: u16,
    pub server: u16,
    /// Variables set after the native-mode ones: a [`LocalCluster`]'s external engines.
    pub env: Vec<(String, String)>,
}

impl Ports {
    pub fn free() -> Ports {
        Ports {
            http: free_port().unwrap(),
            tcp: free_port().unwrap(),
            broker: free_port().unwrap(),
            server: free_port().unwrap(),
            env: Vec::new(),
        }
    }

    /// `native`, or the infra mode [`Ports::env`] sets.
    pub fn mode(&self) -> &str {
        self.env.iter().find(|(k, _)| k == "IGLOO_INFRA_MODE").map_or("native", |(_, v)| v.as_str())
    }

    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("IGLOO_CLICKHOUSE_HTTP_PORT", self.http.to_string())
            .env("IGLOO_CLICKHOUSE_TCP_PORT", self.tcp.to_string())
            .env("IGLOO_BROKER_PORT", self.broker.to_string())
            .env("IGLOO_SERVER_LISTEN", format!("127.0.0.1:{}", self.server))
            .env("IGLOO_INFRA_MODE", "native")
            // `igloo serve` requires credentials unless told; tests of other things run open
            // (cli/tests/auth.rs tests the default).
            .env("IGLOO_SERVER_AUTH", "off")
            .env_remove("IGLOO_CLICKHOUSE_TARGET")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
    }
}

pub fn igloo(dir: &Path, ports: &Ports) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("igloo"));
    cmd.current_dir(dir);
    ports.apply(&mut cmd);
    cmd
}

impl Dev {
    pub fn start(dir: &Path, ports: &Ports, args: &[&str]) -> Dev {
        Dev::attach(
            igloo(dir, ports).arg("dev").args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(),
        )
    }

    pub fn attach(mut child: Child) -> Dev {
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Dev { child, lines, seen: Vec::new() }
    }

    /// Waits for an output line containing `text`; panics with the output so far on timeout.
    pub fn expect(&mut self, text: &str, timeout: Duration) -> String {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line.clone());
                if line.contains(text) {
                    return line;
                }
            }
        }
        panic!("no line containing {text:?} within {timeout:?}; output:\n{}", self.seen.join("\n"));
    }

    /// Like `expect`, but also satisfied by a line already read: stdout and stderr are read by
    /// two threads, so lines of the two streams can arrive in either order.
    pub fn expect_seen(&mut self, text: &str, timeout: Duration) -> String {
        match self.output().iter().find(|l| l.contains(text)) {
            Some(line) => line.clone(),
            None => self.expect(text, timeout),
        }
    }

    /// Every output line so far (those `expect` read and those waiting).
    pub fn output(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < timeout, "igloo dev did not exit; output:\n{}", self.seen.join("\n"));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub fn alive(pid: u32) -> bool {
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

pub fn engine_pids(root: &Path) -> Vec<u32> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(".igloo/dev.json")).unwrap()).unwrap();
    state["engines"].as_array().unwrap().iter().filter_map(|e| e["pid"].as_u64()).map(|p| p as u32).collect()
}

pub fn wait_gone(pids: &[u32]) {
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        assert!(start.elapsed() < Duration::from_secs(20), "engine processes left behind: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `igloo serve` (API, writers, transforms) as its own process so it can be killed alone.
pub fn serve(root: &Path, ports: &Ports) -> Dev {
    serve_roles(root, ports, "all")
}

/// Runs `igloo serve --role <roles>` as its own process.
pub fn serve_roles(root: &Path, ports: &Ports, roles: &str) -> Dev {
    let mut cmd = igloo(root, ports);
    cmd.args(["serve", "--mode", ports.mode(), "--role", roles])
        .env("IGLOO_WRITER_FLUSH_MS", "50")
        .env("IGLOO_WRITER_SESSION_TIMEOUT_MS", "6000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut s = Dev::attach(cmd.spawn().unwrap());
    s.expect("igloo serve: project", START);
    s
}

/// A project (with `files` written first) and its engines, from `igloo dev --no-server`.
pub fn project_with_engines(tmp: &Path, files: &[(&str, &str)]) -> (PathBuf, Dev, Ports) {
    let root = project(tmp);
    for (path, text) in files {
        std::fs::write(root.join(path), text).unwrap();
    }
    let ports = Ports::free();
    let mut engines = Dev::start(&root, &ports, &["--no-server"]);
    engines.expect("Ready in", START);
    (root, engines, ports)
}

/// `igloo serve ARGS` on a new port beside `engines` (writers flushing every 50 ms), its
/// command adjusted by `adjust` (environment) before it starts.
pub fn serve_beside(root: &Path, engines: &Ports, args: &[&str], adjust: impl FnOnce(&mut Command)) -> (Dev, Ports) {
    let ports = engines.with_new_server();
    let mut cmd = igloo(root, &ports);
    cmd.arg("serve").args(args).env("IGLOO_WRITER_FLUSH_MS", "50").stdout(Stdio::piped()).stderr(Stdio::piped());
    adjust(&mut cmd);
    let mut server = Dev::attach(cmd.spawn().unwrap());
    server.expect("igloo serve: project", START);
    (server, ports)
}

/// `igloo keys ARGS` against the project's ClickHouse.
pub fn keys(root: &Path, ports: &Ports, args: &[&str]) -> std::process::Output {
    let mut cmd = igloo(root, ports);
    cmd.arg("keys").args(args);
    cmd.output().unwrap()
}

/// `igloo keys create ARGS`: the key, printed once.
pub fn create_key(root: &Path, ports: &Ports, args: &[&str]) -> String {
    let out = keys(root, ports, &[&["create"], args].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("igloo_"), "{token}");
    token
}

/// Until `/ready` (open without a credential) answers 200: the writers have taken their
/// partitions.
pub fn wait_ready(ports: &Ports) {
    eventually(START, "the server ready", || (get(&ports.api("/ready")).0 == 200).then_some(()));
}

pub fn project(tmp: &Path) -> PathBuf {
    project_from(tmp, "timeseries")
}

/// `igloo init devapp --template <template>` in `tmp`.
pub fn project_from(tmp: &Path, template: &str) -> PathBuf {
    let status = Command::new(assert_cmd::cargo::cargo_bin("igloo"))
        .current_dir(tmp)
        .args(["init", "devapp", "--template", template, "--yes"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    tmp.join("devapp")
}

pub fn columns(ch: &ClickHouseHttp, table: &str) -> String {
    ch.execute(&format!("SELECT groupArray(name) FROM system.columns WHERE database = 'devapp' AND table = '{table}'"))
        .unwrap()
}

impl Ports {
    /// The same engines, and a new port for another server process.
    pub fn with_new_server(&self) -> Ports {
        Ports { server: free_port().unwrap(), env: self.env.clone(), ..*self }
    }

    pub fn clickhouse(&self) -> ClickHouseHttp {
        ClickHouseHttp::new(format!("http://127.0.0.1:{}", self.http))
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.server)
    }
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An answer of the server under test.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: String,
}

/// An error and its sources, `: `-separated: reqwest's own text ("error sending request for
/// url") does not say whether the connection was refused, reset or timed out.
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The tests' HTTP client: reqwest's blocking client (igloo itself uses reqwest).
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

fn send(req: reqwest::blocking::RequestBuilder, headers: &[(&str, &str)]) -> reqwest::Result<Reply> {
    let req = headers.iter().fold(req, |r, (k, v)| r.header(*k, *v));
    let resp = req.send()?;
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, content_type, retry_after) =
        (resp.status().as_u16(), header("content-type").unwrap_or_default(), header("retry-after"));
    Ok(Reply { status, content_type, retry_after, body: resp.text()? })
}

/// `POST url` with headers; error statuses are answers too. Err when no answer came.
pub fn try_post(url: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> reqwest::Result<Reply> {
    send(http().post(url).body(body.into()), headers)
}

/// `POST url` with headers; panics when the server does not answer.
pub fn http_post(url: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
    try_post(url, headers, body).unwrap_or_else(|e| panic!("POST {url}: {}", causes(&e)))
}

/// `POST url` of NDJSON; panics unless the answer is 200.
pub fn post_ndjson(url: &str, body: &str) {
    let r = http_post(url, &[("Content-Type", "application/x-ndjson")], body);
    assert_eq!(r.status, 200, "POST {url}: {}", r.body);
}

/// `GET url` held open (server-sent events): the status, Content-Type and the body's lines.
pub fn open_stream(
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, String, std::io::Lines<BufReader<reqwest::blocking::Response>>) {
    let req = headers.iter().fold(http().get(url), |r, (k, v)| r.header(*k, *v));
    let resp = req.send().unwrap_or_else(|e| panic!("GET {url}: {}", causes(&e)));
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (resp.status().as_u16(), ct, BufReader::new(resp).lines())
}

/// A model's counter or gauge `name` in the server's `/metrics`, if it has one.
pub fn metric(ports: &Ports, name: &str, model: &str) -> Option<u64> {
    let text = get(&ports.api("/metrics")).2;
    let prefix = format!("{name}{{model=\"{model}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

/// `GET url`: status, Content-Type and body (error statuses included).
pub fn get(url: &str) -> (u16, String, String) {
    get_with(url, &[])
}

/// `GET url`; error statuses are answers too. Err when no answer came.
pub fn try_get(url: &str) -> reqwest::Result<Reply> {
    send(http().get(url), &[])
}

/// `GET url` with request headers: status, Content-Type and body (error statuses included).
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let r = send(http().get(url), headers).unwrap_or_else(|e| panic!("GET {url}: {}", causes(&e)));
    (r.status, r.content_type, r.body)
}

/// `GET url` whose body is JSON: status and the parsed body.
pub fn get_json(url: &str) -> (u16, serde_json::Value) {
    get_json_with(url, &[])
}

/// `GET url` with request headers, whose body is JSON: status and the parsed body.
pub fn get_json_with(url: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let (status, _, body) = get_with(url, headers);
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}")))
}

/// Worker processes of the project at `root` whose parent is gone (re-parented to init).
pub fn orphan_workers(root: &Path) -> Vec<u32> {
    workers_of(root, 1)
}

/// Transform worker processes of the project at `root` (igloo's worker runtime) whose parent
/// is `parent`.
pub fn workers_of(root: &Path, parent: u32) -> Vec<u32> {
    let runtime = format!("{}/.igloo/runtime/worker", root.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).unwrap_or("");
            String::from_utf8_lossy(&cmd).contains(&runtime) && ppid == parent.to_string()
        })
        .collect()
}

/// Engines for a project that does not run them: another project's `igloo dev --no-server`
/// (ClickHouse and a broker), in `tmp/engines`. Keep the returned `Dev` alive.
pub fn engines_elsewhere(tmp: &Path) -> (Dev, Ports) {
    let dir = tmp.join("engines");
    std::fs::create_dir_all(&dir).unwrap();
    let root = project_from(&dir, "timeseries");
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &["--no-server"]);
    dev.expect("Ready in", START);
    (dev, ports)
}

/// scripts/local-cluster.sh's cluster (ZooKeeper, ClickHouse nodes 1..=4 = shards 1 and 2 × 2
/// replicas, cluster `igloo`, a broker) in a directory of its own, taken down when dropped.
pub struct LocalCluster {
    pub dir: PathBuf,
    /// The `export` lines of `up`, as (name, value).
    pub env: Vec<(String, String)>,
    /// HTTP port of each node, node 1 first.
    pub nodes: Vec<u16>,
}

impl LocalCluster {
    pub fn up(dir: &Path) -> LocalCluster {
        let mut cluster = LocalCluster { dir: dir.to_path_buf(), env: Vec::new(), nodes: Vec::new() };
        let out = cluster.script(&["up"]);
        cluster.env = out
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // "# nodes (shard.replica → HTTP): 1.1 → P, 1.2 → P, 2.1 → P, 2.2 → P; …"
        let line = out.lines().find(|l| l.starts_with("# nodes")).unwrap_or_else(|| panic!("{out}"));
        cluster.nodes = line
            .split("→ ")
            .skip(2)
            .map(|s| s.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap())
            .collect();
        cluster
    }

    /// Runs the script with `args`; its output, or a panic with it.
    pub fn script(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/local-cluster.sh"))
            .args(args)
            .env("IGLOO_CLUSTER_DIR", &self.dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "local-cluster.sh {}: {text}{err}", args.join(" "));
        text
    }

    pub fn kill(&self, node: usize) {
        self.script(&["kill", &node.to_string()]);
    }

    pub fn start(&self, node: usize) {
        self.script(&["start", &node.to_string()]);
    }

    /// Ports for igloo on this cluster: external engines (node 1's HTTP, the cluster's broker).
    pub fn ports(&self) -> Ports {
        let broker = self.var("IGLOO_BROKER_BOOTSTRAP_SERVERS").rsplit(':').next().unwrap().parse().unwrap();
        Ports { http: self.nodes[0], tcp: 0, broker, server: free_port().unwrap(), env: self.env.clone() }
    }

    pub fn var(&self, name: &str) -> &str {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("{name} unset"))
    }

    /// What a failed test should show of the nodes: each one's mutations (a late delete is
    /// one) and the last lines its DDL worker logged (the `ON CLUSTER` queue).
    pub fn diagnose(&self) -> String {
        let mutations = "SELECT table, mutation_id, command, is_done, parts_to_do FROM system.mutations FORMAT TSV";
        let mut out = String::new();
        for node in 1..=self.nodes.len() {
            let log = std::fs::read_to_string(self.dir.join(format!("ch{node}/log/clickhouse-server.log")));
            let ddl: Vec<&str> = log.as_deref().unwrap_or("").lines().filter(|l| l.contains("DDLWorker")).collect();
            let tail = ddl[ddl.len().saturating_sub(12)..].join("\n");
            out += &format!(
                "\n--- node {node} mutations:\n{}\n--- node {node} DDLWorker log tail:\n{tail}\n",
                self.sql(node, mutations)
            );
        }
        out
    }

    /// `q` on node `node` (1..=4): its answer, or `error: …` when the node does not answer.
    pub fn sql(&self, node: usize, q: &str) -> String {
        match ClickHouseHttp::new(format!("http://127.0.0.1:{}", self.nodes[node - 1])).execute(q) {
            Ok(r) => r.trim().to_string(),
            Err(e) => format!("error: {e}"),
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/local-cluster.sh"))
            .arg("down")
            .env("IGLOO_CLUSTER_DIR", &self.dir)
            .output();
    }
}

/// Posts batches of 50 distinct events (`time` = n from `first` on, tags `t0`..`t36`) every
/// 20 ms until `stop`, counting those acknowledged.
pub fn stream_events(
    ingest: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acked: std::sync::Arc<std::sync::atomic::AtomicU64>,
    first: u64,
) -> std::thread::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let mut i = first;
        while !stop.load(Ordering::Relaxed) {
            let body: String =
                (i..i + 50).map(|n| format!("{{\"time\":{n},\"tag\":\"t{}\",\"values\":[1]}}\n", n % 37)).collect();
            i += 50;
            if let Ok(r) = try_post(&ingest, &[("Content-Type", "application/x-ndjson")], body) {
                if r.status == 200 {
                    acked.fetch_add(50, Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}
