//! The example `server` and `client`, run for real over loopback sockets on ephemeral ports:
//! TCP, UDP and TCP+COBS; back-to-back, long, empty and many quick messages; 50 clients at
//! once; a peer of another protocol version; a refusing server; no server at all; a client
//! that vanishes mid-message. The server must keep running after each.
//!
//! `cargo test` builds the examples next to this test's binary (`target/<profile>/examples`).
//! Every wait is bounded, and every child process is killed on every path.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::Duration;

use framelink::core::framing::datagram::{TAG_LEN, session_tag};
use framelink::core::wire::{
    Capabilities, ErrorCode, ErrorPayload, HelloPayload, Packet, PacketType, Repr, SeqNumber,
};

mod common;

use common::frames::{length_delimited, read_frame, tagged};
use common::{Run, ServerProc, WAIT, example, run_example};

/// Runs the `client` example to its end (at most [`WAIT`]).
fn client<A: AsRef<OsStr>>(args: &[A], stdin: Option<Vec<u8>>) -> Run {
    run_example("client", args, stdin)
}

/// A message of `len` bytes cycling through the alphabet: any cut, gap or swap shows.
fn pattern(len: usize) -> String {
    (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

#[test]
fn seed_pair_over_tcp_udp_and_cobs() {
    let mut server = ServerProc::start(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"]);
    for scheme in ["tcp", "udp", "tcp+cobs"] {
        let addr = server.addr(scheme);
        let before = server.printed();
        let run = client(&[addr.as_str()], None);
        assert!(run.status.success(), "{scheme}: {}", run.stderr);
        assert_eq!(server.received_after(before, 1), ["Hello, Server!"], "{scheme}");

        // Back to back, and an empty message: each its own line, none glued or cut.
        let before = server.printed();
        let run = client(&[addr.as_str(), "Hello, ", "Server!", "", "last"], None);
        assert!(run.status.success(), "{scheme}: {}", run.stderr);
        assert_eq!(server.received_after(before, 4), ["Hello, ", "Server!", "", "last"], "{scheme}");
    }
    server.assert_running();
}

#[test]
fn long_messages_arrive_whole() {
    let mut server = ServerProc::start(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"]);
    for (scheme, len) in [("tcp", 200_000), ("udp", 200_000), ("tcp+cobs", 200_000), ("tcp", 3_000_000)] {
        let message = pattern(len);
        let before = server.printed();
        let run = client(&[server.addr(scheme).as_str(), "-"], Some(message.clone().into_bytes()));
        assert!(run.status.success(), "{scheme} {len}: {}", run.stderr);
        let received = server.received_after(before, 1);
        assert!(received[0] == message, "{scheme}: {len} bytes sent, {} printed", received[0].len());
    }
    server.assert_running();
}

#[test]
fn a_thousand_quick_messages_in_one_run() {
    let mut server = ServerProc::start(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"]);
    let messages: Vec<String> = (0..1000).map(|i| format!("message {i}")).collect();
    for scheme in ["tcp", "udp", "tcp+cobs"] {
        let mut args = vec![server.addr(scheme)];
        args.extend(messages.iter().cloned());
        let before = server.printed();
        let run = client(&args, None);
        assert!(run.status.success(), "{scheme}: {}", run.stderr);
        // All printed, in order, exactly once (nothing more arrives after the client's close).
        assert_eq!(server.received_after(before, 1000), messages, "{scheme}");
        thread::sleep(Duration::from_millis(50));
        assert_eq!(server.printed(), before + 1000, "{scheme}: extra lines");
    }
    server.assert_running();
}

#[test]
fn fifty_clients_at_once() {
    let mut server = ServerProc::start(&["tcp://127.0.0.1:0"]);
    let addr = server.addr("tcp");
    let before = server.printed();
    let clients: Vec<_> = (0..50)
        .map(|c| {
            let args: Vec<String> =
                std::iter::once(addr.clone()).chain((0..3).map(|m| format!("c{c} m{m}"))).collect();
            thread::spawn(move || client(&args, None))
        })
        .collect();
    for (c, handle) in clients.into_iter().enumerate() {
        let run = handle.join().unwrap();
        assert!(run.status.success(), "client {c}: {}", run.stderr);
    }
    let received = server.received_after(before, 150);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(server.printed(), before + 150, "extra lines");
    for c in 0..50 {
        // Each message once, and each client's in its order.
        let mine: Vec<&String> = received.iter().filter(|m| m.starts_with(&format!("c{c} "))).collect();
        assert_eq!(mine, [&format!("c{c} m0"), &format!("c{c} m1"), &format!("c{c} m2")], "client {c}");
    }
    server.assert_running();
}

/// A HELLO packet, with `header_version` in the header and `version` in the payload.
fn hello(header_version: u8, version: u8) -> Vec<u8> {
    hello_with(header_version, version, None)
}

/// [`hello`], with the cookie of a server's RETRY.
fn hello_with(header_version: u8, version: u8, cookie: Option<[u8; 8]>) -> Vec<u8> {
    let payload = HelloPayload {
        version,
        supports: Capabilities::NONE,
        requires: Capabilities::NONE,
        max_payload: 1024,
        window: 16,
        session_id: 0x5EED,
        max_message: 65536,
        credit: 65536,
        cookie,
    };
    let mut body = [0u8; HelloPayload::LEN_WITH_COOKIE];
    let len = payload.emit(&mut body).unwrap();
    let mut packet = vec![0u8; 64];
    let len = Repr::control(PacketType::Hello, &body[..len]).emit(&mut packet).unwrap();
    packet.truncate(len);
    let mut view = Packet::new_unchecked(&mut packet[..]);
    view.set_version(header_version);
    view.fill_crc();
    packet
}

fn expect_error(packet: &[u8], code: ErrorCode) -> u32 {
    let repr = Repr::parse(packet).expect("a valid packet");
    assert_eq!(repr.kind, PacketType::Error);
    let error = ErrorPayload::parse(repr.payload).unwrap();
    assert_eq!(error.code, code);
    error.detail
}

#[test]
fn another_protocol_version_gets_an_error_and_the_server_goes_on() {
    let mut server = ServerProc::start(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0"]);
    // A version-2 packet header, and a version-1 header whose HELLO speaks version 2.
    for (header, payload) in [(2, 2), (1, 2)] {
        let mut stream = TcpStream::connect(server.socket_addr("tcp")).unwrap();
        stream.write_all(&length_delimited(&hello(header, payload))).unwrap();
        let detail = expect_error(&read_frame(&mut stream), ErrorCode::VersionMismatch);
        assert_eq!(detail, 1, "the server names the version it speaks");
        // Then the server closes the connection.
        assert_eq!(stream.read(&mut [0u8; 16]).unwrap(), 0);

        // Over UDP a HELLO first proves its address with the cookie of a RETRY (PROTOCOL.md
        // 10.1); a packet of another version gets its ERROR at once. Datagrams carry the tag.
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        socket.connect(server.socket_addr("udp")).unwrap();
        socket.send(&tagged(0x5EED, &hello(header, payload))).unwrap();
        let mut datagram = [0u8; 256];
        let mut len = socket.recv(&mut datagram).unwrap();
        if header == 1 {
            assert!(len < tagged(0x5EED, &hello(header, payload)).len(), "a RETRY is smaller than the HELLO");
            let retry = Repr::parse(&datagram[TAG_LEN..len]).unwrap();
            assert_eq!(retry.kind, PacketType::Retry);
            let cookie = retry.payload.try_into().unwrap();
            socket.send(&tagged(0x5EED, &hello_with(header, payload, Some(cookie)))).unwrap();
            len = socket.recv(&mut datagram).unwrap();
        }
        assert_eq!(session_tag(&datagram[..len]), Some(0x5EED), "the answer carries the HELLO's tag");
        assert_eq!(expect_error(&datagram[TAG_LEN..len], ErrorCode::VersionMismatch), 1);
    }
    for scheme in ["tcp", "udp"] {
        let before = server.printed();
        let run = client(&[server.addr(scheme).as_str(), "still there?"], None);
        assert!(run.status.success(), "{}", run.stderr);
        assert_eq!(server.received_after(before, 1), ["still there?"]);
    }
    server.assert_running();
}

/// A stand-in for a server of protocol version 2: answers every HELLO with the ERROR such a
/// server sends a version-1 client.
#[test]
fn the_client_explains_a_refused_handshake_in_one_line() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let hello = read_frame(&mut stream);
        assert_eq!(Repr::parse(&hello).unwrap().kind, PacketType::Hello);
        let mut payload = [0u8; ErrorPayload::LEN];
        ErrorPayload { code: ErrorCode::VersionMismatch, detail: 2, text: &[] }.emit(&mut payload).unwrap();
        let mut packet = [0u8; 32];
        let len = Repr::control(PacketType::Error, &payload).emit(&mut packet).unwrap();
        stream.write_all(&length_delimited(&packet[..len])).unwrap();
        let _ = stream.read(&mut [0u8; 64]);
    });
    let run = client(&[format!("tcp://{addr}")], None);
    fake.join().unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("refused") && run.stderr.contains("version 2"), "{}", run.stderr);
}

/// A stand-in server that accepts the handshake, then drops the connection.
#[test]
fn the_client_reports_a_link_that_dies() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let packet = read_frame(&mut stream);
        let mut hello = HelloPayload::parse(Repr::parse(&packet).unwrap().payload).unwrap();
        hello.credit = 1 << 20;
        let mut body = [0u8; HelloPayload::LEN];
        hello.emit(&mut body).unwrap();
        let mut ack = [0u8; 64];
        let len = Repr::control(PacketType::HelloAck, &body).emit(&mut ack).unwrap();
        stream.write_all(&length_delimited(&ack[..len])).unwrap();
        // Gone before acknowledging anything.
    });
    let run = client(&[format!("tcp://{addr}")], None);
    fake.join().unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("connection lost"), "{}", run.stderr);
}

#[test]
fn no_server_there_is_one_clear_line() {
    // A port that was free a moment ago.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let udp_port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for addr in [format!("tcp://127.0.0.1:{port}"), format!("udp://127.0.0.1:{udp_port}")] {
        let run = client(&[addr.as_str()], None);
        assert_eq!(run.status.code(), Some(1), "{addr}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    }
}

#[test]
fn a_client_that_vanishes_mid_message_disturbs_no_other() {
    let mut server = ServerProc::start(&["tcp://127.0.0.1:0"]);
    let target = server.socket_addr("tcp");
    // Another client, connected throughout.
    let mut steady = framelink::std::Link::connect(server.addr("tcp")).expect("connect the steady client");
    let before = server.printed();
    steady.send(b"before").unwrap();
    steady.flush(Some(WAIT)).unwrap();

    // The vanishing client: a good handshake, then half a DATA frame, then gone.
    let mut stream = TcpStream::connect(&target).unwrap();
    stream.write_all(&length_delimited(&hello(1, 1))).unwrap();
    let ack = read_frame(&mut stream);
    assert_eq!(Repr::parse(&ack).unwrap().kind, PacketType::HelloAck);
    let mut packet = vec![0u8; 2000];
    let len = Repr::data(SeqNumber(0), None, false, &[b'x'; 1000]).emit(&mut packet).unwrap();
    let frame = length_delimited(&packet[..len]);
    stream.write_all(&frame[..frame.len() / 2]).unwrap();
    drop(stream);

    server.stderr.wait_for("the server to see the client go", |lines, _| {
        lines.iter().any(|l| l.starts_with("disconnected:") && l.contains("connection lost"))
    });
    steady.send(b"after").unwrap();
    steady.flush(Some(WAIT)).unwrap();
    steady.close().unwrap();
    let run = client(&[server.addr("tcp").as_str(), "and a new one"], None);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(server.received_after(before, 3), ["before", "after", "and a new one"]);
    server.assert_running();
}

#[test]
fn help_says_how_bytes_are_printed() {
    let output = Command::new(example("server")).arg("--help").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("lossily"));
}

/// The examples and the `framelink` tool end alike: 0 on success (`--help`), 1 after one error
/// line (a bad address, no server there), 2 for a usage error (an unknown option).
#[test]
fn exit_statuses_match_the_tool() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nobody = format!("tcp://127.0.0.1:{free}");
    let tool = |args: &[&str]| {
        let output = Command::new(common::tool::BIN).args(args).output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).lines().count())
    };
    for name in ["client", "nal_client"] {
        let run = |args: &[&str]| {
            let run = run_example(name, args, None);
            (run.status.code(), run.stderr.lines().count())
        };
        assert_eq!(run(&["--help"]).0, tool(&["send", "--help"]).0, "{name} --help");
        assert_eq!(run(&["--frobnicate"]).0, Some(2), "{name}");
        assert_eq!(tool(&["send", "--frobnicate"]).0, Some(2));
        assert_eq!(run(&["http://x:1"]), (Some(1), 1), "{name}: a bad address");
        assert_eq!(tool(&["send", "http://x:1", "hi"]), (Some(1), 1));
        assert_eq!(run(&[&nobody]), (Some(1), 1), "{name}: no server");
        assert_eq!(tool(&["send", &nobody, "hi"]), (Some(1), 1));
    }
    let server = |args: &[&str]| {
        let output = Command::new(example("server")).args(args).output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).lines().count())
    };
    assert_eq!(server(&["--frobnicate"]).0, Some(2));
    assert_eq!(tool(&["serve", "--frobnicate"]).0, Some(2));
    assert_eq!(server(&["http://x:1"]), (Some(1), 1), "a bad address");
    assert_eq!(tool(&["serve", "--listen", "http://x:1"]), (Some(1), 1));
    // An address in use: the tool's own listener holds the port.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = format!("tcp://{}", held.local_addr().unwrap());
    assert_eq!(server(&[&taken]), (Some(1), 1), "an address in use");
    assert_eq!(tool(&["serve", "--listen", &taken]), (Some(1), 1));
}
