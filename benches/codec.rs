//! Codec throughput: framelink's framings beside the codecs people would use instead, CRC-32C
//! alone and memcpy, in one run.
//!
//! Every row is `codec/<method>/<size>`, in bytes of payload per second, for payloads of 64 B,
//! 1 KiB and 65535 B (the largest a packet holds). An iteration does what a sender and a
//! receiver do for one message:
//!
//! | method | encode | decode |
//! |---|---|---|
//! | `framelink_length_delimited` | `LengthDelimited::emit`: header, payload copy, CRC-32C, prefix | decoder: CRC check and parse, in place |
//! | `framelink_datagram` | `Datagram::emit` (the packet alone) | decoder: CRC check and parse |
//! | `framelink_cobs` | emit into a scratch packet, COBS-encode it | decoder: COBS into its buffer, CRC check and parse |
//! | `tokio_length_delimited` | tokio-util `LengthDelimitedCodec` from a slice (one copy) | `decode` (split, no copy) |
//! | `tokio_length_delimited_crc32c` | the same, then a `crc32c` of the payload after it | the same, then the CRC checked |
//! | `cobs` | the `cobs` crate (by postcard's author) | `cobs::decode` |
//! | `corncobs` | `corncobs::encode_buf` | `corncobs::decode_buf` |
//! | `crc32c_framelink` | `wire::crc32c`: the `crc-fast` crate (carry-less multiply folding and CRC instructions, chosen at run time) | |
//! | `crc32c_hardware` | the `crc32c` crate over the payload (SSE4.2 / ARMv8 CRC when the CPU has it) | |
//! | `crc32c_portable` | `wire::crc32c_portable` (the `crc` crate's slice-by-16 table) | |
//! | `memcpy` | one `copy_from_slice` of the payload | |
//!
//! framelink's own CRC is `crc32c_framelink` here: the root package turns `hw-crc` on through
//! framelink-std. The peers carry no header and (but for the `_crc32c` row) no checksum, so they
//! do less work per message than framelink. The payload is pseudo-random bytes (xorshift):
//! about one byte in 256 is zero, which matters to COBS. Buffers are made once, outside the
//! timing loop, and every method's round trip is checked once before it is timed.
//!
//! `cargo bench --bench codec` (add `-- --quick` for a rough pass); results land in
//! `target/criterion/codec/`.

use core::hint::black_box;
use core::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use framelink_core::framing::{
    Cobs, CobsDecoder, Datagram, DatagramDecoder, Decoder, Encoder, LengthDelimited, LengthDelimitedDecoder,
};
use framelink_core::wire::{MAX_PACKET, MAX_PAYLOAD, Repr, SeqNumber, crc32c, crc32c_portable};
use tokio_util::codec::{Decoder as _, Encoder as _, LengthDelimitedCodec};

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

/// Buffers shared by the framelink rows.
struct Framelink {
    scratch: Vec<u8>,
    wire: Vec<u8>,
    length_delimited: Box<LengthDelimitedDecoder<MAX_PACKET>>,
    cobs: Box<CobsDecoder<MAX_PACKET>>,
    datagram: DatagramDecoder,
}

impl Framelink {
    fn new() -> Self {
        Self {
            scratch: vec![0; MAX_PACKET],
            wire: vec![0; Cobs::max_encoded_len(MAX_PACKET)],
            length_delimited: Box::new(LengthDelimitedDecoder::new()),
            cobs: Box::new(CobsDecoder::new()),
            datagram: DatagramDecoder::new(MAX_PACKET),
        }
    }

    fn check(&self) {
        let stats = [self.length_delimited.stats(), self.cobs.stats(), self.datagram.stats()];
        assert!(stats.iter().all(|s| s.errors == 0), "a decoder reported errors: {stats:?}");
    }
}

/// One DATA packet through framing `E` and back through `decoder`; the decoded payload.
fn framelink_round_trip<'a, E: Encoder, D: Decoder>(
    payload: &[u8],
    scratch: &mut [u8],
    wire: &'a mut [u8],
    decoder: &'a mut D,
) -> &'a [u8] {
    let repr = Repr::data(SeqNumber(7), Some(SeqNumber(3)), false, payload);
    let n = E::emit(&repr, scratch, wire).expect("the wire buffer holds the largest frame");
    let decoded = decoder.decode(black_box(&wire[..n]));
    assert_eq!(decoded.consumed, n);
    decoded.frame.expect("a whole frame was given").expect("the frame is valid").payload
}

/// tokio-util's codec, optionally with a CRC-32C of the payload after it inside the frame
/// (the encoder's length adjustment counts those 4 bytes); the decoded payload's length.
fn tokio_round_trip(
    payload: &[u8],
    with_crc: bool,
    encoder: &mut LengthDelimitedCodec,
    decoder: &mut LengthDelimitedCodec,
    buf: &mut BytesMut,
) -> usize {
    encoder.encode(payload, buf).expect("encodes");
    if with_crc {
        buf.put_u32_le(crc32c::crc32c(payload));
    }
    let mut frame = decoder.decode(black_box(buf)).expect("decodes").expect("a whole frame");
    if with_crc {
        let body = frame.len() - 4;
        let crc = (&frame[body..]).get_u32_le();
        assert!(crc == crc32c::crc32c(&frame[..body]), "CRC mismatch");
        frame.truncate(body);
    }
    black_box(&frame).len()
}

fn tokio_codecs(with_crc: bool) -> (LengthDelimitedCodec, LengthDelimitedCodec) {
    let encoder = LengthDelimitedCodec::builder()
        .little_endian()
        .length_adjustment(if with_crc { -4 } else { 0 })
        .max_frame_length(1 << 20)
        .new_codec();
    let decoder = LengthDelimitedCodec::builder().little_endian().max_frame_length(1 << 20).new_codec();
    (encoder, decoder)
}

fn framelink_rows(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    data: &[u8],
    f: &mut Framelink,
) {
    let size = data.len();
    let Framelink { scratch, wire, length_delimited, cobs, datagram } = f;
    macro_rules! row {
        ($name:literal, $framing:ty, $decoder:expr) => {
            let back = framelink_round_trip::<$framing, _>(data, scratch, wire, $decoder);
            assert_eq!(back, data, $name);
            group.bench_with_input(BenchmarkId::new($name, size), data, |b, data| {
                b.iter(|| {
                    framelink_round_trip::<$framing, _>(black_box(data), scratch, wire, $decoder).len()
                });
            });
        };
    }
    row!("framelink_length_delimited", LengthDelimited, &mut **length_delimited);
    row!("framelink_datagram", Datagram, datagram);
    row!("framelink_cobs", Cobs, &mut **cobs);
}

fn peer_rows(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, data: &[u8]) {
    let size = data.len();
    let mut buf = BytesMut::with_capacity(MAX_PACKET + 16);
    for (name, with_crc) in [("tokio_length_delimited", false), ("tokio_length_delimited_crc32c", true)] {
        let (mut encoder, mut decoder) = tokio_codecs(with_crc);
        assert_eq!(tokio_round_trip(data, with_crc, &mut encoder, &mut decoder, &mut buf), size);
        group.bench_with_input(BenchmarkId::new(name, size), data, |b, data| {
            b.iter(|| tokio_round_trip(black_box(data), with_crc, &mut encoder, &mut decoder, &mut buf));
        });
    }

    let mut encoded = vec![0u8; corncobs::max_encoded_len(size) + 2];
    let mut decoded = vec![0u8; encoded.len()];
    let cobs_round_trip = |data: &[u8], encoded: &mut [u8], decoded: &mut [u8]| {
        let n = cobs::encode(data, encoded);
        let report = cobs::decode(black_box(&encoded[..n]), decoded).expect("valid COBS");
        report.frame_size()
    };
    assert_eq!(cobs_round_trip(data, &mut encoded, &mut decoded), size);
    assert_eq!(&decoded[..size], data);
    group.bench_with_input(BenchmarkId::new("cobs", size), data, |b, data| {
        b.iter(|| cobs_round_trip(black_box(data), &mut encoded, &mut decoded));
    });

    let corncobs_round_trip = |data: &[u8], encoded: &mut [u8], decoded: &mut [u8]| {
        let n = corncobs::encode_buf(data, encoded);
        corncobs::decode_buf(black_box(&encoded[..n]), decoded).expect("valid COBS")
    };
    decoded.fill(0);
    assert_eq!(corncobs_round_trip(data, &mut encoded, &mut decoded), size);
    assert_eq!(&decoded[..size], data);
    group.bench_with_input(BenchmarkId::new("corncobs", size), data, |b, data| {
        b.iter(|| corncobs_round_trip(black_box(data), &mut encoded, &mut decoded));
    });
}

fn reference_rows(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, data: &[u8]) {
    let size = data.len();
    assert_eq!(crc32c::crc32c(data), crc32c_portable(data));
    assert_eq!(crc32c(data), crc32c_portable(data));
    group.bench_with_input(BenchmarkId::new("crc32c_framelink", size), data, |b, data| {
        b.iter(|| crc32c(black_box(data)));
    });
    group.bench_with_input(BenchmarkId::new("crc32c_hardware", size), data, |b, data| {
        b.iter(|| crc32c::crc32c(black_box(data)));
    });
    group.bench_with_input(BenchmarkId::new("crc32c_portable", size), data, |b, data| {
        b.iter(|| crc32c_portable(black_box(data)));
    });
    let mut copy = vec![0u8; size];
    group.bench_with_input(BenchmarkId::new("memcpy", size), data, |b, data| {
        b.iter(|| {
            copy.copy_from_slice(black_box(data));
            black_box(&copy);
        });
    });
}

fn codec(c: &mut Criterion) {
    let mut framelink = Framelink::new();
    let mut group = c.benchmark_group("codec");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for size in SIZES {
        let data = payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        framelink_rows(&mut group, &data, &mut framelink);
        peer_rows(&mut group, &data);
        reference_rows(&mut group, &data);
    }
    group.finish();
    framelink.check();
}

criterion_group!(benches, codec);
criterion_main!(benches);
