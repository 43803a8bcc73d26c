//! Session tests on a virtual clock: two sessions joined in memory.

use core::time::Duration;
use std::vec::Vec;

use super::*;
use crate::wire::{AckPayload, BufferTooSmall, ErrorPayload, PacketType, Repr, RetryPayload};

type S = Session<[u8; 4096], 8>;

const T0: Instant = Instant::ZERO;

fn config() -> Config {
    Config::new().max_payload(256)
}

/// An event with its message copied out, so it outlives the session's borrow.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Connected,
    Message(Vec<u8>),
    Pong(u32, Duration),
    Closed(CloseReason),
}

fn events(s: &mut S) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Some(e) = s.poll_event() {
        out.push(match e {
            Event::Connected => Ev::Connected,
            Event::Message(m) => Ev::Message(m.to_vec()),
            Event::Pong { token, rtt } => Ev::Pong(token, rtt),
            Event::Closed(r) => Ev::Closed(r),
        });
    }
    out
}

/// Every packet `s` sends now, as (type, bytes).
fn drain(s: &mut S, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..1000 {
        match s.poll_transmit(now, &mut buf).unwrap() {
            Some(len) => out.push(buf[..len].to_vec()),
            None => return out,
        }
    }
    panic!("poll_transmit never ran dry");
}

fn kinds(packets: &[Vec<u8>]) -> Vec<PacketType> {
    packets.iter().map(|p| Repr::parse(p).unwrap().kind).collect()
}

fn deliver(to: &mut S, packets: &[Vec<u8>], now: Instant) {
    for p in packets {
        to.handle_packet(now, &Repr::parse(p).unwrap());
    }
}

/// Moves packets both ways until neither side has anything to send.
fn settle(a: &mut S, b: &mut S, now: Instant) {
    for _ in 0..1000 {
        let ab = drain(a, now);
        deliver(b, &ab, now);
        let ba = drain(b, now);
        deliver(a, &ba, now);
        if ab.is_empty() && ba.is_empty() {
            return;
        }
    }
    panic!("the pair never settled");
}

fn connected_pair() -> (S, S) {
    connected_pair_with(config())
}

fn connected_pair_with(server_config: Config) -> (S, S) {
    let mut client = S::client(config(), 0xC0FFEE, [0; 4096], [0; 4096], T0);
    let mut server = S::server(server_config, [0; 4096], [0; 4096], T0);
    settle(&mut client, &mut server, T0);
    assert_eq!(events(&mut client), [Ev::Connected]);
    assert_eq!(events(&mut server), [Ev::Connected]);
    (client, server)
}

fn hello(session_id: u32) -> HelloPayload {
    HelloPayload {
        version: VERSION,
        supports: Capabilities::NONE,
        requires: Capabilities::NONE,
        max_payload: 256,
        window: 8,
        session_id,
        max_message: 4000,
        credit: 4000,
        cookie: None,
    }
}

/// A packet of `kind` as a peer in the matching state would send it.
fn packet(kind: PacketType, session_id: u32) -> Vec<u8> {
    let mut payload = [0u8; 32];
    let (seq, ack, len) = match kind {
        PacketType::Hello | PacketType::HelloAck => (0, None, hello(session_id).emit(&mut payload).unwrap()),
        PacketType::Data => {
            payload[..3].copy_from_slice(b"abc");
            (0, Some(SeqNumber(0)), 3)
        }
        PacketType::Ack => {
            (0, Some(SeqNumber(0)), AckPayload { credit: 4000, sack: 0 }.emit(&mut payload).unwrap())
        }
        PacketType::Ping | PacketType::Pong => {
            (0, None, PingPayload { timestamp: 0, token: 0 }.emit(&mut payload).unwrap())
        }
        PacketType::Close | PacketType::CloseAck => (0, None, 0),
        PacketType::Error => {
            let e = ErrorPayload { code: ErrorCode::ProtocolViolation, detail: 3, text: b"" };
            (0, None, e.emit(&mut payload).unwrap())
        }
        PacketType::Retry => (0, None, RetryPayload { cookie: *b"cookie!!" }.emit(&mut payload).unwrap()),
        PacketType::Unknown(_) => unreachable!(),
    };
    let mut buf = [0u8; 64];
    let repr = Repr { kind, seq: SeqNumber(seq), ack, more: false, payload: &payload[..len] };
    let n = repr.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// What one packet did to a session: its state after, whether it was ignored, the first
/// packet sent in answer.
fn probe(mut s: S, kind: PacketType) -> (State, bool, Option<PacketType>) {
    let ignored = s.stats().ignored;
    let id = s.session_id();
    deliver(&mut s, &[packet(kind, id)], T0);
    let state = s.state();
    let reply = kinds(&drain(&mut s, T0)).first().copied();
    (state, s.stats().ignored > ignored, reply)
}

fn check_row(make: impl Fn() -> S, expected: [(State, bool, Option<PacketType>); 10]) {
    for (kind, want) in PacketType::ALL.into_iter().zip(expected) {
        assert_eq!(probe(make(), kind), want, "{kind:?} in {}", make().state());
    }
}

use PacketType as P;
use State::*;

#[test]
fn every_packet_in_listen() {
    let make = || S::server(config(), [0; 4096], [0; 4096], T0);
    let ign = (Listen, true, None);
    check_row(make, [(Established, false, Some(P::HelloAck)), ign, ign, ign, ign, ign, ign, ign, ign, ign]);
}

#[test]
fn every_packet_in_hello_sent() {
    let make = || {
        let mut c = S::client(config(), 7, [0; 4096], [0; 4096], T0);
        assert_eq!(kinds(&drain(&mut c, T0)), [P::Hello]);
        c
    };
    let ign = (HelloSent, true, None);
    // RETRY: HELLO again at once, with the cookie.
    let retry = (HelloSent, false, Some(P::Hello));
    check_row(
        make,
        [ign, (Established, false, None), ign, ign, ign, ign, ign, ign, (Closed, false, None), retry],
    );
}

#[test]
fn every_packet_in_established() {
    let make = || connected_pair().1;
    check_row(
        make,
        [
            (Established, false, Some(P::HelloAck)),
            (Established, true, None),
            (Established, false, Some(P::Ack)),
            (Established, false, None),
            (Established, false, Some(P::Pong)),
            (Established, false, None),
            (Draining, false, Some(P::CloseAck)),
            (Established, true, None),
            (Closed, false, None),
            (Established, true, None),
        ],
    );
}

#[test]
fn every_packet_in_closing() {
    // Closed with a message not yet acknowledged: CLOSE waits for it.
    let make = || {
        let (_, mut server) = connected_pair();
        server.send(T0, b"unacknowledged").unwrap();
        assert_eq!(kinds(&drain(&mut server, T0)), [P::Data]);
        server.close(T0);
        assert_eq!(kinds(&drain(&mut server, T0)), []);
        server
    };
    check_row(
        make,
        [
            (Closing, false, Some(P::HelloAck)),
            (Closing, true, None),
            (Closing, false, Some(P::Ack)),
            (Closing, false, None),
            (Closing, false, Some(P::Pong)),
            (Closing, false, None),
            // The peer closes too: it drains towards us, and we still wait for our data.
            (Draining, false, None),
            (Closing, true, None),
            (Closed, false, None),
            (Closing, true, None),
        ],
    );
}

#[test]
fn every_packet_in_close_sent() {
    let make = || {
        let (_, mut server) = connected_pair();
        server.close(T0);
        assert_eq!(kinds(&drain(&mut server, T0)), [P::Close]);
        server
    };
    check_row(
        make,
        [
            (CloseSent, false, Some(P::HelloAck)),
            (CloseSent, true, None),
            (CloseSent, false, Some(P::Ack)),
            (CloseSent, false, None),
            (CloseSent, false, Some(P::Pong)),
            (CloseSent, false, None),
            (CloseSent, false, Some(P::CloseAck)),
            (Closed, false, None),
            (Closed, false, None),
            (CloseSent, true, None),
        ],
    );
}

#[test]
fn every_packet_in_draining() {
    let make = || {
        let (mut client, mut server) = connected_pair();
        client.close(T0);
        deliver(&mut server, &drain(&mut client, T0), T0);
        assert_eq!(server.state(), Draining);
        server
    };
    let done = Some(P::CloseAck);
    check_row(
        make,
        [
            (Draining, false, Some(P::HelloAck)),
            (Draining, true, done),
            (Draining, true, done),
            (Draining, false, done),
            (Draining, false, Some(P::Pong)),
            (Draining, false, done),
            // A repeated CLOSE: an ACK says we are alive (10.6).
            (Draining, false, Some(P::Ack)),
            (Draining, true, done),
            (Closed, false, None),
            (Draining, true, done),
        ],
    );
}

#[test]
fn every_packet_in_closed() {
    let make = || {
        let (mut client, mut server) = connected_pair();
        client.close(T0);
        settle(&mut client, &mut server, T0);
        assert_eq!(server.state(), Closed);
        server
    };
    let ign = (Closed, true, None);
    // A repeated CLOSE means our CLOSE-ACK was lost: it is sent again.
    check_row(make, [ign, ign, ign, ign, ign, ign, (Closed, false, Some(P::CloseAck)), ign, ign, ign]);
}

#[test]
fn messages_cross_whole_in_order_both_ways() {
    let (mut client, mut server) = connected_pair();
    let big: Vec<u8> = (0..3000u32).map(|i| (i * 31) as u8).collect();
    client.send(T0, b"Hello, ").unwrap();
    client.send(T0, b"Server!").unwrap();
    client.send(T0, &big).unwrap();
    client.send(T0, b"").unwrap();
    server.send(T0, b"reply").unwrap();
    settle(&mut client, &mut server, T0);
    assert_eq!(
        events(&mut server),
        [
            Ev::Message(b"Hello, ".to_vec()),
            Ev::Message(b"Server!".to_vec()),
            Ev::Message(big),
            Ev::Message(Vec::new())
        ]
    );
    assert_eq!(events(&mut client), [Ev::Message(b"reply".to_vec())]);
    assert!(client.is_send_drained() && server.is_send_drained());
    assert_eq!(client.stats().bytes_acked, 3014);
    assert_eq!(server.stats().messages_received, 4);
}

#[test]
fn a_large_message_is_sent_in_fragments_of_the_peer_max_payload() {
    let (mut client, mut server) = connected_pair();
    client.send(T0, &[0x5A; 1000]).unwrap();
    let packets = drain(&mut client, T0);
    let lens: Vec<(usize, bool)> =
        packets.iter().map(|p| Repr::parse(p).unwrap()).map(|r| (r.payload.len(), r.more)).collect();
    assert_eq!(lens, [(256, true), (256, true), (256, true), (232, false)]);
    deliver(&mut server, &packets, T0);
    assert_eq!(events(&mut server), [Ev::Message([0x5A; 1000].to_vec())]);
}

#[test]
fn send_is_refused_with_a_reason_in_every_state() {
    let mut client = S::client(config(), 1, [0; 4096], [0; 4096], T0);
    assert_eq!(client.send(T0, b"early"), Err(SendError::NotConnected));
    let (mut client, mut server) = connected_pair();
    assert_eq!(client.send(T0, &[0; 4093]), Err(SendError::TooLarge { max: 4092 }));
    client.close(T0);
    assert_eq!(client.send(T0, b"late"), Err(SendError::Closing));
    settle(&mut client, &mut server, T0);
    assert_eq!(client.send(T0, b"later"), Err(SendError::Closed));
    assert_eq!(server.send(T0, b"later"), Err(SendError::Closed));
}

#[test]
fn a_full_send_buffer_would_block_and_loses_nothing() {
    let (mut client, mut server) = connected_pair();
    let mut queued = 0u32;
    while client.send(T0, &[queued as u8; 1000]).is_ok() {
        queued += 1;
    }
    assert_eq!(queued, 4, "4 x 1004 bytes fill a 4096-byte buffer");
    assert_eq!(client.send(T0, &[0; 1000]), Err(SendError::WouldBlock));
    settle(&mut client, &mut server, T0);
    let got = events(&mut server);
    assert_eq!(got.len(), 4);
    assert_eq!(client.send(T0, &[9; 1000]), Ok(()));
}

#[test]
fn an_unread_receiver_stops_the_sender_by_credit_not_by_loss() {
    let (mut client, mut server) = connected_pair();
    for i in 0..40u8 {
        // The receiver reads nothing while its 4096-byte buffer fills.
        while client.send(T0, &[i; 300]).is_err() {
            settle(&mut client, &mut server, T0);
            let before = server.stats().bytes_received;
            settle(&mut client, &mut server, T0);
            if server.stats().bytes_received == before {
                // Stalled on credit: read everything, which grants more.
                for (n, e) in events(&mut server).into_iter().enumerate() {
                    assert!(matches!(e, Ev::Message(ref m) if m.len() == 300), "{n}: {e:?}");
                }
            }
        }
    }
    settle(&mut client, &mut server, T0);
    let _ = events(&mut server);
    settle(&mut client, &mut server, T0);
    assert_eq!(server.stats().messages_received, 40);
    assert_eq!(server.stats().ignored + server.stats().duplicates, 0);
    assert!(client.is_send_drained());
}

/// Moves the credit positions of one direction, sender to receiver, by `by` (as if that much
/// had already been sent and acknowledged); they are counted modulo 2^32.
fn shift_credit(sender: &mut S, receiver: &mut S, by: u32) {
    assert!(sender.tx.is_drained());
    sender.allowed.shift(by);
    receiver.granted.shift(by);
}

#[test]
fn credit_positions_wrap_at_2_pow_32_without_a_stall_or_an_overrun() {
    let (mut client, mut server) = connected_pair();
    shift_credit(&mut client, &mut server, u32::MAX - 1000);
    shift_credit(&mut server, &mut client, u32::MAX - 5000);
    // The server echoes, so the other direction crosses its wrap too.
    let (mut to_echo, mut echoed, mut stalls) = (std::collections::VecDeque::new(), Vec::new(), 0);
    let mut pump = |client: &mut S, server: &mut S| {
        settle(client, server, T0);
        to_echo.extend(events(server));
        while let Some(Ev::Message(m)) = to_echo.front() {
            if server.send(T0, m).is_err() {
                break;
            }
            to_echo.pop_front();
        }
        settle(client, server, T0);
        echoed.extend(events(client));
    };
    for i in 0..40u8 {
        let mut tries = 0;
        while client.send(T0, &[i; 300]).is_err() {
            tries += 1;
            assert!(tries < 100, "message {i} stalled: credit lost at the wrap");
            stalls += 1;
            pump(&mut client, &mut server);
        }
    }
    for _ in 0..100 {
        pump(&mut client, &mut server);
    }
    let expected: Vec<Ev> = (0..40u8).map(|i| Ev::Message(std::vec![i; 300])).collect();
    assert_eq!(echoed, expected);
    assert!(stalls > 0, "the 4096-byte buffers never filled");
    assert!(client.allowed.sent() < 20_000 && server.allowed.sent() < 20_000, "both directions wrapped");
    for s in [&client, &server] {
        assert_eq!(s.stats().ignored + s.stats().duplicates + s.stats().dropped, 0);
        assert_eq!(s.state(), Established);
    }
}

#[test]
fn bad_payload_version_in_hello_is_refused_with_error() {
    let mut server = S::server(config(), [0; 4096], [0; 4096], T0);
    let mut h = hello(5);
    h.version = 9;
    let mut payload = [0u8; 22];
    h.emit(&mut payload).unwrap();
    server.handle_packet(T0, &Repr::control(P::Hello, &payload));
    let out = drain(&mut server, T0);
    let err = Repr::parse(&out[0]).unwrap();
    assert_eq!(err.kind, P::Error);
    let e = ErrorPayload::parse(err.payload).unwrap();
    assert_eq!((e.code, e.detail), (ErrorCode::VersionMismatch, 1));
    assert_eq!(
        events(&mut server),
        [Ev::Closed(CloseReason::LocalError { code: ErrorCode::VersionMismatch, detail: 1 })]
    );
}

#[test]
fn refused_handshake_reaches_the_client_as_a_peer_error() {
    let mut client = S::client(config(), 5, [0; 4096], [0; 4096], T0);
    let mut server = S::server(config(), [0; 4096], [0; 4096], T0);
    let _ = drain(&mut client, T0);
    server.handle_decode_error(T0, &crate::wire::DecodeError::BadVersion { version: 2 });
    deliver(&mut client, &drain(&mut server, T0), T0);
    assert_eq!(
        events(&mut client),
        [Ev::Closed(CloseReason::PeerError { code: ErrorCode::VersionMismatch, detail: 1 })]
    );
    assert_eq!(server.stats().decode_errors, 1);
}

#[test]
fn a_required_capability_we_lack_is_refused() {
    let mut server = S::server(config(), [0; 4096], [0; 4096], T0);
    let mut h = hello(5);
    h.supports = Capabilities(0x8001);
    h.requires = Capabilities(0x8000);
    let mut payload = [0u8; 22];
    h.emit(&mut payload).unwrap();
    server.handle_packet(T0, &Repr::control(P::Hello, &payload));
    let out = drain(&mut server, T0);
    let e = ErrorPayload::parse(Repr::parse(&out[0]).unwrap().payload).unwrap();
    assert_eq!((e.code, e.detail), (ErrorCode::UnsupportedCapability, 0x8000));

    // Requiring retransmission without supporting it is refused too.
    let mut server = S::server(config(), [0; 4096], [0; 4096], T0);
    h.supports = Capabilities::NONE;
    h.requires = Capabilities::RETRANSMIT;
    h.emit(&mut payload).unwrap();
    server.handle_packet(T0, &Repr::control(P::Hello, &payload));
    let out = drain(&mut server, T0);
    let e = ErrorPayload::parse(Repr::parse(&out[0]).unwrap().payload).unwrap();
    assert_eq!((e.code, e.detail), (ErrorCode::UnsupportedCapability, 1));
}

#[test]
fn graceful_close_delivers_everything_first() {
    let (mut client, mut server) = connected_pair();
    for i in 0..5u8 {
        client.send(T0, &[i; 700]).unwrap();
    }
    server.send(T0, b"last words").unwrap();
    client.close(T0);
    settle(&mut client, &mut server, T0);
    let got = events(&mut server);
    assert_eq!(got.len(), 6);
    assert!(got[..5].iter().all(|e| matches!(e, Ev::Message(m) if m.len() == 700)));
    assert_eq!(got[5], Ev::Closed(CloseReason::Peer));
    assert_eq!(events(&mut client), [Ev::Message(b"last words".to_vec()), Ev::Closed(CloseReason::Local)]);
    assert_eq!(client.poll_timeout(), None);
}

#[test]
fn both_sides_closing_at_once_both_end() {
    // Both CLOSEs cross on the wire: each side answers the other's and ends.
    let (mut client, mut server) = connected_pair();
    client.close(T0);
    server.close(T0);
    let (c, s) = (drain(&mut client, T0), drain(&mut server, T0));
    assert_eq!((kinds(&c), kinds(&s)), (std::vec![P::Close], std::vec![P::Close]));
    deliver(&mut server, &c, T0);
    deliver(&mut client, &s, T0);
    settle(&mut client, &mut server, T0);
    assert_eq!(events(&mut client), [Ev::Closed(CloseReason::Local)]);
    assert_eq!(events(&mut server), [Ev::Closed(CloseReason::Local)]);

    // The server's CLOSE is not out yet when the client's arrives: it answers instead.
    let (mut client, mut server) = connected_pair();
    client.close(T0);
    server.close(T0);
    settle(&mut client, &mut server, T0);
    assert_eq!(events(&mut client), [Ev::Closed(CloseReason::Local)]);
    assert_eq!(events(&mut server), [Ev::Closed(CloseReason::Peer)]);
}

#[test]
fn close_times_out_when_the_peer_is_gone() {
    let (mut client, _server) = connected_pair();
    client.close(T0);
    let _ = drain(&mut client, T0);
    let deadline = client.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + Duration::from_secs(5), "keepalive comes first");
    client.handle_timeout(T0 + Duration::from_secs(10));
    assert_eq!(events(&mut client), [Ev::Closed(CloseReason::TimedOut(Timeout::Close))]);
    assert_eq!(client.close_reason(), Some(CloseReason::TimedOut(Timeout::Close)));
}

#[test]
fn keepalive_pings_a_silent_peer_and_measures_rtt() {
    let (mut client, mut server) = connected_pair();
    let t = T0 + Duration::from_secs(5);
    assert_eq!(client.poll_timeout(), Some(t));
    client.handle_timeout(t);
    let ping = drain(&mut client, t);
    assert_eq!(kinds(&ping), [P::Ping]);
    deliver(&mut server, &ping, t);
    let later = t + Duration::from_millis(3);
    deliver(&mut client, &drain(&mut server, t), later);
    assert_eq!(client.rtt().latest, Some(Duration::from_millis(3)));
    assert_eq!(events(&mut client), [], "keepalive pongs raise no event");
}

#[test]
fn idle_timeout_fails_the_session_and_tells_the_peer() {
    let (mut client, _server) = connected_pair();
    let mut now = T0;
    // Keepalives go out unanswered until the idle timeout.
    while client.state() != Closed {
        now = client.poll_timeout().unwrap();
        client.handle_timeout(now);
        let _ = drain(&mut client, now).len();
    }
    assert_eq!(now, T0 + Duration::from_secs(30));
    assert_eq!(events(&mut client), [Ev::Closed(CloseReason::TimedOut(Timeout::Idle))]);
    let (mut client, _server) = connected_pair();
    client.handle_timeout(T0 + Duration::from_secs(30));
    let out = drain(&mut client, T0);
    let e = ErrorPayload::parse(Repr::parse(out.last().unwrap()).unwrap().payload).unwrap();
    assert_eq!((e.code, e.detail), (ErrorCode::IdleTimeout, 30_000));
}

#[test]
fn handshake_times_out_without_a_server() {
    let mut client = S::client(config(), 1, [0; 4096], [0; 4096], T0);
    let _ = drain(&mut client, T0);
    assert_eq!(client.poll_timeout(), Some(T0 + Duration::from_secs(10)));
    client.handle_timeout(T0 + Duration::from_secs(9));
    assert_eq!(client.state(), HelloSent);
    client.handle_timeout(T0 + Duration::from_secs(10));
    assert_eq!(events(&mut client), [Ev::Closed(CloseReason::TimedOut(Timeout::Handshake))]);
}

#[test]
fn application_ping_reports_a_pong_with_its_token() {
    let (mut client, mut server) = connected_pair();
    let token = client.ping(T0, 100).unwrap();
    let ping = drain(&mut client, T0);
    assert_eq!(Repr::parse(&ping[0]).unwrap().payload.len(), 112);
    deliver(&mut server, &ping, T0);
    let pong = drain(&mut server, T0);
    assert_eq!(Repr::parse(&pong[0]).unwrap().payload.len(), 112);
    deliver(&mut client, &pong, T0 + Duration::from_micros(250));
    assert_eq!(events(&mut client), [Ev::Pong(token, Duration::from_micros(250))]);
    assert_eq!(client.ping(T0, 245), Err(SendError::TooLarge { max: 244 }));
}

#[test]
fn a_new_hello_resets_a_server_session() {
    let (mut client, mut server) = connected_pair();
    client.send(T0, b"old").unwrap();
    deliver(&mut server, &drain(&mut client, T0), T0);
    let mut fresh = S::client(config(), 0xBEEF, [0; 4096], [0; 4096], T0);
    settle(&mut fresh, &mut server, T0);
    assert_eq!(events(&mut server), [Ev::Closed(CloseReason::Reset), Ev::Connected]);
    assert_eq!(server.session_id(), 0xBEEF);
    fresh.send(T0, b"new").unwrap();
    settle(&mut fresh, &mut server, T0);
    assert_eq!(events(&mut server), [Ev::Message(b"new".to_vec())]);
}

#[test]
fn a_session_restarted_by_a_new_hello_keeps_nothing_of_the_previous_client() {
    let (mut client, mut server) = connected_pair();
    // The first client leaves an RTT estimate (a PONG 30 ms later), counters and a ping token.
    server.ping(T0, 0).unwrap();
    let pings = drain(&mut server, T0);
    let later = T0 + Duration::from_millis(30);
    deliver(&mut client, &pings, later);
    deliver(&mut server, &drain(&mut client, later), later);
    client.send(later, b"old").unwrap();
    settle(&mut client, &mut server, later);
    assert!(server.rtt().smoothed.is_some());
    let _ = events(&mut server);

    let mut fresh = S::client(config(), 0xBEEF, [0; 4096], [0; 4096], later);
    deliver(&mut server, &drain(&mut fresh, later), later);
    assert_eq!(events(&mut server), [Ev::Closed(CloseReason::Reset), Ev::Connected]);
    assert_eq!(server.rtt(), RttStats::default(), "no RTT carried over");
    let expected = Stats { packets_received: 1, ..Stats::default() };
    assert_eq!(server.stats(), expected, "counters start with the new HELLO");
    // Its first ping carries token 1, as a new session's would.
    assert_eq!(server.ping(later, 0), Ok(1));
}

#[test]
fn duplicate_data_is_dropped_and_acknowledged_again() {
    let (mut client, mut server) = connected_pair();
    client.send(T0, b"once").unwrap();
    let data = drain(&mut client, T0);
    deliver(&mut server, &data, T0);
    deliver(&mut server, &data, T0);
    assert_eq!(events(&mut server), [Ev::Message(b"once".to_vec())]);
    assert_eq!(server.stats().duplicates, 1);
    assert_eq!(kinds(&drain(&mut server, T0)), [P::Ack]);
}

fn data_packet(seq: u16, len: usize, more: bool) -> Vec<u8> {
    let payload = std::vec![0x11u8; len];
    let mut buf = std::vec![0u8; len + 13];
    Repr::data(SeqNumber(seq), None, more, &payload).emit(&mut buf).unwrap();
    buf
}

fn error_sent(s: &mut S) -> (ErrorCode, u32) {
    let out = drain(s, T0);
    let e = ErrorPayload::parse(Repr::parse(&out[0]).unwrap().payload).unwrap();
    (e.code, e.detail)
}

#[test]
fn limits_broken_by_the_peer_are_answered_with_error() {
    let (_, mut server) = connected_pair();
    deliver(&mut server, &[data_packet(0, 257, false)], T0);
    assert_eq!(error_sent(&mut server), (ErrorCode::PayloadTooLarge, 256));

    let (_, mut server) = connected_pair_with(config().max_message(1000));
    let frags: Vec<Vec<u8>> = (0..5).map(|i| data_packet(i, 250, true)).collect();
    deliver(&mut server, &frags, T0);
    assert_eq!(error_sent(&mut server), (ErrorCode::MessageTooLarge, 1000));

    let (_, mut server) = connected_pair();
    // Complete messages the application never reads eat the 4096 bytes of credit.
    let msgs: Vec<Vec<u8>> = (0..17).map(|i| data_packet(i, 250, false)).collect();
    deliver(&mut server, &msgs, T0);
    assert_eq!(error_sent(&mut server), (ErrorCode::FlowControl, 4096 - 16 * 254));
}

#[test]
fn a_small_transmit_buffer_changes_nothing() {
    let (mut client, _) = connected_pair();
    client.ping(T0, 0).unwrap();
    let mut tiny = [0u8; 20];
    assert_eq!(client.poll_transmit(T0, &mut tiny), Err(BufferTooSmall { required: 25 }));
    assert_eq!(kinds(&drain(&mut client, T0)), [P::Ping]);
}

#[test]
fn peer_error_ends_an_established_session() {
    let (mut client, server) = connected_pair();
    deliver(&mut client, &[packet(P::Error, 0)], T0);
    assert_eq!(
        events(&mut client),
        [Ev::Closed(CloseReason::PeerError { code: ErrorCode::ProtocolViolation, detail: 3 })]
    );
    assert_eq!(server.state(), Established);
    assert_eq!(drain(&mut client, T0).len(), 0, "ERROR is never answered");
}

#[test]
fn abort_sends_error_and_the_peer_learns_why() {
    let mut server = S::server(config(), [0; 4096], [0; 4096], T0);
    let mut client = S::client(config(), 3, [0; 4096], [0; 4096], T0);
    deliver(&mut server, &drain(&mut client, T0), T0);
    server.abort(ErrorCode::Busy, 1024);
    let out = drain(&mut server, T0);
    assert_eq!(kinds(&out), [P::Error]);
    deliver(&mut client, &out, T0);
    assert_eq!(
        events(&mut client),
        [Ev::Closed(CloseReason::PeerError { code: ErrorCode::Busy, detail: 1024 })]
    );
    server.abort(ErrorCode::Busy, 1);
    assert_eq!(drain(&mut server, T0).len(), 0, "a closed session aborts once");
}

#[test]
fn a_duplicate_reaching_a_draining_side_is_acknowledged_again() {
    let (mut client, mut server) = connected_pair();
    client.send(T0, b"x").unwrap();
    let data = drain(&mut client, T0);
    deliver(&mut server, &data, T0);
    deliver(&mut client, &drain(&mut server, T0), T0);
    client.close(T0);
    deliver(&mut server, &drain(&mut client, T0), T0);
    assert_eq!(server.state(), Draining);
    deliver(&mut server, &data, T0);
    assert_eq!(server.stats().duplicates, 1);
    assert_eq!(kinds(&drain(&mut server, T0)).first(), Some(&P::Ack));
}

#[cfg(feature = "defmt")]
#[test]
fn state_changes_are_logged_through_defmt() {
    let before = framelink_defmt_sink::bytes_logged();
    let (mut client, mut server) = connected_pair();
    client.close(T0);
    settle(&mut client, &mut server, T0);
    // With DEFMT_LOG=trace every transition above is a frame; with logging compiled out, none.
    let logged = framelink_defmt_sink::bytes_logged() - before;
    assert_eq!(logged > 0, option_env!("DEFMT_LOG").is_some_and(|l| l.contains("trace")));
}

fn lossy_pair() -> (S, S) {
    let lossy = config().retransmit(true);
    let mut client = S::client(lossy, 0xA11, [0; 4096], [0; 4096], T0);
    let mut server = S::server(config(), [0; 4096], [0; 4096], T0);
    settle(&mut client, &mut server, T0);
    assert_eq!(events(&mut client), [Ev::Connected]);
    assert_eq!(events(&mut server), [Ev::Connected]);
    assert_eq!(server.peer().unwrap().agreed, Capabilities::RETRANSMIT, "one side asking is enough");
    (client, server)
}

#[test]
fn a_lost_packet_is_sent_again_at_the_rto_with_backoff() {
    let (mut client, _server) = lossy_pair();
    client.send(T0, b"lost").unwrap();
    let first = drain(&mut client, T0);
    // With RACK-TLP, the probe timeout comes first: 2·SRTT (0 on this virtual clock) plus the
    // peer's 5 ms ack delay; the packet goes again as the probe.
    #[cfg(feature = "congestion")]
    let start = {
        let pto = client.poll_timeout().unwrap();
        assert_eq!(pto, T0 + Duration::from_millis(5));
        client.handle_timeout(pto);
        assert_eq!(drain(&mut client, pto), first, "the probe is the packet again");
        assert_eq!((client.stats().probes, client.stats().timeouts), (1, 0));
        pto
    };
    #[cfg(not(feature = "congestion"))]
    let start = T0;
    // The handshake measured an RTT of 0 on this virtual clock: the RTO is the 20 ms minimum
    // plus the peer's 5 ms ack delay.
    let rto = client.poll_timeout().unwrap();
    assert_eq!(rto, start + Duration::from_millis(25));
    client.handle_timeout(rto);
    let again = drain(&mut client, rto);
    assert_eq!(again, first, "sent again byte for byte");
    assert_eq!(client.poll_timeout(), Some(rto + Duration::from_millis(50)), "doubled");
    let probes = u64::from(cfg!(feature = "congestion"));
    assert_eq!((client.stats().retransmits, client.stats().timeouts), (1 + probes, 1));
}

#[test]
fn a_gap_is_reported_by_selective_ack_and_repaired_at_once() {
    let (mut client, mut server) = lossy_pair();
    for i in 0..5u8 {
        client.send(T0, &[i; 10]).unwrap();
    }
    let data = drain(&mut client, T0);
    assert_eq!(data.len(), 5);
    deliver(&mut server, &data[1..], T0); // the first is lost
    assert_eq!(server.stats().out_of_order, 4);
    assert_eq!(events(&mut server), []);
    let acks = drain(&mut server, T0);
    let ack = Repr::parse(acks.last().unwrap()).unwrap();
    assert_eq!(ack.ack, Some(SeqNumber(0)));
    assert_eq!(AckPayload::parse(ack.payload).unwrap().sack, 0b1111);
    deliver(&mut client, &acks, T0);
    let repair = drain(&mut client, T0);
    assert_eq!(repair, data[..1], "fast retransmit of the hole only");
    assert_eq!(client.stats().fast_retransmits, 1);
    deliver(&mut server, &repair, T0);
    let got = events(&mut server);
    assert_eq!(got, (0..5u8).map(|i| Ev::Message([i; 10].to_vec())).collect::<Vec<_>>());
}

#[test]
fn packets_held_past_a_gap_keep_their_credit() {
    let (mut client, mut server) = lossy_pair();
    let empty = server.local_params().credit;
    for i in 0..6u8 {
        client.send(T0, &[i; 200]).unwrap();
    }
    let data = drain(&mut client, T0);
    deliver(&mut server, &data[1..], T0); // the first is lost, five are held
    let acks = drain(&mut server, T0);
    let ack = Repr::parse(acks.last().unwrap()).unwrap();
    let ack = AckPayload::parse(ack.payload).unwrap();
    assert_eq!(ack.sack, 0b11111);
    // The credit counts from the gap (PROTOCOL.md 10.4): the held packets are in it already,
    // so the grant is the whole buffer, not the buffer less what they take.
    assert_eq!(ack.credit, empty);
    deliver(&mut client, &acks, T0);
    deliver(&mut server, &drain(&mut client, T0), T0);
    assert_eq!(events(&mut server).len(), 6);
    assert_eq!(server.stats().dropped, 0);
}

#[test]
fn a_lost_close_ack_is_answered_again() {
    let (mut client, mut server) = lossy_pair();
    client.close(T0);
    deliver(&mut server, &drain(&mut client, T0), T0); // CLOSE
    let lost = drain(&mut server, T0); // CLOSE-ACK, lost
    assert_eq!(kinds(&lost), [P::CloseAck]);
    assert_eq!(server.state(), Closed);
    let t = client.poll_timeout().unwrap();
    client.handle_timeout(t);
    let close_again = drain(&mut client, t);
    assert_eq!(kinds(&close_again), [P::Close]);
    deliver(&mut server, &close_again, t);
    deliver(&mut client, &drain(&mut server, t), t);
    assert_eq!(events(&mut client), [Ev::Closed(CloseReason::Local)]);
}

#[test]
fn a_client_refusing_the_hello_ack_tells_the_server_why() {
    /// A change that spoils the HELLO-ACK, and the ERROR it earns.
    type Case = (fn(&mut HelloPayload), ErrorCode, u32);
    let cases: [Case; 4] = [
        (|h| h.version = 9, ErrorCode::VersionMismatch, 1),
        (
            |h| (h.supports, h.requires) = (Capabilities(0x8000), Capabilities(0x8000)),
            ErrorCode::UnsupportedCapability,
            0x8000,
        ),
        (|h| h.window = 0, ErrorCode::ProtocolViolation, u8::from(P::HelloAck).into()),
        (|h| h.max_payload = 0, ErrorCode::ProtocolViolation, u8::from(P::HelloAck).into()),
    ];
    for (spoil, code, detail) in cases {
        let mut client = S::client(config(), 5, [0; 4096], [0; 4096], T0);
        let _ = drain(&mut client, T0);
        let mut h = hello(5);
        spoil(&mut h);
        let mut payload = [0u8; HelloPayload::LEN];
        h.emit(&mut payload).unwrap();
        client.handle_packet(T0, &Repr::control(P::HelloAck, &payload));
        assert_eq!(error_sent(&mut client), (code, detail));
        assert_eq!(events(&mut client), [Ev::Closed(CloseReason::LocalError { code, detail })]);
    }
}

#[test]
fn spread_keepalives_bring_the_first_forward_by_an_amount_drawn_from_the_session_id() {
    let interval = Duration::from_secs(5);
    // Off (the default): the first keepalive is a full interval after the handshake.
    let (_client, server) = connected_pair();
    assert_eq!(server.poll_timeout(), Some(T0 + interval));
    // On: consecutive ids (as a load tool picks them) come due at different times within the
    // interval's second half, and each at the same time however often it is asked.
    let mut firsts = Vec::new();
    for id in 0..64u32 {
        let mut client = S::client(config(), id, [0; 4096], [0; 4096], T0);
        let mut server = S::server(config().spread_keepalives(true), [0; 4096], [0; 4096], T0);
        settle(&mut client, &mut server, T0);
        let first = server.poll_timeout().unwrap();
        assert!(first > T0 + interval / 2 && first <= T0 + interval, "{id}: {first:?}");
        // The phase holds: the keepalive goes out then, and the next follows a full interval
        // after the answer.
        server.handle_timeout(first);
        deliver(&mut client, &drain(&mut server, first), first);
        deliver(&mut server, &drain(&mut client, first), first);
        assert_eq!(server.poll_timeout(), Some(first + interval));
        firsts.push(first);
    }
    firsts.sort();
    firsts.dedup();
    assert!(firsts.len() > 60, "only {} distinct deadlines", firsts.len());
    let span = firsts[firsts.len() - 1].micros_since(firsts[0]);
    assert!(span > 2_000_000, "spread over only {span} us");
}

/// A window past 32 packets: the receiver reports held packets beyond the first bitmap word
/// (PROTOCOL.md 5.2), so two holes 40 packets apart in a window of 128 are repaired together,
/// not one round trip after the other; everything arrives once, in order, with no timeout.
#[cfg(feature = "congestion")]
#[test]
fn a_wide_window_reports_and_repairs_holes_beyond_the_first_bitmap_word() {
    type Wide = Session<Vec<u8>, 128>;
    const ONE_WAY: u64 = 5_000;
    const LOSE: [u16; 2] = [400, 440];
    const COUNT: usize = 600;
    let cfg = Config::new().retransmit(true).max_payload(100).window(128);
    let mut client = Wide::client(cfg, 7, std::vec![0; 1 << 16], std::vec![0; 1 << 16], T0);
    let mut server = Wide::server(cfg, std::vec![0; 1 << 16], std::vec![0; 1 << 16], T0);
    // Packets on the wire: (arrival in µs, towards the server, bytes).
    let mut wire: Vec<(u64, bool, Vec<u8>)> = Vec::new();
    let (mut now, mut queued, mut got, mut wide_acks) = (0u64, 0usize, Vec::new(), 0);
    let (mut dropped, mut resent_at) = ([false; 2], [None::<u64>; 2]);
    let mut buf = [0u8; 512];
    for _ in 0..100_000 {
        let t = Instant::from_micros(now);
        wire.sort_by_key(|w| w.0);
        while wire.first().is_some_and(|w| w.0 <= now) {
            let (_, to_server, bytes) = wire.remove(0);
            let packet = Repr::parse(&bytes).unwrap();
            if to_server { server.handle_packet(t, &packet) } else { client.handle_packet(t, &packet) }
        }
        for s in [&mut client, &mut server] {
            if s.poll_timeout().is_some_and(|d| d <= t) {
                s.handle_timeout(t);
            }
        }
        while client.state() == Established && queued < COUNT && client.send(t, &[queued as u8; 50]).is_ok() {
            queued += 1;
        }
        while let Some(len) = client.poll_transmit(t, &mut buf).unwrap() {
            let p = Repr::parse(&buf[..len]).unwrap();
            if let Some(i) = LOSE.iter().position(|&s| p.kind == PacketType::Data && p.seq == SeqNumber(s)) {
                if !dropped[i] {
                    dropped[i] = true;
                    continue; // the first copy is lost
                }
                resent_at[i].get_or_insert(now);
            }
            wire.push((now + ONE_WAY, true, buf[..len].to_vec()));
        }
        while let Some(len) = server.poll_transmit(t, &mut buf).unwrap() {
            let p = Repr::parse(&buf[..len]).unwrap();
            wide_acks +=
                usize::from(p.kind == PacketType::Ack && p.payload.len() > AckPayload::LEN_WITH_SACK);
            wire.push((now + ONE_WAY, false, buf[..len].to_vec()));
        }
        while let Some(e) = server.poll_event() {
            if let Event::Message(m) = e {
                got.push(m[0]);
            }
        }
        if got.len() == COUNT {
            break;
        }
        let next = wire.iter().map(|w| w.0).chain(client.poll_timeout().map(|d| d.as_micros()));
        let next = next.chain(server.poll_timeout().map(|d| d.as_micros())).min().unwrap();
        now = next.max(now + 1);
    }
    assert_eq!(got, (0..COUNT).map(|i| i as u8).collect::<Vec<_>>());
    assert!(wide_acks > 0, "an ACK carried more than one bitmap word");
    let stats = client.stats();
    assert_eq!((stats.timeouts, stats.fast_retransmits), (0, 2), "{stats:?}");
    let (first, second) = (resent_at[0].unwrap(), resent_at[1].unwrap());
    // Sent a quarter of a round trip apart, so repaired so; without the second word the second
    // hole would be seen only once the first repair moved the acknowledgement, a round trip on.
    assert!(second.abs_diff(first) < ONE_WAY, "repaired together: {first} and {second} µs");
}
