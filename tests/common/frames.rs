//! Raw frames, for tests that speak the wire format by hand (stand-in peers, hostile clients).

use std::io::Read;
use std::net::TcpStream;

use framelink::core::framing::{Datagram, Encoder, LengthDelimited};

use super::WAIT;

/// `packet` in a length-delimited frame.
pub(crate) fn length_delimited(packet: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; LengthDelimited::max_encoded_len(packet.len())];
    let len = LengthDelimited::encode(packet, &mut frame).unwrap();
    frame.truncate(len);
    frame
}

/// `packet` as a datagram of the session tagged `tag` (PROTOCOL.md 9.3).
pub(crate) fn tagged(tag: u32, packet: &[u8]) -> Vec<u8> {
    let mut datagram = vec![0u8; Datagram::max_encoded_len(packet.len())];
    let len = Datagram::encode_tagged(tag, packet, &mut datagram).unwrap();
    datagram.truncate(len);
    datagram
}

/// Reads one length-delimited frame (at most [`WAIT`]); its packet bytes.
pub(crate) fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).expect("a frame from the peer");
    let mut packet = vec![0u8; u32::from_le_bytes(prefix) as usize];
    stream.read_exact(&mut packet).unwrap();
    packet
}
