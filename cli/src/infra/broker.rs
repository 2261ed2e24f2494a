//! A native Kafka-API broker as a child process: `redpanda` when on PATH (or chosen), else
//! `tansu` with SQLite storage in `.igloo/broker/` so topics, data and committed offsets survive
//! restarts. Ready when it answers a Kafka metadata request.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use igloo_server::config::BrokerEngine;

use super::process::{port_busy, which, EngineProcess, ProcessError};
use igloo_server::kafka::admin::KafkaAdmin;
use igloo_server::kafka::{Broker, Framing};

#[derive(Debug, thiserror::Error)]
pub enum NativeBrokerError {
    #[error("no Kafka-API broker is installed: neither `redpanda` nor `tansu` is on PATH. Build tansu with `cargo install tansu --locked --features libsql,dynostore` (about 15 minutes), or run `bash scripts/install-engines.sh` in igloo's repository")]
    NoneInstalled,
    #[error("broker.engine is `{0}` but `{0}` is not on PATH")]
    ChosenMissing(&'static str),
    #[error("broker.storage is set, but it is tansu's storage engine and the local broker is {0}; unset it or set broker.engine: tansu")]
    StorageNotTansu(&'static str),
    #[error("port {port} (Kafka) is already in use on 127.0.0.1; stop whatever listens there or set broker.port in igloo.yaml")]
    PortBusy { port: u16 },
    #[error("cannot write {path}: {source}")]
    Prepare { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Admin(#[from] igloo_server::kafka::admin::KafkaAdminError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerKind {
    Tansu,
    Redpanda,
}

impl BrokerKind {
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Tansu => "tansu",
            BrokerKind::Redpanda => "redpanda",
        }
    }
}

#[derive(Clone, Debug)]
pub struct NativeBrokerConfig {
    /// Holds the broker's data and `log/`.
    pub dir: PathBuf,
    pub port: u16,
    pub engine: BrokerEngine,
    /// tansu's `--storage-engine`; `None` is SQLite in `dir/data/`.
    pub storage: Option<String>,
}

pub struct NativeBroker {
    pub process: EngineProcess,
    pub kind: BrokerKind,
    pub bootstrap: String,
    pub config: NativeBrokerConfig,
}

impl NativeBroker {
    pub fn find(engine: BrokerEngine) -> Result<(BrokerKind, PathBuf), NativeBrokerError> {
        let redpanda = || which("redpanda").map(|p| (BrokerKind::Redpanda, p));
        let tansu = || which("tansu").or_else(cargo_bin("tansu")).map(|p| (BrokerKind::Tansu, p));
        match engine {
            BrokerEngine::Auto => redpanda().or_else(tansu).ok_or(NativeBrokerError::NoneInstalled),
            BrokerEngine::Redpanda => redpanda().ok_or(NativeBrokerError::ChosenMissing("redpanda")),
            BrokerEngine::Tansu => tansu().ok_or(NativeBrokerError::ChosenMissing("tansu")),
        }
    }

    /// Starts the broker, and once more if it exits during start-up: tansu 0.6 now and then
    /// exits at once with nothing in its log (seen twice in CI, out of hundreds of starts).
    /// Both `igloo dev`'s first start and its restarts go through here.
    pub fn start(config: &NativeBrokerConfig, timeout: Duration) -> Result<NativeBroker, NativeBrokerError> {
        match Self::start_once(config, timeout) {
            Err(NativeBrokerError::Process(ProcessError::Exited { status, .. })) => {
                tracing::warn!(%status, "the broker exited during start-up; starting it once more");
                Self::start_once(config, timeout)
            }
            started => started,
        }
    }

    fn start_once(config: &NativeBrokerConfig, timeout: Duration) -> Result<NativeBroker, NativeBrokerError> {
        let (kind, binary) = Self::find(config.engine)?;
        if kind != BrokerKind::Tansu && config.storage.is_some() {
            return Err(NativeBrokerError::StorageNotTansu(kind.name()));
        }
        if port_busy(config.port) {
            return Err(NativeBrokerError::PortBusy { port: config.port });
        }
        let data = config.dir.join("data");
        std::fs::create_dir_all(&data).map_err(|source| NativeBrokerError::Prepare { path: data.clone(), source })?;
        let listener = format!("tcp://127.0.0.1:{}", config.port);
        let mut cmd = Command::new(&binary);
        match kind {
            BrokerKind::Tansu => {
                // The SQLite path is relative to the working directory.
                let storage = config.storage.as_deref().unwrap_or("sqlite://tansu.db");
                cmd.current_dir(&data).args([
                    "broker",
                    "--cluster-id",
                    "igloo",
                    "--listener-url",
                    &listener,
                    "--advertised-listener-url",
                    &listener,
                    "--storage-engine",
                    storage,
                ]);
            }
            BrokerKind::Redpanda => {
                let cfg = write_redpanda_config(config)?;
                cmd.current_dir(&config.dir).args([
                    "--redpanda-cfg",
                    &cfg.display().to_string(),
                    "--smp",
                    "1",
                    "--memory",
                    "1G",
                    "--overprovisioned",
                    "--unsafe-bypass-fsync",
                    "1",
                ]);
            }
        }
        let mut process = EngineProcess::spawn(kind.name(), cmd, &config.dir.join("log/broker.log"))?;
        let bootstrap = format!("127.0.0.1:{}", config.port);
        // The client is created only once the port accepts connections: one created earlier
        // would sit in librdkafka's reconnect backoff and see the broker late.
        let mut admin: Option<KafkaAdmin> = None;
        let mut admin_error = None;
        process.wait_ready(timeout, &format!("Kafka metadata request to {bootstrap}"), || {
            if !port_busy(config.port) {
                return false;
            }
            if admin.is_none() {
                match KafkaAdmin::connect(&Broker::new(bootstrap.clone(), Framing::Batch), Some(1)) {
                    Ok(a) => admin = Some(a),
                    Err(e) => {
                        admin_error = Some(e);
                        return true;
                    }
                }
            }
            admin.as_ref().is_some_and(|a| a.ping(Duration::from_millis(500)))
        })?;
        if let Some(e) = admin_error {
            return Err(e.into());
        }
        Ok(NativeBroker { process, kind, bootstrap, config: config.clone() })
    }

    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(10));
    }
}

/// `~/.cargo/bin/<name>`, where `cargo install` puts binaries even when it is not on PATH.
fn cargo_bin(name: &'static str) -> impl FnOnce() -> Option<PathBuf> {
    move || {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        Some(home.join("bin").join(name)).filter(|p| p.is_file())
    }
}

fn write_redpanda_config(c: &NativeBrokerConfig) -> Result<PathBuf, NativeBrokerError> {
    let path = c.dir.join("redpanda.yaml");
    let text = format!(
        "# Written by igloo; rewritten at every start.\nredpanda:\n  data_directory: {data}\n  developer_mode: true\n  auto_create_topics_enabled: false\n  rpc_server: {{ address: 127.0.0.1, port: {rpc} }}\n  kafka_api: [{{ address: 127.0.0.1, port: {port} }}]\n  admin: [{{ address: 127.0.0.1, port: {admin} }}]\n  seed_servers: []\n",
        data = c.dir.join("data").display(),
        port = c.port,
        rpc = c.port + 1,
        admin = c.port + 2,
    );
    std::fs::write(&path, text).map_err(|source| NativeBrokerError::Prepare { path: path.clone(), source })?;
    Ok(path)
}
