//! The `framelink` binary against a real `framelink serve` child on ephemeral loopback ports,
//! over TCP, UDP and TCP+COBS: every command in text and in JSON, bad arguments, a refused
//! connection, a server that dies mid-bench, Ctrl-C, a lossy relay, and `demo`.
//!
//! Each test starts its own server (`--listen tcp://127.0.0.1:0 --listen udp://127.0.0.1:0
//! --listen tcp+cobs://127.0.0.1:0`, the ports read from its stderr). Every wait is bounded,
//! and every child is killed on every path (a guard's `Drop`).

mod common;

use std::ffi::OsStr;
use std::net::{TcpListener, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::tool::{Running, listener, run, run_with_stdin};
use common::{Lines, WAIT};

/// A `framelink serve` child on ephemeral loopback ports.
struct Serve {
    running: Running,
    tcp: String,
    udp: String,
    cobs: String,
}

impl Serve {
    fn start() -> Self {
        let running = Running::start(&[
            "serve",
            "--listen",
            "tcp://127.0.0.1:0",
            "--listen",
            "udp://127.0.0.1:0",
            "--listen",
            "tcp+cobs://127.0.0.1:0",
        ]);
        let addrs = running.listening(3);
        let addr = |scheme: &str| listener(&addrs, scheme);
        let (tcp, udp, cobs) = (addr("tcp"), addr("udp"), addr("tcp+cobs"));
        Self { running, tcp, udp, cobs }
    }

    fn addrs(&self) -> [&str; 3] {
        [&self.tcp, &self.udp, &self.cobs]
    }

    /// Waits until the server has printed `line` `times` times.
    fn printed(&self, line: &str, times: usize) {
        self.running.stdout.wait_for(line, |lines, _| lines.iter().filter(|l| *l == line).count() >= times);
    }
}

/// How many of the lines so far are `line`.
fn count(lines: &Lines, line: &str) -> usize {
    lines.snapshot().iter().filter(|l| *l == line).count()
}

fn u64_at(json: &Value, key: &str) -> u64 {
    json[key].as_u64().unwrap_or_else(|| panic!("`{key}` is not a count in {json}"))
}

fn f64_at(json: &Value, key: &str) -> f64 {
    json[key].as_f64().unwrap_or_else(|| panic!("`{key}` is not a number in {json}"))
}

/// A loopback port nobody listens on, for TCP and for UDP.
fn free_ports() -> (u16, u16) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    (tcp, udp)
}

#[test]
fn send_prints_each_message_on_the_server_over_every_transport() {
    let serve = Serve::start();
    for (round, addr) in serve.addrs().into_iter().enumerate() {
        let text = run(&["send", addr, "Hello, Server!", "second"]).ok();
        assert_eq!(text.stdout, format!("sent 2 messages (20 bytes) to {addr}, 2 acknowledged"));
        let json = run(&["send", addr, "Hello, Server!", "", "third", "--json"]).ok().json();
        assert_eq!(
            (u64_at(&json, "sent"), u64_at(&json, "acknowledged"), u64_at(&json, "bytes")),
            (3, 3, 19)
        );
        assert_eq!(json["addr"], addr);
        serve.printed("Received: Hello, Server!", 2 * (round + 1));
        serve.printed("Received: third", round + 1);
    }
    assert_eq!(count(&serve.running.stdout, "Received: second"), 3);
    assert_eq!(count(&serve.running.stdout, "Received: "), 3, "the empty messages, one line each");
}

#[test]
fn send_takes_standard_input_and_files_up_to_the_servers_limit() {
    let running = Running::start(&["serve", "--listen", "tcp://127.0.0.1:0", "--max-message", "1M"]);
    let tcp = listener(&running.listening(1), "tcp");
    let serve = Serve { running, tcp: tcp.clone(), udp: String::new(), cobs: String::new() };
    let ran = run_with_stdin(&["send", &tcp, "first", "-"], b"from standard input").ok();
    assert_eq!(ran.stdout, format!("sent 2 messages (24 bytes) to {tcp}, 2 acknowledged"));
    serve.printed("Received: from standard input", 1);

    // Larger than this side's default limit (256 KiB), within the server's (1 MiB).
    let dir = std::env::temp_dir().join(format!("framelink-cli-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (big, huge) = (dir.join("big"), dir.join("huge"));
    std::fs::write(&big, vec![b'a'; 600_000]).unwrap();
    std::fs::write(&huge, vec![b'b'; (1 << 20) + 1]).unwrap();
    let json = run(&[
        OsStr::new("send"),
        OsStr::new(&tcp),
        OsStr::new("--file"),
        big.as_os_str(),
        OsStr::new("--json"),
    ])
    .ok()
    .json();
    assert_eq!(
        (u64_at(&json, "sent"), u64_at(&json, "acknowledged"), u64_at(&json, "bytes")),
        (1, 1, 600_000)
    );
    serve.running.stdout.wait_for("the file", |lines, _| lines.iter().any(|l| l.len() == 600_010));
    run(&[OsStr::new("send"), OsStr::new(&tcp), OsStr::new("-f"), huge.as_os_str()])
        .failed("a message of 1048577 bytes is larger than the peer accepts (1048576 bytes");
    run(&["send", &tcp, "--file", "/nonexistent/framelink-file"]).failed("/nonexistent/framelink-file: ");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn timeout_bounds_the_handshake_of_every_client_command() {
    // A peer that takes the connection and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", silent.local_addr().unwrap());
    let commands: [&[&str]; 4] =
        [&["send", &addr, "hi"], &["ping", &addr], &["bench", &addr], &["info", &addr]];
    for args in commands {
        let started = Instant::now();
        let mut args = args.to_vec();
        args.extend(["--timeout", "0.3"]);
        run(&args).failed(&format!("{addr}: "));
        // 0.3 s asked; generous slack for a loaded machine, well under the default 10 s.
        assert!(started.elapsed() < Duration::from_secs(8), "{args:?} took {:?}", started.elapsed());
    }
    let ran = run(&["ping", &addr, "--timeout", "0"]);
    assert_eq!(ran.code, Some(2), "{:?}", ran.stderr);
}

#[test]
fn ctrl_c_ends_the_handshake_at_once() {
    // A peer that takes the connection and never answers: the handshake would wait 10 s.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", silent.local_addr().unwrap());
    let commands: [&[&str]; 4] =
        [&["send", &addr, "hi"], &["ping", &addr], &["bench", &addr], &["info", &addr]];
    for args in commands {
        let mut running = Running::start(args);
        thread::sleep(Duration::from_millis(300));
        running.interrupt();
        let interrupted = Instant::now();
        let code = running.wait(WAIT);
        // 100 ms is the polling period; generous slack for a loaded machine.
        assert!(interrupted.elapsed() < Duration::from_secs(5), "{args:?}: {:?}", interrupted.elapsed());
        let stderr = running.stderr.all();
        assert_eq!(code, Some(1), "{args:?}: {stderr:?}");
        assert_eq!(stderr, [format!("framelink: {addr}: interrupted while connecting")], "{args:?}");
    }
}

#[test]
fn the_wrong_framing_is_named() {
    let serve = Serve::start();
    let (_, plain_cobs) = serve.cobs.split_once("://").unwrap();
    run(&["info", &format!("tcp://{plain_cobs}"), "--timeout", "0.5"])
        .failed("that looks like COBS frames: try tcp+cobs://");
    let (_, plain_tcp) = serve.tcp.split_once("://").unwrap();
    // A length-delimited server stays silent at COBS bytes: the hint is a question.
    run(&["ping", &format!("tcp+cobs://{plain_tcp}"), "--timeout", "0.5"])
        .failed("no answer from the peer (if it is a framelink server on plain TCP, try tcp://)");
}

#[cfg(unix)]
#[test]
fn bytes_that_are_not_utf8_are_printed_lossily() {
    use std::os::unix::ffi::OsStrExt;
    let serve = Serve::start();
    let mut send =
        Running::start(&[OsStr::new("send"), OsStr::new(&serve.tcp), OsStr::from_bytes(b"\xff\xfeok")]);
    assert_eq!(send.wait(WAIT), Some(0));
    serve.printed("Received: \u{FFFD}\u{FFFD}ok", 1);
}

#[test]
fn ping_over_every_transport_in_text_and_json() {
    let serve = Serve::start();
    for addr in serve.addrs() {
        let text = run(&["ping", addr, "-c", "5", "-i", "0"]).ok();
        let lines: Vec<&str> = text.stdout.lines().collect();
        assert_eq!(lines[0], format!("PING {addr}: 64-byte ECHO messages"));
        for (seq, line) in (1..=5).zip(&lines[1..6]) {
            assert!(line.starts_with(&format!("64 bytes from {addr}: seq={seq} time=")), "{line}");
            assert!(line.ends_with(" ms"), "{line}");
        }
        assert_eq!(lines[6], format!("--- {addr} ping statistics ---"));
        assert!(lines[7].starts_with("5 transmitted, 5 received, 0% loss, time "), "{}", lines[7]);
        assert!(lines[8].starts_with("rtt min/avg/max/mdev = "), "{}", lines[8]);
        assert!(lines[8].contains(" ms, p50 ") && lines[8].contains(" ms, p99 "), "{}", lines[8]);

        let json = run(&["ping", addr, "-c", "10", "-i", "0", "--size", "100", "--json"]).ok().json();
        assert_eq!((u64_at(&json, "transmitted"), u64_at(&json, "received")), (10, 10));
        assert_eq!((f64_at(&json, "loss_percent"), u64_at(&json, "size")), (0.0, 100));
        let rtt = &json["rtt_us"];
        let [min, avg, max, mdev, p50, p99] =
            ["min", "avg", "max", "mdev", "p50", "p99"].map(|k| f64_at(rtt, k));
        assert!(0.0 < min && min <= p50 && p50 <= p99 && p99 <= max && min <= avg && avg <= max, "{rtt}");
        assert!(mdev >= 0.0);
    }
    // With an interval, on a schedule.
    let started = Instant::now();
    let json = run(&["ping", &serve.udp, "-c", "3", "-i", "100", "--json"]).ok().json();
    assert_eq!(u64_at(&json, "received"), 3);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn info_over_every_transport_in_text_and_json() {
    let serve = Serve::start();
    for addr in serve.addrs() {
        let text = run(&["info", addr]).ok();
        let first = format!("framelink serve {} at {addr}", env!("CARGO_PKG_VERSION"));
        assert!(text.stdout.starts_with(&first), "{}", text.stdout);
        assert!(text.stdout.contains("this session, as the responder counts it:"), "{}", text.stdout);
        let json = run(&["info", addr, "--json"]).ok().json();
        assert_eq!(json["name"], "framelink serve");
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["capabilities"], serde_json::json!(["retransmit"]));
        assert!(u64_at(&json, "max_payload") > 0 && u64_at(&json, "window") > 0);
        assert!(u64_at(&json, "max_message") > 0 && u64_at(&json, "protocol_version") == 1);
        let stats = &json["stats"];
        for key in
            ["messages_received", "bytes_received", "packets_sent", "crc_errors", "retransmits", "echoes"]
        {
            assert!(stats[key].is_u64(), "stats.{key} in {json}");
        }
        // INFO then STATS: the responder has received both by the time it counts.
        assert_eq!(u64_at(stats, "messages_received"), 2, "{json}");
    }
}

/// Forward and reverse over one transport, in text and JSON, with intervals, `--bytes` and
/// `-P`.
fn bench_both_ways(addr: &str) {
    let text = run(&["bench", addr, "-t", "1", "-i", "0.5"]).ok();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("bench {addr}: forward (client to server), 1 link, ")),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("Interval"), "{lines:?}");
    assert!(lines[2].contains("0.00-0.50") && lines[2].ends_with("bits/sec"), "{lines:?}");
    let total = lines.last().unwrap();
    assert!(total.contains("0.00-1.0") && total.contains("acknowledged"), "{lines:?}");

    let json = run(&["bench", addr, "-t", "1", "-i", "0.25", "--reverse", "--json"]).ok().json();
    assert_eq!(json["direction"], "reverse");
    let bytes = u64_at(&json, "bytes");
    assert!(bytes > 0 && f64_at(&json, "seconds") >= 0.9 && f64_at(&json, "bits_per_second") > 0.0, "{json}");
    assert!(json["retransmits"].is_u64(), "{json}");
    let intervals = json["intervals"].as_array().unwrap();
    assert!(intervals.len() >= 4, "{json}");
    assert_eq!(intervals.iter().map(|i| u64_at(i, "bytes")).sum::<u64>(), bytes, "{json}");
    for interval in intervals {
        assert!(f64_at(interval, "end") > f64_at(interval, "start"), "{interval}");
        assert!(interval["bits_per_second"].is_f64(), "{interval}");
    }

    // Exactly the bytes asked for, over two links.
    let json = run(&["bench", addr, "--bytes", "2M", "-P", "2", "--json"]).ok().json();
    assert_eq!(
        (json["direction"].as_str(), u64_at(&json, "bytes"), u64_at(&json, "streams")),
        (Some("forward"), 2 << 20, 2)
    );
    let json = run(&["bench", addr, "--bytes", "1M", "-R", "--size", "1000", "--json"]).ok().json();
    assert_eq!((u64_at(&json, "bytes"), u64_at(&json, "message_size")), (1 << 20, 1000));

    let text = run(&["bench", addr, "--bytes", "300K", "-R", "-i", "0"]).ok();
    assert!(
        text.stdout.ends_with("received and checked, 0 retransmits")
            || text.stdout.contains("received and checked")
    );
}

#[test]
fn bench_over_tcp() {
    let serve = Serve::start();
    bench_both_ways(&serve.tcp);
}

#[test]
fn bench_over_udp() {
    let serve = Serve::start();
    bench_both_ways(&serve.udp);
    // Paced: about the rate asked for, never far above it.
    let json = run(&["bench", &serve.udp, "-t", "1", "--bitrate", "8M", "--json"]).ok().json();
    let rate = f64_at(&json, "bits_per_second");
    assert!((6e6..9e6).contains(&rate), "{json}");
}

#[test]
fn bench_over_tcp_cobs() {
    let serve = Serve::start();
    bench_both_ways(&serve.cobs);
}

#[test]
fn bad_arguments_are_usage_errors() {
    let cases: [&[&str]; 10] = [
        &[],
        &["frobnicate"],
        &["ping"],
        &["ping", "tcp://127.0.0.1:1", "-c", "x"],
        &["bench", "tcp://127.0.0.1:1", "--bitrate", "10Q"],
        &["bench", "tcp://127.0.0.1:1", "-t", "1", "--bytes", "1M"],
        &["send", "tcp://127.0.0.1:1"],
        &["serve", "--max-clients", "-1"],
        &["cat", "tcp://127.0.0.1:1", "--json"],
        &["send", "tcp://127.0.0.1:1", "hi", "--timeout", "0"],
    ];
    for args in cases {
        let ran = run(args);
        assert_eq!(ran.code, Some(2), "{args:?}: {:?}", ran.stderr);
        assert!(
            ran.stderr.iter().any(|l| l.starts_with("Usage: framelink") || l.starts_with("error: ")),
            "{args:?}: {:?}",
            ran.stderr
        );
        assert!(ran.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(
        run(&["--help"]).ok().stdout.lines().next(),
        Some(
            "Test and use framelink links: messages framed, checked, sequenced and acknowledged over TCP, UDP and serial lines"
        )
    );
}

#[test]
fn a_bad_address_is_one_clear_line() {
    run(&["ping", "nonsense"]).failed("bad address `nonsense`: address `nonsense` has no port");
    run(&["send", "http://x:1", "hi"]).failed("unknown scheme `http://`");
    run(&["bench", "udp://127.0.0.1:99999"]).failed("port `99999` is not a number from 0 to 65535");
    run(&["relay", "--listen", "tcp://127.0.0.1:0", "--to", "udp://127.0.0.1:9"]).failed("UDP only");
    run(&["relay", "--listen", "udp://127.0.0.1:0", "--to", "udp://127.0.0.1:9", "--loss", "2"])
        .failed("--loss must be a probability from 0 to 1");
    let json = run(&["info", "nonsense", "--json"]).failed("bad address").json();
    assert!(json["error"].as_str().is_some_and(|e| e.contains("bad address")), "{json}");
}

#[test]
fn a_refused_connection_is_one_clear_line() {
    let (tcp, udp) = free_ports();
    for addr in [
        format!("tcp://127.0.0.1:{tcp}"),
        format!("udp://127.0.0.1:{udp}"),
        format!("tcp+cobs://127.0.0.1:{tcp}"),
    ] {
        let started = Instant::now();
        run(&["ping", &addr, "-c", "1"]).failed(&format!("{addr}: connection refused"));
        run(&["send", &addr, "hi"]).failed("connection refused");
        run(&["bench", &addr, "-t", "1"]).failed("connection refused");
        let json = run(&["info", &addr, "--json"]).failed("connection refused").json();
        assert!(json["error"].as_str().is_some_and(|e| e.contains("connection refused")), "{json}");
        assert!(started.elapsed() < Duration::from_secs(10), "refusals are quick");
    }
}

#[test]
fn a_refused_handshake_is_one_clear_line() {
    // A server that takes no client refuses each one with ERROR busy.
    let mut full = Running::start(&[
        "serve",
        "--listen",
        "tcp://127.0.0.1:0",
        "--listen",
        "udp://127.0.0.1:0",
        "--max-clients",
        "0",
        "--json",
    ]);
    for line in &full.listening(2) {
        run(&["ping", line, "-c", "1"]).failed(&format!("{line}: the peer refused the session: server busy"));
    }
    full.interrupt();
    assert_eq!(full.wait(WAIT), Some(0));
    let json: Value = serde_json::from_str(&full.stdout.all().join("\n")).unwrap();
    assert_eq!(
        (u64_at(&json, "accepted"), u64_at(&json, "refused"), u64_at(&json, "messages")),
        (0, 2, 0),
        "{json}"
    );
}

/// Starts a long bench against a server of its own, kills the server once an interval is
/// reported, and checks the bench's end: exit 1 soon after, one line on stderr, and the
/// summary so far on stdout.
fn bench_outlives_a_dying_server(transport: fn(&Serve) -> &str, extra: &[&str]) {
    let mut serve = Serve::start();
    let addr = transport(&serve).to_owned();
    let mut args = vec!["bench", addr.as_str(), "-t", "60", "-i", "0.2"];
    args.extend_from_slice(extra);
    let mut bench = Running::start(&args);
    bench
        .stdout
        .wait_for("an interval", |lines, ended| ended || lines.iter().any(|l| l.contains("0.00-0.20")));
    serve.running.child.0.kill().unwrap();
    let killed = Instant::now();
    let code = bench.wait(Duration::from_secs(15));
    assert!(
        killed.elapsed() < Duration::from_secs(12),
        "{addr}: the bench took {:?} to notice",
        killed.elapsed()
    );
    let stdout = bench.stdout.all();
    let stderr = bench.stderr.all();
    assert_eq!(code, Some(1), "{addr}: {stdout:?} {stderr:?}");
    assert_eq!(stderr.len(), 1, "{addr}: {stderr:?}");
    assert!(stderr[0].starts_with(&format!("framelink: {addr}: ")), "{stderr:?}");
    let total = stdout.last().unwrap();
    assert!(total.starts_with("  0.00-") && total.contains(" sec "), "{addr}: {stdout:?}");
    let _ = serve.running.wait(WAIT);
}

#[test]
fn bench_ends_with_its_summary_when_the_server_dies() {
    bench_outlives_a_dying_server(|s| &s.tcp, &[]);
    bench_outlives_a_dying_server(|s| &s.udp, &[]);
    bench_outlives_a_dying_server(|s| &s.udp, &["--reverse"]);
}

#[test]
fn ctrl_c_prints_the_summary_so_far() {
    let serve = Serve::start();
    // ping without a count runs until Ctrl-C.
    let mut ping = Running::start(&["ping", &serve.tcp, "-i", "50"]);
    ping.stdout.wait_for("two replies", |lines, ended| {
        ended || lines.iter().filter(|l| l.contains("seq=")).count() >= 2
    });
    ping.interrupt();
    assert_eq!(ping.wait(WAIT), Some(0));
    let lines = ping.stdout.all();
    assert!(lines.iter().any(|l| l.contains(" transmitted, ") && l.contains("0% loss")), "{lines:?}");

    let mut bench = Running::start(&["bench", &serve.tcp, "-t", "60", "-i", "0.2", "--json"]);
    // JSON mode prints nothing until the end: wait for the server to log the client.
    serve.running.stderr.wait_for("the bench's link", |lines, _| {
        lines.iter().filter(|l| l.ends_with(" connected")).count() >= 2
    });
    thread::sleep(Duration::from_millis(500));
    bench.interrupt();
    assert_eq!(bench.wait(WAIT), Some(0));
    let json: Value = serde_json::from_str(&bench.stdout.all().join("\n")).unwrap();
    assert_eq!(json["interrupted"], true);
    assert!(u64_at(&json, "bytes") > 0 && f64_at(&json, "seconds") < 30.0, "{json}");

    // The relay, in text.
    let mut relay = Running::start(&["relay", "--listen", "udp://127.0.0.1:0", "--to", serve.udp.as_str()]);
    relay
        .stderr
        .wait_for("the relay", |lines, ended| ended || lines.iter().any(|l| l.starts_with("relaying to ")));
    relay.interrupt();
    assert_eq!(relay.wait(WAIT), Some(0));
    let lines = relay.stdout.all();
    assert!(
        lines[0].starts_with("upstream:   received 0 ") && lines[1].starts_with("downstream: "),
        "{lines:?}"
    );

    let mut serve = serve;
    serve.running.interrupt();
    assert_eq!(serve.running.wait(WAIT), Some(0));
    let log = serve.running.stderr.all();
    assert!(log.iter().any(|l| l.starts_with("served ")), "{log:?}");
}

#[test]
fn relay_carries_ping_and_bench_through_loss() {
    let serve = Serve::start();
    let relay_args = [
        "relay",
        "--listen",
        "udp://127.0.0.1:0",
        "--to",
        serve.udp.as_str(),
        "--loss",
        "0.1",
        "--dup",
        "0.05",
    ];
    let mut relay =
        Running::start(&[&relay_args[..], &["--reorder", "0.1", "--seed", "7", "--json", "-v"]].concat());
    let addr = relay.listening(1).swap_remove(0);

    let json = run(&["ping", &addr, "-c", "20", "-i", "0", "--json"]).ok().json();
    assert_eq!((u64_at(&json, "transmitted"), u64_at(&json, "received")), (20, 20), "{json}");
    let json = run(&["bench", &addr, "--bytes", "200K", "--json"]).ok().json();
    assert_eq!(u64_at(&json, "bytes"), 200 << 10, "{json}");
    let json = run(&["bench", &addr, "--bytes", "200K", "-R", "--json"]).ok().json();
    assert_eq!(u64_at(&json, "bytes"), 200 << 10, "{json}");

    relay.interrupt();
    assert_eq!(relay.wait(WAIT), Some(0));
    let json: Value = serde_json::from_str(&relay.stdout.all().join("\n")).unwrap();
    let dropped = u64_at(&json["upstream"], "dropped") + u64_at(&json["downstream"], "dropped");
    assert!(dropped > 0 && u64_at(&json["upstream"], "forwarded") > 0, "{json}");
}

#[test]
fn demo_runs_and_exits_0() {
    let text = run(&["demo"]).ok();
    assert!(text.stdout.contains("  server: Received: Hello, Server!"), "{}", text.stdout);
    assert!(text.stdout.contains("all 8 steps passed in "), "{}", text.stdout);
    let json = run(&["demo", "--json"]).ok().json();
    assert_eq!(u64_at(&json, "steps"), 8, "{json}");
    assert_eq!(json["bench"].as_array().map(Vec::len), Some(4), "{json}");
    assert_eq!(json["ping"][1]["received"], 20, "{json}");
}
