//! A server for many clients at once: [`Server`], its [`ServerConfig`] and its
//! [`ServerHandle`]. Each client is a [`Link`] served by the application's handler in a task of
//! its own.

mod config;
mod counters;
mod serial;
mod udp;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use framelink_core::service::ServerCounters;
use framelink_core::wire::ErrorCode;
use framelink_std::{Addr, ToAddr, Transport};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;

use crate::Link;
use crate::io::Io;
use crate::service::Service;
pub use config::ServerConfig;
pub(crate) use counters::Counters;
pub(crate) use udp::Ended;

/// How long a client refused at the client limit is given to read its ERROR Busy.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// How long to wait before accepting again after `accept` failed (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What every task of a server shares.
pub(crate) struct Shared {
    config: ServerConfig,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    /// A served link over `io`, its handshake still to come.
    fn link(&self, io: Io, transport: Transport) -> io::Result<Link> {
        let link = &self.config.link;
        let service = self.config.responder.map(|(name, software)| {
            Service::new(name, software, link.buffer_len() + 2, Arc::clone(&self.counters))
        });
        let mut link = Link::served(io, transport, link, self.stop.clone(), service)?;
        link.set_counters(Arc::clone(&self.counters));
        Ok(link)
    }

    /// The ERROR Busy detail: the client limit.
    fn limit(&self) -> u32 {
        u32::try_from(self.config.max_clients).unwrap_or(u32::MAX)
    }
}

/// Sockets bound and ready to serve: TCP, TCP+COBS and UDP listeners and serial ports, on any
/// mix of addresses.
///
/// [`serve`](Self::serve) starts a task per listener on the current tokio runtime; each client
/// then gets a task of its own, which completes the handshake (within the handshake timeout),
/// hands the connected [`Link`] to the handler, and ends when the handler's future does. UDP
/// clients are told apart by their address through the core's
/// [`endpoint`](framelink_core::endpoint) (session tags, RETRY cookies), in the socket's task,
/// which passes each client its datagrams.
///
/// A client beyond [`ServerConfig::max_clients`] is refused with ERROR Busy. With
/// [`ServerConfig::responder`] every link answers the remote test service (`framelink ping`,
/// `bench`, `info`) by itself while its handler awaits it, and hands the handler the other
/// messages. See [`Link`] for an example.
///
/// Each client costs a task (its link and its handler's future) and its session: about 8 KiB
/// of memory per idle TCP client (1,000 held on loopback; reads and frames go through one
/// buffer per thread), where framelink-std's event-loop server takes about 3 KiB. For tens of
/// thousands of mostly idle clients that one fits better; this one fits a program that is
/// async already.
#[derive(Debug)]
pub struct Server {
    listeners: Vec<Listener>,
    addrs: Vec<Addr>,
    config: ServerConfig,
}

#[derive(Debug)]
enum Listener {
    Stream(TcpListener, Transport),
    Datagram(UdpSocket),
    Serial(serial::Port),
}

impl Server {
    /// Binds every address (`tcp://`, `tcp+cobs://`, `udp://`; port 0 for an ephemeral port)
    /// and opens every serial port (`serial:///dev/ttyUSB0?baud=115200`); a port that cannot be
    /// opened fails here, the error naming it.
    ///
    /// A serial port has one peer: its sessions run one after another, each started by the
    /// peer's HELLO and served as a TCP client is. After a session ends the port is closed and
    /// opened again for the next one (which drops DTR on many USB-serial adapters: a board
    /// that resets on it resets between sessions). A port that goes away (a USB board that
    /// resets) is waited for and opened again once it is back (tried after 0.1 s, then twice
    /// as long each time, at most every 2 s), until the server stops.
    ///
    /// Each address is an [`Addr`] or its text (see [`ToAddr`]); text that is no address fails
    /// with [`io::ErrorKind::InvalidInput`].
    pub async fn bind<A: ToAddr>(addrs: &[A], config: ServerConfig) -> io::Result<Self> {
        let mut listeners = Vec::with_capacity(addrs.len());
        let mut bound = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let addr = addr.to_addr()?;
            if addr.transport == Transport::Serial {
                let addr = addr.into_owned();
                bound.push(addr.clone());
                listeners.push(Listener::Serial(serial::Port::open(addr)?));
                continue;
            }
            let target = (addr.host.as_str(), addr.port);
            let (listener, local) = match addr.transport {
                Transport::Tcp | Transport::TcpCobs => {
                    let listener = TcpListener::bind(target).await?;
                    let local = listener.local_addr()?;
                    (Listener::Stream(listener, addr.transport), local)
                }
                Transport::Udp => {
                    let socket = UdpSocket::bind(target).await?;
                    framelink_std::shared::raise_udp_recv_buffer(&socket);
                    let local = socket.local_addr()?;
                    (Listener::Datagram(socket), local)
                }
                _ => {
                    let text = format!("{addr}: the tokio server serves TCP, TCP+COBS, UDP and serial ports");
                    return Err(io::Error::new(io::ErrorKind::Unsupported, text));
                }
            };
            bound.push(Addr::new(addr.transport, local.ip().to_string(), local.port()));
            listeners.push(listener);
        }
        Ok(Self { listeners, addrs: bound, config })
    }

    /// The bound addresses, in the order given to [`bind`](Self::bind), with the ports taken
    /// (serial ports as given).
    pub fn local_addrs(&self) -> &[Addr] {
        &self.addrs
    }

    /// Serves every listener on the current tokio runtime, calling `handler` with each client's
    /// connected [`Link`] in the client's own task; returns at once.
    ///
    /// The handler's future owns the link: it reads with [`Link::recv`], answers with
    /// [`Link::send`], and ends the session with [`Link::close`] (a link dropped without
    /// `close` ends the connection without a CLOSE; the client sees it lost). The link answers
    /// its client (acknowledgements, keepalives, the test service) only while the handler
    /// awaits one of its calls. When the server stops, each link closes its session: the
    /// handler's `recv` returns the end.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn serve<H, F>(self, handler: H) -> ServerHandle
    where
        H: Fn(Link) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop_tx, stop) = watch::channel(false);
        let shared = Arc::new(Shared {
            counters: Arc::new(Counters::new(self.config.max_clients)),
            config: self.config,
            stop,
        });
        let handler = Arc::new(handler);
        let mut tasks = JoinSet::new();
        for listener in self.listeners {
            let (shared, handler) = (Arc::clone(&shared), Arc::clone(&handler));
            match listener {
                Listener::Stream(listener, transport) => {
                    tasks.spawn(serve_streams(listener, transport, shared, handler));
                }
                Listener::Datagram(socket) => {
                    tasks.spawn(udp::serve_datagrams(socket, shared, handler));
                }
                Listener::Serial(port) => {
                    tasks.spawn(serial::serve_port(port, shared, handler));
                }
            }
        }
        ServerHandle { stop: stop_tx, tasks, shared, addrs: self.addrs }
    }
}

/// A running server: its addresses, its counters, and its stop.
///
/// Dropping it stops nothing: the server runs as long as the runtime does, or until
/// [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct ServerHandle {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
    addrs: Vec<Addr>,
}

impl ServerHandle {
    /// The bound addresses.
    pub fn local_addrs(&self) -> &[Addr] {
        &self.addrs
    }

    /// The server's counters (the figures `framelink info` shows as the server's).
    pub fn stats(&self) -> ServerCounters {
        self.shared.counters.snapshot()
    }

    /// Stops gracefully: no client is taken in any more, every link closes its session (its
    /// handler's `recv` returns the end), and this waits for every client's task to end, at
    /// most the close timeout and a second; the tasks still running then are aborted.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // The listeners' tasks go on by themselves (see the type's docs).
        self.tasks.detach_all();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Completes when the server stops; never once its handle is dropped (the server then runs
/// as long as the runtime).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|&stopping| stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How long the clients' tasks are given to end once the server stops.
fn drain_time(shared: &Shared) -> Duration {
    shared.config.link.close_timeout_value() + Duration::from_secs(1)
}

/// Accepts the clients of one TCP listener until the server stops, each in a task of its own;
/// then waits for them (at most [`drain_time`]).
async fn serve_streams<H, F>(
    listener: TcpListener,
    transport: Transport,
    shared: Arc<Shared>,
    handler: Arc<H>,
) where
    H: Fn(Link) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut stop = shared.stop.clone();
    let mut clients = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let (shared, handler) = (Arc::clone(&shared), Arc::clone(&handler));
                match shared.counters.take_slot() {
                    Some(slot) => clients.spawn(async move {
                        serve_client(Io::Tcp(stream), transport, shared, handler, slot).await;
                    }),
                    None => clients.spawn(refuse(stream, transport, shared)),
                };
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
        while clients.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(drain_time(&shared), async { while clients.join_next().await.is_some() {} })
        .await;
}

/// Refuses a client at the client limit: ERROR Busy (detail: the limit), then the end of the
/// stream.
async fn refuse(stream: TcpStream, transport: Transport, shared: Arc<Shared>) {
    shared.counters.refused();
    if let Ok(link) = shared.link(Io::Tcp(stream), transport) {
        let _ = tokio::time::timeout(REFUSAL_LINGER, link.refuse(ErrorCode::Busy, shared.limit())).await;
    }
}

/// Serves one client holding `slot`: the handshake, then the handler with the link; whether
/// the handshake completed.
pub(crate) async fn serve_client<H, F>(
    io: Io,
    transport: Transport,
    shared: Arc<Shared>,
    handler: Arc<H>,
    slot: OwnedSemaphorePermit,
) -> bool
where
    H: Fn(Link) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let _slot = slot;
    let Ok(mut link) = shared.link(io, transport) else { return false };
    // A handshake that fails is counted by the link as it goes (a timeout, a refused HELLO).
    if link.handshake().await.is_err() {
        return false;
    }
    shared.counters.accepted();
    handler(link).await;
    true
}
