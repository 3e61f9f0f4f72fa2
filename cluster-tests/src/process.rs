//! [`NodeProcess`]: one `sutra-node` child process, and the faults a test injects into
//! it by signal (SIGKILL, SIGSTOP/SIGCONT, SIGTERM), always addressed to its own PID.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How often a wait for a process to exit looks at it.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// Environment variable that names the `sutra-node` binary to run.
pub const NODE_BIN_ENV: &str = "SUTRA_NODE_BIN";

/// Finds the `sutra-node` binary: `$SUTRA_NODE_BIN`, else next to the test executable
/// (`<target>/debug/deps/<test>` → `<target>/debug/sutra-node`).
///
/// The harness never builds it: run `cargo build -p sutra-node` first (the project's test
/// script does).
pub fn node_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(NODE_BIN_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{NODE_BIN_ENV}={} is not a file; build it with `cargo build -p sutra-node`",
                path.display()
            );
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    // `<profile>/deps/<test>`: the binary sits in `<profile>/`; a test run from
    // `<profile>/` directly (unusual) finds it next to itself.
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        if let Some(profile) = dir.parent() {
            candidates.push(profile.join("sutra-node"));
        }
        candidates.push(dir.join("sutra-node"));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "sutra-node binary not found (looked at {candidates:?}); run `cargo build -p sutra-node` \
                 with the same target directory and profile first, or set {NODE_BIN_ENV}"
            )
        })
}

/// The `sutra` CLI, which sits next to `sutra-node` in the target directory (the test
/// script builds both).
pub fn cli_binary() -> Result<PathBuf> {
    let cli = node_binary()?.with_file_name("sutra");
    if !cli.is_file() {
        bail!(
            "{} missing: run `cargo build -p sutra-client --bins` first",
            cli.display()
        );
    }
    Ok(cli)
}

/// A `sutra-node` process that can be killed, paused, stopped and restarted with the same
/// arguments (hence the same data directory and ports).
///
/// stdout and stderr go to one log file, appended across restarts with a marker line per
/// start. Dropping it kills the process (SIGKILL) if it still runs.
#[derive(Debug)]
pub struct NodeProcess {
    id: u64,
    bin: PathBuf,
    args: Vec<OsString>,
    log_path: PathBuf,
    child: Option<Child>,
    last_exit: Option<ExitStatus>,
    starts: u32,
}

impl NodeProcess {
    /// Starts `bin args...` with its output appended to `log_path`.
    pub fn spawn(id: u64, bin: &Path, args: Vec<OsString>, log_path: PathBuf) -> Result<Self> {
        let mut p = Self {
            id,
            bin: bin.to_owned(),
            args,
            log_path,
            child: None,
            last_exit: None,
            starts: 0,
        };
        p.start()?;
        Ok(p)
    }

    /// The node id this process runs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The OS process id while a process has been started and not yet reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the process's output goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// How often the process has been started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The exit status of the last process that ended, if any did.
    pub fn last_exit(&self) -> Option<ExitStatus> {
        self.last_exit
    }

    fn start(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("node {} is still running (pid {:?})", self.id, self.pid());
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        self.starts += 1;
        writeln!(
            log,
            "===== harness: start #{} of node {}: {} {}",
            self.starts,
            self.id,
            self.bin.display(),
            self.args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        )?;
        let err = log.try_clone()?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        // The node takes every setting from its command line: settings the test runner
        // happens to have in its environment must not leak in.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SUTRA_") {
                cmd.env_remove(key);
            }
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("SUTRA_TEST_NODE_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
        );
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        tracing::debug!(node = self.id, pid = child.id(), "node process started");
        self.child = Some(child);
        Ok(())
    }

    /// Starts the process again with the same arguments (same data directory and ports).
    pub fn restart(&mut self) -> Result<()> {
        self.start()
    }

    /// Whether the process runs (or is paused). Reaps it if it has exited.
    pub fn is_running(&mut self) -> bool {
        self.poll_exit().is_none() && self.child.is_some()
    }

    /// The exit status if the process has exited since it was last started (reaping it).
    fn poll_exit(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                self.last_exit = Some(status);
                Some(status)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(node = self.id, error = %e, "waiting for the node process");
                None
            }
        }
    }

    /// Whether the current process has exited (it has been reaped then).
    pub fn has_exited(&mut self) -> bool {
        self.child.is_none() || self.poll_exit().is_some()
    }

    fn signal(&mut self, signal: libc::c_int) -> Result<()> {
        if self.poll_exit().is_some() || self.child.is_none() {
            bail!(
                "node {} is not running (last exit: {:?})",
                self.id,
                self.last_exit
            );
        }
        let pid = self.pid().expect("checked above that a child is present");
        // SAFETY: kill(2) has no memory-safety preconditions. The PID is our own child's,
        // which has not been reaped (poll_exit above), so it cannot have been reused.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        if rc != 0 {
            bail!(
                "kill({pid}, {signal}) for node {}: {}",
                self.id,
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// SIGKILL, then waits until the process is gone. No graceful anything.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.signal(libc::SIGKILL)?;
        let status = self
            .child
            .as_mut()
            .expect("signal() checked the child")
            .wait()
            .context("waiting for the killed node")?;
        self.child = None;
        self.last_exit = Some(status);
        tracing::info!(node = self.id, "node killed (SIGKILL)");
        Ok(status)
    }

    /// SIGSTOP: the process stays alive but does nothing, like a hung machine.
    pub fn pause(&mut self) -> Result<()> {
        self.signal(libc::SIGSTOP)?;
        tracing::info!(node = self.id, "node paused (SIGSTOP)");
        Ok(())
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&mut self) -> Result<()> {
        self.signal(libc::SIGCONT)?;
        tracing::info!(node = self.id, "node resumed (SIGCONT)");
        Ok(())
    }

    /// SIGTERM (graceful stop), then waits up to `timeout` for the exit status. If the
    /// process is still there after that it is killed and an error returned.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.signal(libc::SIGTERM)?;
        match self.wait_exit(timeout) {
            Ok(status) => {
                tracing::info!(node = self.id, ?status, "node stopped (SIGTERM)");
                Ok(status)
            }
            Err(e) => {
                let _ = self.kill();
                Err(e.context(format!(
                    "node {} did not exit within {timeout:?} of SIGTERM; killed",
                    self.id
                )))
            }
        }
    }

    /// Sends SIGTERM and returns at once; see [`try_exit`](Self::try_exit) and
    /// [`terminate`](Self::terminate).
    pub fn send_terminate(&mut self) -> Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// The exit status if the process has exited (reaping it), else `None`.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.child.is_none() {
            return self.last_exit;
        }
        self.poll_exit()
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let start = Instant::now();
        let max_polls = timeout.as_millis() / EXIT_POLL.as_millis() + 1;
        for _ in 0..max_polls {
            if let Some(status) = self.poll_exit() {
                return Ok(status);
            }
            if self.child.is_none() {
                return self
                    .last_exit
                    .ok_or_else(|| anyhow::anyhow!("node {} was never started", self.id));
            }
            if start.elapsed() >= timeout {
                break;
            }
            std::thread::sleep(EXIT_POLL);
        }
        bail!("node {} still running after {timeout:?}", self.id)
    }

    /// The last `lines` lines of the log (all starts).
    pub fn log_tail(&self, lines: usize) -> String {
        match std::fs::read_to_string(&self.log_path) {
            Ok(text) => {
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(e) => format!("<cannot read {}: {e}>", self.log_path.display()),
        }
    }

    /// Whether the log holds `needle` (e.g. a start-up error).
    pub fn log_contains(&self, needle: &str) -> bool {
        std::fs::read_to_string(&self.log_path).is_ok_and(|t| t.contains(needle))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.is_running() {
            // A paused process dies of SIGKILL as well.
            let _ = self.kill();
        }
    }
}

/// Makes the child die with SIGKILL when the test process dies, even by SIGKILL (a test
/// runner's timeout), so no node outlives its test.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // prctl(2), which is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}
