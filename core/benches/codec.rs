//! Codec throughput: encode + decode with CRC, per framing, beside CRC-32C alone and memcpy.
//!
//! Each `codec/<framing>/<size>` iteration does what a sender and a receiver do for one DATA
//! packet of `size` payload bytes: `Repr::emit` (header, payload copy, CRC-32C), the framing's
//! `encode`, then the decoder's `decode` (which checks the CRC and parses the packet).
//! `codec/crc32c/<size>` is `wire::crc32c` over the payload alone and `codec/memcpy/<size>` one
//! `copy_from_slice` of it: the references the design's targets are stated against. Throughput
//! is in bytes of payload. Sizes: 64 B, 1 KiB and 65535 B (the largest payload a packet holds).
//!
//! The payload is pseudo-random bytes (xorshift), so about one byte in 256 is zero, which
//! matters to COBS. The decoders are sized for the largest packet and made once, outside the
//! timing loop.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p framelink-core --bench codec`

use core::hint::black_box;
use core::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use framelink_core::framing::{
    Cobs, CobsDecoder, Datagram, DatagramDecoder, Decoder, Encoder, LengthDelimited, LengthDelimitedDecoder,
};
use framelink_core::wire::{MAX_PACKET, MAX_PAYLOAD, Repr, SeqNumber, crc32c};

/// Payload sizes: 64 B, 1 KiB, and the largest payload (65535 B).
const SIZES: [usize; 3] = [64, 1024, MAX_PAYLOAD];

/// Pseudo-random bytes (xorshift64).
fn payload(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// One packet through `E` and back through `decoder`; returns the decoded payload's length.
///
/// `packet` and `wire` are scratch buffers for the emitted packet and its framing.
fn round_trip<E: Encoder, D: Decoder>(
    payload: &[u8],
    packet: &mut [u8],
    wire: &mut [u8],
    decoder: &mut D,
) -> usize {
    let repr = Repr::data(SeqNumber(7), Some(SeqNumber(3)), false, payload);
    let n = repr.emit(packet).expect("packet buffer holds the largest packet");
    let m = E::encode(&packet[..n], wire).expect("wire buffer holds the largest frame");
    let decoded = decoder.decode(black_box(&wire[..m]));
    let frame = decoded.frame.expect("a whole frame was given").expect("the frame is valid");
    black_box(frame.payload).len()
}

/// Checks once, outside the timing, that the round trip gives back the payload.
fn check<E: Encoder, D: Decoder>(payload: &[u8], packet: &mut [u8], wire: &mut [u8], decoder: &mut D) {
    let repr = Repr::data(SeqNumber(7), Some(SeqNumber(3)), false, payload);
    let n = repr.emit(packet).expect("packet buffer holds the largest packet");
    let m = E::encode(&packet[..n], wire).expect("wire buffer holds the largest frame");
    let decoded = decoder.decode(&wire[..m]);
    assert_eq!(decoded.consumed, m);
    let frame = decoded.frame.expect("a whole frame was given").expect("the frame is valid");
    assert_eq!(frame, repr);
}

fn codec(c: &mut Criterion) {
    let mut packet = vec![0u8; MAX_PACKET];
    let mut wire = vec![0u8; Cobs::max_encoded_len(MAX_PACKET)];
    let mut copy = vec![0u8; MAX_PAYLOAD];
    let mut length_delimited = Box::new(LengthDelimitedDecoder::<MAX_PACKET>::new());
    let mut cobs = Box::new(CobsDecoder::<MAX_PACKET>::new());
    let mut datagram = DatagramDecoder::new(MAX_PACKET);

    let mut group = c.benchmark_group("codec");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    for size in SIZES {
        let data = payload(size);
        group.throughput(Throughput::Bytes(size as u64));

        check::<LengthDelimited, _>(&data, &mut packet, &mut wire, &mut *length_delimited);
        group.bench_with_input(BenchmarkId::new("length_delimited", size), &data, |b, data| {
            b.iter(|| {
                round_trip::<LengthDelimited, _>(
                    black_box(data),
                    &mut packet,
                    &mut wire,
                    &mut *length_delimited,
                )
            });
        });

        check::<Cobs, _>(&data, &mut packet, &mut wire, &mut *cobs);
        group.bench_with_input(BenchmarkId::new("cobs", size), &data, |b, data| {
            b.iter(|| round_trip::<Cobs, _>(black_box(data), &mut packet, &mut wire, &mut *cobs));
        });

        check::<Datagram, _>(&data, &mut packet, &mut wire, &mut datagram);
        group.bench_with_input(BenchmarkId::new("datagram", size), &data, |b, data| {
            b.iter(|| round_trip::<Datagram, _>(black_box(data), &mut packet, &mut wire, &mut datagram));
        });

        group.bench_with_input(BenchmarkId::new("crc32c", size), &data, |b, data| {
            b.iter(|| crc32c(black_box(data)));
        });

        group.bench_with_input(BenchmarkId::new("memcpy", size), &data, |b, data| {
            b.iter(|| {
                copy[..data.len()].copy_from_slice(black_box(data));
                black_box(&copy);
            });
        });
    }
    group.finish();

    let stats = [length_delimited.stats(), cobs.stats(), datagram.stats()];
    assert!(stats.iter().all(|s| s.errors == 0), "a decoder reported errors: {stats:?}");
}

criterion_group!(benches, codec);
criterion_main!(benches);
