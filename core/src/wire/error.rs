//! Why a frame or packet was rejected.

/// A frame or packet that could not be decoded, one variant per cause.
///
/// Every variant is recoverable: the decoder that returned it has already skipped the bad frame,
/// and the next call goes on with the bytes after it. Counting and logging the error is all the
/// caller has to do; the session also answers some of them (a bad version during the handshake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the smallest packet (header and CRC, 13 bytes), or fewer than the
    /// header's payload length says.
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header (or the minimum) calls for.
        needed: usize,
    },
    /// More bytes than the header's payload length accounts for.
    TrailingBytes {
        /// Bytes present.
        len: usize,
        /// Bytes the header calls for.
        expected: usize,
    },
    /// The CRC-32C over header and payload does not match the one sent.
    BadCrc {
        /// The CRC carried by the packet.
        received: u32,
        /// The CRC computed over what arrived.
        computed: u32,
    },
    /// The first byte names a protocol version this decoder does not speak.
    BadVersion {
        /// The version received.
        version: u8,
    },
    /// The type byte names no packet type of this version.
    UnknownType {
        /// The type byte received.
        kind: u8,
    },
    /// A frame longer than the receiver's limit; its bytes were skipped, not buffered.
    TooLong {
        /// The frame's length (as announced, or as far as it was read).
        len: usize,
        /// The receiver's limit.
        max: usize,
    },
    /// A COBS frame whose code bytes point past its end.
    BadCobs,
    /// A packet whose payload does not have the layout its type requires (for example a HELLO
    /// shorter than 22 bytes).
    BadPayload {
        /// The packet type byte.
        kind: u8,
    },
    /// A datagram tagged with another session's id (datagram framing, PROTOCOL.md 9.3): junk,
    /// a spoofed packet, or a late one from an earlier session.
    ForeignSession {
        /// The datagram's tag.
        tag: u32,
    },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Truncated { len, needed } => {
                write!(f, "truncated packet: {len} bytes, {needed} needed")
            }
            Self::TrailingBytes { len, expected } => {
                write!(f, "packet of {len} bytes where the header says {expected}")
            }
            Self::BadCrc { received, computed } => {
                write!(f, "bad CRC-32C: received {received:#010x}, computed {computed:#010x}")
            }
            Self::BadVersion { version } => write!(f, "unsupported protocol version {version}"),
            Self::UnknownType { kind } => write!(f, "unknown packet type {kind:#04x}"),
            Self::TooLong { len, max } => write!(f, "frame of {len} bytes exceeds the limit of {max}"),
            Self::BadCobs => f.write_str("malformed COBS frame"),
            Self::BadPayload { kind } => write!(f, "malformed payload for packet type {kind:#04x}"),
            Self::ForeignSession { tag } => write!(f, "datagram for another session ({tag:#010x})"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// The output buffer is too small; nothing was written to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// The size the output needs.
    pub required: usize,
}

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "output buffer too small: {} bytes required", self.required)
    }
}

impl core::error::Error for BufferTooSmall {}
