//! The packet layout and a lenient, zero-copy view over its bytes.

use super::crc::crc32c;
use super::payload::u16_at;
use super::{DecodeError, SeqNumber, VERSION};

/// Byte ranges of the header fields.
pub(crate) mod field {
    use core::ops::Range;

    pub(crate) const VERSION: usize = 0;
    pub(crate) const KIND: usize = 1;
    pub(crate) const FLAGS: usize = 2;
    pub(crate) const SEQ: Range<usize> = 3..5;
    pub(crate) const ACK: Range<usize> = 5..7;
    pub(crate) const LEN: Range<usize> = 7..9;
    pub(crate) const fn payload(len: usize) -> Range<usize> {
        LEN.end..LEN.end + len
    }
    pub(crate) const fn crc(len: usize) -> Range<usize> {
        LEN.end + len..LEN.end + len + 4
    }
}

/// Bytes of the header: version, type, flags, sequence, acknowledgement, payload length.
pub const HEADER_LEN: usize = field::LEN.end;
/// Bytes of the CRC-32C trailer.
pub const CRC_LEN: usize = 4;
/// Bytes a packet adds around its payload: header plus CRC (13).
pub const OVERHEAD: usize = HEADER_LEN + CRC_LEN;
const _: () = assert!(OVERHEAD <= 16, "header and CRC must fit in 16 bytes");

/// The largest payload one packet can carry (the length field is 16 bits).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;
/// The largest packet: [`OVERHEAD`] + [`MAX_PAYLOAD`].
pub const MAX_PACKET: usize = OVERHEAD + MAX_PAYLOAD;

macro_rules! packet_types {
    ($( $(#[$doc:meta])* $name:ident = $value:literal ),* $(,)?) => {
        /// The packet type, byte 1 of the header.
        ///
        /// Values this version does not define survive as [`PacketType::Unknown`] in the lenient
        /// [`Packet`] view; [`Repr::parse`](super::Repr::parse) refuses them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum PacketType {
            $( $(#[$doc])* $name, )*
            /// A type byte this version does not define.
            Unknown(u8),
        }

        impl PacketType {
            /// Every type this version defines, in wire order.
            pub const ALL: [Self; 10] = [$(Self::$name),*];
        }

        impl From<u8> for PacketType {
            fn from(value: u8) -> Self {
                match value {
                    $( $value => Self::$name, )*
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<PacketType> for u8 {
            fn from(kind: PacketType) -> u8 {
                match kind {
                    $( PacketType::$name => $value, )*
                    PacketType::Unknown(other) => other,
                }
            }
        }
    };
}

packet_types! {
    /// Client opens a session: version, limits, capabilities, session id.
    Hello = 0x01,
    /// Server accepts a HELLO with its own limits and the agreed capabilities.
    HelloAck = 0x02,
    /// One fragment of an application message, sequenced.
    Data = 0x03,
    /// Cumulative acknowledgement and receive credit, without data.
    Ack = 0x04,
    /// Keepalive or RTT probe; answered by PONG with the same payload.
    Ping = 0x05,
    /// The answer to a PING.
    Pong = 0x06,
    /// The sender has sent all it will send and asks to end the session; sequenced after DATA.
    Close = 0x07,
    /// The answer to CLOSE, sent once the answering side has drained its own data.
    CloseAck = 0x08,
    /// The session ends because of an error; carries a code.
    Error = 0x09,
    /// A server asks the client to send its HELLO again with a cookie, proving its address
    /// (datagram transports).
    Retry = 0x0A,
}

/// Header flag bits (byte 2). Senders set undefined bits to zero; receivers ignore them.
pub mod flags {
    /// The acknowledgement field is valid.
    pub const ACK: u8 = 0x01;
    /// DATA only: more fragments of the same message follow.
    pub const MORE: u8 = 0x02;
    /// Keyed sessions: the payload is sealed (encrypted, then packet number and tag;
    /// PROTOCOL.md section 15).
    pub const SEALED: u8 = 0x04;
}

/// A lenient view over the bytes of one packet (header, payload, CRC).
///
/// Getters read fields without judging them. After [`Packet::new_checked`] (or
/// [`Packet::check_len`]) succeeds, no getter panics. Setters are available when the buffer is
/// mutable; [`Packet::set_len`] changes where the payload and CRC are, so call `check_len` again
/// after it before reading.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking anything; getters may panic until
    /// [`check_len`](Self::check_len) succeeds.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` and checks that its length matches the header.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer is exactly header + payload length + CRC long.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        Parts::split(self.buffer.as_ref()).map(drop)
    }

    /// Gives back the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, range: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_le_bytes([b[0], b[1]])
    }

    /// The protocol version byte.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The packet type.
    pub fn kind(&self) -> PacketType {
        PacketType::from(self.buffer.as_ref()[field::KIND])
    }

    /// The flag bits; see [`flags`].
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The sequence number.
    pub fn seq(&self) -> SeqNumber {
        SeqNumber(self.u16_at(field::SEQ))
    }

    /// The acknowledgement number (meaningful when [`flags::ACK`] is set).
    pub fn ack(&self) -> SeqNumber {
        SeqNumber(self.u16_at(field::ACK))
    }

    /// The payload length from the header.
    pub fn payload_len(&self) -> u16 {
        self.u16_at(field::LEN)
    }

    /// The CRC carried in the trailer.
    pub fn crc(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::crc(usize::from(self.payload_len()))];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The CRC-32C computed over header and payload.
    pub fn compute_crc(&self) -> u32 {
        let end = HEADER_LEN + usize::from(self.payload_len());
        crc32c(&self.buffer.as_ref()[..end])
    }

    /// Checks length, CRC, version and type, in that order: everything
    /// [`Repr::parse`](super::Repr::parse) needs before it reads the payload.
    pub fn check(&self) -> Result<(), DecodeError> {
        Parts::check(self.buffer.as_ref()).map(drop)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, borrowed for as long as the buffer.
    pub fn payload(&self) -> &'a [u8] {
        let len = usize::from(self.payload_len());
        &self.buffer.as_ref()[field::payload(len)]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_le_bytes());
    }

    /// Sets the version byte.
    pub fn set_version(&mut self, version: u8) {
        self.buffer.as_mut()[field::VERSION] = version;
    }

    /// Sets the packet type.
    pub fn set_kind(&mut self, kind: PacketType) {
        self.buffer.as_mut()[field::KIND] = kind.into();
    }

    /// Sets the flag bits.
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Sets the sequence number.
    pub fn set_seq(&mut self, seq: SeqNumber) {
        self.set_u16_at(field::SEQ, seq.0);
    }

    /// Sets the acknowledgement number.
    pub fn set_ack(&mut self, ack: SeqNumber) {
        self.set_u16_at(field::ACK, ack.0);
    }

    /// Sets the payload length; this moves the payload's end and the CRC.
    pub fn set_len(&mut self, len: u16) {
        self.set_u16_at(field::LEN, len);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.payload_len());
        &mut self.buffer.as_mut()[field::payload(len)]
    }

    /// Computes the CRC over header and payload and writes it into the trailer.
    pub fn fill_crc(&mut self) {
        let crc = self.compute_crc();
        let len = usize::from(self.payload_len());
        self.buffer.as_mut()[field::crc(len)].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The fields of a packet whose length matches its header, split once so that reading them
/// needs no further bounds checks.
pub(super) struct Parts<'a> {
    pub(super) header: &'a [u8; HEADER_LEN],
    pub(super) payload: &'a [u8],
    /// Header and payload: the bytes the CRC covers.
    pub(super) covered: &'a [u8],
    /// The CRC carried in the trailer.
    pub(super) crc: u32,
}

impl<'a> Parts<'a> {
    /// Splits `bytes`; fails as [`Packet::check_len`] does.
    pub(super) fn split(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let len = bytes.len();
        let truncated = |needed| DecodeError::Truncated { len, needed };
        let (header, rest) = bytes.split_first_chunk().ok_or(truncated(OVERHEAD))?;
        let (payload, crc) = rest.split_last_chunk().ok_or(truncated(OVERHEAD))?;
        let expected = OVERHEAD + usize::from(u16_at(header, field::LEN.start));
        if len < expected {
            return Err(truncated(expected));
        }
        if len > expected {
            return Err(DecodeError::TrailingBytes { len, expected });
        }
        let covered = &bytes[..HEADER_LEN + payload.len()];
        Ok(Self { header, payload, covered, crc: u32::from_le_bytes(*crc) })
    }

    /// Splits `bytes` and checks CRC, version and type; fails as [`Packet::check`] does.
    pub(super) fn check(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let parts = Self::split(bytes)?;
        let computed = crc32c(parts.covered);
        if parts.crc != computed {
            return Err(DecodeError::BadCrc { received: parts.crc, computed });
        }
        let version = parts.header[field::VERSION];
        if version != VERSION {
            return Err(DecodeError::BadVersion { version });
        }
        if let PacketType::Unknown(kind) = PacketType::from(parts.header[field::KIND]) {
            return Err(DecodeError::UnknownType { kind });
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_crc_fit_in_16_bytes() {
        assert_eq!(HEADER_LEN, 9);
        assert_eq!(OVERHEAD, 13);
    }

    #[test]
    fn packet_type_round_trips_every_byte() {
        for byte in 0..=u8::MAX {
            assert_eq!(u8::from(PacketType::from(byte)), byte);
        }
        for (i, kind) in PacketType::ALL.iter().enumerate() {
            assert_eq!(u8::from(*kind), i as u8 + 1);
        }
        assert_eq!(PacketType::from(0), PacketType::Unknown(0));
        assert_eq!(PacketType::from(0x0B), PacketType::Unknown(0x0B));
    }

    #[test]
    fn check_len_names_short_and_long_buffers() {
        let mut buf = [0u8; 20];
        buf[field::LEN].copy_from_slice(&5u16.to_le_bytes());
        assert_eq!(
            Packet::new_checked(&buf[..12]).unwrap_err(),
            DecodeError::Truncated { len: 12, needed: 13 }
        );
        assert_eq!(
            Packet::new_checked(&buf[..17]).unwrap_err(),
            DecodeError::Truncated { len: 17, needed: 18 }
        );
        assert_eq!(
            Packet::new_checked(&buf[..20]).unwrap_err(),
            DecodeError::TrailingBytes { len: 20, expected: 18 }
        );
        assert!(Packet::new_checked(&buf[..18]).is_ok());
    }

    #[test]
    fn unknown_type_survives_the_view_but_not_the_check() {
        let mut buf = [0u8; OVERHEAD];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_version(VERSION);
        packet.buffer[field::KIND] = 0x7F;
        packet.fill_crc();
        let packet = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.kind(), PacketType::Unknown(0x7F));
        assert_eq!(packet.check(), Err(DecodeError::UnknownType { kind: 0x7F }));
    }
}
