//! `framelink cat`: two processes, one `--listen`ing, exchange lines over TCP, UDP, TCP+COBS and
//! a pty pair (socat; skipped without it, as tests/serial.rs is) (and
//! records with `--binary`, any bytes), a library client's messages are printed by
//! `cat --listen`, and the end of standard input closes the session cleanly on both sides.
//! Loopback only; every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::socat::{self, PtyPair, TempDir};
use common::tool::BIN;
use common::{Guard, Lines, WAIT};
use framelink::std::Link;

/// Bytes a child wrote so far, whether its stdout has ended, and a signal for each change.
type Collected = Arc<(Mutex<(Vec<u8>, bool)>, Condvar)>;

/// A `framelink cat` child: its stdin to write to, its stdout collected as bytes, its stderr
/// as lines.
struct Cat {
    child: Guard,
    stdin: Option<ChildStdin>,
    stdout: Collected,
    stderr: Arc<Lines>,
}

impl Cat {
    fn start(args: &[&str]) -> Self {
        let mut child: Child = Command::new(BIN)
            .arg("cat")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start framelink cat");
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().unwrap();
        let stdout: Collected = Arc::new((Mutex::new((Vec::new(), false)), Condvar::new()));
        let sink = Arc::clone(&stdout);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = out.read(&mut buf).unwrap_or(0);
                let mut state = sink.0.lock().unwrap();
                if n == 0 {
                    state.1 = true;
                } else {
                    state.0.extend_from_slice(&buf[..n]);
                }
                sink.1.notify_all();
                if n == 0 {
                    return;
                }
            }
        });
        let stderr = Lines::collect(child.stderr.take().unwrap());
        Self { child: Guard(child), stdin, stdout, stderr }
    }

    /// `cat --listen` on `addr` (port 0); the address it listens on.
    fn listen(addr: &str, extra: &[&str]) -> (Self, String) {
        let mut args = vec!["--listen", addr];
        args.extend_from_slice(extra);
        let cat = Self::start(&args);
        let lines = cat.stderr.wait_for("the listener", |lines, ended| {
            ended || lines.iter().any(|l| l.starts_with("listening on "))
        });
        let bound = lines.iter().find_map(|l| l.strip_prefix("listening on ")).expect("listening").to_owned();
        (cat, bound)
    }

    fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Ends standard input.
    fn end_input(&mut self) {
        self.stdin = None;
    }

    /// Waits (at most [`WAIT`]) until stdout holds `len` bytes; returns them all.
    fn stdout_len(&self, len: usize) -> Vec<u8> {
        let until = Instant::now() + WAIT;
        let (lock, changed) = &*self.stdout;
        let mut state = lock.lock().unwrap();
        while state.0.len() < len && !state.1 {
            let left = until.checked_duration_since(Instant::now()).unwrap_or_else(|| {
                panic!("stdout has {} of {len} bytes: {:?}", state.0.len(), self.stderr.snapshot())
            });
            state = changed.wait_timeout(state, left).unwrap().0;
        }
        state.0.clone()
    }

    /// Waits (at most [`WAIT`]) for the exit; its code and stderr.
    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let until = Instant::now() + WAIT;
        let code = loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                break status.code();
            }
            assert!(Instant::now() < until, "cat did not exit: {:?}", self.stderr.snapshot());
            thread::sleep(Duration::from_millis(10));
        };
        (code, self.stderr.all())
    }
}

/// Lines both ways between `cat --listen` and `cat`, then the end of the client's input closes
/// both, each with exit status 0.
fn lines_both_ways(listen: &str) {
    let (mut server, addr) = Cat::listen(listen, &[]);
    let mut client = Cat::start(&[&addr]);
    client.write(b"hello from the client\nsecond line\n");
    assert_eq!(server.stdout_len(34), b"hello from the client\nsecond line\n");
    server.write(b"hello from the listener\r\n\n");
    assert_eq!(client.stdout_len(25), b"hello from the listener\n\n");
    client.end_input();
    let (code, log) = client.finish();
    assert_eq!(code, Some(0), "{log:?}");
    assert_eq!(
        log.last().map(String::as_str),
        Some("sent 2 messages (32 bytes, 32 acknowledged), received 2 messages (23 bytes)"),
        "{log:?}"
    );
    // The client's close ends the listener too.
    let (code, log) = server.finish();
    assert_eq!(code, Some(0), "{log:?}");
    assert!(log.iter().any(|l| l.ends_with(" connected")), "{log:?}");
    assert_eq!(
        log.last().map(String::as_str),
        Some("sent 2 messages (23 bytes, 23 acknowledged), received 2 messages (32 bytes)"),
        "{log:?}"
    );
}

#[test]
fn two_cats_talk_over_tcp() {
    lines_both_ways("tcp://127.0.0.1:0");
}

#[test]
fn two_cats_talk_over_udp() {
    lines_both_ways("udp://127.0.0.1:0");
}

#[test]
fn two_cats_talk_over_tcp_cobs() {
    lines_both_ways("tcp+cobs://127.0.0.1:0");
}

#[test]
fn binary_records_round_trip() {
    let (server, addr) = Cat::listen("tcp://127.0.0.1:0", &["--binary"]);
    let mut client = Cat::start(&["--binary", &addr]);
    let records: [&[u8]; 4] = [b"line\nbreaks\n", b"", &[0, 0, 255, 13, 10], &[7u8; 70_000]];
    let mut stream = Vec::new();
    for record in records {
        stream.extend_from_slice(&(record.len() as u32).to_be_bytes());
        stream.extend_from_slice(record);
    }
    client.write(&stream);
    assert_eq!(server.stdout_len(stream.len()), stream, "the same records, in the same format");
    client.end_input();
    let (code, log) = client.finish();
    assert_eq!(code, Some(0), "{log:?}");
    assert_eq!(server.finish().0, Some(0));
}

#[test]
fn a_record_cut_short_is_one_error_line() {
    let (server, addr) = Cat::listen("tcp://127.0.0.1:0", &["--binary"]);
    let mut client = Cat::start(&["--binary", &addr]);
    client.write(&[0, 0, 0, 9, b'a']);
    client.end_input();
    let (code, log) = client.finish();
    assert_eq!(code, Some(1), "{log:?}");
    assert!(
        log.last().is_some_and(|l| l.starts_with("framelink: ") && l.contains("inside a record")),
        "{log:?}"
    );
    drop(server);
}

#[test]
fn cat_listen_prints_what_a_library_client_sends() {
    let (mut server, addr) = Cat::listen("tcp://127.0.0.1:0", &[]);
    let mut link = Link::connect(addr.as_str()).unwrap();
    link.send(b"Hello, cat!").unwrap();
    assert_eq!(server.stdout_len(12), b"Hello, cat!\n");
    server.write(b"and back\n");
    let answer = link.next_event(Some(WAIT)).unwrap();
    assert_eq!(answer, Some(framelink::std::LinkEvent::Message(b"and back".to_vec())));
    link.close().unwrap();
    assert_eq!(server.finish().0, Some(0));
}

#[test]
fn ctrl_c_ends_cat_with_its_summary() {
    let (server, addr) = Cat::listen("udp://127.0.0.1:0", &[]);
    let mut client = Cat::start(&[&addr]);
    client.write(b"one\n");
    server.stdout_len(4);
    let status = Command::new("kill").args(["-INT", &client.child.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let (code, log) = client.finish();
    assert_eq!(code, Some(0), "{log:?}");
    assert!(log.last().is_some_and(|l| l.starts_with("sent 1 message (3 bytes")), "{log:?}");
    // The listener sees its peer gone (UDP: refused by the port) or takes its own Ctrl-C.
    let _ = Command::new("kill").args(["-INT", &server.child.0.id().to_string()]).status();
    let (code, log) = server.finish();
    match code {
        Some(0) => {}
        Some(1) => {
            assert!(log.last().is_some_and(|l| l.starts_with("framelink: udp://127.0.0.1:")), "{log:?}")
        }
        other => panic!("{other:?}: {log:?}"),
    }
}

#[test]
fn two_cats_talk_over_a_pty_pair() {
    if !socat::available("two_cats_talk_over_a_pty_pair") {
        return;
    }
    let dir = TempDir::new("cat-serial");
    let pair = PtyPair::new(&dir.0, "line");
    let (mut server, addr) = Cat::listen(&pair.addr_a(), &[]);
    assert!(addr.starts_with(&pair.addr_a()), "{addr}");
    let mut client = Cat::start(&[&pair.addr_b()]);
    client.write(b"over the line\n");
    assert_eq!(server.stdout_len(14), b"over the line\n");
    server.write(b"and back\n");
    assert_eq!(client.stdout_len(9), b"and back\n");
    client.end_input();
    assert_eq!(client.finish().0, Some(0));
    assert_eq!(server.finish().0, Some(0));
}
