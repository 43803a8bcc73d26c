//! A server for many clients at once: [`Server`], its [`ServerConfig`], and the [`Handler`] the
//! application implements.

mod client;
mod config;
mod dispatch;
mod event_loop;
mod handler;
mod serial;
mod timers;
mod udp;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use framelink_core::framing::{Cobs, Datagram, Encoder, LengthDelimited};
use framelink_core::service::ServerCounters;
use framelink_core::session::{CloseReason, SendError, Timeout};
use framelink_core::wire::{ErrorCode, ErrorPayload, PacketType, Repr};

use crate::serial::SerialPort;
use crate::{Addr, LinkError, ToAddr, Transport};
pub use config::ServerConfig;
use dispatch::{Dispatch, EventContext, Served, dispatch};
use event_loop::{Command, EventLoop, LoopHandle, LoopParts};
use handler::Outbox;
pub use handler::{Handler, PeerInfo, Reply};

/// How long a connection whose session ended waits for the client to close its end.
const LINGER: Duration = Duration::from_secs(2);
/// Refusals (ERROR Busy) in progress at once; clients beyond are disconnected without one.
const MAX_REFUSING: usize = 32;
/// Connections waiting to be accepted, per listener (std listens with 128, which drops the
/// SYNs of a larger burst of clients for a second; the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 1024;

/// What the server threads share.
struct Control {
    config: ServerConfig,
    stop: AtomicBool,
    active: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    refusing: AtomicUsize,
    ended: EndCounters,
    stray_datagrams: AtomicU64,
    /// Packets keyed sessions dropped for failing authentication, all sessions together.
    auth_failures: AtomicU64,
    next_id: AtomicU64,
    /// The thread serving each TCP, TCP+COBS and UDP client, by client id: its index among
    /// the event loops and the UDP sockets' threads.
    clients: Mutex<HashMap<u64, usize>>,
    /// Listeners that stopped serving on their own (a serial port that went away), and why.
    failures: Mutex<Vec<(Addr, LinkError)>>,
    /// Held by an event loop while it accepts: loops share each listener, and when one gives
    /// up its spare descriptor to refuse a client out of descriptors, another loop's `accept`
    /// must not take that descriptor first (both would then be left without a spare and the
    /// client unanswered).
    accepting: Mutex<()>,
}

impl Control {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Takes a client slot if one is free.
    fn reserve(&self) -> bool {
        let max = self.config.max_clients;
        self.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
    }

    fn release(&self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a client refused at the client limit; the ERROR Busy that tells it so, framed
    /// for `transport` (tagged `tag` on UDP).
    fn refusal(&self, transport: Transport, tag: u32) -> Vec<u8> {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let detail = u32::try_from(self.config.max_clients).unwrap_or(u32::MAX);
        error_frame(transport, ErrorCode::Busy, detail, tag)
    }

    /// Counts a session that ended for a limit.
    fn count_end(&self, reason: &CloseReason) {
        let counter = match reason {
            CloseReason::TimedOut(Timeout::Handshake) => &self.ended.handshake_timeouts,
            CloseReason::TimedOut(Timeout::Idle) => &self.ended.idle_timeouts,
            CloseReason::LocalError {
                code: ErrorCode::MessageTooLarge | ErrorCode::PayloadTooLarge, ..
            } => &self.ended.too_large,
            CloseReason::LocalError { .. } => &self.ended.protocol_errors,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn counters(&self) -> ServerCounters {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut counters = ServerCounters::default();
        counters.clients = self.active.load(Ordering::Acquire) as u64;
        counters.accepted = load(&self.accepted);
        counters.refused_busy = load(&self.refused);
        counters.handshake_timeouts = load(&self.ended.handshake_timeouts);
        counters.idle_timeouts = load(&self.ended.idle_timeouts);
        counters.too_large = load(&self.ended.too_large);
        counters.protocol_errors = load(&self.ended.protocol_errors);
        counters.stray_datagrams = load(&self.stray_datagrams);
        counters.auth_failures = load(&self.auth_failures);
        counters
    }
}

/// Sessions that ended at a limit, by limit.
#[derive(Debug, Default)]
struct EndCounters {
    handshake_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    too_large: AtomicU64,
    protocol_errors: AtomicU64,
}

/// Counters of a running server. The test service's STATS reply carries the same
/// ([`ServerCounters`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Sessions being served now (handshakes included).
    pub active: usize,
    /// Clients taken in since the start (TCP connections, UDP peers that said HELLO).
    pub accepted: u64,
    /// Clients refused with ERROR Busy since the start.
    pub refused: u64,
    /// Clients dropped for not completing the handshake in time.
    pub handshake_timeouts: u64,
    /// Sessions ended at the idle timeout.
    pub idle_timeouts: u64,
    /// Sessions ended for a message or DATA payload over the limits.
    pub too_large: u64,
    /// Sessions ended for another error of the client's (flow control, version, capability).
    pub protocol_errors: u64,
    /// UDP datagrams dropped with no session to go to.
    pub stray_datagrams: u64,
    /// Keyed sessions: packets dropped for failing authentication (forged, altered, replayed,
    /// or a handshake with another key), all sessions together.
    pub auth_failures: u64,
}

enum Listener {
    Stream(TcpListener, Transport),
    Datagram(UdpSocket),
    Serial(SerialPort, Addr),
}

/// A bound, not yet running server: one or more listeners (any mix of `tcp://`, `udp://`,
/// `tcp+cobs://` and `serial://`) served by one [`Handler`].
///
/// # How it serves
///
/// - **TCP and TCP+COBS: a few event-loop threads for every connection**
///   ([`event_loops`](ServerConfig::event_loops), by default one per core), each waiting on
///   the readiness of many sockets at once (`mio`: epoll, kqueue, IOCP). The loops accept on
///   every listener and hand each new client to the loop holding the fewest; a client stays
///   on its loop until it leaves, and the loop makes every [`Handler`] call for it. A loop
///   keeps its clients' deadlines (keepalive, idle, handshake, retransmit, linger) in a
///   min-heap, so a tick looks only at the clients that are due. **A slow handler delays
///   every client of its loop** (not those of the other loops): hand long work to threads of
///   your own and answer through [`ServerHandle::send`].
/// - **UDP: one thread per socket**, which demultiplexes datagrams by source address into
///   per-peer sessions. A peer is created by a HELLO only, and dropped when its session ends
///   (closed, refused, or idle). The thread waits on the socket's readiness (`mio`) and, as a
///   loop does, keeps its peers' deadlines in a min-heap, so a tick looks only at the peers
///   that are due; [`ServerHandle::send`] and [`broadcast`](ServerHandle::broadcast) reach its
///   peers as they reach TCP clients. A slow handler delays every peer of its socket.
/// - **A serial port: one thread**, serving whoever says HELLO on it, one session after
///   another, as firmware does: a new HELLO ends the session before it (a board or a client
///   that restarted), and a session that ended waits for the next HELLO. The port is opened
///   (exclusively) by [`bind`](Server::bind); if it goes away (unplugged), its thread ends and
///   [`ServerHandle::take_failure`] says why. Its sessions do not count against
///   `max_clients`.
///
/// Limits: [`max_clients`](ServerConfig::max_clients) sessions at once over all listeners (a
/// client beyond it is answered with ERROR Busy and disconnected), the largest message
/// ([`max_message`](ServerConfig::max_message), announced in the handshake and enforced by the
/// session), the handshake time and the idle time. A client that misbehaves or vanishes ends
/// its own session only; a handler that panics ends only the session it was called for. A
/// client that stops reading is not written to beyond what its socket takes: the server then
/// stops reading from it too, and drops it after the idle timeout without progress. Each TCP
/// client takes one file descriptor; one more per loop is kept in reserve, so that a server
/// out of descriptors still answers a new client ERROR Busy rather than leaving it waiting.
///
/// # Memory
///
/// Each event loop has one read buffer (256 KiB) and one write buffer (four largest frames)
/// that all its clients share. A client keeps only what must outlive a call:
///
/// - until it sends its first bytes, its socket and a slot in its loop (about 100 bytes);
///   then, until its handshake completes, its session (about 2 KiB, buffers empty);
/// - then, the session's send and receive buffers, which grow as its messages need, up to the
///   largest message + 64 KiB each (+ 1 MiB on TCP, room to keep a fast link busy), and are
///   given back once they stayed empty for a keepalive
///   interval; a frame decoder that holds bytes only while a frame arrives in pieces; with the
///   test service on, the responder's reply buffer (the largest message, allocated zeroed at
///   the client's first message, so that the pages small replies do not reach cost nothing,
///   and given back with the session's buffers);
/// - replies waiting for room in the session, and bytes its socket would not take, only while
///   there are any.
///
/// Measured on loopback with the test service on: 10,000 handshaken idle TCP clients took
/// about 2.7 KiB of resident memory each (13 KiB while each had a reply buffer), in 4
/// threads. A UDP peer has its session and its
/// decoder on the socket's thread. After clients leave, the allocator may keep (and reuse) what
/// they touched.
///
/// ```
/// use framelink_std::{Link, LinkConfig, LinkEvent, PeerInfo, Reply, Server, ServerConfig};
/// use std::time::Duration;
///
/// // Echo every message back, on TCP and UDP, on ephemeral loopback ports.
/// let addrs = ["tcp://127.0.0.1:0", "udp://127.0.0.1:0"];
/// let server = Server::bind(&addrs, ServerConfig::new().max_clients(8))?;
/// let bound = server.local_addrs();
/// let handle = server.spawn(|_: &PeerInfo, message: &[u8], reply: &mut Reply<'_>| {
///     let _ = reply.send(message);
/// })?;
///
/// for addr in &bound {
///     let mut link = Link::connect(addr)?;
///     link.send(b"ping?")?;
///     assert_eq!(link.next_event(Some(Duration::from_secs(5)))?, Some(LinkEvent::Message(b"ping?".to_vec())));
///     link.close()?;
/// }
/// handle.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    listeners: Vec<Listener>,
    local_addrs: Vec<Addr>,
    config: ServerConfig,
}

impl Server {
    /// Binds every address (port 0 picks a free port; see [`local_addrs`](Self::local_addrs))
    /// and opens every serial port. Fails if any cannot be bound or opened, naming it (a
    /// serial port's error wraps a [`SerialError`](crate::SerialError)).
    ///
    /// The addresses are [`Addr`]s or their text, `"tcp://127.0.0.1:7878"` (see
    /// [`ToAddr`](crate::ToAddr)); text that is no address fails with
    /// [`io::ErrorKind::InvalidInput`].
    pub fn bind<A: ToAddr>(addrs: &[A], config: ServerConfig) -> io::Result<Self> {
        if addrs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on"));
        }
        let mut listeners = Vec::new();
        let mut local_addrs = Vec::new();
        for addr in addrs {
            let addr = addr.to_addr()?;
            let addr = &*addr;
            let context =
                |error: io::Error| io::Error::new(error.kind(), format!("cannot listen on {addr}: {error}"));
            let (listener, local) = match addr.transport {
                Transport::Serial => {
                    let port = SerialPort::open(&addr.host, &addr.serial_settings())
                        .map_err(|e| context(io::Error::from(e)))?;
                    listeners.push(Listener::Serial(port, addr.clone()));
                    local_addrs.push(addr.clone());
                    continue;
                }
                Transport::Tcp | Transport::TcpCobs => {
                    let listener = listen(&addr.resolve().map_err(context)?).map_err(context)?;
                    let local = listener.local_addr()?;
                    (Listener::Stream(listener, addr.transport), local)
                }
                Transport::Udp => {
                    let socket = UdpSocket::bind(&addr.resolve().map_err(context)?[..]).map_err(context)?;
                    crate::conn::raise_udp_recv_buffer(&socket);
                    let local = socket.local_addr()?;
                    (Listener::Datagram(socket), local)
                }
            };
            listeners.push(listener);
            local_addrs.push(Addr::new(addr.transport, local.ip().to_string(), local.port()));
        }
        Ok(Self { listeners, local_addrs, config })
    }

    /// The bound addresses, with the real ports, in the order given to [`bind`](Self::bind).
    pub fn local_addrs(&self) -> Vec<Addr> {
        self.local_addrs.clone()
    }

    /// Serves with `handler` on background threads; the handle stops them.
    pub fn spawn<H: Handler>(self, handler: H) -> io::Result<ServerHandle> {
        let local_addrs = self.local_addrs.clone();
        let (control, threads, loops) = self.start(handler)?;
        Ok(ServerHandle { control, threads, loops, local_addrs })
    }

    /// Serves with `handler` on this thread, until the process ends.
    pub fn run<H: Handler>(self, handler: H) -> io::Result<()> {
        let (_control, threads, _loops) = self.start(handler)?;
        for thread in threads {
            let _ = thread.join();
        }
        Ok(())
    }

    fn start<H: Handler>(self, handler: H) -> io::Result<Started> {
        let Self { listeners, config, .. } = self;
        let (streams, others): (Vec<_>, Vec<_>) =
            listeners.into_iter().partition(|listener| matches!(listener, Listener::Stream(..)));
        let streams = streams
            .into_iter()
            .filter_map(|listener| match listener {
                Listener::Stream(listener, transport) => Some((listener, transport)),
                _ => None,
            })
            .collect();
        let control = Arc::new(Control {
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            refusing: AtomicUsize::new(0),
            ended: EndCounters::default(),
            stray_datagrams: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            clients: Mutex::new(HashMap::new()),
            failures: Mutex::new(Vec::new()),
            config,
            accepting: Mutex::new(()),
        });
        let handler = Arc::new(handler);
        let mut threads = Vec::new();
        let mut loops = Vec::new();
        let started = start_loops(streams, &control, &handler, &mut threads).and_then(|stream_loops| {
            loops = stream_loops;
            for listener in others {
                let shared = Arc::clone(&control);
                let handler = Arc::clone(&handler);
                let builder = thread::Builder::new().stack_size(control.config.stack_size);
                threads.push(match listener {
                    Listener::Stream(..) => continue,
                    Listener::Datagram(socket) => {
                        socket.set_nonblocking(true)?;
                        let parts = LoopParts::new()?;
                        let index = loops.len();
                        loops.push(parts.handle());
                        builder.name("framelink-udp".into()).spawn(move || {
                            udp::serve_datagrams(socket, parts, index, &shared, &*handler);
                        })?
                    }
                    Listener::Serial(port, addr) => builder
                        .name("framelink-serial".into())
                        .spawn(move || serial::serve(port, addr, &shared, &*handler))?,
                });
            }
            Ok(())
        });
        match started {
            Ok(()) => Ok((control, threads, loops)),
            Err(error) => {
                // The threads already started see the stop and end.
                control.stop.store(true, Ordering::Release);
                for handle in &loops {
                    handle.wake();
                }
                Err(error)
            }
        }
    }
}

/// Starts the event loops, each accepting on a clone of every stream listener (only the first
/// does where a listener cannot be shared between polls portably).
fn start_loops<H: Handler>(
    streams: Vec<(TcpListener, Transport)>,
    control: &Arc<Control>,
    handler: &Arc<H>,
    threads: &mut Vec<JoinHandle<()>>,
) -> io::Result<Vec<LoopHandle>> {
    let count = if streams.is_empty() { 0 } else { control.config.event_loops_value().max(1) };
    let parts = (0..count).map(|_| LoopParts::new()).collect::<io::Result<Vec<_>>>()?;
    let loops: Vec<LoopHandle> = parts.iter().map(LoopParts::handle).collect();
    for (index, parts) in parts.into_iter().enumerate() {
        let listeners = if index == 0 || cfg!(unix) {
            streams.iter().map(|(l, t)| Ok((l.try_clone()?, *t))).collect::<io::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let event_loop =
            EventLoop::new(parts, index, loops.clone(), listeners, Arc::clone(control), Arc::clone(handler))?;
        let thread = thread::Builder::new()
            .name(format!("framelink-loop-{index}"))
            .stack_size(control.config.stack_size)
            .spawn(move || event_loop.run());
        match thread {
            Ok(thread) => threads.push(thread),
            Err(error) => {
                control.stop.store(true, Ordering::Release);
                for handle in &loops {
                    handle.wake();
                }
                return Err(error);
            }
        }
    }
    Ok(loops)
}

/// What [`Server::start`] leaves running: the shared state, the threads, the loops.
type Started = (Arc<Control>, Vec<JoinHandle<()>>, Vec<LoopHandle>);

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs)
            .field("config", &self.config)
            .finish()
    }
}

/// A running server; [`shutdown`](Self::shutdown) (or dropping it) stops it.
///
/// It also reaches connected TCP, TCP+COBS and UDP clients from outside the [`Handler`]'s calls:
/// [`send`](Self::send) to one client, [`broadcast`](Self::broadcast) to all.
///
/// ```
/// use framelink_std::{Handler, Link, LinkConfig, LinkEvent, PeerInfo, Reply, Server, ServerConfig};
/// use std::sync::mpsc::{Sender, channel};
/// use std::sync::Mutex;
/// use std::time::Duration;
///
/// /// Tells the application who connected; answers nothing itself.
/// struct Clients(Mutex<Sender<u64>>);
///
/// impl Handler for Clients {
///     fn on_connect(&self, peer: &PeerInfo) {
///         let _ = self.0.lock().unwrap().send(peer.id);
///     }
///     fn on_message(&self, _: &PeerInfo, _: &[u8], _: &mut Reply<'_>) {}
/// }
///
/// let server = Server::bind(&["tcp://127.0.0.1:0"], ServerConfig::new())?;
/// let addr = server.local_addrs()[0].clone();
/// let (connected, ids) = channel();
/// let handle = server.spawn(Clients(Mutex::new(connected)))?;
///
/// let mut link = Link::connect(&addr)?;
/// let id = ids.recv_timeout(Duration::from_secs(5))?;
/// handle.send(id, b"news for you")?;
/// handle.broadcast(b"news for all");
/// let mut got = Vec::new();
/// while got.len() < 2 {
///     if let Some(LinkEvent::Message(message)) = link.next_event(Some(Duration::from_secs(5)))? {
///         got.push(message);
///     }
/// }
/// assert_eq!(got, [b"news for you".to_vec(), b"news for all".to_vec()]);
/// handle.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ServerHandle {
    control: Arc<Control>,
    threads: Vec<JoinHandle<()>>,
    /// The event loops, then one per UDP socket (the indices [`Control::clients`] holds).
    loops: Vec<LoopHandle>,
    local_addrs: Vec<Addr>,
}

impl ServerHandle {
    /// The bound addresses, with the real ports.
    pub fn local_addrs(&self) -> &[Addr] {
        &self.local_addrs
    }

    /// Counters: sessions now, accepted and refused so far, sessions ended at each limit.
    pub fn stats(&self) -> ServerStats {
        let c = self.control.counters();
        ServerStats {
            active: self.control.active.load(Ordering::Acquire),
            accepted: c.accepted,
            refused: c.refused_busy,
            handshake_timeouts: c.handshake_timeouts,
            idle_timeouts: c.idle_timeouts,
            too_large: c.too_large,
            protocol_errors: c.protocol_errors,
            stray_datagrams: c.stray_datagrams,
            auth_failures: c.auth_failures,
        }
    }

    /// A listener that stopped serving on its own, and why: a serial port that was unplugged
    /// or closed ([`LinkError::Serial`]). Each is reported once; `None` while all serve.
    pub fn take_failure(&self) -> Option<(Addr, LinkError)> {
        let mut failures = self.control.failures.lock().unwrap_or_else(PoisonError::into_inner);
        (!failures.is_empty()).then(|| failures.remove(0))
    }

    /// Queues `message` for the TCP, TCP+COBS or UDP client `client` (its [`PeerInfo::id`]),
    /// whole and in order after the replies queued for it before, as [`Reply::send`] does.
    ///
    /// The thread serving the client (its event loop, or its UDP socket's thread) takes it up
    /// at once, between the handler calls of its clients; this returns before. It fails with
    /// [`SendError::Closed`] when no such client is connected over TCP, TCP+COBS or UDP now
    /// (serial clients are not reached this way), and
    /// with [`SendError::TooLarge`] beyond the server's [`max_message`](ServerConfig::max_message).
    /// A message the loop finds larger than the client accepts, or a session that ends first,
    /// drops it.
    pub fn send(&self, client: u64, message: &[u8]) -> Result<(), SendError> {
        let max = usize::try_from(self.control.config.link.max_message).unwrap_or(usize::MAX);
        if message.len() > max {
            return Err(SendError::TooLarge { max });
        }
        let owner = self.control.clients.lock().unwrap_or_else(PoisonError::into_inner).get(&client).copied();
        match owner.and_then(|index| self.loops.get(index)) {
            Some(owner) if owner.post(Command::Send(client, message.into())) => Ok(()),
            _ => Err(SendError::Closed),
        }
    }

    /// Queues `message` for every TCP, TCP+COBS and UDP client connected now, as
    /// [`send`](Self::send) does for one (a message larger than a client accepts skips it).
    pub fn broadcast(&self, message: &[u8]) {
        let message: Arc<[u8]> = message.into();
        for owner in &self.loops {
            owner.post(Command::Broadcast(Arc::clone(&message)));
        }
    }

    /// Stops accepting, closes every session (CLOSE to each client; a client with data still
    /// in flight sees its connection end) and waits for the server's threads, which wait at
    /// most a few seconds for their clients to close.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.control.stop.swap(true, Ordering::AcqRel) {
            return;
        }
        for owner in &self.loops {
            owner.wake();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addrs", &self.local_addrs)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A TCP listener on the first of `targets` that binds, with a backlog of [`BACKLOG`].
fn listen(targets: &[SocketAddr]) -> io::Result<TcpListener> {
    let mut last = None;
    for &target in targets {
        let socket = socket2::Socket::new(socket2::Domain::for_address(target), socket2::Type::STREAM, None)?;
        // As std does on Unix: rebind at once after a restart (on Windows it means otherwise).
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        match socket.bind(&target.into()).and_then(|()| socket.listen(BACKLOG)) {
            Ok(()) => return Ok(socket.into()),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::NotFound.into()))
}

/// An ERROR packet, framed for `transport` (tagged `tag` on UDP).
fn error_frame(transport: Transport, code: ErrorCode, detail: u32, tag: u32) -> Vec<u8> {
    let mut payload = [0u8; ErrorPayload::LEN];
    match (ErrorPayload { code, detail, text: &[] }).emit(&mut payload) {
        Ok(n) => control_frame(transport, PacketType::Error, &payload[..n], tag),
        Err(_) => Vec::new(),
    }
}

/// A control packet of `kind` with `payload` (at most 32 bytes), framed for `transport`
/// (tagged `tag` on UDP); empty if it does not fit.
fn control_frame(transport: Transport, kind: PacketType, payload: &[u8], tag: u32) -> Vec<u8> {
    let mut packet = [0u8; 64];
    let mut frame = vec![0u8; 128];
    let len = Repr::control(kind, payload)
        .emit(&mut packet)
        .and_then(|n| match transport {
            Transport::Udp => Datagram::encode_tagged(tag, &packet[..n], &mut frame),
            Transport::Tcp => LengthDelimited::encode(&packet[..n], &mut frame),
            Transport::TcpCobs | Transport::Serial => {
                frame[0] = Cobs::DELIMITER;
                Cobs::encode(&packet[..n], &mut frame[1..]).map(|m| m + 1)
            }
        })
        .unwrap_or(0);
    frame.truncate(len);
    frame
}
