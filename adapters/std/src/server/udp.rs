//! Serving a UDP socket: every peer's session on one thread, told apart by source address
//! through a [`framelink_core::endpoint`] (session tags, RETRY cookies, the session table).
//!
//! The thread waits on a [`mio::Poll`] for the socket's readiness, its [`Waker`](mio::Waker)
//! (messages pushed by [`ServerHandle::send`](super::ServerHandle::send) and `broadcast`, the
//! stop) and the earliest deadline: the peers' deadlines are kept in a heap ([`Timers`]), so a
//! tick looks only at the peers that are due.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant as StdInstant;

use framelink_core::Instant;
use framelink_core::endpoint::{self, ANSWER_LEN, Endpoint, Entry, Route};
use framelink_core::framing::{Datagram, Encoder};
use framelink_core::session::CloseReason;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::event_loop::{Command, LoopParts};
use super::timers::Timers;
use super::{Control, Dispatch, EventContext, Handler, PeerInfo, Reply, Served, dispatch};
use crate::Transport;
use crate::clock::StdClock;
use crate::conn::{Framed, zeroed};
use crate::cookie;

/// Largest UDP datagram read.
const DATAGRAM_READ: usize = 65536;
/// The socket's token (the waker has its own).
const SOCKET: Token = Token(0);
/// Datagrams read per turn before due deadlines and pushed messages have theirs (the rest are
/// read in the next turn, which does not wait).
const READS_PER_TURN: usize = 256;
/// Due peer deadlines handled per turn before the socket is read again.
const TIMERS_PER_TURN: usize = 64;

/// A UDP client: its session and what the server keeps beside it.
struct UdpPeer {
    framed: Framed,
    served: Served,
    /// Its earliest deadline in the socket's [`Timers`].
    armed: Option<StdInstant>,
}

/// The endpoint's table: grows with the peers (the client limit is the server's, shared by
/// every listener).
type Peers = BTreeMap<SocketAddr, Entry<Box<UdpPeer>>>;

/// A peer's key in the deadline heap: its address, and its client id, so that a later peer at
/// the same address does not take up the entries of the one before.
type PeerKey = (SocketAddr, u64);

/// What every peer's turn needs: the socket and who to tell.
struct Context<'a, H> {
    socket: UdpSocket,
    control: &'a Control,
    handler: &'a H,
    clock: StdClock,
    /// This socket's index among the server's loops (in [`Control::clients`]).
    index: usize,
}

/// One UDP socket's server: its peers, their deadlines, and the buffers they share.
struct UdpServer<'a, H> {
    cx: Context<'a, H>,
    endpoint: Endpoint<Peers>,
    timers: Timers<PeerKey>,
    /// The address of each peer, by client id.
    by_id: HashMap<u64, SocketAddr>,
    output: Box<[u8]>,
    answer: [u8; ANSWER_LEN],
    strays_counted: u64,
    local: SocketAddr,
    packet_len: usize,
}

/// Serves every peer of one UDP socket until the server stops; `parts` are its poll and the
/// commands sent to it, `index` its place among the server's loops.
pub(super) fn serve_datagrams<H: Handler>(
    socket: std::net::UdpSocket,
    parts: LoopParts,
    index: usize,
    control: &Control,
    handler: &H,
) {
    let LoopParts { poll, commands, .. } = parts;
    let local = socket.local_addr().unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let mut socket = UdpSocket::from_std(socket);
    if poll.registry().register(&mut socket, SOCKET, Interest::READABLE).is_err() {
        return;
    }
    let config = &control.config.link;
    let packet_len = config.packet_len(Transport::Udp);
    // A CLOSE repeated because our CLOSE-ACK was lost is answered for as long as the session
    // would have waited for it.
    let settings = endpoint::Config::new().linger(config.close_timeout);
    let mut server = UdpServer {
        cx: Context { socket, control, handler, clock: StdClock::new(), index },
        endpoint: Endpoint::new(cookie::random_key(), Peers::new(), settings),
        timers: Timers::default(),
        by_id: HashMap::new(),
        output: zeroed(Datagram::max_encoded_len(packet_len)),
        answer: [0u8; ANSWER_LEN],
        strays_counted: 0,
        local,
        packet_len,
    };
    server.run(poll, &commands);
}

impl<H: Handler> UdpServer<'_, H> {
    fn run(&mut self, mut poll: Poll, commands: &Receiver<Command>) {
        let mut events = Events::with_capacity(16);
        let mut input = zeroed(DATAGRAM_READ);
        // Edge-triggered readiness: the socket is read until it would block.
        let mut readable = true;
        loop {
            if self.cx.control.stopping() {
                self.close_all();
                return;
            }
            let timeout = if readable {
                Some(std::time::Duration::ZERO)
            } else {
                let own = self.endpoint.poll_timeout().map(|at| self.cx.clock.to_std(at));
                [self.timers.next(), own]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|at| at.saturating_duration_since(StdInstant::now()))
            };
            if let Err(error) = poll.poll(&mut events, timeout)
                && error.kind() != io::ErrorKind::Interrupted
            {
                // A poll that fails will fail again: serve no more, as a stop would.
                self.close_all();
                return;
            }
            readable |= events.iter().any(|event| event.token() == SOCKET);
            if readable {
                readable = self.read(&mut input);
            }
            while let Ok(command) = commands.try_recv() {
                self.run_command(command);
            }
            self.run_timers();
        }
    }

    /// Reads and handles up to [`READS_PER_TURN`] datagrams; `true` if more may wait.
    fn read(&mut self, input: &mut [u8]) -> bool {
        for _ in 0..READS_PER_TURN {
            match self.cx.socket.recv_from(input) {
                Ok((len, from)) => self.datagram(from, &input[..len]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return false,
                // An ICMP error reported on the socket (Windows: a peer's port unreachable), or
                // an interrupted call: read on.
                Err(_) => {}
            }
        }
        true
    }

    /// A datagram from `from`: to its session, a new peer, or an answer of the endpoint's.
    fn datagram(&mut self, from: SocketAddr, datagram: &[u8]) {
        let now = self.cx.clock.now();
        let Self { cx, endpoint, timers, by_id, output, answer, local, packet_len, .. } = self;
        let end = match endpoint.handle(now, from, datagram, answer) {
            Route::Session(peer) => {
                peer.framed.handle_bytes(now, datagram);
                turn(cx, timers, peer, from, output, now)
            }
            Route::Incoming(incoming) => {
                // A proven HELLO: a new peer if the server's client limit allows.
                let control = cx.control;
                let taken = if control.reserve() {
                    let peer = new_peer(control, &cx.clock, from, *local, *packet_len);
                    endpoint.accept(incoming, peer).inspect_err(|_| control.release())
                } else {
                    Err(incoming)
                };
                match taken {
                    Ok(peer) => {
                        control.accepted.fetch_add(1, Ordering::Relaxed);
                        let id = peer.served.info.id;
                        by_id.insert(id, from);
                        control.clients.lock().unwrap_or_else(PoisonError::into_inner).insert(id, cx.index);
                        peer.framed.handle_bytes(now, datagram);
                        turn(cx, timers, peer, from, output, now)
                    }
                    Err(incoming) => {
                        control.refused.fetch_add(1, Ordering::Relaxed);
                        let detail = u32::try_from(control.config.max_clients).unwrap_or(u32::MAX);
                        let n = endpoint.refuse(incoming, detail, answer);
                        send_answer(&cx.socket, &answer[..n], from);
                        None
                    }
                }
            }
            Route::Answer(n) => {
                send_answer(&cx.socket, &answer[..n], from);
                None
            }
            Route::Drop => None,
        };
        if let Some(end) = end {
            self.drop_peer(from, end, now);
        }
        let strays = self.endpoint.counters().stray;
        self.cx.control.stray_datagrams.fetch_add(strays - self.strays_counted, Ordering::Relaxed);
        self.strays_counted = strays;
    }

    /// A message pushed by the server's handle: queued for one peer or for all.
    fn run_command(&mut self, command: Command) {
        match command {
            Command::Send(id, message) => {
                if let Some(&addr) = self.by_id.get(&id) {
                    self.push(addr, &message);
                }
            }
            Command::Broadcast(message) => {
                let addrs: Vec<SocketAddr> = self.by_id.values().copied().collect();
                for addr in addrs {
                    self.push(addr, &message);
                }
            }
            // Connections go to the event loops only; a slot reserved for one is given back.
            Command::Adopt(..) => self.cx.control.release(),
        }
    }

    /// Queues `message` for the peer at `addr` (if it is connected and takes a message that
    /// large) and sends what can go.
    fn push(&mut self, addr: SocketAddr, message: &[u8]) {
        let now = self.cx.clock.now();
        let Self { cx, endpoint, timers, output, .. } = self;
        let Some(peer) = endpoint.get_mut(&addr) else { return };
        if !peer.served.connected {
            return;
        }
        let at = EventContext::of(peer.framed.session(), peer.served.own_max);
        let mut reply = Reply { outbox: &mut peer.served.outbox, state: at.state, max: at.max };
        if reply.send(message).is_ok()
            && let Some(end) = turn(cx, timers, peer, addr, output, now)
        {
            self.drop_peer(addr, end, now);
        }
    }

    /// Runs the due deadlines of the peers (a bounded number) and the endpoint's own.
    fn run_timers(&mut self) {
        let now_std = StdInstant::now();
        let now = self.cx.clock.now();
        let mut handled = 0;
        while handled < TIMERS_PER_TURN
            && let Some((at, (addr, id))) = self.timers.pop_due(now_std)
        {
            let Self { cx, endpoint, timers, output, .. } = self;
            let Some(peer) = endpoint.get_mut(&addr) else { continue };
            if peer.served.info.id != id || peer.armed != Some(at) {
                continue;
            }
            peer.armed = None;
            handled += 1;
            if peer.framed.session().poll_timeout().is_some_and(|due| due <= now) {
                peer.framed.session_mut().handle_timeout(now);
            }
            if let Some(end) = turn(cx, timers, peer, addr, output, now) {
                self.drop_peer(addr, end, now);
            }
        }
        if self.endpoint.poll_timeout().is_some_and(|at| at <= now) {
            self.endpoint.handle_timeout(now);
        }
    }

    /// Closes every session (CLOSE to each peer) and drops its peer: the server stops.
    fn close_all(&mut self) {
        let now = self.cx.clock.now();
        let Self { cx, endpoint, output, .. } = self;
        let mut addrs = Vec::with_capacity(endpoint.len());
        endpoint.for_each_session(|addr, peer| {
            peer.framed.session_mut().close(now);
            send_datagrams(&cx.socket, &mut peer.framed, addr, output, now);
            addrs.push(addr);
        });
        for addr in addrs {
            self.drop_peer(addr, Some(CloseReason::Local), now);
        }
    }

    /// Drops the peer at `addr`: gives its client slot back, unlists it, counts why its session
    /// ended and tells the handler.
    fn drop_peer(&mut self, addr: SocketAddr, end: Option<CloseReason>, now: Instant) {
        let peer = match end {
            Some(CloseReason::Peer) => self.endpoint.remove_closed(&addr, now),
            _ => self.endpoint.remove(&addr),
        };
        let Some(peer) = peer else { return };
        let control = self.cx.control;
        let id = peer.served.info.id;
        self.by_id.remove(&id);
        control.clients.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        control.release();
        if let Some(reason) = &end {
            control.count_end(reason);
        }
        if let (true, Some(reason)) = (peer.served.connected, end) {
            let handler = self.cx.handler;
            let _ = catch_unwind(AssertUnwindSafe(|| handler.on_close(&peer.served.info, Ok(reason))));
        }
    }
}

/// A peer's turn: its events to the handler, its packets to the socket, its next deadline to
/// the heap. `Some` when the peer is to be dropped (with the reason its session ended, if it
/// did).
fn turn<H: Handler>(
    cx: &Context<'_, H>,
    timers: &mut Timers<PeerKey>,
    peer: &mut UdpPeer,
    addr: SocketAddr,
    output: &mut [u8],
    now: Instant,
) -> Option<Option<CloseReason>> {
    let end = serve_peer(cx.handler, cx.control, &cx.socket, peer, addr, output, now);
    if end.is_none()
        && let Some(at) = peer.framed.session().poll_timeout()
    {
        timers.arm(&mut peer.armed, cx.clock.to_std(at), (addr, peer.served.info.id));
    }
    end
}

/// A new peer at `addr`: a fresh server session and what the server keeps beside it (boxed, so
/// that the table moves a pointer, not the session, when it rebalances).
fn new_peer(
    control: &Control,
    clock: &StdClock,
    addr: SocketAddr,
    local: SocketAddr,
    packet_len: usize,
) -> Box<UdpPeer> {
    let info =
        PeerInfo { id: control.next_id(), addr, local, transport: Transport::Udp, session_id: 0, port: None };
    let session = control.config.link.server_session(Transport::Udp, clock);
    let framed = Framed::new(Transport::Udp, session, packet_len);
    Box::new(UdpPeer { framed, served: Served::new(info, &control.config), armed: None })
}

/// Sends an answer of the endpoint's (none if empty); a lost one is asked for again.
fn send_answer(socket: &UdpSocket, answer: &[u8], to: SocketAddr) {
    if !answer.is_empty() {
        let _ = socket.send_to(answer, to);
    }
}

/// Hands a UDP peer's events to the handler and sends what its session has to send; returns
/// `Some` when the peer is to be dropped (with the reason its session ended, if it did).
fn serve_peer<H: Handler>(
    handler: &H,
    control: &Control,
    socket: &UdpSocket,
    peer: &mut UdpPeer,
    addr: SocketAddr,
    output: &mut [u8],
    now: Instant,
) -> Option<Option<CloseReason>> {
    loop {
        let outcome = dispatch(handler, &mut peer.framed, &mut peer.served, control, now);
        send_datagrams(socket, &mut peer.framed, addr, output, now);
        match outcome {
            // Sending can end the session (CLOSE-ACK) or make room for replies: look again.
            Dispatch::Wait
                if peer.framed.session().has_event()
                    && (peer.served.outbox.is_empty() || peer.framed.session().is_closed()) => {}
            Dispatch::Wait => return None,
            Dispatch::Ended(reason) => return Some(Some(reason)),
            Dispatch::Panicked => return Some(None),
        }
    }
}

/// Sends every packet the session has to send, one datagram each.
fn send_datagrams(
    socket: &UdpSocket,
    framed: &mut Framed,
    addr: SocketAddr,
    output: &mut [u8],
    now: Instant,
) {
    while let Ok(len @ 1..) = framed.poll_transmit(now, output) {
        // A datagram the kernel refuses is as good as lost; the session's idle timeout ends a
        // peer that cannot be reached.
        let _ = socket.send_to(&output[..len], addr);
    }
}
