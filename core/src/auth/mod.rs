//! Keyed sessions (feature `auth`): a pre-shared key authenticates the handshake and seals
//! every later packet, with replay protection.
//!
//! Both sides hold the same 32-byte [`Psk`]. HELLO and HELLO-ACK each carry a fresh 16-byte
//! nonce and a proof of the key over the handshake; a side with another key is refused with
//! ERROR AuthenticationFailed. Per-direction session keys are derived from the key, the session
//! id and both nonces, so a replayed handshake cannot revive old traffic. Every later packet is
//! sealed with Ascon-AEAD128 (NIST SP 800-232): the header is authenticated, the payload
//! encrypted, and a 64-bit packet number (new for every transmission, retransmissions included)
//! makes the nonce; a 64-packet replay window drops anything seen before.
//! `docs/PROTOCOL.md` section 15 is the specification, with test vectors.
//!
//! A session becomes keyed with [`Session::with_auth`](crate::session::Session::with_auth):
//!
//! ```
//! use framelink_core::auth::{Psk, SessionAuth};
//! use framelink_core::session::{Config, Event, Session};
//! use framelink_core::wire::Repr;
//! use framelink_core::Instant;
//! # struct Rng(u64);
//! # impl rand_core::TryRng for Rng {
//! #     type Error = core::convert::Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(self.try_next_u64()? as u32) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); Ok(self.0) }
//! #     fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> { for b in dst { *b = self.try_next_u64()? as u8 } Ok(()) }
//! # }
//! # impl rand_core::TryCryptoRng for Rng {}
//! # let mut rng = Rng(1); // a real program uses the OS's or the chip's random source
//!
//! let psk = Psk::new([7; 32]);
//! let now = Instant::ZERO;
//! let auth = |rng: &mut Rng| SessionAuth::new(&psk, rng).unwrap();
//! let mut client: Session<Vec<u8>> = Session::client(Config::new(), 1, vec![0; 4096], vec![0; 4096], now)
//!     .with_auth(auth(&mut rng), Vec::new());
//! let mut server: Session<Vec<u8>> =
//!     Session::server(Config::new(), vec![0; 4096], vec![0; 4096], now).with_auth(auth(&mut rng), Vec::new());
//!
//! fn pump(from: &mut Session<Vec<u8>>, to: &mut Session<Vec<u8>>, now: Instant) -> Vec<Vec<u8>> {
//!     let mut wire = Vec::new();
//!     let mut buf = [0u8; 1200];
//!     while let Some(len) = from.poll_transmit(now, &mut buf).unwrap() {
//!         to.handle_packet(now, &Repr::parse(&buf[..len]).unwrap());
//!         wire.push(buf[..len].to_vec());
//!     }
//!     wire
//! }
//! pump(&mut client, &mut server, now); // HELLO: nonce and proof
//! pump(&mut server, &mut client, now); // HELLO-ACK: nonce and proof
//! assert_eq!(client.poll_event(), Some(Event::Connected));
//! client.send(now, b"secret").unwrap();
//! let wire = pump(&mut client, &mut server, now);
//! assert!(!wire.iter().any(|packet| packet.windows(6).any(|w| w == b"secret")));
//! assert_eq!(server.poll_event(), Some(Event::Connected));
//! assert_eq!(server.poll_event(), Some(Event::Message(b"secret")));
//! ```

mod ascon;
mod crypto;
mod fast;
mod replay;
mod seal;

pub use replay::ReplayWindow;
pub use seal::{Channel, OpenError, is_sealed_kind};

use zeroize::Zeroize;

/// Bytes of a pre-shared key.
pub const KEY_LEN: usize = 32;
/// Bytes of a handshake nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes of a handshake proof and of a packet's authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes of the packet number a sealed packet carries.
pub const PACKET_NUMBER_LEN: usize = 8;
/// Bytes sealing adds to a packet's payload: packet number and tag (24).
pub const SEAL_OVERHEAD: usize = PACKET_NUMBER_LEN + TAG_LEN;
/// Bytes of a sealed packet after its payload: packet number, tag and CRC (28).
pub const SEALED_TRAILER: usize = SEAL_OVERHEAD + crate::wire::CRC_LEN;
/// Bytes of a keyed HELLO or HELLO-ACK payload: the 22-byte fixed part, the 8-byte cookie slot
/// (zeros when there is no cookie), the nonce and the proof.
pub const HELLO_LEN: usize = crate::wire::HelloPayload::LEN_WITH_COOKIE + NONCE_LEN + TAG_LEN;

/// A 32-byte pre-shared key; zeroized when dropped, never printed.
#[derive(Clone)]
pub struct Psk([u8; KEY_LEN]);

impl Psk {
    /// A key from its bytes.
    pub const fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A key from 64 hex digits (either case); surrounding ASCII whitespace is ignored.
    pub fn from_hex(text: &[u8]) -> Result<Self, PskError> {
        let text = text.trim_ascii();
        if text.len() != 2 * KEY_LEN {
            return Err(PskError::Length { digits: text.len() });
        }
        let mut key = [0u8; KEY_LEN];
        for (byte, pair) in key.iter_mut().zip(text.chunks_exact(2)) {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            };
            match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => *byte = high << 4 | low,
                _ => {
                    key.zeroize();
                    return Err(PskError::NotHex);
                }
            }
        }
        Ok(Self(key))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for Psk {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Compared without stopping at the first difference.
impl PartialEq for Psk {
    fn eq(&self, other: &Self) -> bool {
        self.0.iter().zip(&other.0).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Eq for Psk {}

impl core::fmt::Debug for Psk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Psk(..)")
    }
}

/// Why a text is not a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PskError {
    /// Not 64 hex digits long.
    Length {
        /// The characters found.
        digits: usize,
    },
    /// A character that is not a hex digit.
    NotHex,
}

impl core::fmt::Display for PskError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Length { digits } => write!(f, "a key is 64 hex digits, not {digits}"),
            Self::NotHex => f.write_str("a key is 64 hex digits; found another character"),
        }
    }
}

impl core::error::Error for PskError {}

/// An AEAD suite of keyed sessions (PROTOCOL.md section 15.1): what seals the packets once the
/// handshake agreed on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Suite {
    /// Ascon-AEAD128, suite 0: every keyed side has it (the firmware's only suite).
    Ascon128,
    /// AES-256-GCM, suite 1 (capability [`AES_256_GCM`](crate::wire::Capabilities::AES_256_GCM)):
    /// offered by builds with the feature `aes-gcm`, and chosen by a server when both offer it.
    Aes256Gcm,
}

/// What a session needs to be keyed: the pre-shared key and a secret seed its handshake nonces
/// are drawn from (Ascon-XOF128 of the seed and a counter, so that a server session that
/// restarts many times needs no random source of its own). Zeroized when dropped.
#[derive(Clone)]
pub struct SessionAuth {
    psk: Psk,
    seed: [u8; 32],
    drawn: u64,
    /// Whether the handshake offers (and a server chooses) AES-256-GCM.
    #[cfg(feature = "aes-gcm")]
    offers_aes: bool,
}

impl SessionAuth {
    /// The key, and a seed drawn from `rng` (the OS's random source on a host, the chip's
    /// TRNG in firmware).
    pub fn new<R: rand_core::TryCryptoRng + ?Sized>(psk: &Psk, rng: &mut R) -> Result<Self, R::Error> {
        let mut auth = Self {
            psk: psk.clone(),
            seed: [0; 32],
            drawn: 0,
            #[cfg(feature = "aes-gcm")]
            offers_aes: true,
        };
        rng.try_fill_bytes(&mut auth.seed)?;
        Ok(auth)
    }

    /// Offers and accepts Ascon-AEAD128 only, as a build without the feature `aes-gcm` does
    /// (which is the default there: the suites offered are the suites built).
    #[must_use]
    #[cfg_attr(not(feature = "aes-gcm"), allow(unused_mut))]
    pub fn ascon_only(mut self) -> Self {
        #[cfg(feature = "aes-gcm")]
        {
            self.offers_aes = false;
        }
        self
    }

    /// The capability bits of the suites offered besides Ascon (which KEYED implies).
    #[cfg(feature = "aes-gcm")]
    pub(crate) fn offered_suites(&self) -> crate::wire::Capabilities {
        if self.offers_aes { crate::wire::Capabilities::AES_256_GCM } else { crate::wire::Capabilities::NONE }
    }

    /// A fresh handshake nonce.
    pub(crate) fn next_nonce(&mut self) -> [u8; NONCE_LEN] {
        self.drawn += 1;
        crypto::nonce(&self.seed, self.drawn)
    }

    pub(crate) fn psk(&self) -> &Psk {
        &self.psk
    }
}

impl Drop for SessionAuth {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl core::fmt::Debug for SessionAuth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionAuth(..)")
    }
}

#[cfg(feature = "aes-gcm")]
pub use crypto::session_keys_aes_256_gcm;
pub use crypto::{hello_proof, session_keys};

/// Compares two tags without stopping at the first difference.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}
