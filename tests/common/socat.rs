//! Linked pty pairs from socat, for the serial tests: `socat pty,raw,echo=0,link=A
//! pty,raw,echo=0,link=B` in a temporary directory, killed and removed when dropped.
//!
//! Without socat the tests skip, saying so, unless `FRAMELINK_REQUIRE_SERIAL` is set (CI sets
//! it and installs socat): then they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Guard, WAIT};

/// Whether the serial tests can run: socat is there. Panics when it is not but
/// `FRAMELINK_REQUIRE_SERIAL` is set; prints why the test is skipped otherwise.
pub(crate) fn available(test: &str) -> bool {
    let found = Command::new("socat").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(
            std::env::var_os("FRAMELINK_REQUIRE_SERIAL").is_none(),
            "socat is missing and FRAMELINK_REQUIRE_SERIAL is set: apt-get install socat"
        );
        eprintln!("skipping {test}: socat is not installed (apt-get install socat)");
    }
    found
}

/// A temporary directory, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("framelink-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two ptys joined by socat: bytes written to one come out of the other.
pub(crate) struct PtyPair {
    socat: Guard,
    /// One end (a symlink to `/dev/pts/N`).
    pub(crate) a: PathBuf,
    /// The other end.
    pub(crate) b: PathBuf,
}

impl PtyPair {
    /// A pair with its links at `dir/NAME-a` and `dir/NAME-b`, once both exist.
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        Self::with_options(dir, name, "")
    }

    /// A pair whose end `a` also gets socat's `options` (`,perm=0660,group=dialout`).
    pub(crate) fn with_options(dir: &Path, name: &str, options: &str) -> Self {
        let (a, b) = (dir.join(format!("{name}-a")), dir.join(format!("{name}-b")));
        let end = |path: &Path| format!("pty,raw,echo=0,link={}", path.display());
        let socat = Guard(
            Command::new("socat")
                .args(["-d", "-d", &format!("{}{options}", end(&a)), &end(&b)])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start socat"),
        );
        let mut pair = Self { socat, a, b };
        let until = Instant::now() + WAIT;
        while !(pair.a.exists() && pair.b.exists()) {
            assert!(pair.socat.0.try_wait().unwrap().is_none(), "socat exited");
            assert!(Instant::now() < until, "socat made no ptys within {WAIT:?}");
            thread::sleep(Duration::from_millis(10));
        }
        pair
    }

    /// `serial://` and the path of end `a`.
    pub(crate) fn addr_a(&self) -> String {
        format!("serial://{}", self.a.display())
    }

    /// `serial://` and the path of end `b`.
    pub(crate) fn addr_b(&self) -> String {
        format!("serial://{}", self.b.display())
    }

    /// Ends socat, as an unplugged cable would: both ptys hang up.
    pub(crate) fn unplug(&mut self) {
        let _ = self.socat.0.kill();
        let _ = self.socat.0.wait();
    }
}
