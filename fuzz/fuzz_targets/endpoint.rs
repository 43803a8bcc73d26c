//! `core::endpoint::Endpoint` (a table of 3, at most 2 sessions) fed datagrams from 4 addresses,
//! with the harness playing clients that follow RETRYs, and the server accepting, refusing and
//! removing peers.
//!
//! Input: operations, each an op byte (mod 6) and its arguments; a missing argument reads as 0.
//!
//! | op | arguments | what |
//! |---|---|---|
//! | 0 | addr, len (mod 64), len bytes | a raw datagram from address `addr` (mod 4) |
//! | 1 | addr, id (mod 4), cookie (mod 3) | a HELLO for session id `id` (tagged with it): no cookie, the last cookie a RETRY gave that address, or 8 made-up bytes |
//! | 2 | addr, tag (mod 3) | a CLOSE tagged with the id of the address's last session, with 0, or with that id + 1 |
//! | 3 | choice (mod 2) | the pending new peer (if any) is accepted, or refused with detail 7 |
//! | 4 | addr, choice (mod 2) | the session of `addr` is removed, or removed as closed by its peer |
//! | 5 | step | time goes on by `step` × 250 ms; `handle_timeout` |
//!
//! Invariants: no panic; an answer is at most [`ANSWER_LEN`] bytes, no larger than the datagram
//! it answers, tagged like it, and a RETRY, an ERROR (Busy or VersionMismatch) or a CLOSE-ACK;
//! a RETRY only to a HELLO, and never to one carrying a cookie a RETRY gave that address for
//! that id less than a cookie period ago; ERROR Busy only to a HELLO with a cookie, when 2
//! sessions run; a CLOSE-ACK only to a CLOSE with the tag of a session of that address removed
//! as closed less than the linger ago; `Route::Session` only for an address with a session,
//! `Route::Incoming` only for one without and for a HELLO with a cookie; the number of sessions
//! matches a model and stays within 2; the counters count the RETRYs and refusals seen.
//! Bounded: at most 512 operations.
#![no_main]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use framelink_core::Instant;
use framelink_core::endpoint::{ANSWER_LEN, Config, Cookie, CookieKey, Endpoint, Entry, Incoming, Route};
use framelink_core::framing::datagram::{TAG_LEN, session_tag};
use framelink_core::framing::{Datagram, Encoder};
use framelink_core::wire::{ErrorCode, ErrorPayload, HelloPayload, PacketType, Repr, RetryPayload};
use libfuzzer_sys::fuzz_target;

type Table = heapless::LinearMap<SocketAddr, Entry<u32>, 3>;

/// Reads the input one byte at a time; 0 once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }
}

fn addr(index: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, index % 4], 4000))
}

fn hello(session_id: u32, cookie: Option<Cookie>) -> Vec<u8> {
    let mut fields = HelloPayload::parse(&[0; HelloPayload::LEN]).expect("zeros parse");
    (fields.version, fields.max_payload, fields.window, fields.session_id) = (1, 512, 4, session_id);
    fields.cookie = cookie;
    let mut payload = [0u8; HelloPayload::LEN_WITH_COOKIE];
    let n = fields.emit(&mut payload).expect("room for a HELLO");
    tagged(session_id, PacketType::Hello, &payload[..n])
}

fn tagged(tag: u32, kind: PacketType, payload: &[u8]) -> Vec<u8> {
    let (mut packet, mut out) = ([0u8; 64], [0u8; 72]);
    let n = Repr::control(kind, payload).emit(&mut packet).expect("room for a control packet");
    let n = Datagram::encode_tagged(tag, &packet[..n], &mut out).expect("room for a datagram");
    out[..n].to_vec()
}

/// What the harness knows besides the endpoint.
#[derive(Default)]
struct Model {
    /// Addresses with a session, and its value (the session id it started with).
    live: BTreeMap<SocketAddr, u32>,
    /// Addresses whose session was removed as closed, with its id and until when.
    closed: BTreeMap<SocketAddr, (u32, Instant)>,
    /// The session id each address had last (a session restarted by a proven HELLO takes the
    /// HELLO's).
    last_id: BTreeMap<SocketAddr, u32>,
    /// Every cookie a RETRY gave: (address, session id, cookie, when).
    issued: Vec<(SocketAddr, u32, Cookie, Instant)>,
    /// The last cookie each address was given.
    last_cookie: BTreeMap<SocketAddr, Cookie>,
    retries: u64,
    busy: u64,
}

const LINGER: Duration = Duration::from_secs(2);
const PERIOD: Duration = Duration::from_secs(30);

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let config = Config::new().max_sessions(2).linger(LINGER).cookie_period(PERIOD);
    let mut endpoint = Endpoint::new(CookieKey::new([0x42; 16]), Table::new(), config);
    let mut model = Model::default();
    let mut pending: Option<Incoming> = None;
    let mut now = Instant::ZERO;
    for _ in 0..512 {
        if input.0.is_empty() {
            break;
        }
        let (from, datagram) = match input.byte() % 6 {
            0 => {
                let from = addr(input.byte());
                let len = usize::from(input.byte() % 64);
                let bytes: Vec<u8> = (0..len).map(|_| input.byte()).collect();
                (from, bytes)
            }
            1 => {
                let from = addr(input.byte());
                let id = u32::from(input.byte() % 4);
                let cookie = match input.byte() % 3 {
                    0 => None,
                    1 => Some(model.last_cookie.get(&from).copied().unwrap_or([1; 8])),
                    _ => Some([input.byte(), input.byte(), 0, 0, 0, 0, 0, 9]),
                };
                (from, hello(id, cookie))
            }
            2 => {
                let from = addr(input.byte());
                let id = model.last_id.get(&from).copied().unwrap_or(0);
                let tag = [id, 0, id.wrapping_add(1)][usize::from(input.byte() % 3)];
                (from, tagged(tag, PacketType::Close, &[]))
            }
            3 => {
                let accept = input.byte() % 2 == 0;
                if let Some(incoming) = pending.take() {
                    let (from, id) = (incoming.addr(), incoming.session_id());
                    if accept {
                        match endpoint.accept(incoming, id) {
                            Ok(session) => {
                                assert_eq!(*session, id);
                                assert!(model.live.insert(from, id).is_none(), "accepted twice");
                                model.closed.remove(&from);
                                model.last_id.insert(from, id);
                            }
                            Err(_) => assert!(model.live.len() >= 2 || model.live.contains_key(&from)),
                        }
                    } else {
                        let mut answer = [0u8; ANSWER_LEN];
                        let n = endpoint.refuse(incoming, 7, &mut answer);
                        model.busy += 1;
                        if n > 0 {
                            let error = Repr::parse(&answer[TAG_LEN..n]).expect("a refusal parses");
                            let payload = ErrorPayload::parse(error.payload).expect("an ERROR payload");
                            assert_eq!((payload.code, payload.detail), (ErrorCode::Busy, 7));
                        }
                    }
                }
                check(&endpoint, &model);
                continue;
            }
            4 => {
                let from = addr(input.byte());
                let closed = input.byte() % 2 == 0;
                let removed =
                    if closed { endpoint.remove_closed(&from, now) } else { endpoint.remove(&from) };
                let id = model.live.remove(&from);
                assert_eq!(removed, id, "removed what the model holds");
                if let (true, Some(_)) = (closed, id) {
                    let id = model.last_id.get(&from).copied().unwrap_or_default();
                    model.closed.insert(from, (id, now + LINGER));
                }
                check(&endpoint, &model);
                continue;
            }
            _ => {
                now = now + Duration::from_millis(250 * u64::from(input.byte()));
                endpoint.handle_timeout(now);
                check(&endpoint, &model);
                continue;
            }
        };
        pending = None;
        handle(&mut endpoint, &mut model, &mut pending, now, from, &datagram);
        check(&endpoint, &model);
    }
});

fn handle(
    endpoint: &mut Endpoint<Table>,
    model: &mut Model,
    pending: &mut Option<Incoming>,
    now: Instant,
    from: SocketAddr,
    datagram: &[u8],
) {
    let mut answer = [0u8; ANSWER_LEN];
    let packet = datagram.get(TAG_LEN..).map(Repr::parse);
    let hello = match &packet {
        Some(Ok(repr)) if repr.kind == PacketType::Hello => HelloPayload::parse(repr.payload),
        _ => None,
    };
    match endpoint.handle(now, from, datagram, &mut answer) {
        Route::Session(session) => {
            assert_eq!(model.live.get(&from).copied(), Some(*session), "routed to another session");
            if let Some(hello) = hello {
                // A proven HELLO with a new id restarts the session under that id.
                model.last_id.insert(from, hello.session_id);
            }
        }
        Route::Incoming(incoming) => {
            assert!(!model.live.contains_key(&from), "a new peer where a session is");
            let hello = hello.expect("only a HELLO makes a new peer");
            assert!(hello.cookie.is_some(), "only a HELLO with a cookie");
            assert_eq!((incoming.addr(), incoming.session_id()), (from, hello.session_id));
            *pending = Some(incoming);
        }
        Route::Answer(n) => {
            assert!(n <= ANSWER_LEN && n <= datagram.len(), "{n} bytes for {}", datagram.len());
            let answer = &answer[..n];
            assert_eq!(session_tag(answer), session_tag(datagram), "the answer copies the tag");
            let repr = Repr::parse(&answer[TAG_LEN..]).expect("an answer parses");
            match repr.kind {
                PacketType::Retry => {
                    let hello = hello.expect("a RETRY answers a HELLO");
                    let honoured = hello.cookie.is_some_and(|cookie| {
                        model.issued.iter().any(|&(to, id, issued, at)| {
                            (to, id, issued) == (from, hello.session_id, cookie) && now < at + PERIOD
                        })
                    });
                    assert!(!honoured, "a cookie a RETRY gave less than a period ago was not taken");
                    let cookie = RetryPayload::parse(repr.payload).expect("a RETRY payload").cookie;
                    model.issued.push((from, hello.session_id, cookie, now));
                    model.last_cookie.insert(from, cookie);
                    model.retries += 1;
                }
                PacketType::Error => {
                    let payload = ErrorPayload::parse(repr.payload).expect("an ERROR payload");
                    match payload.code {
                        ErrorCode::Busy => {
                            assert!(hello.is_some_and(|h| h.cookie.is_some()), "Busy only to a proven HELLO");
                            assert_eq!(payload.detail, 2);
                            assert!(model.live.len() >= 2, "Busy with room");
                            model.busy += 1;
                        }
                        ErrorCode::VersionMismatch => assert!(matches!(packet, Some(Err(_)))),
                        code => panic!("answered with ERROR {code:?}"),
                    }
                }
                PacketType::CloseAck => {
                    let (id, until) =
                        model.closed.get(&from).copied().expect("CLOSE-ACK for no closed session");
                    assert_eq!(session_tag(datagram), Some(id));
                    assert!(now < until, "CLOSE-ACK after the linger");
                }
                kind => panic!("answered with {kind:?}"),
            }
        }
        Route::Drop => {}
    }
}

fn check(endpoint: &Endpoint<Table>, model: &Model) {
    assert_eq!(endpoint.len(), model.live.len(), "sessions");
    assert!(endpoint.len() <= 2);
    let counters = endpoint.counters();
    assert_eq!((counters.retries, counters.busy), (model.retries, model.busy));
}
