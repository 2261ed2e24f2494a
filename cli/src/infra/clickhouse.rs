//! A native ClickHouse server run as a child process with its config, data and logs in one
//! directory (a project's `.igloo/clickhouse/`), and a minimal HTTP client for it.
//! Works with Debian's `clickhouse-server` (18.16) and with the single `clickhouse` binary.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use igloo_schemas::Dialect;

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("ClickHouse is not installed: neither `clickhouse-server` nor `clickhouse` is on PATH. On Debian/Ubuntu run `sudo apt-get install clickhouse-server` (or `bash scripts/install-engines.sh` in igloo's repository)")]
    BinaryMissing,
    #[error("port {port} ({what}) is already in use on 127.0.0.1; stop whatever listens there or choose another port")]
    PortBusy { port: u16, what: &'static str },
    #[error("cannot prepare {path}: {source}")]
    Prepare { path: PathBuf, source: std::io::Error },
    #[error("cannot start {binary}: {source}")]
    Spawn { binary: String, source: std::io::Error },
    #[error("ClickHouse exited during start-up ({status}); last lines of {log}:\n{tail}")]
    Exited { status: String, log: PathBuf, tail: String },
    #[error("ClickHouse did not answer on {url} within {secs} s; last lines of {log}:\n{tail}")]
    Timeout { url: String, secs: u64, log: PathBuf, tail: String },
    #[error("ClickHouse at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("ClickHouse rejected the query: {message}")]
    Query { message: String },
    #[error("ClickHouse reported version `{0}`, which igloo cannot read")]
    Version(String),
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
    child: Child,
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
        for (port, what) in [(config.http_port, "ClickHouse HTTP"), (config.tcp_port, "ClickHouse native protocol")] {
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                return Err(ClickHouseError::PortBusy { port, what });
            }
        }
        let config_path = write_config(&config)?;
        let log = config.dir.join("log/clickhouse-server.log");
        let stdout = std::fs::File::create(config.dir.join("log/stdout.log"))
            .map_err(|source| ClickHouseError::Prepare { path: config.dir.join("log"), source })?;
        let child = Command::new(&binary)
            .args(pre_args)
            .arg(format!("--config-file={}", config_path.display()))
            .current_dir(&config.dir)
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().map_err(|source| ClickHouseError::Prepare { path: log.clone(), source })?)
            .stderr(stdout)
            .spawn()
            .map_err(|source| ClickHouseError::Spawn { binary: binary.display().to_string(), source })?;
        let client = ClickHouseHttp::new(format!("http://127.0.0.1:{}", config.http_port));
        let mut server = NativeClickHouse { child, client, config };
        server.wait_healthy(timeout, &log)?;
        tracing::info!(port = server.config.http_port, dir = %server.config.dir.display(), "clickhouse ready");
        Ok(server)
    }

    fn wait_healthy(&mut self, timeout: Duration, log: &Path) -> Result<(), ClickHouseError> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ClickHouseError::Exited {
                    status: status.to_string(),
                    log: log.into(),
                    tail: tail(log, 15),
                });
            }
            if self.client.ping() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(ClickHouseError::Timeout {
                    url: self.client.url.clone(),
                    secs: timeout.as_secs(),
                    log: log.into(),
                    tail: tail(log, 15),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the server to stop and waits; kills it after 10 s.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: sending a signal to our own child's pid has no memory effects.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NativeClickHouse {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(f) = std::fs::File::open(path) else { return "(no log written)".into() };
    let all: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A config both 18.16 and current servers accept (`<yandex>` is still read as the root).
fn write_config(c: &NativeConfig) -> Result<PathBuf, ClickHouseError> {
    let dir = &c.dir;
    for sub in ["data", "data/tmp", "data/user_files", "data/format_schemas", "log"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|source| ClickHouseError::Prepare { path: p, source })?;
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
        std::fs::write(path, text).map_err(|source| ClickHouseError::Prepare { path: path.to_path_buf(), source })?;
    }
    Ok(config_path)
}

/// A free TCP port on 127.0.0.1, for tests and for picking defaults.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// SQL over ClickHouse's HTTP interface (POST body), blocking.
#[derive(Clone, Debug)]
pub struct ClickHouseHttp {
    pub url: String,
    agent: ureq::Agent,
}

impl ClickHouseHttp {
    pub fn new(url: impl Into<String>) -> ClickHouseHttp {
        let agent =
            ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(2)).timeout(Duration::from_secs(60)).build();
        ClickHouseHttp { url: url.into(), agent }
    }

    pub fn ping(&self) -> bool {
        self.agent
            .get(&format!("{}/ping", self.url))
            .timeout(Duration::from_millis(500))
            .call()
            .is_ok_and(|r| r.status() == 200)
    }

    /// Runs one statement; returns the response body.
    pub fn execute(&self, sql: &str) -> Result<String, ClickHouseError> {
        match self.agent.post(&format!("{}/", self.url)).send_string(sql) {
            Ok(resp) => resp
                .into_string()
                .map_err(|e| ClickHouseError::Unreachable { url: self.url.clone(), message: e.to_string() }),
            Err(ureq::Error::Status(_, resp)) => {
                Err(ClickHouseError::Query { message: resp.into_string().unwrap_or_default().trim().to_string() })
            }
            Err(e) => Err(ClickHouseError::Unreachable { url: self.url.clone(), message: e.to_string() }),
        }
    }

    /// The server's dialect, from `SELECT version()`.
    pub fn dialect(&self) -> Result<Dialect, ClickHouseError> {
        let v = self.execute("SELECT version()")?;
        Dialect::from_server_version(&v).map_err(|_| ClickHouseError::Version(v.trim().to_string()))
    }
}
