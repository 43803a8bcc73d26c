//! The payload layouts of the control packets. All integers are little-endian.
//!
//! Each type's `parse` takes a payload and returns `None` when it is too short; bytes after the
//! fixed part are ignored (room for later versions), except where the layout gives them a
//! meaning (PING padding, ERROR text). `emit` writes the fixed part into a buffer of at least
//! `LEN` bytes and returns `LEN`.

use super::BufferTooSmall;

// Each payload's fixed part (and the packet header) is read from and written to a fixed-size
// array, its length checked once: the fields sit at constant offsets, so every access through
// these helpers is a plain load or store with no bounds check (and no panic path) left.

#[inline(always)]
pub(super) fn u16_at<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(super) fn u32_at<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(super) fn u64_at<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32
}

#[inline(always)]
pub(super) fn put_u16<const N: usize>(b: &mut [u8; N], at: usize, value: u16) {
    let [x0, x1] = value.to_le_bytes();
    (b[at], b[at + 1]) = (x0, x1);
}

#[inline(always)]
pub(super) fn put_u32<const N: usize>(b: &mut [u8; N], at: usize, value: u32) {
    let [x0, x1, x2, x3] = value.to_le_bytes();
    (b[at], b[at + 1], b[at + 2], b[at + 3]) = (x0, x1, x2, x3);
}

#[inline(always)]
pub(super) fn put_u64<const N: usize>(b: &mut [u8; N], at: usize, value: u64) {
    put_u32(b, at, value as u32);
    put_u32(b, at + 4, (value >> 32) as u32);
}

/// The first `N` bytes of `buf` for a fixed part, when `buf` holds the `required` bytes (at
/// least `N`) of the whole payload.
fn room<const N: usize>(buf: &mut [u8], required: usize) -> Result<&mut [u8; N], BufferTooSmall> {
    match buf.get_mut(..required) {
        Some(payload) => payload.first_chunk_mut().ok_or(BufferTooSmall { required: N }),
        None => Err(BufferTooSmall { required }),
    }
}

/// A set of capability bits, as carried by HELLO and HELLO-ACK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Capabilities(pub u16);

impl Capabilities {
    /// No capabilities.
    pub const NONE: Self = Self(0);
    /// Retransmission of lost packets (selective repeat) for transports that lose.
    pub const RETRANSMIT: Self = Self(0x0001);
    /// Keyed sessions: a pre-shared key authenticates the handshake and seals every later
    /// packet (PROTOCOL.md section 15; the `auth` feature).
    pub const KEYED: Self = Self(0x0002);
    /// Keyed sessions may be sealed with AES-256-GCM (suite 1) instead of Ascon-AEAD128: a
    /// keyed side offers it in its supported set, and a server that has it too puts it in the
    /// agreed set (PROTOCOL.md section 15.1; the `aes-gcm` feature).
    pub const AES_256_GCM: Self = Self(0x0004);
    /// Every bit this version defines.
    pub const KNOWN: Self = Self(0x0007);

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits of `self` or `other`.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The bits set in both `self` and `other`.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The bits of `self` that are not in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// HELLO and HELLO-ACK payload: what the sender speaks and what it can receive.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | version the sender speaks |
/// | 1 | 1 | reserved, 0 |
/// | 2 | 2 | capabilities the sender supports |
/// | 4 | 2 | capabilities the sender requires (HELLO-ACK: the agreed set) |
/// | 6 | 2 | largest DATA payload the sender accepts |
/// | 8 | 2 | window: DATA packets the sender accepts in flight |
/// | 10 | 4 | session id (chosen by the client, echoed by the server) |
/// | 14 | 4 | largest message the sender accepts, in bytes |
/// | 18 | 4 | initial receive credit, in bytes |
/// | 22 | 8 | optional, HELLO only: the cookie of the server's RETRY |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HelloPayload {
    /// The protocol version the sender speaks.
    pub version: u8,
    /// Capabilities the sender supports.
    pub supports: Capabilities,
    /// Capabilities the sender requires; in HELLO-ACK, the set both sides agreed on.
    pub requires: Capabilities,
    /// The largest DATA payload the sender accepts.
    pub max_payload: u16,
    /// How many DATA packets the sender accepts in flight.
    pub window: u16,
    /// The session id.
    pub session_id: u32,
    /// The largest message the sender accepts.
    pub max_message: u32,
    /// Bytes of receive credit the sender grants from the start (see ACK).
    pub credit: u32,
    /// In a HELLO, the cookie a server's RETRY gave: proof that the client receives at its
    /// address (PROTOCOL.md 10.1).
    pub cookie: Option<[u8; RetryPayload::LEN]>,
}

impl HelloPayload {
    /// Bytes of the fixed part.
    pub const LEN: usize = 22;
    /// Bytes with a cookie.
    pub const LEN_WITH_COOKIE: usize = Self::LEN + RetryPayload::LEN;

    /// Reads the payload; `None` if it is shorter than [`Self::LEN`]. The cookie is read when
    /// all of it is there; bytes after it are ignored (room for more).
    pub fn parse(b: &[u8]) -> Option<Self> {
        let (f, rest) = b.split_first_chunk::<{ Self::LEN }>()?;
        Some(Self {
            version: f[0],
            supports: Capabilities(u16_at(f, 2)),
            requires: Capabilities(u16_at(f, 4)),
            max_payload: u16_at(f, 6),
            window: u16_at(f, 8),
            session_id: u32_at(f, 10),
            max_message: u32_at(f, 14),
            credit: u32_at(f, 18),
            cookie: rest.first_chunk().copied(),
        })
    }

    /// The bytes [`emit`](Self::emit) writes: 22, or 30 with a cookie.
    pub const fn encoded_len(&self) -> usize {
        if self.cookie.is_some() { Self::LEN_WITH_COOKIE } else { Self::LEN }
    }

    /// Writes the payload into `buf`; returns [`encoded_len`](Self::encoded_len).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let len = self.encoded_len();
        let f = room::<{ Self::LEN }>(buf, len)?;
        (f[0], f[1]) = (self.version, 0);
        put_u16(f, 2, self.supports.0);
        put_u16(f, 4, self.requires.0);
        put_u16(f, 6, self.max_payload);
        put_u16(f, 8, self.window);
        put_u32(f, 10, self.session_id);
        put_u32(f, 14, self.max_message);
        put_u32(f, 18, self.credit);
        if let Some(cookie) = &self.cookie {
            buf[Self::LEN..Self::LEN_WITH_COOKIE].copy_from_slice(cookie);
        }
        Ok(len)
    }
}

/// RETRY payload: the cookie the client sends back in its next HELLO.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | cookie: opaque to the client |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RetryPayload {
    /// The cookie.
    pub cookie: [u8; Self::LEN],
}

impl RetryPayload {
    /// Bytes of the payload.
    pub const LEN: usize = 8;

    /// Reads the payload; `None` unless it is exactly [`Self::LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        Some(Self { cookie: b.try_into().ok()? })
    }

    /// Writes the payload into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        *room(buf, Self::LEN)? = self.cookie;
        Ok(Self::LEN)
    }
}

/// ACK payload: receive credit, and optionally a selective acknowledgement.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | credit: bytes the sender can still take beyond the acknowledged DATA |
/// | 4 | 4 | optional selective-ack bitmap: bit `i` set = DATA `ack + 1 + i` received |
///
/// Each DATA packet costs its payload length plus [`AckPayload::DATA_COST`] bytes of credit.
/// The bitmap is sent only when it is not zero; a 4-byte payload means "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AckPayload {
    /// Bytes of credit beyond the packet the header's ack field names.
    pub credit: u32,
    /// DATA received beyond the gap at the ack field: bit `i` stands for `ack + 1 + i`.
    pub sack: u32,
}

impl AckPayload {
    /// Bytes of the fixed part.
    pub const LEN: usize = 4;
    /// The credit a DATA packet costs on top of its payload.
    pub const DATA_COST: u32 = 4;

    /// Bytes with the selective-ack bitmap.
    pub const LEN_WITH_SACK: usize = 8;

    /// Reads the payload; `None` if it is shorter than [`Self::LEN`].
    pub fn parse(b: &[u8]) -> Option<Self> {
        let credit = u32_at(b.first_chunk::<{ Self::LEN }>()?, 0);
        let sack = b.first_chunk::<{ Self::LEN_WITH_SACK }>().map_or(0, |f| u32_at(f, 4));
        Some(Self { credit, sack })
    }

    /// The bytes [`emit`](Self::emit) writes: 4, or 8 with a bitmap.
    pub const fn encoded_len(&self) -> usize {
        if self.sack == 0 { Self::LEN } else { Self::LEN_WITH_SACK }
    }

    /// Writes the payload into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let len = self.encoded_len();
        let f = room::<{ Self::LEN }>(buf, len)?;
        put_u32(f, 0, self.credit);
        if self.sack != 0 {
            buf[4..8].copy_from_slice(&self.sack.to_le_bytes());
        }
        Ok(len)
    }
}

/// PING and PONG payload. A PONG echoes the whole PING payload, padding included.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | timestamp, microseconds on the pinging side's clock |
/// | 8 | 4 | token: 0 for keepalives, otherwise chosen by the application |
/// | 12 | any | padding, echoed unchanged |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PingPayload {
    /// When the PING was sent, on the pinging side's clock (µs).
    pub timestamp: u64,
    /// 0 for keepalive pings, otherwise the application's token.
    pub token: u32,
}

impl PingPayload {
    /// Bytes of the fixed part.
    pub const LEN: usize = 12;

    /// Reads the payload; `None` if it is shorter than [`Self::LEN`].
    pub fn parse(b: &[u8]) -> Option<Self> {
        let f = b.first_chunk::<{ Self::LEN }>()?;
        Some(Self { timestamp: u64_at(f, 0), token: u32_at(f, 8) })
    }

    /// Writes the fixed part into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let f = room::<{ Self::LEN }>(buf, Self::LEN)?;
        put_u64(f, 0, self.timestamp);
        put_u32(f, 8, self.token);
        Ok(Self::LEN)
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal ),* $(,)?) => {
        /// Why a session ended with an ERROR packet.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
            /// The handshake's proof of the pre-shared key did not verify: the peer has a
            /// different key (code 9); detail: 0. Without the `auth` feature code 9 reads as
            /// [`Unknown`](Self::Unknown).
            #[cfg(feature = "auth")]
            AuthenticationFailed,
            /// A code this version does not define.
            Unknown(u16),
        }

        impl From<u16> for ErrorCode {
            fn from(value: u16) -> Self {
                match value {
                    $( $value => Self::$name, )*
                    #[cfg(feature = "auth")]
                    9 => Self::AuthenticationFailed,
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<ErrorCode> for u16 {
            fn from(code: ErrorCode) -> u16 {
                match code {
                    $( ErrorCode::$name => $value, )*
                    #[cfg(feature = "auth")]
                    ErrorCode::AuthenticationFailed => 9,
                    ErrorCode::Unknown(other) => other,
                }
            }
        }
    };
}

error_codes! {
    /// The peer speaks another protocol version; detail: the version the sender speaks.
    VersionMismatch = 1,
    /// A required capability is not supported; detail: the missing capability bits.
    UnsupportedCapability = 2,
    /// A message exceeded the receiver's limit; detail: the receiver's largest message.
    MessageTooLarge = 3,
    /// A DATA payload exceeded the receiver's limit; detail: the receiver's largest payload.
    PayloadTooLarge = 4,
    /// DATA beyond the granted credit or window; detail: the credit left.
    FlowControl = 5,
    /// A packet that makes no sense in the receiver's state; detail: its type byte.
    ProtocolViolation = 6,
    /// Nothing was heard for too long; detail: the idle timeout in milliseconds.
    IdleTimeout = 7,
    /// The server takes no more sessions; detail: its limit.
    Busy = 8,
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            Self::VersionMismatch => "version mismatch",
            Self::UnsupportedCapability => "unsupported capability",
            Self::MessageTooLarge => "message too large",
            Self::PayloadTooLarge => "payload too large",
            Self::FlowControl => "flow control violated",
            Self::ProtocolViolation => "protocol violation",
            Self::IdleTimeout => "idle timeout",
            Self::Busy => "server busy",
            #[cfg(feature = "auth")]
            Self::AuthenticationFailed => "authentication failed",
            Self::Unknown(code) => return write!(f, "error code {code}"),
        };
        f.write_str(text)
    }
}

/// ERROR payload.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | code ([`ErrorCode`]) |
/// | 2 | 4 | detail: a number the peer can act on; its meaning depends on the code |
/// | 6 | any | optional UTF-8 text for people, not NUL-terminated |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorPayload<'a> {
    /// What went wrong.
    pub code: ErrorCode,
    /// A number the peer can act on, per code.
    pub detail: u32,
    /// Text for people; may be empty, and is not guaranteed to be UTF-8.
    pub text: &'a [u8],
}

impl<'a> ErrorPayload<'a> {
    /// Bytes of the fixed part.
    pub const LEN: usize = 6;

    /// Reads the payload; `None` if it is shorter than [`Self::LEN`].
    pub fn parse(b: &'a [u8]) -> Option<Self> {
        let (f, text) = b.split_first_chunk::<{ ErrorPayload::LEN }>()?;
        Some(Self { code: ErrorCode::from(u16_at(f, 0)), detail: u32_at(f, 2), text })
    }

    /// Writes the payload, text included, into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let len = Self::LEN + self.text.len();
        let f = room::<{ ErrorPayload::LEN }>(buf, len)?;
        put_u16(f, 0, self.code.into());
        put_u32(f, 2, self.detail);
        buf[Self::LEN..len].copy_from_slice(self.text);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trip_and_layout() {
        let hello = HelloPayload {
            version: 1,
            supports: Capabilities::RETRANSMIT,
            requires: Capabilities::NONE,
            max_payload: 0x0400,
            window: 16,
            session_id: 0xDEAD_BEEF,
            max_message: 0x0004_0000,
            credit: 0x0010_0000,
            cookie: None,
        };
        let mut buf = [0u8; 22];
        assert_eq!(hello.emit(&mut buf), Ok(22));
        assert_eq!(buf[10..14], [0xEF, 0xBE, 0xAD, 0xDE]);
        assert_eq!(HelloPayload::parse(&buf), Some(hello));
        assert_eq!(HelloPayload::parse(&buf[..21]), None);
        assert_eq!(hello.emit(&mut [0u8; 21]), Err(BufferTooSmall { required: 22 }));
    }

    #[test]
    fn a_hello_carries_a_cookie_after_its_fixed_part() {
        let plain = HelloPayload::parse(&[1; 22]).unwrap();
        let hello = HelloPayload { cookie: Some(*b"\x01cookie\x02"), ..plain };
        let mut buf = [0u8; 31];
        assert_eq!(hello.emit(&mut buf), Ok(30));
        assert_eq!(&buf[22..30], b"\x01cookie\x02");
        assert_eq!(HelloPayload::parse(&buf[..30]), Some(hello));
        assert_eq!(HelloPayload::parse(&buf), Some(hello), "bytes after the cookie are ignored");
        assert_eq!(HelloPayload::parse(&buf[..29]), Some(plain), "a cut cookie is no cookie");
        assert_eq!(hello.emit(&mut [0u8; 29]), Err(BufferTooSmall { required: 30 }));
        let retry = RetryPayload { cookie: *b"12345678" };
        assert_eq!(retry.emit(&mut buf), Ok(8));
        assert_eq!(RetryPayload::parse(&buf[..8]), Some(retry));
        assert_eq!(RetryPayload::parse(&buf[..7]), None);
        assert_eq!(RetryPayload::parse(&buf[..9]), None);
    }

    #[test]
    fn error_payload_carries_text() {
        let err = ErrorPayload { code: ErrorCode::Busy, detail: 1024, text: b"full" };
        let mut buf = [0u8; 16];
        let len = err.emit(&mut buf).unwrap();
        assert_eq!(len, 10);
        assert_eq!(ErrorPayload::parse(&buf[..len]), Some(err));
        assert_eq!(ErrorCode::from(0xFFFF), ErrorCode::Unknown(0xFFFF));
        assert_eq!(u16::from(ErrorCode::from(5)), 5);
    }

    #[test]
    fn ping_and_ack_round_trip() {
        let ping = PingPayload { timestamp: u64::MAX - 1, token: 9 };
        let mut buf = [0u8; 12];
        ping.emit(&mut buf).unwrap();
        assert_eq!(PingPayload::parse(&buf), Some(ping));
        let ack = AckPayload { credit: 70_000, sack: 0 };
        assert_eq!(ack.emit(&mut buf), Ok(4));
        assert_eq!(AckPayload::parse(&buf[..4]), Some(ack));
        assert_eq!(AckPayload::parse(&buf[..3]), None);
        let sacked = AckPayload { credit: 1, sack: 0b101 };
        assert_eq!(sacked.emit(&mut buf), Ok(8));
        assert_eq!(AckPayload::parse(&buf[..8]), Some(sacked));
        assert_eq!(sacked.emit(&mut buf[..7]), Err(BufferTooSmall { required: 8 }));
    }

    #[test]
    fn capability_set_operations() {
        let both = Capabilities::RETRANSMIT.union(Capabilities(0x8000));
        assert!(both.contains(Capabilities::RETRANSMIT));
        assert_eq!(both.difference(Capabilities::KNOWN), Capabilities(0x8000));
        assert!(Capabilities::NONE.is_empty());
    }
}
