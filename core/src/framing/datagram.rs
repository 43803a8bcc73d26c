//! One packet per datagram (UDP).

use super::{Decoded, Decoder, DecoderStats, Encoder};
use crate::wire::{BufferTooSmall, DecodeError, Repr};

/// Datagram framing: each datagram is exactly one packet, nothing added.
///
/// This type encodes; [`DatagramDecoder`] decodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Datagram;

/// Decoder for [`Datagram`] framing.
///
/// `decode` takes a whole datagram and consumes all of it. Receive datagrams into a buffer at
/// least as large as the largest packet you accept plus one byte: a socket that cuts a longer
/// datagram would otherwise hand over a truncated packet that still looks whole to the kernel.
#[derive(Debug, Default)]
pub struct DatagramDecoder {
    max_len: usize,
    stats: DecoderStats,
}

impl DatagramDecoder {
    /// A decoder that accepts datagrams of up to `max_len` bytes.
    pub const fn new(max_len: usize) -> Self {
        Self { max_len, stats: DecoderStats::EMPTY }
    }
}

impl Decoder for DatagramDecoder {
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<'a> {
        let len = input.len();
        let result = if len > self.max_len {
            Err(DecodeError::TooLong { len, max: self.max_len })
        } else {
            Repr::parse(input)
        };
        self.stats.count(&result, len);
        Decoded { consumed: len, frame: Some(result) }
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }
}

impl Encoder for Datagram {
    const HEADER_LEN: Option<usize> = Some(0);

    fn max_encoded_len(packet_len: usize) -> usize {
        packet_len
    }

    fn encode(packet: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let dst = out.get_mut(..packet.len()).ok_or(BufferTooSmall { required: packet.len() })?;
        dst.copy_from_slice(packet);
        Ok(packet.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PacketType, SeqNumber};

    #[test]
    fn one_datagram_one_packet() {
        let mut buf = [0u8; 64];
        let n = Repr::data(SeqNumber(3), None, false, b"udp").emit(&mut buf).unwrap();
        let mut dec = DatagramDecoder::new(64);
        let d = dec.decode(&buf[..n]);
        assert_eq!(d.consumed, n);
        assert_eq!(d.frame.unwrap().unwrap().payload, b"udp");
        assert_eq!(dec.stats().frames, 1);
    }

    #[test]
    fn oversized_and_truncated_datagrams_are_named() {
        let mut buf = [0u8; 64];
        let n = Repr::control(PacketType::Ping, &[0; 12]).emit(&mut buf).unwrap();
        let mut dec = DatagramDecoder::new(20);
        let d = dec.decode(&buf[..n]);
        assert_eq!(d.frame.unwrap(), Err(DecodeError::TooLong { len: 25, max: 20 }));
        let mut dec = DatagramDecoder::new(64);
        let d = dec.decode(&buf[..n - 1]);
        assert_eq!(d.frame.unwrap(), Err(DecodeError::Truncated { len: 24, needed: 25 }));
        assert_eq!(dec.stats().errors, 1);
        assert_eq!(dec.stats().dropped_bytes, 24);
    }

    #[test]
    fn encode_copies_and_checks_room() {
        let mut out = [0u8; 4];
        assert_eq!(Datagram::encode(b"abcde", &mut out), Err(BufferTooSmall { required: 5 }));
        assert_eq!(Datagram::encode(b"abc", &mut out), Ok(3));
        assert_eq!(&out[..3], b"abc");
    }
}
