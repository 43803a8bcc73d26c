//! The key of the UDP server's RETRY cookies (PROTOCOL.md 10.1), drawn at random when a
//! socket starts serving; the cookies themselves are [`framelink_core::endpoint`]'s.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use framelink_core::endpoint::CookieKey;

/// 16 bytes from the OS's random source; should that fail, from std's `RandomState` (keyed from
/// the OS's random source once per thread), which is still unpredictable from outside.
pub(crate) fn random_key() -> CookieKey {
    let mut key = [0u8; 16];
    if getrandom::fill(&mut key).is_err() {
        let (first, second) = (RandomState::new(), RandomState::new());
        key[..8].copy_from_slice(&first.hash_one(0u8).to_le_bytes());
        key[8..].copy_from_slice(&second.hash_one(1u8).to_le_bytes());
    }
    CookieKey::new(key)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use framelink_core::Instant;
    use framelink_core::endpoint::{ANSWER_LEN, Config, Endpoint, Entry, Route};
    use framelink_core::framing::{Datagram, Encoder};
    use framelink_core::wire::{HelloPayload, PacketType, Repr};

    use super::*;

    /// The RETRY an endpoint keyed with `key` answers a cookie-less HELLO with.
    fn retry(key: CookieKey) -> Vec<u8> {
        let mut endpoint = Endpoint::new(key, BTreeMap::<SocketAddr, Entry<()>>::new(), Config::new());
        let mut fields = HelloPayload::parse(&[0; HelloPayload::LEN]).unwrap();
        (fields.version, fields.max_payload, fields.window, fields.session_id) = (1, 100, 1, 5);
        let (mut payload, mut packet, mut hello) = ([0; HelloPayload::LEN], [0; 64], [0; 64]);
        let n = fields.emit(&mut payload).unwrap();
        let n = Repr::control(PacketType::Hello, &payload[..n]).emit(&mut packet).unwrap();
        let n = Datagram::encode_tagged(5, &packet[..n], &mut hello).unwrap();
        let mut answer = [0u8; ANSWER_LEN];
        let from = "127.0.0.1:9".parse().unwrap();
        match endpoint.handle(Instant::ZERO, from, &hello[..n], &mut answer) {
            Route::Answer(len) => answer[..len].to_vec(),
            _ => panic!("no RETRY"),
        }
    }

    #[test]
    fn every_key_is_drawn_anew() {
        assert_eq!(retry(CookieKey::new([1; 16])), retry(CookieKey::new([1; 16])), "one key, one cookie");
        assert_ne!(retry(random_key()), retry(random_key()));
    }
}
