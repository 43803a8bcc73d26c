//! Sessions over growable storage (`Vec<u8>`): buffers that start tiny, grow as messages need
//! up to the configured limits, and are given back when the session goes idle, while a steady
//! stream keeps its room. Fixed storage keeps its size whatever the limits say.

// Test binaries built with `defmt` (and a DEFMT_LOG level) need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use std::time::Duration;

use framelink_core::Instant;
use framelink_core::session::{Config, Event, Session};
use framelink_core::wire::Repr;

type S = Session<Vec<u8>>;

/// The buffers each side starts with.
const TINY: usize = 16;
/// What they may grow to.
const LIMIT: u32 = 70_000;

fn config() -> Config {
    Config::new()
        .max_send_buffer(LIMIT)
        .max_receive_buffer(LIMIT)
        .max_message(LIMIT)
        .keepalive(Duration::from_secs(5))
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

/// Moves packets both ways until both sides are quiet, running due timers first; returns the
/// messages that arrived at each side (client's, server's).
fn settle(client: &mut S, server: &mut S, now: Instant) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut got = (Vec::new(), Vec::new());
    for side in [&mut *client, &mut *server] {
        if side.poll_timeout().is_some_and(|t| t <= now) {
            side.handle_timeout(now);
        }
    }
    for _ in 0..10_000 {
        let moved = pass(client, server, now, &mut got.1) | pass(server, client, now, &mut got.0);
        if !moved {
            return got;
        }
    }
    panic!("the pair never settled");
}

/// Moves every packet `from` has to `to`, and collects what `to` received; whether anything
/// moved.
fn pass(from: &mut S, to: &mut S, now: Instant, inbox: &mut Vec<Vec<u8>>) -> bool {
    let mut buf = vec![0u8; 2048];
    let mut moved = false;
    while let Some(len) = from.poll_transmit(now, &mut buf).unwrap() {
        to.handle_packet(now, &Repr::parse(&buf[..len]).unwrap());
        moved = true;
    }
    while let Some(event) = to.poll_event() {
        if let Event::Message(m) = event {
            inbox.push(m.to_vec());
        }
    }
    moved
}

fn connected_pair() -> (S, S) {
    let mut client = S::client(config(), 0xC0FFEE, vec![0; TINY], vec![0; TINY], at(0));
    let mut server = S::server(config(), vec![0; TINY], vec![0; TINY], at(0));
    settle(&mut client, &mut server, at(0));
    assert!(client.peer().is_some() && server.peer().is_some(), "connected");
    (client, server)
}

fn message(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn the_full_limit_is_announced_from_the_start() {
    let (client, server) = connected_pair();
    for side in [&client, &server] {
        let params = side.local_params();
        assert_eq!(params.credit, LIMIT);
        assert_eq!(params.max_message, LIMIT - 4);
        assert_eq!(side.send_buffer_capacity(), LIMIT as usize);
        assert_eq!(side.receive_buffer_capacity(), LIMIT as usize);
        assert_eq!((side.send_buffer_storage(), side.receive_buffer_storage()), (TINY, TINY));
    }
}

#[test]
fn a_message_larger_than_the_initial_buffers_crosses_both_ways() {
    let (mut client, mut server) = connected_pair();
    let big = message(60_000);
    client.send(at(1), &big).unwrap();
    server.send(at(1), &big[..30_000]).unwrap();
    let (to_client, to_server) = settle(&mut client, &mut server, at(1));
    assert_eq!(to_server, std::slice::from_ref(&big));
    assert_eq!(to_client, [big[..30_000].to_vec()]);
    assert!(server.receive_buffer_storage() >= 60_004);
    assert!(client.send_buffer_storage() >= 60_004);
    for side in [&client, &server] {
        assert!(side.send_buffer_storage() <= LIMIT as usize);
        assert!(side.receive_buffer_storage() <= LIMIT as usize);
    }
    // A message over the limit is refused, as with fixed storage.
    assert!(client.send(at(1), &message(LIMIT as usize)).is_err());
}

#[test]
fn an_idle_session_gives_its_buffers_back_after_a_big_message() {
    let (mut client, mut server) = connected_pair();
    client.send(at(1), &message(60_000)).unwrap();
    let (_, got) = settle(&mut client, &mut server, at(1));
    assert_eq!(got.len(), 1);
    assert!(server.receive_buffer_storage() > 60_000 && client.send_buffer_storage() > 60_000);
    // Quiet from then on: keepalives only, one every 5 s.
    for second in 2..=12 {
        settle(&mut client, &mut server, at(second * 1000));
    }
    for side in [&client, &server] {
        assert!(side.peer().is_some(), "still connected");
        assert_eq!((side.send_buffer_storage(), side.receive_buffer_storage()), (TINY, TINY));
        // Ten thousand such sessions fit in 160 MiB: under 16 KiB each, buffers included.
        let held = size_of::<S>() + side.send_buffer_storage() + side.receive_buffer_storage();
        assert!(held < 16 * 1024, "an idle session holds {held} bytes");
    }
    // And the room comes back when it is needed again.
    server.send(at(13_000), &message(20_000)).unwrap();
    let (got, _) = settle(&mut client, &mut server, at(13_000));
    assert_eq!(got, [message(20_000)]);
}

#[test]
fn a_steady_stream_keeps_its_room() {
    let (mut client, mut server) = connected_pair();
    let mut smallest_after_growth = usize::MAX;
    // A 20 KB message every 200 ms for 20 s: the buffers empty between messages but never
    // stay empty for a keepalive interval, so they are not given back and grown again.
    for i in 0..100u64 {
        let now = at(1 + i * 200);
        client.send(now, &message(20_000)).unwrap();
        let (_, got) = settle(&mut client, &mut server, now);
        assert_eq!(got.len(), 1);
        smallest_after_growth = smallest_after_growth.min(server.receive_buffer_storage());
        smallest_after_growth = smallest_after_growth.min(client.send_buffer_storage());
    }
    assert!(smallest_after_growth >= 20_004, "a buffer was given back mid-stream: {smallest_after_growth}");
}

#[test]
fn fixed_storage_keeps_its_size_whatever_the_limits() {
    let mut client = Session::<[u8; 256]>::client(config(), 1, [0; 256], [0; 256], at(0));
    let params = client.local_params();
    assert_eq!((params.credit, params.max_message), (256, 252));
    assert_eq!(client.send_buffer_capacity(), 256);
    client.close(at(0));
}
