//! The embedded-nal code path on a desktop: `framelink_core::nal` over `std-embedded-nal`.
//!
//! The same generic client and server code that runs on firmware network stacks, here on the
//! operating system's sockets through [`std_embedded_nal::Stack`]. [`connect`] gives a
//! [`NalLink`] in one line; [`MioWait`] is the [`Wait`] hook that makes the generic driver
//! wait on socket readiness (epoll, kqueue) with the session's next deadline as the timeout,
//! instead of spinning on `WouldBlock`.
//!
//! [`Link`](crate::Link) is the faster, std-native way to the same sessions; this module exists
//! to run (and test) the portable nal path on a host.
//!
//! # std-embedded-nal's quirks
//!
//! - TCP `connect` blocks until the OS connects or refuses (no timeout): fine on a LAN or
//!   loopback, slow towards a host that drops packets.
//! - Accepted TCP sockets come back *blocking* (the listening socket is non-blocking, the
//!   accepted one is not), and the crate offers no way to change that without `unsafe`.
//!   [`MioWait::may_receive`](Wait::may_receive) therefore lets the driver receive only when the
//!   OS reports the socket readable (or the previous wait did): one `read` then returns at once
//!   with what is there, and the thread never blocks in it, so the session's timers keep
//!   running. A send on such a socket may still block while the peer's receive window is full;
//!   flow control bounds how long.
//! - `bind` listens on every interface (`[::]:port`, IPv4 too on dual-stack hosts).
//!
//! ```no_run
//! use framelink_std::{Addr, LinkConfig, nal};
//! use framelink_std::core::session::Event;
//!
//! let addr: Addr = "tcp://127.0.0.1:8080".parse()?;
//! let mut link = nal::connect(&addr, &LinkConfig::new())?;
//! link.send(b"Hello, Server!")?;
//! link.drain()?; // acknowledged
//! while let Some(event) = link.session_mut().poll_event() {
//!     if let Event::Message(reply) = event {
//!         println!("Received: {}", String::from_utf8_lossy(reply));
//!     }
//! }
//! link.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::hash::BuildHasher;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use embedded_nal::{TcpClientStack, UdpClientStack};
use framelink_core::Instant;
use framelink_core::connection::Connection;
use framelink_core::driver::Error;
use framelink_core::framing::{
    Cobs, CobsDecoder, Datagram, DatagramDecoder, Encoder, Framing, LengthDelimited, LengthDelimitedDecoder,
};
use framelink_core::nal::{Interest, TcpLink, UdpLink, Wait};
use framelink_core::session::{CloseReason, Event, Session};
use framelink_core::wire::MAX_PACKET;
use mio::{Events, Poll};

use crate::{LinkConfig, LinkError, StdClock, ToAddr, Transport};

pub use std_embedded_nal::Stack;

/// std-embedded-nal's TCP socket.
pub type TcpSocket = <Stack as TcpClientStack>::TcpSocket;
/// std-embedded-nal's UDP socket.
pub type UdpSocket = <Stack as UdpClientStack>::UdpSocket;
/// std-embedded-nal's TCP error (it wraps an [`io::Error`] in its public field `.0`).
pub type TcpError = <Stack as TcpClientStack>::Error;

/// Bytes taken by each receive from a stream.
const STREAM_READ: usize = 64 * 1024;
/// Bytes taken by each receive of a datagram: any UDP payload, so an oversized one is seen
/// whole (and refused) rather than cut.
const DATAGRAM_READ: usize = 65536;
/// Room in a stream's write buffer beyond one largest frame, for small frames to share a send.
const WRITE_ROOM: usize = 16 * 1024;
/// How long a wait sleeps when the OS readiness check itself fails (never spin).
const FALLBACK_SLEEP: Duration = Duration::from_millis(10);

/// A socket's handle for the OS readiness check: its file descriptor on Unix. Elsewhere
/// (Windows) std-embedded-nal shows no handle, so there is none.
#[cfg(unix)]
pub type RawSocket = std::os::fd::RawFd;
/// A socket's handle for the OS readiness check: its file descriptor on Unix. Elsewhere
/// (Windows) std-embedded-nal shows no handle, so there is none.
#[cfg(not(unix))]
pub type RawSocket = std::convert::Infallible;

/// A [`Wait`] hook for std-embedded-nal sockets: waits on the socket's readiness with `mio`
/// (epoll on Linux, kqueue on BSDs and macOS), the timeout being the session's next deadline.
///
/// `K` is the socket type: [`MioWait::tcp`] for [`TcpSocket`]s, [`MioWait::udp`] for
/// [`UdpSocket`]s. Each wait registers the socket's file descriptor, polls and deregisters it,
/// so readiness is level-triggered: data already waiting ends the wait at once. If the OS check
/// fails, the wait sleeps briefly (at most until the deadline) rather than spin.
///
/// On Windows std-embedded-nal gives no socket handle to wait on: each wait sleeps up to
/// 10 ms (at most until the deadline), so the driver polls, and every receive is tried (one on
/// an accepted TCP socket, which std-embedded-nal leaves blocking, waits for the peer).
///
/// ```
/// use framelink_std::StdClock;
/// use framelink_std::nal::MioWait;
///
/// let wait = MioWait::tcp(StdClock::new())?;
/// # drop(wait);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MioWait<K> {
    #[cfg_attr(not(unix), expect(dead_code, reason = "no handle to poll"))]
    poll: Poll,
    #[cfg_attr(not(unix), expect(dead_code, reason = "no handle to poll"))]
    events: Events,
    clock: StdClock,
    /// The socket the last wait found readable: the next receive on it cannot block.
    readable: Option<RawSocket>,
    /// The socket's handle, if it has one yet.
    fd_of: fn(&K) -> Option<RawSocket>,
}

impl MioWait<TcpSocket> {
    /// A hook for TCP sockets, reading deadlines on `clock` (the clock the driver is given).
    pub fn tcp(clock: StdClock) -> io::Result<Self> {
        #[cfg(unix)]
        return Self::new(clock, |socket| socket.as_raw_fd());
        #[cfg(not(unix))]
        return Self::new(clock, |_| None);
    }
}

impl MioWait<UdpSocket> {
    /// A hook for UDP sockets, reading deadlines on `clock` (the clock the driver is given).
    pub fn udp(clock: StdClock) -> io::Result<Self> {
        #[cfg(unix)]
        return Self::new(clock, |socket| socket.as_raw_fd());
        #[cfg(not(unix))]
        return Self::new(clock, |_| None);
    }
}

impl<K> MioWait<K> {
    /// A hook for sockets whose handle `fd_of` tells, reading deadlines on `clock`.
    pub fn new(clock: StdClock, fd_of: fn(&K) -> Option<RawSocket>) -> io::Result<Self> {
        Ok(Self { poll: Poll::new()?, events: Events::with_capacity(4), clock, readable: None, fd_of })
    }

    /// There is no handle to poll (see [`RawSocket`]).
    #[cfg(not(unix))]
    fn ready(&mut self, fd: RawSocket, _: Interest, _: Option<Duration>) -> io::Result<bool> {
        match fd {}
    }

    /// Polls `fd` for `interest`; returns whether it is readable (or at its end, or failed,
    /// which a receive reports at once).
    #[cfg(unix)]
    fn ready(&mut self, fd: RawSocket, interest: Interest, timeout: Option<Duration>) -> io::Result<bool> {
        use mio::Token;
        use mio::unix::SourceFd;
        let wanted = match interest {
            Interest::Read => mio::Interest::READABLE,
            Interest::Write => mio::Interest::WRITABLE,
            Interest::ReadWrite => mio::Interest::READABLE | mio::Interest::WRITABLE,
        };
        self.poll.registry().register(&mut SourceFd(&fd), Token(0), wanted)?;
        let polled = self.poll.poll(&mut self.events, timeout);
        let deregistered = self.poll.registry().deregister(&mut SourceFd(&fd));
        match polled {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(false),
            other => other?,
        }
        deregistered?;
        Ok(self.events.iter().any(|e| e.is_readable() || e.is_read_closed() || e.is_error()))
    }
}

impl<S, K> Wait<S, K> for MioWait<K> {
    fn wait(&mut self, _: &mut S, socket: &K, interest: Interest, deadline: Option<Instant>) {
        let timeout =
            deadline.map(|d| self.clock.to_std(d).saturating_duration_since(std::time::Instant::now()));
        let readiness = (self.fd_of)(socket).map(|fd| (fd, self.ready(fd, interest, timeout)));
        match readiness {
            Some((fd, Ok(readable))) => self.readable = readable.then_some(fd),
            Some((_, Err(_))) | None => {
                self.readable = None;
                std::thread::sleep(timeout.map_or(FALLBACK_SLEEP, |t| t.min(FALLBACK_SLEEP)));
            }
        }
    }

    /// Whether a receive returns at once: the last wait found the socket readable, or the OS
    /// says so now (a zero-timeout poll).
    fn may_receive(&mut self, _: &mut S, socket: &K) -> bool {
        let Some(fd) = (self.fd_of)(socket) else { return cfg!(not(unix)) };
        if self.readable.take() == Some(fd) {
            return true;
        }
        // When the check fails, do not risk a blocking read: the next wait sleeps instead.
        self.ready(fd, Interest::Read, Some(Duration::ZERO)).unwrap_or(false)
    }
}

/// A core driver error with std-embedded-nal's TCP error unwrapped.
fn from_tcp(error: Error<TcpError>) -> Error<io::Error> {
    match error {
        Error::Io(error) => Error::Io(error.0),
        Error::ConnectionLost => Error::ConnectionLost,
        Error::Closed(reason) => Error::Closed(reason),
        Error::Send(error) => Error::Send(error),
        Error::BufferTooSmall(error) => Error::BufferTooSmall(error),
        other => Error::Io(io::Error::other(other.to_string())),
    }
}

/// A core driver error as a [`LinkError`]; a connection reset under us is a lost connection,
/// as on the std path.
fn to_link_error(error: Error<io::Error>) -> LinkError {
    match error {
        Error::Io(error) => crate::link::lost_or_io(error),
        Error::ConnectionLost => LinkError::ConnectionLost,
        Error::Closed(reason) => LinkError::Closed(reason),
        Error::Send(error) => LinkError::Send(error),
        other => LinkError::Io(io::Error::other(other.to_string())),
    }
}

/// Stream decoders of a Vec, as the std Link's: empty until a frame arrives in pieces.
type LdLink = TcpLink<Stack, LengthDelimitedDecoder<MAX_PACKET, Vec<u8>>, Vec<u8>>;
type CobsLink = TcpLink<Stack, CobsDecoder<MAX_PACKET, Vec<u8>>, Vec<u8>>;
type DatagramLink = UdpLink<Stack, DatagramDecoder, Vec<u8>>;

/// The link, by transport (boxed, so that moving a `NalLink` moves a pointer).
enum Inner {
    Tcp(Box<LdLink>, MioWait<TcpSocket>),
    TcpCobs(Box<CobsLink>, MioWait<TcpSocket>),
    Udp(Box<DatagramLink>, MioWait<UdpSocket>),
}

/// Runs `$body` on the link and hook inside `$self`, with std-embedded-nal's TCP errors
/// unwrapped.
macro_rules! on_link {
    ($self:ident, $link:ident, $wait:ident => $body:expr) => {
        match &mut $self.inner {
            Inner::Tcp($link, $wait) => $body.map_err(from_tcp),
            Inner::TcpCobs($link, $wait) => $body.map_err(from_tcp),
            Inner::Udp($link, $wait) => $body,
        }
        .map_err(to_link_error)
    };
}

/// A session over std-embedded-nal sockets: the nal-generic driver (`framelink_core::nal`)
/// with a [`MioWait`] hook and a [`StdClock`]. Made by [`connect`].
///
/// The calls block (waiting on the socket, never spinning) until done or until the session
/// ends; the session's own timers (handshake, keepalive, idle, close) bound every wait.
pub struct NalLink {
    inner: Inner,
    clock: StdClock,
    transport: Transport,
    peer: SocketAddr,
}

/// Connects to `addr` over std-embedded-nal and completes the handshake: the nal-generic
/// counterpart of [`Link::connect_with`](crate::Link::connect_with), with the same settings.
///
/// Tries each address the host resolves to while the answer is an I/O error (connection
/// refused). The session settings are [`Link`](crate::Link)'s (retransmission on `udp://` and
/// `tcp+cobs://`). Fails with [`LinkError::Io`] when no server is
/// there, [`LinkError::Refused`] when the server refused the handshake, and
/// [`LinkError::Closed`] when the handshake timed out.
///
/// `addr` is an [`Addr`](crate::Addr) or its text, as for [`Link::connect`](crate::Link::connect).
pub fn connect<A: ToAddr>(addr: A, config: &LinkConfig) -> Result<NalLink, LinkError> {
    let addr = addr.to_addr()?;
    let mut last = None;
    for target in addr.resolve()? {
        match NalLink::connect_to(target, addr.transport, config) {
            Ok(link) => return Ok(link),
            Err(LinkError::Io(error)) => last = Some(error),
            Err(other) => return Err(other),
        }
    }
    Err(LinkError::Io(last.unwrap_or_else(|| io::ErrorKind::NotFound.into())))
}

/// A random session id.
fn session_id() -> u32 {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    std::collections::hash_map::RandomState::new().hash_one(seed.as_nanos()) as u32
}

/// A client session and its framing.
fn framed<F: Framing>(
    config: &LinkConfig,
    transport: Transport,
    decoder: F,
    clock: &StdClock,
) -> Connection<F, Vec<u8>> {
    let session_config = config.session_config(transport);
    let len = config.buffer_len();
    let session = Session::client(session_config, session_id(), vec![0; len], vec![0; len], clock.now());
    Connection::new(session, decoder, Vec::new())
}

/// Buffers of a TCP link with framing `E`: one receive, and the largest frame plus room.
fn stream_buffers<E: Encoder>() -> (Vec<u8>, Vec<u8>) {
    (vec![0; STREAM_READ], vec![0; E::max_encoded_len(MAX_PACKET) + WRITE_ROOM])
}

impl NalLink {
    fn connect_to(target: SocketAddr, transport: Transport, config: &LinkConfig) -> Result<Self, LinkError> {
        let mut clock = StdClock::new();
        let inner = match transport {
            Transport::Tcp => {
                let mut wait = MioWait::tcp(clock)?;
                let framed =
                    framed(config, transport, LengthDelimitedDecoder::with_buffer(Vec::new()), &clock);
                let (read_buf, write_buf) = stream_buffers::<LengthDelimited>();
                let link = TcpLink::open(Stack, target, framed, read_buf, write_buf, &mut clock, &mut wait);
                Inner::Tcp(Box::new(link.map_err(from_tcp).map_err(to_link_error)?), wait)
            }
            Transport::TcpCobs => {
                let mut wait = MioWait::tcp(clock)?;
                let framed = framed(config, transport, CobsDecoder::with_buffer(Vec::new()), &clock);
                let (read_buf, write_buf) = stream_buffers::<Cobs>();
                let link = TcpLink::open(Stack, target, framed, read_buf, write_buf, &mut clock, &mut wait);
                Inner::TcpCobs(Box::new(link.map_err(from_tcp).map_err(to_link_error)?), wait)
            }
            Transport::Udp => {
                let decoder = DatagramDecoder::new(config.packet_len(transport));
                let framed = framed(config, transport, decoder, &clock);
                let write_buf = vec![0; Datagram::max_encoded_len(MAX_PACKET)];
                let link = UdpLink::open(Stack, target, framed, vec![0; DATAGRAM_READ], write_buf);
                Inner::Udp(Box::new(link.map_err(to_link_error)?), MioWait::udp(clock)?)
            }
            // `connect` refuses it first: a serial port has no socket address to resolve.
            Transport::Serial => return Err(LinkError::Io(io::ErrorKind::InvalidInput.into())),
        };
        let mut link = Self { inner, clock, transport, peer: target };
        match on_link!(link, l, wait => l.connect(&mut link.clock, wait)) {
            Ok(()) => Ok(link),
            Err(LinkError::Closed(
                reason @ (CloseReason::PeerError { .. } | CloseReason::LocalError { .. }),
            )) => Err(LinkError::Refused(reason)),
            Err(error) => Err(error),
        }
    }

    /// Queues `message`, waiting while the send buffer is full. Events that arrive meanwhile
    /// stay queued for [`next_event`](Self::next_event).
    pub fn send(&mut self, message: &[u8]) -> Result<(), LinkError> {
        on_link!(self, l, wait => l.send(&mut self.clock, message, wait))
    }

    /// Waits for the next event.
    pub fn next_event(&mut self) -> Result<Event<'_>, LinkError> {
        on_link!(self, l, wait => l.next_event(&mut self.clock, wait))
    }

    /// Waits until the peer has acknowledged every message sent. Events that arrive meanwhile
    /// stay queued: read them with [`session_mut`](Self::session_mut)`().poll_event()`.
    pub fn drain(&mut self) -> Result<(), LinkError> {
        on_link!(self, l, wait => l.drain(&mut self.clock, wait))
    }

    /// Closes gracefully: waits until everything sent is acknowledged and the peer confirmed.
    /// Messages that arrive meanwhile are dropped.
    pub fn close(&mut self) -> Result<(), LinkError> {
        on_link!(self, l, wait => l.close(&mut self.clock, wait))
    }

    /// The session.
    pub fn session(&self) -> &Session<Vec<u8>> {
        match &self.inner {
            Inner::Tcp(link, _) => link.session(),
            Inner::TcpCobs(link, _) => link.session(),
            Inner::Udp(link, _) => link.session(),
        }
    }

    /// The session, for `ping` and `poll_event`.
    pub fn session_mut(&mut self) -> &mut Session<Vec<u8>> {
        match &mut self.inner {
            Inner::Tcp(link, _) => link.session_mut(),
            Inner::TcpCobs(link, _) => link.session_mut(),
            Inner::Udp(link, _) => link.session_mut(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Addr;
    use framelink_core::nal;
    use framelink_core::session::{Config, Timeout};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::thread;

    /// The bound on every wait in these tests.
    const WAIT: Duration = Duration::from_secs(20);

    /// A port that was free a moment ago (std-embedded-nal cannot bind port 0 and tell which
    /// port it got).
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// Counts the waits of a [`MioWait`].
    struct Counting<K>(MioWait<K>, usize);

    impl<S, K> Wait<S, K> for Counting<K> {
        fn wait(&mut self, stack: &mut S, socket: &K, interest: Interest, deadline: Option<Instant>) {
            self.1 += 1;
            self.0.wait(stack, socket, interest, deadline);
        }
        fn may_receive(&mut self, stack: &mut S, socket: &K) -> bool {
            self.0.may_receive(stack, socket)
        }
    }

    type Ld = LengthDelimitedDecoder<MAX_PACKET>;

    fn server_framed<F: Framing>(config: Config, decoder: F, now: Instant) -> Connection<F, Vec<u8>> {
        let session = Session::server(config, vec![0; 1 << 17], vec![0; 1 << 17], now);
        Connection::new(session, decoder, vec![0; MAX_PACKET])
    }

    /// Runs the core's TCP server on std-embedded-nal for one connection: echoes each message
    /// and reports the events, then the number of waits.
    fn tcp_echo_server(port: u16, config: Config) -> mpsc::Receiver<Result<String, String>> {
        let (tx, rx) = mpsc::channel();
        let mut server = nal::TcpServer::bind(Stack, port).unwrap();
        thread::spawn(move || {
            let mut clock = StdClock::new();
            let mut wait = Counting(MioWait::tcp(clock).unwrap(), 0);
            let (socket, _) = server.accept(&mut wait).unwrap();
            let framed = server_framed::<Ld>(config, Ld::new(), clock.now());
            let mut link = server.link(socket, framed, vec![0; STREAM_READ], vec![0; 2 * MAX_PACKET]);
            loop {
                let event = match link.next_event(&mut clock, &mut wait) {
                    Ok(Event::Message(m)) => {
                        let m = m.to_vec();
                        let _ = link.send(&mut clock, &m, &mut wait);
                        format!("message {}", String::from_utf8_lossy(&m))
                    }
                    Ok(Event::Closed(reason)) => {
                        let _ = tx.send(Ok(format!("closed {reason:?}")));
                        break;
                    }
                    Ok(event) => format!("{event:?}"),
                    Err(error) => {
                        let _ = tx.send(Err(format!("{error:?}")));
                        break;
                    }
                };
                let _ = tx.send(Ok(event));
            }
            let _ = tx.send(Ok(format!("waits {}", wait.1)));
        });
        rx
    }

    fn expect(rx: &mpsc::Receiver<Result<String, String>>, what: &str) {
        assert_eq!(rx.recv_timeout(WAIT).expect("the server thread answers"), Ok(what.to_owned()));
    }

    #[test]
    fn client_and_server_over_tcp_on_std_embedded_nal() {
        let port = free_port();
        let rx = tcp_echo_server(port, Config::new());
        let addr = Addr::new(Transport::Tcp, "127.0.0.1", port);
        let mut link = connect(&addr, &LinkConfig::new()).unwrap();
        assert_eq!(link.peer_addr().port(), port);
        expect(&rx, "Connected");
        for text in ["one", "two"] {
            link.send(text.as_bytes()).unwrap();
            assert_eq!(link.next_event().unwrap(), Event::Message(text.as_bytes()));
            expect(&rx, &format!("message {text}"));
        }
        link.close().unwrap();
        expect(&rx, "closed Peer");
        assert_eq!(link.session().stats().messages_received, 2);
    }

    #[test]
    fn accepted_sockets_block_but_the_server_never_blocks_on_them() {
        let port = free_port();
        let config =
            Config::new().keepalive(Duration::from_millis(100)).idle_timeout(Duration::from_millis(400));
        let rx = tcp_echo_server(port, config);
        // A client that says HELLO and then nothing at all, leaving the connection open.
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let session = Session::client(Config::new(), 5, vec![0; 4096], vec![0; 4096], Instant::ZERO);
        let mut hello = Connection::<Ld, _>::new(session, Ld::new(), vec![0; MAX_PACKET]);
        let mut out = vec![0; LengthDelimited::max_encoded_len(MAX_PACKET)];
        let n = hello.poll_transmit(Instant::ZERO, &mut out).unwrap();
        stream.write_all(&out[..n]).unwrap();
        let started = std::time::Instant::now();
        expect(&rx, "Connected");
        // The server must read only when data is there: a blocking read would hang it here,
        // and its keepalive and idle timers would never run.
        expect(&rx, &format!("closed {:?}", CloseReason::TimedOut(Timeout::Idle)));
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(5), "{elapsed:?}");
        let waits = rx.recv_timeout(WAIT).unwrap().unwrap();
        let waits: usize = waits.trim_start_matches("waits ").parse().unwrap();
        assert!(waits < 40, "{waits} waits in 400 ms: the server spins");
    }

    #[test]
    fn client_and_server_over_udp_on_std_embedded_nal() {
        let port = free_port();
        let config = Config::new().retransmit(true);
        let framed =
            server_framed::<DatagramDecoder>(config, DatagramDecoder::new(MAX_PACKET), Instant::ZERO);
        let mut server = nal::UdpServer::bind(
            Stack,
            port,
            crate::cookie::random_key(),
            framed,
            vec![0; DATAGRAM_READ],
            vec![0; Datagram::max_encoded_len(MAX_PACKET)],
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut clock = StdClock::new();
            let mut wait = MioWait::udp(clock).unwrap();
            loop {
                match server.next_event(&mut clock, &mut wait) {
                    Ok(Event::Message(m)) => {
                        let m = m.to_vec();
                        server.send(&mut clock, &m, &mut wait).unwrap();
                    }
                    Ok(Event::Closed(reason)) => {
                        let _ = tx.send(format!("{reason:?}"));
                        return;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        let _ = tx.send(format!("{error:?}"));
                        return;
                    }
                }
            }
        });
        let addr = Addr::new(Transport::Udp, "127.0.0.1", port);
        let mut link = connect(&addr, &LinkConfig::new()).unwrap();
        link.send(&[5; 3000]).unwrap(); // three packets of 1200 bytes at most
        assert_eq!(link.next_event().unwrap(), Event::Message(&[5; 3000]));
        link.close().unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), "Peer");
    }

    #[test]
    fn no_server_is_connection_refused() {
        for transport in [Transport::Tcp, Transport::TcpCobs, Transport::Udp] {
            let addr = Addr::new(transport, "127.0.0.1", free_port());
            match connect(&addr, &LinkConfig::new()) {
                Err(LinkError::Io(error)) => assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused),
                Err(other) => panic!("{transport:?}: {other}"),
                Ok(_) => panic!("{transport:?}: connected to nobody"),
            }
        }
    }

    #[test]
    fn mio_wait_sleeps_until_the_deadline_and_wakes_on_data() {
        let clock = StdClock::new();
        let mut wait = MioWait::udp(clock).unwrap();
        let mut stack = Stack;
        let mut socket = UdpClientStack::socket(&mut stack).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        UdpClientStack::connect(&mut stack, &mut socket, peer.local_addr().unwrap()).unwrap();
        assert!(!wait.may_receive(&mut stack, &socket));
        let started = std::time::Instant::now();
        let deadline = clock.now() + Duration::from_millis(50);
        wait.wait(&mut stack, &socket, Interest::Read, Some(deadline));
        assert!(started.elapsed() >= Duration::from_millis(45), "{:?}", started.elapsed());

        // Find our address by sending to the peer, then answer.
        UdpClientStack::send(&mut stack, &mut socket, b"hi").unwrap();
        let mut buf = [0; 8];
        let (_, ours) = peer.recv_from(&mut buf).unwrap();
        peer.send_to(b"yo", ours).unwrap();
        let started = std::time::Instant::now();
        wait.wait(&mut stack, &socket, Interest::Read, Some(clock.now() + Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(wait.may_receive(&mut stack, &socket));
        let (n, _) = UdpClientStack::receive(&mut stack, &mut socket, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"yo");
    }
}
