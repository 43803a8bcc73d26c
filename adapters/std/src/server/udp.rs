//! Serving a UDP socket: every peer's session on one thread, told apart by source address.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Instant as StdInstant;

use framelink_core::Instant;
use framelink_core::framing::{Datagram, Encoder, datagram};
use framelink_core::session::CloseReason;
use framelink_core::wire::{
    DecodeError, ErrorCode, HelloPayload, Packet, PacketType, Repr, RetryPayload, VERSION,
};

use super::{Control, Dispatch, Handler, PeerInfo, Served, control_frame, dispatch, error_frame};
use crate::Transport;
use crate::clock::StdClock;
use crate::conn::{Framed, TimeoutCache, zeroed};
use crate::cookie::CookieJar;

/// Largest UDP datagram read.
const DATAGRAM_READ: usize = 65536;

/// A control packet of `kind` with `payload`, as a datagram tagged `tag`.
fn control_datagram(kind: PacketType, payload: &[u8], tag: u32) -> Vec<u8> {
    control_frame(Transport::Udp, kind, payload, tag)
}

/// Sends `frame` to `to` if it is no larger than the datagram it answers (no amplification).
fn answer(socket: &UdpSocket, frame: &[u8], to: SocketAddr, answered: &[u8]) {
    if !frame.is_empty() && frame.len() <= answered.len() {
        let _ = socket.send_to(frame, to);
    }
}

/// What to do with a HELLO before any session sees it: `true` when it may go on, `false`
/// when it was answered with a RETRY. A HELLO that would start a session (from a new address,
/// or with a new session id from a known one) must carry a cookie proving its address.
fn validated(
    socket: &UdpSocket,
    cookies: &CookieJar,
    hello: &HelloPayload,
    current: Option<u32>,
    from: SocketAddr,
    datagram: &[u8],
) -> bool {
    let now = StdInstant::now();
    if current == Some(hello.session_id)
        || hello.cookie.is_some_and(|cookie| cookies.check(from, hello.session_id, &cookie, now))
    {
        return true;
    }
    let retry = RetryPayload { cookie: cookies.issue(from, hello.session_id, now) };
    let tag = datagram::session_tag(datagram).unwrap_or(hello.session_id);
    answer(socket, &control_datagram(PacketType::Retry, &retry.cookie, tag), from, datagram);
    false
}

/// A UDP client: its session and what the server keeps beside it.
struct UdpPeer {
    framed: Framed,
    served: Served,
}

/// Serves every peer of one UDP socket until the server stops.
pub(super) fn serve_datagrams<H: Handler>(socket: &UdpSocket, control: &Control, handler: &H) {
    let config = &control.config.link;
    let clock = StdClock::new();
    let local = socket.local_addr().unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let packet_len = config.packet_len(Transport::Udp);
    let mut input = zeroed(DATAGRAM_READ);
    let mut output = zeroed(Datagram::max_encoded_len(packet_len));
    let mut peers: HashMap<SocketAddr, UdpPeer> = HashMap::new();
    // Peers whose CLOSE we answered, until when, and their session id: a CLOSE repeated because
    // our CLOSE-ACK was lost is answered again (the session itself is gone).
    let mut lingering: HashMap<SocketAddr, (StdInstant, u32)> = HashMap::new();
    let cookies = CookieJar::new();
    let mut next_check: Option<StdInstant> = None;
    let mut read_timeout = TimeoutCache::default();
    let ended = |peer: UdpPeer, end: Option<CloseReason>| {
        control.release();
        if let Some(reason) = &end {
            control.count_end(reason);
        }
        if let (true, Some(reason)) = (peer.served.connected, end) {
            let _ = catch_unwind(AssertUnwindSafe(|| handler.on_close(&peer.served.info, Ok(reason))));
        }
    };
    loop {
        if control.stopping() {
            let now = clock.now();
            for (addr, mut peer) in peers.drain() {
                peer.framed.session_mut().close(now);
                send_datagrams(socket, &mut peer.framed, addr, &mut output, now);
                ended(peer, Some(CloseReason::Local));
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
                let tag = datagram::session_tag(datagram).unwrap_or(0);
                let current = peers.get(&from).map(|peer| peer.framed.session().session_id());
                // The server reads a datagram itself (a second CRC pass, the session's decoder
                // makes the first) only where it must: from a new address, or a HELLO (a new
                // session id must prove its address). The rest goes to the session unread.
                let hello_type = datagram
                    .get(datagram::TAG_LEN..)
                    .and_then(|bytes| Packet::new_checked(bytes).ok())
                    .is_some_and(|packet| packet.kind() == PacketType::Hello);
                let packet = (current.is_none() || hello_type)
                    .then(|| datagram.get(datagram::TAG_LEN..).map(Repr::parse))
                    .flatten();
                let hello = match &packet {
                    Some(Ok(packet)) if packet.kind == PacketType::Hello => {
                        HelloPayload::parse(packet.payload)
                    }
                    _ => None,
                };
                if let Some(hello) = &hello
                    && !validated(socket, &cookies, hello, current, from, datagram)
                {
                    continue;
                }
                let peer = match peers.get_mut(&from) {
                    Some(peer) => Some(peer),
                    None => match packet {
                        Some(Ok(_)) if hello.is_some() => {
                            if control.reserve() {
                                control.accepted.fetch_add(1, Ordering::Relaxed);
                                let info = PeerInfo {
                                    id: control.next_id(),
                                    addr: from,
                                    local,
                                    transport: Transport::Udp,
                                    session_id: 0,
                                    port: None,
                                };
                                let session = config.server_session(Transport::Udp, &clock);
                                let framed = Framed::new(Transport::Udp, session, packet_len);
                                let served = Served::new(info, &control.config);
                                Some(peers.entry(from).or_insert(UdpPeer { framed, served }))
                            } else {
                                answer(socket, &control.refusal(Transport::Udp, tag), from, datagram);
                                None
                            }
                        }
                        Some(Ok(packet))
                            if packet.kind == PacketType::Close
                                && lingering.get(&from).is_some_and(|&(_, id)| id == tag) =>
                        {
                            answer(socket, &control_datagram(PacketType::CloseAck, &[], tag), from, datagram);
                            None
                        }
                        Some(Err(DecodeError::BadVersion { .. })) => {
                            control.stray_datagrams.fetch_add(1, Ordering::Relaxed);
                            let frame =
                                error_frame(Transport::Udp, ErrorCode::VersionMismatch, VERSION.into(), tag);
                            answer(socket, &frame, from, datagram);
                            None
                        }
                        _ => {
                            control.stray_datagrams.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                    },
                };
                if let Some(peer) = peer {
                    peer.framed.handle_bytes(now, datagram);
                    match serve_peer(handler, control, socket, peer, from, &mut output, now) {
                        Some(end) => {
                            if let Some(peer) = peers.remove(&from) {
                                if end == Some(CloseReason::Peer) {
                                    let id = peer.framed.session().session_id();
                                    lingering.insert(from, (StdInstant::now() + config.close_timeout, id));
                                }
                                ended(peer, end);
                            }
                        }
                        None => {
                            let at = peer.framed.session().poll_timeout().map(|at| clock.to_std(at));
                            next_check = [next_check, at].into_iter().flatten().min();
                        }
                    }
                }
            }
        }
        if next_check.is_some_and(|at| at <= StdInstant::now()) {
            // Run every due timer, drop the peers that ended, find the next deadline.
            let now = clock.now();
            next_check = None;
            let mut gone = Vec::new();
            for (&addr, peer) in &mut peers {
                if peer.framed.session().poll_timeout().is_some_and(|at| at <= now) {
                    peer.framed.session_mut().handle_timeout(now);
                }
                match serve_peer(handler, control, socket, peer, addr, &mut output, now) {
                    Some(end) => gone.push((addr, end)),
                    None => {
                        let at = peer.framed.session().poll_timeout().map(|at| clock.to_std(at));
                        next_check = [next_check, at].into_iter().flatten().min();
                    }
                }
            }
            for (addr, end) in gone {
                if let Some(peer) = peers.remove(&addr) {
                    if end == Some(CloseReason::Peer) {
                        let id = peer.framed.session().session_id();
                        lingering.insert(addr, (StdInstant::now() + config.close_timeout, id));
                    }
                    ended(peer, end);
                }
            }
            let at = StdInstant::now();
            lingering.retain(|_, (until, _)| *until > at);
        }
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
