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

use crate::app_state::AppState;

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
    let body = serde_json::json!({ "ready": down.is_empty(), "roles": roles.names(), "details": down });
    (status, Json(body)).into_response()
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
