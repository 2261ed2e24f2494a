//! One worker process: `node --import tsx worker.mjs <file>` or `python3 worker.py <file>`,
//! started in the project root. It loads the transform once, then answers batches until its
//! stdin closes. A worker that exits, writes garbage, or does not answer in time has crashed;
//! the caller decides what to redeliver.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::protocol::{self, Hello, RecordResult, Results};
use super::spec::{Lang, TransformSpec};

const NODE_WORKER: &str = include_str!("worker.mjs");
const PYTHON_WORKER: &str = include_str!("worker.py");
/// How long a worker may take to load its transform.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of stderr kept to explain a crash.
const STDERR_TAIL: usize = 20;

/// How to start workers: interpreters, the tsx loader, where the worker scripts are.
#[derive(Clone, Debug)]
pub struct WorkerRuntime {
    pub node: String,
    pub python: String,
    /// tsx's ESM loader (`node --import`), needed for TypeScript transforms.
    pub tsx_loader: Option<PathBuf>,
    /// The project root: the workers' working directory and Python's import root.
    pub root: PathBuf,
    /// Where `worker.mjs` and `worker.py` are written.
    pub scripts: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{path} does not load:\n{message}")]
    Load { path: String, message: String },
    #[error("cannot start `{program}` for {path}: {message}")]
    Spawn { program: String, path: String, message: String },
    #[error("TypeScript transforms need tsx: run `npm install --save-dev tsx` in the project, or scripts/install-engines.sh (set IGLOO_TSX to a tsx package directory to use another)")]
    NoTsx,
    #[error("the worker crashed: {0}")]
    Crashed(String),
}

impl WorkerRuntime {
    /// Writes the worker scripts (idempotent).
    pub fn install(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.scripts)?;
        for (name, text) in [("worker.mjs", NODE_WORKER), ("worker.py", PYTHON_WORKER)] {
            let path = self.scripts.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                std::fs::write(path, text)?;
            }
        }
        Ok(())
    }

    fn command(&self, spec: &TransformSpec) -> Result<(String, Command), WorkerError> {
        let (program, mut cmd) = match spec.lang {
            Lang::Ts => {
                let loader = self.tsx_loader.as_ref().ok_or(WorkerError::NoTsx)?;
                let mut cmd = Command::new(&self.node);
                cmd.arg("--import").arg(file_url(loader)).arg(self.scripts.join("worker.mjs"));
                (self.node.clone(), cmd)
            }
            Lang::Py => {
                let mut cmd = Command::new(&self.python);
                cmd.arg("-u").arg(self.scripts.join("worker.py"));
                (self.python.clone(), cmd)
            }
        };
        cmd.arg(&spec.path)
            .arg(&self.root)
            .current_dir(&self.root)
            .env("IGLOO_TRANSFORM", &spec.name)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe. The kernel sends SIGTERM to the worker when the
        // thread that spawned it (a runtime worker thread, alive as long as the server) dies:
        // a killed igloo leaves no worker behind, whatever the worker is busy with.
        #[cfg(target_os = "linux")]
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        Ok((program, cmd))
    }
}

/// `file://<path>`, what `node --import` takes.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// tsx's loader: `dir/package.json`'s `exports["."]`, resolved in `dir`.
pub fn tsx_loader(dir: &Path) -> Option<PathBuf> {
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("package.json")).ok()?).ok()?;
    let entry = manifest.pointer("/exports/.").and_then(|v| v.as_str()).unwrap_or("./dist/loader.mjs");
    let path = dir.join(entry);
    path.is_file().then_some(path)
}

pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Worker {
    /// Starts a worker and waits until it loaded the transform.
    pub async fn start(spec: &TransformSpec, rt: &WorkerRuntime) -> Result<Worker, WorkerError> {
        let path = shown(spec, rt);
        let (program, mut cmd) = rt.command(spec)?;
        let mut child =
            cmd.spawn().map_err(|e| WorkerError::Spawn { program, path: path.clone(), message: e.to_string() })?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(WorkerError::Crashed("no pipes to the worker".into()));
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(forward_stderr(spec.name.clone(), stderr, tail.clone()));
        let mut worker = Worker { child, stdin, stdout, stderr: tail };
        let hello = tokio::time::timeout(LOAD_TIMEOUT, protocol::read_frame(&mut worker.stdout)).await;
        let load = |message: String| WorkerError::Load { path: path.clone(), message };
        match hello {
            Ok(Ok(Some(body))) => match serde_json::from_slice::<Hello>(&body) {
                Ok(Hello::Ready { ready: true }) => Ok(worker),
                Ok(Hello::LoadError { load_error }) => Err(load(load_error)),
                _ => Err(load(format!("unexpected first frame: {}", String::from_utf8_lossy(&body)))),
            },
            Ok(Ok(None) | Err(_)) => {
                let status = worker.child.wait().await.map(|s| s.to_string()).unwrap_or_default();
                tokio::time::sleep(Duration::from_millis(50)).await; // the last stderr lines
                Err(load(format!("the worker exited ({status}) before loading it\n{}", worker.stderr_tail())))
            }
            Err(_) => Err(load(format!("not loaded within {} s", LOAD_TIMEOUT.as_secs()))),
        }
    }

    /// Sends one batch (`records` are JSON objects as text); one result per record.
    pub async fn process(
        &mut self,
        frame: &[u8],
        records: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordResult>, WorkerError> {
        let exchange = async {
            protocol::write_frame(&mut self.stdin, frame).await.map_err(|e| e.to_string())?;
            match protocol::read_frame(&mut self.stdout).await {
                Ok(Some(body)) => serde_json::from_slice::<Results>(&body)
                    .map_err(|e| format!("unreadable answer ({e}): the worker wrote something else on stdout")),
                Ok(None) => Err("it exited".to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        let outcome = match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        match outcome {
            Ok(r) if r.results.len() == records => Ok(r.results),
            Ok(r) => Err(self.crashed(format!("{} results for {records} records", r.results.len())).await),
            Err(reason) => Err(self.crashed(reason).await),
        }
    }

    async fn crashed(&mut self, reason: String) -> WorkerError {
        let _ = self.child.start_kill();
        let status = self.child.wait().await.map(|s| s.to_string()).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let tail = self.stderr_tail();
        WorkerError::Crashed(if tail.is_empty() {
            format!("{reason} ({status})")
        } else {
            format!("{reason} ({status})\n{tail}")
        })
    }

    fn stderr_tail(&self) -> String {
        self.stderr.lock().expect("stderr lock").iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Closes stdin (the worker exits on its own), then kills it if it lingers.
    pub async fn stop(self) {
        let Worker { mut child, stdin, .. } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(2), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

fn shown(spec: &TransformSpec, rt: &WorkerRuntime) -> String {
    spec.path.strip_prefix(&rt.root).unwrap_or(&spec.path).display().to_string()
}

/// Logs the worker's stderr (user code's prints, warnings) line by line, keeping a tail.
async fn forward_stderr(name: String, stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(transform = %name, "{line}");
        let mut t = tail.lock().expect("stderr lock");
        if t.len() == STDERR_TAIL {
            t.pop_front();
        }
        t.push_back(line);
    }
}
