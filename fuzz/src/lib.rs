//! What the fuzz targets share: splitting an input into chunks, an owned copy of a packet, and
//! the checks every decoder target runs (progress, chunk-split invariance, counters, and the
//! emit → encode → decode round trip of every packet that comes out).
//!
//! Each check panics with a message saying which invariant broke; libFuzzer reports the panic
//! as a crash and saves the input under `fuzz/artifacts/<target>/`.

use framelink_core::framing::{DecodeError, Decoder, DecoderStats, Encoder};
use framelink_core::wire::{BufferTooSmall, PacketType, Repr, SeqNumber};

/// A packet copied out of a decoder's buffer, so it outlives the next `decode` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRepr {
    /// The packet type.
    pub kind: PacketType,
    /// The sequence number.
    pub seq: SeqNumber,
    /// The acknowledgement, if the ACK flag was set.
    pub ack: Option<SeqNumber>,
    /// The MORE flag (DATA only).
    pub more: bool,
    /// The payload.
    pub payload: Vec<u8>,
}

impl OwnedRepr {
    /// Copies `repr`.
    pub fn of(repr: &Repr<'_>) -> Self {
        Self {
            kind: repr.kind,
            seq: repr.seq,
            ack: repr.ack,
            more: repr.more,
            payload: repr.payload.to_vec(),
        }
    }

    /// The borrowed form again.
    pub fn as_repr(&self) -> Repr<'_> {
        Repr { kind: self.kind, seq: self.seq, ack: self.ack, more: self.more, payload: &self.payload }
    }
}

/// What one frame decoded to.
pub type Frame = Result<OwnedRepr, DecodeError>;

/// Fuzz input cut into a list of chunk sizes and the byte stream they split.
///
/// Byte 0 modulo 8 is how many size bytes follow; the stream is the rest. The sizes are used in
/// turn, over and over; a size byte of 0 means "the whole rest of the stream". With no size
/// bytes the stream is one chunk.
pub struct Split<'a> {
    sizes: &'a [u8],
    /// The bytes to decode.
    pub stream: &'a [u8],
}

impl<'a> Split<'a> {
    /// Cuts `input` as described on the type.
    pub fn new(input: &'a [u8]) -> Self {
        let Some((&first, rest)) = input.split_first() else { return Self { sizes: &[], stream: &[] } };
        let n = usize::from(first % 8).min(rest.len());
        let (sizes, stream) = rest.split_at(n);
        Self { sizes, stream }
    }

    /// The chunks, in order; together they are exactly the stream.
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = self.stream;
        let mut i = 0;
        while !rest.is_empty() {
            let size = match self.sizes.get(i % self.sizes.len().max(1)) {
                None | Some(0) => rest.len(),
                Some(&s) => usize::from(s).min(rest.len()),
            };
            let (chunk, tail) = rest.split_at(size);
            out.push(chunk);
            rest = tail;
            i += 1;
        }
        out
    }
}

/// Feeds `chunks` to `decoder` the way a driver does (call again with the rest until a chunk is
/// used up) and collects the frames. Checks on every call: `consumed <= input.len()`, and
/// `consumed > 0` when the input is not empty (progress).
pub fn feed<D: Decoder>(decoder: &mut D, chunks: &[&[u8]]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for chunk in chunks {
        let mut rest: &[u8] = chunk;
        while !rest.is_empty() {
            let decoded = decoder.decode(rest);
            let consumed = decoded.consumed;
            assert!(consumed <= rest.len(), "consumed {consumed} of {} bytes", rest.len());
            assert!(consumed > 0, "no progress on {} bytes", rest.len());
            if let Some(frame) = decoded.frame {
                frames.push(frame.map(|repr| OwnedRepr::of(&repr)));
            }
            rest = &rest[consumed..];
        }
    }
    frames
}

/// A stream decoder given an empty input consumes nothing and yields nothing.
pub fn check_empty_input<D: Decoder>(decoder: &mut D) {
    let decoded = decoder.decode(&[]);
    assert_eq!(decoded.consumed, 0, "consumed bytes of an empty input");
    assert!(decoded.frame.is_none(), "a frame out of an empty input");
}

/// The frames with what may depend on how the input was split blanked out: the length a
/// [`DecodeError::TooLong`] reports is "as far as it was read", which for COBS depends on where
/// the chunk boundaries fell.
pub fn split_independent(frames: &[Frame]) -> Vec<Frame> {
    frames
        .iter()
        .map(|frame| match frame {
            Err(DecodeError::TooLong { max, .. }) => Err(DecodeError::TooLong { len: 0, max: *max }),
            other => other.clone(),
        })
        .collect()
}

/// The decoder's counters agree with what it returned: one `frames` per packet, one `errors`
/// per rejected frame, `crc_errors` for the CRC ones.
pub fn check_stats(stats: DecoderStats, frames: &[Frame]) {
    let ok = frames.iter().filter(|f| f.is_ok()).count() as u64;
    let bad_crc = frames.iter().filter(|f| matches!(f, Err(DecodeError::BadCrc { .. }))).count() as u64;
    assert_eq!(stats.frames, ok, "stats.frames");
    assert_eq!(stats.errors, frames.len() as u64 - ok, "stats.errors");
    assert_eq!(stats.crc_errors, bad_crc, "stats.crc_errors");
}

/// The round trip every decoded packet must survive: [`Repr::emit`], then the framing's
/// [`Encoder::encode`], then a fresh decoder gives back exactly one frame, the same packet, and
/// consumes the whole encoding. Also checks both "nothing written on error" promises with
/// buffers one byte short. Returns the encoded frame.
pub fn round_trip<E: Encoder, D: Decoder>(packet: &OwnedRepr, mut fresh: D) -> Vec<u8> {
    let repr = packet.as_repr();
    let len = repr.buffer_len();
    assert_eq!(len, 13 + repr.payload.len());

    let mut short = vec![0xA5u8; len - 1];
    assert_eq!(repr.emit(&mut short), Err(BufferTooSmall { required: len }));
    assert!(short.iter().all(|&b| b == 0xA5), "emit wrote into a buffer too small");

    let mut bytes = vec![0u8; len];
    assert_eq!(repr.emit(&mut bytes), Ok(len));
    assert_eq!(Repr::parse(&bytes).as_ref(), Ok(&repr), "emit then parse");

    let max = E::max_encoded_len(len);
    let mut encoded = vec![0u8; max];
    let n = E::encode(&bytes, &mut encoded).expect("encode into max_encoded_len bytes");
    assert!(n <= max, "encoded {n} bytes, max_encoded_len says {max}");
    encoded.truncate(n);

    let mut short = vec![0xA5u8; n - 1];
    assert!(E::encode(&bytes, &mut short).is_err(), "encode fit {n} bytes into {}", n - 1);
    assert!(short.iter().all(|&b| b == 0xA5), "encode wrote into a buffer too small");

    let frames = feed(&mut fresh, &[&encoded]);
    assert_eq!(frames, [Ok(packet.clone())], "re-encoded packet did not decode to itself");
    encoded
}

/// The whole check for a stream decoder (length-delimited, COBS): decode the input in the
/// chunks [`Split`] gives and in one piece; both must give the same frames (the framing module
/// promises any split yields the same packets), an empty input afterwards must do nothing, the
/// counters must agree, and every packet must survive [`round_trip`]. Returns the frames for target-specific checks.
pub fn check_stream_decoder<E: Encoder, D: Decoder>(input: &[u8], make: impl Fn() -> D) -> Vec<Frame> {
    let split = Split::new(input);
    let chunks = split.chunks();

    let mut chunked = make();
    let frames = feed(&mut chunked, &chunks);
    check_empty_input(&mut chunked);
    check_stats(chunked.stats(), &frames);

    let mut whole = make();
    let frames_whole = feed(&mut whole, &[split.stream]);
    assert_eq!(split_independent(&frames), split_independent(&frames_whole), "the split changed the frames");

    for packet in frames.iter().flatten() {
        round_trip::<E, D>(packet, make());
    }
    frames
}
