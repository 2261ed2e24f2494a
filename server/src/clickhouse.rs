//! An async client for ClickHouse's HTTP interface: statements, JSONEachRow inserts and
//! queries. Errors tell an unreachable server (retry) from a rejected query (the data or the
//! statement is wrong).

use std::time::Duration;

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("ClickHouse at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("ClickHouse rejected the query: {message}")]
    Rejected { message: String },
}

impl ClickHouseError {
    /// The query named a table that does not exist (code 60, UNKNOWN_TABLE, in every version).
    pub fn is_unknown_table(&self) -> bool {
        // 18.16 writes `Code: 60, e.displayText() = …`, current versions `Code: 60. DB::Exception: …`.
        matches!(self, ClickHouseError::Rejected { message } if ["Code: 60,", "Code: 60."].iter().any(|c| message.contains(c)))
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ClickHouseError::Unreachable { .. } => true,
            // Memory limits, too many parts and timeouts pass; bad data does not.
            ClickHouseError::Rejected { message } => {
                ["Code: 241", "Code: 252", "Code: 159", "Code: 209", "Code: 210", "Code: 202"]
                    .iter()
                    .any(|c| message.contains(c))
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClickHouse {
    url: String,
    auth: Option<(String, String)>,
    http: reqwest::Client,
}

impl ClickHouse {
    pub fn new(url: &str, auth: Option<(String, String)>) -> ClickHouse {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client with these settings builds");
        ClickHouse { url: url.trim_end_matches('/').to_string(), auth, http }
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

    async fn post(&self, query: Option<&str>, body: String) -> Result<String, ClickHouseError> {
        let resp = self
            .send(|req| match query {
                Some(q) => req.query(&[("query", q)]).body(body),
                None => req.body(body),
            })
            .await?;
        resp.text().await.map_err(|e| self.unreachable(e))
    }

    /// Whether `/ping` answers within a second.
    pub async fn ping(&self) -> bool {
        let req = self.http.get(format!("{}/ping", self.url)).timeout(Duration::from_secs(1));
        matches!(req.send().await, Ok(r) if r.status().is_success())
    }

    pub async fn execute(&self, sql: &str) -> Result<String, ClickHouseError> {
        self.post(None, sql.to_string()).await
    }

    /// `query` is an `INSERT … FORMAT JSONEachRow`; `rows` its body.
    pub async fn insert(&self, query: &str, rows: String) -> Result<(), ClickHouseError> {
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
                serde_json::from_str(l)
                    .map_err(|e| ClickHouseError::Rejected { message: format!("unexpected row {l}: {e}") })
            })
            .collect()
    }
}
