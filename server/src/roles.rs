//! What one server process does (its roles), and whether it can do it now (`/ready`).
//! `igloo dev` runs every role; `igloo serve --role` any subset, so ingest, query, writers and
//! transforms scale on their own. `/health` is liveness (the process answers); `/ready` says
//! whether each role this process runs can serve now, and names what cannot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use igloo_schemas::sql;

use crate::app_state::AppState;
use crate::clickhouse::ClickHouse;

/// What one server process does. `igloo dev` runs all of it; `igloo serve --role` any part, so
/// each can be scaled on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    /// `POST /ingest/…` and alias routes: validate and produce.
    pub ingest: bool,
    /// `/api/…/samples`, `/consumption`, `/export`, `/subscribe`, `/openapi.json`, the console.
    pub query: bool,
    /// The table writers: topics → ClickHouse.
    pub writer: bool,
    /// The transforms' workers.
    pub transform: bool,
}

impl Roles {
    pub const ALL: Roles = Roles { ingest: true, query: true, writer: true, transform: true };

    /// `ingest,query,writer,transform` (any subset, comma-separated).
    pub fn parse(text: &str) -> Result<Roles, RoleError> {
        let mut r = Roles { ingest: false, query: false, writer: false, transform: false };
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "ingest" => r.ingest = true,
                "query" => r.query = true,
                "writer" => r.writer = true,
                "transform" => r.transform = true,
                "all" => r = Roles::ALL,
                other => return Err(RoleError(other.to_string())),
            }
        }
        if r.names().is_empty() {
            return Err(RoleError(text.to_string()));
        }
        Ok(r)
    }

    pub fn names(&self) -> Vec<&'static str> {
        [(self.ingest, "ingest"), (self.query, "query"), (self.writer, "writer"), (self.transform, "transform")]
            .into_iter()
            .filter_map(|(on, n)| on.then_some(n))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a role; use ingest, query, writer, transform (comma-separated) or all")]
pub struct RoleError(String);

/// 200 when every role of this process can serve; 503 naming what cannot. Ingest needs the
/// broker; query needs ClickHouse; a writer needs ClickHouse and its partitions (assigned and
/// recovered); transforms need their workers.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let roles = state.roles;
    let broker_check = async {
        match roles.ingest {
            true => state.producer.broker_problem(Duration::from_secs(1)).await,
            false => None,
        }
    };
    let clickhouse_check = async { !(roles.query || roles.writer) || state.clickhouse.ping().await };
    let (broker, clickhouse) = tokio::join!(broker_check, clickhouse_check);
    let mut down: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    if let (Some(cluster), true) = (&state.cluster, clickhouse && (roles.query || roles.writer)) {
        for shard in cluster_health(&state.clickhouse, &cluster.name).await {
            match shard.answering {
                0 => down.push(format!(
                    "shard {} of cluster {} is down: none of its replicas answers ({})",
                    shard.num,
                    cluster.name,
                    shard.silent.join(", ")
                )),
                _ if !shard.silent.is_empty() => warnings.push(format!(
                    "shard {} of cluster {}: replica {} does not answer; the others serve",
                    shard.num,
                    cluster.name,
                    shard.silent.join(", ")
                )),
                _ => {}
            }
        }
    }
    if let Some(problem) = broker {
        down.push(format!("the broker does not answer: {problem}"));
    }
    if !clickhouse {
        down.push("ClickHouse does not answer".into());
    }
    if roles.writer {
        let ir = state.ir();
        for m in ir.models.iter().filter(|m| !ir.filled_by_view(&m.name)) {
            if state.metrics.model(&m.name).assigned.load(Ordering::Relaxed) == 0 {
                down.push(format!("the table writer of {} has not taken its partitions yet", m.name));
            }
        }
    }
    if roles.transform {
        let (transforms, invalid) = state.console.transforms();
        for t in transforms.iter().filter(|t| !t.running) {
            down.push(format!("transform {} is not running", t.name));
        }
        down.extend(invalid);
    }
    let status = if down.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut body = serde_json::json!({ "ready": down.is_empty(), "roles": roles.names(), "details": down });
    if !warnings.is_empty() {
        body["warnings"] = warnings.into();
    }
    (status, Json(body)).into_response()
}

/// One shard of a cluster as the node igloo talks to sees it.
struct ShardHealth {
    num: u32,
    answering: usize,
    /// Replicas that do not answer, as `host:port`.
    silent: Vec<String>,
}

/// Asks the node igloo talks to for each node of `cluster`, all at once. An unreadable
/// cluster list gives no shards (ClickHouse itself is reported separately).
async fn cluster_health(ch: &ClickHouse, cluster: &str) -> Vec<ShardHealth> {
    let Ok(nodes) = ch.cluster_nodes(cluster).await else { return Vec::new() };
    let answers = futures_util::future::join_all(nodes.iter().map(|n| async move {
        let address = n.address();
        let ok = ch.rows::<serde_json::Value>(&sql::node_ping_query(&address)).await.is_ok_and(|r| !r.is_empty());
        (n.shard_num, address, ok)
    }))
    .await;
    let mut shards: Vec<ShardHealth> = Vec::new();
    for (num, address, ok) in answers {
        if shards.last().is_none_or(|s| s.num != num) {
            shards.push(ShardHealth { num, answering: 0, silent: Vec::new() });
        }
        let shard = shards.last_mut().expect("pushed above");
        match ok {
            true => shard.answering += 1,
            false => shard.silent.push(address),
        }
    }
    shards
}

#[cfg(test)]
mod tests {
    use super::Roles;

    #[test]
    fn roles_parse() {
        assert_eq!(Roles::parse("all").unwrap(), Roles::ALL);
        let r = Roles::parse("ingest, writer").unwrap();
        assert_eq!(r.names(), ["ingest", "writer"]);
        assert!(Roles::parse("ingest,reader").unwrap_err().to_string().contains("`reader` is not a role"));
        assert!(Roles::parse("").is_err());
    }
}
