//! A native ClickHouse server run as a child process with its config, data and logs in one
//! directory (a project's `.igloo/clickhouse/`), and the blocking face of igloo's one
//! ClickHouse client for the CLI.
//! Works with Debian's `clickhouse-server` (18.16) and with the single `clickhouse` binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use igloo_schemas::Dialect;
use igloo_server::clickhouse::ClickHouse;

use super::process::{port_busy, which, EngineProcess, ProcessError};

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("ClickHouse is not installed: neither `clickhouse-server` nor `clickhouse` is on PATH. On Debian/Ubuntu run `sudo apt-get install clickhouse-server` (or `bash scripts/install-engines.sh` in igloo's repository)")]
    BinaryMissing,
    #[error("port {port} ({what}) is already in use on 127.0.0.1; stop whatever listens there or set {setting} in igloo.yaml")]
    PortBusySetting { port: u16, what: &'static str, setting: &'static str },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Client(#[from] igloo_server::clickhouse::ClickHouseError),
}

/// Where and how to run a native server.
#[derive(Clone, Debug)]
pub struct NativeConfig {
    /// Holds `config.xml`, `users.xml`, `data/` and `log/`.
    pub dir: PathBuf,
    pub http_port: u16,
    pub tcp_port: u16,
}

/// A running server; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct NativeClickHouse {
    pub process: EngineProcess,
    pub client: ClickHouseHttp,
    pub config: NativeConfig,
}

impl NativeClickHouse {
    /// The server command: `clickhouse-server` or `clickhouse server`.
    pub fn find_binary() -> Result<(PathBuf, Vec<&'static str>), ClickHouseError> {
        if let Some(p) = which("clickhouse-server") {
            return Ok((p, vec![]));
        }
        if let Some(p) = which("clickhouse") {
            return Ok((p, vec!["server"]));
        }
        Err(ClickHouseError::BinaryMissing)
    }

    /// Writes the config, starts the server and waits until `/ping` answers.
    pub fn start(config: NativeConfig, timeout: Duration) -> Result<NativeClickHouse, ClickHouseError> {
        let (binary, pre_args) = Self::find_binary()?;
        for (port, what, setting) in [
            (config.http_port, "ClickHouse HTTP", "clickhouse.http_port"),
            (config.tcp_port, "ClickHouse native protocol", "clickhouse.tcp_port"),
        ] {
            if port_busy(port) {
                return Err(ClickHouseError::PortBusySetting { port, what, setting });
            }
        }
        let config_path = write_config(&config)?;
        let mut cmd = Command::new(&binary);
        cmd.args(pre_args).arg(format!("--config-file={}", config_path.display())).current_dir(&config.dir);
        let mut process = EngineProcess::spawn("ClickHouse", cmd, &config.dir.join("log/stdout.log"))?;
        let client = ClickHouseHttp::new(format!("http://127.0.0.1:{}", config.http_port));
        let check = format!("GET {}/ping", client.url);
        process.wait_ready(timeout, &check, || client.ping())?;
        tracing::info!(port = config.http_port, dir = %config.dir.display(), "clickhouse ready");
        Ok(NativeClickHouse { process, client, config })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(15));
    }
}

/// A config both 18.16 and current servers accept (`<yandex>` is still read as the root).
fn write_config(c: &NativeConfig) -> Result<PathBuf, ClickHouseError> {
    let dir = &c.dir;
    for sub in ["data", "data/tmp", "data/user_files", "data/format_schemas", "log"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|source| ProcessError::Prepare { path: p, source })?;
    }
    let d = dir.display();
    let config = format!(
        r#"<?xml version="1.0"?>
<!-- Written by igloo; rewritten at every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>{d}/log/clickhouse-server.log</log>
        <errorlog>{d}/log/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <path>{d}/data/</path>
    <tmp_path>{d}/data/tmp/</tmp_path>
    <user_files_path>{d}/data/user_files/</user_files_path>
    <format_schema_path>{d}/data/format_schemas/</format_schema_path>
    <users_config>{d}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <!-- Stop within a second of SIGTERM instead of waiting 5 s for idle keep-alive clients. -->
    <shutdown_wait_unfinished>1</shutdown_wait_unfinished>
    <keep_alive_timeout>1</keep_alive_timeout>
</yandex>
"#,
        http = c.http_port,
        tcp = c.tcp_port,
    );
    let users = r#"<?xml version="1.0"?>
<!-- Written by igloo: one passwordless user reachable only from this machine. -->
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#;
    let config_path = dir.join("config.xml");
    for (path, text) in [(&config_path, config.as_str()), (&dir.join("users.xml"), users)] {
        std::fs::write(path, text).map_err(|source| ProcessError::Prepare { path: path.to_path_buf(), source })?;
    }
    Ok(config_path)
}

/// A free TCP port on 127.0.0.1, for tests and for picking defaults. It is taken from below
/// the kernel's ephemeral range (32768 and up on Linux), so that an outgoing connection of
/// another process cannot take it between this check and the bind that uses it — which the
/// port 0 trick allows.
///
/// A port is handed out once per process: several picked before any is bound (a project's
/// four) must differ, and a free port stays free until its user binds it.
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static GIVEN: Mutex<std::collections::BTreeSet<u16>> = Mutex::new(std::collections::BTreeSet::new());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let seed = std::process::id().wrapping_mul(7919) ^ nanos;
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // 30000–32699: below the ephemeral range, above the ports igloo and its benchmarks use.
        let port = 30000 + (seed.wrapping_add(n.wrapping_mul(7)) % 2700) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The one ClickHouse client ([`igloo_server::clickhouse::ClickHouse`]) for the synchronous
/// CLI: each call runs the async client to completion on a small runtime of its own. It keeps
/// no idle connection (see [`ClickHouse::without_keep_alive`]).
#[derive(Clone)]
pub struct ClickHouseHttp {
    pub url: String,
    client: ClickHouse,
    rt: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ClickHouseHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseHttp").field("url", &self.url).finish_non_exhaustive()
    }
}

impl ClickHouseHttp {
    pub fn new(url: impl Into<String>) -> ClickHouseHttp {
        Self::connect(url.into(), None)
    }

    fn connect(url: String, auth: Option<(String, String)>) -> ClickHouseHttp {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime starts");
        let client = ClickHouse::without_keep_alive(&url, auth);
        ClickHouseHttp { url: client.url().to_string(), client, rt: Arc::new(rt) }
    }

    /// Sends `X-ClickHouse-User` / `X-ClickHouse-Key` with every request.
    pub fn with_user(self, user: &str, password: &str) -> ClickHouseHttp {
        Self::connect(self.url, Some((user.to_string(), password.to_string())))
    }

    /// The client for a cluster ([`igloo_server::clickhouse::CLUSTER_SETTINGS`]) when
    /// `on_cluster`, else this one.
    pub fn for_cluster(self, on_cluster: bool) -> ClickHouseHttp {
        ClickHouseHttp { client: self.client.for_cluster(on_cluster), ..self }
    }

    /// The async client itself, for code that runs on a runtime (the server).
    pub fn client(&self) -> &ClickHouse {
        &self.client
    }

    pub fn ping(&self) -> bool {
        self.rt.block_on(self.client.ping_within(Duration::from_millis(500)))
    }

    /// Runs one statement; returns the response body.
    pub fn execute(&self, sql: &str) -> Result<String, ClickHouseError> {
        Ok(self.rt.block_on(self.client.execute(sql))?)
    }

    /// Runs one statement with `database` as the default database.
    pub fn execute_in(&self, database: &str, sql: &str) -> Result<String, ClickHouseError> {
        Ok(self.rt.block_on(self.client.execute_in(database, sql))?)
    }

    /// See [`ClickHouse::execute_long`].
    pub fn execute_long(&self, database: &str, sql: &str, timeout: Duration) -> Result<String, ClickHouseError> {
        Ok(self.rt.block_on(self.client.execute_long(database, sql, timeout))?)
    }

    /// See [`ClickHouse::describe`].
    pub fn describe(&self, database: &str, sql: &str) -> Result<Vec<(String, String)>, ClickHouseError> {
        Ok(self.rt.block_on(self.client.describe(database, sql))?)
    }

    /// Runs `query` (an `INSERT … FORMAT JSONEachRow`) with `rows` as the body.
    pub fn insert(&self, query: &str, rows: &str) -> Result<(), ClickHouseError> {
        Ok(self.rt.block_on(self.client.insert(query, rows.to_string()))?)
    }

    /// Runs a `FORMAT JSONEachRow` query and parses each row.
    pub fn rows<T: serde::de::DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        Ok(self.rt.block_on(self.client.rows(sql))?)
    }

    /// See [`ClickHouse::cluster_nodes`].
    pub fn cluster_nodes(&self, cluster: &str) -> Result<Vec<igloo_server::clickhouse::ClusterNode>, ClickHouseError> {
        Ok(self.rt.block_on(self.client.cluster_nodes(cluster))?)
    }

    /// The server's dialect, from `SELECT version()`.
    pub fn dialect(&self) -> Result<Dialect, ClickHouseError> {
        Ok(self.rt.block_on(self.client.dialect())?)
    }
}
