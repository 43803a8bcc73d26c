//! Property tests of the wire format and the three framings, through the public API only.
//!
//! - `Repr` emit -> parse round trips for every packet type;
//! - every framing yields the packets that went in, in order and byte for byte, whatever the
//!   split of the stream into chunks (single bytes included), and its encoder refuses short
//!   buffers without writing; the stream decoders are checked with an inline buffer and with a
//!   `Vec` that grows;
//! - garbage never panics a decoder, every call makes progress, and the decoder recovers;
//! - length-delimited skips frames with a bad length or a corrupted body and stays in sync;
//! - COBS resynchronises after garbage, corruption, deletion and insertion, never hands over a
//!   packet that differs from one sent, and counts what it dropped;
//! - `SeqNumber` arithmetic is wrap-safe.

// Test binaries built with `defmt` (and a DEFMT_LOG level) need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use framelink_core::framing::datagram::session_tag;
use framelink_core::framing::{
    Cobs, CobsDecoder, Datagram, DatagramDecoder, DecodeError, Decoder, DecoderStats, Encoder,
    LengthDelimited, LengthDelimitedDecoder,
};
use framelink_core::wire::{
    AckPayload, ErrorPayload, HEADER_LEN, HelloPayload, MAX_PACKET, OVERHEAD, PacketType, PingPayload, Repr,
    RetryPayload, SeqNumber, VERSION,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// Owned packets and strategies

/// An owned copy of a [`Repr`], so that decoded packets outlive the decoder's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pkt {
    kind: PacketType,
    seq: SeqNumber,
    ack: Option<SeqNumber>,
    more: bool,
    payload: Vec<u8>,
}

impl Pkt {
    fn from_repr(repr: &Repr<'_>) -> Self {
        Self {
            kind: repr.kind,
            seq: repr.seq,
            ack: repr.ack,
            more: repr.more,
            payload: repr.payload.to_vec(),
        }
    }

    fn repr(&self) -> Repr<'_> {
        Repr { kind: self.kind, seq: self.seq, ack: self.ack, more: self.more, payload: &self.payload }
    }

    /// The packet's bytes, as `Repr::emit` writes them.
    fn emit(&self) -> Vec<u8> {
        let repr = self.repr();
        let mut buf = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut buf).expect("buffer_len is enough room");
        assert_eq!(n, buf.len());
        buf
    }
}

/// The smallest payload `Repr::parse` accepts for `kind`.
fn min_payload(kind: PacketType) -> usize {
    match kind {
        PacketType::Hello | PacketType::HelloAck => HelloPayload::LEN,
        PacketType::Ack => AckPayload::LEN,
        PacketType::Ping | PacketType::Pong => PingPayload::LEN,
        PacketType::Error => ErrorPayload::LEN,
        PacketType::Retry => RetryPayload::LEN,
        _ => 0,
    }
}

/// The longest payload `kind` may have, at most `max`.
fn max_payload(kind: PacketType, max: usize) -> usize {
    match kind {
        PacketType::Retry => RetryPayload::LEN,
        _ => max.max(min_payload(kind)),
    }
}

/// Payload bytes of `min..=max` bytes: uniform, rich in 0x00 and 0xFF, a run of one byte (long
/// COBS blocks, or all zeros), or runs of non-zero bytes around the COBS block size (253, 254,
/// 255 bytes) separated by single zeros.
fn payload(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![min..=(min + 16).min(max), min..=max];
    (len, 0..4u8).prop_flat_map(move |(n, mode)| match mode {
        0 => vec(any::<u8>(), n).boxed(),
        1 => vec(prop_oneof![4 => any::<u8>(), 1 => Just(0u8), 1 => Just(0xFFu8)], n).boxed(),
        2 => any::<u8>().prop_map(move |b| vec![b; n]).boxed(),
        _ => {
            let run = prop_oneof![0usize..3, 252usize..=256, 0usize..600];
            vec((run, 1..=255u8), 1..8)
                .prop_map(move |runs| {
                    let mut bytes = Vec::new();
                    for (len, b) in runs {
                        bytes.extend(core::iter::repeat_n(b, len));
                        bytes.push(0);
                    }
                    bytes.truncate(max);
                    bytes.resize(bytes.len().max(min), 0x5A);
                    bytes
                })
                .boxed()
        }
    })
}

/// Any valid packet with a payload of at most `max` bytes (more if the type needs it).
fn packet(max: usize) -> impl Strategy<Value = Pkt> {
    (select(PacketType::ALL.to_vec()), any::<u16>(), proptest::option::of(any::<u16>()), any::<bool>())
        .prop_flat_map(move |(kind, seq, ack, more)| {
            let min = min_payload(kind);
            payload(min, max_payload(kind, max)).prop_map(move |payload| Pkt {
                kind,
                seq: SeqNumber(seq),
                ack: ack.map(SeqNumber),
                more: more && kind == PacketType::Data,
                payload,
            })
        })
}

/// Chunk sizes, used in turn (cycled) to cut a stream: tiny, small and large pieces.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![1usize..4, 1usize..64, 1usize..5000], 1..8)
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// One frame a decoder handed back, and the stream offset just after the call that did.
#[derive(Debug)]
struct Out {
    end: usize,
    result: Result<Pkt, DecodeError>,
}

/// Feeds `stream` to `dec` cut into pieces of `chunks` bytes (cycled), calling `decode` until
/// each piece is used up. Checks that every call consumes at least one byte and no more than it
/// was given.
fn feed<D: Decoder>(dec: &mut D, stream: &[u8], chunks: &[usize], base: usize) -> Vec<Out> {
    let mut outs = Vec::new();
    let mut sizes = chunks.iter().copied().cycle();
    let mut pos = 0;
    while pos < stream.len() {
        let size = sizes.next().unwrap_or(1).max(1);
        let end = (pos + size).min(stream.len());
        let mut rest = &stream[pos..end];
        let mut at = base + pos;
        while !rest.is_empty() {
            let len = rest.len();
            let decoded = dec.decode(rest);
            let consumed = decoded.consumed;
            assert!(consumed > 0, "decode made no progress on {len} bytes");
            assert!(consumed <= len, "decode consumed {consumed} of {len} bytes");
            at += consumed;
            if let Some(frame) = decoded.frame {
                outs.push(Out { end: at, result: frame.map(|repr| Pkt::from_repr(&repr)) });
            }
            rest = &rest[consumed..];
        }
        pos = end;
    }
    outs
}

/// Encodes `packet` with `E`, checking the encoder's own contract on the way: the output fits in
/// `max_encoded_len`, and a buffer one byte shorter than the output is refused untouched.
fn encode<E: Encoder>(packet: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; E::max_encoded_len(packet.len())];
    let n = E::encode(packet, &mut out).expect("max_encoded_len is enough room");
    assert!(n <= out.len());
    out.truncate(n);
    let mut short = vec![0xEEu8; n - 1];
    assert!(E::encode(packet, &mut short).is_err(), "encoded into a buffer too small");
    assert!(short.iter().all(|&b| b == 0xEE), "a refused encode wrote bytes");
    out
}

/// Encodes every packet with `E` into one stream, after the framing's preamble; returns it and
/// the offset where each frame ends.
fn encode_all<E: Encoder>(sent: &[Pkt]) -> (Vec<u8>, Vec<usize>) {
    let mut stream = E::PREAMBLE.to_vec();
    let mut ends = Vec::new();
    for p in sent {
        stream.extend_from_slice(&encode::<E>(&p.emit()));
        ends.push(stream.len());
    }
    (stream, ends)
}

/// Checks that the decoder handed back exactly `sent`, in order and byte for byte, each as soon
/// as its last byte arrived.
fn assert_all_decoded(outs: &[Out], sent: &[Pkt], ends: &[usize], stats: DecoderStats) {
    assert_eq!(outs.len(), sent.len(), "frames out vs in: {outs:?}");
    for ((out, p), &end) in outs.iter().zip(sent).zip(ends) {
        let got = out.result.as_ref().expect("a valid frame was rejected");
        assert_eq!(got, p);
        assert_eq!(got.emit(), p.emit(), "decoded packet differs in its bytes");
        assert_eq!(out.end, end, "frame handed back at the wrong offset");
    }
    assert_eq!(stats.frames, sent.len() as u64);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.crc_errors, 0);
    assert_eq!(stats.dropped_bytes, 0);
}

/// The number of `Ok` and of `Err(BadCrc)` frames handed back.
fn tally(outs: &[Out]) -> (u64, u64, u64) {
    let ok = outs.iter().filter(|o| o.result.is_ok()).count() as u64;
    let crc = outs.iter().filter(|o| matches!(o.result, Err(DecodeError::BadCrc { .. }))).count();
    (ok, outs.len() as u64 - ok, crc as u64)
}

/// A byte stream for garbage: mostly uniform, sometimes rich in delimiters.
fn garbage(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..=max), vec(prop_oneof![6 => any::<u8>(), 1 => Just(0u8)], 0..=max),]
}

const SMALL: usize = 256;

/// Runs `$body` twice: with `$dec` a fresh `$decoder` of `$n` bytes with its inline buffer,
/// then with one whose storage is a `Vec` that starts empty and grows as frames need it.
macro_rules! with_each_storage {
    ($dec:ident = $decoder:ident<$n:tt>, $body:block) => {{
        {
            let mut $dec = Box::new($decoder::<{ $n }>::new());
            $body
        }
        {
            let mut $dec = Box::new($decoder::<{ $n }, Vec<u8>>::with_buffer(Vec::new()));
            $body
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// Wire format

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// emit writes exactly buffer_len bytes with the header laid out as specified, parse gives
    /// back the same Repr, emitting that again gives the same bytes, and a byte less or more is
    /// refused with the right error.
    #[test]
    fn repr_emit_parse_round_trip(p in packet(2048)) {
        let repr = p.repr();
        let len = repr.buffer_len();
        prop_assert_eq!(len, OVERHEAD + p.payload.len());
        let mut buf = vec![0xAAu8; len + 8];
        prop_assert_eq!(repr.emit(&mut buf), Ok(len));
        prop_assert!(buf[len..].iter().all(|&b| b == 0xAA), "emit wrote past the packet");
        prop_assert_eq!(buf[0], VERSION);
        prop_assert_eq!(buf[1], u8::from(p.kind));
        prop_assert_eq!(&buf[3..5], &p.seq.0.to_le_bytes());
        prop_assert_eq!(usize::from(u16::from_le_bytes([buf[7], buf[8]])), p.payload.len());
        prop_assert_eq!(&buf[HEADER_LEN..HEADER_LEN + p.payload.len()], &p.payload[..]);

        let parsed = Repr::parse(&buf[..len]);
        prop_assert_eq!(parsed, Ok(repr));
        let again = Pkt::from_repr(&parsed.unwrap()).emit();
        prop_assert_eq!(&again[..], &buf[..len]);

        prop_assert_eq!(
            Repr::parse(&buf[..len - 1]),
            Err(DecodeError::Truncated { len: len - 1, needed: if len - 1 < OVERHEAD { OVERHEAD } else { len } })
        );
        prop_assert_eq!(
            Repr::parse(&buf[..len + 1]),
            Err(DecodeError::TrailingBytes { len: len + 1, expected: len })
        );
        let mut small = vec![0x55u8; len - 1];
        prop_assert!(repr.emit(&mut small).is_err());
        prop_assert!(small.iter().all(|&b| b == 0x55), "a refused emit wrote bytes");

        // The MORE flag is DATA's alone: set on another type, it is sent but parsed as unset.
        let more = Repr { more: true, ..repr };
        prop_assert_eq!(more.emit(&mut buf), Ok(len));
        let parsed = Repr::parse(&buf[..len]);
        prop_assert_eq!(parsed, Ok(Repr { more: p.kind == PacketType::Data, ..repr }));
    }

    /// Any single byte changed anywhere in a packet is refused: by the CRC, or by the length
    /// check when the length field was hit.
    #[test]
    fn repr_any_changed_byte_is_refused(p in packet(512), at in any::<prop::sample::Index>(), xor in 1..=255u8) {
        let mut bytes = p.emit();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        let result = Repr::parse(&bytes);
        if (7..9).contains(&i) {
            prop_assert!(
                matches!(result, Err(DecodeError::Truncated { .. } | DecodeError::TrailingBytes { .. })),
                "{:?}", result
            );
        } else {
            prop_assert!(matches!(result, Err(DecodeError::BadCrc { .. })), "{:?}", result);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Going forward 1..32768 steps is "after", whatever the starting point, across the wrap.
    #[test]
    fn seq_forward_is_after(
        a in prop_oneof![any::<u16>(), 0u16..4, 65532u16..=65535, 32766u16..32770],
        d in prop_oneof![1u16..4, 32764u16..32768, 1u16..32768],
    ) {
        let a = SeqNumber(a);
        let b = a + d;
        prop_assert!(b > a);
        prop_assert!(a < b);
        prop_assert!(a != b);
        prop_assert_eq!(b.distance_from(a), d);
        prop_assert_eq!(b.diff(a), d as i16);
        prop_assert_eq!(a.diff(b), -(d as i16));
        let mut c = a;
        c += d;
        prop_assert_eq!(c, b);
        prop_assert_eq!(a + 0, a);
        prop_assert_eq!(a.partial_cmp(&a), Some(core::cmp::Ordering::Equal));
    }

    /// Exactly half the space apart: neither before nor after.
    #[test]
    fn seq_half_the_space_is_unordered(a in prop_oneof![any::<u16>(), 0u16..4, 65532u16..=65535]) {
        let a = SeqNumber(a);
        let b = a + 32768;
        prop_assert_eq!(a.partial_cmp(&b), None);
        prop_assert_eq!(b.partial_cmp(&a), None);
        prop_assert_eq!(b.distance_from(a), 32768);
    }
}

// ---------------------------------------------------------------------------------------------
// Any split of a clean stream

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Length-delimited: any split, and single bytes, yield the packets sent.
    #[test]
    fn length_delimited_any_split(sent in vec(packet(2048), 1..6), chunks in chunk_sizes()) {
        let (stream, ends) = encode_all::<LengthDelimited>(&sent);
        for (p, bytes) in sent.iter().zip(stream_frames(&stream, LengthDelimited::PREAMBLE.len(), &ends)) {
            prop_assert_eq!(bytes.len(), LengthDelimited::PREFIX_LEN + p.repr().buffer_len());
            prop_assert_eq!(&bytes[..4], &LengthDelimited::prefix(p.repr().buffer_len())[..]);
        }
        for chunks in [&chunks[..], &[1]] {
            with_each_storage!(dec = LengthDelimitedDecoder<4096>, {
                let outs = feed(&mut *dec, &stream, chunks, 0);
                assert_all_decoded(&outs, &sent, &ends, dec.stats());
                prop_assert!(dec.is_idle());
            });
        }
    }

    /// COBS: no 0x00 but the delimiter; any split, and single bytes, yield the packets sent.
    #[test]
    fn cobs_any_split(sent in vec(packet(2048), 1..6), chunks in chunk_sizes()) {
        let (stream, ends) = encode_all::<Cobs>(&sent);
        for bytes in stream_frames(&stream, Cobs::PREAMBLE.len(), &ends) {
            prop_assert_eq!(bytes.iter().position(|&b| b == Cobs::DELIMITER), Some(bytes.len() - 1));
        }
        for chunks in [&chunks[..], &[1]] {
            with_each_storage!(dec = CobsDecoder<4096>, {
                let outs = feed(&mut *dec, &stream, chunks, 0);
                assert_all_decoded(&outs, &sent, &ends, dec.stats());
                prop_assert!(dec.is_idle());
                prop_assert_eq!(dec.stats().resyncs, 0);
            });
        }
    }

    /// Datagram: one packet per datagram, behind its tag; a cut or oversized datagram is refused
    /// and counted.
    #[test]
    fn datagram_round_trip(sent in vec(packet(2048), 1..6), cut in any::<prop::sample::Index>(), tag: u32) {
        let mut dec = DatagramDecoder::new(MAX_PACKET);
        for p in &sent {
            let bytes = p.emit();
            let datagram = encode::<Datagram>(&bytes);
            prop_assert_eq!(&datagram[..4], &[0; 4]);
            prop_assert_eq!(&datagram[4..], &bytes[..]);
            let mut tagged = vec![0u8; datagram.len()];
            prop_assert_eq!(Datagram::encode_tagged(tag, &bytes, &mut tagged), Ok(datagram.len()));
            prop_assert_eq!(session_tag(&tagged), Some(tag));
            prop_assert_eq!(&tagged[4..], &bytes[..]);
            let decoded = dec.decode(&datagram);
            prop_assert_eq!(decoded.consumed, datagram.len());
            prop_assert_eq!(decoded.frame.map(|f| f.map(|r| Pkt::from_repr(&r))), Some(Ok(p.clone())));
        }
        prop_assert_eq!(dec.stats().frames, sent.len() as u64);
        prop_assert_eq!(dec.stats().errors, 0);

        let bytes = sent[0].emit();
        let datagram = encode::<Datagram>(&bytes);
        let short = cut.index(datagram.len());
        let decoded = dec.decode(&datagram[..short]);
        prop_assert_eq!(decoded.consumed, short);
        let truncated = matches!(decoded.frame, Some(Err(DecodeError::Truncated { .. })));
        prop_assert!(truncated, "a cut datagram was not refused as truncated");
        let mut small = DatagramDecoder::new(bytes.len() - 1);
        let decoded = small.decode(&datagram);
        prop_assert_eq!(
            decoded.frame.map(|f| f.map(|r| Pkt::from_repr(&r))),
            Some(Err(DecodeError::TooLong { len: bytes.len(), max: bytes.len() - 1 }))
        );
        prop_assert_eq!(dec.stats().errors, 1);
        prop_assert_eq!(dec.stats().dropped_bytes, short as u64);
        prop_assert_eq!(small.stats().dropped_bytes, datagram.len() as u64);
    }
}

/// The frames of a stream, cut at `ends`, the first starting at `first`.
fn stream_frames<'a>(
    stream: &'a [u8],
    first: usize,
    ends: &'a [usize],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    core::iter::once(first)
        .chain(ends.iter().copied())
        .zip(ends)
        .map(move |(start, &end)| &stream[start..end])
}

// ---------------------------------------------------------------------------------------------
// Garbage

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Length-delimited: garbage never panics it and every call makes progress.
    #[test]
    fn length_delimited_garbage_never_panics(junk in garbage(3000), chunks in chunk_sizes()) {
        with_each_storage!(dec = LengthDelimitedDecoder<SMALL>, {
            let outs = feed(&mut *dec, &junk, &chunks, 0);
            let (ok, err, crc) = tally(&outs);
            let stats = dec.stats();
            prop_assert_eq!((stats.frames, stats.errors, stats.crc_errors), (ok, err, crc));
        });
    }

    /// COBS: garbage (with a lone 0x00 here and there, or none) never panics it, every call
    /// makes progress, every garbage byte but the delimiters is counted as dropped, and after a
    /// 0x00 a valid frame decodes.
    #[test]
    fn cobs_garbage_then_delimiter_then_a_frame(
        junk in garbage(1500),
        tail in packet(200),
        chunks in chunk_sizes(),
    ) {
        with_each_storage!(dec = CobsDecoder<SMALL>, {
            let outs = feed(&mut *dec, &junk, &chunks, 0);
            let mut rest = vec![Cobs::DELIMITER];
            rest.extend_from_slice(&encode::<Cobs>(&tail.emit()));
            let mut tail_outs = feed(&mut *dec, &rest, &chunks, junk.len());
            let last = tail_outs.pop().expect("the frame after garbage was not decoded");
            prop_assert_eq!(last.result, Ok(tail.clone()));
            prop_assert_eq!(last.end, junk.len() + rest.len());
            prop_assert!(dec.is_idle());

            let all: Vec<Out> = outs.into_iter().chain(tail_outs).collect();
            let (ok, err, crc) = tally(&all);
            let stats = dec.stats();
            prop_assert_eq!((stats.frames, stats.errors, stats.crc_errors), (ok + 1, err, crc));
            // One result per non-empty stretch between delimiters, however long (an overlong one is
            // refused once and skipped to its delimiter).
            let segments = junk.split(|&b| b == Cobs::DELIMITER).filter(|s| !s.is_empty()).count();
            prop_assert_eq!(ok + err, segments as u64);
            if ok == 0 {
                let nonzero = junk.iter().filter(|&&b| b != 0).count() as u64;
                prop_assert_eq!(stats.dropped_bytes, nonzero);
                prop_assert_eq!(stats.resyncs > 0, nonzero > 0);
            }
        });
    }

    /// Datagram: garbage never panics it, is consumed whole, and a valid datagram decodes after.
    #[test]
    fn datagram_garbage_then_a_datagram(junk in garbage(300), p in packet(200)) {
        let mut dec = DatagramDecoder::new(SMALL);
        let decoded = dec.decode(&junk);
        prop_assert_eq!(decoded.consumed, junk.len());
        prop_assert!(decoded.frame.is_some());
        let bytes = encode::<Datagram>(&p.emit());
        let decoded = dec.decode(&bytes);
        prop_assert_eq!(decoded.frame.map(|f| f.map(|r| Pkt::from_repr(&r))), Some(Ok(p)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A COBS frame cut short (then a 0x00): refused as BadCobs if the cut falls inside a block,
    /// otherwise by the packet checks; never as a packet. The frame after it decodes.
    #[test]
    fn cobs_cut_frame_is_refused(p in packet(600), next in packet(100), cut in any::<prop::sample::Index>()) {
        let enc = encode::<Cobs>(&p.emit());
        let body = &enc[..enc.len() - 1];
        let keep = 1 + cut.index(body.len() - 1); // 1..body.len(): at least the first code byte
        // Does the cut fall inside a block? Walk the code bytes.
        let mut code_at = 0;
        while code_at + usize::from(body[code_at]) < keep {
            code_at += usize::from(body[code_at]);
        }
        let inside_block = code_at + usize::from(body[code_at]) > keep;

        let mut stream = body[..keep].to_vec();
        stream.push(Cobs::DELIMITER);
        stream.extend_from_slice(&encode::<Cobs>(&next.emit()));
        with_each_storage!(dec = CobsDecoder<1024>, {
            let outs = feed(&mut *dec, &stream, &[stream.len()], 0);
            prop_assert_eq!(outs.len(), 2, "{:?}", outs);
            prop_assert_eq!(outs[0].end, keep + 1);
            if inside_block {
                prop_assert_eq!(&outs[0].result, &Err(DecodeError::BadCobs));
            } else {
                prop_assert!(outs[0].result.is_err(), "a cut frame decoded: {:?}", outs[0].result);
                prop_assert!(outs[0].result != Err(DecodeError::BadCobs));
            }
            prop_assert_eq!(&outs[1].result, &Ok(next.clone()));
            prop_assert_eq!(dec.stats().dropped_bytes, keep as u64);
            prop_assert!(dec.is_idle());
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Length-delimited: bad frames are skipped, the stream stays in sync

#[derive(Clone, Debug)]
enum LdItem {
    /// A valid packet.
    Valid(Pkt),
    /// A prefix announcing `len` (under 13 or over the limit), then `len` bytes.
    BadLen(u32, u8),
    /// A valid packet with one byte changed (the prefix left intact).
    Corrupt(Pkt, prop::sample::Index, u8),
}

/// What a length-delimited frame must decode to.
#[derive(Debug)]
enum Want {
    Packet(Pkt),
    Error(DecodeError),
    /// Any `BadCrc`.
    BadCrc,
    /// `Truncated` or `TrailingBytes`: the packet's own length field was hit.
    BadLength,
}

fn ld_item() -> impl Strategy<Value = LdItem> {
    prop_oneof![
        3 => packet(200).prop_map(LdItem::Valid),
        1 => (prop_oneof![0u32..13, (SMALL as u32 + 1)..3000], any::<u8>())
            .prop_map(|(len, fill)| LdItem::BadLen(len, fill)),
        1 => (packet(200), any::<prop::sample::Index>(), 1..=255u8)
            .prop_map(|(p, at, xor)| LdItem::Corrupt(p, at, xor)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A too-short or too-long length is reported as soon as the prefix is read and the frame's
    /// bytes are skipped; a corrupted body is refused (bad CRC, or bad length if the packet's
    /// length field was hit); every valid frame around them decodes, in any split.
    #[test]
    fn length_delimited_bad_frames_are_skipped(items in vec(ld_item(), 1..10), chunks in chunk_sizes()) {
        let mut stream = Vec::new();
        // What each item must yield, and where: the offset just after the call that yields it.
        let mut expect: Vec<(Want, usize)> = Vec::new();
        let mut dropped = 0u64;
        let mut crc_errors = 0u64;
        for item in &items {
            let start = stream.len();
            match item {
                LdItem::Valid(p) => {
                    stream.extend_from_slice(&encode::<LengthDelimited>(&p.emit()));
                    expect.push((Want::Packet(p.clone()), stream.len()));
                }
                LdItem::BadLen(len, fill) => {
                    let len_usize = *len as usize;
                    stream.extend_from_slice(&len.to_le_bytes());
                    stream.extend(core::iter::repeat_n(*fill, len_usize));
                    let err = if len_usize > SMALL {
                        DecodeError::TooLong { len: len_usize, max: SMALL }
                    } else {
                        DecodeError::Truncated { len: len_usize, needed: OVERHEAD }
                    };
                    expect.push((Want::Error(err), start + LengthDelimited::PREFIX_LEN));
                    dropped += u64::from(*len);
                }
                LdItem::Corrupt(p, at, xor) => {
                    let mut frame = encode::<LengthDelimited>(&p.emit());
                    let i = LengthDelimited::PREFIX_LEN + at.index(frame.len() - LengthDelimited::PREFIX_LEN);
                    frame[i] ^= xor;
                    stream.extend_from_slice(&frame);
                    let want = if (7..9).contains(&(i - LengthDelimited::PREFIX_LEN)) {
                        Want::BadLength
                    } else {
                        crc_errors += 1;
                        Want::BadCrc
                    };
                    expect.push((want, stream.len()));
                    dropped += (frame.len() - LengthDelimited::PREFIX_LEN) as u64;
                }
            }
        }
        for chunks in [&chunks[..], &[1]] {
            with_each_storage!(dec = LengthDelimitedDecoder<SMALL>, {
                let outs = feed(&mut *dec, &stream, chunks, 0);
                prop_assert_eq!(outs.len(), expect.len(), "{:?}", outs);
                for (out, (want, end)) in outs.iter().zip(&expect) {
                    prop_assert_eq!(out.end, *end, "{:?} handed back at the wrong offset", out.result);
                    let got = &out.result;
                    match want {
                        Want::Packet(p) => prop_assert_eq!(got, &Ok(p.clone())),
                        Want::Error(err) => prop_assert_eq!(got, &Err(*err)),
                        Want::BadCrc => {
                            prop_assert!(matches!(got, Err(DecodeError::BadCrc { .. })), "{:?}", got);
                        }
                        Want::BadLength => prop_assert!(
                            matches!(got, Err(DecodeError::Truncated { .. } | DecodeError::TrailingBytes { .. })),
                            "{:?}", got
                        ),
                    }
                }
                let stats = dec.stats();
                let valid = items.iter().filter(|i| matches!(i, LdItem::Valid(_))).count() as u64;
                prop_assert_eq!(stats.frames, valid);
                prop_assert_eq!(stats.errors, items.len() as u64 - valid);
                prop_assert_eq!(stats.crc_errors, crc_errors);
                prop_assert_eq!(stats.dropped_bytes, dropped);
                prop_assert!(dec.is_idle());
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// COBS: resynchronisation after damage

#[derive(Clone, Debug)]
enum Damage {
    /// Sent as is.
    None,
    /// A garbage frame (these bytes, then a 0x00) goes before the frame; the frame is intact.
    GarbageFrame(Vec<u8>),
    /// Garbage glued to the front of the frame, no delimiter between.
    Glued(Vec<u8>),
    /// One byte of the encoded frame (delimiter included) changed.
    Flip(prop::sample::Index, u8),
    /// One byte of the encoded frame (delimiter included) deleted.
    Delete(prop::sample::Index),
    /// One byte inserted before a byte of the encoded frame (at the latest, the delimiter).
    Insert(prop::sample::Index, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => Just(Damage::None),
        1 => garbage(64).prop_map(Damage::GarbageFrame),
        1 => vec(any::<u8>(), 1..32).prop_map(Damage::Glued),
        1 => (any::<prop::sample::Index>(), 1..=255u8).prop_map(|(at, xor)| Damage::Flip(at, xor)),
        1 => any::<prop::sample::Index>().prop_map(Damage::Delete),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, b)| Damage::Insert(at, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Frames with garbage between them and single-byte damage inside them, in any split:
    /// - the packets that come out are the sent ones, in order, a subsequence that holds every
    ///   frame that arrived intact (its own bytes, after a 0x00);
    /// - no packet differs from one sent (the CRC catches the damaged ones);
    /// - the counters match: frames, errors, CRC errors, and dropped bytes equal to every
    ///   non-delimiter byte that was not part of a decoded frame.
    #[test]
    fn cobs_resynchronises_after_damage(
        frames in vec((packet(600), damage()), 1..8),
        chunks in chunk_sizes(),
    ) {
        let mut stream: Vec<u8> = Vec::new();
        let mut intact = Vec::new();
        let mut garbage_bytes = 0;
        for (p, damage) in &frames {
            let mut enc = encode::<Cobs>(&p.emit());
            let n = enc.len();
            match damage {
                Damage::None => {}
                Damage::GarbageFrame(g) => {
                    stream.extend_from_slice(g);
                    stream.push(Cobs::DELIMITER);
                    garbage_bytes += g.iter().filter(|&&b| b != 0).count();
                }
                Damage::Glued(g) => {
                    stream.extend_from_slice(g);
                    garbage_bytes += g.iter().filter(|&&b| b != 0).count();
                }
                Damage::Flip(at, xor) => enc[at.index(n)] ^= xor,
                Damage::Delete(at) => {
                    enc.remove(at.index(n));
                }
                Damage::Insert(at, b) => enc.insert(at.index(n), *b),
            }
            let after_delimiter = stream.last().is_none_or(|&b| b == Cobs::DELIMITER);
            intact.push(after_delimiter && matches!(damage, Damage::None | Damage::GarbageFrame(_)));
            stream.extend_from_slice(&enc);
        }
        // A final delimiter, as a sender flushing the line would write: the last frame ends
        // even if its own delimiter was lost.
        stream.push(Cobs::DELIMITER);

        for chunks in [&chunks[..], &[1]] {
            with_each_storage!(dec = CobsDecoder<MAX_PACKET>, {
                let outs = feed(&mut *dec, &stream, chunks, 0);

                // Ok packets: an in-order subsequence of those sent, skipping only damaged ones.
                let mut next = 0;
                let mut ok_bytes = 0;
                for out in &outs {
                    // Every frame ends at a delimiter (the decoder's buffer cannot overflow here).
                    prop_assert_eq!(stream[out.end - 1], Cobs::DELIMITER);
                    let segment_start = stream[..out.end - 1]
                        .iter()
                        .rposition(|&b| b == Cobs::DELIMITER)
                        .map_or(0, |i| i + 1);
                    let Ok(got) = &out.result else { continue };
                    ok_bytes += out.end - 1 - segment_start;
                    let at = frames[next..].iter().position(|(p, _)| p == got);
                    prop_assert!(at.is_some(), "a packet that was never sent, or out of order: {:?}", got);
                    let at = next + at.unwrap();
                    prop_assert!(
                        intact[next..at].iter().all(|&i| !i),
                        "intact frames {:?} were lost", (next..at).filter(|&k| intact[k]).collect::<Vec<_>>()
                    );
                    next = at + 1;
                }
                prop_assert!(
                    intact[next..].iter().all(|&i| !i),
                    "intact frames after the last decoded one were lost"
                );

                let (ok, err, crc) = tally(&outs);
                let stats = dec.stats();
                prop_assert_eq!((stats.frames, stats.errors, stats.crc_errors), (ok, err, crc));
                let nonzero = stream.iter().filter(|&&b| b != 0).count();
                prop_assert_eq!(stats.dropped_bytes, (nonzero - ok_bytes) as u64);
                prop_assert_eq!(stats.resyncs > 0, stats.errors > 0);
                if garbage_bytes > 0 {
                    prop_assert!(stats.dropped_bytes > 0);
                    prop_assert!(stats.errors > 0);
                }
                prop_assert!(dec.is_idle());
            });
        }
    }
}
