//! The one ClickHouse client: async, over ClickHouse's HTTP interface (statements, JSONEachRow
//! inserts, parsed and streamed queries). The runtime uses it directly; the CLI through a
//! blocking wrapper (`igloo_cli::infra::clickhouse::ClickHouseHttp`). One classification of
//! failures serves both: an unreachable server or a passing overload (retry later) against a
//! rejected query (the data or the statement is wrong), by ClickHouse's error codes, which
//! 18.16 and current versions share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("ClickHouse at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("ClickHouse rejected the query: {message}")]
    Rejected { message: String },
    #[error("ClickHouse answered `{query}` with something igloo cannot read: {message}")]
    UnexpectedAnswer { query: String, message: String },
    #[error("ClickHouse reported version `{0}`, which igloo cannot read")]
    Version(String),
}

impl ClickHouseError {
    /// ClickHouse's error code of a rejected query. 18.16 writes `Code: 60, e.displayText() = …`,
    /// current versions `Code: 60. DB::Exception: …`.
    pub fn code(&self) -> Option<u32> {
        let ClickHouseError::Rejected { message } = self else { return None };
        let rest = &message[message.find("Code: ")? + 6..];
        rest[..rest.find(|c: char| !c.is_ascii_digit())?].parse().ok()
    }

    /// The query named a table that does not exist (code 60, UNKNOWN_TABLE, in every version).
    pub fn is_unknown_table(&self) -> bool {
        self.code() == Some(60)
    }

    /// The statement created a table that exists already (code 57, TABLE_ALREADY_EXISTS).
    pub fn is_table_exists(&self) -> bool {
        self.code() == Some(57)
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ClickHouseError::Unreachable { .. } => true,
            // Memory limits, too many parts and timeouts pass; so do a table or database not
            // there (yet) and an HTTP session lost with a restart (60, 81, 372, 373), and on a
            // cluster a shard no replica of which answers (279), a replicated table read-only
            // while its keeper session is gone (242), the keeper away (225, 999), too few live
            // replicas (285) and an insert whose outcome is unknown (319): none is about the
            // data. Bad data does not pass.
            ClickHouseError::Rejected { .. } => matches!(
                self.code(),
                Some(241 | 252 | 159 | 209 | 210 | 202 | 60 | 81 | 372 | 373 | 279 | 242 | 225 | 999 | 285 | 319)
            ),
            ClickHouseError::UnexpectedAnswer { .. } | ClickHouseError::Version(_) => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClickHouse {
    url: String,
    auth: Option<(String, String)>,
    http: reqwest::Client,
    /// An HTTP session (`session_id`): its temporary tables live between requests.
    session: Option<String>,
    /// Queries get ids `<prefix><n>`, so that others can find them in `system.processes`.
    query_ids: Option<(String, Arc<AtomicU64>)>,
    /// Settings sent with every query.
    settings: Vec<(&'static str, &'static str)>,
}

/// The settings of every query on a cluster: an insert into a `Distributed` table has reached
/// its shards when it is acknowledged (`insert_distributed_sync`); a block written again after
/// a recovery is not dropped as a duplicate of the deleted one (`insert_deduplicate = 0`:
/// exactly once comes from the offsets log, docs/ARCHITECTURE.md); and while a shard's first
/// replica is up, it serves both reads and writes (`load_balancing = in_order`), so the offsets
/// log a writer reads is the one it wrote.
pub const CLUSTER_SETTINGS: [(&str, &str); 3] =
    [("insert_distributed_sync", "1"), ("insert_deduplicate", "0"), ("load_balancing", "in_order")];

/// One node of a cluster, a row of `system.clusters`.
#[derive(Debug, serde::Deserialize)]
pub struct ClusterNode {
    pub shard_num: u32,
    host_name: String,
    port: u16,
}

impl ClusterNode {
    /// `host:port` of its native protocol, as `remote()` takes it and errors name it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host_name, self.port)
    }
}

/// How long ClickHouse keeps an idle session (and its temporary tables).
const SESSION_TIMEOUT_SECS: &str = "600";

/// How long an idle connection stays in the pool: less than the server's `keep_alive_timeout`
/// (1 s in `igloo dev`'s ClickHouse, 3 s by default before 23.11, 10 s after). A connection the
/// server closed while it sat idle fails the next request sent on it ("error sending request")
/// when the close has not been read yet, as after a pause: the request would fail for nothing.
pub const POOL_IDLE: Duration = Duration::from_millis(800);

impl ClickHouse {
    pub fn new(url: &str, auth: Option<(String, String)>) -> ClickHouse {
        Self::build(url, auth, usize::MAX)
    }

    /// A client that keeps no idle connection: for a handful of control statements (the CLI).
    /// ClickHouse 18.16 waits for open keep-alive connections before it shuts down.
    pub fn without_keep_alive(url: &str, auth: Option<(String, String)>) -> ClickHouse {
        Self::build(url, auth, 0)
    }

    fn build(url: &str, auth: Option<(String, String)>, idle: usize) -> ClickHouse {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(idle)
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .expect("an HTTP client with these settings builds");
        ClickHouse {
            url: url.trim_end_matches('/').to_string(),
            auth,
            http,
            session: None,
            query_ids: None,
            settings: Vec::new(),
        }
    }

    /// This client's requests in one ClickHouse session: one query at a time, whose temporary
    /// tables outlive each request (until 10 minutes idle).
    pub fn in_session(&self, id: &str) -> ClickHouse {
        ClickHouse { session: Some(id.to_string()), ..self.clone() }
    }

    /// This client's queries with ids `<prefix><n>`.
    pub fn with_query_ids(&self, prefix: &str) -> ClickHouse {
        ClickHouse { query_ids: Some((prefix.to_string(), Arc::new(AtomicU64::new(0)))), ..self.clone() }
    }

    /// Runs statements in order, up to the first failure.
    pub async fn execute_all(&self, statements: impl IntoIterator<Item = String>) -> Result<(), ClickHouseError> {
        for sql in statements {
            self.execute(&sql).await?;
        }
        Ok(())
    }

    /// This client's queries with `settings` (added to those it has).
    pub fn with_settings(&self, settings: &[(&'static str, &'static str)]) -> ClickHouse {
        let mut all = self.settings.clone();
        all.extend_from_slice(settings);
        ClickHouse { settings: all, ..self.clone() }
    }

    /// The client for a cluster ([`CLUSTER_SETTINGS`]) when `on_cluster`, else this one.
    pub fn for_cluster(self, on_cluster: bool) -> ClickHouse {
        if on_cluster {
            self.with_settings(&CLUSTER_SETTINGS)
        } else {
            self
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends a request built on `POST /` with credentials; the response once ClickHouse
    /// accepted the query, else the error telling an outage from a rejection.
    async fn send(
        &self,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClickHouseError> {
        let mut req = build(self.http.post(format!("{}/", self.url)));
        if let Some(id) = &self.session {
            req = req.query(&[("session_id", id.as_str()), ("session_timeout", SESSION_TIMEOUT_SECS)]);
        }
        if !self.settings.is_empty() {
            req = req.query(&self.settings);
        }
        if let Some((prefix, n)) = &self.query_ids {
            req = req.query(&[("query_id", format!("{prefix}{}", n.fetch_add(1, Ordering::Relaxed)))]);
        }
        if let Some((user, key)) = &self.auth {
            req = req.header("X-ClickHouse-User", user).header("X-ClickHouse-Key", key);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        if status.is_server_error() && !text.contains("Code:") {
            Err(ClickHouseError::Unreachable { url: self.url.clone(), message: format!("HTTP {status}") })
        } else {
            Err(ClickHouseError::Rejected { message: text.trim().to_string() })
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> ClickHouseError {
        ClickHouseError::Unreachable { url: self.url.clone(), message: e.to_string() }
    }

    async fn post(&self, query: Option<&str>, body: impl Into<reqwest::Body>) -> Result<String, ClickHouseError> {
        let resp = self
            .send(|req| match query {
                Some(q) => req.query(&[("query", q)]).body(body),
                None => req.body(body),
            })
            .await?;
        resp.text().await.map_err(|e| self.unreachable(e))
    }

    /// Whether `/ping` answers within `timeout`.
    pub async fn ping_within(&self, timeout: Duration) -> bool {
        let req = self.http.get(format!("{}/ping", self.url)).timeout(timeout);
        matches!(req.send().await, Ok(r) if r.status().is_success())
    }

    /// Whether `/ping` answers within a second.
    pub async fn ping(&self) -> bool {
        self.ping_within(Duration::from_secs(1)).await
    }

    pub async fn execute(&self, sql: &str) -> Result<String, ClickHouseError> {
        self.post(None, sql.to_string()).await
    }

    /// Runs one statement with `database` as the default database.
    pub async fn execute_in(&self, database: &str, sql: &str) -> Result<String, ClickHouseError> {
        let resp = self.send(|req| req.query(&[("database", database)]).body(sql.to_string())).await?;
        resp.text().await.map_err(|e| self.unreachable(e))
    }

    /// Runs a long statement (a backfill over a whole table) in `database`: no client timeout
    /// short of `timeout`, and GROUP BY spilling to disk past 2 GB instead of failing.
    pub async fn execute_long(&self, database: &str, sql: &str, timeout: Duration) -> Result<String, ClickHouseError> {
        let secs = timeout.as_secs().to_string();
        let resp = self
            .send(|req| {
                req.timeout(timeout)
                    .query(&[
                        ("database", database),
                        ("max_bytes_before_external_group_by", "2000000000"),
                        ("max_execution_time", secs.as_str()),
                    ])
                    .body(sql.to_string())
            })
            .await?;
        resp.text().await.map_err(|e| self.unreachable(e))
    }

    /// The `(name, type)` columns of a `… LIMIT 0 FORMAT JSON` query run in `database`, from the
    /// `meta` of ClickHouse's answer (18.16 has no `DESCRIBE (subquery)`).
    pub async fn describe(&self, database: &str, sql: &str) -> Result<Vec<(String, String)>, ClickHouseError> {
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
        let text = self.execute_in(database, sql).await?;
        let described: Described = serde_json::from_str(&text)
            .map_err(|e| ClickHouseError::UnexpectedAnswer { query: sql.to_string(), message: e.to_string() })?;
        Ok(described.meta.into_iter().map(|m| (m.name, m.ty)).collect())
    }

    /// The server's dialect, from `SELECT version()`.
    /// The nodes of `cluster` as the server lists them (`system.clusters`), by shard and replica.
    pub async fn cluster_nodes(&self, cluster: &str) -> Result<Vec<ClusterNode>, ClickHouseError> {
        self.rows(&igloo_schemas::sql::cluster_nodes_query(cluster)).await
    }

    pub async fn dialect(&self) -> Result<igloo_schemas::Dialect, ClickHouseError> {
        let v = self.execute(&igloo_schemas::sql::version_query()).await?;
        igloo_schemas::Dialect::from_server_version(&v).map_err(|_| ClickHouseError::Version(v.trim().to_string()))
    }

    /// `query` is an `INSERT … FORMAT JSONEachRow` (or `RowBinary`); `rows` its body.
    pub async fn insert(&self, query: &str, rows: impl Into<reqwest::Body>) -> Result<(), ClickHouseError> {
        self.post(Some(query), rows).await.map(|_| ())
    }

    /// Runs a query in `database` and returns its output as a byte stream, once ClickHouse has
    /// accepted it. 64-bit integers come as JSON numbers.
    pub async fn stream(
        &self,
        database: &str,
        sql: String,
    ) -> Result<impl futures_util::Stream<Item = Result<axum::body::Bytes, reqwest::Error>>, ClickHouseError> {
        let resp = self
            .send(|req| {
                req.query(&[("database", database), ("output_format_json_quote_64bit_integers", "0")])
                    .timeout(Duration::from_secs(3600))
                    .body(sql)
            })
            .await?;
        Ok(resp.bytes_stream())
    }

    /// A `FORMAT JSONEachRow` query, each row parsed.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        let body = self.execute(sql).await?;
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| ClickHouseError::UnexpectedAnswer {
                    query: sql.to_string(),
                    message: format!("row {l}: {e}"),
                })
            })
            .collect()
    }
}

/// A UInt64 of ClickHouse's JSON output: a number, or a string (ClickHouse quotes 64-bit
/// integers unless told not to).
pub fn u64_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    match <Either as serde::Deserialize>::deserialize(d)? {
        Either::Number(n) => Ok(n),
        Either::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::ClickHouseError;

    #[test]
    fn error_codes_of_both_versions() {
        let old = ClickHouseError::Rejected {
            message: "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist.".into(),
        };
        let new = ClickHouseError::Rejected {
            message: "Code: 57. DB::Exception: Table a.b already exists. (TABLE_ALREADY_EXISTS)".into(),
        };
        assert!(old.is_unknown_table() && !old.is_table_exists());
        assert!(new.is_table_exists() && !new.is_unknown_table());
        assert_eq!(ClickHouseError::Rejected { message: "no code".into() }.code(), None);
        // A missing table or a lost session is an outage to wait out, not bad data.
        assert!(old.is_transient() && new.code() == Some(57) && !new.is_transient());
        let data = ClickHouseError::Rejected {
            message: "Code: 26, e.displayText() = DB::Exception: Cannot parse JSON".into(),
        };
        assert!(!data.is_transient());
        // On a cluster: a read-only replicated table and a shard nobody answers for.
        for code in [242, 279] {
            let e = ClickHouseError::Rejected { message: format!("Code: {code}, e.displayText() = DB::Exception: x") };
            assert!(e.is_transient(), "{code}");
        }
    }
}
