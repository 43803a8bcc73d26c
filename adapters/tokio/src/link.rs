//! A connected session over a tokio socket or serial port: [`Link`].

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use framelink_core::framing::DecoderStats;
use framelink_core::session::{CloseReason, PeerParams, RttStats, SendError, Session, State, Stats};
use framelink_core::wire::ErrorCode;
use framelink_std::shared::{FEED_BATCH, Framed, GATHER, Sess};
use framelink_std::{LinkConfig, LinkError, LinkEvent, StdClock, ToAddr, Transport};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::io::Io;
use crate::serial;
use crate::server::Counters;
use crate::service::{Next, Service};

/// Bytes of each read from a stream: several large frames, so that one read takes many.
const STREAM_READ: usize = 64 * 1024;
/// Bytes of each datagram read: any UDP payload, so that an oversized one is seen whole (and
/// refused) rather than cut.
pub(crate) const DATAGRAM_READ: usize = 65536;
/// Largest frames per write on a stream.
const FRAMES_PER_WRITE: usize = 4;
/// A backlog buffer larger than this is given back once written.
const UNSENT_KEEP: usize = 4096;
/// Datagrams taken in by one round beyond the first, when they arrived together (one
/// transmit then answers them all).
const DATAGRAMS_PER_ROUND: usize = 32;

/// Acknowledgement progress, watched while waiting for it.
#[derive(Clone, Copy, Debug)]
struct Watch {
    mark: (usize, u64),
    since: StdInstant,
}

/// A transport failure, kept so that every later call reports it again.
#[derive(Clone, Copy, Debug)]
enum Failure {
    Lost,
    Io(io::ErrorKind),
}

/// A session connected to its peer over tokio: TCP (length-delimited framing), UDP (one
/// packet per datagram), TCP carrying COBS (a serial line bridged to TCP), or a serial port
/// carrying COBS. The addresses, settings, events and errors are
/// [`framelink_std`]'s, so that a blocking and an async program name them alike.
///
/// Every call drives the link: it writes what the session has to send, waits for input or the
/// session's next deadline (`tokio::time::sleep_until`), and runs the timers. There is no
/// background task: a link answers its peer (acknowledgements, keepalives) only while one of
/// its calls is awaited, so a program that leaves a link alone for longer than the peer's idle
/// timeout loses it. Keep a task awaiting [`recv`](Self::recv) (with
/// `tokio::select!` beside other work, if need be).
///
/// [`recv`](Self::recv) and [`recv_message`](Self::recv_message) are cancel-safe: dropped
/// before they complete (a `select!` branch that lost, a `timeout`), they lose no byte and no
/// event. A frame half written when a call is dropped is finished by the next call. A dropped
/// [`send`](Self::send) may or may not have queued its message.
///
/// ```
/// use framelink_tokio::{Link, LinkEvent, Server, ServerConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A server on an ephemeral loopback port that answers every message with its length.
/// let server = Server::bind(&["tcp://127.0.0.1:0"], ServerConfig::new()).await?;
/// let addr = server.local_addrs()[0].clone();
/// let handle = server.serve(|mut link: Link| async move {
///     while let Ok(Some(message)) = link.recv_message().await {
///         let _ = link.send(message.len().to_string().as_bytes()).await;
///     }
/// });
///
/// let mut link = Link::connect(&addr).await?;
/// link.send(b"Hello, Server!").await?;
/// assert_eq!(link.recv().await?, LinkEvent::Message(b"14".to_vec()));
/// link.close().await?;
/// handle.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Link {
    /// Boxed: session, framing and keys are a few KiB, which async state machines would
    /// otherwise carry by value across every await.
    framed: Box<Framed>,
    io: Io,
    transport: Transport,
    clock: StdClock,
    /// Bytes of the reads and writes made in the thread's scratch buffer ([`with_scratch`]).
    read_len: usize,
    write_len: usize,
    /// Frames the socket did not take yet (it was full): written before anything else.
    unsent: Vec<u8>,
    /// Message bytes [`feed`](Link::feed) queued since the last write.
    fed: usize,
    local: SocketAddr,
    peer: SocketAddr,
    stall_after: Duration,
    failure: Option<Failure>,
    /// A served link: the test-service responder, when the server answers it.
    service: Option<Service>,
    /// A served link: the server's stop signal (the link then closes its session).
    stop: Option<watch::Receiver<bool>>,
    /// A served link: the server's counters, told how the session ended.
    counters: Option<Arc<Counters>>,
}

impl Link {
    /// Connects to `addr` with the default settings ([`LinkConfig::new`]) and completes the
    /// handshake; [`connect_with`](Self::connect_with) says how it fails.
    ///
    /// `addr` is an [`Addr`](crate::Addr) (owned or borrowed) or its text, `"tcp://127.0.0.1:7878"` (see
    /// [`ToAddr`]); text that is no address fails with [`LinkError::Addr`].
    pub async fn connect<A: ToAddr>(addr: A) -> Result<Self, LinkError> {
        Self::connect_with(addr, &LinkConfig::new()).await
    }

    /// Connects to `addr` with `config` and completes the handshake.
    ///
    /// Tries each address the host resolves to in turn. Fails with [`LinkError::Io`] when no
    /// server is there (connection refused, unreachable, TCP connect timed out after the
    /// handshake timeout), with [`LinkError::Refused`] when the server refused the handshake
    /// (another protocol version, a full server), or with [`LinkError::Closed`] when the
    /// handshake timed out. A `serial://` address opens the port (see the crate docs).
    pub async fn connect_with<A: ToAddr>(addr: A, config: &LinkConfig) -> Result<Self, LinkError> {
        let addr = addr.to_addr()?.into_owned();
        if addr.transport == Transport::Serial {
            let io = serial::open(&addr)?;
            return Self::start(io, Transport::Serial, config).await;
        }
        let targets = tokio::net::lookup_host((addr.host.as_str(), addr.port)).await?;
        let mut last = None;
        for target in targets {
            match Self::connect_to(target, addr.transport, config).await {
                Ok(link) => return Ok(link),
                Err(LinkError::Io(error)) => last = Some(error),
                Err(other) => return Err(other),
            }
        }
        Err(LinkError::Io(last.unwrap_or_else(|| io::ErrorKind::NotFound.into())))
    }

    async fn connect_to(
        target: SocketAddr,
        transport: Transport,
        config: &LinkConfig,
    ) -> Result<Self, LinkError> {
        let io = match transport {
            Transport::Udp => {
                let any: SocketAddr = if target.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(any).await?;
                socket.connect(target).await?;
                Io::Udp(socket)
            }
            Transport::Tcp | Transport::TcpCobs => {
                let connect = TcpStream::connect(target);
                let stream = tokio::time::timeout(config.handshake_timeout_value(), connect)
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
                stream.set_nodelay(true)?;
                Io::Tcp(stream)
            }
            _ => return Err(LinkError::Io(io::ErrorKind::InvalidInput.into())),
        };
        Self::start(io, transport, config).await
    }

    /// A client session over `io`, once the handshake is done.
    async fn start(io: Io, transport: Transport, config: &LinkConfig) -> Result<Self, LinkError> {
        let clock = StdClock::new();
        let session = config.keyed(Session::client(
            config.session_config(transport),
            session_id(),
            Vec::new(),
            Vec::new(),
            clock.now(),
        ));
        let mut link = Self::new(io, transport, config, session, clock)?;
        link.handshake().await?;
        Ok(link)
    }

    /// A link over `io` running `session`.
    pub(crate) fn new(
        io: Io,
        transport: Transport,
        config: &LinkConfig,
        session: Sess,
        clock: StdClock,
    ) -> io::Result<Self> {
        let (local, peer) = io.addrs()?;
        let framed = Box::new(Framed::new(transport, session, config.packet_len(transport)));
        let frame = framed.max_frame();
        let (read_len, write_len) =
            if io.is_datagram() { (DATAGRAM_READ, frame) } else { (STREAM_READ, FRAMES_PER_WRITE * frame) };
        Ok(Self {
            framed,
            io,
            transport,
            clock,
            read_len,
            write_len,
            unsent: Vec::new(),
            fed: 0,
            local,
            peer,
            stall_after: config.idle_timeout_value(),
            failure: None,
            service: None,
            stop: None,
            counters: None,
        })
    }

    /// A served link: a server session over `io`, closing at the server's `stop`, answering
    /// the test service if `service` is given. The handshake is still to come.
    pub(crate) fn served(
        io: Io,
        transport: Transport,
        config: &LinkConfig,
        stop: watch::Receiver<bool>,
        service: Option<Service>,
    ) -> io::Result<Self> {
        let clock = StdClock::new();
        let session = config.keyed(Session::server(
            config.server_session_config(transport),
            Vec::new(),
            Vec::new(),
            clock.now(),
        ));
        let mut link = Self::new(io, transport, config, session, clock)?;
        link.stop = Some(stop);
        link.service = service;
        Ok(link)
    }

    /// Tells the server's `counters` how the session ends, when the link is dropped.
    pub(crate) fn set_counters(&mut self, counters: Arc<Counters>) {
        self.counters = Some(counters);
    }

    /// Waits for the end of the handshake.
    pub(crate) async fn handshake(&mut self) -> Result<(), LinkError> {
        loop {
            match self.next(None).await? {
                Some(Next::Connected) => return self.transmit().await,
                Some(Next::Event(LinkEvent::Closed(reason)) | Next::Ended(reason)) => {
                    // A HELLO-ACK we refused is answered with ERROR (PROTOCOL.md 10.1).
                    let _ = self.transmit().await;
                    return Err(match reason {
                        CloseReason::PeerError { .. } | CloseReason::LocalError { .. } => {
                            LinkError::Refused(reason)
                        }
                        other => LinkError::Closed(other),
                    });
                }
                _ => {}
            }
        }
    }

    /// Refuses the client of a served link with ERROR `code` (ERROR Busy at the client limit):
    /// sends it, then ends the stream.
    pub(crate) async fn refuse(mut self, code: ErrorCode, detail: u32) {
        self.framed.session_mut().abort(code, detail);
        if self.transmit().await.is_ok() {
            self.io.shutdown().await;
        }
    }

    /// Queues `message` and sends it, whole and in order.
    ///
    /// While the send buffer is full it drives the link (reading acknowledgements and credit)
    /// until there is room: nothing is ever dropped. Messages that arrive meanwhile wait for
    /// [`recv`](Self::recv). Fails with [`LinkError::Send`] for a message larger than the
    /// peer accepts (nothing queued, the link goes on), or with [`LinkError::Stalled`] when no
    /// acknowledgement came for the idle timeout.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), LinkError> {
        self.queue(message, 0).await
    }

    /// Queues `message` like [`send`](Self::send), but writes only once 128 KiB are queued
    /// (or the send buffer is full): a sender of many messages in a row makes fewer, larger
    /// writes. What is left goes out with the next [`send`](Self::send),
    /// [`flush`](Self::flush) or [`recv`](Self::recv).
    pub async fn feed(&mut self, message: &[u8]) -> Result<(), LinkError> {
        self.queue(message, FEED_BATCH).await
    }

    /// Queues `message`, then writes what is queued once `batch` bytes were fed since the last
    /// write (at once for 0).
    async fn queue(&mut self, message: &[u8], batch: usize) -> Result<(), LinkError> {
        let mut watch = None;
        loop {
            self.check()?;
            let now = self.clock.now();
            match self.framed.session_mut().send(now, message) {
                Ok(()) => {
                    self.fed += message.len();
                    return if self.fed >= batch { self.transmit().await } else { Ok(()) };
                }
                Err(SendError::WouldBlock) => {
                    let stall = self.stall_deadline(&mut watch)?;
                    self.round(Some(stall)).await?;
                }
                Err(error) => return Err(self.refused(error)),
            }
        }
    }

    /// The next event: a message, a PONG, or the end of the session ([`LinkEvent::Closed`],
    /// once); after that, [`LinkError::Closed`] at every call. Cancel-safe.
    ///
    /// For a deadline, wrap it: `tokio::time::timeout(d, link.recv())`.
    pub async fn recv(&mut self) -> Result<LinkEvent, LinkError> {
        loop {
            match self.next(None).await? {
                Some(Next::Event(event)) => return Ok(event),
                Some(Next::Ended(reason)) => return Err(LinkError::Closed(reason)),
                Some(Next::Connected) | None => {}
            }
        }
    }

    /// The next message; `Ok(None)` once the session has ended gracefully (closed by either
    /// side), [`LinkError::Closed`] when it ended otherwise. PONGs are skipped. Cancel-safe.
    pub async fn recv_message(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        loop {
            match self.recv().await {
                Ok(LinkEvent::Message(message)) => return Ok(Some(message)),
                Ok(LinkEvent::Closed(CloseReason::Local | CloseReason::Peer)) => return Ok(None),
                Ok(LinkEvent::Closed(reason)) => return Err(LinkError::Closed(reason)),
                Err(LinkError::Closed(CloseReason::Local | CloseReason::Peer)) => return Ok(None),
                Err(error) => return Err(error),
                Ok(_) => {}
            }
        }
    }

    /// Sends a PING with `padding` zero bytes after its 12-byte payload; the matching
    /// [`LinkEvent::Pong`] carries the returned token and the round-trip time.
    pub async fn ping(&mut self, padding: u16) -> Result<u32, LinkError> {
        self.check()?;
        let now = self.clock.now();
        match self.framed.session_mut().ping(now, padding) {
            Ok(token) => {
                self.transmit().await?;
                Ok(token)
            }
            Err(error) => Err(self.refused(error)),
        }
    }

    /// Waits until the peer has acknowledged everything sent ([`LinkError::Stalled`] after the
    /// idle timeout without progress). Messages that arrive meanwhile wait for
    /// [`recv`](Self::recv).
    pub async fn flush(&mut self) -> Result<(), LinkError> {
        let mut watch = None;
        loop {
            self.check()?;
            if self.framed.session().is_send_drained() {
                return self.transmit().await;
            }
            if let Some(reason) = self.framed.close_reason() {
                return Err(LinkError::Closed(reason));
            }
            let stall = self.stall_deadline(&mut watch)?;
            self.round(Some(stall)).await?;
        }
    }

    /// Closes gracefully: everything sent is delivered and acknowledged, then CLOSE and the
    /// peer's CLOSE-ACK; bounded by the close timeout. Messages that arrive meanwhile are
    /// dropped (read them first). `Ok` when the session ended gracefully, by this side or
    /// (earlier) by the peer.
    pub async fn close(mut self) -> Result<(), LinkError> {
        let now = self.clock.now();
        self.framed.session_mut().close(now);
        let reason = loop {
            // Messages are dropped unread, so that their room goes back to the peer as credit.
            while let Some(Ok(_)) = self.framed.next_event() {}
            if let Some(reason) = self.framed.close_reason() {
                break reason;
            }
            self.round(None).await?;
        };
        // The CLOSE-ACK, if it is ours to send.
        let _ = self.transmit().await;
        self.io.shutdown().await;
        match reason {
            CloseReason::Local | CloseReason::Peer => Ok(()),
            other => Err(LinkError::Closed(other)),
        }
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        self.framed.session().stats()
    }

    /// Whether the session is keyed ([`LinkConfig::psk`]): every packet sealed.
    pub fn is_keyed(&self) -> bool {
        self.framed.session().is_keyed()
    }

    /// The suite sealing this keyed session's packets, once the handshake agreed on it.
    pub fn keyed_suite(&self) -> Option<framelink_std::Suite> {
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
        self.io.port_name()
    }

    /// The error for a message or ping the session refused: the end of the session once it
    /// has ended, else the refusal.
    fn refused(&self, error: SendError) -> LinkError {
        match self.framed.close_reason() {
            Some(reason) => LinkError::Closed(reason),
            None => LinkError::Send(error),
        }
    }

    /// The transport failure seen before, if any.
    fn check(&self) -> Result<(), LinkError> {
        match self.failure {
            None => Ok(()),
            Some(Failure::Lost) => Err(LinkError::ConnectionLost),
            Some(Failure::Io(kind)) => Err(LinkError::Io(kind.into())),
        }
    }

    /// Keeps a transport failure for the calls to come.
    fn record(&mut self, error: LinkError) -> LinkError {
        match &error {
            LinkError::ConnectionLost => self.failure = Some(Failure::Lost),
            LinkError::Io(inner) => self.failure = Some(Failure::Io(inner.kind())),
            _ => {}
        }
        error
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

    /// What the link has to hand out now, if anything: from the responder on a served link
    /// that answers the test service, else from the session.
    fn take(&mut self) -> Option<Next> {
        let Some(service) = &mut self.service else {
            loop {
                match self.framed.next_event()? {
                    Ok(event) => {
                        if let Some(next) = Next::of(event) {
                            return Some(next);
                        }
                    }
                    Err(reason) => return Some(Next::Ended(reason)),
                }
            }
        };
        service.poll(self.clock.now(), &mut self.framed);
        service.pop().or_else(|| self.framed.close_reason().map(Next::Ended))
    }

    /// The next thing to hand out, driving the link until there is one or `until` passes
    /// (`None` then).
    async fn next(&mut self, until: Option<StdInstant>) -> Result<Option<Next>, LinkError> {
        loop {
            if let Some(next) = self.take() {
                return Ok(Some(next));
            }
            if until.is_some_and(|until| StdInstant::now() >= until) {
                return Ok(None);
            }
            self.round(until).await?;
        }
    }

    /// Writes what is left of the last write, then everything the session has to send:
    /// batches of frames on a stream, one datagram per packet. The frames are made in the
    /// thread's scratch buffer and written at once; what the socket does not take waits in
    /// `unsent`, so that a link holds no buffer of its own while its socket keeps up.
    async fn transmit(&mut self) -> Result<(), LinkError> {
        self.check()?;
        self.fed = 0;
        loop {
            while !self.unsent.is_empty() {
                // A peer that stops reading for the idle timeout has stalled the link.
                match tokio::time::timeout(self.stall_after, self.io.writable()).await {
                    Ok(ready) => ready.map_err(|error| self.record(error))?,
                    Err(_) => return Err(LinkError::Stalled),
                }
                match self.io.try_write(&self.unsent) {
                    Ok(Some(written)) => drop(self.unsent.drain(..written)),
                    Ok(None) => {}
                    Err(error) => return Err(self.record(error)),
                }
            }
            let now = self.clock.now();
            let Self { framed, io, unsent, write_len, .. } = self;
            let written = with_scratch(*write_len, |buf| {
                if io.is_tcp() {
                    return write_gathered(framed, io, unsent, now, buf);
                }
                let len = framed
                    .poll_transmit(now, buf)
                    .map_err(|error| LinkError::Io(io::Error::other(error.to_string())))?;
                let mut at = 0;
                while at < len {
                    match io.try_write(&buf[at..len])? {
                        Some(written) => at += written,
                        None => {
                            unsent.extend_from_slice(&buf[at..len]);
                            break;
                        }
                    }
                }
                Ok(len)
            });
            match written {
                Ok(0) => {
                    // A large backlog once written is given back.
                    if self.unsent.capacity() > UNSENT_KEEP {
                        self.unsent = Vec::new();
                    }
                    return Ok(());
                }
                Ok(_) => {}
                Err(error) => return Err(self.record(error)),
            }
        }
    }

    /// One round: runs due timers, writes what is due, then waits for input until the
    /// session's next deadline or `until`, and feeds what arrived to the session.
    async fn round(&mut self, until: Option<StdInstant>) -> Result<(), LinkError> {
        self.check()?;
        let now = self.clock.now();
        self.framed.handle_timeout(now);
        self.transmit().await?;
        if self.framed.session().is_closed() {
            return Ok(());
        }
        let deadline = self.framed.poll_timeout().map(|at| self.clock.to_std(at));
        let deadline = match (deadline, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Self { io, stop, .. } = self;
        let read = async {
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline.into(), io.readable()).await.ok(),
                None => Some(io.readable().await),
            }
        };
        let read = tokio::select! {
            biased;
            () = stopped(stop) => {
                // The server stops: end the session gracefully (once).
                *stop = None;
                let now = self.clock.now();
                self.framed.session_mut().close(now);
                return self.transmit().await;
            }
            read = read => read,
        };
        match read {
            // What this allows to send (acknowledgements, replies) goes out at the start of
            // the next round or call, with whatever the application adds: one write for both.
            Some(Ok(())) => {
                let now = self.clock.now();
                let Self { framed, io, read_len, .. } = self;
                let datagrams = if io.is_datagram() { 1 + DATAGRAMS_PER_ROUND } else { 1 };
                with_scratch(*read_len, |buf| {
                    for _ in 0..datagrams {
                        let Some(len) = io.try_read(buf)? else { break };
                        framed.handle_bytes_mut(now, &mut buf[..len]);
                    }
                    Ok(())
                })
                .map_err(|error| self.record(error))
            }
            Some(Err(error)) => Err(self.record(error)),
            None => Ok(()),
        }
    }
}

/// Writes one batch of frames on a TCP stream in vectored writes, DATA payloads straight from
/// the send buffer (`buf` holds the rest); what the socket does not take goes to `unsent`.
/// Returns the batch's length, 0 when nothing was due.
fn write_gathered(
    framed: &mut Framed,
    io: &mut Io,
    unsent: &mut Vec<u8>,
    now: framelink_core::Instant,
    buf: &mut [u8],
) -> Result<usize, LinkError> {
    let frames = framed
        .poll_transmit_gather(now, buf)
        .map_err(|error| LinkError::Io(io::Error::other(error.to_string())))?;
    let mut at = 0;
    while at < frames.len() {
        let mut slices = [io::IoSlice::new(&[]); GATHER];
        let mut count = 0;
        for (slot, slice) in slices.iter_mut().zip(frames.tail(at)) {
            *slot = io::IoSlice::new(slice);
            count += 1;
        }
        match io.try_write_vectored(&slices[..count])? {
            Some(written) => at += written,
            None => {
                for rest in frames.tail(at) {
                    unsent.extend_from_slice(rest);
                }
                break;
            }
        }
    }
    Ok(frames.len())
}

/// Runs `f` with this thread's scratch buffer, `len` bytes long (grown, zeroed, the first time
/// a link needs that many): every link on the thread reads into it and makes its frames in it,
/// as framelink-std's event loops share theirs, so that an idle link holds no buffer. `f` must
/// not await or call this again (it cannot: it is not async).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < len {
            scratch.resize(len, 0);
        }
        f(&mut scratch[..len])
    })
}

/// Completes when the server's stop signal is raised; never for a link without one.
async fn stopped(stop: &mut Option<watch::Receiver<bool>>) {
    if let Some(stop) = stop
        && stop.wait_for(|&stopping| stopping).await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

impl Drop for Link {
    fn drop(&mut self) {
        let reason = self.framed.close_reason();
        if let (Some(counters), Some(reason)) = (&self.counters, reason) {
            counters.ended(reason);
        }
        if let Io::Peer(peer) = &self.io {
            let _ = peer.ended.send((peer.addr, peer.id, reason));
        }
    }
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

/// A fresh session id from the OS's random source (else from std's randomly keyed hasher).
fn session_id() -> u32 {
    getrandom::u32().unwrap_or_else(|_| {
        use std::hash::BuildHasher;
        let hash = std::collections::hash_map::RandomState::new().hash_one(StdInstant::now());
        (hash ^ (hash >> 32)) as u32
    })
}
