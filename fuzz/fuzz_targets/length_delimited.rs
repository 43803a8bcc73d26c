//! `LengthDelimitedDecoder` on arbitrary bytes in arbitrary chunks.
//!
//! Input: byte 0 modulo 8 = number of chunk-size bytes that follow, then the stream (see
//! `framelink_fuzz::Split`). Invariants: no panic; every `decode` consumes at most its input
//! and at least one byte of a non-empty input; chunked and one-piece decoding give the same
//! frames; the counters match the frames; every packet re-encodes (`Repr::emit`, then
//! `LengthDelimited::encode`) and decodes to the same `Repr`; a decoder whose storage is a
//! `Vec` (growing as frames need it) gives exactly the frames of one with an inline array.
#![no_main]

use framelink_core::framing::{LengthDelimited, LengthDelimitedDecoder};
use framelink_fuzz::check_stream_decoder;
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer meets `TooLong` and skipping often.
const MAX: usize = 512;

fuzz_target!(|input: &[u8]| {
    let frames = check_stream_decoder::<LengthDelimited, _>(input, LengthDelimitedDecoder::<MAX>::new);
    let growable = check_stream_decoder::<LengthDelimited, _>(input, || {
        LengthDelimitedDecoder::<MAX, Vec<u8>>::with_buffer(Vec::new())
    });
    assert_eq!(growable, frames, "the storage changed the frames");
});
