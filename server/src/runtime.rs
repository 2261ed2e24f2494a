//! The running server: the HTTP API and one table writer per model, started from typed
//! settings, reloaded with a new IR (the schema changed), stopped gracefully. Knows nothing of
//! terminals or clap: `igloo dev` and `igloo serve` drive it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::routing::{get, post};
use axum::Router;
use igloo_schemas::consumption::ConsumptionApi;
use igloo_schemas::sql::ChType;
use igloo_schemas::{Dialect, Ir};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app_state::{AppState, Route};
use crate::clickhouse::ClickHouse;
use crate::config::{TransformsConfig, WriterConfig};
use crate::console::ConsoleState;
use crate::dlq::DeadLetters;
use crate::ingest;
use crate::kafka::producer::{ProduceError, Producer};
use crate::kafka::Broker;
use crate::metrics::Metrics;
pub use crate::roles::{RoleError, Roles};
use crate::transform::set::TransformsSetup;
use crate::transform::worker::{tsx_loader, WorkerRuntime};
use crate::transform::{TransformReport, Transforms};
use crate::writer::{self, WriterSpec};

/// Everything the server needs, resolved by the caller.
#[derive(Clone, Debug)]
pub struct Settings {
    pub roles: Roles,
    /// The project's name, shown by the console.
    pub project: String,
    pub listen: String,
    pub max_body_bytes: usize,
    /// Threads of the async runtime the server runs on (`server.worker_threads`).
    pub worker_threads: usize,
    /// Extra ingest path → model name.
    pub routes: BTreeMap<String, String>,
    /// The project's consumption APIs (`apis/*.sql`), parsed.
    pub apis: Vec<ConsumptionApi>,
    pub writer: WriterConfig,
    /// Whether this process's table writers and transforms are the only ones (`igloo dev`) or
    /// replicas sharing partitions through consumer groups (`igloo serve`).
    pub sharing: writer::Sharing,
    pub database: String,
    pub clickhouse_url: String,
    pub clickhouse_auth: Option<(String, String)>,
    /// The ClickHouse cluster the tables live on (`clickhouse.cluster`), if any.
    pub cluster: Option<igloo_schemas::sql::Cluster>,
    pub dialect: Dialect,
    pub broker: Broker,
    pub transforms: TransformsConfig,
    /// The project root: transforms live in its `transforms/`, worker scripts go to `.igloo/`.
    pub root: PathBuf,
    /// tsx's package directory, for TypeScript transforms.
    pub tsx_dir: Option<PathBuf>,
    /// Who may call the server.
    pub auth: crate::auth::AuthSettings,
    /// HTTPS: certificate and key (paths relative to `root`).
    pub tls: Option<crate::config::TlsConfig>,
    /// Requests in progress at most; beyond, 503.
    pub max_concurrent_requests: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {listen}: {source}; is another server running? Change server.listen in igloo.yaml (IGLOO_SERVER_LISTEN)")]
    Listen { listen: String, source: std::io::Error },
    #[error(transparent)]
    Producer(#[from] ProduceError),
    #[error("server.routes maps {path} to `{model}`, which is not a model of the schema")]
    UnknownRouteModel { path: String, model: String },
    #[error("server.routes maps {path} to `{model}.samples`, but `{model}` is not declared `@@timeseries`")]
    NotTimeSeries { path: String, model: String },
    #[error("server.jwt: {0}")]
    Jwt(#[from] crate::auth::jwt::JwtSetupError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

pub struct Server {
    pub state: Arc<AppState>,
    settings: Settings,
    http: JoinHandle<()>,
    http_stop: watch::Sender<bool>,
    writers: Vec<(JoinHandle<()>, watch::Sender<bool>)>,
    transforms: Transforms,
    pub local_addr: std::net::SocketAddr,
}

fn check_routes(ir: &Ir, routes: &BTreeMap<String, String>) -> Result<BTreeMap<String, Route>, ServerError> {
    let mut out = BTreeMap::new();
    for (path, target) in routes {
        let route = Route::parse(target);
        let (Route::Ingest(name) | Route::Samples(name)) = &route;
        let Some(model) = ir.model(name) else {
            return Err(ServerError::UnknownRouteModel { path: path.clone(), model: name.clone() });
        };
        if matches!(route, Route::Samples(_)) && model.timeseries.is_none() {
            return Err(ServerError::NotTimeSeries { path: path.clone(), model: name.clone() });
        }
        out.insert(path.clone(), route);
    }
    Ok(out)
}

impl Server {
    pub async fn start(settings: Settings, ir: Ir) -> Result<Server, ServerError> {
        let routes = check_routes(&ir, &settings.routes)?;
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .map_err(|source| ServerError::Listen { listen: settings.listen.clone(), source })?;
        let local_addr =
            listener.local_addr().map_err(|source| ServerError::Listen { listen: settings.listen.clone(), source })?;
        let auth = Arc::new(crate::auth::Auth::new(settings.auth.clone(), &settings.root)?);
        let state = Arc::new(AppState {
            ir: RwLock::new(Arc::new(ir)),
            clickhouse: ClickHouse::new(&settings.clickhouse_url, settings.clickhouse_auth.clone())
                .for_cluster(settings.cluster.is_some()),
            routes: RwLock::new(routes),
            apis: RwLock::new(Arc::new(settings.apis.clone())),
            producer: Producer::new(&settings.broker)?,
            database: settings.database.clone(),
            dialect: settings.dialect,
            cluster: settings.cluster.clone(),
            broker: settings.broker.clone(),
            metrics: Arc::new(Metrics::default()),
            max_body: settings.max_body_bytes,
            console: ConsoleState::new(&settings.project),
            roles: settings.roles,
            auth: auth.clone(),
            concurrency: crate::http::Concurrency::new(settings.max_concurrent_requests),
            hourly_events: Default::default(),
        });
        // Liveness, readiness and metrics whatever the roles; each role adds its routes.
        let mut app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/ready", get(crate::roles::ready))
            .route("/metrics", get(metrics));
        if settings.roles.ingest {
            app = app.route("/ingest/{model}", post(ingest::ingest_model));
        }
        if settings.roles.query {
            app = app
                .route("/api/{model}/samples", get(crate::samples::samples_model))
                .route("/consumption/{name}", get(crate::query_api::consumption))
                .route("/export/{model}", get(crate::query_api::export))
                .route("/subscribe/{model}", get(crate::subscribe::subscribe))
                .route("/openapi.json", get(openapi))
                .merge(crate::console::routes());
        }
        let app = app.fallback(ingest::fallback).with_state(state.clone());
        let (http_stop, stop_rx) = watch::channel(false);
        if settings.auth.mode == crate::config::AuthMode::Required {
            let table = crate::auth::keys::KeysTable {
                clickhouse: state.clickhouse.clone(),
                database: settings.database.clone(),
                dialect: settings.dialect,
                cluster: settings.cluster.clone(),
            };
            tokio::spawn(auth.keys.clone().refresh_loop(table, http_stop.subscribe()));
        }
        let tls = match &settings.tls {
            Some(t) => Some(crate::tls::acceptor(&settings.root.join(&t.cert), &settings.root.join(&t.key))?),
            None => None,
        };
        let http_state = state.clone();
        let http = tokio::spawn(async move {
            match tls {
                Some(acceptor) => match crate::tls::TlsListener::new(listener, acceptor) {
                    Ok(l) => crate::http::serve(l, app, http_state, stop_rx).await,
                    Err(e) => tracing::error!(error = %e, "HTTP server stopped"),
                },
                None => crate::http::serve(listener, app, http_state, stop_rx).await,
            }
        });
        tracing::info!(addr = %local_addr, roles = ?settings.roles.names(), tls = settings.tls.is_some(), "listening");
        tokio::spawn(sample_history(state.clone(), http_stop.subscribe()));
        let transforms = Transforms::new(transforms_setup(&settings, &state));
        let mut server = Server { state, settings, http, http_stop, writers: Vec::new(), transforms, local_addr };
        server.start_writers();
        Ok(server)
    }

    fn start_writers(&mut self) {
        if !self.settings.roles.writer {
            return;
        }
        let ir = self.state.ir();
        let ch = self.state.clickhouse.clone();
        for model in ir.models.iter().filter(|m| !ir.filled_by_view(&m.name)) {
            let spec = WriterSpec {
                model: model.name.clone(),
                topic: model.topic.name.clone(),
                database: self.settings.database.clone(),
                table: model.table.clone(),
                columns: model.fields.iter().map(|f| f.column.clone()).collect(),
                column_types: model.fields.iter().map(|f| ChType::of_field(&f.ty, &ir)).collect(),
                dlq_topic: ir.dlq_topic(),
                dialect: self.settings.dialect,
                cluster: self.settings.cluster.clone(),
            };
            let (tx, rx) = watch::channel(false);
            let metrics = self.state.metrics.model(&model.name);
            let task = tokio::spawn(writer::run(
                spec,
                self.settings.writer.clone(),
                self.settings.sharing.clone(),
                self.settings.broker.clone(),
                self.state.producer.clone(),
                ch.clone(),
                metrics,
                rx,
            ));
            self.writers.push((task, tx));
        }
    }

    async fn stop_writers(&mut self) {
        for (_, tx) in &self.writers {
            let _ = tx.send(true);
        }
        for (task, _) in self.writers.drain(..) {
            let _ = task.await;
        }
    }

    /// A new schema: ingest validates against it at once; writers restart with its models.
    pub async fn reload(
        &mut self,
        ir: Ir,
        routes: BTreeMap<String, String>,
        apis: Vec<ConsumptionApi>,
    ) -> Result<(), ServerError> {
        let routes = check_routes(&ir, &routes)?;
        *self.state.apis.write().expect("apis lock") = Arc::new(apis);
        *self.state.ir.write().expect("ir lock") = Arc::new(ir);
        *self.state.routes.write().expect("routes lock") = routes;
        self.stop_writers().await;
        self.start_writers();
        Ok(())
    }

    /// Starts, reloads and stops transforms to match `transforms/`; `restart` after a schema
    /// change. Call it after `start` and `reload`, and when a file of `transforms/` changed.
    pub async fn sync_transforms(&mut self, restart: bool) -> Vec<TransformReport> {
        if !self.settings.roles.transform {
            return Vec::new();
        }
        let reports = self.transforms.sync(self.state.ir(), restart).await;
        self.state.console.set_transforms(self.transforms.status());
        reports
    }

    /// Like [`Server::sync_transforms`] with `restart`, under new transform settings.
    pub async fn reconfigure_transforms(&mut self, config: TransformsConfig) -> Vec<TransformReport> {
        self.transforms.configure(config);
        self.sync_transforms(true).await
    }

    /// Stops accepting requests, lets in-flight ones finish, then stops the transforms and the
    /// writers (each finishes the batch it is on).
    pub async fn stop(mut self) {
        let _ = self.http_stop.send(true);
        let _ = (&mut self.http).await;
        self.transforms.stop_all().await;
        self.stop_writers().await;
    }
}

/// One snapshot of the counters a second for the console's charts, until the server stops.
async fn sample_history(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                state.console.history.sample(&state.metrics, now.as_millis() as u64);
            }
            _ = stop.changed() => return,
        }
    }
}

fn transforms_setup(settings: &Settings, state: &AppState) -> TransformsSetup {
    let runtime = WorkerRuntime {
        node: settings.transforms.node.clone(),
        python: settings.transforms.python.clone(),
        tsx_loader: settings.tsx_dir.as_deref().and_then(tsx_loader),
        root: settings.root.clone(),
        scripts: settings.root.join(".igloo").join("runtime"),
    };
    TransformsSetup {
        dir: settings.root.join("transforms"),
        runtime,
        config: settings.transforms.clone(),
        broker: settings.broker.clone(),
        database: settings.database.clone(),
        producer: state.producer.clone(),
        dead_letters: DeadLetters::new(
            state.producer.clone(),
            &state.ir().dlq_topic(),
            state.clickhouse.clone(),
            &settings.database,
            settings.dialect,
            settings.cluster.clone(),
        ),
        metrics: state.metrics.clone(),
        group_session: match &settings.sharing {
            writer::Sharing::Alone => None,
            writer::Sharing::Replicas { session_timeout, .. } => Some(*session_timeout),
        },
    }
}

async fn openapi(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> axum::Json<serde_json::Value> {
    let routes = state.routes.read().expect("routes lock").clone();
    axum::Json(crate::openapi::document(&state.ir(), &routes, &state.apis()))
}

async fn metrics(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> String {
    state.metrics.render()
}
