//! The ingest server as `igloo dev` and `igloo serve` run it: settings from the project and the
//! engines' endpoints, a tokio runtime of its own, and blocking start / reload / stop.

use std::net::SocketAddr;
use std::path::PathBuf;

use igloo_schemas::Ir;
use igloo_server::config::Project;
use igloo_server::runtime::{Roles, Server, ServerError, Settings};
use igloo_server::transform::TransformReport;
use igloo_server::writer::Sharing;

use super::engines::Endpoints;

/// `sharing`: whether this process's table writers are the only ones (`igloo dev`) or replicas
/// (`igloo serve`).
pub fn settings(project: &Project, endpoints: &Endpoints, roles: Roles, sharing: Sharing) -> Settings {
    let c = &project.config;
    // Unset, auth is off on the laptop and required in production.
    let auth_mode = c.server.auth.unwrap_or(match sharing {
        Sharing::Alone => igloo_server::config::AuthMode::Off,
        Sharing::Replicas { .. } => igloo_server::config::AuthMode::Required,
    });
    let auth = c.clickhouse.user.clone().map(|u| (u, c.clickhouse.password.clone().unwrap_or_default()));
    Settings {
        roles,
        project: c.name.clone(),
        listen: c.server.listen.clone(),
        max_body_bytes: c.server.max_body_bytes,
        worker_threads: c.server.worker_threads,
        routes: c.server.routes.clone(),
        apis: crate::sql_files::load_reporting(&project.root),
        writer: c.writer.clone(),
        sharing,
        database: c.database(),
        clickhouse_url: endpoints.clickhouse.url.clone(),
        clickhouse_auth: auth,
        cluster: endpoints.cluster.clone(),
        dialect: endpoints.dialect,
        broker: endpoints.broker.clone(),
        transforms: c.transforms.clone(),
        root: project.root.clone(),
        tsx_dir: tsx_dir(project),
        auth: igloo_server::auth::AuthSettings {
            mode: auth_mode,
            jwt: c.server.jwt.clone(),
            cors_origins: c.server.cors.origins.clone(),
            unauthenticated_rate: c.server.unauthenticated_rate,
        },
        tls: c.server.tls.clone(),
        max_concurrent_requests: c.server.max_concurrent_requests,
    }
}

/// tsx for TypeScript transforms: the project's own, else `transforms.tsx` / IGLOO_TSX, else
/// the one scripts/install-engines.sh puts in ~/.cache/igloo/node.
pub fn tsx_dir(project: &Project) -> Option<PathBuf> {
    let own = project.root.join("node_modules").join("tsx");
    let configured = project.config.transforms.tsx.as_ref().map(PathBuf::from);
    let cached = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/igloo/node/node_modules/tsx"));
    [Some(own), configured, cached].into_iter().flatten().find(|d| d.join("package.json").is_file())
}

/// A server running on its own runtime; the calling thread stays free for the dev loop.
pub struct RunningServer {
    rt: tokio::runtime::Runtime,
    server: Server,
}

impl RunningServer {
    pub fn start(settings: Settings, ir: Ir) -> Result<RunningServer, ServerError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.worker_threads)
            .thread_name("igloo-server")
            .enable_all()
            .build()
            .expect("a tokio runtime starts");
        let server = rt.block_on(Server::start(settings, ir))?;
        let mut running = RunningServer { rt, server };
        running.sync_transforms(false);
        Ok(running)
    }

    /// The schema the server runs.
    pub fn ir(&self) -> std::sync::Arc<Ir> {
        self.server.state.ir()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr
    }

    /// What `igloo dev` finds wrong with the project files, for the console (empty: nothing).
    pub fn set_problems(&self, problems: Vec<String>) {
        self.server.state.console.set_problems(problems);
    }

    pub fn reload(&mut self, project: &Project, ir: Ir) -> Result<(), ServerError> {
        let apis = crate::sql_files::load_reporting(&project.root);
        self.rt.block_on(self.server.reload(ir, project.config.server.routes.clone(), apis))?;
        for report in self.rt.block_on(self.server.reconfigure_transforms(project.config.transforms.clone())) {
            print_report(&report);
        }
        Ok(())
    }

    /// Brings the transforms in line with `transforms/` (all restarted when `restart`), printing
    /// what changed.
    pub fn sync_transforms(&mut self, restart: bool) {
        for report in self.rt.block_on(self.server.sync_transforms(restart)) {
            print_report(&report);
        }
    }

    /// Stops the server (in-flight requests finish, each writer finishes its batch), then the
    /// runtime. Blocking tasks still running then are read-only lag probes; they are not waited
    /// for beyond a second.
    pub fn stop(self) {
        let RunningServer { rt, server } = self;
        rt.block_on(server.stop());
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
    }

    /// [`RunningServer::stop`] within `grace`: false when it took longer and was cut short (a
    /// writer's unfinished batch is re-read by whoever writes the partition next, so nothing
    /// is lost; in-flight requests past the bound get no answer and their clients retry).
    pub fn stop_within(self, grace: std::time::Duration) -> bool {
        let RunningServer { rt, server } = self;
        let done = rt.block_on(async { tokio::time::timeout(grace, server.stop()).await.is_ok() });
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
        done
    }
}

fn print_report(report: &TransformReport) {
    match report {
        TransformReport::Reloaded { .. } | TransformReport::Stopped { .. } => println!("  ✓ {report}"),
        TransformReport::Started { .. } => println!("✓ {report}"),
        TransformReport::LoadFailed { .. } | TransformReport::Invalid(_) => println!("✗ {report}"),
    }
}
