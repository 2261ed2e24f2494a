//! The running transforms, brought in line with `transforms/` on every sync: new files start,
//! changed files reload (only after the new code loads in a probe worker), removed files stop.
//! A schema change restarts them all with the new models. Returns what happened as
//! [`TransformReport`]s for the caller to show.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use igloo_schemas::Ir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::runner::{run_slot, TransformContext};
use super::spec::{discover, parse_name, TransformSpec};
use super::worker::{Worker, WorkerError, WorkerRuntime};
use crate::config::TransformsConfig;
use crate::dlq::DeadLetters;
use crate::kafka::producer::Producer;
use crate::metrics::Metrics;

/// What a sync did to one transform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransformReport {
    Started {
        name: String,
        source: String,
        destination: String,
        workers: usize,
    },
    Reloaded {
        name: String,
        load_ms: u128,
    },
    Stopped {
        name: String,
    },
    /// The file does not load; with `kept_previous`, the version loaded before keeps running.
    LoadFailed {
        name: String,
        message: String,
        kept_previous: bool,
    },
    /// A file named like a transform that cannot be one (unknown model, …).
    Invalid(String),
}

impl std::fmt::Display for TransformReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransformReport::Started { name, source, destination, workers } => {
                let w = if *workers == 1 { "1 worker".to_string() } else { format!("{workers} workers") };
                write!(f, "transform {name}: {source} → {destination} ({w})")
            }
            TransformReport::Reloaded { name, load_ms } => {
                write!(f, "transform {name} reloaded (new code loaded in {load_ms} ms)")
            }
            TransformReport::Stopped { name } => write!(f, "transform {name} stopped"),
            TransformReport::LoadFailed { message, kept_previous, .. } => {
                write!(f, "{message}")?;
                if *kept_previous {
                    write!(f, "\n(the previous version keeps running until the file is fixed)")?;
                }
                Ok(())
            }
            TransformReport::Invalid(message) => f.write_str(message),
        }
    }
}

impl TransformReport {
    pub fn is_error(&self) -> bool {
        matches!(self, TransformReport::LoadFailed { .. } | TransformReport::Invalid(_))
    }

    /// The transform reported on (none for a file that cannot be a transform).
    pub fn name(&self) -> Option<&str> {
        match self {
            TransformReport::Started { name, .. }
            | TransformReport::Reloaded { name, .. }
            | TransformReport::Stopped { name }
            | TransformReport::LoadFailed { name, .. } => Some(name),
            TransformReport::Invalid(_) => None,
        }
    }
}

/// One transform as the dev console shows it: from its file name and the last sync.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TransformStatus {
    pub name: String,
    pub source: String,
    pub destination: String,
    /// `TypeScript` or `Python`.
    pub language: String,
    /// Worker slots configured.
    pub workers: usize,
    pub running: bool,
    /// Why the current file does not load (with `running`, the previous version still runs).
    pub error: Option<String>,
}

/// What every transform needs from the server.
pub struct TransformsSetup {
    pub dir: PathBuf,
    pub runtime: WorkerRuntime,
    pub config: TransformsConfig,
    pub broker: crate::kafka::Broker,
    pub database: String,
    pub producer: Producer,
    pub dead_letters: DeadLetters,
    pub metrics: Arc<Metrics>,
    /// Some: slots join the transform's consumer group (`igloo serve` replicas).
    pub group_session: Option<std::time::Duration>,
}

struct Running {
    spec: TransformSpec,
    fingerprint: u64,
    code: watch::Sender<u64>,
    stop: watch::Sender<bool>,
    slots: Vec<JoinHandle<()>>,
}

pub struct Transforms {
    setup: TransformsSetup,
    running: BTreeMap<String, Running>,
    /// Files that did not load, by name, with the fingerprint tried: not retried until changed.
    broken: BTreeMap<String, u64>,
    /// The last sync's view of each transform file, for [`Transforms::status`].
    status: BTreeMap<String, TransformStatus>,
    /// Files named like transforms that cannot be (unknown model, …), at the last sync.
    invalid: Vec<String>,
}

impl Transforms {
    pub fn new(setup: TransformsSetup) -> Transforms {
        Transforms {
            setup,
            running: BTreeMap::new(),
            broken: BTreeMap::new(),
            status: BTreeMap::new(),
            invalid: Vec::new(),
        }
    }

    /// New settings (igloo.yaml changed): used by the transforms (re)started from now on.
    pub fn configure(&mut self, config: TransformsConfig) {
        self.setup.runtime.node = config.node.clone();
        self.setup.runtime.python = config.python.clone();
        self.setup.config = config;
    }

    /// Brings the running transforms in line with the directory. `restart` (a new schema):
    /// every transform restarts with `ir`.
    pub async fn sync(&mut self, ir: Arc<Ir>, restart: bool) -> Vec<TransformReport> {
        if restart {
            self.broken.clear(); // a new schema (or SDK module) may be what they were missing
        }
        let (specs, errors) = discover(&self.setup.dir, &ir);
        let mut reports: Vec<TransformReport> =
            errors.iter().map(|e| TransformReport::Invalid(e.to_string())).collect();
        if !specs.is_empty() {
            if let Err(e) = self.setup.runtime.install() {
                reports.push(TransformReport::Invalid(format!("cannot write the worker scripts: {e}")));
                return reports;
            }
        }
        let wanted: BTreeMap<&str, &TransformSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|(name, r)| restart || wanted.get(name.as_str()).is_none_or(|s| **s != r.spec))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.stop_one(&name).await;
            if !wanted.contains_key(name.as_str()) {
                reports.push(TransformReport::Stopped { name });
            }
        }
        self.broken.retain(|name, _| wanted.contains_key(name.as_str()));
        for spec in specs.iter().cloned() {
            let fingerprint = fingerprint(&self.setup.dir, &spec);
            if let Some(r) = self.running.get(&spec.name) {
                if r.fingerprint != fingerprint {
                    reports.push(self.reload_one(&spec, fingerprint).await);
                }
                continue;
            }
            if self.broken.get(&spec.name) == Some(&fingerprint) {
                continue;
            }
            reports.push(self.start_one(&ir, spec, fingerprint).await);
        }
        self.record_status(&specs, &reports);
        reports
    }

    /// Every transform file with its state after the last sync, and the files that cannot be
    /// transforms.
    pub fn status(&self) -> (Vec<TransformStatus>, Vec<String>) {
        (self.status.values().cloned().collect(), self.invalid.clone())
    }

    fn record_status(&mut self, specs: &[TransformSpec], reports: &[TransformReport]) {
        let mut errors: BTreeMap<&str, &str> = BTreeMap::new();
        self.invalid.clear();
        for r in reports {
            match r {
                TransformReport::LoadFailed { name, message, .. } => {
                    errors.insert(name, message);
                }
                TransformReport::Invalid(message) => self.invalid.push(message.clone()),
                _ => {}
            }
        }
        let previous = std::mem::take(&mut self.status);
        for spec in specs {
            // A file this sync did not touch (unchanged) keeps its earlier message.
            let untouched = reports.iter().all(|r| r.name() != Some(spec.name.as_str()));
            let kept = previous.get(&spec.name).and_then(|s| s.error.clone()).filter(|_| untouched);
            let error = errors.get(spec.name.as_str()).map(|m| m.to_string()).or(kept);
            self.status.insert(
                spec.name.clone(),
                TransformStatus {
                    name: spec.name.clone(),
                    source: spec.source.clone(),
                    destination: spec.destination.clone(),
                    language: spec.lang.to_string(),
                    workers: self.setup.config.workers_of(&spec.name),
                    running: self.running.contains_key(&spec.name),
                    error,
                },
            );
        }
    }

    async fn start_one(&mut self, ir: &Arc<Ir>, spec: TransformSpec, fingerprint: u64) -> TransformReport {
        if let Err(e) = probe(&spec, &self.setup.runtime).await {
            self.broken.insert(spec.name.clone(), fingerprint);
            return TransformReport::LoadFailed { name: spec.name, message: e.to_string(), kept_previous: false };
        }
        self.broken.remove(&spec.name);
        if let Err(e) = self.setup.dead_letters.ensure_table().await {
            tracing::warn!(error = %e, "cannot create the dead-letter table yet");
        }
        let s = &self.setup;
        let workers = s.config.workers_of(&spec.name);
        let ctx = Arc::new(TransformContext {
            spec: spec.clone(),
            runtime: s.runtime.clone(),
            config: s.config.clone(),
            broker: s.broker.clone(),
            database: s.database.clone(),
            ir: ir.clone(),
            producer: s.producer.clone(),
            dead_letters: s.dead_letters.clone(),
            metrics: s.metrics.transform(&spec.name),
            group_session: s.group_session,
        });
        let (code, code_rx) = watch::channel(0);
        let (stop, stop_rx) = watch::channel(false);
        let slots = (0..workers)
            .map(|slot| tokio::spawn(run_slot(ctx.clone(), slot, workers, code_rx.clone(), stop_rx.clone())))
            .collect();
        let report = TransformReport::Started {
            name: spec.name.clone(),
            source: spec.source.clone(),
            destination: spec.destination.clone(),
            workers,
        };
        self.running.insert(spec.name.clone(), Running { spec, fingerprint, code, stop, slots });
        report
    }

    async fn reload_one(&mut self, spec: &TransformSpec, fingerprint: u64) -> TransformReport {
        let started = Instant::now();
        let r = self.running.get_mut(&spec.name).expect("running");
        r.fingerprint = fingerprint;
        match probe(spec, &self.setup.runtime).await {
            Ok(()) => {
                r.code.send_modify(|v| *v += 1);
                TransformReport::Reloaded { name: spec.name.clone(), load_ms: started.elapsed().as_millis() }
            }
            Err(e) => {
                TransformReport::LoadFailed { name: spec.name.clone(), message: e.to_string(), kept_previous: true }
            }
        }
    }

    /// Each slot finishes (and commits) the batch it is on, then its worker stops.
    async fn stop_one(&mut self, name: &str) {
        if let Some(r) = self.running.remove(name) {
            let _ = r.stop.send(true);
            for slot in r.slots {
                let _ = slot.await;
            }
        }
    }

    pub async fn stop_all(&mut self) {
        let names: Vec<String> = self.running.keys().cloned().collect();
        for name in names {
            self.stop_one(&name).await;
        }
    }
}

/// Whether the file loads, in a worker of its own.
async fn probe(spec: &TransformSpec, runtime: &WorkerRuntime) -> Result<(), WorkerError> {
    let worker = Worker::start(spec, runtime).await?;
    worker.stop().await;
    Ok(())
}

/// The transform's file and the helpers beside it (same language, not transforms, not tests):
/// a change to any of them reloads it.
fn fingerprint(dir: &Path, spec: &TransformSpec) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(&spec.path).ok().hash(&mut h);
    let ext = spec.path.extension().map(|e| e.to_os_string());
    let mut helpers: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    helpers.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        p.extension().map(|e| e.to_os_string()) == ext
            && parse_name(name).is_none()
            && !name.contains(".test.")
            && !name.starts_with("test_")
    });
    helpers.sort();
    for p in helpers {
        (p.display().to_string(), std::fs::read(&p).ok()).hash(&mut h);
    }
    h.finish()
}
