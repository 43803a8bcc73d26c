//! `bench-e2e quic-server` and `quic-send` on loopback: a counted stream arrives whole, and a
//! client holding another server's certificate is refused.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bench-e2e");

/// A running quic-server, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    cert: PathBuf,
}

impl Server {
    /// Starts a server on a free loopback port and waits (at most 20 s) for its address.
    fn start(name: &str) -> Self {
        let cert = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("quic-test-{name}.der"));
        let _ = std::fs::remove_file(&cert);
        let mut child = Command::new(BIN)
            .args(["quic-server", "--listen", "127.0.0.1:0", "--cert"])
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start quic-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(20));
        // Held before the check, so that a server that never says its address is killed too.
        let mut server = Self { child, addr: String::new(), cert };
        server.addr = addr.expect("quic-server said where it listens");
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.cert);
    }
}

fn send(addr: &str, cert: &PathBuf, bytes: u64) -> Output {
    // quic-send bounds itself: 15 s for the handshake, then for the answer.
    Command::new(BIN)
        .args(["quic-send", addr, "--size", "1000", "--mtu", "1216", "-n", &bytes.to_string(), "--cert"])
        .arg(cert)
        .output()
        .expect("run quic-send")
}

#[test]
fn a_counted_stream_arrives_whole_at_the_server() {
    let server = Server::start("whole");
    let output = send(&server.addr, &server.cert, 1_234_567);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report["bytes"], 1_234_567, "{report}");
    assert_eq!(report["bytes_written"], 1_234_567, "{report}");
    assert_eq!(report["quic"]["mtu"], 1216, "{report}");
    assert!(report["bits_per_second"].as_u64().is_some_and(|b| b > 0), "{report}");
}

#[test]
fn a_client_trusting_another_certificate_is_refused() {
    let server = Server::start("server");
    let other = Server::start("other");
    let output = send(&server.addr, &other.cert, 1000);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
}
