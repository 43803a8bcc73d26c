//! Serving a UDP socket: every peer's session on one thread, told apart by source address
//! through a [`framelink_core::endpoint`] (session tags, RETRY cookies, the session table).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Instant as StdInstant;

use framelink_core::Instant;
use framelink_core::endpoint::{self, ANSWER_LEN, Endpoint, Entry, Route};
use framelink_core::framing::{Datagram, Encoder};
use framelink_core::session::CloseReason;

use super::{Control, Dispatch, Handler, PeerInfo, Served, dispatch};
use crate::Transport;
use crate::clock::StdClock;
use crate::conn::{Framed, TimeoutCache, zeroed};
use crate::cookie;

/// Largest UDP datagram read.
const DATAGRAM_READ: usize = 65536;

/// A UDP client: its session and what the server keeps beside it.
struct UdpPeer {
    framed: Framed,
    served: Served,
}

/// The endpoint's table: grows with the peers (the client limit is the server's, shared by
/// every listener).
type Peers = BTreeMap<SocketAddr, Entry<Box<UdpPeer>>>;

/// What became of a peer after its session had its turn.
enum After {
    /// The peer is to be dropped, with the reason its session ended, if it did.
    Ended(Option<CloseReason>),
    /// The session waits, until its next deadline if it has one.
    Wait(Option<StdInstant>),
}

/// Serves every peer of one UDP socket until the server stops.
pub(super) fn serve_datagrams<H: Handler>(socket: &UdpSocket, control: &Control, handler: &H) {
    let config = &control.config.link;
    let clock = StdClock::new();
    let local = socket.local_addr().unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let packet_len = config.packet_len(Transport::Udp);
    let mut input = zeroed(DATAGRAM_READ);
    let mut output = zeroed(Datagram::max_encoded_len(packet_len));
    let mut answer = [0u8; ANSWER_LEN];
    // A CLOSE repeated because our CLOSE-ACK was lost is answered for as long as the session
    // would have waited for it.
    let settings = endpoint::Config::new().linger(config.close_timeout);
    let mut endpoint = Endpoint::new(cookie::random_key(), Peers::new(), settings);
    let mut strays_counted = 0;
    let mut next_check: Option<StdInstant> = None;
    let mut read_timeout = TimeoutCache::default();
    let ended = |peer: Box<UdpPeer>, end: Option<CloseReason>| {
        control.release();
        if let Some(reason) = &end {
            control.count_end(reason);
        }
        if let (true, Some(reason)) = (peer.served.connected, end) {
            let _ = catch_unwind(AssertUnwindSafe(|| handler.on_close(&peer.served.info, Ok(reason))));
        }
    };
    let drop_peer =
        |endpoint: &mut Endpoint<Peers>, addr: SocketAddr, end: Option<CloseReason>, now: Instant| {
            let peer = match end {
                Some(CloseReason::Peer) => endpoint.remove_closed(&addr, now),
                _ => endpoint.remove(&addr),
            };
            if let Some(peer) = peer {
                ended(peer, end);
            }
        };
    // A session's turn: its events to the handler, its packets to the socket.
    let serve = |peer: &mut UdpPeer, addr: SocketAddr, output: &mut [u8], now: Instant| {
        let end = serve_peer(handler, control, socket, peer, addr, output, now);
        match end {
            Some(end) => After::Ended(end),
            None => After::Wait(peer.framed.session().poll_timeout().map(|at| clock.to_std(at))),
        }
    };
    loop {
        if control.stopping() {
            let now = clock.now();
            let mut addrs = Vec::with_capacity(endpoint.len());
            endpoint.for_each_session(|addr, peer| {
                peer.framed.session_mut().close(now);
                send_datagrams(socket, &mut peer.framed, addr, &mut output, now);
                addrs.push(addr);
            });
            for addr in addrs {
                drop_peer(&mut endpoint, addr, Some(CloseReason::Local), now);
            }
            return;
        }
        let wait = next_check.map(|at| at.saturating_duration_since(StdInstant::now()));
        if wait.is_none_or(|w| !w.is_zero()) {
            if let Some(timeout) = read_timeout.update(wait)
                && socket.set_read_timeout(timeout).is_err()
            {
                read_timeout.reset();
            }
            if let Ok((len, from)) = socket.recv_from(&mut input) {
                let now = clock.now();
                let datagram = &input[..len];
                let after = match endpoint.handle(now, from, datagram, &mut answer) {
                    Route::Session(peer) => {
                        peer.framed.handle_bytes(now, datagram);
                        Some(serve(peer, from, &mut output, now))
                    }
                    Route::Incoming(incoming) => {
                        // A proven HELLO: a new peer if the server's client limit allows.
                        let taken = if control.reserve() {
                            let peer = new_peer(control, &clock, from, local, packet_len);
                            endpoint.accept(incoming, peer).inspect_err(|_| control.release())
                        } else {
                            Err(incoming)
                        };
                        match taken {
                            Ok(peer) => {
                                control.accepted.fetch_add(1, Ordering::Relaxed);
                                peer.framed.handle_bytes(now, datagram);
                                Some(serve(peer, from, &mut output, now))
                            }
                            Err(incoming) => {
                                control.refused.fetch_add(1, Ordering::Relaxed);
                                let detail = u32::try_from(control.config.max_clients).unwrap_or(u32::MAX);
                                let n = endpoint.refuse(incoming, detail, &mut answer);
                                send_answer(socket, &answer[..n], from);
                                None
                            }
                        }
                    }
                    Route::Answer(n) => {
                        send_answer(socket, &answer[..n], from);
                        None
                    }
                    Route::Drop => None,
                };
                match after {
                    Some(After::Ended(end)) => drop_peer(&mut endpoint, from, end, now),
                    Some(After::Wait(at)) => next_check = [next_check, at].into_iter().flatten().min(),
                    None => {}
                }
                let strays = endpoint.counters().stray;
                control.stray_datagrams.fetch_add(strays - strays_counted, Ordering::Relaxed);
                strays_counted = strays;
            }
        }
        if next_check.is_some_and(|at| at <= StdInstant::now()) {
            // Run every due timer, drop the peers that ended, find the next deadline.
            let now = clock.now();
            next_check = None;
            let mut gone = Vec::new();
            endpoint.for_each_session(|addr, peer| {
                if peer.framed.session().poll_timeout().is_some_and(|at| at <= now) {
                    peer.framed.session_mut().handle_timeout(now);
                }
                match serve(peer, addr, &mut output, now) {
                    After::Ended(end) => gone.push((addr, end)),
                    After::Wait(at) => next_check = [next_check, at].into_iter().flatten().min(),
                }
            });
            for (addr, end) in gone {
                drop_peer(&mut endpoint, addr, end, now);
            }
            endpoint.handle_timeout(now);
        }
    }
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
    Box::new(UdpPeer { framed, served: Served::new(info, &control.config) })
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
