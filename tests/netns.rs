//! Remote testing for real: two network namespaces joined by a veth pair, `framelink serve` in
//! one and `framelink send`, `ping` and `bench` from the other, over TCP and UDP.
//!
//! The addresses (10.213.0.1/24 and 10.213.0.2/24) exist only inside the two namespaces the test
//! makes, under names unique to the run, so traffic goes only between them; the namespaces are
//! removed whatever happens (a guard's `Drop`). It needs root and `ip` (iproute2): without
//! them the test says why and returns (a skip, not a failure). CI runs as root, so there it
//! runs for real. Every wait is bounded.

mod common;

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use common::WAIT;
use common::tool::{BIN, Running};
/// The server's address, in the first namespace.
const SERVER_IP: &str = "10.213.0.1";
/// The client's address, in the second.
const CLIENT_IP: &str = "10.213.0.2";

/// Runs `ip args...`; `Err` with what it printed when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let output =
        Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Two namespaces joined by a veth pair; removed on drop.
struct Namespaces {
    server: String,
    client: String,
}

impl Namespaces {
    /// Makes them, with an address and the link up at each end.
    fn create() -> Result<Self, String> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tag = format!("{}-{}", std::process::id(), nanos % 100_000);
        let namespaces = Self { server: format!("fl-{tag}-srv"), client: format!("fl-{tag}-cli") };
        ip(&["netns", "add", &namespaces.server])?;
        // From here on, `Drop` removes whatever was made.
        ip(&["netns", "add", &namespaces.client])?;
        // Interface names hold at most 15 bytes; they live only inside the namespaces.
        let (veth_server, veth_client) =
            (format!("fls{}", nanos % 100_000), format!("flc{}", nanos % 100_000));
        ip(&[
            "link",
            "add",
            &veth_server,
            "netns",
            &namespaces.server,
            "type",
            "veth",
            "peer",
            "name",
            &veth_client,
            "netns",
            &namespaces.client,
        ])?;
        for (ns, dev, addr) in
            [(&namespaces.server, &veth_server, SERVER_IP), (&namespaces.client, &veth_client, CLIENT_IP)]
        {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(namespaces)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Removing a namespace removes its end of the veth pair, and so the pair.
        for ns in [&self.server, &self.client] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// `framelink args...` run inside namespace `ns` (`ip netns exec` execs it: the child is
/// framelink itself), killed when dropped.
fn start_in(ns: &str, args: &[&str]) -> Running {
    Running::spawn(Command::new("ip").args(["netns", "exec", ns, BIN]).args(args))
}

/// Runs `framelink args...` in `ns` to its end (at most [`WAIT`]); asserts success and returns
/// stdout.
fn run_in(ns: &str, args: &[&str]) -> String {
    start_in(ns, args).finish(WAIT).ok().stdout
}

/// Runs `framelink args... --json` in `ns` and parses what it printed.
fn json(ns: &str, args: &[&str]) -> Value {
    let stdout = run_in(ns, &[args, &["--json"]].concat());
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {stdout}", args.join(" ")))
}

#[test]
fn send_ping_and_bench_between_two_namespaces() {
    // Root: the effective uid, as /proc tells it.
    let root = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0"))
    });
    if root != Some(true) {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let namespaces = match Namespaces::create() {
        Ok(namespaces) => namespaces,
        Err(why) => {
            eprintln!("skipped: cannot make network namespaces: {why}");
            return;
        }
    };
    let (tcp, udp) = (format!("tcp://{SERVER_IP}:7878"), format!("udp://{SERVER_IP}:7878"));
    let server = start_in(&namespaces.server, &["serve", "--listen", &tcp, "--listen", &udp]);
    server.listening(2);
    let client = namespaces.client.as_str();

    let sent = run_in(client, &["send", &tcp, "Hello from the other namespace"]);
    assert_eq!(sent, format!("sent 1 message (30 bytes) to {tcp}, 1 acknowledged"));
    server.stdout.wait_for("the message", |lines, _| {
        lines.iter().any(|l| l == "Received: Hello from the other namespace")
    });

    for addr in [&tcp, &udp] {
        let ping = json(client, &["ping", addr, "-c", "10", "-i", "0"]);
        assert_eq!((ping["transmitted"].as_u64(), ping["received"].as_u64()), (Some(10), Some(10)), "{ping}");
        assert!(ping["rtt_us"]["p50"].as_f64().is_some_and(|p50| p50 > 0.0), "{ping}");
        for reverse in [false, true] {
            let mut args = vec!["bench", addr.as_str(), "-t", "1", "-i", "0.5"];
            if reverse {
                args.push("--reverse");
            }
            let bench = json(client, &args);
            assert!(bench["bytes"].as_u64().is_some_and(|b| b > 0), "{bench}");
            assert_eq!(bench["direction"], if reverse { "reverse" } else { "forward" }, "{bench}");
        }
    }
    // Who answered: the server in the other namespace, through its veth.
    let info = json(client, &["info", &tcp]);
    assert_eq!(info["name"], "framelink serve", "{info}");
    drop(server);
    drop(namespaces);
}
