//! Helpers the integration tests share: finding the example binaries, collecting a child's
//! output, and the example server on ephemeral loopback ports.
#![allow(dead_code, reason = "each test binary uses a different part")]

pub(crate) mod frames;
pub(crate) mod noise;
pub(crate) mod socat;
pub(crate) mod tool;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The bound on every wait.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// The path of an example binary.
pub(crate) fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let path = profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the examples first (`cargo test --workspace` does, or `cargo build --examples`)",
        path.display()
    );
    path
}

/// The lines a child writes on one of its outputs, collected by a thread.
#[derive(Default)]
pub(crate) struct Lines {
    /// The lines so far, and whether the stream has ended.
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    pub(crate) fn collect(stream: impl Read + Send + 'static) -> Arc<Self> {
        let lines = Arc::new(Self::default());
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(1..)) {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                sink.lines.lock().unwrap().0.push(String::from_utf8_lossy(&line).into_owned());
                sink.changed.notify_all();
                line.clear();
            }
            sink.lines.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        lines
    }

    /// Waits (at most [`WAIT`]) until `done` holds for the lines so far; returns them.
    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&[String], bool) -> bool) -> Vec<String> {
        let until = Instant::now() + WAIT;
        let mut lines = self.lines.lock().unwrap();
        while !done(&lines.0, lines.1) {
            let left = until.checked_duration_since(Instant::now()).unwrap_or_else(|| {
                let tail: Vec<_> = lines.0.iter().rev().take(5).map(|l| shorten(l)).collect();
                panic!("timed out waiting for {what}; last lines: {tail:?}")
            });
            lines = self.changed.wait_timeout(lines, left).unwrap().0;
        }
        lines.0.clone()
    }

    /// Every line, once the stream has ended.
    pub(crate) fn all(&self) -> Vec<String> {
        self.wait_for("the end of the output", |_, ended| ended)
    }

    /// Lines so far.
    pub(crate) fn count(&self) -> usize {
        self.lines.lock().unwrap().0.len()
    }

    /// The lines so far.
    pub(crate) fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().0.clone()
    }
}

pub(crate) fn shorten(line: &str) -> String {
    if line.len() > 80 {
        format!("{}... ({} bytes)", line.chars().take(60).collect::<String>(), line.len())
    } else {
        line.to_owned()
    }
}

/// A child process, killed when dropped.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example server on ephemeral loopback ports.
pub(crate) struct ServerProc {
    pub(crate) child: Guard,
    pub(crate) stdout: Arc<Lines>,
    pub(crate) stderr: Arc<Lines>,
    pub(crate) addrs: Vec<String>,
}

impl ServerProc {
    pub(crate) fn start(listen: &[&str]) -> Self {
        let mut child = Guard(
            Command::new(example("server"))
                .args(listen)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the example server"),
        );
        let stdout = Lines::collect(child.0.stdout.take().unwrap());
        let stderr = Lines::collect(child.0.stderr.take().unwrap());
        let lines = stderr.wait_for("the server to listen", |lines, _| {
            lines.iter().filter(|l| l.starts_with("listening on ")).count() == listen.len()
        });
        let addrs = lines.iter().filter_map(|l| l.strip_prefix("listening on ")).map(str::to_owned).collect();
        Self { child, stdout, stderr, addrs }
    }

    /// The bound address with this scheme.
    pub(crate) fn addr(&self, scheme: &str) -> String {
        let prefix = format!("{scheme}://");
        self.addrs.iter().find(|a| a.starts_with(&prefix)).expect("a listener of that scheme").clone()
    }

    /// The host:port of the bound address with this scheme.
    pub(crate) fn socket_addr(&self, scheme: &str) -> String {
        self.addr(scheme).split_once("://").unwrap().1.to_owned()
    }

    /// Waits until `count` more `Received:` lines than `before` have been printed; returns the
    /// messages of the new ones.
    pub(crate) fn received_after(&self, before: usize, count: usize) -> Vec<String> {
        let lines = self.stdout.wait_for(&format!("{count} messages"), |l, _| l.len() >= before + count);
        lines[before..]
            .iter()
            .map(|l| {
                l.strip_prefix("Received: ").unwrap_or_else(|| panic!("unexpected line {l:?}")).to_owned()
            })
            .collect()
    }

    pub(crate) fn printed(&self) -> usize {
        self.stdout.snapshot().len()
    }

    pub(crate) fn assert_running(&mut self) {
        assert!(
            self.child.0.try_wait().unwrap().is_none(),
            "the server exited: {:?}",
            self.stderr.snapshot()
        );
    }
}

/// What a run of an example client ended with.
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stderr: String,
}

/// Runs the example `name` with `args` (and `stdin` piped in, if any) to its end, at most
/// [`WAIT`].
pub(crate) fn run_example<A: AsRef<OsStr>>(name: &str, args: &[A], stdin: Option<Vec<u8>>) -> Run {
    let mut child = Guard(
        Command::new(example(name))
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start the {name} example: {e}")),
    );
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.0.stdin.take()) {
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let stderr = Lines::collect(child.0.stderr.take().unwrap());
    let until = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "{name} did not finish: {:?}", stderr.snapshot());
        thread::sleep(Duration::from_millis(5));
    };
    Run { status, stderr: stderr.all().join("\n") }
}
