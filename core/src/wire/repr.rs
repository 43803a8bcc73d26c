//! The strict, parsed representation of a packet.

use super::crc::{Crc32c, crc32c};
use super::packet::{CRC_LEN, HEADER_LEN, OVERHEAD, PacketType, Parts, field, flags};
use super::payload::{AckPayload, ErrorPayload, HelloPayload, PingPayload, RetryPayload, put_u16, u16_at};
use super::{BufferTooSmall, DecodeError, SeqNumber, VERSION};

/// A packet that passed every check: length, CRC, version, type and payload layout.
///
/// `Repr` borrows its payload from the buffer it was parsed from. [`Repr::emit`] writes the
/// packet back byte for byte (undefined flag bits are dropped).
///
/// ```
/// use framelink_core::wire::{PacketType, Repr, SeqNumber};
///
/// let repr = Repr::data(SeqNumber(7), None, false, b"hi");
/// let mut buf = [0u8; 32];
/// let len = repr.emit(&mut buf)?;
/// assert_eq!(len, 13 + 2);
/// let parsed = Repr::parse(&buf[..len])?;
/// assert_eq!(parsed, repr);
/// assert_eq!(parsed.kind, PacketType::Data);
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Repr<'a> {
    /// The packet type; never [`PacketType::Unknown`] after [`Repr::parse`].
    pub kind: PacketType,
    /// The sequence number (DATA and CLOSE use it; others send 0).
    pub seq: SeqNumber,
    /// The cumulative acknowledgement: the next DATA sequence number the sender expects.
    pub ack: Option<SeqNumber>,
    /// DATA only: more fragments of this message follow.
    pub more: bool,
    /// The payload, at most 65535 bytes.
    pub payload: &'a [u8],
}

/// The header fields of a packet whose payload is written in place by
/// [`Repr::emit_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The packet type.
    pub kind: PacketType,
    /// The sequence number.
    pub seq: SeqNumber,
    /// The cumulative acknowledgement, if any.
    pub ack: Option<SeqNumber>,
    /// DATA only: more fragments follow.
    pub more: bool,
}

impl<'a> Repr<'a> {
    /// A DATA packet.
    pub const fn data(seq: SeqNumber, ack: Option<SeqNumber>, more: bool, payload: &'a [u8]) -> Self {
        Self { kind: PacketType::Data, seq, ack, more, payload }
    }

    /// A packet of `kind` with no sequence number, no flags and `payload`.
    pub const fn control(kind: PacketType, payload: &'a [u8]) -> Self {
        Self { kind, seq: SeqNumber(0), ack: None, more: false, payload }
    }

    /// Parses and checks a whole packet: length, CRC, version, type, then the payload's layout
    /// for its type.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let Parts { header, payload, .. } = Parts::check(bytes)?;
        let kind = PacketType::from(header[field::KIND]);
        let flag_bits = header[field::FLAGS];
        let repr = Self {
            kind,
            seq: SeqNumber(u16_at(header, field::SEQ.start)),
            ack: (flag_bits & flags::ACK != 0).then(|| SeqNumber(u16_at(header, field::ACK.start))),
            more: kind == PacketType::Data && flag_bits & flags::MORE != 0,
            payload,
        };
        repr.check_payload()?;
        Ok(repr)
    }

    /// Whether the payload has the layout its type requires. Each payload type's `parse`
    /// accepts exactly these lengths (tested below), so this is their check without their reads.
    pub(crate) fn check_payload(&self) -> Result<(), DecodeError> {
        let fixed = match self.kind {
            PacketType::Hello | PacketType::HelloAck => HelloPayload::LEN,
            PacketType::Ack => AckPayload::LEN,
            PacketType::Ping | PacketType::Pong => PingPayload::LEN,
            PacketType::Error => ErrorPayload::LEN,
            PacketType::Retry => RetryPayload::LEN,
            PacketType::Data | PacketType::Close | PacketType::CloseAck => 0,
            PacketType::Unknown(_) => usize::MAX, // no layout (and refused before this)
        };
        // A RETRY payload is its cookie alone; the others may carry more than their fixed part.
        let len = self.payload.len();
        let ok = len >= fixed && (self.kind != PacketType::Retry || len == fixed);
        if ok { Ok(()) } else { Err(DecodeError::BadPayload { kind: self.kind.into() }) }
    }

    /// The bytes [`emit`](Self::emit) writes: 13 + payload length.
    pub const fn buffer_len(&self) -> usize {
        OVERHEAD + self.payload.len()
    }

    /// The header fields of this packet.
    pub const fn header(&self) -> Header {
        Header { kind: self.kind, seq: self.seq, ack: self.ack, more: self.more }
    }

    /// Writes the packet at the start of `buf` and returns its length.
    ///
    /// On error nothing is written. A payload over 65535 bytes is reported as a buffer too
    /// small for it, since no packet can hold it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let payload = self.payload;
        Self::emit_with(self.header(), payload.len(), buf, |out| out.copy_from_slice(payload))
    }

    /// Writes a packet with `header` and a payload of `payload_len` bytes that `fill` writes in
    /// place, then the CRC; returns the packet's length.
    ///
    /// `fill` gets a slice of exactly `payload_len` bytes. On error nothing is written and
    /// `fill` is not called.
    pub fn emit_with(
        header: Header,
        payload_len: usize,
        buf: &mut [u8],
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<usize, BufferTooSmall> {
        // The generic part is only `fill`: header and CRC are shared by every caller (each
        // closure makes a copy of this function, which firmware pays for in flash).
        let (packet, crc) = emit_header(header, payload_len, buf)?;
        fill(&mut packet[HEADER_LEN..]);
        finish(packet, crc);
        Ok(OVERHEAD + payload_len)
    }

    /// Writes the header and the CRC of a packet whose payload is sent from where it lies, in
    /// `pieces` (one vectored write: no copy of the payload). The packet is `buf[..9]`, then
    /// the pieces in order, then `buf[9..13]`; returns 13.
    ///
    /// On error nothing is written: `buf` shorter than 13 bytes, or a payload over 65535 bytes.
    ///
    /// ```
    /// use framelink_core::wire::{Header, PacketType, Repr, SeqNumber};
    ///
    /// let header = Header { kind: PacketType::Data, seq: SeqNumber(3), ack: None, more: false };
    /// let mut parts = [0u8; 13];
    /// assert_eq!(Repr::emit_split(header, &[b"hel", b"lo"], &mut parts), Ok(13));
    /// let packet = [&parts[..9], b"hello", &parts[9..]].concat();
    /// assert_eq!(Repr::parse(&packet)?, Repr::data(SeqNumber(3), None, false, b"hello"));
    /// # Ok::<(), framelink_core::wire::DecodeError>(())
    /// ```
    pub fn emit_split(header: Header, pieces: &[&[u8]], buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let payload_len: usize = pieces.iter().map(|piece| piece.len()).sum();
        let too_small = BufferTooSmall { required: OVERHEAD + payload_len };
        let len = u16::try_from(payload_len).map_err(|_| too_small)?;
        let out = buf.first_chunk_mut::<OVERHEAD>().ok_or(BufferTooSmall { required: OVERHEAD })?;
        let (bytes, crc) = out.split_at_mut(HEADER_LEN);
        let bytes: &mut [u8; HEADER_LEN] = bytes.try_into().map_err(|_| too_small)?;
        write_header(header, len, 0, bytes);
        let mut digest = Crc32c::new();
        digest.update(bytes);
        for piece in pieces {
            digest.update(piece);
        }
        crc.copy_from_slice(&digest.finalize().to_le_bytes());
        Ok(OVERHEAD)
    }
}

/// Checks the room for a packet with `payload_len` bytes of payload and writes its header;
/// returns the packet's header and payload, and the room for its CRC.
fn emit_header(
    header: Header,
    payload_len: usize,
    buf: &mut [u8],
) -> Result<(&mut [u8], &mut [u8; CRC_LEN]), BufferTooSmall> {
    let total = OVERHEAD + payload_len;
    let too_small = BufferTooSmall { required: total };
    let len = u16::try_from(payload_len).map_err(|_| too_small)?;
    let (packet, crc) = buf.get_mut(..total).and_then(<[u8]>::split_last_chunk_mut).ok_or(too_small)?;
    let (bytes, _) = packet.split_first_chunk_mut::<HEADER_LEN>().ok_or(too_small)?;
    write_header(header, len, 0, bytes);
    Ok((packet, crc))
}

/// Writes the header of a packet with `header`, a payload of `len` bytes and the flags the
/// fields imply plus `extra_flags` (a keyed session's SEALED).
pub(crate) fn write_header(header: Header, len: u16, extra_flags: u8, bytes: &mut [u8; HEADER_LEN]) {
    let mut flag_bits = extra_flags;
    if header.ack.is_some() {
        flag_bits |= flags::ACK;
    }
    if header.more {
        flag_bits |= flags::MORE;
    }
    bytes[field::VERSION] = VERSION;
    bytes[field::KIND] = header.kind.into();
    bytes[field::FLAGS] = flag_bits;
    put_u16(bytes, field::SEQ.start, header.seq.0);
    put_u16(bytes, field::ACK.start, header.ack.unwrap_or_default().0);
    put_u16(bytes, field::LEN.start, len);
}

/// Writes the CRC of a packet (header and payload) into the room after it.
fn finish(packet: &[u8], crc: &mut [u8; CRC_LEN]) {
    *crc = crc32c(packet).to_le_bytes();
}

#[cfg(test)]
mod tests {
    use super::super::Packet;
    use super::*;

    fn emit_vec(repr: &Repr<'_>) -> ([u8; 128], usize) {
        let mut buf = [0u8; 128];
        let len = repr.emit(&mut buf).unwrap();
        (buf, len)
    }

    #[test]
    fn data_round_trip_keeps_every_field() {
        let repr = Repr::data(SeqNumber(0xBEEF), Some(SeqNumber(0x1234)), true, b"payload");
        let (buf, len) = emit_vec(&repr);
        assert_eq!(len, 20);
        assert_eq!(Repr::parse(&buf[..len]), Ok(repr));
        assert_eq!(&buf[..9], &[1, 3, 0x03, 0xEF, 0xBE, 0x34, 0x12, 7, 0]);
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let repr = Repr::data(SeqNumber(1), Some(SeqNumber(2)), false, b"0123456789");
        let (buf, len) = emit_vec(&repr);
        for bit in 0..len * 8 {
            let mut copy = buf;
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(Repr::parse(&copy[..len]).is_err(), "bit {bit} flipped went unnoticed");
        }
    }

    #[test]
    fn bad_version_is_named_after_the_crc_passes() {
        let (mut buf, len) = emit_vec(&Repr::control(PacketType::Close, &[]));
        buf[0] = 2;
        let mut packet = Packet::new_unchecked(&mut buf[..len]);
        packet.fill_crc();
        assert_eq!(Repr::parse(&buf[..len]), Err(DecodeError::BadVersion { version: 2 }));
    }

    #[test]
    fn short_control_payloads_are_bad_payloads() {
        for kind in [
            PacketType::Hello,
            PacketType::HelloAck,
            PacketType::Ack,
            PacketType::Ping,
            PacketType::Pong,
            PacketType::Error,
        ] {
            let (buf, len) = emit_vec(&Repr::control(kind, &[0; 3]));
            assert_eq!(
                Repr::parse(&buf[..len]),
                Err(DecodeError::BadPayload { kind: kind.into() }),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn check_payload_accepts_what_each_payload_parses() {
        let bytes = [0u8; 40];
        for kind in PacketType::ALL {
            for len in 0..bytes.len() {
                let payload = &bytes[..len];
                let parses = match kind {
                    PacketType::Hello | PacketType::HelloAck => HelloPayload::parse(payload).is_some(),
                    PacketType::Ack => AckPayload::parse(payload).is_some(),
                    PacketType::Ping | PacketType::Pong => PingPayload::parse(payload).is_some(),
                    PacketType::Error => ErrorPayload::parse(payload).is_some(),
                    PacketType::Retry => RetryPayload::parse(payload).is_some(),
                    _ => true,
                };
                assert_eq!(Repr::control(kind, payload).check_payload().is_ok(), parses, "{kind:?} {len}");
            }
        }
    }

    #[test]
    fn more_flag_is_data_only_and_unknown_flags_are_ignored() {
        let (mut buf, len) = emit_vec(&Repr::control(PacketType::CloseAck, &[]));
        buf[2] = 0xFE; // MORE and undefined bits, no ACK
        Packet::new_unchecked(&mut buf[..len]).fill_crc();
        let repr = Repr::parse(&buf[..len]).unwrap();
        assert!(!repr.more);
        assert_eq!(repr.ack, None);
    }

    #[test]
    fn emit_refuses_small_buffers_without_writing() {
        let repr = Repr::data(SeqNumber(0), None, false, b"abc");
        let mut buf = [0xAAu8; 15];
        assert_eq!(repr.emit(&mut buf), Err(BufferTooSmall { required: 16 }));
        assert_eq!(buf, [0xAA; 15]);
    }

    #[test]
    fn oversized_payload_cannot_be_emitted() {
        static BIG: [u8; 65536] = [0; 65536];
        let repr = Repr::data(SeqNumber(0), None, false, &BIG);
        let mut buf = [0u8; 16];
        assert_eq!(repr.emit(&mut buf), Err(BufferTooSmall { required: 65536 + 13 }));
    }
}
