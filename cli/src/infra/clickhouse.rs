//! A native ClickHouse server run as a child process with its config, data and logs in one
//! directory (a project's `.igloo/clickhouse/`), and a minimal HTTP client for it.
//! Works with Debian's `clickhouse-server` (18.16) and with the single `clickhouse` binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use igloo_schemas::Dialect;

use super::process::{port_busy, which, EngineProcess, ProcessError};

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("ClickHouse is not installed: neither `clickhouse-server` nor `clickhouse` is on PATH. On Debian/Ubuntu run `sudo apt-get install clickhouse-server` (or `bash scripts/install-engines.sh` in igloo's repository)")]
    BinaryMissing,
    #[error("port {port} ({what}) is already in use on 127.0.0.1; stop whatever listens there or set {setting} in igloo.yaml")]
    PortBusySetting { port: u16, what: &'static str, setting: &'static str },
    #[error(transparent)]
    Process(#[from] ProcessError),
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

/// A free TCP port on 127.0.0.1, for tests and for picking defaults.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// SQL over ClickHouse's HTTP interface (POST body), blocking.
#[derive(Clone, Debug)]
pub struct ClickHouseHttp {
    pub url: String,
    user: Option<(String, String)>,
    agent: ureq::Agent,
}

impl ClickHouseHttp {
    pub fn new(url: impl Into<String>) -> ClickHouseHttp {
        // No idle connections are kept: this client sends a handful of control queries, and
        // ClickHouse 18.16 waits for open keep-alive connections before it shuts down.
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout(Duration::from_secs(120))
            .max_idle_connections(0)
            .build();
        ClickHouseHttp { url: url.into().trim_end_matches('/').to_string(), user: None, agent }
    }

    /// Sends `X-ClickHouse-User` / `X-ClickHouse-Key` with every request.
    pub fn with_user(mut self, user: &str, password: &str) -> ClickHouseHttp {
        self.user = Some((user.to_string(), password.to_string()));
        self
    }

    fn post(&self) -> ureq::Request {
        let req = self.agent.post(&format!("{}/", self.url));
        match &self.user {
            Some((u, p)) => req.set("X-ClickHouse-User", u).set("X-ClickHouse-Key", p),
            None => req,
        }
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
        self.finish(self.post().send_string(sql))
    }

    /// Runs one statement with `database` as the default database.
    pub fn execute_in(&self, database: &str, sql: &str) -> Result<String, ClickHouseError> {
        self.finish(self.post().query("database", database).send_string(sql))
    }

    /// Runs a long statement (a backfill over a whole table) in `database`: no client timeout
    /// short of `timeout`, and GROUP BY spilling to disk past 2 GB instead of failing.
    pub fn execute_long(&self, database: &str, sql: &str, timeout: Duration) -> Result<String, ClickHouseError> {
        let req = self
            .post()
            .timeout(timeout)
            .query("database", database)
            .query("max_bytes_before_external_group_by", "2000000000")
            .query("max_execution_time", &timeout.as_secs().to_string());
        self.finish(req.send_string(sql))
    }

    /// The `(name, type)` columns of a `… LIMIT 0 FORMAT JSON` query run in `database`, from the
    /// `meta` of ClickHouse's answer (18.16 has no `DESCRIBE (subquery)`).
    pub fn describe(&self, database: &str, sql: &str) -> Result<Vec<(String, String)>, ClickHouseError> {
        #[derive(serde::Deserialize)]
        struct Described {
            meta: Vec<Meta>,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            name: String,
            #[serde(rename = "type")]
            ty: String,
        }
        let text = self.execute_in(database, sql)?;
        let described: Described = serde_json::from_str(&text)
            .map_err(|e| ClickHouseError::Query { message: format!("unexpected answer to {sql}: {e}") })?;
        Ok(described.meta.into_iter().map(|m| (m.name, m.ty)).collect())
    }

    /// Runs `query` (an `INSERT … FORMAT JSONEachRow`) with `rows` as the body.
    pub fn insert(&self, query: &str, rows: &str) -> Result<(), ClickHouseError> {
        self.finish(self.post().query("query", query).send_string(rows)).map(|_| ())
    }

    /// Runs a `FORMAT JSONEachRow` query and parses each row.
    pub fn rows<T: serde::de::DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        let body = self.execute(sql)?;
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| ClickHouseError::Query { message: format!("unexpected row {l}: {e}") })
            })
            .collect()
    }

    fn finish(&self, result: Result<ureq::Response, ureq::Error>) -> Result<String, ClickHouseError> {
        match result {
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
        let v = self.execute(&igloo_schemas::sql::version_query())?;
        Dialect::from_server_version(&v).map_err(|_| ClickHouseError::Version(v.trim().to_string()))
    }
}
