//! The UDP server and client over an in-memory network: handshakes through a RETRY, one peer
//! at a time, refusals, lost datagrams, and what spoofed datagrams cannot do.

use core::cell::{Cell, RefCell};
use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

use embedded_nal::UdpClientStack;

use super::*;
use crate::endpoint::Cookie;
use crate::framing::{Datagram, DatagramDecoder, datagram};
use crate::nal::UdpLink;
use crate::session::Config;
use crate::wire::{Capabilities, ErrorCode, ErrorPayload, HelloPayload, PacketType, Repr, RetryPayload};

// ---- An in-memory network of UDP sockets ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MockError;

#[derive(Default)]
struct Net {
    /// Datagrams waiting, per bound address: (from, bytes).
    queues: BTreeMap<SocketAddr, VecDeque<(SocketAddr, Vec<u8>)>>,
    next_port: u16,
    /// The next this many datagrams are lost.
    lose: usize,
}

#[derive(Clone)]
struct Mock(Rc<RefCell<Net>>);

impl Mock {
    fn new() -> Self {
        Self(Rc::new(RefCell::new(Net { next_port: 40000, ..Net::default() })))
    }

    fn net(&self) -> core::cell::RefMut<'_, Net> {
        self.0.borrow_mut()
    }

    fn deliver(&self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let mut net = self.net();
        if net.lose > 0 {
            net.lose -= 1;
        } else if let Some(queue) = net.queues.get_mut(&to) {
            queue.push_back((from, bytes.to_vec()));
        }
    }

    /// An address that receives what is sent to it (read with [`Mock::take`]).
    fn open(&self, port: u16) -> SocketAddr {
        self.net().queues.insert(local(port), VecDeque::new());
        local(port)
    }

    /// Every datagram waiting at `addr`.
    fn take(&self, addr: SocketAddr) -> Vec<Vec<u8>> {
        let mut net = self.net();
        net.queues
            .get_mut(&addr)
            .map(|queue| queue.drain(..).map(|(_, bytes)| bytes).collect())
            .unwrap_or_default()
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

#[derive(Debug, Default)]
struct Sock {
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
}

impl UdpClientStack for Mock {
    type UdpSocket = Sock;
    type Error = MockError;

    fn socket(&mut self) -> Result<Sock, MockError> {
        Ok(Sock::default())
    }

    fn connect(&mut self, socket: &mut Sock, remote: SocketAddr) -> Result<(), MockError> {
        let port = self.net().next_port;
        self.net().next_port += 1;
        *socket = Sock { local: Some(self.open(port)), remote: Some(remote) };
        Ok(())
    }

    fn send(&mut self, socket: &mut Sock, buffer: &[u8]) -> nb::Result<(), MockError> {
        let (Some(from), Some(to)) = (socket.local, socket.remote) else { return Err(MockError.into()) };
        self.deliver(from, to, buffer);
        Ok(())
    }

    fn receive(
        &mut self,
        socket: &mut Sock,
        buffer: &mut [u8],
    ) -> nb::Result<(usize, SocketAddr), MockError> {
        let addr = socket.local.ok_or(MockError)?;
        let (from, datagram) =
            self.net().queues.get_mut(&addr).and_then(VecDeque::pop_front).ok_or(nb::Error::WouldBlock)?;
        let n = datagram.len().min(buffer.len());
        buffer[..n].copy_from_slice(&datagram[..n]);
        Ok((n, from))
    }

    fn close(&mut self, socket: Sock) -> Result<(), MockError> {
        if let Some(addr) = socket.local {
            self.net().queues.remove(&addr);
        }
        Ok(())
    }
}

impl UdpFullStack for Mock {
    fn bind(&mut self, socket: &mut Sock, port: u16) -> Result<(), MockError> {
        socket.local = Some(self.open(port));
        Ok(())
    }

    fn send_to(&mut self, socket: &mut Sock, remote: SocketAddr, buffer: &[u8]) -> nb::Result<(), MockError> {
        let from = socket.local.ok_or(MockError)?;
        self.deliver(from, remote, buffer);
        Ok(())
    }
}

// ---- Clock, hooks and ends ----

/// A virtual clock shared by both ends.
#[derive(Clone, Default)]
struct VirtualClock(Rc<Cell<Instant>>);

impl Clock for VirtualClock {
    fn now(&mut self) -> Instant {
        self.0.get()
    }
}

impl VirtualClock {
    fn get(&self) -> Instant {
        self.0.get()
    }

    fn sleep_until(&self, deadline: Option<Instant>) {
        if let Some(deadline) = deadline {
            self.0.set(self.0.get().max(deadline));
        }
    }
}

/// A hook that runs `other` (the far end's round), then sleeps until the deadline if `other`
/// did nothing.
fn hook<'a>(
    clock: &'a VirtualClock,
    mut other: impl FnMut() -> bool + 'a,
) -> impl FnMut(Option<Instant>) + 'a {
    let mut calls = 0;
    move |deadline| {
        calls += 1;
        assert!(calls < 10_000, "the driver keeps waiting");
        if !other() {
            clock.sleep_until(deadline);
        }
    }
}

/// A hook that does nothing (the far end is driven by the test itself), and fails the test
/// rather than let it spin.
fn idle() -> impl FnMut(Option<Instant>) {
    let mut calls = 0;
    move |_| {
        calls += 1;
        assert!(calls < 10_000, "the test spins: nothing drives the far end");
    }
}

const MAX_PACKET: usize = 600;
const PORT: u16 = 7000;
const KEY: CookieKey = CookieKey::new([9; 16]);

type Client = UdpLink<Mock, DatagramDecoder, Vec<u8>>;
type Server = UdpServer<Mock, DatagramDecoder, Vec<u8>>;

fn config() -> Config {
    Config::new().max_payload(500)
}

fn connection(session: Session<Vec<u8>>) -> Connection<DatagramDecoder, Vec<u8>> {
    Connection::new(session, DatagramDecoder::new(MAX_PACKET), vec![0; MAX_PACKET])
}

fn bufs() -> (Vec<u8>, Vec<u8>) {
    (vec![0; MAX_PACKET + 1], vec![0; 2 * MAX_PACKET])
}

fn client_with(mock: &Mock, config: Config, id: u32, now: Instant) -> Client {
    let (rb, wb) = bufs();
    let connection = connection(Session::client(config, id, vec![0; 4096], vec![0; 4096], now));
    UdpLink::open(mock.clone(), local(PORT), connection, rb, wb).unwrap()
}

fn client(mock: &Mock, id: u32, now: Instant) -> Client {
    client_with(mock, config(), id, now)
}

fn server_with(mock: &Mock, config: Config) -> Server {
    let (rb, wb) = bufs();
    let connection = connection(Session::server(config, vec![0; 4096], vec![0; 4096], Instant::ZERO));
    UdpServer::bind(mock.clone(), PORT, KEY, connection, rb, wb).unwrap()
}

fn server(mock: &Mock) -> Server {
    server_with(mock, config())
}

/// One round of the server at the clock's time, as a hook runs it.
fn server_round(server: &mut Server, clock: &VirtualClock) -> bool {
    server.link_mut().conn().set_now(clock.get());
    server.link_mut().poll(clock.get(), &mut idle()).unwrap()
}

/// Sends the client's HELLO (unless it went already) and waits for the server's `Connected`, driving the client through
/// the RETRY from the server's hook.
fn accept(server: &mut Server, client: &mut Client, clock: &VirtualClock) {
    let mut c = clock.clone();
    client.poll(clock.get(), &mut idle()).unwrap(); // HELLO
    let mut client_round = || client.poll(clock.get(), &mut idle()).unwrap();
    assert_eq!(server.next_event(&mut c, &mut hook(clock, &mut client_round)).unwrap(), Event::Connected);
}

/// A HELLO datagram, as a client of another implementation would make it.
fn hello(version: u8, session_id: u32, cookie: Option<Cookie>) -> Vec<u8> {
    let hello = HelloPayload {
        version,
        supports: Capabilities::NONE,
        requires: Capabilities::NONE,
        max_payload: 500,
        window: 4,
        session_id,
        max_message: 500,
        credit: 4096,
        cookie,
    };
    let (mut payload, mut packet, mut frame) = ([0u8; 30], [0u8; 64], [0u8; 64]);
    let len = hello.emit(&mut payload).unwrap();
    let n = Repr::control(PacketType::Hello, &payload[..len]).emit(&mut packet).unwrap();
    let n = Datagram::encode_tagged(session_id, &packet[..n], &mut frame).unwrap();
    frame[..n].to_vec()
}

/// A control packet as a datagram tagged `tag`.
fn control(kind: PacketType, payload: &[u8], tag: u32) -> Vec<u8> {
    let (mut packet, mut frame) = ([0u8; 64], [0u8; 64]);
    let n = Repr::control(kind, payload).emit(&mut packet).unwrap();
    let n = Datagram::encode_tagged(tag, &packet[..n], &mut frame).unwrap();
    frame[..n].to_vec()
}

fn parse(datagram: &[u8]) -> Repr<'_> {
    Repr::parse(&datagram[datagram::TAG_LEN..]).unwrap()
}

// ---- Tests ----

#[test]
fn handshake_through_a_retry_messages_and_the_next_peer() {
    let mock = Mock::new();
    let clock = VirtualClock::default();
    let mut c = clock.clone();
    let mut server = server(&mock);
    for id in [1, 2] {
        let mut client = client(&mock, id, clock.get());
        accept(&mut server, &mut client, &clock);
        assert!(server.peer().is_some());
        client.connect(&mut c, &mut idle()).unwrap();
        client.send(&mut c, b"ping", &mut idle()).unwrap();
        assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Message(b"ping"));
        server.send(&mut c, b"pong", &mut idle()).unwrap();
        assert_eq!(client.next_event(&mut c, &mut idle()).unwrap(), Event::Message(b"pong"));
        let mut round = || server_round(&mut server, &clock);
        client.close(&mut c, &mut hook(&clock, &mut round)).unwrap();
        assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Closed(CloseReason::Peer));
        server_round(&mut server, &clock);
        assert_eq!(server.peer(), None);
        client.release().unwrap();
    }
    let counters = server.counters();
    assert_eq!((counters.retries, counters.busy, counters.stray), (2, 0, 0), "{counters:?}");
}

#[test]
fn a_second_peer_gets_a_retry_then_busy_and_strangers_are_dropped() {
    let mock = Mock::new();
    let clock = VirtualClock::default();
    let mut c = clock.clone();
    let mut server = server(&mock);
    let mut first = client(&mock, 1, Instant::ZERO);
    accept(&mut server, &mut first, &clock);
    first.connect(&mut c, &mut idle()).unwrap();
    let peer = server.peer().unwrap();

    let mut second = client(&mock, 2, Instant::ZERO);
    let mut round = || server_round(&mut server, &clock);
    let refused = second.connect(&mut c, &mut hook(&clock, &mut round));
    assert_eq!(refused, Err(Error::Closed(CloseReason::PeerError { code: ErrorCode::Busy, detail: 1 })));
    mock.deliver(local(1), local(PORT), b"garbage");
    first.send(&mut c, b"still here", &mut idle()).unwrap();
    assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Message(b"still here"));
    let counters = server.counters();
    assert_eq!((counters.retries, counters.busy, counters.stray), (2, 1, 1), "{counters:?}");
    assert_eq!(server.peer(), Some(peer));
}

#[test]
fn a_client_drops_datagrams_from_strangers() {
    let mock = Mock::new();
    let clock = VirtualClock::default();
    let mut c = clock.clone();
    let mut server = server(&mock);
    let mut client = client(&mock, 1, Instant::ZERO);
    client.poll(Instant::ZERO, &mut idle()).unwrap(); // HELLO
    // A valid packet from another address arrives before the server's RETRY.
    let client_addr = local(mock.net().next_port - 1);
    let mut packet = [0u8; 64];
    let n = Repr::control(PacketType::Ping, &[0; 12]).emit(&mut packet).unwrap();
    mock.deliver(local(9), client_addr, &packet[..n]);
    accept(&mut server, &mut client, &clock);
    assert_eq!(server.peer(), Some(client_addr));
    client.connect(&mut c, &mut idle()).unwrap();
    assert_eq!(client.conn().ignored(), 1);
    assert_eq!(client.session().stats().packets_received, 2, "the RETRY and the HELLO-ACK");
}

#[test]
fn a_session_that_never_connected_is_not_reported() {
    let mock = Mock::new();
    let clock = VirtualClock::default();
    let mut c = clock.clone();
    let mut server = server(&mock);
    // Nobody comes for a minute: the first session's handshake timer runs out.
    clock.0.set(Instant::from_millis(60_000));
    server_round(&mut server, &clock);
    assert!(server.session().is_closed());
    // A HELLO of another version: a RETRY first (tagged like the HELLO), then, with its
    // cookie, refused with ERROR by the session, which never connected.
    let stranger = mock.open(3);
    mock.deliver(stranger, local(PORT), &hello(99, 77, None));
    server_round(&mut server, &clock);
    let answers = mock.take(stranger);
    assert_eq!(answers.len(), 1);
    assert_eq!(datagram::session_tag(&answers[0]), Some(77), "the answer carries the HELLO's tag");
    let retry = parse(&answers[0]);
    assert_eq!(retry.kind, PacketType::Retry);
    let cookie = RetryPayload::parse(retry.payload).unwrap().cookie;
    mock.deliver(stranger, local(PORT), &hello(99, 77, Some(cookie)));
    server_round(&mut server, &clock);
    let answers = mock.take(stranger);
    assert_eq!(answers.len(), 1);
    let error = parse(&answers[0]);
    assert_eq!(error.kind, PacketType::Error);
    assert_eq!(ErrorPayload::parse(error.payload).unwrap().code, ErrorCode::VersionMismatch);
    assert_eq!(server.peer(), None, "forgotten once the ERROR went out");
    // Neither end is reported: the first event is the real peer's Connected.
    let mut client = client(&mock, 5, clock.get());
    accept(&mut server, &mut client, &clock);
    assert_eq!(server.peer(), Some(local(mock.net().next_port - 1)));
    client.connect(&mut c, &mut idle()).unwrap();
}

#[test]
fn the_server_waits_with_no_deadline_when_nobody_is_there() {
    let mock = Mock::new();
    let clock = VirtualClock::default();
    let mut c = clock.clone();
    let mut server = server(&mock);
    let mut deadlines = Vec::new();
    let mut client: Option<Client> = None;
    let mut wait = |deadline: Option<Instant>| {
        deadlines.push(deadline);
        clock.sleep_until(deadline);
        match &mut client {
            // Only now does a client come along.
            None if deadline.is_none() => client = Some(self::client(&mock, 3, clock.get())),
            None => return,
            Some(_) => {}
        }
        client.as_mut().unwrap().poll(clock.get(), &mut idle()).unwrap();
    };
    assert_eq!(server.next_event(&mut c, &mut wait).unwrap(), Event::Connected);
    assert_eq!(deadlines[..2], [Some(Instant::from_millis(10_000)), None]);
    assert!(client.is_some());
}

#[test]
fn timers_run_through_the_hook_and_recover_lost_datagrams() {
    let mock = Mock::new();
    let clock = VirtualClock::default();
    let mut c = clock.clone();
    let reliable = config().retransmit(true);
    let mut server = server_with(&mock, reliable);
    let mut client = client_with(&mock, reliable, 9, Instant::ZERO);
    // The first HELLO is lost: the client's retransmission timer sends it again.
    mock.net().lose = 1;
    let mut round = || server_round(&mut server, &clock);
    client.connect(&mut c, &mut hook(&clock, &mut round)).unwrap();
    assert!(clock.get() >= Instant::from_millis(1000), "HELLO resent after the initial RTO");
    assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Connected);
    // A DATA packet is lost: the server waits, the client's timer resends it.
    mock.net().lose = 1;
    client.send(&mut c, b"lost once", &mut idle()).unwrap();
    let started = clock.get();
    let mut client_round = || {
        let progress = client.poll(clock.get(), &mut idle()).unwrap();
        // Nothing came: sleep until the client's deadline (its retransmission timer).
        if let (false, Some(deadline)) = (progress, client.session().poll_timeout()) {
            clock.0.set(clock.get().max(deadline.min(clock.get() + Duration::from_secs(1))));
        }
        true
    };
    assert_eq!(
        server.next_event(&mut c, &mut hook(&clock, &mut client_round)).unwrap(),
        Event::Message(b"lost once")
    );
    assert!(clock.get() > started, "the message came back only after a timeout");
    assert_eq!(client.session().stats().retransmits, 1);
}

#[test]
fn spoofed_datagrams_neither_start_nor_close_nor_restart_a_session() {
    let mock = Mock::new();
    let clock = VirtualClock::default();
    let mut c = clock.clone();
    let mut server = server(&mock);
    // Cookie-less HELLOs from 5 addresses: a RETRY each, smaller than the HELLO, and no peer.
    for port in 100..105 {
        let from = mock.open(port);
        let sent = hello(1, port.into(), None);
        mock.deliver(from, local(PORT), &sent);
        server_round(&mut server, &clock);
        let answers = mock.take(from);
        assert_eq!(answers.len(), 1);
        assert_eq!(parse(&answers[0]).kind, PacketType::Retry);
        assert!(answers[0].len() < sent.len());
        assert_eq!(server.peer(), None);
    }
    let mut client = client(&mock, 0x0BAD_CAFE, Instant::ZERO);
    accept(&mut server, &mut client, &clock);
    client.connect(&mut c, &mut idle()).unwrap();
    let client_addr = server.peer().unwrap();
    // From the client's own address, without its session tag: CLOSE, ERROR; then a HELLO with
    // a new session id and no cookie.
    let error = [8u8, 0, 0, 0, 0, 0];
    for tag in [0, 0x0BAD_CAFE ^ 1] {
        mock.deliver(client_addr, local(PORT), &control(PacketType::Close, &[], tag));
        mock.deliver(client_addr, local(PORT), &control(PacketType::Error, &error, tag));
    }
    mock.deliver(client_addr, local(PORT), &hello(1, 0x0BAD_CAFE + 1, None));
    client.send(&mut c, b"still mine?", &mut idle()).unwrap();
    assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Message(b"still mine?"));
    assert_eq!(server.peer(), Some(client_addr));
    assert_eq!(server.counters().retries, 5 + 1 + 1);
}

#[test]
fn a_repeated_close_gets_its_close_ack_after_the_session_ended() {
    let mock = Mock::new();
    let clock = VirtualClock::default();
    let mut c = clock.clone();
    let mut server = server(&mock);
    // A peer of another implementation, by hand.
    let peer = mock.open(50);
    mock.deliver(peer, local(PORT), &hello(1, 42, None));
    server_round(&mut server, &clock);
    let cookie = RetryPayload::parse(parse(&mock.take(peer)[0]).payload).unwrap().cookie;
    mock.deliver(peer, local(PORT), &hello(1, 42, Some(cookie)));
    assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Connected);
    assert_eq!(parse(&mock.take(peer)[0]).kind, PacketType::HelloAck);
    let close = control(PacketType::Close, &[], 42);
    mock.deliver(peer, local(PORT), &close);
    assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Closed(CloseReason::Peer));
    server_round(&mut server, &clock);
    assert_eq!(server.peer(), None);
    // The CLOSE-ACK was lost; the CLOSE comes again: the endpoint answers it.
    assert_eq!(parse(&mock.take(peer)[0]).kind, PacketType::CloseAck);
    mock.deliver(peer, local(PORT), &close);
    server_round(&mut server, &clock);
    let answers = mock.take(peer);
    assert_eq!(answers.len(), 1);
    assert_eq!(parse(&answers[0]).kind, PacketType::CloseAck);
    assert_eq!(datagram::session_tag(&answers[0]), Some(42));
}
