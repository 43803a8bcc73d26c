//! The server's limits, end to end: a real `framelink serve` with short timeouts and a small
//! message limit, raw clients that break each limit, the ERROR each gets, and the counters the
//! STATS reply (`framelink info --json`) and the server's own report give afterwards.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::WAIT;
use common::tool::{BIN, Running, listener};
use framelink::core::framing::{Decoded, Decoder, Encoder, LengthDelimited, LengthDelimitedDecoder};
use framelink::core::wire::{
    Capabilities, ErrorCode, ErrorPayload, HelloPayload, PacketType, Repr, SeqNumber, VERSION,
};
use serde_json::Value;

/// `framelink serve` with short limits, on ephemeral loopback ports.
struct Serve {
    running: Running,
    tcp: String,
    udp: String,
}

impl Serve {
    fn start() -> Self {
        let running = Running::start(&[
            "serve",
            "--listen",
            "tcp://127.0.0.1:0",
            "--listen",
            "udp://127.0.0.1:0",
            "--json",
            "--handshake-timeout",
            "0.3",
            "--idle-timeout",
            "0.6",
            "--max-message",
            "1000",
        ]);
        let addrs = running.listening(2);
        let (tcp, udp) = (listener(&addrs, "tcp"), listener(&addrs, "udp"));
        Self { running, tcp, udp }
    }

    fn socket_addr(addr: &str) -> &str {
        addr.split_once("://").map_or(addr, |(_, rest)| rest)
    }

    /// Stops the server as Ctrl-C does; its JSON report.
    fn stop(self) -> Value {
        self.running.interrupt();
        self.running.finish(WAIT).ok().json()
    }
}

/// A raw TCP client speaking length-delimited frames, to break the rules on purpose.
struct RawClient {
    stream: TcpStream,
    decoder: Box<LengthDelimitedDecoder<2048>>,
    pending: Vec<u8>,
}

impl RawClient {
    fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(Serve::socket_addr(addr)).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Self { stream, decoder: Box::new(LengthDelimitedDecoder::new()), pending: Vec::new() }
    }

    fn send(&mut self, repr: &Repr<'_>) {
        let mut packet = vec![0u8; repr.buffer_len()];
        let len = repr.emit(&mut packet).unwrap();
        let mut frame = vec![0u8; len + 8];
        let n = LengthDelimited::encode(&packet[..len], &mut frame).unwrap();
        self.stream.write_all(&frame[..n]).unwrap();
    }

    fn hello(&mut self) {
        let hello = HelloPayload {
            version: VERSION,
            supports: Capabilities::NONE,
            requires: Capabilities::NONE,
            max_payload: 1024,
            window: 16,
            session_id: 0x5eed,
            max_message: 65536,
            credit: 65536,
            cookie: None,
        };
        let mut payload = [0u8; HelloPayload::LEN];
        hello.emit(&mut payload).unwrap();
        self.send(&Repr::control(PacketType::Hello, &payload));
        let (kind, _) = self.next_packet().expect("HELLO-ACK");
        assert_eq!(kind, PacketType::HelloAck);
    }

    /// The next packet's type and payload; `None` once the server closes the connection.
    fn next_packet(&mut self) -> Option<(PacketType, Vec<u8>)> {
        let mut buf = [0u8; 4096];
        loop {
            if !self.pending.is_empty() {
                let Decoded { consumed, frame } = self.decoder.decode(&self.pending);
                let frame = frame.map(|f| f.map(|p| (p.kind, p.payload.to_vec())));
                self.pending.drain(..consumed);
                match frame {
                    Some(Ok(packet)) => return Some(packet),
                    Some(Err(error)) => panic!("the server sent a bad frame: {error:?}"),
                    None if consumed > 0 => continue,
                    None => {}
                }
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                // A signal interrupted the read (EINTR): read again.
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Reads to the end of the connection; the ERROR it carried, if any.
    fn error_before_end(&mut self) -> Option<(ErrorCode, u32)> {
        let mut error = None;
        while let Some((kind, payload)) = self.next_packet() {
            if kind == PacketType::Error {
                let e = ErrorPayload::parse(&payload).expect("ERROR payload");
                error = Some((e.code, e.detail));
            }
        }
        error
    }
}

fn count(json: &Value, key: &str) -> u64 {
    json[key].as_u64().unwrap_or_else(|| panic!("`{key}` is not a count in {json}"))
}

#[test]
fn each_limit_ends_only_its_client_with_an_error_and_is_counted() {
    let serve = Serve::start();

    // Silent after connecting: dropped at the handshake timeout (no ERROR code says it).
    let mut silent = RawClient::connect(&serve.tcp);
    assert_eq!(silent.error_before_end(), None);

    // Silent after the handshake, not even answering keepalives: ERROR IdleTimeout, then closed.
    let mut idle = RawClient::connect(&serve.tcp);
    idle.hello();
    assert_eq!(idle.error_before_end(), Some((ErrorCode::IdleTimeout, 600)));

    // A message over --max-message, in fragments that each fit: ERROR MessageTooLarge.
    let mut large = RawClient::connect(&serve.tcp);
    large.hello();
    let fragment = [b'x'; 600];
    large.send(&Repr::data(SeqNumber(0), None, true, &fragment));
    large.send(&Repr::data(SeqNumber(1), None, false, &fragment));
    assert_eq!(large.error_before_end(), Some((ErrorCode::MessageTooLarge, 1000)));

    // Junk to the UDP port: dropped, counted, never answered.
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20u8 {
        junk.send_to(&[i; 40], Serve::socket_addr(&serve.udp)).unwrap();
    }
    junk.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(junk.recv_from(&mut [0u8; 64]).is_err(), "junk was answered");

    // Meanwhile a good client is served, and sees the counters in STATS.
    let out = Command::new(BIN).args(["info", "--json", &serve.tcp]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let server = &info["server"];
    assert_eq!(count(server, "clients"), 1, "only the info client is left: {server}");
    assert_eq!(count(server, "accepted"), 4, "{server}");
    assert_eq!(count(server, "handshake_timeouts"), 1, "{server}");
    assert_eq!(count(server, "idle_timeouts"), 1, "{server}");
    assert_eq!(count(server, "too_large"), 1, "{server}");
    assert_eq!(count(server, "protocol_errors"), 0, "{server}");
    assert_eq!(count(server, "stray_datagrams"), 20, "{server}");

    let report = serve.stop();
    for (key, want) in [
        ("accepted", 4),
        ("handshake_timeouts", 1),
        ("idle_timeouts", 1),
        ("too_large", 1),
        ("stray_datagrams", 20),
    ] {
        assert_eq!(count(&report, key), want, "{key} in {report}");
    }
}

#[test]
fn limits_out_of_range_are_usage_errors() {
    for args in [
        ["--idle-timeout", "0"],
        ["--handshake-timeout", "soon"],
        ["--max-message", "0"],
        ["--max-message", "2000000000"],
    ] {
        let out = Command::new(BIN).arg("serve").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
