//! The engines of one `igloo dev`, whichever way they come: native child processes, a docker
//! compose stack, or existing (external) clusters. Whatever the mode, the rest of igloo sees
//! only [`Endpoints`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use igloo_schemas::sql::Cluster;
use igloo_schemas::Dialect;
use igloo_server::config::{InfraMode, Project};

use super::state::{igloo_dir, EngineState};
use crate::infra::broker::{NativeBroker, NativeBrokerConfig, NativeBrokerError};
use crate::infra::clickhouse::{ClickHouseError, ClickHouseHttp, NativeClickHouse, NativeConfig};
use crate::infra::process::tail;
use crate::ui;
use igloo_server::kafka::admin::{KafkaAdmin, KafkaAdminError};
use igloo_server::kafka::Broker;

const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The compose file shipped in `docker/`, written into `.igloo/` for docker mode.
const COMPOSE_FILE: &str = include_str!("../../../docker/docker-compose.yml");

#[derive(Debug, thiserror::Error)]
pub enum EnginesError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error(transparent)]
    Broker(#[from] NativeBrokerError),
    #[error(transparent)]
    Kafka(#[from] KafkaAdminError),
    #[error("clickhouse.cluster: {cluster} needs a cluster, which igloo does not start: set infra.mode: external (IGLOO_INFRA_MODE) with clickhouse.url, or run `bash scripts/local-cluster.sh up` for a local one")]
    ClusterNeedsExternal { cluster: String },
    #[error("infra.mode is external but {key} is not set; set it in igloo.yaml or with {env}")]
    MissingSetting { key: &'static str, env: &'static str },
    #[error("ClickHouse {found} is older than {oldest}, the oldest version igloo supports")]
    TooOld { found: Dialect, oldest: Dialect },
    #[error("ClickHouse at {url} does not answer /ping; is it running? ({hint})")]
    ClickHouseDown { url: String, hint: String },
    #[error("the broker at {bootstrap} does not answer a metadata request: {reason}; is it running, and are the broker settings right? ({hint})")]
    BrokerDown { bootstrap: String, reason: String, hint: String },
    #[error("docker compose failed ({command}):\n{output}")]
    Docker { command: String, output: String },
    #[error("Docker cannot pull the engine images ({images}): this machine does not reach their registry.\nRun the engines without Docker with `igloo dev --mode native`, or point IGLOO_BROKER_IMAGE and IGLOO_CLICKHOUSE_IMAGE at images this machine has (igloo's scripts/local-images.sh builds stand-ins from Debian packages).\ndocker compose said:\n{output}")]
    ImagePull { images: String, output: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Which native engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    ClickHouse,
    Broker,
}

/// How igloo reaches the engines. One Kafka admin client lives as long as the endpoints:
/// creating one costs a connection and a metadata round trip.
#[derive(Clone)]
pub struct Endpoints {
    pub clickhouse: ClickHouseHttp,
    pub dialect: Dialect,
    /// The ClickHouse cluster tables are created on (`clickhouse.cluster`), if any.
    pub cluster: Option<Cluster>,
    pub broker: Broker,
    pub admin: Arc<KafkaAdmin>,
}

impl Endpoints {
    fn new(
        clickhouse: ClickHouseHttp,
        dialect: Dialect,
        cluster: Option<Cluster>,
        broker: Broker,
        replication: Option<i32>,
        min_insync_replicas: Option<u32>,
    ) -> Result<Endpoints, EnginesError> {
        let admin = Arc::new(KafkaAdmin::connect(&broker, replication)?.with_min_insync_replicas(min_insync_replicas));
        Ok(Endpoints { clickhouse, dialect, cluster, broker, admin })
    }
}

/// Running engines; native ones stop when this is dropped.
pub struct Engines {
    pub mode: InfraMode,
    pub endpoints: Endpoints,
    clickhouse: Option<NativeClickHouse>,
    broker: Option<NativeBroker>,
    docker: Option<DockerStack>,
    probe: BrokerProbe,
}

/// How often a running native broker is asked for metadata, and how long it may stay silent
/// before it is restarted, if its log shows a panic since it started: a broker can be alive yet
/// answer nothing (tansu 0.6 after a panic in its storage task, docs/ARCHITECTURE.md). A broker
/// that is only busy (silent without a panic) is left alone.
const PROBE_EVERY: Duration = Duration::from_secs(5);
const SILENT_FOR: Duration = Duration::from_secs(15);

/// When the native broker was last probed, since when it has not answered, and where its log
/// stood when it started.
#[derive(Default)]
struct BrokerProbe {
    last: Option<Instant>,
    silent_since: Option<Instant>,
    log_from: u64,
}

impl BrokerProbe {
    /// A probe of a broker that has just started, writing to `log`.
    fn started(log: &Path) -> BrokerProbe {
        BrokerProbe { log_from: std::fs::metadata(log).map(|m| m.len()).unwrap_or(0), ..BrokerProbe::default() }
    }

    /// Whether `log` shows a panic since the broker started.
    fn panicked(&self, log: &Path) -> bool {
        use std::io::{Read, Seek};
        let Ok(mut file) = std::fs::File::open(log) else { return false };
        let mut text = Vec::new();
        if file.seek(std::io::SeekFrom::Start(self.log_from)).is_err() || file.read_to_end(&mut text).is_err() {
            return false;
        }
        String::from_utf8_lossy(&text).contains("panicked at")
    }
}

/// The mode from igloo.yaml, else docker when a Docker engine answers, else native.
pub fn resolve_mode(project: &Project) -> InfraMode {
    project.config.infra.mode.unwrap_or_else(|| if docker_answers() { InfraMode::Docker } else { InfraMode::Native })
}

fn docker_answers() -> bool {
    let Ok(mut child) = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

impl Engines {
    /// Starts (native, docker) or connects to (external) the engines, one spinner each.
    pub fn start(project: &Project, mode: InfraMode) -> Result<Engines, EnginesError> {
        if let (Some(cluster), false) = (&project.config.clickhouse.cluster, mode == InfraMode::External) {
            return Err(EnginesError::ClusterNeedsExternal { cluster: cluster.clone() });
        }
        match mode {
            InfraMode::Native => Self::start_native(project),
            InfraMode::Docker => Self::start_docker(project),
            InfraMode::External => {
                let endpoints = connect(project, mode)?;
                Ok(Engines {
                    mode,
                    endpoints,
                    clickhouse: None,
                    broker: None,
                    docker: None,
                    probe: BrokerProbe::default(),
                })
            }
        }
    }

    fn start_native(project: &Project) -> Result<Engines, EnginesError> {
        let dir = igloo_dir(&project.root);
        let c = &project.config;
        let pb = ui::spinner("Starting ClickHouse");
        let started = Instant::now();
        let ch_config = NativeConfig {
            dir: dir.join("clickhouse"),
            http_port: c.clickhouse.http_port,
            tcp_port: c.clickhouse.tcp_port,
        };
        let clickhouse = NativeClickHouse::start(ch_config, START_TIMEOUT).inspect_err(|_| pb.finish_and_clear())?;
        let dialect = checked_dialect(&clickhouse.client)?;
        ui::finish(
            pb,
            format!("✓ ClickHouse {dialect} on {} ({:.1} s)", clickhouse.client.url, started.elapsed().as_secs_f64()),
        );

        let pb = ui::spinner("Starting the Kafka-API broker");
        let started = Instant::now();
        let broker_config = NativeBrokerConfig {
            dir: dir.join("broker"),
            port: c.broker.port,
            engine: c.broker.engine,
            storage: c.broker.storage.clone(),
        };
        let broker = NativeBroker::start(&broker_config, START_TIMEOUT).inspect_err(|_| pb.finish_and_clear())?;
        ui::finish(
            pb,
            format!(
                "✓ {} (Kafka API) on {} ({:.1} s)",
                broker.kind.name(),
                broker.bootstrap,
                started.elapsed().as_secs_f64()
            ),
        );
        let broker_endpoint = Broker::new(broker.bootstrap.clone(), c.broker.framing(InfraMode::Native))
            .with_compression(c.broker.compression(InfraMode::Native));
        let endpoints = Endpoints::new(clickhouse.client.clone(), dialect, None, broker_endpoint, Some(1), None)?;
        Ok(Engines {
            mode: InfraMode::Native,
            endpoints,
            probe: BrokerProbe::started(&broker.process.log),
            clickhouse: Some(clickhouse),
            broker: Some(broker),
            docker: None,
        })
    }

    fn start_docker(project: &Project) -> Result<Engines, EnginesError> {
        let stack = DockerStack::new(project)?;
        let pb = ui::spinner("Starting Redpanda and ClickHouse with docker compose");
        let started = Instant::now();
        stack.run(&["up", "-d", "--wait"]).inspect_err(|_| pb.finish_and_clear())?;
        let endpoints = connect(project, InfraMode::Docker).inspect_err(|_| pb.finish_and_clear())?;
        ui::finish(
            pb,
            format!(
                "✓ docker: ClickHouse {} on {}, Redpanda on {} ({:.1} s)",
                endpoints.dialect,
                endpoints.clickhouse.url,
                endpoints.broker.bootstrap,
                started.elapsed().as_secs_f64()
            ),
        );
        Ok(Engines {
            mode: InfraMode::Docker,
            endpoints,
            clickhouse: None,
            broker: None,
            docker: Some(stack),
            probe: BrokerProbe::default(),
        })
    }

    /// A native engine that has exited on its own, with a message naming it and its log tail.
    pub fn died(&mut self) -> Option<(EngineKind, String)> {
        let check = |p: &mut crate::infra::process::EngineProcess| {
            p.exited().map(|status| {
                format!("{} exited ({status}); last lines of {}:\n{}", p.engine, p.log.display(), tail(&p.log, 15))
            })
        };
        let clickhouse =
            self.clickhouse.as_mut().and_then(|c| check(&mut c.process)).map(|m| (EngineKind::ClickHouse, m));
        clickhouse.or_else(|| self.broker.as_mut().and_then(|b| check(&mut b.process)).map(|m| (EngineKind::Broker, m)))
    }

    /// A native broker that runs but has not answered a metadata request for [`SILENT_FOR`]:
    /// stopped (to be restarted like one that exited), with a message naming it and its log
    /// tail. Probes at most every [`PROBE_EVERY`].
    pub fn silent(&mut self) -> Option<(EngineKind, String)> {
        let broker = self.broker.as_mut()?;
        let now = Instant::now();
        if self.probe.last.is_some_and(|last| now.duration_since(last) < PROBE_EVERY) {
            return None;
        }
        self.probe.last = Some(now);
        if self.endpoints.admin.ping(Duration::from_secs(2)) {
            self.probe.silent_since = None;
            return None;
        }
        let since = *self.probe.silent_since.get_or_insert(now);
        if now.duration_since(since) < SILENT_FOR || !self.probe.panicked(&broker.process.log) {
            return None;
        }
        let p = &mut broker.process;
        let message = format!(
            "{} runs but has answered no metadata request for {} s since it panicked; stopping it; last lines of {}:\n{}",
            p.engine,
            SILENT_FOR.as_secs(),
            p.log.display(),
            tail(&p.log, 15)
        );
        p.stop(Duration::from_secs(2));
        Some((EngineKind::Broker, message))
    }

    /// Starts a native engine again with the same ports and data; returns the line to print.
    pub fn restart(&mut self, kind: EngineKind) -> Result<String, EnginesError> {
        let started = Instant::now();
        match kind {
            EngineKind::ClickHouse => {
                let config = self.clickhouse.as_ref().expect("native ClickHouse runs").config.clone();
                let c = NativeClickHouse::start(config, START_TIMEOUT)?;
                let line =
                    format!("✓ ClickHouse restarted on {} ({:.1} s)", c.client.url, started.elapsed().as_secs_f64());
                self.clickhouse = Some(c);
                Ok(line)
            }
            EngineKind::Broker => {
                let config = self.broker.as_ref().expect("native broker runs").config.clone();
                let b = NativeBroker::start(&config, START_TIMEOUT)?;
                self.probe = BrokerProbe::started(&b.process.log);
                let line = format!(
                    "✓ {} restarted on {} ({:.1} s)",
                    b.kind.name(),
                    b.bootstrap,
                    started.elapsed().as_secs_f64()
                );
                self.broker = Some(b);
                Ok(line)
            }
        }
    }

    /// What `igloo ps` shows.
    pub fn states(&self) -> Vec<EngineState> {
        let mut out = Vec::new();
        if let Some(c) = &self.clickhouse {
            out.push(EngineState {
                name: "clickhouse".into(),
                pid: Some(c.pid()),
                address: c.client.url.clone(),
                log: Some(c.process.log.clone()),
            });
        }
        if let Some(b) = &self.broker {
            out.push(EngineState {
                name: "broker".into(),
                pid: Some(b.process.pid()),
                address: b.bootstrap.clone(),
                log: Some(b.process.log.clone()),
            });
        }
        if self.clickhouse.is_none() {
            out.push(EngineState {
                name: "clickhouse".into(),
                pid: None,
                address: self.endpoints.clickhouse.url.clone(),
                log: None,
            });
            out.push(EngineState {
                name: "broker".into(),
                pid: None,
                address: self.endpoints.broker.bootstrap.clone(),
                log: None,
            });
        }
        out
    }

    /// Stops what this process started: the broker first, then ClickHouse. The clients go
    /// first: both engines wait for open client connections before they exit.
    pub fn stop(self) {
        let Engines { endpoints, clickhouse, broker, docker, .. } = self;
        drop(endpoints);
        if let Some(mut b) = broker {
            b.stop();
        }
        if let Some(mut c) = clickhouse {
            c.stop();
        }
        if let Some(d) = docker {
            if let Err(e) = d.run(&["stop"]) {
                eprintln!("warning: {e}");
            }
        }
    }
}

/// Endpoints of engines that are already running (external clusters, or the local engines of
/// a running `igloo dev`), checked to answer.
pub fn connect(project: &Project, mode: InfraMode) -> Result<Endpoints, EnginesError> {
    let c = &project.config;
    // Missing settings first, ClickHouse's before the broker's, before anything is dialled.
    let url = clickhouse_url(project, mode)?;
    let (bootstrap, replication) = match mode {
        InfraMode::External => (
            c.broker.bootstrap_servers.clone().ok_or(EnginesError::MissingSetting {
                key: "broker.bootstrap_servers",
                env: "IGLOO_BROKER_BOOTSTRAP_SERVERS",
            })?,
            c.broker.replication_factor,
        ),
        InfraMode::Native | InfraMode::Docker => (format!("127.0.0.1:{}", c.broker.port), Some(1)),
    };
    let ClickHouseEndpoint { clickhouse, dialect, cluster } = connect_clickhouse_at(project, mode, url)?;
    let endpoints = Endpoints::new(
        clickhouse,
        dialect,
        cluster,
        Broker::new(bootstrap.clone(), c.broker.framing(mode))
            .with_security(c.broker.security.clone())
            .with_compression(c.broker.compression(mode)),
        replication,
        c.broker.min_insync_replicas,
    )?;
    if let Err(e) = endpoints.admin.check(Duration::from_secs(5)) {
        let reason = match e {
            KafkaAdminError::Unreachable { message, .. } => message,
            other => other.to_string(),
        };
        return Err(EnginesError::BrokerDown { bootstrap, reason, hint: engines_hint(mode) });
    }
    Ok(endpoints)
}

/// The project's ClickHouse alone, for commands that need no broker (`igloo keys`).
pub struct ClickHouseEndpoint {
    pub clickhouse: ClickHouseHttp,
    pub dialect: Dialect,
    pub cluster: Option<Cluster>,
}

pub fn connect_clickhouse(project: &Project, mode: InfraMode) -> Result<ClickHouseEndpoint, EnginesError> {
    connect_clickhouse_at(project, mode, clickhouse_url(project, mode)?)
}

/// `clickhouse.url` in external mode, else the local engines' HTTP port.
fn clickhouse_url(project: &Project, mode: InfraMode) -> Result<String, EnginesError> {
    let c = &project.config;
    Ok(match mode {
        InfraMode::External => c
            .clickhouse
            .url
            .clone()
            .ok_or(EnginesError::MissingSetting { key: "clickhouse.url", env: "IGLOO_CLICKHOUSE_URL" })?,
        InfraMode::Native | InfraMode::Docker => format!("http://127.0.0.1:{}", c.clickhouse.http_port),
    })
}

fn connect_clickhouse_at(project: &Project, mode: InfraMode, url: String) -> Result<ClickHouseEndpoint, EnginesError> {
    let c = &project.config;
    let mut clickhouse = ClickHouseHttp::new(url.clone());
    if let Some(user) = &c.clickhouse.user {
        clickhouse = clickhouse.with_user(user, c.clickhouse.password.as_deref().unwrap_or(""));
    }
    if !clickhouse.ping() {
        return Err(EnginesError::ClickHouseDown { url, hint: engines_hint(mode) });
    }
    let cluster = c.cluster();
    let clickhouse = clickhouse.for_cluster(cluster.is_some());
    let dialect = checked_dialect(&clickhouse)?;
    Ok(ClickHouseEndpoint { clickhouse, dialect, cluster })
}

fn engines_hint(mode: InfraMode) -> String {
    match mode {
        InfraMode::External => "check clickhouse.url / broker.bootstrap_servers in igloo.yaml".to_string(),
        _ => "start the engines with `igloo dev`".to_string(),
    }
}

fn checked_dialect(client: &ClickHouseHttp) -> Result<Dialect, EnginesError> {
    let dialect = client.dialect()?;
    if dialect < Dialect::V18_16 {
        return Err(EnginesError::TooOld { found: dialect, oldest: Dialect::V18_16 });
    }
    Ok(dialect)
}

/// `docker compose` for one project: its own compose project name and a copy of the file.
pub struct DockerStack {
    file: PathBuf,
    name: String,
    ports: [(&'static str, u16); 3],
}

impl DockerStack {
    pub fn new(project: &Project) -> Result<DockerStack, EnginesError> {
        let dir = igloo_dir(&project.root);
        std::fs::create_dir_all(&dir).map_err(|source| EnginesError::Write { path: dir.clone(), source })?;
        let file = dir.join("docker-compose.yml");
        std::fs::write(&file, COMPOSE_FILE).map_err(|source| EnginesError::Write { path: file.clone(), source })?;
        let c = &project.config;
        Ok(DockerStack {
            file,
            name: format!("igloo-{}", project.config.name.to_lowercase()),
            ports: [
                ("IGLOO_CLICKHOUSE_HTTP_PORT", c.clickhouse.http_port),
                ("IGLOO_CLICKHOUSE_TCP_PORT", c.clickhouse.tcp_port),
                ("IGLOO_BROKER_PORT", c.broker.port),
            ],
        })
    }

    pub fn run(&self, args: &[&str]) -> Result<(), EnginesError> {
        let mut cmd = Command::new("docker");
        cmd.arg("compose").arg("-f").arg(&self.file).arg("-p").arg(&self.name).args(args);
        for (k, v) in self.ports {
            cmd.env(k, v.to_string());
        }
        if std::env::var_os(NOFILE_VAR).is_none() {
            cmd.env(NOFILE_VAR, clickhouse_nofile().to_string());
        }
        let command = format!("docker compose -f {} -p {} {}", display(&self.file), self.name, args.join(" "));
        let out = cmd.output().map_err(|e| EnginesError::Docker { command: command.clone(), output: e.to_string() })?;
        if !out.status.success() {
            let output = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if is_pull_failure(&output) {
                let output = crate::infra::process::last_lines(&output, 4);
                return Err(EnginesError::ImagePull { images: compose_images(COMPOSE_FILE).join(", "), output });
            }
            return Err(EnginesError::Docker { command, output });
        }
        Ok(())
    }
}

/// The compose files' variable for ClickHouse's open-files limit.
pub const NOFILE_VAR: &str = "IGLOO_CLICKHOUSE_NOFILE";

/// ClickHouse's recommended 262144 open files, or this process's hard limit when it is lower:
/// Docker refuses to start a container asking for more than the daemon may grant, and the
/// daemon usually runs under the same limits as the user's processes.
pub fn clickhouse_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    let hard = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_max } else { 262_144 };
    hard.min(262_144)
}

/// Whether docker compose failed because an image could not be pulled.
pub fn is_pull_failure(output: &str) -> bool {
    let o = output.to_ascii_lowercase();
    ["pull access denied", "no such host", "manifest unknown", "failed to resolve reference", "toomanyrequests"]
        .iter()
        .any(|s| o.contains(s))
        || (o.contains("pulling") && o.contains("error response from daemon"))
}

/// The images a compose file names, with `${VAR:-default}` resolved from the environment.
fn compose_images(file: &str) -> Vec<String> {
    file.lines()
        .filter_map(|l| l.trim().strip_prefix("image:"))
        .map(|v| {
            let v = v.trim();
            match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')).and_then(|r| r.split_once(":-")) {
                Some((var, default)) => std::env::var(var).unwrap_or_else(|_| default.to_string()),
                None => v.to_string(),
            }
        })
        .collect()
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compose_files_images_resolve_their_overrides() {
        let images = compose_images(COMPOSE_FILE);
        assert_eq!(images.len(), 2, "{images:?}");
        assert!(images.iter().all(|i| !i.contains("${")), "{images:?}");
    }

    #[test]
    fn a_pull_failure_is_told_from_other_failures() {
        let pull = "redpanda Pulling\n redpanda Error Get \"https://docker.redpanda.com/v2/\": dial tcp: lookup docker.redpanda.com: no such host\nError response from daemon: Get \"https://docker.redpanda.com/v2/\"";
        assert!(is_pull_failure(pull));
        assert!(!is_pull_failure("Error response from daemon: failed to create shim task: error setting rlimits"));
        assert!(clickhouse_nofile() > 0 && clickhouse_nofile() <= 262_144);
    }
}
