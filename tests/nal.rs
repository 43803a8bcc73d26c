//! The embedded-nal code path on std-embedded-nal against real servers over loopback: the
//! `nal_client` example against the example `server` (TCP, UDP, TCP+COBS; short, empty, long
//! and many messages), against stand-ins that refuse or drop the session and against nobody;
//! and `framelink_std::nal::connect` in-process against `framelink_std::Server`.
//!
//! `cargo test` builds the examples next to this test's binary (`target/<profile>/examples`).
//! Every wait is bounded, and every child process is killed on every path.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::{Mutex, mpsc};
use std::thread;

use framelink::core::session::{CloseReason, Event};
use framelink::core::wire::{ErrorCode, ErrorPayload, HelloPayload, PacketType, Repr};
use framelink::std::{Addr, LinkConfig, LinkError, PeerInfo, Reply, Server, ServerConfig, nal};

mod common;

use common::frames::{length_delimited, read_frame};
use common::{Run, ServerProc, WAIT, example, run_example};

/// Runs the `nal_client` example to its end (at most [`WAIT`]).
fn nal_client<A: AsRef<OsStr>>(args: &[A], stdin: Option<Vec<u8>>) -> Run {
    run_example("nal_client", args, stdin)
}

/// A message of `len` bytes cycling through the alphabet: any cut, gap or swap shows.
fn pattern(len: usize) -> String {
    (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

#[test]
fn nal_client_example_against_the_example_server() {
    let mut server = ServerProc::start(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"]);
    for scheme in ["tcp", "udp", "tcp+cobs"] {
        let addr = server.addr(scheme);
        let before = server.stdout.count();
        let run = nal_client(&[addr.as_str()], None);
        assert!(run.status.success(), "{scheme}: {}", run.stderr);
        assert!(run.stderr.contains("all acknowledged"), "{scheme}: {}", run.stderr);
        assert_eq!(server.received_after(before, 1), ["Hello, Server!"], "{scheme}");

        // Back to back, an empty one, then many: each its own line, none glued or cut.
        let mut messages = vec!["Hello, ".to_owned(), "Server!".to_owned(), String::new()];
        messages.extend((0..200).map(|i| format!("message {i}")));
        let mut args = vec![addr.clone()];
        args.extend(messages.iter().cloned());
        let before = server.stdout.count();
        let run = nal_client(&args, None);
        assert!(run.status.success(), "{scheme}: {}", run.stderr);
        assert_eq!(server.received_after(before, messages.len()), messages, "{scheme}");
    }
    server.assert_running();
}

#[test]
fn nal_client_example_sends_long_messages_whole() {
    let mut server = ServerProc::start(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"]);
    for (scheme, len) in [("tcp", 1_000_000), ("udp", 200_000), ("tcp+cobs", 200_000)] {
        let message = pattern(len);
        let before = server.stdout.count();
        let run = nal_client(&[server.addr(scheme).as_str(), "-"], Some(message.clone().into_bytes()));
        assert!(run.status.success(), "{scheme} {len}: {}", run.stderr);
        let received = server.received_after(before, 1);
        assert!(received[0] == message, "{scheme}: {len} bytes sent, {} printed", received[0].len());
    }
    server.assert_running();
}

#[test]
fn nal_client_example_with_no_server_says_so_in_one_line() {
    // Ports that were free a moment ago.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let udp_port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for addr in [format!("tcp://127.0.0.1:{port}"), format!("udp://127.0.0.1:{udp_port}")] {
        let run = nal_client(&[addr.as_str()], None);
        assert_eq!(run.status.code(), Some(1), "{addr}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    }
}

#[test]
fn nal_client_example_exit_statuses_are_the_tools() {
    // An unknown option is a usage error (2); a bad address a failure (1, one line).
    let run = nal_client(&["--verbose"], None);
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stderr.contains("usage: nal_client"), "{}", run.stderr);
    let run = nal_client(&["http://127.0.0.1:1"], None);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("bad address `http://127.0.0.1:1`"), "{}", run.stderr);
    let output = Command::new(example("nal_client")).arg("--help").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("std-embedded-nal"));
}

/// A stand-in TCP server for one connection: reads the HELLO, then does `then` with it.
fn stand_in(
    then: impl FnOnce(&mut TcpStream, HelloPayload) + Send + 'static,
) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let packet = read_frame(&mut stream);
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.kind, PacketType::Hello);
        then(&mut stream, HelloPayload::parse(repr.payload).unwrap());
    });
    (addr, handle)
}

#[test]
fn nal_client_example_explains_a_refused_handshake_in_one_line() {
    // What a server of protocol version 2 answers a version-1 client.
    let (addr, fake) = stand_in(|stream, _| {
        let mut payload = [0u8; ErrorPayload::LEN];
        ErrorPayload { code: ErrorCode::VersionMismatch, detail: 2, text: &[] }.emit(&mut payload).unwrap();
        let mut packet = [0u8; 32];
        let len = Repr::control(PacketType::Error, &payload).emit(&mut packet).unwrap();
        stream.write_all(&length_delimited(&packet[..len])).unwrap();
        let _ = stream.read(&mut [0u8; 64]);
    });
    let run = nal_client(&[addr.as_str()], None);
    fake.join().unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("refused") && run.stderr.contains("version 2"), "{}", run.stderr);
}

#[test]
fn nal_client_example_reports_a_link_that_dies() {
    // Accepts the handshake, then goes away before acknowledging anything.
    let (addr, fake) = stand_in(|stream, mut hello| {
        hello.credit = 1 << 20;
        let mut body = [0u8; HelloPayload::LEN];
        hello.emit(&mut body).unwrap();
        let mut ack = [0u8; 64];
        let len = Repr::control(PacketType::HelloAck, &body).emit(&mut ack).unwrap();
        stream.write_all(&length_delimited(&ack[..len])).unwrap();
    });
    let run = nal_client(&[addr.as_str(), "anyone?"], None);
    fake.join().unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("connection lost"), "{}", run.stderr);
}

#[test]
fn nal_connect_in_process_against_the_std_server() {
    // An echo server that reports each client's end.
    let (ends, ended) = mpsc::channel();
    struct Echo(Mutex<mpsc::Sender<Result<CloseReason, String>>>);
    impl framelink::std::Handler for Echo {
        fn on_message(&self, _: &PeerInfo, message: &[u8], reply: &mut Reply<'_>) {
            reply.send(message).unwrap();
        }
        fn on_close(&self, _: &PeerInfo, reason: Result<CloseReason, &LinkError>) {
            let _ = self.0.lock().unwrap().send(reason.map_err(|e| e.to_string()));
        }
    }
    let listen: Vec<Addr> = ["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"]
        .map(|a| a.parse().unwrap())
        .into();
    let server = Server::bind(&listen, ServerConfig::new()).unwrap().spawn(Echo(Mutex::new(ends))).unwrap();
    for addr in server.local_addrs() {
        let mut link = nal::connect(addr, &LinkConfig::new()).unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(link.transport(), addr.transport);
        let long = pattern(100_000).into_bytes();
        for message in [&b"Hello, Server!"[..], b"", &long] {
            link.send(message).unwrap();
        }
        link.drain().unwrap();
        for message in [&b"Hello, Server!"[..], b"", &long] {
            assert_eq!(link.next_event().unwrap(), Event::Message(message), "{addr}");
        }
        link.close().unwrap();
        assert_eq!(ended.recv_timeout(WAIT).unwrap(), Ok(CloseReason::Peer), "{addr}");
        assert_eq!(link.session().stats().messages_received, 3);
    }
    server.shutdown();
}
