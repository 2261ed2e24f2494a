//! The project file `igloo.yaml`, loaded in exactly one place: [`ProjectConfig::load`] reads the
//! file, applies `IGLOO_*` environment overrides and validates. Unknown keys are errors, so a
//! typo never silently falls back to a default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use igloo_schemas::Dialect;

use serde::{Deserialize, Serialize};

/// `FromStr` and `Display` for an enum written as one word per variant in `igloo.yaml`,
/// `IGLOO_*` variables and flags; an unknown word is an error listing the words:
/// `word_enum!(InfraMode, "an infra mode", { Native => "native", … })`.
macro_rules! word_enum {
    ($name:ident, $what:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(format!("`{s}` is not {}; use {}", $what, $crate::config::one_of(&[$($word),+]))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $($name::$variant => $word,)+
                })
            }
        }
    };
}
pub(crate) use word_enum;

/// `a, b or c`.
pub(crate) fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

mod auth;
mod broker;

pub use auth::{AuthMode, CorsConfig, JwtConfig, TlsConfig};
pub use broker::{
    BrokerConfig, BrokerEngine, BrokerSecurity, CompressionSetting, FramingSetting, SaslMechanism, SecurityProtocol,
};

pub const FILE_NAME: &str = "igloo.yaml";

/// `igloo.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project name: letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// Language of transforms and of the generated SDK.
    #[serde(default)]
    pub language: Language,
    #[serde(default)]
    pub infra: InfraConfig,
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    #[serde(default)]
    pub broker: BrokerConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub writer: WriterConfig,
    #[serde(default)]
    pub transforms: TransformsConfig,
}

/// The HTTP server (`igloo dev`, `igloo serve`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (IGLOO_SERVER_LISTEN).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted, in bytes, after gzip decompression
    /// (IGLOO_SERVER_MAX_BODY_BYTES).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Extra ingest paths, each naming a model: `"/save": Measurement`.
    #[serde(default)]
    pub routes: std::collections::BTreeMap<String, String>,
    /// `off` or `required` (IGLOO_SERVER_AUTH). Unset: `off` under `igloo dev`, `required`
    /// under `igloo serve` and the deploy targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMode>,
    /// JSON Web Tokens accepted beside API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
    /// Requests per second one IP may make without a valid credential before 429
    /// (IGLOO_SERVER_UNAUTHENTICATED_RATE).
    #[serde(default = "default_unauthenticated_rate")]
    pub unauthenticated_rate: f64,
    /// Browser origins allowed to call the server (IGLOO_SERVER_CORS_ORIGINS, comma-separated).
    #[serde(default)]
    pub cors: CorsConfig,
    /// Serve HTTPS (IGLOO_SERVER_TLS_CERT, IGLOO_SERVER_TLS_KEY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Requests in progress at most; beyond, 503 with Retry-After
    /// (IGLOO_SERVER_MAX_CONCURRENT_REQUESTS).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: usize,
    /// Threads of the server's async runtime (IGLOO_SERVER_WORKER_THREADS); librdkafka has
    /// threads of its own. 2 by default (BENCHMARKS.md, issue 20, measured 1 against 2); more
    /// lets `igloo serve` use more cores.
    #[serde(default = "default_worker_threads")]
    pub worker_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            routes: Default::default(),
            auth: None,
            jwt: None,
            unauthenticated_rate: default_unauthenticated_rate(),
            cors: CorsConfig::default(),
            tls: None,
            max_concurrent_requests: default_max_concurrent(),
            worker_threads: default_worker_threads(),
        }
    }
}

fn default_max_concurrent() -> usize {
    1024
}

fn default_unauthenticated_rate() -> f64 {
    10.0
}

fn default_listen() -> String {
    "127.0.0.1:4000".into()
}

fn default_worker_threads() -> usize {
    2
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}

/// The table writer: how rows are batched into ClickHouse inserts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    /// Flush a batch at this many rows (IGLOO_WRITER_MAX_ROWS).
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Flush a batch at this many bytes of row data (IGLOO_WRITER_MAX_BYTES).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Flush a batch this long after its first row was produced (its message's timestamp), in
    /// milliseconds (IGLOO_WRITER_FLUSH_MS): a backlog older than that goes at once.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
    /// Under `igloo serve`: how long a writer replica may go silent (killed, frozen, cut off)
    /// before its partitions move to the others, in milliseconds
    /// (IGLOO_WRITER_SESSION_TIMEOUT_MS). The consumer group's `session.timeout.ms`.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// How long an ingest request's `Idempotency-Key` is remembered: a batch sent again with
    /// the same key within it lands once (IGLOO_WRITER_IDEMPOTENCY_WINDOW). `90s`, `30m`, `24h`,
    /// `7d`.
    #[serde(default = "default_idempotency_window")]
    pub idempotency_window: Span,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig {
            max_rows: default_max_rows(),
            max_bytes: default_max_bytes(),
            flush_ms: default_flush_ms(),
            session_timeout_ms: default_session_timeout_ms(),
            idempotency_window: default_idempotency_window(),
        }
    }
}

fn default_idempotency_window() -> Span {
    Span(Duration::from_secs(24 * 3600))
}

/// A positive duration written `90s`, `30m`, `24h` or `7d` (in YAML and in the environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl std::str::FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Span, String> {
        igloo_schemas::duration_ms(s.trim())
            .map(|ms| Span(Duration::from_millis(ms)))
            .ok_or_else(|| format!("`{s}` is not a duration; write it like 90s, 30m, 24h or 7d"))
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.as_secs();
        match secs {
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn default_session_timeout_ms() -> u64 {
    10_000
}

fn default_max_rows() -> usize {
    100_000
}

fn default_max_bytes() -> usize {
    32 * 1024 * 1024
}

fn default_flush_ms() -> u64 {
    200
}

/// User transforms (`transforms/<Source>__<Destination>.ts|.py`): how they run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformsConfig {
    /// Worker processes per transform; the source topic's partitions are spread over them
    /// (IGLOO_TRANSFORMS_WORKERS).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Per-transform worker counts, by transform name (`PageView__PageVisit: 2`).
    #[serde(default)]
    pub overrides: std::collections::BTreeMap<String, usize>,
    /// Records handed to a worker at once, at most (IGLOO_TRANSFORMS_MAX_BATCH).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// How long a batch waits to fill after its first record, in ms (IGLOO_TRANSFORMS_FLUSH_MS).
    #[serde(default = "default_transform_flush_ms")]
    pub flush_ms: u64,
    /// A batch not answered within this many ms counts as a crash: the worker is killed and
    /// restarted, the batch redelivered (IGLOO_TRANSFORMS_TIMEOUT_MS).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The Node.js executable for `.ts` transforms (IGLOO_NODE).
    #[serde(default = "default_node")]
    pub node: String,
    /// The Python 3 executable for `.py` transforms (IGLOO_PYTHON).
    #[serde(default = "default_python")]
    pub python: String,
    /// The tsx package directory used to run `.ts` files (IGLOO_TSX). Default: the project's
    /// node_modules/tsx, else ~/.cache/igloo/node/node_modules/tsx (scripts/install-engines.sh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsx: Option<String>,
}

impl Default for TransformsConfig {
    fn default() -> TransformsConfig {
        TransformsConfig {
            workers: default_workers(),
            overrides: Default::default(),
            max_batch: default_max_batch(),
            flush_ms: default_transform_flush_ms(),
            timeout_ms: default_timeout_ms(),
            node: default_node(),
            python: default_python(),
            tsx: None,
        }
    }
}

impl TransformsConfig {
    pub fn workers_of(&self, transform: &str) -> usize {
        self.overrides.get(transform).copied().unwrap_or(self.workers)
    }
}

fn default_workers() -> usize {
    1
}

fn default_max_batch() -> usize {
    1000
}

fn default_transform_flush_ms() -> u64 {
    20
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_node() -> String {
    "node".into()
}

fn default_python() -> String {
    "python3".into()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraConfig {
    /// Where the engines come from: `native` (child processes), `docker` (docker compose) or
    /// `external` (existing clusters). Default: docker if a Docker engine answers, else native.
    #[serde(default)]
    pub mode: Option<InfraMode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfraMode {
    Native,
    Docker,
    External,
}

word_enum!(InfraMode, "an infra mode", { Native => "native", Docker => "docker", External => "external" });

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Ts,
    Python,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// Database the project's tables live in. Default: the project name with `-` as `_`.
    #[serde(default)]
    pub database: Option<String>,
    /// ClickHouse version to check and plan against when no server is asked (`igloo check`,
    /// `igloo plan --offline`): `current` or a version such as `18.16`. Default: `current`.
    #[serde(default)]
    pub target: Option<String>,
    /// HTTP port of the local ClickHouse in native and docker mode (IGLOO_CLICKHOUSE_HTTP_PORT).
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// Native-protocol port of the local ClickHouse (IGLOO_CLICKHOUSE_TCP_PORT).
    #[serde(default = "default_tcp_port")]
    pub tcp_port: u16,
    /// External mode: URL of the ClickHouse HTTP interface (IGLOO_CLICKHOUSE_URL).
    #[serde(default)]
    pub url: Option<String>,
    /// External mode: user (IGLOO_CLICKHOUSE_USER). Default: `default`.
    #[serde(default)]
    pub user: Option<String>,
    /// External mode: password (IGLOO_CLICKHOUSE_PASSWORD).
    #[serde(default)]
    pub password: Option<String>,
    /// A ClickHouse cluster (its name in the servers' `remote_servers`) to create every table
    /// on: replicated tables under `Distributed` ones, DDL `ON CLUSTER` (IGLOO_CLICKHOUSE_CLUSTER).
    #[serde(default)]
    pub cluster: Option<String>,
    /// On a cluster: the keeper path of a replicated table. igloo fills `{database}` and
    /// `{table}`, ClickHouse its macros. Default: `/clickhouse/tables/{shard}/{database}/{table}`.
    #[serde(default)]
    pub zookeeper_path: Option<String>,
    /// On a cluster: the replica name. Default: `{replica}` (the servers' macro).
    #[serde(default)]
    pub replica: Option<String>,
}

impl Default for ClickHouseConfig {
    fn default() -> ClickHouseConfig {
        ClickHouseConfig {
            database: None,
            target: None,
            http_port: default_http_port(),
            tcp_port: default_tcp_port(),
            url: None,
            user: None,
            password: None,
            cluster: None,
            zookeeper_path: None,
            replica: None,
        }
    }
}

fn default_http_port() -> u16 {
    18123
}

fn default_tcp_port() -> u16 {
    19000
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no {FILE_NAME} in {0} or any parent directory; run `igloo init` to create a project")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid igloo project file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: &'static str, message: String },
}

/// A project on disk: its root directory and its configuration.
#[derive(Clone, Debug)]
pub struct Project {
    pub root: PathBuf,
    pub config: ProjectConfig,
}

impl Project {
    /// Finds `igloo.yaml` in `start` or its ancestors and loads it with env overrides.
    pub fn discover(start: &Path) -> Result<Project, ConfigError> {
        let root = start
            .ancestors()
            .find(|dir| dir.join(FILE_NAME).is_file())
            .ok_or_else(|| ConfigError::NotFound(start.to_path_buf()))?;
        let config = ProjectConfig::load(&root.join(FILE_NAME), |k| std::env::var(k).ok())?;
        Ok(Project { root: root.to_path_buf(), config })
    }

    pub fn schema_dir(&self) -> PathBuf {
        self.root.join("schema")
    }
}

impl ProjectConfig {
    /// Reads and validates a project file; `env` looks up `IGLOO_*` overrides. `IGLOO_ENV`
    /// selects one of the file's `environments:`, whose settings replace the top-level ones.
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<ProjectConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let parse_error = |message| ConfigError::Parse { path: path.into(), message };
        let mut config = ProjectConfig::parse(&text, env("IGLOO_ENV").as_deref()).map_err(parse_error)?;
        config.apply_env(env)?;
        config.validate().map_err(|message| ConfigError::Invalid { path: path.into(), message })?;
        Ok(config)
    }

    /// The file's settings, with environment `selected` laid over them. Every environment is
    /// checked, selected or not, so a typo in `prod:` shows up in development.
    fn parse(text: &str, selected: Option<&str>) -> Result<ProjectConfig, String> {
        let mut value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if value.pointer("/broker/security/password").is_some() {
            return Err("secrets never go in igloo.yaml: remove `broker.security.password` and set IGLOO_BROKER_PASSWORD, or `broker.security.password_file` to a file holding it".into());
        }
        let environments =
            match value.as_object_mut().and_then(|o| o.remove("environments")) {
                // The common case: errors come from the YAML reader itself, with line and column.
                None if selected.is_none() => return serde_saphyr::from_str(text).map_err(|e| e.to_string()),
                None | Some(serde_json::Value::Null) => serde_json::Map::new(),
                Some(serde_json::Value::Object(envs)) => envs,
                Some(_) => return Err(
                    "`environments` must map names to settings, e.g. `environments: {prod: {clickhouse: {url: …}}}`"
                        .into(),
                ),
            };
        let typed = |v: serde_json::Value| serde_json::from_value::<ProjectConfig>(v).map_err(|e| e.to_string());
        for (name, overlay) in &environments {
            if !overlay.is_object() || overlay.get("name").is_some() {
                return Err(format!("`environments.{name}` must hold settings other than `name`"));
            }
            let mut merged = value.clone();
            overlay_onto(&mut merged, overlay);
            typed(merged).map_err(|e| format!("`environments.{name}`: {e}"))?;
        }
        if let Some(name) = selected {
            let Some(overlay) = environments.get(name) else {
                let known: Vec<&str> = environments.keys().map(String::as_str).collect();
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                return Err(format!(
                    "IGLOO_ENV={name}, but igloo.yaml has no such environment (environments: {known})"
                ));
            };
            overlay_onto(&mut value, overlay);
        }
        typed(value)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let ch = &mut self.clickhouse;
        set(&env, "IGLOO_CLICKHOUSE_DATABASE", &mut ch.database);
        if let Some(target) = parsed::<Dialect>(&env, "IGLOO_CLICKHOUSE_TARGET")? {
            ch.target = Some(target.to_string());
        }
        set(&env, "IGLOO_CLICKHOUSE_URL", &mut ch.url);
        set(&env, "IGLOO_CLICKHOUSE_USER", &mut ch.user);
        set(&env, "IGLOO_CLICKHOUSE_PASSWORD", &mut ch.password);
        set(&env, "IGLOO_CLICKHOUSE_CLUSTER", &mut ch.cluster);
        ch.http_port = parsed(&env, "IGLOO_CLICKHOUSE_HTTP_PORT")?.unwrap_or(ch.http_port);
        ch.tcp_port = parsed(&env, "IGLOO_CLICKHOUSE_TCP_PORT")?.unwrap_or(ch.tcp_port);
        self.infra.mode = parsed(&env, "IGLOO_INFRA_MODE")?.or(self.infra.mode);
        self.broker.port = parsed(&env, "IGLOO_BROKER_PORT")?.unwrap_or(self.broker.port);
        self.broker.engine = parsed(&env, "IGLOO_BROKER_ENGINE")?.unwrap_or(self.broker.engine);
        set(&env, "IGLOO_BROKER_STORAGE", &mut self.broker.storage);
        set(&env, "IGLOO_BROKER_BOOTSTRAP_SERVERS", &mut self.broker.bootstrap_servers);
        self.broker.framing = parsed(&env, "IGLOO_BROKER_FRAMING")?.unwrap_or(self.broker.framing);
        self.broker.compression = parsed(&env, "IGLOO_BROKER_COMPRESSION")?.unwrap_or(self.broker.compression);
        self.broker.replication_factor =
            parsed(&env, "IGLOO_BROKER_REPLICATION_FACTOR")?.or(self.broker.replication_factor);
        self.broker.min_insync_replicas =
            parsed(&env, "IGLOO_BROKER_MIN_INSYNC_REPLICAS")?.or(self.broker.min_insync_replicas);
        if let Some(prefix) = env("IGLOO_BROKER_TOPIC_PREFIX") {
            self.broker.topic_prefix = prefix;
        }
        let sec = &mut self.broker.security;
        sec.protocol = parsed(&env, "IGLOO_BROKER_SECURITY_PROTOCOL")?.unwrap_or(sec.protocol);
        sec.sasl_mechanism = parsed(&env, "IGLOO_BROKER_SASL_MECHANISM")?.unwrap_or(sec.sasl_mechanism);
        set(&env, "IGLOO_BROKER_USERNAME", &mut sec.username);
        sec.password_file = env("IGLOO_BROKER_PASSWORD_FILE").map(PathBuf::from).or(sec.password_file.take());
        sec.ssl_ca = env("IGLOO_BROKER_SSL_CA").map(PathBuf::from).or(sec.ssl_ca.take());
        sec.ssl_certificate = env("IGLOO_BROKER_SSL_CERTIFICATE").map(PathBuf::from).or(sec.ssl_certificate.take());
        sec.ssl_key = env("IGLOO_BROKER_SSL_KEY").map(PathBuf::from).or(sec.ssl_key.take());
        sec.password = match (env("IGLOO_BROKER_PASSWORD"), &sec.password_file) {
            (Some(p), _) => Some(p),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| ConfigError::Env {
                        var: "IGLOO_BROKER_PASSWORD_FILE",
                        message: format!("cannot read {}: {e}", file.display()),
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            (None, None) => None,
        };
        if let Some(listen) = env("IGLOO_SERVER_LISTEN") {
            self.server.listen = listen;
        }
        self.server.max_body_bytes = parsed(&env, "IGLOO_SERVER_MAX_BODY_BYTES")?.unwrap_or(self.server.max_body_bytes);
        self.server.auth = parsed(&env, "IGLOO_SERVER_AUTH")?.or(self.server.auth);
        self.server.max_concurrent_requests =
            parsed(&env, "IGLOO_SERVER_MAX_CONCURRENT_REQUESTS")?.unwrap_or(self.server.max_concurrent_requests);
        self.server.worker_threads = parsed(&env, "IGLOO_SERVER_WORKER_THREADS")?.unwrap_or(self.server.worker_threads);
        self.server.unauthenticated_rate =
            parsed(&env, "IGLOO_SERVER_UNAUTHENTICATED_RATE")?.unwrap_or(self.server.unauthenticated_rate);
        if let Some(origins) = env("IGLOO_SERVER_CORS_ORIGINS") {
            self.server.cors.origins =
                origins.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_string).collect();
        }
        match (env("IGLOO_SERVER_TLS_CERT"), env("IGLOO_SERVER_TLS_KEY")) {
            (Some(cert), Some(key)) => self.server.tls = Some(TlsConfig { cert: cert.into(), key: key.into() }),
            (None, None) => {}
            _ => {
                return Err(ConfigError::Env {
                    var: "IGLOO_SERVER_TLS_CERT",
                    message: "set both IGLOO_SERVER_TLS_CERT and IGLOO_SERVER_TLS_KEY, or neither".into(),
                })
            }
        }
        self.writer.max_rows = parsed(&env, "IGLOO_WRITER_MAX_ROWS")?.unwrap_or(self.writer.max_rows);
        self.writer.max_bytes = parsed(&env, "IGLOO_WRITER_MAX_BYTES")?.unwrap_or(self.writer.max_bytes);
        self.writer.flush_ms = parsed(&env, "IGLOO_WRITER_FLUSH_MS")?.unwrap_or(self.writer.flush_ms);
        self.writer.session_timeout_ms =
            parsed(&env, "IGLOO_WRITER_SESSION_TIMEOUT_MS")?.unwrap_or(self.writer.session_timeout_ms);
        self.writer.idempotency_window =
            parsed(&env, "IGLOO_WRITER_IDEMPOTENCY_WINDOW")?.unwrap_or(self.writer.idempotency_window);
        let t = &mut self.transforms;
        t.workers = parsed(&env, "IGLOO_TRANSFORMS_WORKERS")?.unwrap_or(t.workers);
        t.max_batch = parsed(&env, "IGLOO_TRANSFORMS_MAX_BATCH")?.unwrap_or(t.max_batch);
        t.flush_ms = parsed(&env, "IGLOO_TRANSFORMS_FLUSH_MS")?.unwrap_or(t.flush_ms);
        t.timeout_ms = parsed(&env, "IGLOO_TRANSFORMS_TIMEOUT_MS")?.unwrap_or(t.timeout_ms);
        t.node = parsed(&env, "IGLOO_NODE")?.unwrap_or_else(|| t.node.clone());
        t.python = parsed(&env, "IGLOO_PYTHON")?.unwrap_or_else(|| t.python.clone());
        set(&env, "IGLOO_TSX", &mut t.tsx);
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if !valid_project_name(&self.name) {
            return Err(format!("`name: {}` must be letters, digits, `-` and `_`, starting with a letter", self.name));
        }
        if let Some(db) = &self.clickhouse.database {
            if db.is_empty() || db.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '_')) {
                return Err(format!("`clickhouse.database: {db}` must be letters, digits and `_`"));
            }
        }
        if let Some(jwt) = &self.server.jwt {
            jwt.validate()?;
        }
        if self.server.max_concurrent_requests == 0 {
            return Err("`server.max_concurrent_requests` must be at least 1".into());
        }
        if self.server.worker_threads == 0 {
            return Err("`server.worker_threads` must be at least 1".into());
        }
        if !self.server.unauthenticated_rate.is_finite() || self.server.unauthenticated_rate <= 0.0 {
            return Err("`server.unauthenticated_rate` must be a positive number of requests per second".into());
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("`server.listen: {}` must be an address such as 127.0.0.1:4000", self.server.listen));
        }
        for (path, target) in &self.server.routes {
            if !path.starts_with('/') || path.starts_with("/ingest/") || path.contains(['{', '}', '*']) {
                return Err(format!(
                    "`server.routes`: `{path}` must be a plain path starting with `/`, outside /ingest/"
                ));
            }
            let model = target.strip_suffix(".samples").unwrap_or(target);
            if model.is_empty() || !model.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`server.routes`: `{path}: {target}` must name a model (`Model`, POST ingest) or a time series' samples (`Model.samples`, GET)"
                ));
            }
        }
        let prefix = &self.broker.topic_prefix;
        if prefix.len() > 100 || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(format!(
                "`broker.topic_prefix: {prefix}` must be at most 100 letters, digits, `.`, `_` and `-`"
            ));
        }
        let sec = &self.broker.security;
        if sec.protocol.sasl() && (sec.username.is_none() || sec.password.is_none()) {
            return Err(format!(
                "`broker.security.protocol: {}` needs `broker.security.username` (IGLOO_BROKER_USERNAME) and a password: IGLOO_BROKER_PASSWORD, or `broker.security.password_file`",
                sec.protocol.name()
            ));
        }
        if self.writer.max_rows == 0 || self.writer.max_bytes == 0 || self.writer.flush_ms == 0 {
            return Err("`writer.max_rows`, `writer.max_bytes` and `writer.flush_ms` must be above 0".into());
        }
        let t = &self.transforms;
        if t.workers == 0 || t.max_batch == 0 || t.flush_ms == 0 || t.timeout_ms == 0 {
            return Err("`transforms.workers`, `max_batch`, `flush_ms` and `timeout_ms` must be above 0".into());
        }
        if let Some((name, _)) = t.overrides.iter().find(|(_, n)| **n == 0) {
            return Err(format!("`transforms.overrides.{name}` must be above 0"));
        }
        if let Some(t) = &self.clickhouse.target {
            t.parse::<Dialect>().map_err(|e| format!("`clickhouse.target`: {e}"))?;
        }
        if let Some(c) = &self.clickhouse.cluster {
            if c.is_empty() || !c.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
                return Err(format!("`clickhouse.cluster: {c}` must name a cluster of the servers' `remote_servers` (letters, digits, `_`, `-`, `.`)"));
            }
        }
        let ch = &self.clickhouse;
        if ch.cluster.is_none() && (ch.zookeeper_path.is_some() || ch.replica.is_some()) {
            return Err(
                "`clickhouse.zookeeper_path` and `clickhouse.replica` apply only with `clickhouse.cluster`".into()
            );
        }
        Ok(())
    }

    /// The ClickHouse cluster tables are created on, if any.
    pub fn cluster(&self) -> Option<igloo_schemas::sql::Cluster> {
        let ch = &self.clickhouse;
        let mut cluster = igloo_schemas::sql::Cluster::named(ch.cluster.as_deref()?);
        if let Some(path) = &ch.zookeeper_path {
            cluster.zookeeper_path = path.clone();
        }
        if let Some(replica) = &ch.replica {
            cluster.replica = replica.clone();
        }
        Some(cluster)
    }

    pub fn database(&self) -> String {
        self.clickhouse.database.clone().unwrap_or_else(|| self.name.replace('-', "_"))
    }

    /// The offline target; validated at load time.
    pub fn target(&self) -> Dialect {
        self.clickhouse.target.as_deref().and_then(|t| t.parse().ok()).unwrap_or(Dialect::CURRENT)
    }
}

/// Lays `overlay`'s keys over `base`, maps key by key, anything else replaced.
fn overlay_onto(base: &mut serde_json::Value, overlay: &serde_json::Value) {
    match (base, overlay) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                overlay_onto(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn set(env: &impl Fn(&str) -> Option<String>, var: &'static str, slot: &mut Option<String>) {
    if let Some(v) = env(var) {
        *slot = Some(v);
    }
}

/// An `IGLOO_*` variable parsed as `T`; a value that does not parse is an error naming it.
fn parsed<T: std::str::FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    env(var).map(|v| v.parse::<T>().map_err(|e| ConfigError::Env { var, message: format!("`{v}`: {e}") })).transpose()
}

/// Letters, digits, `-` and `_`, starting with a letter, at most 64 characters.
pub fn valid_project_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<ProjectConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        ProjectConfig::load(&path, |k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_and_env_overrides() {
        let c = load("name: my-shop\n", &[]).unwrap();
        assert_eq!(c.database(), "my_shop");
        assert_eq!(c.target(), Dialect::CURRENT);
        assert_eq!(c.language, Language::Ts);
        let c = load(
            "name: shop\nclickhouse:\n  target: current\n",
            &[("IGLOO_CLICKHOUSE_TARGET", "18.16"), ("IGLOO_CLICKHOUSE_DATABASE", "x")],
        )
        .unwrap();
        assert_eq!(c.target(), Dialect::V18_16);
        assert_eq!(c.database(), "x");
        let c = load(
            "name: shop\ninfra:\n  mode: external\nbroker:\n  bootstrap_servers: a:9092\n",
            &[("IGLOO_CLICKHOUSE_HTTP_PORT", "28123"), ("IGLOO_BROKER_ENGINE", "tansu")],
        )
        .unwrap();
        assert_eq!(c.infra.mode, Some(InfraMode::External));
        assert_eq!(c.clickhouse.http_port, 28123);
        assert_eq!(c.clickhouse.tcp_port, 19000);
        assert_eq!(c.broker.engine, BrokerEngine::Tansu);
        assert_eq!(c.broker.bootstrap_servers.as_deref(), Some("a:9092"));
        let c = load("name: shop\nbroker:\n  replication_factor: 3\n", &[("IGLOO_BROKER_MIN_INSYNC_REPLICAS", "2")])
            .unwrap();
        assert_eq!((c.broker.replication_factor, c.broker.min_insync_replicas), (Some(3), Some(2)));
        let pg = "postgres://postgres@127.0.0.1:25432/tansu";
        let c = load("name: shop\nbroker:\n  storage: sqlite://x.db\n", &[("IGLOO_BROKER_STORAGE", pg)]).unwrap();
        assert_eq!(c.broker.storage.as_deref(), Some(pg));
        assert_eq!(load("name: shop\n", &[]).unwrap().broker.storage, None);
        assert_eq!(load("name: shop\n", &[]).unwrap().server.worker_threads, 2);
        let c = load("name: shop\nserver:\n  worker_threads: 4\n", &[("IGLOO_SERVER_WORKER_THREADS", "1")]).unwrap();
        assert_eq!(c.server.worker_threads, 1);
        let e = load("name: shop\nserver:\n  worker_threads: 0\n", &[]).unwrap_err().to_string();
        assert!(e.contains("`server.worker_threads` must be at least 1"), "{e}");
        let e = load("name: shop\n", &[("IGLOO_CLICKHOUSE_HTTP_PORT", "lots")]).unwrap_err().to_string();
        assert!(e.starts_with("environment variable IGLOO_CLICKHOUSE_HTTP_PORT: `lots`"), "{e}");
        let e = load("name: shop\n", &[("IGLOO_INFRA_MODE", "k8s")]).unwrap_err().to_string();
        assert!(e.contains("not an infra mode"), "{e}");
    }

    #[test]
    fn compression_is_none_on_the_local_broker_and_lz4_elsewhere_unless_set() {
        use crate::kafka::Compression;
        let c = load("name: shop\n", &[]).unwrap();
        assert_eq!(c.broker.compression(InfraMode::Native), Compression::None);
        assert_eq!(c.broker.compression(InfraMode::Docker), Compression::Lz4);
        assert_eq!(c.broker.compression(InfraMode::External), Compression::Lz4);
        let c = load("name: shop\nbroker:\n  compression: zstd\n", &[]).unwrap();
        assert_eq!(c.broker.compression(InfraMode::Native), Compression::Zstd);
        let c = load("name: shop\n", &[("IGLOO_BROKER_COMPRESSION", "none")]).unwrap();
        assert_eq!(c.broker.compression(InfraMode::External).name(), "none");
        let e = load("name: shop\n", &[("IGLOO_BROKER_COMPRESSION", "brotli")]).unwrap_err().to_string();
        assert!(e.contains("not a compression"), "{e}");
    }

    #[test]
    fn environments_lay_their_settings_over_the_file() {
        let text = "name: shop\nclickhouse:\n  database: shop\n  http_port: 18123\nenvironments:\n  prod:\n    infra:\n      mode: external\n    clickhouse:\n      url: http://ch:8123\n";
        let dev = load(text, &[]).unwrap();
        assert_eq!((dev.infra.mode, dev.clickhouse.url.as_deref()), (None, None));
        let prod = load(text, &[("IGLOO_ENV", "prod")]).unwrap();
        assert_eq!(prod.infra.mode, Some(InfraMode::External));
        assert_eq!(prod.clickhouse.url.as_deref(), Some("http://ch:8123"));
        assert_eq!(prod.clickhouse.database.as_deref(), Some("shop"), "kept where the environment is silent");
        // IGLOO_* still win over the environment.
        let prod = load(text, &[("IGLOO_ENV", "prod"), ("IGLOO_CLICKHOUSE_URL", "http://other:8123")]).unwrap();
        assert_eq!(prod.clickhouse.url.as_deref(), Some("http://other:8123"));
        let e = load(text, &[("IGLOO_ENV", "staging")]).unwrap_err().to_string();
        assert!(e.contains("no such environment (environments: prod)"), "{e}");
        let e = load("name: shop\nenvironments:\n  prod:\n    clickhose: {}\n", &[]).unwrap_err().to_string();
        assert!(e.contains("`environments.prod`") && e.contains("clickhose"), "{e}");
    }

    #[test]
    fn broker_secrets_come_from_the_environment_or_a_file() {
        let sasl = "name: shop\nbroker:\n  security:\n    protocol: SASL_SSL\n    username: igloo\n";
        let e = load(sasl, &[]).unwrap_err().to_string();
        assert!(e.contains("IGLOO_BROKER_PASSWORD") && e.contains("password_file"), "{e}");
        let c = load(sasl, &[("IGLOO_BROKER_PASSWORD", "pw")]).unwrap();
        assert_eq!(c.broker.security.password.as_deref(), Some("pw"));
        assert_eq!(c.broker.security.sasl_mechanism, SaslMechanism::ScramSha512);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let c = load(sasl, &[("IGLOO_BROKER_PASSWORD_FILE", file.to_str().unwrap())]).unwrap();
        assert_eq!(c.broker.security.password.as_deref(), Some("from-file"));
        let e = load("name: shop\nbroker:\n  security:\n    password: oops\n", &[]).unwrap_err().to_string();
        assert!(e.contains("secrets never go in igloo.yaml"), "{e}");
        let e = load("name: shop\n", &[("IGLOO_BROKER_SECURITY_PROTOCOL", "TLS")]).unwrap_err().to_string();
        assert!(e.contains("not a security protocol"), "{e}");
    }

    #[test]
    fn rejects_unknown_keys_bad_values_and_bad_env() {
        let e = load("name: shop\nclickhose: {}\n", &[]).unwrap_err().to_string();
        assert!(e.contains("clickhose"), "{e}");
        let e = load("name: 1shop\n", &[]).unwrap_err().to_string();
        assert!(e.contains("must be letters"), "{e}");
        let e = load("name: shop\nclickhouse:\n  target: eighteen\n", &[]).unwrap_err().to_string();
        assert!(e.contains("not a ClickHouse version"), "{e}");
        let e = load("name: shop\n", &[("IGLOO_CLICKHOUSE_TARGET", "x")]).unwrap_err().to_string();
        assert!(e.starts_with("environment variable IGLOO_CLICKHOUSE_TARGET"), "{e}");
        let e = load("name: shop\nlanguage: rust\n", &[]).unwrap_err().to_string();
        assert!(e.contains("language") || e.contains("rust"), "{e}");
    }

    #[test]
    fn a_cluster_comes_from_the_file_or_the_environment_with_default_replication() {
        assert!(load("name: shop\n", &[]).unwrap().cluster().is_none());
        let c = load("name: shop\n", &[("IGLOO_CLICKHOUSE_CLUSTER", "igloo")]).unwrap().cluster().unwrap();
        assert_eq!(c, igloo_schemas::sql::Cluster::named("igloo"));
        assert_eq!(c.path("db", "t"), "/clickhouse/tables/{shard}/db/t");
        let text =
            "name: shop\nclickhouse:\n  cluster: main\n  zookeeper_path: /ch/{shard}/{table}\n  replica: '{host}'\n";
        let c = load(text, &[]).unwrap().cluster().unwrap();
        assert_eq!((c.path("db", "t").as_str(), c.replica.as_str()), ("/ch/{shard}/t", "{host}"));
        let e = load("name: shop\nclickhouse:\n  replica: r1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("only with `clickhouse.cluster`"), "{e}");
        let e = load("name: shop\nclickhouse:\n  cluster: 'a b'\n", &[]).unwrap_err().to_string();
        assert!(e.contains("must name a cluster"), "{e}");
    }
}
