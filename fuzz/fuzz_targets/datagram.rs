//! `DatagramDecoder` on arbitrary datagrams.
//!
//! Input: byte 0 modulo 8 = number of size bytes that follow, then the bytes those sizes cut
//! into datagrams (see `framelink_fuzz::Split`). Invariants: no panic; each datagram is consumed
//! whole and yields exactly one frame, which is `TooLong` when it exceeds the limit and
//! otherwise exactly what `Repr::parse` says; the counters match the frames and `dropped_bytes`
//! is the sum of the rejected datagrams; every packet re-encodes (`Repr::emit`, then
//! `Datagram::encode`, which adds nothing) and decodes to the same `Repr`.
#![no_main]

use framelink_core::framing::{Datagram, DatagramDecoder, DecodeError, Decoder};
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
        let expected = if datagram.len() > MAX {
            Err(DecodeError::TooLong { len: datagram.len(), max: MAX })
        } else {
            Repr::parse(datagram).map(|r| OwnedRepr::of(&r))
        };
        assert_eq!(frame, expected, "the datagram decoder is not Repr::parse with a limit");
        if frame.is_err() {
            dropped += datagram.len() as u64;
        }
        frames.push(frame);
    }
    check_stats(decoder.stats(), &frames);
    assert_eq!(decoder.stats().dropped_bytes, dropped, "stats.dropped_bytes");
    for packet in frames.iter().flatten() {
        let encoded = round_trip::<Datagram, _>(packet, DatagramDecoder::new(MAX));
        assert_eq!(encoded.len(), packet.as_repr().buffer_len(), "datagram framing added bytes");
    }
});
