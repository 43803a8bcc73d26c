//! The same scenarios through every driver: the core's blocking `io` loop, its async loop, its
//! embedded-nal loop (through `framelink_std::nal` on std-embedded-nal sockets) and
//! framelink-std's `Link`. Each client runs over a loopback TCP connection (length-delimited
//! framing) or, for the drivers that speak UDP, a loopback UDP socket (datagram framing),
//! against a far end scripted by hand from a `Connection`, and every driver must report the
//! same results and the same close reason.
//!
//! Loopback only; every wait is bounded (the far end gives up after `FAR_END_LIMIT`, the
//! sessions' own timers bound the clients).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use embassy_futures::block_on;
use framelink::core::Instant;
use framelink::core::connection::Connection;
use framelink::core::driver::Error;
use framelink::core::embedded_io::{self, ErrorKind, ErrorType, ReadReady};
use framelink::core::embedded_io_async;
use framelink::core::framing::{DatagramDecoder, Encoder, Framing, LengthDelimited, LengthDelimitedDecoder};
use framelink::core::io::IoLink;
use framelink::core::io_async::{AsyncLink, Sleep};
use framelink::core::session::{CloseReason, Config, Event, Session, Timeout};
use framelink::core::wire::{ErrorCode, MAX_PACKET, Repr, SeqNumber};
use framelink::std::{Addr, Link, LinkConfig, LinkError, LinkEvent, StdClock, Transport, nal};

/// How long the far end serves before it gives up on the client.
const FAR_END_LIMIT: Duration = Duration::from_secs(10);
/// The client's idle timeout where the scenario waits for it.
const SHORT_IDLE: Duration = Duration::from_millis(300);
const BUFFER: usize = 64 * 1024;

type Ld = LengthDelimitedDecoder<MAX_PACKET>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// The client sends a message and closes.
    ClientCloses,
    /// The far end sends a message and closes.
    PeerCloses,
    /// The far end answers HELLO with ERROR Busy.
    Refused,
    /// The far end goes silent; the client's idle timer ends the session.
    IdleTimeout,
    /// The far end (asking for retransmission) stops acknowledging what the client sends.
    DeadLink,
    /// The far end's TCP connection is reset.
    Reset,
    /// The far end writes half a frame and closes its connection.
    VanishesMidFrame,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario::ClientCloses,
    Scenario::PeerCloses,
    Scenario::Refused,
    Scenario::IdleTimeout,
    Scenario::DeadLink,
    Scenario::Reset,
    Scenario::VanishesMidFrame,
];

/// What one driver call gave, in terms every driver shares.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Done,
    Message(Vec<u8>),
    Closed(CloseReason),
    /// The call failed: the session ended for this reason.
    Ended(CloseReason),
    /// The call failed: the transport ended before the session did.
    Lost,
    /// Any other failure, as text.
    Failed(String),
}

/// Makes a client of one driver, connected to the far end at an address.
type MakeDriver = fn(SocketAddr, Scenario) -> Result<Box<dyn Driver>, Step>;

/// One driver, as the scenarios use it.
trait Driver {
    fn connect(&mut self) -> Step;
    fn send(&mut self, message: &[u8]) -> Step;
    fn next_event(&mut self) -> Step;
    fn close(&mut self) -> Step;
}

/// The settings every client gets, as a core `Config` and as a `LinkConfig`.
fn client_settings(scenario: Scenario) -> (Config, LinkConfig) {
    let idle = if scenario == Scenario::IdleTimeout { SHORT_IDLE } else { Duration::from_secs(5) };
    let (handshake, close, keepalive) =
        (Duration::from_secs(5), Duration::from_secs(5), Duration::from_secs(3));
    let config = Config::new()
        .max_payload(u16::MAX)
        .max_message(BUFFER as u32 / 2)
        .idle_timeout(idle)
        .keepalive(keepalive)
        .handshake_timeout(handshake)
        .close_timeout(close)
        .max_retransmits(3);
    let link = LinkConfig::new()
        .max_message(BUFFER as u32 / 2)
        .idle_timeout(idle)
        .keepalive(keepalive)
        .handshake_timeout(handshake)
        .close_timeout(close)
        .max_retransmits(3);
    (config, link)
}

/// Runs `scenario` with a client from `driver` against a fresh far end over `transport`;
/// returns what the client saw and what the far end saw.
fn run(transport: Transport, scenario: Scenario, driver: MakeDriver) -> (Vec<Step>, Vec<Step>) {
    let (done_tx, done_rx) = mpsc::channel();
    let (addr, far) = match transport {
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let far = thread::spawn(move || {
                let (stream, _) = listener.accept().unwrap();
                stream.set_nodelay(true).unwrap();
                stream.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
                far_end(Wire::Tcp(stream), Ld::new(), scenario, &done_rx)
            });
            (addr, far)
        }
        _ => {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
            let addr = socket.local_addr().unwrap();
            let decoder = DatagramDecoder::new(MAX_PACKET);
            (addr, thread::spawn(move || far_end(Wire::Udp(socket, None), decoder, scenario, &done_rx)))
        }
    };
    let mut seen = Vec::new();
    match driver(addr, scenario) {
        Err(step) => seen.push(step),
        Ok(mut client) => {
            seen.push(client.connect());
            if seen[0] == Step::Done {
                client_script(&mut *client, scenario, &mut seen);
            }
        }
    }
    let _ = done_tx.send(());
    (seen, far.join().unwrap())
}

/// The client's part of each scenario.
fn client_script(client: &mut dyn Driver, scenario: Scenario, seen: &mut Vec<Step>) {
    match scenario {
        Scenario::ClientCloses => {
            seen.push(client.send(b"Hello, Server!"));
            seen.push(client.close());
        }
        Scenario::PeerCloses | Scenario::IdleTimeout | Scenario::VanishesMidFrame => {
            for _ in 0..3 {
                seen.push(client.next_event());
            }
        }
        Scenario::DeadLink | Scenario::Reset => {
            seen.push(client.send(b"anyone?"));
            seen.push(client.next_event());
            seen.push(client.next_event());
        }
        Scenario::Refused => {}
    }
}

/// What every driver must report for `scenario`, and what the far end must see.
fn expected(scenario: Scenario) -> (Vec<Step>, Vec<Step>) {
    use Step::*;
    let idle = CloseReason::TimedOut(Timeout::Idle);
    let dead = CloseReason::TimedOut(Timeout::DeadLink);
    let busy = CloseReason::PeerError { code: ErrorCode::Busy, detail: 1 };
    match scenario {
        Scenario::ClientCloses => {
            (vec![Done, Done, Done], vec![Message(b"Hello, Server!".to_vec()), Closed(CloseReason::Peer)])
        }
        Scenario::PeerCloses => (
            vec![Done, Message(b"bye".to_vec()), Closed(CloseReason::Peer), Ended(CloseReason::Peer)],
            vec![Closed(CloseReason::Local)],
        ),
        Scenario::Refused => (vec![Ended(busy)], vec![]),
        Scenario::IdleTimeout => (vec![Done, Closed(idle), Ended(idle), Ended(idle)], vec![]),
        Scenario::DeadLink => (vec![Done, Done, Closed(dead), Ended(dead)], vec![]),
        Scenario::Reset => (vec![Done, Done, Lost, Lost], vec![]),
        Scenario::VanishesMidFrame => (vec![Done, Lost, Lost, Lost], vec![]),
    }
}

#[test]
fn every_stream_driver_reports_every_scenario_alike() {
    let drivers: [(&str, MakeDriver); 4] =
        [("io", io_driver), ("io_async", async_driver), ("nal", nal_driver), ("std Link", link_driver)];
    check(Transport::Tcp, &SCENARIOS, &drivers);
}

#[test]
fn every_datagram_driver_reports_every_scenario_alike() {
    // A datagram socket has no connection to reset or to end mid-frame.
    let scenarios = &SCENARIOS[..5];
    assert!(!scenarios.contains(&Scenario::Reset) && !scenarios.contains(&Scenario::VanishesMidFrame));
    check(Transport::Udp, scenarios, &[("nal", nal_udp_driver), ("std Link", link_udp_driver)]);
}

/// Runs every scenario through every driver; fails listing every difference.
fn check(transport: Transport, scenarios: &[Scenario], drivers: &[(&str, MakeDriver)]) {
    let mut failures = Vec::new();
    for &scenario in scenarios {
        let (client, far) = expected(scenario);
        for &(name, driver) in drivers {
            let (seen, far_seen) = run(transport, scenario, driver);
            if seen != client || far_seen != far {
                failures.push(format!(
                    "{name}, {scenario:?}:\n  client {seen:?}\n  wanted {client:?}\n  far end {far_seen:?}\n  wanted {far:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- The far end: a server session driven by hand over a blocking socket ----

/// The far end's socket: a TCP connection, or a UDP socket answering whoever spoke last.
enum Wire {
    Tcp(TcpStream),
    Udp(UdpSocket, Option<SocketAddr>),
}

/// What one read got.
enum Got {
    Bytes(usize),
    Nothing,
    /// The client's end of the connection is gone.
    Gone,
}

impl Wire {
    /// One read, waiting at most 5 ms.
    fn read(&mut self, buf: &mut [u8]) -> Got {
        let quiet = |e: &io::Error| matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
        match self {
            Self::Tcp(stream) => match stream.read(buf) {
                Ok(0) => Got::Gone,
                Ok(n) => Got::Bytes(n),
                Err(e) if quiet(&e) => Got::Nothing,
                Err(_) => Got::Gone,
            },
            Self::Udp(socket, peer) => match socket.recv_from(buf) {
                Ok((n, from)) => {
                    *peer = Some(from);
                    Got::Bytes(n)
                }
                Err(_) => Got::Nothing,
            },
        }
    }

    /// Writes `bytes` whole (one datagram over UDP); false if the client is gone.
    fn write(&mut self, bytes: &[u8]) -> bool {
        match self {
            Self::Tcp(stream) => stream.write_all(bytes).is_ok(),
            Self::Udp(socket, peer) => peer.is_some_and(|peer| socket.send_to(bytes, peer).is_ok()),
        }
    }
}

fn far_end<F: Framing>(
    mut wire: Wire,
    decoder: F,
    scenario: Scenario,
    done: &mpsc::Receiver<()>,
) -> Vec<Step> {
    let clock = StdClock::new();
    let config = Config::new()
        .max_payload(u16::MAX)
        .retransmit(scenario == Scenario::DeadLink)
        .idle_timeout(FAR_END_LIMIT)
        .keepalive(FAR_END_LIMIT / 2);
    let session = Session::server(config, vec![0; BUFFER], vec![0; BUFFER], clock.now());
    let mut far = Connection::new(session, decoder, Vec::new());
    let mut seen = Vec::new();
    let until = StdInstant::now() + FAR_END_LIMIT;
    // The handshake: up to the client's HELLO, answered unless the scenario refuses it.
    while far.session().peer().is_none() && StdInstant::now() < until {
        if !pump(&mut far, &mut wire, &clock, scenario != Scenario::Refused) {
            return seen;
        }
    }
    match scenario {
        Scenario::Refused => {
            far.session_mut().abort(ErrorCode::Busy, 1);
            transmit(&mut far, &mut wire, &clock);
        }
        Scenario::ClientCloses | Scenario::PeerCloses => {
            if scenario == Scenario::PeerCloses {
                far.session_mut().send(clock.now(), b"bye").unwrap();
                far.session_mut().close(clock.now());
            }
            while StdInstant::now() < until && pump(&mut far, &mut wire, &clock, true) {
                while let Some(Ok(event)) = far.next_event() {
                    match event {
                        Event::Message(message) => seen.push(Step::Message(message.to_vec())),
                        Event::Closed(reason) => seen.push(Step::Closed(reason)),
                        _ => {}
                    }
                }
                if far.close_reason().is_some() {
                    transmit(&mut far, &mut wire, &clock);
                    break;
                }
            }
        }
        // The HELLO-ACK went out; then nothing more.
        Scenario::IdleTimeout | Scenario::DeadLink => {}
        Scenario::Reset => {
            // Closing a socket with unread bytes resets the connection: wait for the client's
            // message, leave it unread, close.
            if let Wire::Tcp(stream) = &wire {
                stream.set_read_timeout(Some(FAR_END_LIMIT)).unwrap();
                let _ = stream.peek(&mut [0u8; 1]);
            }
            return seen;
        }
        Scenario::VanishesMidFrame => {
            let mut packet = [0u8; 64];
            let len = Repr::data(SeqNumber(0), None, false, b"cut short").emit(&mut packet).unwrap();
            let mut frame = [0u8; 80];
            let framed = LengthDelimited::encode(&packet[..len], &mut frame).unwrap();
            if let Wire::Tcp(stream) = &mut wire {
                let _ = stream.write_all(&frame[..framed / 2]);
                let _ = stream.shutdown(Shutdown::Write);
            }
        }
    }
    silent_until_done(&mut wire, done);
    seen
}

/// Writes what is due, reads what comes within 5 ms and, if `answer`, writes what that made
/// due. Returns false when the client's end of the connection is gone.
fn pump<F: Framing>(
    far: &mut Connection<F, Vec<u8>>,
    wire: &mut Wire,
    clock: &StdClock,
    answer: bool,
) -> bool {
    if answer {
        transmit(far, wire, clock);
    }
    let mut buf = vec![0u8; 65536];
    match wire.read(&mut buf) {
        Got::Bytes(n) => far.handle_bytes(clock.now(), &buf[..n]),
        Got::Nothing => {}
        Got::Gone => return false,
    }
    far.handle_timeout(clock.now());
    if answer {
        transmit(far, wire, clock);
    }
    true
}

/// Sends what the far end has to send: frames for one write, or one datagram at a time.
fn transmit<F: Framing>(far: &mut Connection<F, Vec<u8>>, wire: &mut Wire, clock: &StdClock) {
    let mut out = vec![0u8; far.max_frame()];
    loop {
        let written = match wire {
            Wire::Tcp(_) => far.poll_transmit(clock.now(), &mut out),
            Wire::Udp(..) => far.poll_datagram(clock.now(), &mut out),
        };
        match written {
            Ok(n @ 1..) if wire.write(&out[..n]) => {}
            _ => return,
        }
    }
}

/// Keeps the far end's socket open, reading and dropping what comes, until the client is done
/// or has closed its end.
fn silent_until_done(wire: &mut Wire, done: &mpsc::Receiver<()>) {
    let until = StdInstant::now() + FAR_END_LIMIT;
    let mut sink = vec![0u8; 65536];
    while StdInstant::now() < until && done.try_recv().is_err() {
        if let Got::Gone = wire.read(&mut sink) {
            return;
        }
    }
}

// ---- The drivers ----

/// A core driver error as a step.
fn core_step<E: core::fmt::Debug>(result: Result<(), Error<E>>) -> Step {
    match result {
        Ok(()) => Step::Done,
        Err(Error::Closed(reason)) => Step::Ended(reason),
        Err(Error::ConnectionLost) => Step::Lost,
        Err(other) => Step::Failed(format!("{other:?}")),
    }
}

fn core_event<E: core::fmt::Debug>(result: Result<Event<'_>, Error<E>>) -> Step {
    match result {
        Ok(Event::Message(message)) => Step::Message(message.to_vec()),
        Ok(Event::Closed(reason)) => Step::Closed(reason),
        Ok(other) => Step::Failed(format!("{other:?}")),
        Err(error) => core_step(Err(error)),
    }
}

/// A std link error as a step: a refused handshake is the end of the session like any other.
fn link_step(result: Result<(), LinkError>) -> Step {
    match result {
        Ok(()) => Step::Done,
        Err(LinkError::Closed(reason) | LinkError::Refused(reason)) => Step::Ended(reason),
        Err(LinkError::ConnectionLost) => Step::Lost,
        Err(other) => Step::Failed(other.to_string()),
    }
}

fn client_connection(scenario: Scenario, clock: &StdClock) -> Connection<Ld, Vec<u8>> {
    let (config, _) = client_settings(scenario);
    let session = Session::client(config, 0x5eed, vec![0; BUFFER], vec![0; BUFFER], clock.now());
    Connection::new(session, Ld::new(), Vec::new())
}

fn write_buf() -> Vec<u8> {
    vec![0; LengthDelimited::max_encoded_len(MAX_PACKET)]
}

/// A std TCP stream as an embedded-io stream (non-blocking, so `read_ready` can peek).
struct Stream(TcpStream);

#[derive(Debug)]
struct StreamError(io::ErrorKind);

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for StreamError {}

impl embedded_io::Error for StreamError {
    fn kind(&self) -> ErrorKind {
        match self.0 {
            io::ErrorKind::ConnectionReset => ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted => ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe => ErrorKind::BrokenPipe,
            io::ErrorKind::NotConnected => ErrorKind::NotConnected,
            _ => ErrorKind::Other,
        }
    }
}

impl ErrorType for Stream {
    type Error = StreamError;
}

impl Stream {
    fn connect(addr: SocketAddr) -> Result<Self, Step> {
        let stream = TcpStream::connect(addr).map_err(|e| Step::Failed(e.to_string()))?;
        stream.set_nonblocking(true).map_err(|e| Step::Failed(e.to_string()))?;
        Ok(Self(stream))
    }

    /// One non-blocking read: `None` when nothing is there.
    fn try_read(&mut self, buf: &mut [u8]) -> Option<Result<usize, StreamError>> {
        match self.0.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            other => Some(other.map_err(|e| StreamError(e.kind()))),
        }
    }
}

impl ReadReady for Stream {
    fn read_ready(&mut self) -> Result<bool, StreamError> {
        match self.0.peek(&mut [0u8; 1]) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            // The end of the stream or an error: the read reports it.
            _ => Ok(true),
        }
    }
}

impl embedded_io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        loop {
            if let Some(result) = self.try_read(buf) {
                return result;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl embedded_io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(1)),
                other => return other.map_err(|e| StreamError(e.kind())),
            }
        }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}

impl embedded_io_async::Read for Stream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        core::future::poll_fn(|cx| match self.try_read(buf) {
            Some(result) => core::task::Poll::Ready(result),
            None => {
                thread::sleep(Duration::from_millis(1));
                cx.waker().wake_by_ref();
                core::task::Poll::Pending
            }
        })
        .await
    }
}

impl embedded_io_async::Write for Stream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, StreamError> {
        embedded_io::Write::write(self, buf)
    }

    async fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}

/// Waits for the idle hook's deadline 1 ms at a time (the stream cannot be waited on).
fn nap(clock: StdClock) -> impl FnMut(Option<Instant>) {
    move |deadline| {
        let left = deadline.map(|d| clock.to_std(d).saturating_duration_since(StdInstant::now()));
        thread::sleep(left.map_or(Duration::from_millis(1), |left| left.min(Duration::from_millis(1))));
    }
}

struct Io(IoLink<Stream, Ld, Vec<u8>>, StdClock);

fn io_driver(addr: SocketAddr, scenario: Scenario) -> Result<Box<dyn Driver>, Step> {
    let clock = StdClock::new();
    let connection = client_connection(scenario, &clock);
    Ok(Box::new(Io(IoLink::new(Stream::connect(addr)?, connection, vec![0; 4096], write_buf()), clock)))
}

impl Driver for Io {
    fn connect(&mut self) -> Step {
        let clock = self.1;
        core_step(self.0.connect(&mut || clock.now(), nap(clock)))
    }
    fn send(&mut self, message: &[u8]) -> Step {
        let clock = self.1;
        core_step(self.0.send(&mut || clock.now(), message, nap(clock)))
    }
    fn next_event(&mut self) -> Step {
        let clock = self.1;
        core_event(self.0.next_event(&mut || clock.now(), nap(clock)))
    }
    fn close(&mut self) -> Step {
        let clock = self.1;
        core_step(self.0.close(&mut || clock.now(), nap(clock)))
    }
}

/// Sleeps until a deadline on the std clock, 1 ms at a time.
struct StdSleep(StdClock);

impl Sleep for StdSleep {
    fn until(&mut self, deadline: Instant) -> impl Future<Output = ()> {
        let at = self.0.to_std(deadline);
        core::future::poll_fn(move |cx| {
            if StdInstant::now() >= at {
                return core::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            core::task::Poll::Pending
        })
    }
}

struct Async(AsyncLink<Stream, Ld, Vec<u8>>, StdClock);

fn async_driver(addr: SocketAddr, scenario: Scenario) -> Result<Box<dyn Driver>, Step> {
    let clock = StdClock::new();
    let connection = client_connection(scenario, &clock);
    Ok(Box::new(Async(AsyncLink::new(Stream::connect(addr)?, connection, vec![0; 4096], write_buf()), clock)))
}

impl Driver for Async {
    fn connect(&mut self) -> Step {
        let clock = self.1;
        core_step(block_on(self.0.connect(&mut || clock.now(), &mut StdSleep(clock))))
    }
    fn send(&mut self, message: &[u8]) -> Step {
        let clock = self.1;
        core_step(block_on(self.0.send(&mut || clock.now(), message, &mut StdSleep(clock))))
    }
    fn next_event(&mut self) -> Step {
        let clock = self.1;
        core_event(block_on(self.0.next_event(&mut || clock.now(), &mut StdSleep(clock))))
    }
    fn close(&mut self) -> Step {
        let clock = self.1;
        core_step(block_on(self.0.close(&mut || clock.now(), &mut StdSleep(clock))))
    }
}

fn addr_of(scheme: &str, addr: SocketAddr) -> Addr {
    format!("{scheme}://{addr}").parse().unwrap()
}

/// The nal driver connects (and shakes hands) when it is made: its `connect` reports that.
struct Nal(Result<nal::NalLink, Option<LinkError>>);

fn nal_driver(addr: SocketAddr, scenario: Scenario) -> Result<Box<dyn Driver>, Step> {
    let (_, config) = client_settings(scenario);
    Ok(Box::new(Nal(nal::connect(addr_of("tcp", addr), &config).map_err(Some))))
}

fn nal_udp_driver(addr: SocketAddr, scenario: Scenario) -> Result<Box<dyn Driver>, Step> {
    let (_, config) = client_settings(scenario);
    Ok(Box::new(Nal(nal::connect(addr_of("udp", addr), &config).map_err(Some))))
}

impl Nal {
    fn link(&mut self) -> &mut nal::NalLink {
        self.0.as_mut().unwrap_or_else(|_| panic!("the nal link did not connect"))
    }
}

impl Driver for Nal {
    fn connect(&mut self) -> Step {
        match &mut self.0 {
            Ok(_) => Step::Done,
            Err(error) => link_step(Err(error.take().unwrap())),
        }
    }
    fn send(&mut self, message: &[u8]) -> Step {
        link_step(self.link().send(message))
    }
    fn next_event(&mut self) -> Step {
        match self.link().next_event() {
            Ok(Event::Message(message)) => Step::Message(message.to_vec()),
            Ok(Event::Closed(reason)) => Step::Closed(reason),
            Ok(other) => Step::Failed(format!("{other:?}")),
            Err(error) => link_step(Err(error)),
        }
    }
    fn close(&mut self) -> Step {
        link_step(self.link().close())
    }
}

/// The std link connects (and shakes hands) when it is made: its `connect` reports that.
struct StdLink(Option<Result<Link, LinkError>>);

fn link_driver(addr: SocketAddr, scenario: Scenario) -> Result<Box<dyn Driver>, Step> {
    let (_, config) = client_settings(scenario);
    Ok(Box::new(StdLink(Some(Link::connect_with(addr_of("tcp", addr), &config)))))
}

fn link_udp_driver(addr: SocketAddr, scenario: Scenario) -> Result<Box<dyn Driver>, Step> {
    let (_, config) = client_settings(scenario);
    Ok(Box::new(StdLink(Some(Link::connect_with(addr_of("udp", addr), &config)))))
}

impl StdLink {
    fn link(&mut self) -> &mut Link {
        match &mut self.0 {
            Some(Ok(link)) => link,
            _ => panic!("the link did not connect"),
        }
    }
}

impl Driver for StdLink {
    fn connect(&mut self) -> Step {
        match self.0.take() {
            Some(Err(error)) => link_step(Err(error)),
            connected => {
                self.0 = connected;
                Step::Done
            }
        }
    }
    fn send(&mut self, message: &[u8]) -> Step {
        link_step(self.link().send(message))
    }
    fn next_event(&mut self) -> Step {
        match self.link().next_event(Some(FAR_END_LIMIT)) {
            Ok(Some(LinkEvent::Message(message))) => Step::Message(message),
            Ok(Some(LinkEvent::Closed(reason))) => Step::Closed(reason),
            Ok(other) => Step::Failed(format!("{other:?}")),
            Err(error) => link_step(Err(error)),
        }
    }
    fn close(&mut self) -> Step {
        match self.0.take() {
            Some(Ok(link)) => link_step(link.close()),
            _ => Step::Failed("no link".into()),
        }
    }
}
