//! A keyed client and server (`auth` feature) on a link an attacker controls.
//!
//! Both sessions share a key and retransmit; the handshake is done before the input is read.
//! The input is a list of operations, one byte each (low 3 bits) plus the bytes it reads:
//!
//! | op | what | reads |
//! |---|---|---|
//! | 0, 1 | the client (0) or the server (1) sends its next test message | |
//! | 2 | every queued packet is delivered, both ways | |
//! | 3 | the oldest queued packet of a direction is altered (a byte xor a non-zero mask), its CRC fixed or not, and delivered | direction bit, offset, mask, CRC bit |
//! | 4 | a packet delivered before is delivered again (replay), or reflected to its sender | index, reflect bit |
//! | 5 | input bytes are delivered as a packet (they parse only if their CRC is right) | side bit, length, bytes |
//! | 6 | time goes on by 300 ms, timers run | |
//! | 7 | the oldest queued packet of a direction is dropped | direction bit |
//!
//! Invariants: no panic; what each side receives is always a prefix of what the other sent, in
//! order, without duplicates: nothing altered, replayed, reflected or made up is ever
//! delivered; every altered (in a bit a receiver reads), replayed or reflected packet is
//! counted as an authentication failure or otherwise refused. At the end, with the link repaired, every message arrives.
#![no_main]

use std::collections::VecDeque;
use std::time::Duration;

use framelink_core::Instant;
use framelink_core::auth::{Psk, SessionAuth};
use framelink_core::session::{Config, Event, Session};
use framelink_core::wire::{Repr, crc32c};
use libfuzzer_sys::fuzz_target;

type S = Session<Vec<u8>, 8>;

struct Rng(u64);

impl rand_core::TryRng for Rng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Ok(self.0 ^ (self.0 >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Rng {}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
}

struct Side {
    session: S,
    sent: Vec<Vec<u8>>,
    received: Vec<Vec<u8>>,
}

fn side(session: S) -> Side {
    Side { session, sent: Vec::new(), received: Vec::new() }
}

fn message(from: u8, index: usize) -> Vec<u8> {
    format!("{from}:{index}:{}", "x".repeat(index % 97)).into_bytes()
}

/// Drains `from` into its queue and `to`'s events; checks the prefix invariant.
fn pump(from: &mut Side, queue: &mut VecDeque<Vec<u8>>, now: Instant) {
    let mut buf = vec![0u8; 1024];
    while let Some(len) = from.session.poll_transmit(now, &mut buf).unwrap() {
        assert!(Repr::parse(&buf[..len]).is_ok());
        queue.push_back(buf[..len].to_vec());
        if queue.len() > 64 {
            queue.pop_front();
        }
    }
}

fn events(to: &mut Side, other_sent: &[Vec<u8>]) {
    while let Some(event) = to.session.poll_event() {
        if let Event::Message(m) = event {
            let index = to.received.len();
            assert_eq!(Some(&m.to_vec()), other_sent.get(index), "only what was sent, in order, once");
            to.received.push(m.to_vec());
        }
    }
}

fn deliver(to: &mut Side, packet: &[u8], now: Instant) {
    if let Ok(repr) = Repr::parse(packet) {
        to.session.handle_packet(now, &repr);
    }
}

fn refused(s: &S) -> u64 {
    let stats = s.stats();
    stats.auth_failures + stats.ignored + stats.duplicates
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let psk = Psk::new([0x42; 32]);
    let config = Config::new().max_payload(200).retransmit(true);
    let mut now = Instant::ZERO;
    let auth = |seed| SessionAuth::new(&psk, &mut Rng(seed)).unwrap();
    let mut client =
        side(S::client(config, 77, vec![0; 4096], vec![0; 4096], now).with_auth(auth(1), Vec::new()));
    let mut server =
        side(S::server(config, vec![0; 4096], vec![0; 4096], now).with_auth(auth(2), Vec::new()));
    let (mut to_server, mut to_client) = (VecDeque::new(), VecDeque::new());
    let mut delivered: Vec<(bool, Vec<u8>)> = Vec::new();
    let step = |client: &mut Side,
                server: &mut Side,
                tc: &mut VecDeque<Vec<u8>>,
                ts: &mut VecDeque<Vec<u8>>,
                now| {
        pump(client, ts, now);
        pump(server, tc, now);
        let (cs, ss) = (client.sent.clone(), server.sent.clone());
        events(server, &cs);
        events(client, &ss);
    };
    // The handshake.
    for _ in 0..4 {
        step(&mut client, &mut server, &mut to_client, &mut to_server, now);
        while let Some(p) = to_server.pop_front() {
            deliver(&mut server, &p, now);
        }
        while let Some(p) = to_client.pop_front() {
            deliver(&mut client, &p, now);
        }
    }
    for _ in 0..200 {
        if input.0.is_empty() {
            break;
        }
        let op = input.byte();
        match op & 7 {
            0 | 1 => {
                let sender = if op & 7 == 0 { &mut client } else { &mut server };
                let m = message(op & 1, sender.sent.len());
                if sender.session.send(now, &m).is_ok() {
                    sender.sent.push(m);
                }
            }
            2 => {
                while let Some(p) = to_server.pop_front() {
                    deliver(&mut server, &p, now);
                    delivered.push((true, p));
                }
                while let Some(p) = to_client.pop_front() {
                    deliver(&mut client, &p, now);
                    delivered.push((false, p));
                }
            }
            3 => {
                let to_srv = input.byte() & 1 == 0;
                let (offset, mask, fix) =
                    (usize::from(input.byte()), input.byte().max(1), input.byte() & 1 == 1);
                let (queue, to) =
                    if to_srv { (&mut to_server, &mut server) } else { (&mut to_client, &mut client) };
                if let Some(mut p) = queue.pop_front() {
                    let original = p.clone();
                    // With the CRC fixed, a change to the CRC itself would be undone.
                    let at = offset % if fix { p.len() - 4 } else { p.len() };
                    p[at] ^= mask;
                    if fix {
                        let end = p.len() - 4;
                        let crc = crc32c(&p[..end]);
                        p[end..].copy_from_slice(&crc.to_le_bytes());
                    }
                    let before = refused(&to.session);
                    let parsed = Repr::parse(&p).is_ok();
                    deliver(to, &p, now);
                    // Bits every receiver ignores (undefined flags, MORE on other types than DATA,
                    // the ack field without flag ACK) are outside the tag: a change to them
                    // changes nothing that is read.
                    let same = Repr::parse(&original).ok() == Repr::parse(&p).ok();
                    if parsed && !same {
                        assert!(refused(&to.session) > before, "an altered packet is refused");
                    }
                }
            }
            4 => {
                let (index, reflect) = (usize::from(input.byte()), input.byte() & 1 == 1);
                if !delivered.is_empty() {
                    let (to_srv, p) = delivered[index % delivered.len()].clone();
                    let to = if to_srv != reflect { &mut server } else { &mut client };
                    let before = refused(&to.session);
                    deliver(to, &p, now);
                    let kind = Repr::parse(&p).unwrap().kind;
                    if framelink_core::auth::is_sealed_kind(kind) {
                        assert!(refused(&to.session) > before, "a replayed or reflected packet is refused");
                    }
                }
            }
            5 => {
                let to = if input.byte() & 1 == 0 { &mut server } else { &mut client };
                let len = usize::from(input.byte()).min(input.0.len());
                let (bytes, rest) = input.0.split_at(len);
                input.0 = rest;
                deliver(to, bytes, now);
            }
            6 => {
                now = now + Duration::from_millis(300);
                client.session.handle_timeout(now);
                server.session.handle_timeout(now);
            }
            _ => {
                let queue = if input.byte() & 1 == 0 { &mut to_server } else { &mut to_client };
                queue.pop_front();
            }
        }
        step(&mut client, &mut server, &mut to_client, &mut to_server, now);
    }
    // The link repaired: everything sent arrives (unless a session ended, which injected
    // packets cannot cause: none of them verifies).
    for _ in 0..400 {
        step(&mut client, &mut server, &mut to_client, &mut to_server, now);
        while let Some(p) = to_server.pop_front() {
            deliver(&mut server, &p, now);
        }
        while let Some(p) = to_client.pop_front() {
            deliver(&mut client, &p, now);
        }
        step(&mut client, &mut server, &mut to_client, &mut to_server, now);
        if server.received.len() == client.sent.len() && client.received.len() == server.sent.len() {
            break;
        }
        now = now + Duration::from_millis(100);
        client.session.handle_timeout(now);
        server.session.handle_timeout(now);
    }
    if !client.session.is_closed() && !server.session.is_closed() {
        assert_eq!(server.received.len(), client.sent.len(), "everything arrives once the link is repaired");
        assert_eq!(client.received.len(), server.sent.len());
    }
});
