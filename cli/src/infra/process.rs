//! Engine child processes: spawned in their own process group (so a terminal's Ctrl-C reaches
//! igloo, which then stops them in order) with a parent-death signal (so they never outlive a
//! killed igloo), output appended to a log file, health awaited with a real check, and stopped
//! with SIGTERM, then SIGKILL.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot prepare {path}: {source}")]
    Prepare { path: PathBuf, source: std::io::Error },
    #[error("cannot start {binary}: {source}")]
    Spawn { binary: String, source: std::io::Error },
    #[error("{engine} exited during start-up ({status}); last lines of {log}:\n{tail}")]
    Exited { engine: &'static str, status: String, log: PathBuf, tail: String },
    #[error("{engine} did not become ready within {secs} s ({check}); last lines of {log}:\n{tail}")]
    Timeout { engine: &'static str, secs: u64, check: String, log: PathBuf, tail: String },
}

/// A running engine process.
pub struct EngineProcess {
    pub engine: &'static str,
    child: Child,
    pub log: PathBuf,
}

impl EngineProcess {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(engine: &'static str, mut cmd: Command, log: &Path) -> Result<EngineProcess, ProcessError> {
        let prepare = |source| ProcessError::Prepare { path: log.to_path_buf(), source };
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(prepare)?;
        }
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(prepare)?;
        let err = out.try_clone().map_err(prepare)?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to signal this child when
        // the spawning thread exits.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let binary = format!("{:?}", cmd.get_program());
        let child = cmd
            .spawn()
            .map_err(|source| ProcessError::Spawn { binary: binary.trim_matches('"').to_string(), source })?;
        tracing::info!(engine, pid = child.id(), log = %log.display(), "started");
        Ok(EngineProcess { engine, child, log: log.to_path_buf() })
    }

    /// Polls `ready` until it is true, the process exits, or `timeout` passes.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        check: &str,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), ProcessError> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ProcessError::Exited {
                    engine: self.engine,
                    status: status.to_string(),
                    log: self.log.clone(),
                    tail: tail(&self.log, 15),
                });
            }
            if ready() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(ProcessError::Timeout {
                    engine: self.engine,
                    secs: timeout.as_secs(),
                    check: check.to_string(),
                    log: self.log.clone(),
                    tail: tail(&self.log, 15),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        terminate(self.child.id());
        let start = Instant::now();
        while start.elapsed() < grace {
            if self.exited().is_some() {
                tracing::info!(engine = self.engine, "stopped");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(engine = self.engine, "did not stop after SIGTERM; killing");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Sends SIGTERM to a process.
pub fn terminate(pid: u32) {
    // SAFETY: kill(2) with a valid signal number has no memory effects.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
}

/// Whether a process with this pid exists (and is not a zombie we could see).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => last_lines(&String::from_utf8_lossy(&bytes), lines),
        Err(_) => "(no log written)".into(),
    }
}

/// The last `lines` lines of a text (a command's output).
pub fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A binary on PATH (and in the sbin directories Debian packages use).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether something already listens on 127.0.0.1:port.
pub fn port_busy(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
}
