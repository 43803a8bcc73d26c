//! `CobsDecoder` on arbitrary bytes in arbitrary chunks.
//!
//! Input: byte 0 modulo 8 = number of chunk-size bytes that follow, then the stream (see
//! `framelink_fuzz::Split`). Invariants: no panic; every `decode` consumes at most its input
//! and at least one byte of a non-empty input; chunked and one-piece decoding give the same
//! frames (the length a `TooLong` reports aside); the counters match the frames and
//! `dropped_bytes` never exceeds the input; every packet re-encodes (`Repr::emit`, then
//! `Cobs::encode`) into a frame with no zero byte but the final delimiter, and decodes to the
//! same `Repr`; after a delimiter the decoder is idle; a decoder whose storage is a `Vec`
//! (growing as frames need it) gives exactly the frames of one with an inline array.
#![no_main]

use framelink_core::framing::{Cobs, CobsDecoder, Decoder};
use framelink_fuzz::{Split, check_stream_decoder, feed, round_trip};
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer meets `TooLong` and resynchronisation often.
const MAX: usize = 512;

fuzz_target!(|input: &[u8]| {
    let frames = check_stream_decoder::<Cobs, _>(input, CobsDecoder::<MAX>::new);
    let growable =
        check_stream_decoder::<Cobs, _>(input, || CobsDecoder::<MAX, Vec<u8>>::with_buffer(Vec::new()));
    assert_eq!(growable, frames, "the storage changed the frames");

    let split = Split::new(input);
    let mut decoder = CobsDecoder::<MAX>::new();
    let again = feed(&mut decoder, &split.chunks());
    assert_eq!(again, frames, "the same input decoded twice differently");
    let stats = decoder.stats();
    assert!(
        stats.dropped_bytes <= split.stream.len() as u64,
        "dropped {} of {} bytes",
        stats.dropped_bytes,
        split.stream.len()
    );
    if split.stream.last() == Some(&Cobs::DELIMITER) {
        assert!(decoder.is_idle(), "not idle after a delimiter");
    }

    for packet in frames.iter().flatten() {
        let encoded = round_trip::<Cobs, _>(packet, CobsDecoder::<MAX>::new());
        let (last, body) = encoded.split_last().expect("an encoded frame is never empty");
        assert_eq!(*last, Cobs::DELIMITER, "frame not ended by the delimiter");
        assert!(!body.contains(&Cobs::DELIMITER), "a zero byte inside a COBS frame");
    }
});
