//! The `framelink` binary against a real `framelink serve` child on ephemeral loopback ports,
//! over TCP, UDP and TCP+COBS: every command in text and in JSON, bad arguments, a refused
//! connection, a server that dies mid-bench, a peer that stops reading mid-bench, Ctrl-C, a
//! lossy relay, and `demo`.
//!
//! Each test starts its own server (`--listen tcp://127.0.0.1:0 --listen udp://127.0.0.1:0
//! --listen tcp+cobs://127.0.0.1:0`, the ports read from its stderr). Every wait is bounded,
//! and every child is killed on every path (a guard's `Drop`).

mod common;

use std::ffi::OsStr;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A peer that completes the handshake, then reads and never acknowledges: `send` waits for
/// the acknowledgements until Ctrl-C, which ends it at once with the summary so far.
#[test]
fn ctrl_c_ends_a_send_waiting_for_acknowledgements() {
    use std::io::{Read, Write};

    use common::frames::{length_delimited, read_frame};
    use framelink::core::wire::{HelloPayload, PacketType, Repr};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", listener.local_addr().unwrap());
    let peer = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let packet = read_frame(&mut stream);
        let hello = HelloPayload::parse(Repr::parse(&packet).unwrap().payload).unwrap();
        let mut body = [0u8; HelloPayload::LEN];
        hello.emit(&mut body).unwrap();
        let mut ack = [0u8; 64];
        let len = Repr::control(PacketType::HelloAck, &body).emit(&mut ack).unwrap();
        stream.write_all(&length_delimited(&ack[..len])).unwrap();
        // Read until the client goes away (at most the test's bound), acknowledging nothing.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(1..)) {}
    });
    let mut send = Running::start(&["send", &addr, "never acknowledged"]);
    // The handshake is done once the peer thread reads on; give the send time to wait.
    thread::sleep(Duration::from_millis(500));
    send.interrupt();
    let interrupted = Instant::now();
    let code = send.wait(WAIT);
    assert!(interrupted.elapsed() < Duration::from_secs(5), "{:?}", interrupted.elapsed());
    let (stdout, stderr) = (send.stdout.all(), send.stderr.all());
    assert_eq!(code, Some(1), "{stdout:?} {stderr:?}");
    assert_eq!(stdout, [format!("sent 1 message (18 bytes) to {addr}, 0 acknowledged")]);
    assert_eq!(stderr, [format!("framelink: {addr}: interrupted")]);
    peer.join().unwrap();
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
        assert!(lines[8].starts_with("transport: ") && lines[8].contains(" sent again, "), "{}", lines[8]);
        assert!(lines[9].starts_with("rtt min/avg/max/mdev = "), "{}", lines[9]);
        assert!(lines[9].contains(" ms, p50 ") && lines[9].contains(" ms, p99 "), "{}", lines[9]);

        let json = run(&["ping", addr, "-c", "10", "-i", "0", "--size", "100", "--json"]).ok().json();
        assert_eq!((u64_at(&json, "transmitted"), u64_at(&json, "received")), (10, 10));
        assert_eq!((f64_at(&json, "loss_percent"), u64_at(&json, "size")), (0.0, 100));
        let rtt = &json["rtt_us"];
        let [min, avg, max, mdev, p50, p99] =
            ["min", "avg", "max", "mdev", "p50", "p99"].map(|k| f64_at(rtt, k));
        assert!(0.0 < min && min <= p50 && p50 <= p99 && p99 <= max && min <= avg && avg <= max, "{rtt}");
        assert!(mdev >= 0.0);
        assert!(json["retransmits"].is_u64() && json["responder_retransmits"].is_u64(), "{json}");
        assert_at_most_3_decimals(&json);
    }
}

/// Asserts that every number in `json` has at most three decimals (no float noise such as
/// 0.30000000000000004).
fn assert_at_most_3_decimals(json: &Value) {
    match json {
        Value::Number(n) => {
            let text = n.to_string();
            let decimals = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
            assert!(decimals <= 3 && !text.contains('e'), "{text} has float noise");
        }
        Value::Array(items) => items.iter().for_each(assert_at_most_3_decimals),
        Value::Object(fields) => fields.values().for_each(assert_at_most_3_decimals),
        _ => {}
    }
}

#[test]
fn ping_times_are_seconds_with_a_deadline_and_a_quiet_mode() {
    let serve = Serve::start();
    // -i in seconds with a fraction, on a schedule; -q prints the opening line and the summary.
    let started = Instant::now();
    let quiet = run(&["ping", &serve.udp, "-c", "3", "-i", "0.2", "-W", "2.5", "-q"]).ok();
    assert!(started.elapsed() >= Duration::from_millis(400));
    let lines: Vec<&str> = quiet.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0], format!("PING {}: 64-byte ECHO messages", serve.udp));
    assert_eq!(lines[1], format!("--- {} ping statistics ---", serve.udp));
    assert!(lines[2].starts_with("3 transmitted, 3 received, 0% loss, time "), "{lines:?}");
    assert!(lines[3].starts_with("transport: "), "{lines:?}");
    assert!(lines[4].starts_with("rtt min/avg/max/mdev = "), "{lines:?}");

    // -w ends a run without a count, at the deadline.
    let started = Instant::now();
    let json = run(&["ping", &serve.tcp, "-w", "0.5", "-i", "0.1", "--json"]).ok().json();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(f64_at(&json, "time_ms") >= 500.0, "{json}");
    assert!(u64_at(&json, "transmitted") >= 1 && u64_at(&json, "received") >= 1, "{json}");
    assert_at_most_3_decimals(&json);

    // -c with -w: as ping(8), fewer replies than asked for by the deadline is a failure, after
    // the summary.
    let short = run(&["ping", &serve.tcp, "-c", "1000", "-w", "0.3", "-i", "0.05"])
        .failed("of 1000 replies within the 0.3 s deadline");
    assert!(short.stdout.contains(" ping statistics ---"), "{}", short.stdout);

    // Sizes take suffixes.
    let json = run(&["ping", &serve.tcp, "-c", "1", "--size", "1K", "--json"]).ok().json();
    assert_eq!((u64_at(&json, "size"), u64_at(&json, "received")), (1024, 1), "{json}");

    // Milliseconds are not seconds.
    for args in [&["-i", "200ms"][..], &["-W", "0"], &["-w", "-1"], &["-s", "5"]] {
        let ran = run(&[&["ping", serve.tcp.as_str(), "-c", "1"][..], args].concat());
        assert_eq!(ran.code, Some(2), "{args:?}: {:?}", ran.stderr);
    }
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
        // The server's counters, at the top as ever and in the STATS reply as the library has them.
        assert!(u64_at(&json["server"], "accepted") >= 1, "{json}");
        assert_eq!(stats["server"], json["server"], "{json}");
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
        assert!(interval["bits_per_second"].is_u64(), "{interval}");
        assert_eq!(interval["stalled"], false, "{interval}");
    }
    assert_at_most_3_decimals(&json);

    // Exactly the bytes asked for, over two links.
    let json = run(&["bench", addr, "--bytes", "2M", "-P", "2", "--json"]).ok().json();
    assert_eq!(
        (json["direction"].as_str(), u64_at(&json, "bytes"), u64_at(&json, "streams")),
        (Some("forward"), 2 << 20, 2)
    );
    let json = run(&["bench", addr, "--bytes", "1M", "-R", "--size", "1000", "--json"]).ok().json();
    assert_eq!((u64_at(&json, "bytes"), u64_at(&json, "message_size")), (1 << 20, 1000));
    let json = run(&["bench", addr, "--bytes", "0.5M", "--length", "1K", "--json"]).ok().json();
    assert_eq!((u64_at(&json, "bytes"), u64_at(&json, "message_size")), (1 << 19, 1024));

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
    let mut ping = Running::start(&["ping", &serve.tcp, "-i", "0.05"]);
    ping.stdout.wait_for("two replies", |lines, ended| {
        ended || lines.iter().filter(|l| l.contains("seq=")).count() >= 2
    });
    ping.interrupt();
    assert_eq!(ping.wait(WAIT), Some(0));
    let lines = ping.stdout.all();
    // (A request sent just before Ctrl-C counts as lost, as in ping(8).)
    assert!(lines.iter().any(|l| l.contains(" transmitted, ") && l.contains("% loss")), "{lines:?}");

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
    assert_at_most_3_decimals(&json);
}

#[test]
fn ping_through_a_lossy_relay_shows_the_retransmissions() {
    let serve = Serve::start();
    let mut relay = Running::start(&[
        "relay",
        "--listen",
        "udp://127.0.0.1:0",
        "--to",
        serve.udp.as_str(),
        "--loss",
        "0.3",
        "--seed",
        "11",
    ]);
    let addr = relay.listening(1).swap_remove(0);

    let json = run(&["ping", &addr, "-c", "40", "-i", "0", "-W", "5", "--json"]).ok().json();
    assert_eq!(u64_at(&json, "transmitted"), 40, "{json}");
    // The session hides the loss under the round-trip times; the summary counts it.
    let resent = u64_at(&json, "retransmits") + json["responder_retransmits"].as_u64().unwrap_or(0);
    assert!(resent > 0 && f64_at(&json, "retransmit_percent") > 0.0, "{json}");
    assert_at_most_3_decimals(&json);

    let text = run(&["ping", &addr, "-c", "40", "-i", "0", "-W", "5", "-q"]).ok();
    let transport = text.stdout.lines().find(|l| l.starts_with("transport: "));
    let transport = transport.unwrap_or_else(|| panic!("no transport line: {}", text.stdout));
    assert!(transport.contains(" sent again") && transport.ends_with("% of DATA packets retransmitted"));
    assert!(!transport.contains(", 0% of DATA"), "{transport}");

    relay.interrupt();
    assert_eq!(relay.wait(WAIT), Some(0));
}

/// A TCP proxy on loopback to `to` for one client, which stops reading both ways once
/// [`freeze`](Self::freeze) is called: a peer that stops reading, after a good handshake.
struct FreezingProxy {
    addr: String,
    frozen: Arc<AtomicBool>,
    /// Set when dropped: the proxy's threads end.
    done: Arc<AtomicBool>,
}

impl FreezingProxy {
    fn start(to: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("tcp://{}", listener.local_addr().unwrap());
        let to = to.strip_prefix("tcp://").unwrap().to_owned();
        let frozen = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (f, d) = (Arc::clone(&frozen), Arc::clone(&done));
        thread::spawn(move || {
            // One client, waited for at most WAIT.
            listener.set_nonblocking(true).unwrap();
            let until = Instant::now() + WAIT;
            let client = loop {
                match listener.accept() {
                    Ok((client, _)) => break client,
                    Err(_) if Instant::now() < until && !d.load(Ordering::Relaxed) => {
                        thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return,
                }
            };
            client.set_nonblocking(false).unwrap();
            let server = TcpStream::connect(&to).unwrap();
            for (from, into) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
            {
                let (frozen, done) = (Arc::clone(&f), Arc::clone(&d));
                thread::spawn(move || copy_until_frozen(from, into, &frozen, &done));
            }
        });
        Self { addr, frozen, done }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` into `into` until either ends; once `frozen`, reads nothing more until `done`
/// (or [`WAIT`] has passed).
fn copy_until_frozen(mut from: TcpStream, mut into: TcpStream, frozen: &AtomicBool, done: &AtomicBool) {
    let until = Instant::now() + WAIT * 2;
    from.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    while !done.load(Ordering::Relaxed) && Instant::now() < until {
        if frozen.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if into.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = into.shutdown(Shutdown::Both);
}

#[test]
fn bench_gives_up_on_a_peer_that_stops_reading() {
    let serve = Serve::start();
    for reverse in [false, true] {
        let proxy = FreezingProxy::start(&serve.tcp);
        let mut args = vec!["bench", proxy.addr.as_str(), "-t", "60", "-i", "0.2", "--stall-timeout", "1"];
        if reverse {
            args.push("-R");
        }
        let mut bench = Running::start(&args);
        bench
            .stdout
            .wait_for("an interval", |lines, ended| ended || lines.iter().any(|l| l.contains("0.00-0.20")));
        proxy.freeze();
        let frozen = Instant::now();
        let code = bench.wait(Duration::from_secs(20));
        // A 1 s stall timeout: the run ends well within 10 s (generous slack on a busy machine).
        assert!(frozen.elapsed() < Duration::from_secs(10), "took {:?} to give up", frozen.elapsed());
        let (stdout, stderr) = (bench.stdout.all(), bench.stderr.all());
        assert_eq!(code, Some(1), "{stdout:?} {stderr:?}");
        let what = if reverse { "no SOURCE data" } else { "nothing acknowledged" };
        assert_eq!(stderr.len(), 1, "{stderr:?}");
        assert!(
            stderr[0].starts_with(&format!(
                "framelink: {}: link stalled: {what} for 1 s (--stall-timeout)",
                proxy.addr
            )),
            "{stderr:?}"
        );
        assert!(stdout.iter().any(|l| l.contains(" stalled ")), "the intervals say so: {stdout:?}");
        // (One interval may end before a starved link thread has noticed.)
        let zero = stdout.iter().filter(|l| l.contains("0.00 bits/sec")).count();
        assert!(zero <= 1, "stalled, not 0.00 bits/sec again and again: {stdout:?}");
        let total = stdout.last().unwrap();
        assert!(total.starts_with("  0.00-") && total.contains(" sec "), "the summary so far: {stdout:?}");
    }
}
