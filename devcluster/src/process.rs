//! Processes of a dev or test cluster, and the signals that fault them, always addressed
//! to a process's own PID:
//!
//! - [`NodeProcess`]: a `sutra-node` child of this process (the test harness), killed,
//!   paused, stopped and restarted with the same arguments;
//! - [`signal`], [`alive`], [`is_node_process`]: the same faults for a detached process
//!   known only by its PID (the local runner and its drill driver);
//! - [`find_binary`]: where the `sutra-node` and `sutra` binaries are.

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
/// Environment variable that names the `sutra` binary to run.
pub const CLI_BIN_ENV: &str = "SUTRA_BIN";

/// A signal this crate sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGKILL: gone at once, no graceful anything.
    Kill,
    /// SIGTERM: a graceful stop (a leader hands over first).
    Term,
    /// SIGSTOP: alive but doing nothing, like a hung machine.
    Stop,
    /// SIGCONT after [`Signal::Stop`].
    Cont,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Self::Kill => libc::SIGKILL,
            Self::Term => libc::SIGTERM,
            Self::Stop => libc::SIGSTOP,
            Self::Cont => libc::SIGCONT,
        }
    }
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: Signal) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions; callers name a process they
    // started or checked (`is_node_process`).
    if unsafe { libc::kill(pid as libc::pid_t, sig.raw()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `pid` exists and has not exited. A killed detached process is a zombie until
/// its new parent (often init) reaps it, which can take seconds; it counts as gone.
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    exists && !zombie(pid)
}

/// Whether `pid` has exited and waits to be reaped (state `Z` in `/proc/<pid>/stat`).
pub fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The state follows the command name, which is in parentheses and may
            // itself contain spaces and parentheses.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Whether `pid` is a live `sutra-node run --node-id <id>` (a recorded PID may have been
/// reused by another process).
pub fn is_node_process(pid: u32, id: u64) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let id = id.to_string();
    alive(pid)
        && args.first().is_some_and(|a| a.ends_with(b"sutra-node"))
        && args.contains(&b"run".as_slice())
        && args
            .windows(2)
            .any(|w| w[0] == b"--node-id" && w[1] == id.as_bytes())
}

/// Waits until `pid` is gone, at most `timeout`.
pub async fn wait_gone(pid: u32, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            bail!("process {pid} still runs after {timeout:?}");
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
    Ok(())
}

/// Finds the binary `name` (`sutra-node`, `sutra`): the path in `env`, else next to the
/// running executable, else in the directory above it (a test in `<profile>/deps/` finds
/// `<profile>/<name>`), else `name` on the `PATH`.
pub fn find_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{env}={} is not a file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("locating the running executable")?;
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join(name));
        if let Some(profile) = dir.parent() {
            candidates.push(profile.join(name));
        }
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    on_path.ok_or_else(|| {
        anyhow::anyhow!(
            "{name} binary not found (looked at {candidates:?} and the PATH); build it with \
             `cargo build --bins` in the same target directory and profile, or set {env}"
        )
    })
}

/// The `sutra-node` binary ([`find_binary`]).
pub fn node_binary() -> Result<PathBuf> {
    find_binary("sutra-node", NODE_BIN_ENV)
}

/// The `sutra` CLI binary ([`find_binary`]).
pub fn cli_binary() -> Result<PathBuf> {
    find_binary("sutra", CLI_BIN_ENV)
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
    /// Arguments after `args`, set by [`restart_with_args`](Self::restart_with_args).
    extra: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    log_path: PathBuf,
    child: Option<Child>,
    last_exit: Option<ExitStatus>,
    starts: u32,
}

impl NodeProcess {
    /// Starts `bin args...` with its output appended to `log_path`.
    pub fn spawn(id: u64, bin: &Path, args: Vec<OsString>, log_path: PathBuf) -> Result<Self> {
        Self::spawn_with(id, bin, args, Vec::new(), Vec::new(), log_path)
    }

    /// [`spawn`](Self::spawn) with `extra` arguments after `args` (which
    /// [`restart_with_args`](Self::restart_with_args) replaces) and these environment
    /// variables (kept on restarts).
    pub fn spawn_with(
        id: u64,
        bin: &Path,
        args: Vec<OsString>,
        extra: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        log_path: PathBuf,
    ) -> Result<Self> {
        let mut p = Self {
            id,
            bin: bin.to_owned(),
            args,
            extra,
            env,
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
                .chain(&self.extra)
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        )?;
        let err = log.try_clone()?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .args(&self.extra)
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
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        die_with_parent(&mut cmd, Signal::Kill);
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

    /// Starts the process again with `extra` after its arguments, for this start and
    /// every later one (replacing what an earlier call added).
    pub fn restart_with_args(&mut self, extra: &[&str]) -> Result<()> {
        self.extra = extra.iter().map(OsString::from).collect();
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

    fn signal(&mut self, sig: Signal) -> Result<()> {
        if self.poll_exit().is_some() || self.child.is_none() {
            bail!(
                "node {} is not running (last exit: {:?})",
                self.id,
                self.last_exit
            );
        }
        // The PID is our own child's, which has not been reaped (poll_exit above), so it
        // cannot have been reused.
        let pid = self.pid().expect("checked above that a child is present");
        signal(pid, sig).with_context(|| format!("{sig:?} to process {pid} (node {})", self.id))
    }

    /// SIGKILL, then waits until the process is gone. No graceful anything.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::Kill)?;
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
        self.signal(Signal::Stop)?;
        tracing::info!(node = self.id, "node paused (SIGSTOP)");
        Ok(())
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&mut self) -> Result<()> {
        self.signal(Signal::Cont)?;
        tracing::info!(node = self.id, "node resumed (SIGCONT)");
        Ok(())
    }

    /// SIGTERM (graceful stop), then waits up to `timeout` for the exit status. If the
    /// process is still there after that it is killed and an error returned.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.signal(Signal::Term)?;
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
        self.signal(Signal::Term)
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

/// Makes the child get `sig` when this process dies, even by SIGKILL (a test runner's
/// timeout, a killed runner), so no node outlives what started it.
pub fn die_with_parent(cmd: &mut Command, sig: Signal) {
    use std::os::unix::process::CommandExt;
    let raw = sig.raw();
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // prctl(2), which is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, raw) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_child_not_yet_reaped_is_not_alive() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(alive(pid));
        signal(pid, Signal::Kill).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !zombie(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(zombie(pid), "the unreaped child is a zombie");
        assert!(!alive(pid));
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn only_sutra_node_processes_count_as_nodes() {
        // This test binary is alive but not a sutra-node.
        assert!(alive(std::process::id()));
        assert!(!is_node_process(std::process::id(), 1));
    }

    #[test]
    fn a_binary_named_in_the_environment_must_exist() {
        // SAFETY: no other thread of this test reads this variable.
        unsafe { std::env::set_var("SUTRA_TEST_MISSING_BIN", "/nonexistent/sutra-node") };
        let e = find_binary("sutra-node", "SUTRA_TEST_MISSING_BIN").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/sutra-node"), "{e}");
        let e = find_binary("no-such-sutra-binary", "SUTRA_TEST_UNSET_BIN").unwrap_err();
        assert!(e.to_string().contains("SUTRA_TEST_UNSET_BIN"), "{e}");
    }
}
