//! The endpoint against every kind of datagram: the guarantees of PROTOCOL.md 9.3 and 10.1.

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::connection::Connection;
use crate::framing::DatagramDecoder;
use crate::session::{Config as SessionConfig, Event, Session, State};
use crate::wire::SeqNumber;

const KEY: CookieKey = CookieKey::new([0x5A; 16]);
const ID: u32 = 0x0BAD_CAFE;

type Small<V> = heapless::LinearMap<SocketAddr, Entry<V>, 2>;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn endpoint<V>() -> Endpoint<Small<V>> {
    Endpoint::new(KEY, Small::new(), Config::new())
}

/// `repr` as a datagram tagged `tag`.
fn datagram(tag: u32, repr: &Repr<'_>) -> Vec<u8> {
    let mut packet = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut packet).unwrap();
    let mut out = vec![0u8; n + datagram::TAG_LEN];
    let n = Datagram::encode_tagged(tag, &packet[..n], &mut out).unwrap();
    out.truncate(n);
    out
}

/// A HELLO for `session_id`, tagged with it, with `cookie` if any.
fn hello(session_id: u32, cookie: Option<Cookie>) -> Vec<u8> {
    let mut fields = HelloPayload::parse(&[0; HelloPayload::LEN]).unwrap();
    (fields.version, fields.max_payload, fields.window, fields.session_id) = (1, 1024, 16, session_id);
    (fields.max_message, fields.credit, fields.cookie) = (65536, 65536, cookie);
    let mut payload = [0u8; HelloPayload::LEN_WITH_COOKIE];
    let n = fields.emit(&mut payload).unwrap();
    datagram(session_id, &Repr::control(PacketType::Hello, &payload[..n]))
}

/// The datagram's packet.
fn packet(datagram: &[u8]) -> Repr<'_> {
    Repr::parse(&datagram[datagram::TAG_LEN..]).unwrap()
}

/// Runs `handle`; the answer it wrote, if any, or whether it routed to a session or a new peer.
#[derive(Debug, PartialEq)]
enum Outcome {
    Answer(Vec<u8>),
    Session,
    Incoming(Incoming),
    Drop,
}

fn feed<V>(endpoint: &mut Endpoint<Small<V>>, now: Instant, from: SocketAddr, bytes: &[u8]) -> Outcome {
    let mut answer = [0u8; ANSWER_LEN];
    match endpoint.handle(now, from, bytes, &mut answer) {
        Route::Answer(n) => Outcome::Answer(answer[..n].to_vec()),
        Route::Session(_) => Outcome::Session,
        Route::Incoming(incoming) => Outcome::Incoming(incoming),
        Route::Drop => Outcome::Drop,
    }
}

/// The cookie of the RETRY `outcome` carries.
#[track_caller]
fn retry_cookie(outcome: &Outcome) -> Cookie {
    let Outcome::Answer(bytes) = outcome else { panic!("no RETRY: {outcome:?}") };
    let retry = packet(bytes);
    assert_eq!(retry.kind, PacketType::Retry);
    RetryPayload::parse(retry.payload).unwrap().cookie
}

/// Goes through RETRY and accepts the peer at `from` with `value`.
#[track_caller]
fn connect<V>(endpoint: &mut Endpoint<Small<V>>, now: Instant, from: SocketAddr, id: u32, value: V) {
    let cookie = retry_cookie(&feed(endpoint, now, from, &hello(id, None)));
    match feed(endpoint, now, from, &hello(id, Some(cookie))) {
        Outcome::Incoming(incoming) => assert!(endpoint.accept(incoming, value).is_ok()),
        other => panic!("not accepted: {other:?}"),
    }
}

// ---- Address validation ----

#[test]
fn a_hello_without_a_cookie_gets_a_smaller_retry_and_creates_nothing() {
    let mut endpoint = endpoint::<()>();
    for port in 1000..1050 {
        let sent = hello(port.into(), None);
        let outcome = feed(&mut endpoint, Instant::ZERO, addr(port), &sent);
        let Outcome::Answer(retry) = &outcome else { panic!("{outcome:?}") };
        assert_eq!(datagram::session_tag(retry), Some(port.into()), "the RETRY copies the tag");
        assert_eq!(retry.len(), ANSWER_LEN);
        assert!(retry.len() < sent.len(), "{} bytes for {}", retry.len(), sent.len());
        retry_cookie(&outcome);
    }
    assert!(endpoint.is_empty());
    assert_eq!(endpoint.table.len(), 0, "no state for unproven peers");
    assert_eq!(endpoint.counters(), Counters { stray: 0, retries: 50, busy: 0 });
}

#[test]
fn only_the_cookie_of_this_address_id_and_period_is_taken() {
    let mut endpoint = endpoint::<()>();
    let now = Instant::from_millis(5_000);
    let cookie = retry_cookie(&feed(&mut endpoint, now, addr(1), &hello(ID, None)));
    // Another address, another session id, a made-up cookie, a cookie too old: RETRY again.
    for (from, id, cookie, at) in [
        (addr(2), ID, cookie, now),
        (addr(1), ID + 1, cookie, now),
        (addr(1), ID, [0; 8], now),
        (addr(1), ID, cookie, now + Duration::from_secs(60)),
    ] {
        let outcome = feed(&mut endpoint, at, from, &hello(id, Some(cookie)));
        retry_cookie(&outcome);
    }
    assert!(endpoint.is_empty());
    // The right one, in the next period still: a new peer.
    let later = now + Duration::from_secs(30);
    let Outcome::Incoming(incoming) = feed(&mut endpoint, later, addr(1), &hello(ID, Some(cookie))) else {
        panic!("the cookie holds for the next period")
    };
    assert_eq!((incoming.addr(), incoming.session_id()), (addr(1), ID));
}

#[test]
fn a_new_session_id_from_a_peer_with_a_session_must_prove_its_address() {
    let mut endpoint = endpoint::<u8>();
    connect(&mut endpoint, Instant::ZERO, addr(1), ID, 7);
    // The same HELLO again (the HELLO-ACK was lost): the session answers it.
    assert_eq!(feed(&mut endpoint, Instant::ZERO, addr(1), &hello(ID, None)), Outcome::Session);
    // A HELLO with a new session id (a spoofed restart): RETRY, and the session stays.
    let cookie = retry_cookie(&feed(&mut endpoint, Instant::ZERO, addr(1), &hello(ID + 1, None)));
    assert_eq!(endpoint.table.get_mut(&addr(1)).unwrap().session_id, ID);
    // With its cookie, a real restart: to the session, which now goes by the new id.
    assert_eq!(feed(&mut endpoint, Instant::ZERO, addr(1), &hello(ID + 1, Some(cookie))), Outcome::Session);
    assert_eq!(endpoint.table.get_mut(&addr(1)).unwrap().session_id, ID + 1);
    assert_eq!(endpoint.get_mut(&addr(1)), Some(&mut 7));
    assert_eq!(endpoint.len(), 1);
}

// ---- Strays ----

#[test]
fn datagrams_from_addresses_without_a_session_change_nothing() {
    let mut endpoint = endpoint::<()>();
    let error = [8u8, 0, 0, 0, 0, 0];
    let mut strays = 0;
    for tag in [0, ID, ID ^ 1] {
        for repr in [
            Repr::control(PacketType::Close, &[]),
            Repr::control(PacketType::CloseAck, &[]),
            Repr::control(PacketType::Error, &error),
            Repr::data(SeqNumber(0), None, false, b"injected"),
            Repr::control(PacketType::HelloAck, &[0; HelloPayload::LEN]),
            Repr::control(PacketType::Hello, &[0; 4]), // too short to be a HELLO
        ] {
            assert_eq!(feed(&mut endpoint, Instant::ZERO, addr(9), &datagram(tag, &repr)), Outcome::Drop);
            strays += 1;
        }
    }
    for junk in [&[][..], &[1, 2, 3], &[0; 16], &[0xFF; 100]] {
        assert_eq!(feed(&mut endpoint, Instant::ZERO, addr(9), junk), Outcome::Drop);
        strays += 1;
    }
    assert_eq!(endpoint.counters(), Counters { stray: strays, retries: 0, busy: 0 });
    assert_eq!(endpoint.table.len(), 0);
}

#[test]
fn spoofed_datagrams_without_the_session_tag_reach_the_session_and_change_nothing() {
    // The endpoint routes by address; the session's decoder drops what lacks its tag.
    type Framed = Connection<DatagramDecoder, Vec<u8>>;
    let config = SessionConfig::new().retransmit(true);
    let (now, client_addr) = (Instant::ZERO, addr(4000));
    let mut endpoint = Endpoint::new(KEY, Small::<Framed>::new(), Config::new());
    let mut client: Framed = Connection::new(
        Session::client(config, ID, vec![0; 4096], vec![0; 4096], now),
        DatagramDecoder::new(1200),
        vec![0; 1200],
    );
    let mut out = [0u8; 1300];
    let mut answer = [0u8; ANSWER_LEN];
    // Client and endpoint talk until the client is connected (through a RETRY).
    for _ in 0..4 {
        while let Ok(n @ 1..) = client.poll_datagram(now, &mut out) {
            let sent = out[..n].to_vec();
            match endpoint.handle(now, client_addr, &sent, &mut answer) {
                Route::Answer(n) => client.handle_bytes(now, &answer[..n]),
                Route::Incoming(incoming) => {
                    let session = Session::server(config, vec![0; 4096], vec![0; 4096], now);
                    let server = endpoint
                        .accept(incoming, Connection::new(session, DatagramDecoder::new(1200), vec![0; 1200]))
                        .unwrap();
                    server.handle_bytes(now, &sent);
                }
                Route::Session(server) => server.handle_bytes(now, &sent),
                Route::Drop => {}
            }
        }
        if let Some(server) = endpoint.get_mut(&client_addr) {
            while let Ok(n @ 1..) = server.poll_datagram(now, &mut out) {
                client.handle_bytes(now, &out[..n]);
            }
        }
    }
    assert_eq!(client.session_mut().poll_event(), Some(Event::Connected));
    assert_eq!(endpoint.counters().retries, 1);

    let error = [8u8, 0, 0, 0, 0, 0];
    for tag in [0, ID ^ 1, ID.rotate_left(8)] {
        for repr in [
            Repr::control(PacketType::Close, &[]),
            Repr::control(PacketType::Error, &error),
            Repr::data(SeqNumber(0), None, false, b"injected"),
            Repr::control(PacketType::CloseAck, &[]),
        ] {
            match session_of(&mut endpoint, now, client_addr, &datagram(tag, &repr)) {
                Some(server) => server.handle_bytes(now, &datagram(tag, &repr)),
                None => panic!("a datagram of the peer's address goes to its session"),
            }
        }
    }
    // A HELLO with a new session id and no cookie: a RETRY, and the session is untouched.
    let mut answer = [0u8; ANSWER_LEN];
    assert!(matches!(endpoint.handle(now, client_addr, &hello(ID + 1, None), &mut answer), Route::Answer(_)));
    let server = endpoint.get_mut(&client_addr).unwrap();
    assert_eq!(server.session().state(), State::Established);
    assert_eq!(server.session().session_id(), ID);
    assert_eq!(server.session_mut().poll_event(), Some(Event::Connected));
    assert_eq!(server.session_mut().poll_event(), None, "no message, no close");
}

/// The session `handle` routes `bytes` to, if any.
fn session_of<'a, V>(
    endpoint: &'a mut Endpoint<Small<V>>,
    now: Instant,
    from: SocketAddr,
    bytes: &[u8],
) -> Option<&'a mut V> {
    let mut answer = [0u8; ANSWER_LEN];
    match endpoint.handle(now, from, bytes, &mut answer) {
        Route::Session(session) => Some(session),
        _ => None,
    }
}

/// `repr` as a datagram of protocol version 2 (a good CRC, so it is `BadVersion`).
fn other_version(repr: &Repr<'_>) -> Vec<u8> {
    let mut bytes = datagram(5, repr);
    let mut packet = Packet::new_unchecked(&mut bytes[datagram::TAG_LEN..]);
    packet.set_version(2);
    packet.fill_crc();
    bytes
}

#[test]
fn another_version_is_answered_only_when_the_answer_is_no_larger() {
    let mut endpoint = endpoint::<()>();
    let small = other_version(&Repr::control(PacketType::CloseAck, &[]));
    assert_eq!(feed(&mut endpoint, Instant::ZERO, addr(3), &small), Outcome::Drop);
    let large = other_version(&Repr::control(PacketType::Ping, &[0; 40]));
    let Outcome::Answer(error) = feed(&mut endpoint, Instant::ZERO, addr(3), &large) else { panic!() };
    assert!(error.len() <= large.len());
    assert_eq!(datagram::session_tag(&error), Some(5));
    let payload = ErrorPayload::parse(packet(&error).payload).unwrap();
    assert_eq!((payload.code, payload.detail), (ErrorCode::VersionMismatch, 1));
    assert_eq!(endpoint.counters().stray, 2);
    assert_eq!(endpoint.table.len(), 0);
}

// ---- The table ----

#[test]
fn a_full_table_answers_proven_hellos_with_busy() {
    let mut endpoint = Endpoint::new(KEY, Small::<()>::new(), Config::new().max_sessions(1));
    connect(&mut endpoint, Instant::ZERO, addr(1), 1, ());
    // Another peer: a RETRY first (Busy only to a proven HELLO), then Busy, no larger.
    let cookie = retry_cookie(&feed(&mut endpoint, Instant::ZERO, addr(2), &hello(2, None)));
    let sent = hello(2, Some(cookie));
    let Outcome::Answer(busy) = feed(&mut endpoint, Instant::ZERO, addr(2), &sent) else { panic!() };
    assert!(busy.len() < sent.len());
    assert_eq!(datagram::session_tag(&busy), Some(2));
    let payload = ErrorPayload::parse(packet(&busy).payload).unwrap();
    assert_eq!((payload.code, payload.detail), (ErrorCode::Busy, 1), "detail: the session limit");
    assert_eq!(endpoint.counters().busy, 1);
    // The first peer leaves: the second gets in.
    assert_eq!(endpoint.remove(&addr(1)), Some(()));
    assert!(matches!(feed(&mut endpoint, Instant::ZERO, addr(2), &sent), Outcome::Incoming(_)));
}

#[test]
fn the_table_capacity_bounds_the_sessions_and_refuse_takes_the_callers_detail() {
    let mut endpoint = endpoint::<u32>();
    connect(&mut endpoint, Instant::ZERO, addr(1), 1, 1);
    connect(&mut endpoint, Instant::ZERO, addr(2), 2, 2);
    let cookie = retry_cookie(&feed(&mut endpoint, Instant::ZERO, addr(3), &hello(3, None)));
    let Outcome::Answer(busy) = feed(&mut endpoint, Instant::ZERO, addr(3), &hello(3, Some(cookie))) else {
        panic!()
    };
    assert_eq!(ErrorPayload::parse(packet(&busy).payload).unwrap().detail, 2, "the capacity");
    // A caller with its own limit refuses with its own detail.
    endpoint.remove(&addr(2));
    let Outcome::Incoming(incoming) = feed(&mut endpoint, Instant::ZERO, addr(3), &hello(3, Some(cookie)))
    else {
        panic!()
    };
    let mut answer = [0u8; ANSWER_LEN];
    let n = endpoint.refuse(incoming, 64, &mut answer);
    assert_eq!(ErrorPayload::parse(packet(&answer[..n]).payload).unwrap().detail, 64);
    assert_eq!(endpoint.counters().busy, 2);
    let mut seen = Vec::new();
    endpoint.for_each_session(|addr, value| seen.push((addr, *value)));
    assert_eq!(seen, [(addr(1), 1)]);
}

#[test]
fn accept_gives_back_what_it_has_no_room_for() {
    let mut endpoint = Endpoint::new(KEY, Small::<()>::new(), Config::new().max_sessions(1));
    let cookie = retry_cookie(&feed(&mut endpoint, Instant::ZERO, addr(1), &hello(1, None)));
    let Outcome::Incoming(first) = feed(&mut endpoint, Instant::ZERO, addr(1), &hello(1, Some(cookie)))
    else {
        panic!()
    };
    let Outcome::Incoming(again) = feed(&mut endpoint, Instant::ZERO, addr(1), &hello(1, Some(cookie)))
    else {
        panic!()
    };
    assert!(endpoint.accept(first, ()).is_ok());
    assert!(endpoint.accept(again, ()).is_err(), "the address has a session already");
    assert_eq!(endpoint.len(), 1);
}

// ---- Closed peers ----

#[test]
fn a_repeated_close_gets_its_close_ack_while_the_peer_lingers() {
    let mut endpoint = endpoint::<()>();
    let start = Instant::from_millis(100);
    connect(&mut endpoint, start, addr(1), ID, ());
    assert_eq!(endpoint.remove_closed(&addr(1), start), Some(()));
    assert!(endpoint.is_empty());
    let close = datagram(ID, &Repr::control(PacketType::Close, &[]));
    let Outcome::Answer(ack) = feed(&mut endpoint, start, addr(1), &close) else { panic!() };
    assert_eq!(packet(&ack).kind, PacketType::CloseAck);
    assert_eq!(datagram::session_tag(&ack), Some(ID));
    assert!(ack.len() <= close.len());
    // With another tag, from another address, or after the linger: nothing.
    let spoofed = datagram(ID ^ 1, &Repr::control(PacketType::Close, &[]));
    assert_eq!(feed(&mut endpoint, start, addr(1), &spoofed), Outcome::Drop);
    assert_eq!(feed(&mut endpoint, start, addr(2), &close), Outcome::Drop);
    let later = start + Duration::from_secs(2);
    assert_eq!(feed(&mut endpoint, later, addr(1), &close), Outcome::Drop);
    assert_eq!(endpoint.table.len(), 1);
    assert_eq!(endpoint.poll_timeout(), Some(later));
    endpoint.handle_timeout(later - Duration::from_millis(1));
    assert_eq!(endpoint.table.len(), 1, "not before its time");
    endpoint.handle_timeout(later);
    assert_eq!(endpoint.table.len(), 0, "forgotten once the linger ran out");
    assert_eq!(endpoint.poll_timeout(), None);
}

#[test]
fn a_lingering_peer_gives_way_to_a_new_one_in_a_full_table() {
    let mut endpoint =
        Endpoint::new(KEY, heapless::LinearMap::<SocketAddr, Entry<()>, 1>::new(), Config::new());
    let cookie = |endpoint: &mut Endpoint<_>, from, id| {
        let mut answer = [0u8; ANSWER_LEN];
        let Route::Answer(n) = endpoint.handle(Instant::ZERO, from, &hello(id, None), &mut answer) else {
            panic!()
        };
        RetryPayload::parse(packet(&answer[..n]).payload).unwrap().cookie
    };
    let mut answer = [0u8; ANSWER_LEN];
    let first = cookie(&mut endpoint, addr(1), 1);
    let Route::Incoming(incoming) =
        endpoint.handle(Instant::ZERO, addr(1), &hello(1, Some(first)), &mut answer)
    else {
        panic!()
    };
    endpoint.accept(incoming, ()).unwrap();
    endpoint.remove_closed(&addr(1), Instant::ZERO);
    let second = cookie(&mut endpoint, addr(2), 2);
    let Route::Incoming(incoming) =
        endpoint.handle(Instant::ZERO, addr(2), &hello(2, Some(second)), &mut answer)
    else {
        panic!("a lingering peer does not count as a session")
    };
    endpoint.accept(incoming, ()).unwrap();
    assert_eq!(endpoint.len(), 1);
    let close = datagram(1, &Repr::control(PacketType::Close, &[]));
    assert!(matches!(endpoint.handle(Instant::ZERO, addr(1), &close, &mut answer), Route::Drop), "forgotten");
}

#[test]
fn a_hello_from_a_lingering_peer_starts_a_new_session() {
    let mut endpoint = endpoint::<u8>();
    connect(&mut endpoint, Instant::ZERO, addr(1), 1, 1);
    endpoint.remove_closed(&addr(1), Instant::ZERO);
    connect(&mut endpoint, Instant::ZERO, addr(1), 2, 2);
    assert_eq!(endpoint.get_mut(&addr(1)), Some(&mut 2));
    assert_eq!(endpoint.len(), 1);
}

#[test]
fn a_small_answer_buffer_loses_answers_and_nothing_else() {
    let mut endpoint = endpoint::<()>();
    let mut answer = [0u8; ANSWER_LEN - 1];
    assert!(matches!(endpoint.handle(Instant::ZERO, addr(1), &hello(1, None), &mut answer), Route::Drop));
    assert_eq!(endpoint.counters().retries, 0);
}

#[test]
fn a_session_that_ends_for_its_peer_is_forgotten_by_remove() {
    let mut endpoint = endpoint::<()>();
    connect(&mut endpoint, Instant::ZERO, addr(1), 1, ());
    assert_eq!(endpoint.remove(&addr(1)), Some(()));
    assert_eq!(endpoint.remove(&addr(1)), None);
    assert_eq!(endpoint.remove_closed(&addr(1), Instant::ZERO), None);
}

// Not under miri: proptest looks for its regressions file, and miri's isolation refuses the file
// system.
#[cfg(not(miri))]
mod props {
    use super::*;

    proptest! {
        /// Whatever arrives from wherever, the endpoint does not panic, keeps no state for it, and
        /// answers with at most as many bytes as it got.
        #[test]
        fn no_datagram_makes_state_or_a_larger_answer(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
            port in 1u16..4,
            millis in 0u64..100_000,
        ) {
            let mut endpoint = endpoint::<()>();
            let mut answer = [0u8; ANSWER_LEN];
            let route = endpoint.handle(Instant::from_millis(millis), addr(port), &bytes, &mut answer);
            match route {
                Route::Answer(n) => prop_assert!(n <= bytes.len()),
                Route::Drop => {}
                other => prop_assert!(false, "{:?}", other),
            }
            prop_assert_eq!(endpoint.table.len(), 0);
        }
    }
}
