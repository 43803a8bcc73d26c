//! Client and server over `embedded-nal` 0.9 sockets (feature `nal`).
//!
//! Runs a [`Connection`] over any network stack that implements the `nb`-based
//! [`TcpClientStack`], [`TcpFullStack`], [`UdpClientStack`] or
//! [`UdpFullStack`](embedded_nal::UdpFullStack) traits: smoltcp behind an embedded-nal wrapper,
//! a W5500 or an ESP-AT modem driver, or `std-embedded-nal` on a desktop (`framelink_std::nal`).
//!
//! | type | socket | framing |
//! |---|---|---|
//! | [`TcpLink`] | a TCP connection: opened by [`TcpLink::open`] or accepted by [`TcpServer`] | length-delimited, or COBS for a serial line bridged to TCP |
//! | [`UdpLink`] | a connected UDP socket (a client) | datagram |
//! | [`UdpServer`] | a bound UDP socket that serves one peer at a time | datagram |
//!
//! All three are a [`NalLink`] over a [`Conn`] (the socket and its stack); they share the
//! blocking helpers of [`io::IoLink`](crate::io::IoLink): [`connect`](NalLink::connect) (the
//! handshake), [`send`](NalLink::send), [`next_event`](NalLink::next_event),
//! [`drain`](NalLink::drain) and [`close`](NalLink::close).
//!
//! # Waiting
//!
//! An `nb` socket answers [`WouldBlock`](nb::Error::WouldBlock) when it cannot go on. The driver
//! never retries in a loop: it calls the [`Wait`] hook with what it waits for ([`Interest`]) and
//! the session's next deadline, and tries again when the hook returns.
//!
//! - Firmware passes a closure `|deadline| ...`: sleep until the next interrupt (`WFI`) after
//!   arming a timer for the deadline, poll the network stack, or return at once to spin.
//! - A host waits on the socket's readiness with the deadline as timeout
//!   (`framelink_std::nal::MioWait`).
//!
//! Before each receive the driver asks [`Wait::may_receive`]. The default answers yes, since an
//! `nb` socket answers `WouldBlock` rather than blocking; a hook for sockets whose receive blocks
//! (std-embedded-nal's accepted TCP sockets) answers from a readiness check instead, so that a
//! receive never blocks the thread and the session's timers keep running.
//!
//! # One peer at a time
//!
//! Firmware typically serves a single peer, and so do these servers. [`TcpServer`] hands out
//! one accepted connection at a time, borrowing the stack for it; further connection requests
//! wait in the stack's backlog (or are refused by stacks without one) until it is released.
//! [`UdpServer`] serves one proven peer at a time, until that session ends, through a
//! [`core::endpoint`](crate::endpoint) as `framelink-std`'s server does (PROTOCOL.md 9.3 and
//! 10.1):
//!
//! - a HELLO from an address without a session, or with a new session id, is answered with a
//!   RETRY whose cookie the client sends back: only a HELLO that proves its address starts (or
//!   restarts) a session, so a HELLO spoofed with the peer's own address cannot end it;
//! - while a peer is served, a proven HELLO from another address is answered with ERROR
//!   [`Busy`](crate::wire::ErrorCode::Busy) (detail 1, the number of peers served), so that client
//!   fails at once instead of timing out;
//! - every other datagram from another address is dropped and counted
//!   ([`UdpServer::counters`]); a CLOSE repeated after the session ended gets its CLOSE-ACK again
//!   for a while. No answer is larger than the datagram it answers.
//!
//! Datagrams carry the session tag, so made-up or spoofed packets from an address off the path
//! reach no session. Cookies are made under a [`CookieKey`](crate::endpoint::CookieKey) the
//! caller draws anew at every boot: 16 bytes of a TRNG, or, on a board without one, its unique id
//! hashed with a boot counter kept in flash (see the key's docs). A desktop server for many
//! clients at once is `framelink-std`'s business.
//!
//! # Example
//!
//! A client over any TCP stack (the same code runs on `std-embedded-nal` and on firmware):
//!
//! ```
//! use core::net::SocketAddr;
//! use framelink_core::driver::Error;
//! use framelink_core::connection::Connection;
//! use framelink_core::framing::LengthDelimitedDecoder;
//! use framelink_core::nal::TcpLink;
//! use framelink_core::session::{Config, Event, Session};
//! use framelink_core::Instant;
//! use embedded_nal::TcpClientStack;
//!
//! fn hello<S: TcpClientStack>(
//!     stack: &mut S,
//!     server: SocketAddr,
//!     mut now: impl FnMut() -> Instant,
//! ) -> Result<(), Error<S::Error>> {
//!     let (mut tx, mut rx) = ([0u8; 2048], [0u8; 2048]);
//!     let (mut read_buf, mut write_buf) = ([0u8; 512], [0u8; 1104]);
//!     let session: Session<&mut [u8]> = Session::client(Config::new(), 0x1234, &mut tx[..], &mut rx[..], now());
//!     // Length-delimited frames each packet in place: no scratch packet needed.
//!     let connection = Connection::new(session, LengthDelimitedDecoder::<1100>::new(), &mut [][..]);
//!     // Sleep until something happens or the deadline passes (here: spin).
//!     let mut wait = |_deadline: Option<Instant>| {};
//!     let mut link =
//!         TcpLink::open(stack, server, connection, &mut read_buf[..], &mut write_buf[..], &mut now, &mut wait)?;
//!     link.connect(&mut now, &mut wait)?; // HELLO, HELLO-ACK
//!     link.send(&mut now, b"Hello, Server!", &mut wait)?;
//!     if let Event::Message(reply) = link.next_event(&mut now, &mut wait)? {
//!         assert!(!reply.is_empty());
//!     }
//!     link.close(&mut now, &mut wait)?; // waits until everything is acknowledged
//!     let _ = link.release();
//!     Ok(())
//! }
//! ```

use core::net::SocketAddr;
use core::time::Duration;

use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind, TcpFullStack, UdpClientStack, nb};

use crate::Instant;
use crate::buffer::Buffer;
use crate::connection::Connection;
use crate::driver::{Clock, Error, closed, connected, event_or_end};
use crate::framing::{Encoder, Framing};
use crate::session::{Event, SendError, Session, State};

mod udp_server;
pub use udp_server::{UdpPeer, UdpServer};

/// How long the driver keeps trying to send the last packets of a session that ended (a
/// CLOSE-ACK, an ERROR) before it reports the end anyway.
const LINGER: Duration = Duration::from_secs(1);

/// What the driver waits for when it calls [`Wait::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Interest {
    /// Bytes or a datagram to receive (or the end of the connection).
    Read,
    /// Room to send, or a TCP connection to complete.
    Write,
    /// Either.
    ReadWrite,
}

impl Interest {
    /// Whether the driver waits to receive.
    pub const fn is_readable(self) -> bool {
        matches!(self, Self::Read | Self::ReadWrite)
    }

    /// Whether the driver waits to send.
    pub const fn is_writable(self) -> bool {
        matches!(self, Self::Write | Self::ReadWrite)
    }
}

/// How the driver waits when a socket answers `WouldBlock`; see the [module docs](self).
///
/// `S` is the network stack and `K` the socket the driver waits on. Implemented for every
/// closure `FnMut(Option<Instant>)`, which gets only the deadline.
///
/// A hook that needs the stack itself (to poll it) and is used with a [`TcpServer`], whose
/// connections hold `&mut S`, can be written once for both with
/// `impl<T: BorrowMut<MyStack>> Wait<T, MySocket> for MyHook`.
pub trait Wait<S, K> {
    /// Returns once `socket` may be ready for `interest` or `deadline` (on the driver's
    /// [`Clock`]) has passed; `None` means no deadline. Returning earlier is harmless (the
    /// driver tries again and calls back), returning much later delays the session's timers.
    fn wait(&mut self, stack: &mut S, socket: &K, interest: Interest, deadline: Option<Instant>);

    /// Whether a receive on `socket` may be tried now without blocking the thread.
    ///
    /// The default answers `true`: `nb` sockets answer `WouldBlock` when nothing is there.
    /// Override it for sockets whose receive blocks, answering from a readiness check.
    fn may_receive(&mut self, stack: &mut S, socket: &K) -> bool {
        let _ = (stack, socket);
        true
    }
}

impl<S, K, F: FnMut(Option<Instant>)> Wait<S, K> for F {
    fn wait(&mut self, _: &mut S, _: &K, _: Interest, deadline: Option<Instant>) {
        self(deadline)
    }
}

/// What one [`Conn::receive`] brought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Received {
    /// Bytes of the stream, or one datagram, at the start of the buffer.
    Bytes(usize),
    /// A datagram from an address other than the peer's, dropped (and counted by the socket).
    Ignored,
    /// The peer closed the connection.
    End,
}

/// A socket together with its network stack: what a [`NalLink`] sends and receives through.
///
/// Implemented by [`Tcp`], [`Udp`] and [`UdpPeer`]. A send or receive that cannot go on answers
/// [`WouldBlock`](nb::Error::WouldBlock); it never blocks itself.
pub trait Conn {
    /// The network stack.
    type Stack;
    /// The socket type, as the [`Wait`] hook sees it.
    type Socket;
    /// The stack's error type.
    type Error: core::fmt::Debug;
    /// Whether the socket carries datagrams: the driver hands [`send`](Self::send) one frame at
    /// a time and expects it sent whole.
    const DATAGRAM: bool;
    /// Whether the session serves a new peer after it ends (a [`UdpServer`]): the driver keeps
    /// receiving after the session closed.
    const REOPENS: bool = false;

    /// The stack and the socket, for the [`Wait`] hook.
    fn parts(&mut self) -> (&mut Self::Stack, &Self::Socket);

    /// Sends a prefix of `bytes` (all of them, for a datagram socket); returns its length, at
    /// least 1.
    fn send(&mut self, bytes: &[u8]) -> nb::Result<usize, Error<Self::Error>>;

    /// Receives into `buf`. `E` is the link's encoder, for a server socket that answers
    /// strangers itself.
    fn receive<E: Encoder>(&mut self, buf: &mut [u8]) -> nb::Result<Received, Error<Self::Error>>;

    /// Called when the session has no peer (waiting for a handshake, or ended) and nothing is
    /// left to send: a server socket forgets its peer. Does nothing by default.
    fn idle(&mut self) {}

    /// Closes the socket and gives back the stack.
    fn close(self) -> Result<Self::Stack, Self::Error>
    where
        Self: Sized;
}

/// Maps a TCP error: a closed pipe is the end of the connection.
fn tcp_error<E: TcpError>(error: E) -> Error<E> {
    if error.kind() == TcpErrorKind::PipeClosed { Error::ConnectionLost } else { Error::Io(error) }
}

/// A connected TCP socket and its stack.
pub struct Tcp<S: TcpClientStack> {
    stack: S,
    socket: S::TcpSocket,
}

impl<S: TcpClientStack> Tcp<S> {
    /// A connected (or accepted) `socket` of `stack`.
    pub fn new(stack: S, socket: S::TcpSocket) -> Self {
        Self { stack, socket }
    }

    /// The stack and the socket, without closing it.
    pub fn into_parts(self) -> (S, S::TcpSocket) {
        (self.stack, self.socket)
    }
}

impl<S: TcpClientStack> Conn for Tcp<S> {
    type Stack = S;
    type Socket = S::TcpSocket;
    type Error = S::Error;
    const DATAGRAM: bool = false;

    fn parts(&mut self) -> (&mut S, &S::TcpSocket) {
        (&mut self.stack, &self.socket)
    }

    fn send(&mut self, bytes: &[u8]) -> nb::Result<usize, Error<S::Error>> {
        match self.stack.send(&mut self.socket, bytes) {
            Ok(0) if !bytes.is_empty() => Err(nb::Error::Other(Error::ConnectionLost)),
            Ok(n) => Ok(n.min(bytes.len())),
            Err(error) => Err(error.map(tcp_error)),
        }
    }

    fn receive<E: Encoder>(&mut self, buf: &mut [u8]) -> nb::Result<Received, Error<S::Error>> {
        match self.stack.receive(&mut self.socket, buf) {
            Ok(0) => Ok(Received::End),
            Ok(n) => Ok(Received::Bytes(n.min(buf.len()))),
            Err(error) => Err(error.map(tcp_error)),
        }
    }

    fn close(mut self) -> Result<S, S::Error> {
        self.stack.close(self.socket)?;
        Ok(self.stack)
    }
}

/// A connected UDP socket and its stack: a client.
///
/// Datagrams from any address but the peer's are dropped and counted ([`Udp::ignored`]).
pub struct Udp<S: UdpClientStack> {
    stack: S,
    socket: S::UdpSocket,
    remote: SocketAddr,
    ignored: u64,
}

impl<S: UdpClientStack> Udp<S> {
    /// `socket` of `stack`, connected to `remote`.
    pub fn new(stack: S, socket: S::UdpSocket, remote: SocketAddr) -> Self {
        Self { stack, socket, remote, ignored: 0 }
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Datagrams dropped because they came from another address.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }
}

impl<S: UdpClientStack> Conn for Udp<S> {
    type Stack = S;
    type Socket = S::UdpSocket;
    type Error = S::Error;
    const DATAGRAM: bool = true;

    fn parts(&mut self) -> (&mut S, &S::UdpSocket) {
        (&mut self.stack, &self.socket)
    }

    fn send(&mut self, bytes: &[u8]) -> nb::Result<usize, Error<S::Error>> {
        self.stack.send(&mut self.socket, bytes).map_err(|e| e.map(Error::Io))?;
        Ok(bytes.len())
    }

    fn receive<E: Encoder>(&mut self, buf: &mut [u8]) -> nb::Result<Received, Error<S::Error>> {
        let (n, from) = self.stack.receive(&mut self.socket, buf).map_err(|e| e.map(Error::Io))?;
        if from == self.remote {
            Ok(Received::Bytes(n.min(buf.len())))
        } else {
            self.ignored += 1;
            Ok(Received::Ignored)
        }
    }

    fn close(mut self) -> Result<S, S::Error> {
        self.stack.close(self.socket)?;
        Ok(self.stack)
    }
}

/// A session over a TCP connection; see [`NalLink`].
pub type TcpLink<S, F, B, const W: usize = 16> = NalLink<Tcp<S>, F, B, W>;

/// A client session over a connected UDP socket; see [`NalLink`].
pub type UdpLink<S, F, B, const W: usize = 16> = NalLink<Udp<S>, F, B, W>;

/// A session running over an embedded-nal socket.
///
/// A thin loop around [`Connection`], like [`io::IoLink`](crate::io::IoLink), whose helpers it
/// shares with the same arguments in the same order: [`poll`](Self::poll) runs one round
/// without blocking; the blocking helpers loop over it and call the [`Wait`] hook whenever a
/// round did nothing, with the session's next deadline. When the session has ended they fail
/// with [`Error::Closed`] and the reason it ended.
///
/// Buffers: `read_buf` takes each receive (for UDP, at least the largest packet accepted plus
/// one byte, so a longer datagram is seen as too long rather than cut); `write_buf` holds frames
/// until the socket takes them and must hold [`Connection::max_frame`] bytes.
///
/// Over UDP, give both sessions [`Config::retransmit`](crate::session::Config::retransmit): the
/// driver runs the session's retransmission timers like any other.
pub struct NalLink<C, F, B: Buffer, const W: usize = 16> {
    conn: C,
    connection: Connection<F, B, W>,
    read_buf: B,
    write_buf: B,
    /// `write_buf[out_start..out_end]` is framed but not sent yet.
    out_start: usize,
    out_end: usize,
}

impl<C, F, B, const W: usize> NalLink<C, F, B, W>
where
    C: Conn,
    F: Framing,
    B: Buffer,
{
    /// Runs `connection` over `conn`.
    pub fn new(conn: C, connection: Connection<F, B, W>, read_buf: B, write_buf: B) -> Self {
        Self { conn, connection, read_buf, write_buf, out_start: 0, out_end: 0 }
    }

    /// The session.
    pub fn session(&self) -> &Session<B, W> {
        self.connection.session()
    }

    /// The session, for calls the driver does not wrap (`ping`, `poll_event`).
    pub fn session_mut(&mut self) -> &mut Session<B, W> {
        self.connection.session_mut()
    }

    /// The connection (the session and its framing).
    pub fn connection(&self) -> &Connection<F, B, W> {
        &self.connection
    }

    /// The socket and its stack.
    pub fn conn(&self) -> &C {
        &self.conn
    }

    /// Gives back the socket (still open) and the connection. Frames not sent yet are dropped.
    pub fn into_parts(self) -> (C, Connection<F, B, W>) {
        (self.conn, self.connection)
    }

    /// Closes the socket (without a graceful close of the session: call [`close`](Self::close)
    /// first) and gives back the stack. To keep the session, use
    /// [`into_parts`](Self::into_parts) and [`Conn::close`].
    pub fn release(self) -> Result<C::Stack, C::Error> {
        self.conn.close()
    }

    /// Whether framed bytes wait for the socket to take them.
    pub fn has_output(&self) -> bool {
        self.out_start < self.out_end
    }

    /// Sends what the session has to send until the socket would block; returns whether
    /// everything went.
    pub fn flush(&mut self, now: Instant) -> Result<bool, Error<C::Error>> {
        loop {
            if !self.has_output() {
                let out = self.write_buf.as_mut();
                let n = if C::DATAGRAM {
                    self.connection.poll_datagram(now, out)?
                } else {
                    self.connection.poll_transmit(now, out)?
                };
                if n == 0 {
                    return Ok(true);
                }
                (self.out_start, self.out_end) = (0, n);
            }
            match self.conn.send(&self.write_buf.as_ref()[self.out_start..self.out_end]) {
                Ok(0) => return Err(Error::ConnectionLost),
                Ok(n) => self.out_start = (self.out_start + n).min(self.out_end),
                Err(nb::Error::WouldBlock) => return Ok(false),
                Err(nb::Error::Other(error)) => return Err(error),
            }
        }
    }

    /// One round that never waits: runs due timers, sends, receives once if
    /// [`Wait::may_receive`] allows it, and sends the answers. Returns whether anything was
    /// received.
    pub fn poll(
        &mut self,
        now: Instant,
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<bool, Error<C::Error>> {
        self.connection.handle_timeout(now);
        self.flush(now)?;
        let mut received = false;
        let receiving = self.is_receiving();
        let (stack, socket) = self.conn.parts();
        if receiving && wait.may_receive(stack, socket) {
            match self.conn.receive::<F::Encoder>(self.read_buf.as_mut()) {
                Ok(Received::Bytes(n)) => {
                    self.connection.handle_bytes(now, &self.read_buf.as_ref()[..n]);
                    self.flush(now)?;
                    received = true;
                }
                Ok(Received::Ignored) => received = true,
                Ok(Received::End) => return Err(Error::ConnectionLost),
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(error)) => return Err(error),
            }
        }
        if !self.has_output() && matches!(self.session().state(), State::Listen | State::Closed) {
            self.conn.idle();
        }
        Ok(received)
    }

    /// Completes the handshake: polls until [`Event::Connected`], or fails with the reason the
    /// session ended (refused, timed out).
    pub fn connect(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<(), Error<C::Error>> {
        loop {
            if let Some(done) = connected(self.next_event(clock, wait)) {
                return done;
            }
        }
    }

    /// Polls until an event is ready and returns it, calling the hook whenever a round did
    /// nothing. After [`Event::Closed`], fails with [`Error::Closed`] and the same reason
    /// (except on a [`UdpServer`], which waits for the next peer).
    pub fn next_event(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<Event<'_>, Error<C::Error>> {
        self.wait_event(clock, wait)?;
        event_or_end(self.connection.next_event())
    }

    /// Queues `message`, polling while the send buffer is full, and sends what the socket takes
    /// at once; the rest goes out in later calls. Events that arrive meanwhile stay queued for
    /// [`next_event`](Self::next_event).
    pub fn send(
        &mut self,
        clock: &mut impl Clock,
        message: &[u8],
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<(), Error<C::Error>> {
        loop {
            let now = clock.now();
            match self.connection.session_mut().send(now, message) {
                Ok(()) => return self.flush(now).map(drop),
                Err(SendError::WouldBlock) => self.round(clock, wait)?,
                Err(error) => return Err(Error::refused(error, self.connection.close_reason())),
            }
        }
    }

    /// Polls until the peer has acknowledged every message sent. Events that arrive meanwhile
    /// stay queued for [`next_event`](Self::next_event).
    pub fn drain(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<(), Error<C::Error>> {
        loop {
            if self.session().is_send_drained() && !self.has_output() {
                return Ok(());
            }
            if let Some(reason) = self.connection.close_reason() {
                return Err(Error::Closed(reason));
            }
            self.round(clock, wait)?;
        }
    }

    /// Closes gracefully: waits until everything sent is acknowledged and the peer confirmed;
    /// `Ok` when the session ended gracefully, by this side or (earlier) by the peer. Messages
    /// that arrive meanwhile are dropped; read them before closing.
    pub fn close(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<(), Error<C::Error>> {
        self.connection.session_mut().close(clock.now());
        loop {
            if let Some(done) = closed(self.next_event(clock, wait)) {
                return done;
            }
        }
    }

    /// Whether a round receives: while the session runs, and always on a server socket.
    fn is_receiving(&self) -> bool {
        C::REOPENS || !self.session().is_closed()
    }

    /// Polls until an event is ready, or the session ended and nothing more will come; sends
    /// the last packets of a session that ended first.
    fn wait_event(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<(), Error<C::Error>> {
        while !self.session().has_event() && self.is_receiving() {
            self.round(clock, wait)?;
        }
        if self.session().is_closed() && self.has_output() {
            self.linger(clock, wait)?;
        }
        Ok(())
    }

    /// One round, then a wait if it did nothing.
    fn round(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<(), Error<C::Error>> {
        if !self.poll(clock.now(), wait)? && !self.session().has_event() {
            let interest = match (self.is_receiving(), self.has_output()) {
                (true, true) => Interest::ReadWrite,
                (true, false) => Interest::Read,
                (false, _) => Interest::Write,
            };
            let (stack, socket) = self.conn.parts();
            wait.wait(stack, socket, interest, self.connection.poll_timeout());
        }
        Ok(())
    }

    /// Tries for a while to send what is left after the session ended.
    fn linger(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<C::Stack, C::Socket>,
    ) -> Result<(), Error<C::Error>> {
        let until = clock.now() + LINGER;
        loop {
            let now = clock.now();
            if self.flush(now)? || now >= until {
                return Ok(());
            }
            let (stack, socket) = self.conn.parts();
            wait.wait(stack, socket, Interest::Write, Some(until));
        }
    }
}

impl<S, F, B, const W: usize> NalLink<Tcp<S>, F, B, W>
where
    S: TcpClientStack,
    F: Framing,
    B: Buffer,
{
    /// Opens a TCP socket of `stack` and connects it to `remote`, calling the hook while the
    /// stack answers `WouldBlock`; the handshake follows with [`connect`](Self::connect).
    ///
    /// Gives up when the session's handshake timer runs out. On error the socket is closed.
    pub fn open(
        mut stack: S,
        remote: SocketAddr,
        connection: Connection<F, B, W>,
        read_buf: B,
        write_buf: B,
        clock: &mut impl Clock,
        wait: &mut impl Wait<S, S::TcpSocket>,
    ) -> Result<Self, Error<S::Error>> {
        let socket = stack.socket().map_err(Error::Io)?;
        let mut link = Self::new(Tcp::new(stack, socket), connection, read_buf, write_buf);
        let error = loop {
            let Tcp { stack, socket } = &mut link.conn;
            match stack.connect(socket, remote) {
                Ok(()) => return Ok(link),
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(error)) => break Error::Io(error),
            }
            link.connection.handle_timeout(clock.now());
            if let Some(reason) = link.connection.close_reason() {
                break Error::Closed(reason);
            }
            let (stack, socket) = link.conn.parts();
            wait.wait(stack, socket, Interest::Write, link.connection.poll_timeout());
        };
        let _ = link.conn.close();
        Err(error)
    }
}

impl<S, F, B, const W: usize> NalLink<Udp<S>, F, B, W>
where
    S: UdpClientStack,
    F: Framing,
    B: Buffer,
{
    /// Opens a UDP socket of `stack` connected to `remote`; the handshake follows with
    /// [`connect`](Self::connect). On error the socket is closed.
    pub fn open(
        mut stack: S,
        remote: SocketAddr,
        connection: Connection<F, B, W>,
        read_buf: B,
        write_buf: B,
    ) -> Result<Self, Error<S::Error>> {
        let mut socket = stack.socket().map_err(Error::Io)?;
        if let Err(error) = stack.connect(&mut socket, remote) {
            let _ = stack.close(socket);
            return Err(Error::Io(error));
        }
        Ok(Self::new(Udp::new(stack, socket, remote), connection, read_buf, write_buf))
    }
}

/// A listening TCP socket that hands out one connection at a time.
///
/// ```text
/// let mut server = TcpServer::bind(&mut stack, 7878)?;
/// loop {
///     let (socket, _from) = server.accept(&mut wait)?;
///     let connection = Connection::new(Session::server(config, .., clock.now()), ..);
///     let mut link = server.link(socket, connection, read_buf, write_buf);
///     // link.next_event(..) until Event::Closed or an error, then:
///     let _ = link.release();
/// }
/// ```
///
/// Make the session when the connection arrives: its handshake timer starts when it is made.
pub struct TcpServer<S: TcpFullStack> {
    stack: S,
    listener: S::TcpSocket,
}

impl<S: TcpFullStack> TcpServer<S> {
    /// Opens a socket of `stack`, binds it to `port` and listens. On error the socket is closed.
    pub fn bind(mut stack: S, port: u16) -> Result<Self, Error<S::Error>> {
        let mut listener = stack.socket().map_err(Error::Io)?;
        if let Err(error) = stack.bind(&mut listener, port).and_then(|()| stack.listen(&mut listener)) {
            let _ = stack.close(listener);
            return Err(Error::Io(error));
        }
        Ok(Self { stack, listener })
    }

    /// Accepts a pending connection if there is one, without waiting.
    pub fn poll_accept(&mut self) -> nb::Result<(S::TcpSocket, SocketAddr), S::Error> {
        self.stack.accept(&mut self.listener)
    }

    /// Waits for a connection, calling the hook (interest [`Interest::Read`] on the listening
    /// socket, no deadline) while none is pending.
    pub fn accept(
        &mut self,
        wait: &mut impl Wait<S, S::TcpSocket>,
    ) -> Result<(S::TcpSocket, SocketAddr), Error<S::Error>> {
        loop {
            match self.stack.accept(&mut self.listener) {
                Ok(accepted) => return Ok(accepted),
                Err(nb::Error::WouldBlock) => {
                    wait.wait(&mut self.stack, &self.listener, Interest::Read, None)
                }
                Err(nb::Error::Other(error)) => return Err(Error::Io(error)),
            }
        }
    }

    /// Runs `connection` (a server session) over an accepted `socket`. The link borrows the stack
    /// until it is dropped or released; [`release`](NalLink::release) closes the socket.
    pub fn link<F, B, const W: usize>(
        &mut self,
        socket: S::TcpSocket,
        connection: Connection<F, B, W>,
        read_buf: B,
        write_buf: B,
    ) -> TcpLink<&mut S, F, B, W>
    where
        F: Framing,
        B: Buffer,
    {
        NalLink::new(Tcp::new(&mut self.stack, socket), connection, read_buf, write_buf)
    }

    /// The stack.
    pub fn stack_mut(&mut self) -> &mut S {
        &mut self.stack
    }

    /// Closes the listening socket and gives back the stack.
    pub fn close(mut self) -> Result<S, S::Error> {
        self.stack.close(self.listener)?;
        Ok(self.stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{CobsDecoder, LengthDelimitedDecoder};
    use crate::session::{CloseReason, Config, Timeout};
    use core::cell::{Cell, RefCell};
    use core::net::{IpAddr, Ipv4Addr};
    use std::collections::{BTreeMap, VecDeque};
    use std::rc::Rc;
    use std::vec;
    use std::vec::Vec;

    // ---- An in-memory network implementing the four embedded-nal stack traits ----

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum MockError {
        Refused,
        PipeClosed,
        OutOfOrder,
    }

    impl TcpError for MockError {
        fn kind(&self) -> TcpErrorKind {
            match self {
                Self::PipeClosed => TcpErrorKind::PipeClosed,
                _ => TcpErrorKind::Other,
            }
        }
    }

    /// One TCP connection: `data[s]` waits for side `s` to read it; side 0 connected, side 1
    /// was accepted.
    #[derive(Default)]
    struct Pipe {
        data: [VecDeque<u8>; 2],
        closed: [bool; 2],
    }

    #[derive(Default)]
    struct Net {
        pipes: Vec<Pipe>,
        /// Connections waiting to be accepted, per listening port.
        backlog: BTreeMap<u16, VecDeque<(usize, SocketAddr)>>,
        /// Bytes one direction of a pipe holds; a full pipe answers WouldBlock.
        capacity: usize,
        /// `connect` answers WouldBlock this many times first.
        connect_would_block: usize,
        /// A TCP receive with nothing to read panics instead of answering WouldBlock, like a
        /// blocking socket that would hang the thread.
        blocking_receive: bool,
        next_port: u16,
        tcp_receives: usize,
    }

    #[derive(Clone)]
    struct Mock(Rc<RefCell<Net>>);

    impl Mock {
        fn new(capacity: usize) -> Self {
            Self(Rc::new(RefCell::new(Net { capacity, next_port: 40000, ..Net::default() })))
        }
        fn net(&self) -> core::cell::RefMut<'_, Net> {
            self.0.borrow_mut()
        }
    }

    fn local(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    #[derive(Debug)]
    enum TcpSock {
        New,
        Bound(u16),
        Listening(u16),
        Open { pipe: usize, side: usize },
    }

    impl TcpClientStack for Mock {
        type TcpSocket = TcpSock;
        type Error = MockError;

        fn socket(&mut self) -> Result<TcpSock, MockError> {
            Ok(TcpSock::New)
        }

        fn connect(&mut self, socket: &mut TcpSock, remote: SocketAddr) -> nb::Result<(), MockError> {
            let mut net = self.net();
            if net.connect_would_block > 0 {
                net.connect_would_block -= 1;
                return Err(nb::Error::WouldBlock);
            }
            let from = local(net.next_port);
            net.next_port += 1;
            let pipe = net.pipes.len();
            let backlog = net.backlog.get_mut(&remote.port()).ok_or(MockError::Refused)?;
            backlog.push_back((pipe, from));
            net.pipes.push(Pipe::default());
            *socket = TcpSock::Open { pipe, side: 0 };
            Ok(())
        }

        fn send(&mut self, socket: &mut TcpSock, buffer: &[u8]) -> nb::Result<usize, MockError> {
            let TcpSock::Open { pipe, side } = *socket else { return Err(MockError::OutOfOrder.into()) };
            let mut net = self.net();
            let capacity = net.capacity;
            let pipe = &mut net.pipes[pipe];
            if pipe.closed[1 - side] {
                return Err(MockError::PipeClosed.into());
            }
            let room = capacity - pipe.data[1 - side].len();
            if room == 0 {
                return Err(nb::Error::WouldBlock);
            }
            let n = room.min(buffer.len());
            pipe.data[1 - side].extend(&buffer[..n]);
            Ok(n)
        }

        fn receive(&mut self, socket: &mut TcpSock, buffer: &mut [u8]) -> nb::Result<usize, MockError> {
            let TcpSock::Open { pipe, side } = *socket else { return Err(MockError::OutOfOrder.into()) };
            let mut net = self.net();
            net.tcp_receives += 1;
            let blocking = net.blocking_receive;
            let pipe = &mut net.pipes[pipe];
            if pipe.data[side].is_empty() {
                assert!(!blocking || pipe.closed[1 - side], "a receive on a blocking socket would hang");
                return if pipe.closed[1 - side] { Ok(0) } else { Err(nb::Error::WouldBlock) };
            }
            let n = buffer.len().min(pipe.data[side].len());
            for (dst, src) in buffer.iter_mut().zip(pipe.data[side].drain(..n)) {
                *dst = src;
            }
            Ok(n)
        }

        fn close(&mut self, socket: TcpSock) -> Result<(), MockError> {
            let mut net = self.net();
            match socket {
                TcpSock::Open { pipe, side } => net.pipes[pipe].closed[side] = true,
                TcpSock::Listening(port) => drop(net.backlog.remove(&port)),
                TcpSock::New | TcpSock::Bound(_) => {}
            }
            Ok(())
        }
    }

    impl TcpFullStack for Mock {
        fn bind(&mut self, socket: &mut TcpSock, port: u16) -> Result<(), MockError> {
            *socket = TcpSock::Bound(port);
            Ok(())
        }

        fn listen(&mut self, socket: &mut TcpSock) -> Result<(), MockError> {
            let TcpSock::Bound(port) = *socket else { return Err(MockError::OutOfOrder) };
            self.net().backlog.insert(port, VecDeque::new());
            *socket = TcpSock::Listening(port);
            Ok(())
        }

        fn accept(&mut self, socket: &mut TcpSock) -> nb::Result<(TcpSock, SocketAddr), MockError> {
            let TcpSock::Listening(port) = *socket else { return Err(MockError::OutOfOrder.into()) };
            let mut net = self.net();
            let (pipe, from) =
                net.backlog.get_mut(&port).and_then(VecDeque::pop_front).ok_or(nb::Error::WouldBlock)?;
            Ok((TcpSock::Open { pipe, side: 1 }, from))
        }
    }

    // ---- Hooks, clock and links ----

    /// A virtual clock shared by both ends.
    #[derive(Clone, Default)]
    struct VirtualClock(Rc<Cell<Instant>>);

    impl Clock for VirtualClock {
        fn now(&mut self) -> Instant {
            self.0.get()
        }
    }

    impl VirtualClock {
        fn sleep_until(&self, deadline: Option<Instant>) {
            if let Some(deadline) = deadline {
                self.0.set(self.0.get().max(deadline));
            }
        }
    }

    /// A hook that records each call, runs `other` (the far end's round), then sleeps until the
    /// deadline if `other` did nothing.
    struct Hook<F> {
        calls: usize,
        interests: Vec<Interest>,
        clock: VirtualClock,
        other: F,
    }

    fn hook<F: FnMut() -> bool>(clock: &VirtualClock, other: F) -> Hook<F> {
        Hook { calls: 0, interests: Vec::new(), clock: clock.clone(), other }
    }

    impl<S, K, F: FnMut() -> bool> Wait<S, K> for Hook<F> {
        fn wait(&mut self, _: &mut S, _: &K, interest: Interest, deadline: Option<Instant>) {
            self.calls += 1;
            self.interests.push(interest);
            assert!(self.calls < 10_000, "the driver keeps waiting");
            if !(self.other)() {
                self.clock.sleep_until(deadline);
            }
        }
    }

    const MAX_PACKET: usize = 600;
    type Ld = LengthDelimitedDecoder<MAX_PACKET>;
    type Framed<F> = Connection<F, Vec<u8>>;

    fn config() -> Config {
        Config::new().max_payload(500)
    }

    fn framed<F: Framing>(session: Session<Vec<u8>>, decoder: F) -> Framed<F> {
        Connection::new(session, decoder, vec![0; MAX_PACKET])
    }

    fn client<F: Framing>(id: u32, decoder: F, now: Instant) -> Framed<F> {
        framed(Session::client(config(), id, vec![0; 4096], vec![0; 4096], now), decoder)
    }

    fn server<F: Framing>(decoder: F, now: Instant) -> Framed<F> {
        framed(Session::server(config(), vec![0; 4096], vec![0; 4096], now), decoder)
    }

    fn bufs() -> (Vec<u8>, Vec<u8>) {
        (vec![0; 256], vec![0; 2 * MAX_PACKET])
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

    /// A TCP client connected to a fresh server link on `port`, both after the handshake.
    type TcpEnd<S> = TcpLink<S, Ld, Vec<u8>>;

    fn tcp_pair<'a>(
        mock: &Mock,
        server: &'a mut TcpServer<Mock>,
        clock: &VirtualClock,
    ) -> (TcpEnd<Mock>, TcpEnd<&'a mut Mock>) {
        let (rb, wb) = bufs();
        let now = clock.0.get();
        let mut clock = clock.clone();
        let mut client = TcpLink::open(
            mock.clone(),
            local(80),
            client(7, Ld::new(), now),
            rb,
            wb,
            &mut clock,
            &mut idle(),
        )
        .unwrap();
        let (socket, _) = server.poll_accept().unwrap();
        let (rb, wb) = bufs();
        let mut server = server.link(socket, self::server(Ld::new(), now), rb, wb);
        client.poll(now, &mut idle()).unwrap(); // HELLO
        assert_eq!(server.next_event(&mut clock, &mut idle()).unwrap(), Event::Connected);
        client.connect(&mut clock, &mut idle()).unwrap();
        (client, server)
    }

    // ---- TCP ----

    #[test]
    fn tcp_handshake_and_messages_both_ways() {
        let mock = Mock::new(1 << 16);
        let clock = VirtualClock::default();
        let mut listener = TcpServer::bind(mock.clone(), 80).unwrap();
        let (mut client, mut server) = tcp_pair(&mock, &mut listener, &clock);
        let mut c = clock.clone();
        client.send(&mut c, b"Hello, Server!", &mut idle()).unwrap();
        client.send(&mut c, &[7; 1500], &mut idle()).unwrap(); // three fragments
        assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Message(b"Hello, Server!"));
        assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Message(&[7; 1500]));
        server.send(&mut c, b"Hello, Client!", &mut idle()).unwrap();
        assert_eq!(client.next_event(&mut c, &mut idle()).unwrap(), Event::Message(b"Hello, Client!"));
        let mut server_round = || server.poll(clock.0.get(), &mut idle()).unwrap();
        client.close(&mut c, &mut hook(&clock, &mut server_round)).unwrap();
        assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Closed(CloseReason::Peer));
        assert!(matches!(server.next_event(&mut c, &mut idle()), Err(Error::Closed(CloseReason::Peer))));
        assert_eq!(client.close(&mut c, &mut idle()), Ok(()), "closing again is a no-op");
        server.release().unwrap();
        client.release().unwrap();
    }

    #[test]
    fn tcp_server_serves_one_connection_after_another() {
        let mock = Mock::new(1 << 16);
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let mut listener = TcpServer::bind(mock.clone(), 80).unwrap();
        for round in 0..3u8 {
            let (mut client, mut server) = tcp_pair(&mock, &mut listener, &clock);
            client.send(&mut c, &[round], &mut idle()).unwrap();
            assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Message(&[round]));
            let mut server_round = || server.poll(clock.0.get(), &mut idle()).unwrap();
            client.close(&mut c, &mut hook(&clock, &mut server_round)).unwrap();
            assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Closed(CloseReason::Peer));
            server.release().unwrap();
        }
        assert!(matches!(listener.poll_accept(), Err(nb::Error::WouldBlock)));
        listener.close().unwrap();
    }

    #[test]
    fn tcp_over_cobs_framing() {
        let mock = Mock::new(1 << 16);
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let now = Instant::ZERO;
        let mut listener = TcpServer::bind(mock.clone(), 80).unwrap();
        let (rb, wb) = bufs();
        let framed = client::<CobsDecoder<MAX_PACKET>>(1, CobsDecoder::new(), now);
        let mut client = TcpLink::open(mock.clone(), local(80), framed, rb, wb, &mut c, &mut idle()).unwrap();
        let (socket, _) = listener.poll_accept().unwrap();
        let (rb, wb) = bufs();
        let mut server =
            listener.link(socket, server::<CobsDecoder<MAX_PACKET>>(CobsDecoder::new(), now), rb, wb);
        let mut server_round = || server.poll(clock.0.get(), &mut idle()).unwrap();
        client.connect(&mut c, &mut hook(&clock, &mut server_round)).unwrap();
        client.send(&mut c, &[0; 700], &mut idle()).unwrap();
        assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Connected);
        assert_eq!(server.next_event(&mut c, &mut idle()).unwrap(), Event::Message(&[0; 700]));
    }

    #[test]
    fn connect_would_block_calls_the_hook_for_write() {
        let mock = Mock::new(1 << 16);
        mock.net().connect_would_block = 3;
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let _listener = TcpServer::bind(mock.clone(), 80).unwrap();
        let (rb, wb) = bufs();
        let mut wait = hook(&clock, || true);
        let framed = client::<Ld>(1, Ld::new(), Instant::ZERO);
        TcpLink::open(mock.clone(), local(80), framed, rb, wb, &mut c, &mut wait).unwrap();
        assert_eq!(wait.calls, 3);
        assert_eq!(wait.interests, [Interest::Write; 3]);
        assert!(clock.0.get() < Instant::from_millis(10_000), "no time passed while connecting");
    }

    #[test]
    fn connect_gives_up_at_the_handshake_timeout_and_refusals_are_errors() {
        let mock = Mock::new(1 << 16);
        mock.net().connect_would_block = usize::MAX;
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let (rb, wb) = bufs();
        let mut wait = hook(&clock, || false);
        let framed = client::<Ld>(1, Ld::new(), Instant::ZERO);
        let result = TcpLink::open(mock.clone(), local(80), framed, rb, wb, &mut c, &mut wait);
        assert!(matches!(result, Err(Error::Closed(CloseReason::TimedOut(Timeout::Handshake)))));
        assert_eq!(wait.calls, 1, "one wait until the deadline, no spinning");

        mock.net().connect_would_block = 0;
        let (rb, wb) = bufs();
        let framed = client::<Ld>(1, Ld::new(), Instant::ZERO);
        let result = TcpLink::open(mock.clone(), local(81), framed, rb, wb, &mut c, &mut idle());
        assert!(matches!(result, Err(Error::Io(MockError::Refused))));
    }

    #[test]
    fn waiting_for_an_answer_never_spins() {
        let mock = Mock::new(1 << 16);
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let _listener = TcpServer::bind(mock.clone(), 80).unwrap();
        let (rb, wb) = bufs();
        let framed = client::<Ld>(1, Ld::new(), Instant::ZERO);
        let mut link = TcpLink::open(mock.clone(), local(80), framed, rb, wb, &mut c, &mut idle()).unwrap();
        // Nobody accepts: the HELLO goes out, nothing comes back until the handshake timer.
        let mut wait = hook(&clock, || false);
        let result = link.connect(&mut c, &mut wait);
        assert_eq!(result, Err(Error::Closed(CloseReason::TimedOut(Timeout::Handshake))));
        assert_eq!(wait.calls, 1);
        assert_eq!(wait.interests, [Interest::Read]);
        assert!(mock.net().tcp_receives <= wait.calls + 1, "one receive per wait at most");
    }

    #[test]
    fn a_full_socket_waits_for_read_or_write_and_the_far_end_drains_it() {
        let mock = Mock::new(64); // a pipe holds 64 bytes each way
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let mut listener = TcpServer::bind(mock.clone(), 80).unwrap();
        let (mut client, mut server) = tcp_pair(&mock, &mut listener, &clock);
        let mut received = Vec::new();
        let mut server_round = || {
            let progress = server.poll(clock.0.get(), &mut idle()).unwrap();
            while let Some(Event::Message(m)) = server.session_mut().poll_event() {
                received.push(m.to_vec());
            }
            progress
        };
        let mut wait = hook(&clock, &mut server_round);
        for i in 0..5u8 {
            client.send(&mut c, &[i; 700], &mut wait).unwrap();
        }
        client.drain(&mut c, &mut wait).unwrap();
        assert!(wait.interests.contains(&Interest::ReadWrite), "{:?}", wait.interests);
        assert_eq!(clock.0.get(), Instant::ZERO, "never slept: every wait found the far end busy");
        drop(wait);
        let expected: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 700]).collect();
        assert_eq!(received, expected);
    }

    #[test]
    fn a_connection_closed_mid_message_is_connection_lost() {
        let mock = Mock::new(100);
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let mut listener = TcpServer::bind(mock.clone(), 80).unwrap();
        let (mut client, mut server) = tcp_pair(&mock, &mut listener, &clock);
        client.send(&mut c, &[9; 400], &mut idle()).unwrap();
        assert!(client.has_output(), "only the first 100 bytes went");
        // The client goes away with the rest of its frame.
        let (conn, _) = client.into_parts();
        conn.close().unwrap();
        assert_eq!(server.next_event(&mut c, &mut idle()), Err(Error::ConnectionLost));
        assert_eq!(server.session().stats().messages_received, 0);
    }

    #[test]
    fn a_closed_pipe_on_send_is_connection_lost() {
        let mock = Mock::new(1 << 16);
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let mut listener = TcpServer::bind(mock.clone(), 80).unwrap();
        let (mut client, server) = tcp_pair(&mock, &mut listener, &clock);
        server.release().unwrap();
        assert_eq!(client.send(&mut c, b"anyone?", &mut idle()), Err(Error::ConnectionLost));
    }

    /// A hook for sockets that block on receive: it says yes only when data (or the end) is
    /// there, the way `framelink_std::nal::MioWait` asks the OS.
    struct Readiness {
        mock: Mock,
        clock: VirtualClock,
    }

    impl<S> Wait<S, TcpSock> for Readiness {
        fn wait(&mut self, _: &mut S, _: &TcpSock, _: Interest, deadline: Option<Instant>) {
            self.clock.sleep_until(deadline);
        }
        fn may_receive(&mut self, _: &mut S, socket: &TcpSock) -> bool {
            let TcpSock::Open { pipe, side } = *socket else { return false };
            let net = self.mock.net();
            !net.pipes[pipe].data[side].is_empty() || net.pipes[pipe].closed[1 - side]
        }
    }

    #[test]
    fn a_blocking_socket_is_read_only_when_the_hook_says_so() {
        let mock = Mock::new(1 << 16);
        let clock = VirtualClock::default();
        let mut c = clock.clone();
        let mut listener = TcpServer::bind(mock.clone(), 80).unwrap();
        let (mut client, mut server) = tcp_pair(&mock, &mut listener, &clock);
        mock.net().blocking_receive = true;
        let mut ready = Readiness { mock: mock.clone(), clock: clock.clone() };
        client.send(&mut c, b"one", &mut idle()).unwrap();
        assert_eq!(server.next_event(&mut c, &mut ready).unwrap(), Event::Message(b"one"));
        // Nothing more comes: the server's timers still run (keepalive, then idle timeout).
        assert_eq!(
            server.next_event(&mut c, &mut ready).unwrap(),
            Event::Closed(CloseReason::TimedOut(Timeout::Idle))
        );
        assert!(clock.0.get() >= Instant::from_millis(30_000));
    }
}
