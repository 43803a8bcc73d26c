//! Which framing a peer's bytes look like, when they did not decode in the framing the address
//! named: the hint given when a handshake got no answer.

use framelink_core::framing::{CobsDecoder, Decoder, LengthDelimited, LengthDelimitedDecoder};
use framelink_core::wire::OVERHEAD;

use crate::Transport;

/// The largest packet: the header and CRC around the largest payload.
const MAX_PACKET: usize = OVERHEAD + u16::MAX as usize;
/// Bytes kept from the start of what a peer sends during the handshake, to look at.
pub(crate) const SAMPLE: usize = 256;

/// A way of cutting a byte stream into frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// A u32 little-endian length before each packet: `tcp://`.
    LengthDelimited,
    /// COBS, each frame ended by `0x00`: `tcp+cobs://` and `serial://`.
    Cobs,
}

impl Framing {
    /// The framing `transport` uses on a byte stream (`None` for UDP datagrams).
    pub fn of(transport: Transport) -> Option<Self> {
        match transport {
            Transport::Tcp => Some(Self::LengthDelimited),
            Transport::TcpCobs | Transport::Serial => Some(Self::Cobs),
            Transport::Udp => None,
        }
    }
}

/// The other stream framing that `bytes`, received on `transport` without one frame decoding,
/// look like; `None` when they look like neither.
pub(crate) fn other_framing(transport: Transport, bytes: &[u8]) -> Option<Framing> {
    match Framing::of(transport)? {
        Framing::LengthDelimited => looks_like_cobs(bytes).then_some(Framing::Cobs),
        Framing::Cobs => looks_like_length_delimited(bytes).then_some(Framing::LengthDelimited),
    }
}

/// Whether `decoder` finds a whole, valid packet (CRC checked) in `bytes`.
fn decodes(mut decoder: impl Decoder, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let decoded = decoder.decode(bytes);
        if matches!(decoded.frame, Some(Ok(_))) {
            return true;
        }
        if decoded.consumed == 0 {
            return false;
        }
        bytes = &bytes[decoded.consumed..];
    }
    false
}

/// COBS: a valid packet decodes, or there are `0x00` delimiters and every frame they end is
/// well-formed COBS (a server's lone `0x00`, sent to end any partial frame, counts).
fn looks_like_cobs(bytes: &[u8]) -> bool {
    if decodes(CobsDecoder::<MAX_PACKET, Vec<u8>>::with_buffer(Vec::new()), bytes) {
        return true;
    }
    let Some(last) = bytes.iter().rposition(|&b| b == 0) else {
        return false;
    };
    bytes[..last].split(|&b| b == 0).all(|frame| {
        // Code bytes must land exactly on the frame's end.
        let mut at = 0;
        while at < frame.len() {
            at += usize::from(frame[at]);
        }
        at == frame.len()
    })
}

/// Length-delimited: a valid packet decodes, or the first length prefix is that of a packet.
fn looks_like_length_delimited(bytes: &[u8]) -> bool {
    if decodes(LengthDelimitedDecoder::<MAX_PACKET, Vec<u8>>::with_buffer(Vec::new()), bytes) {
        return true;
    }
    match bytes.first_chunk::<{ LengthDelimited::PREFIX_LEN }>() {
        Some(prefix) => (OVERHEAD..=MAX_PACKET).contains(&(u32::from_le_bytes(*prefix) as usize)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use framelink_core::framing::{Cobs, Encoder};
    use framelink_core::session::{Config, Session};

    use super::*;

    /// A client's HELLO, as a packet.
    fn hello() -> Vec<u8> {
        let clock = crate::StdClock::new();
        let mut session: crate::conn::Sess =
            Session::client(Config::new(), 7, Vec::new(), Vec::new(), clock.now());
        let mut packet = vec![0; 4096];
        let len = session.poll_transmit(clock.now(), &mut packet).unwrap().expect("a HELLO");
        packet.truncate(len);
        assert!(len >= OVERHEAD);
        packet
    }

    fn cobs_frame(packet: &[u8]) -> Vec<u8> {
        let mut out = vec![0; Cobs::max_encoded_len(packet.len())];
        let len = Cobs::encode(packet, &mut out).unwrap();
        out.truncate(len);
        out
    }

    fn length_delimited_frame(packet: &[u8]) -> Vec<u8> {
        let mut out = LengthDelimited::prefix(packet.len()).to_vec();
        out.extend_from_slice(packet);
        out
    }

    #[test]
    fn cobs_bytes_on_tcp_say_cobs() {
        let frame = cobs_frame(&hello());
        assert_eq!(other_framing(Transport::Tcp, &frame), Some(Framing::Cobs));
        // A COBS server's lone delimiter, sent first, is enough.
        assert_eq!(other_framing(Transport::Tcp, &[0]), Some(Framing::Cobs));
        // Half a frame, cut before its delimiter, still shows the lone delimiter before it.
        let mut cut = vec![0];
        cut.extend_from_slice(&frame[..frame.len() / 2]);
        assert_eq!(other_framing(Transport::Tcp, &cut), Some(Framing::Cobs));
    }

    #[test]
    fn length_delimited_bytes_under_cobs_say_length_delimited() {
        let frame = length_delimited_frame(&hello());
        assert_eq!(other_framing(Transport::TcpCobs, &frame), Some(Framing::LengthDelimited));
        assert_eq!(other_framing(Transport::Serial, &frame[..4]), Some(Framing::LengthDelimited));
    }

    #[test]
    fn other_bytes_say_nothing() {
        let text = b"HTTP/1.1 400 Bad Request\r\n\r\n";
        for transport in [Transport::Tcp, Transport::TcpCobs, Transport::Serial, Transport::Udp] {
            assert_eq!(other_framing(transport, text), None, "{transport:?}");
            assert_eq!(other_framing(transport, &[]), None, "{transport:?}");
        }
        // A zero inside a COBS block is no COBS; a length past the largest packet is no prefix.
        assert_eq!(other_framing(Transport::Tcp, &[5, 1, 0]), None);
        assert_eq!(other_framing(Transport::TcpCobs, &[0, 3, 1, 1, 1]), None);
        // Each framing's own bytes are not taken for the other.
        let packet = hello();
        assert_eq!(other_framing(Transport::Tcp, &length_delimited_frame(&packet)), None);
        assert_eq!(other_framing(Transport::TcpCobs, &cobs_frame(&packet)), None);
        assert_eq!(other_framing(Transport::Udp, &cobs_frame(&packet)), None);
    }
}
