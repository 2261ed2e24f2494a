//! The ingest server as `igloo dev` and `igloo serve` run it: settings from the project and the
//! engines' endpoints, a tokio runtime of its own, and blocking start / reload / stop.

use std::net::SocketAddr;

use igloo_schemas::Ir;
use igloo_server::config::Project;
use igloo_server::runtime::{Server, ServerError, Settings};

use super::engines::Endpoints;

pub fn settings(project: &Project, endpoints: &Endpoints) -> Settings {
    let c = &project.config;
    let auth = c.clickhouse.user.clone().map(|u| (u, c.clickhouse.password.clone().unwrap_or_default()));
    Settings {
        listen: c.server.listen.clone(),
        max_body_bytes: c.server.max_body_bytes,
        routes: c.server.routes.clone(),
        apis: crate::sql_files::load_reporting(&project.root),
        writer: c.writer.clone(),
        database: c.database(),
        clickhouse_url: endpoints.clickhouse.url.clone(),
        clickhouse_auth: auth,
        dialect: endpoints.dialect,
        bootstrap: endpoints.bootstrap.clone(),
    }
}

/// A server running on its own runtime; the calling thread stays free for the dev loop.
pub struct RunningServer {
    rt: tokio::runtime::Runtime,
    server: Server,
}

impl RunningServer {
    pub fn start(settings: Settings, ir: Ir) -> Result<RunningServer, ServerError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("igloo-server")
            .enable_all()
            .build()
            .expect("a tokio runtime starts");
        let server = rt.block_on(Server::start(settings, ir))?;
        Ok(RunningServer { rt, server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr
    }

    pub fn reload(&mut self, project: &Project, ir: Ir) -> Result<(), ServerError> {
        let apis = crate::sql_files::load_reporting(&project.root);
        self.rt.block_on(self.server.reload(ir, project.config.server.routes.clone(), apis))
    }

    /// Stops the server (in-flight requests finish, each writer finishes its batch), then the
    /// runtime. Blocking tasks still running then are read-only lag probes; they are not waited
    /// for beyond a second.
    pub fn stop(self) {
        let RunningServer { rt, server } = self;
        rt.block_on(server.stop());
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
    }
}
