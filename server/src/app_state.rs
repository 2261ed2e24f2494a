//! What every HTTP handler shares: the current IR, routes and APIs (swapped on reload), the
//! ClickHouse client, the producer, the broker, counters and the console's state. Handlers
//! (`ingest`, `samples`, `query_api`, `subscribe`, `console`) depend on this module, not on
//! `runtime`, which assembles and reloads it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use igloo_schemas::consumption::ConsumptionApi;
use igloo_schemas::{Dialect, Ir};

use crate::clickhouse::ClickHouse;
use crate::console::ConsoleState;
use crate::kafka::producer::Producer;
use crate::kafka::Broker;
use crate::metrics::Metrics;

/// What an alias path in `server.routes` serves: `Model` (POST ingest) or `Model.samples`
/// (GET time-series samples in the reference shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Ingest(String),
    Samples(String),
}

impl Route {
    pub fn parse(target: &str) -> Route {
        match target.strip_suffix(".samples") {
            Some(model) => Route::Samples(model.to_string()),
            None => Route::Ingest(target.to_string()),
        }
    }
}

pub struct AppState {
    pub(crate) ir: RwLock<Arc<Ir>>,
    pub clickhouse: ClickHouse,
    pub routes: RwLock<BTreeMap<String, Route>>,
    pub(crate) apis: RwLock<Arc<Vec<ConsumptionApi>>>,
    pub producer: Producer,
    pub database: String,
    pub dialect: Dialect,
    /// The ClickHouse cluster the tables live on, if any.
    pub cluster: Option<igloo_schemas::sql::Cluster>,
    pub broker: Broker,
    pub metrics: Arc<Metrics>,
    pub max_body: usize,
    pub console: ConsoleState,
    /// What this process does.
    pub roles: crate::roles::Roles,
    /// Credentials, scopes and CORS.
    pub auth: Arc<crate::auth::Auth>,
    /// Requests in progress, against `server.max_concurrent_requests`.
    pub concurrency: crate::http::Concurrency,
    /// Per series, events per hour, for `/api`'s choice of read plan.
    pub hourly_events: crate::samples::HourlyEvents,
}

impl AppState {
    pub fn ir(&self) -> Arc<Ir> {
        self.ir.read().expect("ir lock").clone()
    }

    pub fn api(&self, name: &str) -> Option<ConsumptionApi> {
        self.apis.read().expect("apis lock").iter().find(|a| a.name == name).cloned()
    }

    pub fn api_names(&self) -> Vec<String> {
        self.apis.read().expect("apis lock").iter().map(|a| a.name.clone()).collect()
    }

    pub fn apis(&self) -> Arc<Vec<ConsumptionApi>> {
        self.apis.read().expect("apis lock").clone()
    }
}
