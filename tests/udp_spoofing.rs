//! The UDP server against junk and spoofed datagrams (PROTOCOL.md 9.3 and 10.1): a HELLO
//! must prove its address with a RETRY cookie before the server keeps any state, no answer
//! before the handshake is larger than what it answers, and datagrams without the session's
//! tag (sent from the client's own address, as a spoofer would) cannot close, reset or feed
//! the session. Loopback only; every wait is bounded.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant as StdInstant};

use framelink::core::Instant;
use framelink::core::connection::Connection;
use framelink::core::framing::DatagramDecoder;
use framelink::core::framing::datagram::{TAG_LEN, session_tag};
use framelink::core::session::{Config, Event, Session};
use framelink::core::wire::{HelloPayload, Packet, PacketType, Repr, SeqNumber};
use framelink::std::{Addr, PeerInfo, Reply, Server, ServerConfig, ServerHandle, StdClock};

use common::frames::tagged;

const WAIT: Duration = Duration::from_secs(10);
const ID: u32 = 0x0BAD_CAFE;

type Udp = Connection<DatagramDecoder, Vec<u8>>;

/// An echo server on an ephemeral UDP port; its address.
fn echo_server() -> (ServerHandle, String) {
    let addrs: [Addr; 1] = ["udp://127.0.0.1:0".parse().unwrap()];
    let server = Server::bind(&addrs, ServerConfig::new()).unwrap();
    let addr = server.local_addrs()[0].to_string();
    let handle = server
        .spawn(|_: &PeerInfo, message: &[u8], reply: &mut Reply<'_>| {
            let _ = reply.send(message);
        })
        .unwrap();
    let target = addr.trim_start_matches("udp://").to_owned();
    (handle, target)
}

/// A client session over a plain UDP socket, driven by hand.
struct Client {
    socket: UdpSocket,
    framed: Udp,
    clock: StdClock,
    /// Every datagram received, in order.
    seen: Vec<Vec<u8>>,
}

impl Client {
    fn new(target: &str) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(target).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let clock = StdClock::new();
        let session =
            Session::client(Config::new().retransmit(true), ID, vec![0; 8192], vec![0; 8192], clock.now());
        let framed = Connection::new(session, DatagramDecoder::new(2048), vec![0; 2048]);
        Self { socket, framed, clock, seen: Vec::new() }
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Sends what is due, reads what comes within 20 ms, runs timers.
    fn round(&mut self) {
        let now = self.now();
        let mut out = [0u8; 2100];
        while let Ok(n @ 1..) = self.framed.poll_datagram(now, &mut out) {
            self.socket.send(&out[..n]).unwrap();
        }
        let mut buf = [0u8; 4096];
        if let Ok(n) = self.socket.recv(&mut buf) {
            self.seen.push(buf[..n].to_vec());
            self.framed.handle_bytes(self.now(), &buf[..n]);
        }
        let now = self.now();
        if self.framed.session().poll_timeout().is_some_and(|at| at <= now) {
            self.framed.session_mut().handle_timeout(now);
        }
    }

    /// Runs rounds until an event comes (at most [`WAIT`]).
    fn next_event(&mut self) -> Event<'_> {
        let until = StdInstant::now() + WAIT;
        while !self.framed.session().has_event() {
            assert!(StdInstant::now() < until, "no event within {WAIT:?}");
            self.round();
        }
        self.framed.session_mut().poll_event().unwrap()
    }

    /// Sends `datagram` from this client's own address, as a spoofer of it would.
    fn spoof(&self, datagram: &[u8]) {
        self.socket.send(datagram).unwrap();
    }
}

/// `repr` as a datagram tagged `tag`.
fn datagram(tag: u32, repr: &Repr<'_>) -> Vec<u8> {
    let mut packet = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut packet).unwrap();
    tagged(tag, &packet[..n])
}

/// `repr` as a datagram of protocol version 2 (a good CRC, so it is `BadVersion`).
fn other_version(repr: &Repr<'_>) -> Vec<u8> {
    let mut bytes = datagram(5, repr);
    let mut packet = Packet::new_unchecked(&mut bytes[TAG_LEN..]);
    packet.set_version(2);
    packet.fill_crc();
    bytes
}

fn hello(session_id: u32) -> Vec<u8> {
    let mut payload = [0u8; HelloPayload::LEN];
    let mut fields = HelloPayload::parse(&[0; HelloPayload::LEN]).unwrap();
    (fields.version, fields.max_payload, fields.window, fields.session_id) = (1, 1024, 16, session_id);
    (fields.max_message, fields.credit) = (65536, 65536);
    fields.emit(&mut payload).unwrap();
    datagram(session_id, &Repr::control(PacketType::Hello, &payload))
}

/// What arrives on `socket` within `wait`.
fn answers(socket: &UdpSocket, wait: Duration) -> Vec<Vec<u8>> {
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let until = StdInstant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while StdInstant::now() < until {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
    }
    got
}

fn kind(datagram: &[u8]) -> PacketType {
    Repr::parse(&datagram[TAG_LEN..]).unwrap().kind
}

#[test]
fn a_hello_proves_its_address_before_the_server_keeps_anything() {
    let (handle, target) = echo_server();
    // Cookie-less HELLOs from 50 addresses: each gets one RETRY, smaller than the HELLO, and
    // no session exists.
    let sockets: Vec<UdpSocket> = (0..50)
        .map(|i| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(&target).unwrap();
            socket.send(&hello(1000 + i)).unwrap();
            socket
        })
        .collect();
    for (i, socket) in (0..).zip(&sockets) {
        let got = answers(socket, Duration::from_millis(60));
        assert_eq!(got.len(), 1, "one answer to HELLO {i}");
        assert_eq!(kind(&got[0]), PacketType::Retry);
        assert_eq!(session_tag(&got[0]), Some(1000 + i));
        assert!(got[0].len() < hello(0).len(), "{} bytes for {}", got[0].len(), hello(0).len());
    }
    let stats = handle.stats();
    assert_eq!((stats.active, stats.accepted), (0, 0), "{stats:?}");

    // A packet of another version: answered only when the answer is no larger.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.connect(&target).unwrap();
    let small = other_version(&Repr::control(PacketType::CloseAck, &[]));
    stranger.send(&small).unwrap();
    assert_eq!(answers(&stranger, Duration::from_millis(200)), Vec::<Vec<u8>>::new());
    let large = other_version(&Repr::control(PacketType::Ping, &[0; 40]));
    stranger.send(&large).unwrap();
    let got = answers(&stranger, Duration::from_millis(200));
    assert_eq!(got.len(), 1);
    assert!(got[0].len() <= large.len());
    assert_eq!(kind(&got[0]), PacketType::Error);

    // A real client goes through the RETRY and is served.
    let mut client = Client::new(&target);
    assert_eq!(client.next_event(), Event::Connected);
    assert_eq!(kind(&client.seen[0]), PacketType::Retry, "the first answer is a RETRY");
    assert_eq!(kind(&client.seen[1]), PacketType::HelloAck);
    assert_eq!(handle.stats().accepted, 1);
    handle.shutdown();
}

#[test]
fn datagrams_without_the_session_tag_cannot_close_reset_or_feed_a_session() {
    let (handle, target) = echo_server();
    let mut client = Client::new(&target);
    assert_eq!(client.next_event(), Event::Connected);

    // From the client's own address, without its session id: CLOSE, ERROR, DATA, CLOSE-ACK.
    let error = [8u8, 0, 0, 0, 0, 0];
    for tag in [0, ID ^ 1, ID.rotate_left(8)] {
        client.spoof(&datagram(tag, &Repr::control(PacketType::Close, &[])));
        client.spoof(&datagram(tag, &Repr::control(PacketType::Error, &error)));
        client.spoof(&datagram(tag, &Repr::data(SeqNumber(0), None, false, b"injected")));
        client.spoof(&datagram(tag, &Repr::control(PacketType::CloseAck, &[])));
    }
    // A HELLO with a new session id and no cookie: a RETRY, and the session goes on.
    client.spoof(&hello(ID.wrapping_add(1)));

    let now = client.now();
    client.framed.session_mut().send(now, b"still mine?").unwrap();
    assert_eq!(client.next_event(), Event::Message(b"still mine?"));
    let retries = client.seen.iter().filter(|d| kind(d) == PacketType::Retry).count();
    assert_eq!(retries, 2, "one for the real HELLO, one for the spoofed one");
    let stats = handle.stats();
    assert_eq!((stats.active, stats.accepted), (1, 1), "{stats:?}");
    handle.shutdown();
}
