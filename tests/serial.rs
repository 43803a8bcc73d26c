//! The `framelink` binary over serial ports: ptys joined by socat (`tests/common/socat.rs`).
//! `framelink serve --listen serial://A` on one end; send, ping, bench and info from the other,
//! in text and in JSON; one-line errors for a missing device, a busy port, something that is
//! not a serial port, a bad option; a cable pulled mid-run, and a port that comes back (served
//! again); `framelink ports`.
//!
//! Skipped, saying so, without socat, unless `FRAMELINK_REQUIRE_SERIAL` is set (CI). Every
//! wait is bounded, and socat and every child are killed on every path (guards' `Drop`).

mod common;

use std::process::{Command, Stdio};

use serde_json::Value;

use common::WAIT;
use common::socat::{self, PtyPair, TempDir};
use common::tool::{BIN, Running, listener, run};

/// `framelink serve` on `addr`, once it listens.
fn serve(addr: &str) -> Running {
    let running = Running::start(&["serve", "--listen", addr]);
    listener(&running.listening(1), "serial");
    running
}

fn u64_at(json: &Value, key: &str) -> u64 {
    json[key].as_u64().unwrap_or_else(|| panic!("`{key}` is not a count in {json}"))
}

#[test]
fn every_command_works_over_a_pty_pair_in_text_and_json() {
    if !socat::available("every_command_works_over_a_pty_pair_in_text_and_json") {
        return;
    }
    let dir = TempDir::new("serial-cli");
    let pair = PtyPair::new(&dir.0, "line");
    let mut server = serve(&format!("{}?baud=115200&parity=none&flow=none", pair.addr_a()));
    let to = pair.addr_b();

    let sent = run(&["send", &to, "Hello, Server!", "twice"]).ok();
    assert!(sent.stdout.contains("sent 2 messages (19 bytes)"), "{}", sent.stdout);
    assert!(sent.stdout.contains("2 acknowledged"), "{}", sent.stdout);
    server.stdout.wait_for("both messages", |lines, _| lines.len() >= 2);
    assert_eq!(server.stdout.snapshot()[..2], ["Received: Hello, Server!", "Received: twice"]);
    let sent = run(&["send", "--json", &to, "third"]).ok().json();
    assert_eq!((u64_at(&sent, "sent"), u64_at(&sent, "acknowledged")), (1, 1), "{sent}");

    let ping = run(&["ping", &to, "-c", "5", "-i", "0"]).ok();
    assert!(ping.stdout.contains("5 transmitted, 5 received, 0% loss"), "{}", ping.stdout);
    let ping = run(&["ping", "--json", &to, "-c", "20", "-i", "0", "--size", "200"]).ok().json();
    assert_eq!((u64_at(&ping, "transmitted"), u64_at(&ping, "received")), (20, 20), "{ping}");

    let info = run(&["info", &to]).ok();
    assert!(info.stdout.starts_with("framelink serve "), "{}", info.stdout);
    assert!(info.stdout.contains("capabilities: retransmit"), "{}", info.stdout);
    let info = run(&["info", "--json", &to]).ok().json();
    assert_eq!(info["name"], "framelink serve", "{info}");
    assert_eq!(u64_at(&info, "max_payload"), 256, "the serial default: {info}");

    for reverse in [false, true] {
        let mut args = vec!["bench", &to, "-t", "0.5", "-i", "0.25"];
        if reverse {
            args.push("--reverse");
        }
        let text = run(&args).ok();
        let counted = if reverse { "received and checked" } else { "acknowledged" };
        assert!(text.stdout.contains(counted), "{}", text.stdout);
        args.push("--json");
        let json = run(&args).ok().json();
        assert!(u64_at(&json, "bytes") > 0, "{json}");
        assert_eq!(u64_at(&json, "message_size"), 256, "the serial default: {json}");
        assert_eq!(json["direction"], if reverse { "reverse" } else { "forward" });
    }
    let bytes = run(&["bench", "--json", &to, "--bytes", "100K"]).ok().json();
    assert_eq!(u64_at(&bytes, "bytes"), 100 * 1024, "every byte acknowledged: {bytes}");

    server.interrupt();
    assert_eq!(server.wait(WAIT), Some(0));
    let log = server.stderr.all();
    let summary = log.iter().find(|l| l.starts_with("served ")).expect("a summary");
    // send x2, ping x2, info x2, bench x5: one session each.
    assert!(summary.starts_with("served 11 clients"), "{log:?}");
}

#[test]
fn errors_are_one_line_and_the_exit_status_is_1() {
    if !socat::available("errors_are_one_line_and_the_exit_status_is_1") {
        return;
    }
    let dir = TempDir::new("serial-errors");
    let missing = format!("serial://{}", dir.path("ttyACM9").display());
    run(&["ping", &missing]).failed("no such serial port");
    run(&["serve", "--listen", &missing]).failed("no such serial port");
    let file = dir.path("plain-file");
    std::fs::write(&file, b"not a tty").unwrap();
    run(&["info", &format!("serial://{}", file.display())]).failed("not a serial port");
    run(&["info", "serial:///dev/null"]).failed("not a serial port");
    run(&["ping", "serial:///dev/ttyACM0?baud=fast"]).failed("bad baud=`fast`");
    run(&["ping", "serial:///dev/ttyACM0?speed=9600"]).failed("unknown serial option `speed`");
    run(&["ping", "serial://"]).failed("names no serial port");

    let pair = PtyPair::new(&dir.0, "busy");
    let server = serve(&pair.addr_a());
    run(&["ping", "-c", "1", &pair.addr_a()]).failed("port busy");
    drop(server);
}

#[test]
fn permission_denied_names_the_group_to_join() {
    let test = "permission_denied_names_the_group_to_join";
    if !socat::available(test) {
        return;
    }
    // Run as nobody (65534, no groups): possible as root, with setpriv (util-linux).
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", BIN];
    let can = Command::new("setpriv")
        .args(nobody)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !can {
        eprintln!("skipping {test}: cannot run framelink as another user (needs root and setpriv)");
        return;
    }
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let Some(group) =
        ["dialout", "uucp"].into_iter().find(|g| groups.lines().any(|l| l.starts_with(&format!("{g}:"))))
    else {
        eprintln!("skipping {test}: no dialout or uucp group here");
        return;
    };
    let dir = TempDir::new("serial-denied");
    let pair = PtyPair::with_options(&dir.0, "denied", &format!(",perm=0660,group={group}"));
    let output = Command::new("setpriv")
        .args(nobody)
        .args(["ping", "-c", "1", &pair.addr_a()])
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("permission denied: the port belongs to group `{group}`")), "{stderr}");
}

#[test]
fn a_cable_pulled_mid_run_ends_it_with_the_summary_so_far() {
    if !socat::available("a_cable_pulled_mid_run_ends_it_with_the_summary_so_far") {
        return;
    }
    let dir = TempDir::new("serial-unplug");
    let mut pair = PtyPair::new(&dir.0, "cable");
    let mut server = serve(&pair.addr_a());
    let mut bench = Running::start(&["bench", &pair.addr_b(), "-t", "60", "-i", "0.1"]);
    bench.stdout.wait_for("the first interval", |lines, ended| ended || lines.len() >= 3);
    pair.unplug();

    assert_eq!(bench.wait(WAIT), Some(1), "{:?}", bench.stderr.snapshot());
    let report = bench.stdout.all();
    let summary = report.last().expect("a summary");
    assert!(summary.contains("acknowledged"), "the summary so far: {report:?}");
    let stderr = bench.stderr.all();
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(stderr[0].contains("serial port closed or unplugged"), "{stderr:?}");

    // serve waits for the port to come back, saying so.
    server.stderr.wait_for("the wait for the port", |lines, ended| {
        ended || lines.iter().any(|l| l.ends_with("waiting for it to come back"))
    });
    assert!(
        server.child.0.try_wait().unwrap().is_none(),
        "serve keeps running: {:?}",
        server.stderr.snapshot()
    );
    server.interrupt();
    assert_eq!(server.wait(WAIT), Some(0), "{:?}", server.stderr.snapshot());
}

#[test]
fn serve_serves_a_serial_port_again_once_it_is_back() {
    if !socat::available("serve_serves_a_serial_port_again_once_it_is_back") {
        return;
    }
    let dir = TempDir::new("serial-replug");
    let mut pair = PtyPair::new(&dir.0, "board");
    let mut server = serve(&pair.addr_a());
    run(&["send", &pair.addr_b(), "before"]).ok();
    server.stdout.wait_for("the first message", |lines, _| lines.iter().any(|l| l == "Received: before"));

    // The board resets: its port vanishes, and a new one appears at the same path.
    pair.unplug();
    server.stderr.wait_for("the wait for the port", |lines, ended| {
        ended || lines.iter().any(|l| l.ends_with("waiting for it to come back"))
    });
    let _ = std::fs::remove_file(&pair.a);
    let _ = std::fs::remove_file(&pair.b);
    let again = PtyPair::new(&dir.0, "board");
    let lines = server.stderr.wait_for("the port back", |lines, ended| {
        ended || lines.iter().any(|l| l.ends_with("back; serving it again"))
    });
    assert!(lines.iter().any(|l| l.ends_with("back; serving it again")), "{lines:?}");
    run(&["send", &again.addr_b(), "after"]).ok();
    server.stdout.wait_for("the message after", |lines, _| lines.iter().any(|l| l == "Received: after"));
    server.interrupt();
    assert_eq!(server.wait(WAIT), Some(0), "{:?}", server.stderr.snapshot());
}

#[test]
fn ports_are_listed_in_text_and_json() {
    let text = run(&["ports"]).ok();
    assert!(!text.stdout.is_empty());
    let json = run(&["ports", "--json"]).ok().json();
    let ports = json["ports"].as_array().expect("a list of ports");
    for port in ports {
        assert!(port["name"].as_str().is_some_and(|n| !n.is_empty()), "{port}");
        let kind = port["kind"].as_str().unwrap_or_default();
        assert!(["usb", "pci", "bluetooth", "unknown"].contains(&kind), "{port}");
        assert!(text.stdout.contains(port["name"].as_str().unwrap_or_default()), "{}", text.stdout);
    }
}
