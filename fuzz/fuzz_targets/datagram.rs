//! `DatagramDecoder` on arbitrary datagrams.
//!
//! Input: byte 0 modulo 8 = number of size bytes that follow, then the bytes those sizes cut
//! into datagrams (see `framelink_fuzz::Split`). Invariants: no panic; each datagram is consumed
//! whole and yields exactly one frame: `Truncated` without a whole session tag, `TooLong` when
//! the packet after the tag exceeds the limit, otherwise exactly what `Repr::parse` says of the
//! packet; the counters match the frames and `dropped_bytes` is the sum of the rejected
//! datagrams; every packet re-encodes (`Repr::emit`, then `Datagram::encode`, which adds the
//! 4-byte tag and nothing else) and decodes to the same `Repr`, and `encode_tagged` writes the
//! tag `session_tag` reads.
#![no_main]

use framelink_core::framing::datagram::{TAG_LEN, session_tag};
use framelink_core::framing::{Datagram, DatagramDecoder, DecodeError, Decoder, Encoder};
use framelink_core::wire::Repr;
use framelink_fuzz::{OwnedRepr, Split, check_stats, round_trip};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 300;

fuzz_target!(|input: &[u8]| {
    let split = Split::new(input);
    let mut decoder = DatagramDecoder::new(MAX);
    let mut frames = Vec::new();
    let mut dropped = 0u64;
    // An empty datagram is a datagram too.
    let mut datagrams = split.chunks();
    if input.len() % 2 == 1 {
        datagrams.push(&[]);
    }
    for datagram in datagrams {
        let decoded = decoder.decode(datagram);
        assert_eq!(decoded.consumed, datagram.len(), "a datagram not consumed whole");
        let frame = decoded.frame.expect("a datagram yields a frame").map(|r| OwnedRepr::of(&r));
        let expected = match datagram.get(TAG_LEN..) {
            None => Err(DecodeError::Truncated { len: datagram.len(), needed: TAG_LEN + 13 }),
            Some(packet) if packet.len() > MAX => Err(DecodeError::TooLong { len: packet.len(), max: MAX }),
            Some(packet) => Repr::parse(packet).map(|r| OwnedRepr::of(&r)),
        };
        assert_eq!(session_tag(datagram).is_some(), datagram.len() >= TAG_LEN);
        assert_eq!(frame, expected, "the datagram decoder is not Repr::parse with a limit");
        if frame.is_err() {
            dropped += datagram.len() as u64;
        }
        frames.push(frame);
    }
    check_stats(decoder.stats(), &frames);
    assert_eq!(decoder.stats().dropped_bytes, dropped, "stats.dropped_bytes");
    for (i, packet) in (0u32..).zip(frames.iter().flatten()) {
        let encoded = round_trip::<Datagram, _>(packet, DatagramDecoder::new(MAX));
        assert_eq!(
            encoded.len(),
            TAG_LEN + packet.as_repr().buffer_len(),
            "datagram framing: tag and packet"
        );
        let tag = i.wrapping_mul(0x9E37_79B9);
        let mut tagged = vec![0u8; encoded.len()];
        assert_eq!(Datagram::encode_tagged(tag, &encoded[TAG_LEN..], &mut tagged), Ok(encoded.len()));
        assert_eq!(session_tag(&tagged), Some(tag));
        assert_eq!(tagged[TAG_LEN..], encoded[TAG_LEN..]);
    }
});
