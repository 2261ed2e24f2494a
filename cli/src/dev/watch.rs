//! The `igloo dev` loop: start the engines, bring them in line with the schema, then re-check,
//! re-plan and apply on every save of `schema/**/*.prisma`, `apis/`, `views/` or `igloo.yaml`;
//! a save in `transforms/` restarts only that transform's workers. A broken schema
//! shows its diagnostics and changes nothing. File events, Ctrl-C/SIGTERM and engine deaths
//! arrive on one channel, so the loop is a plain `match`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use igloo_server::config::{ConfigError, InfraMode, Project, ProjectConfig, FILE_NAME};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use igloo_schemas::Ir;

use super::engines::{resolve_mode, Endpoints, EngineKind, Engines, EnginesError};
use super::migrate;
use super::server::{self, RunningServer};
use super::state::{self, DevState};
use crate::schema_files;

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("igloo dev is already running for this project (pid {pid}); stop it with `igloo down`")]
    AlreadyRunning { pid: u32 },
    #[error(transparent)]
    Engines(#[from] EnginesError),
    #[error("cannot watch {path}: {message}")]
    Watch { path: PathBuf, message: String },
    #[error("cannot install the Ctrl-C handler: {0}")]
    Signal(String),
    #[error("cannot write {path}: {source}")]
    State { path: PathBuf, source: std::io::Error },
    #[error("an engine kept exiting (see above, or `igloo logs`); igloo dev stopped the others")]
    EngineDied,
    #[error(transparent)]
    Server(#[from] igloo_server::runtime::ServerError),
}

#[derive(Clone, Copy, Debug, Default)]
pub struct DevOptions {
    /// Apply steps that need consent without asking.
    pub allow_destructive: bool,
    /// Overrides igloo.yaml's infra.mode.
    pub mode: Option<InfraMode>,
    /// Run only the engines and migrations, not the ingest server and table writers.
    pub no_server: bool,
}

enum Event {
    Changed(Vec<PathBuf>),
    Stop,
}

/// Runs until Ctrl-C, SIGTERM (`igloo down`) or an engine dies.
pub fn run(start_dir: &Path, opts: DevOptions) -> Result<(), DevError> {
    let started = Instant::now();
    let project = Project::discover(start_dir)?;
    if let Some(s) = state::running(&project.root) {
        return Err(DevError::AlreadyRunning { pid: s.pid });
    }
    let mode = opts.mode.unwrap_or_else(|| resolve_mode(&project));
    println!("igloo dev: project {} ({mode} engines)", project.config.name);
    let (tx, rx) = channel();
    install_stop_handler(tx.clone())?;
    let mut session = DevSession::start(project, mode, opts)?;
    let _watcher = match watch(&session.project.root, tx) {
        Ok(w) => w,
        Err(e) => {
            session.stop();
            return Err(e);
        }
    };
    session.print_ready(started);
    let outcome = loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => break Ok(()),
            Ok(Event::Changed(mut paths)) => {
                // An editor's save is often several events: take the whole burst.
                let mut stop = false;
                while let Ok(event) = rx.recv_timeout(Duration::from_millis(15)) {
                    match event {
                        Event::Changed(more) => paths.extend(more),
                        Event::Stop => stop = true,
                    }
                }
                if stop {
                    break Ok(());
                }
                session.on_change(paths);
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = session.on_engine_check() {
                    break Err(e);
                }
            }
        }
    };
    session.stop();
    outcome
}

/// One `igloo dev` run: the project, its engines, the server and what was last applied. The
/// loop hands each event to one handler: a file change, an engine check, stop.
struct DevSession {
    project: Project,
    engines: Engines,
    server: Option<RunningServer>,
    opts: DevOptions,
    /// Fingerprint of the files the last sync read.
    synced: u64,
    restarts: RestartBudget,
}

impl DevSession {
    /// Starts the engines, brings them in line with the schema and starts the server.
    fn start(project: Project, mode: InfraMode, opts: DevOptions) -> Result<DevSession, DevError> {
        let engines = Engines::start(&project, mode)?;
        if let Err(e) = write_state(&project, &engines) {
            engines.stop();
            return Err(e);
        }
        let synced = fingerprint(&project.root);
        let applied = sync(&project, &engines.endpoints, opts);
        let server = match (opts.no_server, applied) {
            (false, Ok(ir)) => match RunningServer::start(
                server::settings(
                    &project,
                    &engines.endpoints,
                    igloo_server::runtime::Roles::ALL,
                    igloo_server::writer::Sharing::Alone,
                ),
                ir,
            ) {
                Ok(s) => Some(s),
                Err(e) => {
                    engines.stop();
                    state::remove(&project.root);
                    return Err(e.into());
                }
            },
            _ => None,
        };
        Ok(DevSession { project, engines, server, opts, synced, restarts: RestartBudget::default() })
    }

    fn print_ready(&self, started: Instant) {
        let ep = &self.engines.endpoints;
        println!(
            "\nReady in {:.1} s. Watching schema/, apis/, views/, transforms/ and {FILE_NAME}; Ctrl-C stops everything.",
            started.elapsed().as_secs_f64()
        );
        println!("  ClickHouse {}  {} (database {})", ep.dialect, ep.clickhouse.url, self.project.config.database());
        println!("  Kafka API       {}", ep.broker.bootstrap);
        match &self.server {
            Some(s) => {
                println!("  Ingest API      http://{}  (POST /ingest/<Model>, /health, /metrics)", s.addr());
                println!("  Console         http://{}/console", s.addr());
            }
            None if self.opts.no_server => println!("  Ingest API      not started (--no-server)"),
            None => println!("  Ingest API      starts once the schema is valid"),
        }
    }

    /// Saved files: transforms reload alone; anything else is checked, planned and applied.
    fn on_change(&mut self, paths: Vec<PathBuf>) {
        let transforms = self.project.root.join("transforms");
        let (code, paths): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.starts_with(&transforms));
        if !code.is_empty() {
            self.reload_transforms();
        }
        if paths.is_empty() {
            return;
        }
        let now = fingerprint(&self.project.root);
        if now == self.synced {
            return;
        }
        self.synced = now;
        if paths.iter().any(|p| p.file_name().is_some_and(|n| n == FILE_NAME)) {
            reload_config(&mut self.project);
        }
        match sync(&self.project, &self.engines.endpoints, self.opts) {
            Ok(ir) => {
                self.server = reload_server(self.server.take(), &self.project, &self.engines.endpoints, ir, self.opts);
                if let Some(s) = &self.server {
                    s.set_problems(Vec::new());
                }
            }
            Err(problem) => {
                if let Some(s) = &self.server {
                    s.set_problems(vec![problem.to_string()]);
                }
            }
        }
    }

    fn reload_transforms(&mut self) {
        let Some(s) = self.server.as_mut() else { return };
        // A transform in a new language needs that language's SDK module.
        let sdk = self.project.root.join("sdk");
        if crate::sdk::project_langs(&self.project)
            .into_iter()
            .any(|lang| !crate::sdk::module_path(&sdk, &self.project.config.name, lang).exists())
        {
            regenerate_sdk(&self.project, &self.engines.endpoints, &s.ir());
        }
        s.sync_transforms(false);
    }

    /// A native engine that exited (or a broker that stopped answering) is restarted, at most
    /// 3 times a minute; then igloo dev stops.
    fn on_engine_check(&mut self) -> Result<(), DevError> {
        let Some((kind, message)) = self.engines.died().or_else(|| self.engines.silent()) else { return Ok(()) };
        println!("✗ {message}");
        if !self.restarts.allow(kind) {
            println!("✗ it keeps exiting; giving up");
            return Err(DevError::EngineDied);
        }
        match self.engines.restart(kind) {
            Ok(line) => {
                println!("{line}");
                write_state(&self.project, &self.engines)
            }
            Err(e) => {
                println!("✗ cannot restart it: {e}");
                Err(DevError::EngineDied)
            }
        }
    }

    /// The server first (in-flight requests answered, batches finished), then the engines.
    fn stop(mut self) {
        if let Some(s) = self.server.take() {
            println!("Stopping the ingest server and table writers…");
            s.stop();
        }
        println!("Stopping the engines…");
        self.engines.stop();
        state::remove(&self.project.root);
        println!("Stopped.");
    }
}

/// At most 3 restarts of an engine within a minute; then igloo dev gives up on it.
#[derive(Default)]
struct RestartBudget {
    recent: std::collections::HashMap<EngineKind, Vec<Instant>>,
}

impl RestartBudget {
    fn allow(&mut self, kind: EngineKind) -> bool {
        let times = self.recent.entry(kind).or_default();
        times.retain(|t| t.elapsed() < Duration::from_secs(60));
        times.push(Instant::now());
        times.len() <= 3
    }
}

fn install_stop_handler(tx: Sender<Event>) -> Result<(), DevError> {
    let stopping = Arc::new(AtomicBool::new(false));
    ctrlc::set_handler(move || {
        if stopping.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: leave now; the engines get SIGTERM from the kernel (PDEATHSIG).
            std::process::exit(130);
        }
        let _ = tx.send(Event::Stop);
    })
    .map_err(|e| DevError::Signal(e.to_string()))
}

fn write_state(project: &Project, engines: &Engines) -> Result<(), DevError> {
    let ep = &engines.endpoints;
    let s = DevState {
        pid: std::process::id(),
        mode: engines.mode.to_string(),
        started_at_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        clickhouse_url: ep.clickhouse.url.clone(),
        bootstrap_servers: ep.broker.bootstrap.clone(),
        engines: engines.states(),
    };
    state::write(&project.root, &s).map_err(|source| DevError::State { path: state::igloo_dir(&project.root), source })
}

/// Watches `schema/` (recursively), `apis/` and the project root (for igloo.yaml only). Reads
/// (inotify OPEN, which igloo's own syncs cause) are not changes and are dropped here.
fn watch(root: &Path, tx: Sender<Event>) -> Result<RecommendedWatcher, DevError> {
    let schema = root.join("schema");
    let apis = root.join("apis");
    let views = root.join("views");
    let transforms = root.join("transforms");
    let yaml = root.join(FILE_NAME);
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if !matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)) {
            return;
        }
        let paths: Vec<PathBuf> = event
            .paths
            .into_iter()
            .filter(|p| {
                p == &yaml
                    || (p.starts_with(&schema) && p.extension().is_some_and(|e| e == "prisma"))
                    || ((p.starts_with(&apis) || p.starts_with(&views)) && p.extension().is_some_and(|e| e == "sql"))
                    || (p.starts_with(&transforms) && p.extension().is_some_and(|e| e == "ts" || e == "py"))
            })
            .collect();
        if !paths.is_empty() {
            let _ = tx.send(Event::Changed(paths));
        }
    };
    let mut watcher = notify::recommended_watcher(handler)
        .map_err(|e| DevError::Watch { path: root.to_path_buf(), message: e.to_string() })?;
    let _ = std::fs::create_dir_all(root.join("apis"));
    let _ = std::fs::create_dir_all(root.join("views"));
    let _ = std::fs::create_dir_all(root.join("transforms"));
    for (path, mode) in [
        (root.join("schema"), RecursiveMode::Recursive),
        (root.join("apis"), RecursiveMode::NonRecursive),
        (root.join("views"), RecursiveMode::NonRecursive),
        (root.join("transforms"), RecursiveMode::NonRecursive),
        (root.to_path_buf(), RecursiveMode::NonRecursive),
    ] {
        watcher.watch(&path, mode).map_err(|e| DevError::Watch { path: path.clone(), message: e.to_string() })?;
    }
    Ok(watcher)
}

/// A hash of everything a sync reads, to skip saves that changed nothing.
fn fingerprint(root: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(root.join(FILE_NAME)).ok().hash(&mut h);
    if let Ok(files) = schema_files::load_dir(&root.join("schema"), root) {
        for f in files {
            (f.path, f.text).hash(&mut h);
        }
    }
    for dir in ["apis", "views"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                (f.display().to_string(), std::fs::read(&f).ok()).hash(&mut h);
            }
        }
    }
    h.finish()
}

/// Re-reads igloo.yaml; a broken file is reported and the previous settings stay.
fn reload_config(project: &mut Project) {
    match ProjectConfig::load(&project.root.join(FILE_NAME), |k| std::env::var(k).ok()) {
        Ok(config) => {
            let engines_changed = config.infra != project.config.infra
                || config.broker != project.config.broker
                || (config.clickhouse.http_port, config.clickhouse.tcp_port, &config.clickhouse.url)
                    != (
                        project.config.clickhouse.http_port,
                        project.config.clickhouse.tcp_port,
                        &project.config.clickhouse.url,
                    );
            if engines_changed {
                println!("! {FILE_NAME}: engine settings changed; restart igloo dev to use them");
            }
            project.config = config;
        }
        Err(e) => println!("✗ {e}\n  (keeping the previous settings)"),
    }
}

/// Starts the server (first valid schema) or hands it the new schema.
fn reload_server(
    server: Option<RunningServer>,
    project: &Project,
    endpoints: &Endpoints,
    ir: Ir,
    opts: DevOptions,
) -> Option<RunningServer> {
    if opts.no_server {
        return None;
    }
    match server {
        Some(mut s) => {
            if let Err(e) = s.reload(project, ir) {
                println!("✗ ingest server: {e}");
            }
            Some(s)
        }
        None => match RunningServer::start(
            server::settings(
                project,
                endpoints,
                igloo_server::runtime::Roles::ALL,
                igloo_server::writer::Sharing::Alone,
            ),
            ir,
        ) {
            Ok(s) => {
                println!("✓ ingest API on http://{addr}; console on http://{addr}/console", addr = s.addr());
                Some(s)
            }
            Err(e) => {
                println!("✗ ingest server: {e}");
                None
            }
        },
    }
}

/// Why a save was not applied (already printed; the console shows it too).
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("✗ {0}; nothing applied")]
    Files(#[from] crate::schema_files::SchemaFilesError),
    #[error("{rendered}\n✗ the schema has errors; nothing applied, the running system is unchanged")]
    Schema { rendered: String },
    #[error("{}\n✗ views/ has errors; nothing applied, the running system is unchanged", .0.iter().map(|e| format!("✗ {e}")).collect::<Vec<_>>().join("\n"))]
    Views(Vec<igloo_schemas::consumption::ApiFileError>),
    #[error("✗ {0}")]
    Plan(migrate::MigrateError),
    #[error("✗ {0}\n  (steps before it were applied; fix the schema or the engine and save again)")]
    Apply(migrate::MigrateError),
}

/// Check → plan → apply, printing one line per step. Returns the schema when the engines now
/// match it (steps held back for consent aside), for the server to use; else what is wrong,
/// already printed, for the console to show.
fn sync(project: &Project, endpoints: &Endpoints, opts: DevOptions) -> Result<Ir, SyncError> {
    let ir = sync_engines(project, endpoints, opts).inspect_err(|problem| println!("{problem}"))?;
    regenerate_sdk(project, endpoints, &ir);
    Ok(ir)
}

/// Rewrites `sdk/<project>.{ts,py}` (igloo.yaml's language and the transforms' languages)
/// when the schema or `apis/` changed it.
fn regenerate_sdk(project: &Project, endpoints: &Endpoints, ir: &Ir) {
    let (apis, _) = crate::sql_files::load(&project.root);
    let columns = crate::sdk::describe(&endpoints.clickhouse, &project.config.database(), &apis);
    for lang in crate::sdk::project_langs(project) {
        let path = crate::sdk::module_path(&project.root.join("sdk"), &project.config.name, lang);
        match crate::sdk::write(&path, ir, &apis, &columns, lang) {
            Ok(true) => println!("  ✓ {} regenerated", path.strip_prefix(&project.root).unwrap_or(&path).display()),
            Ok(false) => {}
            Err(e) => println!("✗ cannot write {}: {e}", path.display()),
        }
    }
}

/// Like [`sync`], without the SDK. The schema is checked by the same path as `igloo check`.
fn sync_engines(project: &Project, endpoints: &Endpoints, opts: DevOptions) -> Result<Ir, SyncError> {
    let checked = crate::project_check::check_project(project, Some(endpoints.dialect))?;
    if checked.diags.has_errors() {
        return Err(SyncError::Schema { rendered: checked.diags.render(&checked.files).to_string() });
    }
    if !checked.view_errors.is_empty() {
        return Err(SyncError::Views(checked.view_errors));
    }
    if !checked.diags.is_empty() {
        println!("{}", checked.diags.render(&checked.files));
    }
    let ir = checked.ir;
    let database = project.config.database();
    let plan = migrate::plan_for(endpoints, &ir, &database).map_err(SyncError::Plan)?;
    if plan.is_empty() && plan.notes.is_empty() {
        println!("✓ up to date ({} models)", ir.models.len());
        return Ok(ir);
    }
    let consent = migrate::ask_consent(&plan, opts.allow_destructive, |line| println!("{line}"));
    let fingerprint = igloo_schemas::ir::fingerprint(&ir);
    let applied =
        migrate::apply(endpoints, &plan, &fingerprint, consent, |step| println!("  {}", step.summary(&plan.database)))
            .map_err(SyncError::Apply)?;
    migrate::print_report(&applied, "igloo dev", "");
    Ok(ir)
}
