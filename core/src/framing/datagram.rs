//! One packet per datagram (UDP), behind the session tag.

use super::{Decoded, Decoder, DecoderStats, Encoder};
use crate::wire::{BufferTooSmall, DecodeError, OVERHEAD, Repr};

/// Bytes of the session tag in front of the packet.
pub const TAG_LEN: usize = 4;

/// The session tag of a datagram (its first 4 bytes, little-endian), if it has one.
pub fn session_tag(datagram: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(datagram.get(..TAG_LEN)?.try_into().ok()?))
}

/// Datagram framing: each datagram is a session tag (u32, little-endian: the session id) and
/// exactly one packet (PROTOCOL.md 9.3).
///
/// The tag lets a receiver drop datagrams of other sessions (junk, spoofed ones, late ones from
/// an earlier session) before they reach its session: a sender off the path never sees the
/// session id. [`Connection`](crate::connection::Connection) writes and checks it;
/// [`Encoder::encode`] alone writes tag 0.
///
/// This type encodes; [`DatagramDecoder`] decodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Datagram;

/// Decoder for [`Datagram`] framing.
///
/// `decode` takes a whole datagram and consumes all of it; the packet after the tag is the
/// frame ([`session_tag`] reads the tag). Receive datagrams into a buffer at least as large as
/// the largest datagram you accept plus one byte: a socket that cuts a longer datagram would
/// otherwise hand over a truncated packet that still looks whole to the kernel.
#[derive(Debug, Default)]
pub struct DatagramDecoder {
    max_len: usize,
    stats: DecoderStats,
}

impl DatagramDecoder {
    /// A decoder that accepts packets of up to `max_len` bytes (datagrams of `max_len` + 4).
    pub const fn new(max_len: usize) -> Self {
        Self { max_len, stats: DecoderStats::EMPTY }
    }
}

impl Decoder for DatagramDecoder {
    const SESSION_TAG: bool = true;

    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<'a> {
        let len = input.len();
        let result = match input.get(TAG_LEN..) {
            None => Err(DecodeError::Truncated { len, needed: TAG_LEN + OVERHEAD }),
            Some(packet) if packet.len() > self.max_len => {
                Err(DecodeError::TooLong { len: packet.len(), max: self.max_len })
            }
            Some(packet) => Repr::parse(packet),
        };
        self.stats.count(&result, len);
        Decoded { consumed: len, frame: Some(result) }
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }
}

impl Encoder for Datagram {
    const HEADER_LEN: Option<usize> = Some(TAG_LEN);

    fn write_header(tag: u32, _packet_len: usize, out: &mut [u8]) {
        out.copy_from_slice(&tag.to_le_bytes());
    }

    fn max_encoded_len(packet_len: usize) -> usize {
        TAG_LEN + packet_len
    }

    fn encode(packet: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        Self::encode_tagged(0, packet, out)
    }

    fn encode_tagged(tag: u32, packet: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let len = TAG_LEN + packet.len();
        let dst = out.get_mut(..len).ok_or(BufferTooSmall { required: len })?;
        dst[..TAG_LEN].copy_from_slice(&tag.to_le_bytes());
        dst[TAG_LEN..].copy_from_slice(packet);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PacketType, SeqNumber};

    /// A datagram of `repr` tagged `tag`.
    fn datagram(tag: u32, repr: &Repr<'_>) -> ([u8; 64], usize) {
        let (mut packet, mut out) = ([0u8; 64], [0u8; 64]);
        let n = repr.emit(&mut packet).unwrap();
        let len = Datagram::encode_tagged(tag, &packet[..n], &mut out).unwrap();
        (out, len)
    }

    #[test]
    fn one_datagram_one_tag_one_packet() {
        let (buf, n) = datagram(0xDEAD_BEEF, &Repr::data(SeqNumber(3), None, false, b"udp"));
        assert_eq!(buf[..4], [0xEF, 0xBE, 0xAD, 0xDE]);
        assert_eq!(session_tag(&buf[..n]), Some(0xDEAD_BEEF));
        let mut dec = DatagramDecoder::new(64);
        let d = dec.decode(&buf[..n]);
        assert_eq!(d.consumed, n);
        assert_eq!(d.frame.unwrap().unwrap().payload, b"udp");
        assert_eq!(dec.stats().frames, 1);
    }

    #[test]
    fn oversized_and_truncated_datagrams_are_named() {
        let (buf, n) = datagram(7, &Repr::control(PacketType::Ping, &[0; 12]));
        let mut dec = DatagramDecoder::new(20);
        let d = dec.decode(&buf[..n]);
        assert_eq!(d.frame.unwrap(), Err(DecodeError::TooLong { len: 25, max: 20 }));
        let mut dec = DatagramDecoder::new(64);
        let d = dec.decode(&buf[..n - 1]);
        assert_eq!(d.frame.unwrap(), Err(DecodeError::Truncated { len: 24, needed: 25 }));
        let d = dec.decode(&buf[..3]);
        assert_eq!(d.frame.unwrap(), Err(DecodeError::Truncated { len: 3, needed: 17 }));
        assert_eq!(session_tag(&buf[..3]), None);
        assert_eq!(dec.stats().errors, 2);
        assert_eq!(dec.stats().dropped_bytes, 28 + 3);
    }

    #[test]
    fn encode_copies_and_checks_room() {
        let mut out = [0u8; 8];
        assert_eq!(Datagram::encode(b"abcde", &mut out), Err(BufferTooSmall { required: 9 }));
        assert_eq!(out, [0; 8], "nothing written");
        assert_eq!(Datagram::encode_tagged(0x0403_0201, b"abc", &mut out), Ok(7));
        assert_eq!(&out[..7], b"\x01\x02\x03\x04abc");
        assert_eq!(Datagram::encode(b"abc", &mut out), Ok(7));
        assert_eq!(&out[..7], b"\0\0\0\0abc");
        assert_eq!(Datagram::max_encoded_len(3), 7);
    }
}
