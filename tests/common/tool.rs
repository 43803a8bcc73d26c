//! The `framelink` binary as a child process: start it, collect what it prints, wait for its
//! end (always bounded), interrupt it as Ctrl-C does.

use std::ffi::OsStr;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Guard, Lines, WAIT};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_framelink");

/// A running `framelink` child, killed when dropped.
pub(crate) struct Running {
    pub(crate) child: Guard,
    pub(crate) stdout: Arc<Lines>,
    pub(crate) stderr: Arc<Lines>,
}

impl Running {
    pub(crate) fn start(args: &[impl AsRef<OsStr>]) -> Self {
        Self::spawn(Command::new(BIN).args(args))
    }

    /// Starts `framelink args...` with its standard input a pipe, returned to write to (drop
    /// it for the end of input).
    pub(crate) fn with_stdin(args: &[impl AsRef<OsStr>]) -> (Self, ChildStdin) {
        let mut command = Command::new(BIN);
        command.args(args).stdin(Stdio::piped());
        let mut running = Self::spawn_with(&mut command);
        let stdin = running.child.0.stdin.take().expect("a stdin pipe");
        (running, stdin)
    }

    /// Runs `command`, one that execs framelink (`ip netns exec NS framelink ...`,
    /// `prlimit ... framelink ...`), as [`start`](Self::start) runs framelink itself.
    pub(crate) fn spawn(command: &mut Command) -> Self {
        Self::spawn_with(command.stdin(Stdio::null()))
    }

    /// [`spawn`](Self::spawn) with standard input as `command` sets it.
    fn spawn_with(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        Self { child: Guard(child), stdout, stderr }
    }

    /// Waits (at most `limit`) for the child to exit; its exit code (`None`: killed by a
    /// signal).
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<i32> {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < until,
                "framelink did not exit within {limit:?}: {:?}",
                self.stderr.snapshot()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most `limit`) for the child to exit; what it printed.
    pub(crate) fn finish(mut self, limit: Duration) -> Ran {
        let code = self.wait(limit);
        Ran { code, stdout: self.stdout.all().join("\n"), stderr: self.stderr.all() }
    }

    /// The addresses `framelink serve` (or `relay`) says it listens on, once it has said
    /// `count` of them (at most [`WAIT`]).
    pub(crate) fn listening(&self, count: usize) -> Vec<String> {
        let lines = self.stderr.wait_for("the listeners", |lines, ended| {
            ended || lines.iter().filter(|l| l.starts_with("listening on ")).count() >= count
        });
        let addrs: Vec<String> =
            lines.iter().filter_map(|l| l.strip_prefix("listening on ")).map(str::to_owned).collect();
        assert!(addrs.len() >= count, "{count} listeners wanted: {lines:?}");
        addrs
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub(crate) fn interrupt(&self) {
        let status = Command::new("kill").args(["-INT", &self.child.0.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -INT failed");
    }
}

/// The one of `addrs` with `scheme` (`tcp`, `udp`, `tcp+cobs`, `serial`).
pub(crate) fn listener(addrs: &[String], scheme: &str) -> String {
    let prefix = format!("{scheme}://");
    let addr = addrs.iter().find(|a| a.starts_with(&prefix));
    addr.unwrap_or_else(|| panic!("no {scheme} listener in {addrs:?}")).clone()
}

/// What a finished run printed.
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: Vec<String>,
}

impl Ran {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// Asserts exit status 0.
    pub(crate) fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "stdout: {}\nstderr: {:?}", self.stdout, self.stderr);
        self
    }

    /// Asserts exit status 1 with one `framelink: ...` line on stderr holding `words`.
    pub(crate) fn failed(self, words: &str) -> Self {
        assert_eq!(self.code, Some(1), "stdout: {}\nstderr: {:?}", self.stdout, self.stderr);
        assert_eq!(self.stderr.len(), 1, "one line on stderr: {:?}", self.stderr);
        assert!(self.stderr[0].starts_with("framelink: "), "{:?}", self.stderr);
        assert!(self.stderr[0].contains(words), "{:?} should say {words:?}", self.stderr);
        self
    }
}

/// Runs `framelink args...` with `input` on its standard input, to its end (at most [`WAIT`]).
pub(crate) fn run_with_stdin(args: &[impl AsRef<OsStr>], input: &[u8]) -> Ran {
    let (running, mut stdin) = Running::with_stdin(args);
    let input = input.to_vec();
    thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, &input);
    });
    running.finish(WAIT)
}

/// Runs `framelink args...` to its end (at most [`WAIT`]).
pub(crate) fn run(args: &[impl AsRef<OsStr>]) -> Ran {
    Running::start(args).finish(WAIT)
}
