//! Keyed sessions on a virtual clock: handshake, sealing, wrong and missing keys, tampering,
//! replay and reflection, loss.

use core::time::Duration;
use std::vec::Vec;

use super::*;
use crate::auth::{Psk, SessionAuth, Suite};
use crate::wire::{Repr, crc32c};

type S = Session<[u8; 4096], 8>;

const T0: Instant = Instant::ZERO;
const SEALED: u8 = 0x04;

/// A deterministic stand-in for a random source (the tests need distinct seeds, not secrets).
struct TestRng(u64);

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Ok(self.0 ^ (self.0 >> 29))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}

fn auth(key: u8, seed: u64) -> SessionAuth {
    SessionAuth::new(&Psk::new([key; 32]), &mut TestRng(seed)).unwrap()
}

fn config() -> Config {
    Config::new().max_payload(256)
}

fn client(key: Option<u8>, config: Config) -> S {
    let s = S::client(config, 0xC0FFEE, [0; 4096], [0; 4096], T0);
    match key {
        Some(key) => s.with_auth(auth(key, 1), [0; 4096]),
        None => s,
    }
}

fn server(key: Option<u8>, config: Config) -> S {
    let s = S::server(config, [0; 4096], [0; 4096], T0);
    match key {
        Some(key) => s.with_auth(auth(key, 2), [0; 4096]),
        None => s,
    }
}

fn drain(s: &mut S, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Some(len) = s.poll_transmit(now, &mut buf).unwrap() {
        out.push(buf[..len].to_vec());
        assert!(out.len() < 1000, "poll_transmit never ran dry");
    }
    out
}

fn deliver(to: &mut S, packets: &[Vec<u8>], now: Instant) {
    for p in packets {
        to.handle_packet(now, &Repr::parse(p).unwrap());
    }
}

fn messages(s: &mut S) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(event) = s.poll_event() {
        if let Event::Message(m) = event {
            out.push(m.to_vec());
        }
    }
    out
}

fn closed(s: &mut S) -> Option<CloseReason> {
    let mut reason = None;
    while let Some(event) = s.poll_event() {
        if let Event::Closed(r) = event {
            reason = Some(r);
        }
    }
    reason
}

/// Moves packets both ways until quiet; returns everything that crossed.
fn settle(a: &mut S, b: &mut S, now: Instant) -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    for _ in 0..1000 {
        let ab = drain(a, now);
        deliver(b, &ab, now);
        let ba = drain(b, now);
        deliver(a, &ba, now);
        if ab.is_empty() && ba.is_empty() {
            return wire;
        }
        wire.extend(ab);
        wire.extend(ba);
    }
    panic!("the pair never settled");
}

fn keyed_pair(config: Config) -> (S, S, Vec<Vec<u8>>) {
    let (mut c, mut s) = (client(Some(7), config), server(Some(7), config));
    let wire = settle(&mut c, &mut s, T0);
    assert_eq!(c.poll_event(), Some(Event::Connected));
    assert_eq!(s.poll_event(), Some(Event::Connected));
    assert!(c.peer().unwrap().agreed.contains(Capabilities::KEYED));
    (c, s, wire)
}

/// Rewrites a packet's CRC after it was changed, as a relay that knows the format would.
fn fix_crc(packet: &mut [u8]) {
    let end = packet.len() - 4;
    let crc = crc32c(&packet[..end]);
    packet[end..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn messages_cross_sealed_and_the_text_is_not_on_the_wire() {
    let (mut c, mut s, hello) = keyed_pair(config());
    assert_eq!(hello.len(), 2);
    assert!(hello.iter().all(|p| p.len() == 13 + crate::auth::HELLO_LEN));
    c.send(T0, b"attack at dawn").unwrap();
    s.send(T0, b"retreat at dusk").unwrap();
    let wire = settle(&mut c, &mut s, T0);
    assert_eq!(messages(&mut s), [b"attack at dawn".to_vec()]);
    assert_eq!(messages(&mut c), [b"retreat at dusk".to_vec()]);
    assert!(wire.iter().all(|p| p[2] & SEALED != 0), "every packet after the handshake is sealed");
    for text in [&b"attack"[..], b"retreat"] {
        assert!(!wire.iter().any(|p| p.windows(text.len()).any(|w| w == text)));
    }
    assert_eq!(s.stats().auth_failures, 0);
}

#[test]
fn a_different_key_is_refused_at_the_handshake() {
    let (mut c, mut s) = (client(Some(7), config()), server(Some(8), config()));
    settle(&mut c, &mut s, T0);
    let refused = CloseReason::PeerError { code: ErrorCode::AuthenticationFailed, detail: 0 };
    assert_eq!(closed(&mut c), Some(refused));
    let local = CloseReason::LocalError { code: ErrorCode::AuthenticationFailed, detail: 0 };
    assert_eq!(closed(&mut s), Some(local));
    assert_eq!(s.stats().auth_failures, 1);
}

#[test]
fn a_forged_hello_ack_is_refused_by_the_client() {
    // A server with another key answers (as a man in the middle would): the client checks.
    let mut c = client(Some(7), config());
    let mut s = server(Some(8), config());
    let hello = drain(&mut c, T0);
    // Re-sign the HELLO under the server's key, so the server accepts it and answers.
    let mut honest = client(Some(8), config());
    let forged = drain(&mut honest, T0);
    deliver(&mut s, &forged, T0);
    let ack = drain(&mut s, T0);
    assert_eq!(hello.len(), 1);
    deliver(&mut c, &ack, T0);
    let local = CloseReason::LocalError { code: ErrorCode::AuthenticationFailed, detail: 0 };
    assert_eq!(closed(&mut c), Some(local));
}

#[test]
fn a_keyed_side_never_accepts_a_keyless_one() {
    let keyed = Capabilities::KEYED.0.into();
    for (mut c, mut s) in [
        (client(None, config()), server(Some(7), config())),
        (client(Some(7), config()), server(None, config())),
    ] {
        settle(&mut c, &mut s, T0);
        let reason = closed(&mut c).expect("the client is refused");
        assert_eq!(reason, CloseReason::PeerError { code: ErrorCode::UnsupportedCapability, detail: keyed });
        assert!(c.peer().is_none() || !c.peer().unwrap().agreed.contains(Capabilities::KEYED));
    }
}

#[test]
fn an_altered_packet_is_dropped_and_counted_and_retransmission_repairs_it() {
    let lossy = config().retransmit(true);
    let (mut c, mut s, _) = keyed_pair(lossy);
    c.send(T0, b"pay 100 to alice").unwrap();
    let mut wire = drain(&mut c, T0);
    assert_eq!(wire.len(), 1);
    wire[0][9 + 4] ^= 0x01; // a bit of the encrypted text
    fix_crc(&mut wire[0]);
    deliver(&mut s, &wire, T0);
    assert_eq!(s.stats().auth_failures, 1);
    assert!(messages(&mut s).is_empty(), "nothing altered is delivered");
    // The sender's timer sends it again, under a new packet number.
    let later = T0 + Duration::from_secs(2);
    c.handle_timeout(later);
    let again = drain(&mut c, later);
    assert_eq!(again.len(), 1);
    assert_ne!(
        again[0][again[0].len() - 28..again[0].len() - 20],
        wire[0][wire[0].len() - 28..wire[0].len() - 20]
    );
    deliver(&mut s, &again, later);
    assert_eq!(messages(&mut s), [b"pay 100 to alice".to_vec()]);
}

#[test]
fn replayed_and_reflected_packets_deliver_nothing() {
    let (mut c, mut s, _) = keyed_pair(config());
    c.send(T0, b"once").unwrap();
    let to_server = drain(&mut c, T0);
    deliver(&mut s, &to_server, T0);
    assert_eq!(messages(&mut s), [b"once".to_vec()]);
    let to_client = drain(&mut s, T0);
    // Replayed to the server, reflected back to the client and the server itself.
    deliver(&mut s, &to_server, T0);
    deliver(&mut c, &to_server, T0);
    deliver(&mut s, &to_client, T0);
    assert!(messages(&mut s).is_empty());
    assert!(messages(&mut c).is_empty());
    assert_eq!(s.stats().auth_failures, (to_server.len() + to_client.len()) as u64);
    assert_eq!(c.stats().auth_failures, to_server.len() as u64);
}

#[test]
fn a_replayed_whole_session_delivers_nothing_to_a_new_server() {
    let (mut c, mut s, hello) = keyed_pair(config());
    c.send(T0, b"transfer").unwrap();
    let data = drain(&mut c, T0);
    deliver(&mut s, &data, T0);
    assert_eq!(messages(&mut s), [b"transfer".to_vec()]);
    // The HELLO still proves the key, so a new server answers it, with a new nonce; the
    // recorded packets were sealed under the old session keys.
    let mut fresh = server(Some(7), config()).with_auth(auth(7, 99), [0; 4096]);
    deliver(&mut fresh, &hello[..1], T0);
    let answer = drain(&mut fresh, T0);
    assert_ne!(answer[0], hello[1], "a new nonce, so new keys");
    deliver(&mut fresh, &data, T0);
    assert!(messages(&mut fresh).is_empty());
    assert_eq!(fresh.stats().auth_failures, data.len() as u64);
}

#[test]
fn a_lossy_keyed_link_delivers_everything_in_order() {
    let lossy = config().retransmit(true);
    let (mut c, mut s, _) = keyed_pair(lossy);
    let mut sent = Vec::new();
    let mut got = Vec::new();
    let mut now = T0;
    let mut n = 0u32;
    for round in 0..400 {
        if sent.len() < 60 {
            let message = std::format!("message {}", sent.len()).into_bytes();
            if c.send(now, &message).is_ok() {
                sent.push(message);
            }
        }
        for p in drain(&mut c, now) {
            n += 1;
            if !n.is_multiple_of(3) {
                deliver(&mut s, &[p], now);
            }
        }
        got.extend(messages(&mut s));
        for p in drain(&mut s, now) {
            n += 1;
            if !n.is_multiple_of(5) {
                deliver(&mut c, &[p], now);
            }
        }
        now = now + Duration::from_millis(50);
        c.handle_timeout(now);
        s.handle_timeout(now);
        if got.len() == 60 && round > 0 {
            break;
        }
    }
    assert_eq!(got, sent);
    assert_eq!(s.stats().auth_failures, 0);
}

/// A keyed side (key 7) that offers Ascon only.
fn ascon_only(client: bool) -> S {
    if client {
        S::client(config(), 0xC0FFEE, [0; 4096], [0; 4096], T0).with_auth(auth(7, 1).ascon_only(), [0; 4096])
    } else {
        S::server(config(), [0; 4096], [0; 4096], T0).with_auth(auth(7, 2).ascon_only(), [0; 4096])
    }
}

#[test]
fn both_sides_agree_on_the_fastest_suite_they_both_have() {
    let (mut c, mut s, _) = keyed_pair(config());
    let fastest = if cfg!(feature = "aes-gcm") { Suite::Aes256Gcm } else { Suite::Ascon128 };
    assert_eq!(c.keyed_suite(), Some(fastest));
    assert_eq!(s.keyed_suite(), Some(fastest));
    let aes = c.peer().unwrap().agreed.contains(Capabilities::AES_256_GCM);
    assert_eq!(aes, fastest == Suite::Aes256Gcm);
    c.send(T0, b"attack at dawn").unwrap();
    settle(&mut c, &mut s, T0);
    assert_eq!(messages(&mut s), [b"attack at dawn".to_vec()]);
}

#[test]
fn an_ascon_only_side_agrees_on_ascon_with_any_peer() {
    for (client_ascon_only, server_ascon_only) in [(true, false), (false, true), (true, true)] {
        let mut c = if client_ascon_only { ascon_only(true) } else { client(Some(7), config()) };
        let mut s = if server_ascon_only { ascon_only(false) } else { server(Some(7), config()) };
        settle(&mut c, &mut s, T0);
        assert_eq!(c.poll_event(), Some(Event::Connected));
        assert_eq!(c.keyed_suite(), Some(Suite::Ascon128));
        assert_eq!(s.keyed_suite(), Some(Suite::Ascon128));
        assert!(!c.peer().unwrap().agreed.contains(Capabilities::AES_256_GCM));
        s.send(T0, b"retreat at dusk").unwrap();
        settle(&mut c, &mut s, T0);
        assert_eq!(messages(&mut c), [b"retreat at dusk".to_vec()]);
    }
}

#[cfg(feature = "aes-gcm")]
#[test]
fn a_rewritten_suite_offer_or_choice_fails_authentication() {
    // Offsets of the capability sets in a HELLO or HELLO-ACK packet (after the header: the
    // version, a reserved byte, then supports and requires, u16 LE each).
    const SUPPORTS_AT: usize = crate::wire::HEADER_LEN + 2;
    const REQUIRES_AT: usize = crate::wire::HEADER_LEN + 4;
    let refused = CloseReason::LocalError { code: ErrorCode::AuthenticationFailed, detail: 0 };
    // The client's offer without AES-256-GCM: the server would pick Ascon, but the proof fails.
    let mut c = client(Some(7), config());
    let mut s = server(Some(7), config());
    let mut hello = drain(&mut c, T0);
    assert_eq!(hello[0][SUPPORTS_AT] & 0x04, 0x04, "offered");
    hello[0][SUPPORTS_AT] &= !0x04;
    fix_crc(&mut hello[0]);
    deliver(&mut s, &hello, T0);
    assert_eq!(closed(&mut s), Some(refused));
    assert_eq!(s.stats().auth_failures, 1);
    // The server's choice rewritten to Ascon: the client's check of the HELLO-ACK fails.
    let mut c = client(Some(7), config());
    let mut s = server(Some(7), config());
    deliver(&mut s, &drain(&mut c, T0), T0);
    let mut ack = drain(&mut s, T0);
    assert_eq!(ack[0][REQUIRES_AT] & 0x04, 0x04, "chosen");
    ack[0][REQUIRES_AT] &= !0x04;
    ack[0][SUPPORTS_AT] &= !0x04;
    fix_crc(&mut ack[0]);
    deliver(&mut c, &ack, T0);
    assert_eq!(closed(&mut c), Some(refused));
    assert_eq!(c.keyed_suite(), None);
}
