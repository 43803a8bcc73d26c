//! COBS framing for byte streams that corrupt, lose or insert bytes (serial lines).

use super::{Decoded, Decoder, DecoderStats, Encoder, IDLE_ROOM};
use crate::buffer::Buffer;
use crate::wire::{BufferTooSmall, DecodeError, Repr};

/// The frame delimiter.
const DELIMITER: u8 = 0x00;

/// COBS framing (Consistent Overhead Byte Stuffing) with a `0x00` delimiter after each packet.
///
/// The encoding contains no zero byte, so a receiver that starts mid-stream, or meets garbage,
/// resynchronises at the next `0x00`: the bad frame fails its CRC or its COBS structure, is
/// counted in [`DecoderStats::dropped_bytes`] and [`DecoderStats::resyncs`], and the frame after
/// it decodes. Empty frames (delimiters back to back) are ignored, so a sender may write a lone
/// `0x00` first to flush whatever partial frame the receiver holds. Overhead: one byte per 254
/// bytes of packet, plus the delimiter.
///
/// This type encodes; [`CobsDecoder`] decodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cobs;

impl Cobs {
    /// The byte that ends every frame.
    pub const DELIMITER: u8 = DELIMITER;
}

/// Decoder for [`Cobs`] framing.
///
/// `N` is the largest packet the decoder accepts. Bytes are decoded into the buffer `B` as they
/// arrive; a frame that outgrows `N` is reported as [`DecodeError::TooLong`] and skipped to the
/// next delimiter. The buffer is an inline `[u8; N]` by default; with a `Vec<u8>`
/// ([`with_buffer`](Self::with_buffer)) the decoder starts empty, doubles its room as a frame
/// needs it (up to `N`), and gives the room back once idle.
///
/// ```
/// use framelink_core::framing::{Cobs, CobsDecoder, Decoder, Encoder};
/// use framelink_core::wire::{Repr, SeqNumber};
///
/// let mut packet = [0u8; 32];
/// let n = Repr::data(SeqNumber(0), None, false, b"serial").emit(&mut packet)?;
/// let mut frame = [0u8; 40];
/// let len = Cobs::encode(&packet[..n], &mut frame)?;
///
/// let mut decoder = CobsDecoder::<65_535, Vec<u8>>::with_buffer(Vec::new());
/// let decoded = decoder.decode(&frame[..len]);
/// assert_eq!(decoded.frame.unwrap()?.payload, b"serial");
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
///
/// The COBS code is our own: the `cobs` and `corncobs` crates decode whole frames from a slice,
/// while a serial line needs a decoder that keeps its state between arbitrary chunks.
#[derive(Debug)]
pub struct CobsDecoder<const N: usize, B = [u8; N]> {
    /// Decoded bytes in `buf`.
    len: usize,
    /// Encoded bytes of the current frame so far (delimiter excluded).
    raw: usize,
    /// Data bytes left in the current block; 0 means the next byte is a code byte.
    block_left: u8,
    /// The current block ends in an implied zero, written when the next block starts.
    zero_pending: bool,
    /// Skipping to the next delimiter after an error.
    discarding: bool,
    stats: DecoderStats,
    buf: B,
}

/// The room growable storage takes first; it doubles from there.
const FIRST_ROOM: usize = 64;

impl<const N: usize> CobsDecoder<N> {
    /// A decoder for packets of up to `N` bytes, with an inline buffer of `N` bytes.
    pub const fn new() -> Self {
        Self::with_buffer([0; N])
    }
}

impl<const N: usize, B: Buffer> CobsDecoder<N, B> {
    /// A decoder for packets of up to `N` bytes that decodes frames into `buf`.
    ///
    /// Growable storage (an empty `Vec<u8>`) grows as a frame needs it, doubling, never past
    /// `N`, and shrinks back to nothing at the first call to [`decode`](Decoder::decode) after
    /// a frame that needed more than [`IDLE_ROOM`] bytes, or at [`shrink`](Decoder::shrink). Storage that
    /// cannot grow should hold `N` bytes: a frame longer than it is refused as
    /// [`DecodeError::TooLong`].
    pub const fn with_buffer(buf: B) -> Self {
        Self {
            buf,
            len: 0,
            raw: 0,
            block_left: 0,
            zero_pending: false,
            discarding: false,
            stats: DecoderStats::EMPTY,
        }
    }

    /// Whether the decoder is between frames (nothing partial buffered).
    pub fn is_idle(&self) -> bool {
        self.raw == 0 && !self.discarding
    }

    fn reset_frame(&mut self) {
        self.len = 0;
        self.raw = 0;
        self.block_left = 0;
        self.zero_pending = false;
    }

    /// Appends decoded bytes to the frame, unless it outgrows the limit or the storage.
    fn push(&mut self, bytes: &[u8]) -> Result<(), FrameEnd> {
        let end = self.len + bytes.len();
        let room = self.buf.as_ref().len();
        if end > room {
            if end > N {
                return Err(FrameEnd::TooLong { len: end, max: N });
            }
            if !self.buf.grow_to(end.max(2 * room).max(FIRST_ROOM).min(N)) {
                return Err(FrameEnd::TooLong { len: end, max: room });
            }
        }
        self.buf.as_mut()[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Decodes `input` into the buffer up to the end of a frame; returns the bytes consumed and
    /// how the frame ended, if it did.
    fn scan(&mut self, input: &[u8]) -> (usize, Option<FrameEnd>) {
        let mut i = 0;
        while i < input.len() {
            if self.discarding {
                // Drop everything up to the next delimiter (and it), or to the end of the input.
                let rest = &input[i..];
                let found = rest.iter().position(|&b| b == DELIMITER);
                let dropped = found.unwrap_or(rest.len());
                self.stats.dropped_bytes += dropped as u64;
                self.discarding = found.is_none();
                i += dropped + usize::from(found.is_some());
                continue;
            }
            let byte = input[i];
            if byte == DELIMITER {
                i += 1;
                if self.raw == 0 {
                    continue; // an empty frame: delimiters back to back
                }
                return (i, Some(FrameEnd::Delimiter));
            }
            if self.block_left == 0 {
                // A code byte: the previous block's implied zero, if any, comes first.
                self.raw += 1;
                i += 1;
                if self.zero_pending
                    && let Err(end) = self.push(&[0])
                {
                    return (i, Some(end));
                }
                self.block_left = byte - 1;
                self.zero_pending = byte != 0xFF;
                continue;
            }
            // Data bytes: copy up to the end of the block, the input, or a delimiter.
            let span = &input[i..input.len().min(i + usize::from(self.block_left))];
            let run = span.iter().position(|&b| b == DELIMITER).unwrap_or(span.len());
            self.raw += run;
            i += run;
            if let Err(end) = self.push(&span[..run]) {
                return (i, Some(end));
            }
            self.block_left -= run as u8;
        }
        (input.len(), None)
    }
}

/// How a frame being decoded ended.
enum FrameEnd {
    /// At a delimiter.
    Delimiter,
    /// It outgrew the limit or the storage (`max` bytes) at `len` decoded bytes; the rest is
    /// skipped up to the next delimiter.
    TooLong { len: usize, max: usize },
}

impl<const N: usize> Default for CobsDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, B: Buffer> Decoder for CobsDecoder<N, B> {
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<'a> {
        if self.buf.as_ref().len() > IDLE_ROOM {
            self.shrink();
        }
        let (consumed, end) = self.scan(input);
        let Some(end) = end else { return Decoded { consumed, frame: None } };
        // Every frame ends here, decoded or rejected: one place resets and counts.
        let (len, raw, block_cut) = (self.len, self.raw, self.block_left != 0);
        self.reset_frame();
        let result = match end {
            FrameEnd::TooLong { len, max } => {
                self.discarding = true;
                Err(DecodeError::TooLong { len, max })
            }
            FrameEnd::Delimiter if block_cut => Err(DecodeError::BadCobs),
            FrameEnd::Delimiter => Repr::parse(&self.buf.as_ref()[..len]),
        };
        self.stats.count(&result, raw);
        if result.is_err() {
            self.stats.resyncs += 1;
        }
        Decoded { consumed, frame: Some(result) }
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }

    fn shrink(&mut self) {
        if self.raw == 0 {
            self.buf.shrink(0);
        }
    }
}

impl Encoder for Cobs {
    const PREAMBLE: &'static [u8] = &[DELIMITER];

    fn max_encoded_len(packet_len: usize) -> usize {
        packet_len + packet_len / 254 + 2
    }

    fn encode(packet: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let required = Self::max_encoded_len(packet.len());
        if out.len() < required {
            return Err(BufferTooSmall { required });
        }
        let mut code_at = 0;
        let mut at = 1;
        let mut rest = packet;
        loop {
            // A block: up to 254 non-zero bytes, ended by a zero, the packet's end, or its size.
            let max = rest.len().min(254);
            let run = rest[..max].iter().position(|&b| b == 0).unwrap_or(max);
            out[at..at + run].copy_from_slice(&rest[..run]);
            at += run;
            out[code_at] = run as u8 + 1;
            // A full block of 254 has no implied zero: a zero right after it starts the next.
            let ended_by_zero = run < max;
            rest = &rest[run + usize::from(ended_by_zero)..];
            if rest.is_empty() && !ended_by_zero {
                break;
            }
            code_at = at;
            at += 1;
        }
        out[at] = DELIMITER;
        Ok(at + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SeqNumber;

    type C = CobsDecoder<300>;
    type Growable = CobsDecoder<1024, std::vec::Vec<u8>>;

    fn encoded(packet: &[u8]) -> ([u8; 700], usize) {
        let mut out = [0u8; 700];
        let n = Cobs::encode(packet, &mut out).unwrap();
        (out, n)
    }

    #[test]
    fn known_encodings() {
        // Vectors from the COBS paper and its Wikipedia page.
        let cases: [(&[u8], &[u8]); 5] = [
            (&[0x00], &[0x01, 0x01, 0x00]),
            (&[0x00, 0x00], &[0x01, 0x01, 0x01, 0x00]),
            (&[0x11, 0x22, 0x00, 0x33], &[0x03, 0x11, 0x22, 0x02, 0x33, 0x00]),
            (&[0x11, 0x22, 0x33, 0x44], &[0x05, 0x11, 0x22, 0x33, 0x44, 0x00]),
            (&[0x11, 0x00, 0x00, 0x00], &[0x02, 0x11, 0x01, 0x01, 0x01, 0x00]),
        ];
        for (raw, enc) in cases {
            let (out, n) = encoded(raw);
            assert_eq!(&out[..n], enc, "{raw:02x?}");
        }
    }

    #[test]
    fn a_zero_right_after_a_full_block_survives() {
        // Packet bytes 7..261 (length field and payload) are non-zero and byte 261 is zero:
        // a full 254-byte block with a zero right after it.
        let mut payload = [0x42u8; 300];
        payload[252] = 0;
        let mut buf = [0u8; 320];
        let n = Repr::data(SeqNumber(0x0101), None, false, &payload).emit(&mut buf).unwrap();
        assert!(buf[7..261].iter().all(|&b| b != 0) && buf[261] == 0);
        let (out, m) = encoded(&buf[..n]);
        let mut dec = CobsDecoder::<400>::new();
        let d = dec.decode(&out[..m]);
        assert_eq!(d.consumed, m);
        assert_eq!(d.frame.unwrap().unwrap().payload, &payload[..]);
    }

    #[test]
    fn long_runs_split_at_254() {
        let raw = [0xAB; 600];
        let (out, n) = encoded(&raw);
        assert_eq!(n, 600 + 3 + 1);
        assert_eq!(out[0], 0xFF);
        assert_eq!(out[255], 0xFF);
        assert!(out[..n - 1].iter().all(|&b| b != 0));
    }

    fn packet(seq: u16, payload: &[u8], out: &mut [u8]) -> usize {
        let mut buf = [0u8; 300];
        let n = Repr::data(SeqNumber(seq), None, false, payload).emit(&mut buf).unwrap();
        Cobs::encode(&buf[..n], out).unwrap()
    }

    fn feed(
        dec: &mut impl Decoder,
        input: &[u8],
        chunk: usize,
    ) -> heapless::Vec<Result<usize, DecodeError>, 16> {
        let mut out = heapless::Vec::new();
        for piece in input.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let d = dec.decode(rest);
                rest = &rest[d.consumed..];
                if let Some(f) = d.frame {
                    out.push(f.map(|r| r.payload.len())).unwrap();
                }
            }
        }
        out
    }

    #[test]
    fn every_chunk_size_yields_the_same_frames() {
        let mut stream = [0u8; 1024];
        let mut len = packet(0, &[0; 20], &mut stream);
        len += packet(1, &[0xFF; 260], &mut stream[len..]);
        len += packet(2, b"", &mut stream[len..]);
        for chunk in 1..=len {
            let mut dec = C::new();
            assert_eq!(feed(&mut dec, &stream[..len], chunk), [Ok(20), Ok(260), Ok(0)], "chunk {chunk}");
            assert!(dec.is_idle());
            let mut dec = Growable::with_buffer(std::vec::Vec::new());
            assert_eq!(feed(&mut dec, &stream[..len], chunk), [Ok(20), Ok(260), Ok(0)], "chunk {chunk}");
            assert!(dec.is_idle());
        }
    }

    #[test]
    fn growable_storage_doubles_up_to_the_limit_and_shrinks_when_idle() {
        let mut stream = [0u8; 1024];
        let small = packet(0, &[5; 20], &mut stream);
        let len = small + packet(1, &[6; 280], &mut stream[small..]);
        let mut dec = Growable::with_buffer(std::vec::Vec::new());
        assert_eq!(dec.buf.capacity(), 0);
        assert_eq!(feed(&mut dec, &stream[..small], small), [Ok(20)]);
        assert_eq!(dec.buf.len(), FIRST_ROOM);
        let _ = dec.decode(&[]);
        assert_eq!(dec.buf.len(), FIRST_ROOM, "small room is kept");
        dec.shrink();
        assert_eq!(dec.buf.capacity(), 0, "unless asked for");

        // 293 decoded bytes: 64 -> 128 -> 256 -> 512.
        assert_eq!(feed(&mut dec, &stream[small..len], 7), [Ok(280)]);
        assert_eq!(dec.buf.len(), 512);
        assert!(dec.is_idle());
        let d = dec.decode(&[]);
        assert_eq!((d.consumed, d.frame.is_none()), (0, true));
        assert_eq!(dec.buf.capacity(), 0);

        // Never past the limit, and a frame over it is refused and skipped as with an array.
        let mut dec = CobsDecoder::<100, std::vec::Vec<u8>>::with_buffer(std::vec::Vec::new());
        let mut long = [0x01u8; 120];
        long[119] = 0;
        assert_eq!(feed(&mut dec, &long, 9), [Err(DecodeError::TooLong { len: 101, max: 100 })]);
        assert_eq!(dec.buf.len(), 100);
        assert!(dec.is_idle());
    }

    #[test]
    fn short_fixed_storage_refuses_a_frame_it_cannot_hold() {
        let mut backing = [0u8; 20];
        let mut dec = CobsDecoder::<300, &mut [u8]>::with_buffer(&mut backing);
        let mut stream = [0u8; 64];
        let len = packet(0, &[3; 20], &mut stream);
        assert_eq!(feed(&mut dec, &stream[..len], len), [Err(DecodeError::TooLong { len: 33, max: 20 })]);
        assert!(dec.is_idle());
    }

    #[test]
    fn garbage_before_a_delimiter_is_dropped_and_counted() {
        let mut stream = [0u8; 256];
        stream[..5].copy_from_slice(&[9, 8, 7, 6, 0]);
        let len = 5 + packet(4, b"after noise", &mut stream[5..]);
        let mut dec = C::new();
        let frames = feed(&mut dec, &stream[..len], 3);
        assert!(frames[0].is_err());
        assert_eq!(frames[1], Ok(11));
        assert_eq!(dec.stats().resyncs, 1);
        assert_eq!(dec.stats().dropped_bytes, 4);
    }

    #[test]
    fn leading_and_repeated_delimiters_are_ignored() {
        let mut stream = [0u8; 64];
        let len = 3 + packet(0, b"x", &mut stream[3..]);
        let mut dec = C::new();
        assert_eq!(feed(&mut dec, &stream[..len], len), [Ok(1)]);
        assert_eq!(dec.stats().errors, 0);
    }

    #[test]
    fn a_block_cut_by_a_delimiter_is_bad_cobs() {
        let mut dec = C::new();
        let frames = feed(&mut dec, &[0x05, 0x11, 0x22, 0x00], 4);
        assert_eq!(frames, [Err(DecodeError::BadCobs)]);
        assert_eq!(dec.stats().dropped_bytes, 3);
    }

    #[test]
    fn an_overlong_frame_is_skipped_to_the_next_delimiter() {
        let mut dec = CobsDecoder::<16>::new();
        let mut stream = [0x01u8; 64];
        stream[40] = 0;
        let mut out = [0u8; 64];
        let mut buf = [0u8; 16];
        let n = Repr::data(SeqNumber(0), None, false, b"ok").emit(&mut buf).unwrap();
        let m = Cobs::encode(&buf[..n], &mut out).unwrap();
        stream[41..41 + m].copy_from_slice(&out[..m]);
        let mut rest = &stream[..41 + m];
        let mut results = heapless::Vec::<_, 4>::new();
        while !rest.is_empty() {
            let d = dec.decode(rest);
            rest = &rest[d.consumed..];
            if let Some(f) = d.frame {
                results.push(f.map(|r| r.payload.len())).unwrap();
            }
        }
        assert_eq!(results, [Err(DecodeError::TooLong { len: 17, max: 16 }), Ok(2)]);
        assert_eq!(dec.stats().dropped_bytes, 40);
    }

    #[test]
    fn encode_needs_the_worst_case_room_and_writes_nothing_otherwise() {
        let mut out = [0xEEu8; 5];
        assert_eq!(Cobs::encode(&[1, 2, 3, 4], &mut out), Err(BufferTooSmall { required: 6 }));
        assert_eq!(out, [0xEE; 5]);
    }
}
