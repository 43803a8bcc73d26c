//! A connected session over a std socket: [`Link`], its [`LinkConfig`] and its events.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::ops::Range;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use framelink_core::auth::{Psk, SEAL_OVERHEAD, SessionAuth, Suite};
use framelink_core::framing::DecoderStats;
use framelink_core::session::{
    CloseReason, Config, Event, PeerParams, RttStats, SendError, Session, State, Stats, Timeout,
};
use framelink_core::wire::OVERHEAD;

use crate::cancel::{CANCEL_POLL, CancelToken};
use crate::clock::StdClock;
use crate::conn::{FEED_BATCH, Framed, Sess, zeroed};
use crate::serial::SerialPort;
use crate::sniff::{SAMPLE, other_framing};
use crate::socket::LinkSocket;
pub(crate) use crate::socket::{Socket, lost_or_io};
use crate::{LinkError, ToAddr, Transport};

/// Room in each session buffer beyond one largest message, so that smaller messages queue
/// behind a large one instead of waiting for it.
const ROOM: usize = 64 * 1024;
/// Further room on TCP, so that about 1 MiB can be in flight: a receiver that wakes some tens of
/// microseconds after data arrives still finds the link busy at 25 Gbit/s (with 64 KiB only,
/// loopback ran at about 0.6 times the rate iperf3 reaches).
const TCP_ROOM: usize = 1024 * 1024 - ROOM;
/// Buffer for each read from a stream: several largest frames, so that a frame usually lies
/// whole in one read and is decoded where it lies (no copy into the decoder).
const STREAM_READ: usize = 256 * 1024;
/// Largest frames per write on a stream: fewer system calls for bulk data; small frames share a
/// write too. The buffer's pages are touched only as far as writes go.
const FRAMES_PER_WRITE: usize = 4;
/// Buffer for each datagram: any UDP payload, so that an oversized one is seen whole (and
/// refused) rather than cut.
const DATAGRAM_READ: usize = 65536;
/// Default window on UDP, in packets of 1200 bytes (9.8 MB): at 10% loss a hole at the front
/// takes two to four round trips to fill, and nothing passes the window's far end meanwhile,
/// so a path of 50 ms round trip still moves about 400 Mbit/s.
const UDP_WINDOW: u16 = 8192;
/// Default window on TCP and serial lines.
const STREAM_WINDOW: u16 = 16;
/// Default UDP payload: a packet fits the IPv6 minimum MTU (1280) with the IP and UDP headers.
const UDP_PAYLOAD: u16 = 1200;
/// The largest payload of a packet in one IPv4 UDP datagram.
const UDP_MAX_PAYLOAD: u16 = (65507 - OVERHEAD) as u16;
/// Default payload on a serial port: 256 bytes (as the firmware example), 22 ms at 115200
/// baud, so that a damaged packet costs little to send again.
const SERIAL_PAYLOAD: u16 = 256;

/// Settings of a [`Link`] (and, through [`ServerConfig`](crate::ServerConfig), of every session
/// a server serves).
///
/// ```
/// use std::time::Duration;
/// use framelink_std::LinkConfig;
///
/// let config = LinkConfig::new().max_message(1 << 20).handshake_timeout(Duration::from_secs(3));
/// assert_eq!(config, config.clone());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    pub(crate) max_message: u32,
    pub(crate) max_payload: Option<u16>,
    pub(crate) window: Option<u16>,
    pub(crate) keepalive: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) max_retransmits: u8,
    pub(crate) cancel: Option<CancelToken>,
    pub(crate) psk: Option<Psk>,
    pub(crate) ascon_only: bool,
}

impl LinkConfig {
    /// The default largest message: 256 KiB.
    pub const DEFAULT_MAX_MESSAGE: u32 = 256 * 1024;

    /// The defaults; see each setter.
    pub fn new() -> Self {
        Self {
            max_message: Self::DEFAULT_MAX_MESSAGE,
            max_payload: None,
            window: None,
            keepalive: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(10),
            max_retransmits: 10,
            cancel: None,
            psk: None,
            ascon_only: false,
        }
    }

    /// Keyed sessions: `key`, shared with the peer, authenticates the handshake and seals every
    /// packet (encrypted, authenticated, replay-protected; PROTOCOL.md section 15). A peer with
    /// another key is refused ("authentication failed: the peer has a different key"), and so is
    /// a peer without one: a keyed side never accepts a keyless session. A server given a key
    /// ([`ServerConfig::link`](crate::ServerConfig)) serves keyed sessions only.
    pub fn psk(mut self, key: Psk) -> Self {
        self.psk = Some(key);
        self
    }

    /// Keyed sessions offer and accept Ascon-AEAD128 only, as the firmware does, instead of
    /// preferring AES-256-GCM when the peer has it too (the default; PROTOCOL.md section 15.1).
    pub fn ascon_only(mut self, yes: bool) -> Self {
        self.ascon_only = yes;
        self
    }

    /// The pre-shared key, if sessions are keyed.
    pub fn psk_key(&self) -> Option<&Psk> {
        self.psk.as_ref()
    }

    /// Makes `session` keyed when this configuration has a key (its nonces seeded from the OS's
    /// random source); for drivers of their own that build the same sessions as [`Link`].
    ///
    /// # Panics
    ///
    /// If the OS's random source fails (as `getrandom` reports), which leaves no safe way to
    /// make nonces.
    pub fn keyed(&self, session: Sess) -> Sess {
        match &self.psk {
            Some(psk) => {
                let auth =
                    SessionAuth::new(psk, &mut getrandom::SysRng).expect("the OS's random source failed");
                let auth = if self.ascon_only { auth.ascon_only() } else { auth };
                session.with_auth(auth, Vec::new())
            }
            None => session,
        }
    }

    /// The largest message this side accepts and sends (default 256 KiB). It bounds the send
    /// and receive buffers (each grows as messages need, up to `max_message` + 64 KiB, or up
    /// to `max_message` + 1 MiB on TCP, and is given back once idle) and is announced in the
    /// handshake: the peer's session refuses to send anything larger, and a peer that does is
    /// answered with ERROR (message too large).
    pub fn max_message(mut self, bytes: u32) -> Self {
        self.max_message = bytes;
        self
    }

    /// The largest packet payload this side accepts (announced); longer messages travel in
    /// fragments. Default: 65535 on TCP, 1200 on UDP (one packet fits an Ethernet frame, with
    /// no IP fragmentation), 256 on a serial port; UDP caps it at 65494 (one IPv4 datagram).
    pub fn max_payload(mut self, bytes: u16) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Packets the peer may have in flight towards this side (announced). Default: 8192 on UDP
    /// (with 1200-byte packets and two to four round trips to repair a hole at the front at 10%
    /// loss, about 400 Mbit/s on a path of 50 ms round trip; the sender's congestion window
    /// finds what the path takes), 16 on TCP and serial lines (a serial line's rate needs no
    /// more). A session holds at most 8192 packets in flight: a larger window counts as 8192. Each session buffer may
    /// grow to hold a window of packets while they are in flight or held ahead of a gap, and
    /// shrinks when idle.
    pub fn window(mut self, packets: u16) -> Self {
        self.window = Some(packets);
        self
    }

    /// The window announced on `transport`.
    fn window_for(&self, transport: Transport) -> u16 {
        let default = if transport == Transport::Udp { UDP_WINDOW } else { STREAM_WINDOW };
        self.window.unwrap_or(default)
    }

    /// Send a keepalive PING after this long without hearing from the peer (default 5 s).
    pub fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self
    }

    /// End the session after this long without hearing from the peer (default 30 s); also how
    /// long a write (to a socket or a serial port) may block and how long sent data may wait for an acknowledgement before
    /// [`LinkError::Stalled`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Give up on a TCP connect, or on a handshake, after this long (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// After [`Link::close`], give up waiting for the peer's confirmation after this long
    /// (default 10 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// With retransmission (on `udp://`, `tcp+cobs://` and `serial://`, or when the peer asks
    /// for it): the dead-link limit, retransmission timeouts in a row without progress before
    /// the session ends (default 10).
    pub fn max_retransmits(mut self, count: u8) -> Self {
        self.max_retransmits = count;
        self
    }

    /// Give up waiting once `token` is cancelled: the connect (TCP connect and handshake) and
    /// every blocking call of the link end with [`LinkError::Interrupted`] within about 100 ms
    /// (default: none; waits end only at their timeouts). For clients: a server's sessions do
    /// not look at it.
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The largest message, as set by [`max_message`](Self::max_message).
    pub fn max_message_value(&self) -> u32 {
        self.max_message
    }

    /// The idle timeout, as set by [`idle_timeout`](Self::idle_timeout).
    pub fn idle_timeout_value(&self) -> Duration {
        self.idle_timeout
    }

    /// The handshake timeout, as set by [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout_value(&self) -> Duration {
        self.handshake_timeout
    }

    /// The close timeout, as set by [`close_timeout`](Self::close_timeout).
    pub fn close_timeout_value(&self) -> Duration {
        self.close_timeout
    }

    /// The keepalive interval, as set by [`keepalive`](Self::keepalive).
    pub fn keepalive_value(&self) -> Duration {
        self.keepalive
    }

    fn payload_limit(&self, transport: Transport) -> u16 {
        match transport {
            Transport::Udp => self.max_payload.unwrap_or(UDP_PAYLOAD).min(UDP_MAX_PAYLOAD),
            Transport::Tcp | Transport::TcpCobs => self.max_payload.unwrap_or(u16::MAX),
            Transport::Serial => self.max_payload.unwrap_or(SERIAL_PAYLOAD),
        }
    }

    /// The largest packet this side sends or accepts over `transport` (13 + its max payload,
    /// and 24 more when sessions are keyed: a sealed packet's number and tag).
    pub fn packet_len(&self, transport: Transport) -> usize {
        let sealing = if self.psk.is_some() { SEAL_OVERHEAD } else { 0 };
        OVERHEAD + usize::from(self.payload_limit(transport)) + sealing
    }

    /// The size each session buffer may grow to: `max_message` + 64 KiB.
    pub fn buffer_len(&self) -> usize {
        usize::try_from(self.max_message).unwrap_or(usize::MAX - ROOM - 4) + 4 + ROOM
    }

    /// The session settings for `transport`: retransmission on where the transport may lose,
    /// duplicate, reorder or corrupt (UDP, a serial port, and a serial line behind
    /// `tcp+cobs://`).
    ///
    /// Each session buffer starts empty and grows as messages need, up to
    /// `max_message` + 64 KiB (+ 1 MiB on TCP, so that a fast link stays busy; with
    /// retransmission, room for the window in flight); the session gives the room back once
    /// idle. For drivers of
    /// their own (the tokio adapter) that build the same sessions as [`Link`].
    pub fn session_config(&self, transport: Transport) -> Config {
        // With retransmission the receiver holds up to a window of packets ahead of a gap, and
        // its credit (the buffer) must let a window be in flight: room for both.
        let window = self.window_for(transport);
        let in_flight = usize::from(window) * (usize::from(self.payload_limit(transport)) + 4);
        let room = if transport == Transport::Tcp { TCP_ROOM } else { in_flight.saturating_sub(ROOM) };
        let buffer = u32::try_from(self.buffer_len().saturating_add(room)).unwrap_or(u32::MAX);
        Config::new()
            .max_send_buffer(buffer)
            .max_receive_buffer(buffer)
            .retransmit(matches!(transport, Transport::Udp | Transport::TcpCobs | Transport::Serial))
            .max_payload(self.payload_limit(transport))
            .max_message(self.max_message)
            .window(window)
            .keepalive(self.keepalive)
            .idle_timeout(self.idle_timeout)
            .handshake_timeout(self.handshake_timeout)
            .close_timeout(self.close_timeout)
            .max_retransmits(self.max_retransmits)
    }

    /// A server-side session for a peer that is about to say HELLO.
    pub(crate) fn server_session(&self, transport: Transport, clock: &StdClock) -> Sess {
        self.keyed(Session::server(
            self.server_session_config(transport),
            Vec::new(),
            Vec::new(),
            clock.now(),
        ))
    }

    /// A server session's settings: a client's, with keepalives spread, so that clients that
    /// connected together (after a restart, or from a load tool) are not pinged as a herd.
    pub fn server_session_config(&self, transport: Transport) -> Config {
        self.session_config(transport).spread_keepalives(true)
    }
}

/// A new random pre-shared key, from the OS's random source (for [`LinkConfig::psk`]; both
/// sides need the same key, carried over a safe channel).
pub fn new_psk() -> io::Result<Psk> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(io::Error::other)?;
    let psk = Psk::new(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    Ok(psk)
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Something that happened on a [`Link`], owned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// A whole message, delivered once and in order.
    Message(Vec<u8>),
    /// The answer to [`Link::ping`].
    Pong {
        /// The token `ping` returned.
        token: u32,
        /// The measured round trip.
        rtt: Duration,
    },
    /// The session ended (after every message that arrived before the end); reported once.
    Closed(CloseReason),
}

/// Something that happened on a [`Link`], borrowing the message from the link's receive
/// buffer (no copy); from [`Link::next_event_ref`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEventRef<'a> {
    /// A whole message, valid until the next call on the link.
    Message(&'a [u8]),
    /// The answer to [`Link::ping`].
    Pong {
        /// The token `ping` returned.
        token: u32,
        /// The measured round trip.
        rtt: Duration,
    },
    /// The session ended; reported once.
    Closed(CloseReason),
}

impl LinkEventRef<'_> {
    /// The event with its message copied.
    pub fn into_owned(self) -> LinkEvent {
        match self {
            Self::Message(message) => LinkEvent::Message(message.to_vec()),
            Self::Pong { token, rtt } => LinkEvent::Pong { token, rtt },
            Self::Closed(reason) => LinkEvent::Closed(reason),
        }
    }
}

/// Acknowledgement progress, watched while waiting for it.
#[derive(Clone, Copy, Debug)]
struct Watch {
    mark: (usize, u64),
    since: StdInstant,
}

/// A session connected to its peer over a std socket: TCP (length-delimited framing), UDP (one
/// packet per datagram) or TCP carrying COBS (a serial line bridged to TCP); or over a serial
/// port, carrying COBS.
///
/// Every call drives the link: it writes what the session has to send, reads with a timeout set
/// to the session's next deadline (keepalive, idle) or the caller's, and runs the timers. There
/// is no background thread and no busy waiting, so a link answers its peer (acknowledgements,
/// keepalives) only while it is called: an application that leaves a link alone for longer than
/// the peer's idle timeout loses it. Frames are written in batches, one system call each, with
/// `TCP_NODELAY` set; the acknowledgement of a received message rides on the next message sent
/// when that comes first.
///
/// Over `udp://`, `tcp+cobs://` and `serial://` the session runs with retransmission (selective repeat,
/// RFC 6298 timers): datagrams or bytes the transport loses, duplicates, reorders or corrupts
/// are repaired, and a link that stops acknowledging for good ends with a dead-link error
/// (or [`LinkError::Stalled`] after the idle timeout).
///
/// ```
/// use std::time::Duration;
/// use framelink_std::{Link, LinkConfig, LinkEvent, PeerInfo, Reply, Server, ServerConfig};
///
/// // A server on an ephemeral loopback port that answers every message with its length.
/// let server = Server::bind(&["tcp://127.0.0.1:0"], ServerConfig::new())?;
/// let addr = server.local_addrs()[0].clone();
/// let handle = server.spawn(|_: &PeerInfo, message: &[u8], reply: &mut Reply<'_>| {
///     let _ = reply.send(message.len().to_string().as_bytes());
/// })?;
///
/// let mut link = Link::connect(&addr)?;
/// link.send(b"Hello, Server!")?;
/// let answer = link.next_event(Some(Duration::from_secs(5)))?;
/// assert_eq!(answer, Some(LinkEvent::Message(b"14".to_vec())));
/// link.close()?;
/// handle.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Link {
    /// Boxed: session, framing and keys are a few KiB, so the link moves as a pointer.
    framed: Box<Framed>,
    socket: LinkSocket,
    transport: Transport,
    clock: StdClock,
    read_buf: Box<[u8]>,
    write_buf: Box<[u8]>,
    local: SocketAddr,
    peer: SocketAddr,
    stall_after: Duration,
    cancel: Option<CancelToken>,
    /// Until the handshake is done: the first bytes the peer sent, and how many in all.
    handshake_bytes: Option<(Vec<u8>, u64)>,
    /// Message bytes [`feed`](Link::feed) queued since the last write.
    fed: usize,
    /// Bytes of `read_buf` not yet fed to the session: what followed a message lent from it,
    /// or (`incomplete`) the start of a frame whose rest the next read appends.
    unfed: Range<usize>,
    incomplete: bool,
}

impl Link {
    /// Connects to `addr` with the default settings ([`LinkConfig::new`]) and completes the
    /// handshake; [`connect_with`](Self::connect_with) says how it fails.
    ///
    /// `addr` is an [`Addr`](crate::Addr) (owned or borrowed) or its text, `"tcp://127.0.0.1:7878"` (see
    /// [`ToAddr`]); text that is no address fails with [`LinkError::Addr`].
    ///
    /// ```
    /// use framelink_std::{AddrError, Link, LinkError};
    ///
    /// let error = Link::connect("tcp://no-port").unwrap_err();
    /// assert!(matches!(error, LinkError::Addr(AddrError::MissingPort(_))));
    /// ```
    pub fn connect<A: ToAddr>(addr: A) -> Result<Self, LinkError> {
        Self::connect_with(addr, &LinkConfig::new())
    }

    /// Connects to `addr` with `config` and completes the handshake.
    ///
    /// Tries each address the host resolves to in turn. Fails with [`LinkError::Io`] when no
    /// server is there (connection refused, unreachable, TCP connect timed out), with
    /// [`LinkError::Refused`] when the server refused the handshake (another protocol version,
    /// a full server), with [`LinkError::NoAnswer`] when the handshake timed out (saying which
    /// framing the peer's bytes looked like, if they looked like the other one), or with
    /// [`LinkError::Interrupted`] once the config's [`CancelToken`] is cancelled.
    ///
    /// A `serial://` address opens the port (exclusively), or fails with
    /// [`LinkError::Serial`] saying why it could not (no such port, permission denied, busy,
    /// unsupported baud rate).
    pub fn connect_with<A: ToAddr>(addr: A, config: &LinkConfig) -> Result<Self, LinkError> {
        let addr = addr.to_addr()?;
        if addr.transport == Transport::Serial {
            let port = SerialPort::open(&addr.host, &addr.serial_settings()).map_err(LinkError::Serial)?;
            return Self::start(Socket::Serial(port), Transport::Serial, config);
        }
        let mut last = None;
        for target in addr.resolve()? {
            match Self::connect_to(target, addr.transport, config) {
                Ok(link) => return Ok(link),
                Err(LinkError::Io(error)) => last = Some(error),
                Err(other) => return Err(other),
            }
        }
        Err(LinkError::Io(last.unwrap_or_else(|| io::ErrorKind::NotFound.into())))
    }

    fn connect_to(target: SocketAddr, transport: Transport, config: &LinkConfig) -> Result<Self, LinkError> {
        let socket = match transport {
            Transport::Udp => {
                let any: SocketAddr = if target.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(any)?;
                crate::conn::raise_udp_recv_buffer(&socket);
                socket.connect(target)?;
                Socket::Datagram(socket)
            }
            Transport::Tcp | Transport::TcpCobs => Socket::Stream(Arc::new(tcp_connect(
                target,
                config.handshake_timeout,
                config.cancel.as_ref(),
            )?)),
            Transport::Serial => return Err(LinkError::Io(io::ErrorKind::InvalidInput.into())),
        };
        Self::start(socket, transport, config)
    }

    /// A client session over `socket`, once the handshake is done.
    fn start(socket: Socket, transport: Transport, config: &LinkConfig) -> Result<Self, LinkError> {
        let clock = StdClock::new();
        let session = config.keyed(Session::client(
            config.session_config(transport),
            session_id(),
            Vec::new(),
            Vec::new(),
            clock.now(),
        ));
        let mut link = Self::new(socket, transport, config, session, clock)?;
        link.cancel = config.cancel.clone();
        link.handshake_bytes = Some((Vec::new(), 0));
        link.handshake()?;
        link.handshake_bytes = None;
        Ok(link)
    }

    /// A link over `socket` running `session`.
    pub(crate) fn new(
        socket: Socket,
        transport: Transport,
        config: &LinkConfig,
        session: Sess,
        clock: StdClock,
    ) -> io::Result<Self> {
        let socket = LinkSocket::new(socket, config.idle_timeout)?;
        let (local, peer) = socket.addrs()?;
        let packet_len = config.packet_len(transport);
        let framed = Box::new(Framed::new(transport, session, packet_len));
        let frame = framed.max_frame();
        let (read_len, write_len) = if socket.is_datagram() {
            (DATAGRAM_READ, frame)
        } else {
            (STREAM_READ, FRAMES_PER_WRITE * frame)
        };
        let (read_buf, write_buf) = (zeroed(read_len), zeroed(write_len));
        Ok(Self {
            framed,
            socket,
            transport,
            clock,
            read_buf,
            write_buf,
            local,
            peer,
            stall_after: config.idle_timeout,
            cancel: None,
            handshake_bytes: None,
            fed: 0,
            unfed: 0..0,
            incomplete: false,
        })
    }

    /// The error for a handshake that timed out: what the peer sent meanwhile, if anything.
    fn no_answer(&self) -> LinkError {
        let (sample, bytes_received) =
            self.handshake_bytes.as_ref().map_or((&[][..], 0), |(s, n)| (&s[..], *n));
        let looks_like =
            if self.decoder_stats().frames == 0 { other_framing(self.transport, sample) } else { None };
        LinkError::NoAnswer { transport: self.transport, bytes_received, looks_like }
    }

    /// Gives the link a [`CancelToken`] (or none), in place of the one its
    /// [`LinkConfig::cancel_token`] gave.
    pub fn set_cancel_token(&mut self, token: Option<CancelToken>) {
        self.cancel = token;
    }

    /// [`LinkError::Interrupted`] once the cancel token is cancelled.
    fn check_cancel(&self) -> Result<(), LinkError> {
        match &self.cancel {
            Some(token) if token.is_cancelled() => Err(LinkError::Interrupted),
            _ => Ok(()),
        }
    }

    /// As the server side: waits for a peer's HELLO and the end of the handshake, until
    /// `until` (`None`: as long as it takes).
    pub(crate) fn accept_handshake(&mut self, until: Option<StdInstant>) -> Result<(), LinkError> {
        loop {
            while !self.framed.is_ready() {
                if until.is_some_and(|until| StdInstant::now() >= until) {
                    return Err(LinkError::TimedOut);
                }
                // A closed session (a failed HELLO) still takes the next one, as on a serial
                // port; a stream's peer that went away ends the wait with its error.
                if self.framed.session().is_closed() {
                    self.check_cancel()?;
                    let wait =
                        until.map_or(CANCEL_POLL, |until| until.saturating_duration_since(StdInstant::now()));
                    self.wait_input(StdInstant::now() + wait.min(CANCEL_POLL))?;
                } else {
                    let poll = StdInstant::now() + CANCEL_POLL;
                    self.round(Some(until.map_or(poll, |until| until.min(poll))))?;
                }
            }
            if let Some(Ok(Event::Connected)) = self.framed.next_event() {
                return self.transmit();
            }
        }
    }

    /// Waits for the end of the handshake.
    fn handshake(&mut self) -> Result<(), LinkError> {
        loop {
            while !self.framed.is_ready() {
                self.round(None)?;
            }
            match self.framed.next_event() {
                Some(Ok(Event::Connected)) => return self.transmit(),
                Some(Ok(Event::Closed(reason)) | Err(reason)) => {
                    // A HELLO-ACK we refused is answered with ERROR (PROTOCOL.md 10.1).
                    let _ = self.transmit();
                    return Err(match reason {
                        CloseReason::PeerError { .. } | CloseReason::LocalError { .. } => {
                            LinkError::Refused(reason)
                        }
                        CloseReason::TimedOut(Timeout::Handshake) => self.no_answer(),
                        other => LinkError::Closed(other),
                    });
                }
                _ => {}
            }
        }
    }

    /// Queues `message` and sends it, whole and in order.
    ///
    /// While the send buffer is full it drives the link (reading acknowledgements and credit)
    /// until there is room: nothing is ever dropped. Messages that arrive meanwhile wait for
    /// [`next_event`](Self::next_event). Fails with [`LinkError::Send`] for a message larger than
    /// the peer accepts (nothing queued, the link goes on), or with [`LinkError::Stalled`] when
    /// no acknowledgement came for the idle timeout.
    pub fn send(&mut self, message: &[u8]) -> Result<(), LinkError> {
        self.queue(message, 0)
    }

    /// Queues `message` like [`send`](Self::send), but writes only once 128 KiB are queued
    /// (or the send buffer is full): a sender of many messages in a row makes fewer, larger
    /// writes. What is left goes out with the next [`send`](Self::send),
    /// [`drive`](Self::drive), [`flush`](Self::flush) or [`next_event`](Self::next_event).
    pub fn feed(&mut self, message: &[u8]) -> Result<(), LinkError> {
        self.queue(message, FEED_BATCH)
    }

    /// Queues `message`, then writes what is queued once `batch` bytes were fed since the last
    /// write (at once for 0).
    fn queue(&mut self, message: &[u8], batch: usize) -> Result<(), LinkError> {
        let mut watch = None;
        loop {
            self.socket.check()?;
            let now = self.clock.now();
            match self.framed.session_mut().send(now, message) {
                Ok(()) => {
                    self.fed += message.len();
                    return if self.fed >= batch { self.transmit_at(now) } else { Ok(()) };
                }
                Err(SendError::WouldBlock) => {
                    let stall = self.stall_deadline(&mut watch)?;
                    self.round(Some(stall))?;
                }
                Err(error) => return Err(self.refused(error)),
            }
        }
    }

    /// The next event, waiting at most `timeout` (`None`: as long as it takes); `Ok(None)` when
    /// the timeout ran out.
    ///
    /// After [`LinkEvent::Closed`] has been returned, calls fail with [`LinkError::Closed`].
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<LinkEvent>, LinkError> {
        Ok(self.next_event_ref(timeout)?.map(LinkEventRef::into_owned))
    }

    /// Like [`next_event`](Self::next_event), but a message is lent instead of copied: from
    /// the bytes just read when it came whole in one packet with nothing before it, else from
    /// the receive buffer.
    pub fn next_event_ref(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<LinkEventRef<'_>>, LinkError> {
        let until = timeout.map(|t| StdInstant::now() + t);
        while !self.framed.is_ready() {
            if self.unfed.is_empty() || self.incomplete {
                if until.is_some_and(|until| StdInstant::now() >= until) {
                    return Ok(None);
                }
                self.round_with(until, Input::Keep)?;
                continue;
            }
            let unfed = self.unfed.clone();
            let lent = self.framed.handle_bytes_lending(self.clock.now(), &mut self.read_buf[unfed.clone()]);
            self.unfed.start += lent.consumed;
            if let Some(message) = lent.message {
                let at = unfed.start;
                return Ok(Some(LinkEventRef::Message(&self.read_buf[at + message.start..at + message.end])));
            }
            // Stopped short with nothing to hand out: the start of a frame, not whole yet.
            self.incomplete = !self.unfed.is_empty() && !self.framed.is_ready();
        }
        // The acknowledgement goes out with the next call (on the next message sent, if it comes
        // first): one write per exchange instead of two.
        match self.framed.next_event() {
            Some(Ok(Event::Message(message))) => Ok(Some(LinkEventRef::Message(message))),
            Some(Ok(Event::Pong { token, rtt })) => Ok(Some(LinkEventRef::Pong { token, rtt })),
            Some(Ok(Event::Closed(reason))) => Ok(Some(LinkEventRef::Closed(reason))),
            Some(Err(reason)) => Err(LinkError::Closed(reason)),
            // `Connected` comes once, and the handshake took it.
            _ => Ok(None),
        }
    }

    /// Sends a PING with `padding` zero bytes after its 12-byte payload; the matching
    /// [`LinkEvent::Pong`] carries the returned token and the round-trip time.
    pub fn ping(&mut self, padding: u16) -> Result<u32, LinkError> {
        self.socket.check()?;
        let now = self.clock.now();
        match self.framed.session_mut().ping(now, padding) {
            Ok(token) => {
                self.transmit_at(now)?;
                Ok(token)
            }
            Err(error) => Err(self.refused(error)),
        }
    }

    /// Waits until the peer has acknowledged everything sent, at most `timeout` (`None`: as
    /// long as acknowledgements keep coming; [`LinkError::Stalled`] after the idle timeout
    /// without one).
    pub fn flush(&mut self, timeout: Option<Duration>) -> Result<(), LinkError> {
        let until = timeout.map(|t| StdInstant::now() + t);
        let mut watch = None;
        loop {
            self.socket.check()?;
            if self.framed.session().is_send_drained() {
                return Ok(());
            }
            if let Some(reason) = self.framed.close_reason() {
                return Err(LinkError::Closed(reason));
            }
            if until.is_some_and(|until| StdInstant::now() >= until) {
                return Err(LinkError::TimedOut);
            }
            let stall = self.stall_deadline(&mut watch)?;
            self.round(Some(until.map_or(stall, |until| until.min(stall))))?;
        }
    }

    /// Drives the link once without sending or taking a message: writes what the session has
    /// to send, waits at most `timeout` for input (returning as soon as some arrived, or at the
    /// session's next deadline), handles it, and writes what that allowed. Acknowledgements and
    /// credit take effect at once; received messages wait for [`next_event`](Self::next_event).
    ///
    /// For a sender that keeps its own queue short, so that what it stops sending is not a
    /// long backlog to drain (a throughput test over a slow serial line): it sends while
    /// [`Stats::bytes_sent`] keeps up with what it queued, and drives the link otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use framelink_std::{Link, LinkConfig, PeerInfo, Reply, Server, ServerConfig};
    ///
    /// let server = Server::bind(&["tcp://127.0.0.1:0"], ServerConfig::new())?;
    /// let addr = server.local_addrs()[0].clone();
    /// let handle = server.spawn(|_: &PeerInfo, _: &[u8], _: &mut Reply<'_>| {})?;
    /// let mut link = Link::connect(&addr)?;
    /// let (message, mut queued) = ([0u8; 1000], 0);
    /// for _ in 0..100 {
    ///     // At most one message waits for credit in this side's send buffer.
    ///     while queued - link.stats().bytes_sent >= 1000 {
    ///         link.drive(Some(Duration::from_millis(100)))?;
    ///     }
    ///     link.send(&message)?;
    ///     queued += 1000;
    /// }
    /// for _ in 0..100 {
    ///     if link.stats().bytes_acked == queued {
    ///         break;
    ///     }
    ///     link.drive(Some(Duration::from_millis(100)))?;
    /// }
    /// assert_eq!(link.stats().bytes_acked, 100_000);
    /// link.close()?;
    /// handle.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drive(&mut self, timeout: Option<Duration>) -> Result<(), LinkError> {
        self.socket.check()?;
        if let Some(reason) = self.framed.close_reason() {
            return Err(LinkError::Closed(reason));
        }
        self.round(timeout.map(|t| StdInstant::now() + t))?;
        self.transmit()
    }

    /// Closes gracefully: everything sent is delivered and acknowledged, then CLOSE and the
    /// peer's CLOSE-ACK; bounded by the close timeout. Messages that arrive meanwhile are
    /// dropped (read them first).
    ///
    /// `Ok` when the session ended gracefully, by this side or (earlier) by the peer.
    pub fn close(mut self) -> Result<(), LinkError> {
        let now = self.clock.now();
        self.framed.session_mut().close(now);
        let reason = loop {
            // Messages are dropped unread, so that their room goes back to the peer as credit.
            while let Some(Ok(_)) = self.framed.next_event() {}
            if let Some(reason) = self.framed.close_reason() {
                break reason;
            }
            self.round(None)?;
        };
        self.socket.shutdown_write();
        match reason {
            CloseReason::Local | CloseReason::Peer => Ok(()),
            other => Err(LinkError::Closed(other)),
        }
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        self.framed.session().stats()
    }

    /// The bytes of storage the send and receive buffers hold now: they grow as messages
    /// need and are given back once idle; a message lent straight from the read buffer
    /// ([`next_event_ref`](Self::next_event_ref)) never takes room.
    pub fn buffer_storage(&self) -> (usize, usize) {
        let session = self.framed.session();
        (session.send_buffer_storage(), session.receive_buffer_storage())
    }

    /// Whether the session is keyed ([`LinkConfig::psk`]): every packet sealed.
    pub fn is_keyed(&self) -> bool {
        self.framed.session().is_keyed()
    }

    /// The suite sealing this keyed session's packets, once the handshake agreed on it.
    pub fn keyed_suite(&self) -> Option<Suite> {
        self.framed.session().keyed_suite()
    }

    /// The decoder's counters (frames, CRC errors, dropped bytes, resynchronisations).
    pub fn decoder_stats(&self) -> DecoderStats {
        self.framed.decoder_stats()
    }

    /// Round-trip time figures, from PONGs and acknowledgements.
    pub fn rtt(&self) -> RttStats {
        self.framed.session().rtt()
    }

    /// What the peer announced in the handshake (its limits and the agreed capabilities).
    pub fn peer(&self) -> Option<PeerParams> {
        self.framed.session().peer()
    }

    /// The session's state.
    pub fn state(&self) -> State {
        self.framed.session().state()
    }

    /// The session id (chosen at random by the client).
    pub fn session_id(&self) -> u32 {
        self.framed.session().session_id()
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// This side's socket address (`0.0.0.0:0` over a serial port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The peer's socket address (`0.0.0.0:0` over a serial port).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The serial port's name, over a serial port.
    pub fn port_name(&self) -> Option<&str> {
        self.socket.port_name()
    }

    pub(crate) fn framed_mut(&mut self) -> &mut Framed {
        &mut self.framed
    }

    pub(crate) fn now(&self) -> framelink_core::Instant {
        self.clock.now()
    }

    /// The error for a message or ping the session refused: the end of the session once it
    /// has ended, else the refusal.
    fn refused(&self, error: SendError) -> LinkError {
        match self.framed.close_reason() {
            Some(reason) => LinkError::Closed(reason),
            None => LinkError::Send(error),
        }
    }

    /// When waiting for acknowledgements must give up, if none arrives.
    fn stall_deadline(&self, watch: &mut Option<Watch>) -> Result<StdInstant, LinkError> {
        let session = self.framed.session();
        let mark = (session.send_buffer_free(), session.stats().bytes_acked);
        let now = StdInstant::now();
        let watch = match watch {
            Some(watch) if watch.mark == mark => watch,
            _ => watch.insert(Watch { mark, since: now }),
        };
        let deadline = watch.since + self.stall_after;
        if now >= deadline { Err(LinkError::Stalled) } else { Ok(deadline) }
    }

    /// Writes everything the session has to send: batches of frames, one write each (a
    /// vectored write on TCP, DATA payloads straight from the send buffer), or one datagram per
    /// packet.
    pub(crate) fn transmit(&mut self) -> Result<(), LinkError> {
        let now = self.clock.now();
        self.transmit_at(now)
    }

    /// [`transmit`](Self::transmit) with the time already read.
    fn transmit_at(&mut self, now: framelink_core::Instant) -> Result<(), LinkError> {
        self.socket.check()?;
        self.fed = 0;
        while !self.socket.is_stream() {
            match self.framed.poll_transmit(now, &mut self.write_buf) {
                Ok(0) => return Ok(()),
                Ok(len) => self.socket.write(&self.write_buf[..len])?,
                Err(error) => return Err(LinkError::Io(io::Error::other(error.to_string()))),
            }
        }
        loop {
            match self.framed.poll_transmit_gather(now, &mut self.write_buf) {
                Ok(frames) if frames.is_empty() => return Ok(()),
                Ok(frames) => self.socket.write_gather(&frames)?,
                Err(error) => return Err(LinkError::Io(io::Error::other(error.to_string()))),
            }
        }
    }

    /// One round: runs due timers, writes what is due, then waits for input until the
    /// session's next deadline or `until`, and feeds what arrived to the session.
    pub(crate) fn round(&mut self, until: Option<StdInstant>) -> Result<(), LinkError> {
        self.round_with(until, Input::Feed)
    }

    /// [`round`](Self::round), with what arrives fed at once or kept for the caller.
    fn round_with(&mut self, until: Option<StdInstant>, input: Input) -> Result<(), LinkError> {
        self.socket.check()?;
        self.check_cancel()?;
        // One clock read serves the timers, the transmit and the wait (fewer reads per round
        // trip; the wait may end a few microseconds late).
        let std_now = StdInstant::now();
        let now = self.clock.from_std(std_now);
        self.framed.handle_timeout(now);
        self.transmit_at(now)?;
        if self.framed.session().is_closed() {
            return Ok(());
        }
        let deadline = self.framed.poll_timeout().map(|at| self.clock.to_std(at));
        let deadline = match (deadline, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = match deadline {
            Some(deadline) => match deadline.checked_duration_since(std_now) {
                Some(wait) if !wait.is_zero() => Some(wait),
                _ => return Ok(()),
            },
            None => None,
        };
        // With a cancel token, no wait is longer than its polling period.
        let wait = match (&self.cancel, wait) {
            (Some(_), Some(wait)) => Some(wait.min(CANCEL_POLL)),
            (Some(_), None) => Some(CANCEL_POLL),
            (None, wait) => wait,
        };
        self.read(wait, input)
    }

    /// Waits for input until `until` and feeds it to the session, whatever the session's
    /// state: a serial server's closed session still takes the next HELLO.
    pub(crate) fn wait_input(&mut self, until: StdInstant) -> Result<(), LinkError> {
        self.socket.check()?;
        match until.checked_duration_since(StdInstant::now()) {
            Some(wait) if !wait.is_zero() => self.read(Some(wait), Input::Feed),
            _ => Ok(()),
        }
    }

    /// One read (or one datagram), waiting at most `wait`, fed to the session or kept
    /// unfed. What a lent message left unfed is fed first, without reading; the start of a
    /// frame kept for [`Input::Keep`] is moved to the front, and the read goes after it.
    fn read(&mut self, wait: Option<Duration>, input: Input) -> Result<(), LinkError> {
        let kept = match input {
            Input::Keep if self.incomplete && self.unfed.len() < self.read_buf.len() => {
                let unfed = std::mem::replace(&mut self.unfed, 0..0);
                self.read_buf.copy_within(unfed.clone(), 0);
                unfed.len()
            }
            _ if !self.unfed.is_empty() => {
                // No room to read after it, or a caller that takes no messages.
                let unfed = std::mem::replace(&mut self.unfed, 0..0);
                self.incomplete = false;
                self.framed.handle_bytes_mut(self.clock.now(), &mut self.read_buf[unfed]);
                return Ok(());
            }
            _ => 0,
        };
        let read = self.socket.read(&mut self.read_buf[kept..], wait);
        let len = match read {
            Ok(Some(len)) => len,
            other => {
                // Nothing new (or an error): what was kept stays as it was.
                self.unfed = 0..kept;
                return other.map(|_| ());
            }
        };
        if let Some((sample, count)) = &mut self.handshake_bytes {
            let room = SAMPLE.saturating_sub(sample.len()).min(len);
            sample.extend_from_slice(&self.read_buf[kept..kept + room]);
            *count += len as u64;
        }
        self.incomplete = false;
        match input {
            Input::Feed => self.framed.handle_bytes_mut(self.clock.now(), &mut self.read_buf[..len]),
            Input::Keep => self.unfed = 0..kept + len,
        }
        Ok(())
    }
}

/// What a read does with the bytes that arrive.
#[derive(Clone, Copy, Debug)]
enum Input {
    /// Feeds them to the session, which copies every message into its receive buffer.
    Feed,
    /// Keeps them for [`Link::next_event_ref`], which lends a message from them where it can.
    Keep,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("transport", &self.transport)
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// A TCP connection to `target` within `timeout`; with a cancel token, made on a thread of
/// its own (left to finish alone when cancelled) while this one watches the token.
fn tcp_connect(
    target: SocketAddr,
    timeout: Duration,
    cancel: Option<&CancelToken>,
) -> Result<TcpStream, LinkError> {
    let Some(cancel) = cancel else {
        return Ok(TcpStream::connect_timeout(&target, timeout)?);
    };
    let (done, result) = mpsc::channel();
    thread::Builder::new().name("framelink-connect".into()).spawn(move || {
        let _ = done.send(TcpStream::connect_timeout(&target, timeout));
    })?;
    loop {
        if cancel.is_cancelled() {
            return Err(LinkError::Interrupted);
        }
        match result.recv_timeout(CANCEL_POLL) {
            Ok(stream) => return Ok(stream?),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(LinkError::Io(io::Error::other("the connecting thread ended")));
            }
        }
    }
}

/// A fresh session id: random where std can tell (the hasher keys), mixed with the time and the
/// process id.
fn session_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    hasher.write_u128(since_epoch.as_nanos());
    hasher.write_u32(std::process::id());
    let hash = hasher.finish();
    (hash ^ (hash >> 32)) as u32
}
