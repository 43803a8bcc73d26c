//! Length-delimited framing for reliable byte streams.

use super::{Decoded, Decoder, DecoderStats, Encoder, IDLE_ROOM};
use crate::buffer::Buffer;
use crate::wire::{BufferTooSmall, DecodeError, OVERHEAD, Repr};

/// Bytes of the length prefix.
const PREFIX_LEN: usize = 4;

/// Length-delimited framing: a `u32` little-endian packet length, then the packet.
///
/// This type encodes; [`LengthDelimitedDecoder`] decodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LengthDelimited;

impl LengthDelimited {
    /// Bytes of the length prefix.
    pub const PREFIX_LEN: usize = PREFIX_LEN;

    /// The prefix [`encode`](Encoder::encode) writes before a packet of `packet_len` bytes, for
    /// callers that write the packet themselves (right after the prefix, with no copy).
    pub fn prefix(packet_len: usize) -> [u8; PREFIX_LEN] {
        (packet_len as u32).to_le_bytes()
    }
}

/// Decoder for [`LengthDelimited`] framing.
///
/// For streams that neither lose nor corrupt bytes (TCP). `N` is the largest packet the decoder
/// accepts. A length over `N` is reported as [`DecodeError::TooLong`] as soon as the prefix is
/// read; the frame's bytes are then skipped without being buffered, and the frame after it
/// decodes normally (unlike tokio-util's `LengthDelimitedCodec`, whose stream is dead after
/// "frame size too big").
///
/// When a whole frame lies in the input, the packet is parsed where it lies, without a copy.
/// Only a frame split across inputs is buffered, in `B`: by default an inline `[u8; N]`; with
/// a `Vec<u8>` ([`with_buffer`](Self::with_buffer)) the decoder starts empty, grows as the
/// bytes of a frame it has to buffer come (doubling, up to the frame's announced length), and
/// gives the room back once idle.
///
/// ```
/// use framelink_core::framing::{Decoder, Encoder, LengthDelimited, LengthDelimitedDecoder};
/// use framelink_core::wire::{Repr, SeqNumber};
///
/// let mut packet = [0u8; 32];
/// let n = Repr::data(SeqNumber(0), None, false, b"split").emit(&mut packet)?;
/// let mut frame = [0u8; 36];
/// let len = LengthDelimited::encode(&packet[..n], &mut frame)?;
///
/// // Packets of up to 64 KiB, but no room taken until a frame arrives in pieces.
/// let mut decoder = LengthDelimitedDecoder::<65_535, Vec<u8>>::with_buffer(Vec::new());
/// let (first, second) = frame[..len].split_at(10);
/// let decoded = decoder.decode(first);
/// assert!(decoded.frame.is_none());
/// let decoded = decoder.decode(second);
/// assert_eq!(decoded.frame.unwrap()?.payload, b"split");
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LengthDelimitedDecoder<const N: usize, B = [u8; N]> {
    state: State,
    prefix: [u8; PREFIX_LEN],
    stats: DecoderStats,
    buf: B,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the prefix; this many bytes of it are in `prefix`.
    Prefix(usize),
    /// Buffering a frame of `len` bytes; `have` are in `buf`.
    Body { len: usize, have: usize },
    /// Skipping the rest of a rejected frame.
    Skip(usize),
}

impl<const N: usize> LengthDelimitedDecoder<N> {
    /// A decoder for packets of up to `N` bytes, with an inline buffer of `N` bytes.
    pub const fn new() -> Self {
        Self::with_buffer([0; N])
    }
}

impl<const N: usize, B: Buffer> LengthDelimitedDecoder<N, B> {
    /// A decoder for packets of up to `N` bytes that buffers split frames in `buf`.
    ///
    /// Growable storage (an empty `Vec<u8>`) grows as a split frame's bytes come, at most to its
    /// length, never past `N`,
    /// and shrinks back to nothing at the first call to [`decode`](Decoder::decode) after a
    /// frame of more than [`IDLE_ROOM`] bytes, or at [`shrink`](Decoder::shrink). Storage that cannot
    /// grow should hold `N` bytes: a split frame longer than it is refused as
    /// [`DecodeError::TooLong`].
    pub const fn with_buffer(buf: B) -> Self {
        Self { state: State::Prefix(0), prefix: [0; PREFIX_LEN], stats: DecoderStats::EMPTY, buf }
    }

    /// Whether the decoder is between frames (nothing partial buffered).
    pub fn is_idle(&self) -> bool {
        self.state == State::Prefix(0)
    }

    /// Rejects a frame length announced by a prefix that is over the limit or too short for a
    /// packet, and starts skipping the frame.
    fn check_len(&mut self, len: usize) -> Result<(), DecodeError> {
        let err = if len > N {
            DecodeError::TooLong { len, max: N }
        } else if len < OVERHEAD {
            DecodeError::Truncated { len, needed: OVERHEAD }
        } else {
            return Ok(());
        };
        Err(self.reject(err, len))
    }

    /// Counts `err` for a frame of `len` bytes and skips the frame.
    fn reject(&mut self, err: DecodeError, len: usize) -> DecodeError {
        self.stats.count_error(&err, len);
        self.state = if len == 0 { State::Prefix(0) } else { State::Skip(len) };
        err
    }
}

impl<const N: usize> Default for LengthDelimitedDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, B: Buffer> Decoder for LengthDelimitedDecoder<N, B> {
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<'a> {
        if self.buf.as_ref().len() > IDLE_ROOM {
            self.shrink();
        }
        let mut consumed = 0;
        loop {
            let rest = &input[consumed..];
            if rest.is_empty() {
                return Decoded { consumed, frame: None };
            }
            match self.state {
                State::Prefix(have) => {
                    let len = if have == 0 && rest.len() >= PREFIX_LEN {
                        consumed += PREFIX_LEN;
                        u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]])
                    } else {
                        let take = (PREFIX_LEN - have).min(rest.len());
                        self.prefix[have..have + take].copy_from_slice(&rest[..take]);
                        consumed += take;
                        if have + take < PREFIX_LEN {
                            self.state = State::Prefix(have + take);
                            continue;
                        }
                        self.state = State::Prefix(0);
                        u32::from_le_bytes(self.prefix)
                    } as usize;
                    if let Err(err) = self.check_len(len) {
                        return Decoded { consumed, frame: Some(Err(err)) };
                    }
                    // Fast path: the whole frame is in the input; parse it in place.
                    if let Some(frame) = input.get(consumed..consumed + len) {
                        let result = Repr::parse(frame);
                        self.stats.count(&result, len);
                        return Decoded { consumed: consumed + len, frame: Some(result) };
                    }
                    // Fixed storage must hold the whole frame; growable storage grows as the
                    // bytes come (below), so a peer that announces a large frame and sends
                    // little makes us hold little.
                    if !B::GROWS && self.buf.as_ref().len() < len {
                        let err = DecodeError::TooLong { len, max: self.buf.as_ref().len() };
                        return Decoded { consumed, frame: Some(Err(self.reject(err, len))) };
                    }
                    self.state = State::Body { len, have: 0 };
                }
                State::Body { len, have } => {
                    let take = (len - have).min(rest.len());
                    if B::GROWS && self.buf.as_ref().len() < have + take {
                        // Doubling, so a frame that trickles in is copied O(len) times in all.
                        let room = (have + take).max(self.buf.as_ref().len() * 2).min(len);
                        self.buf.grow_to(room);
                    }
                    self.buf.as_mut()[have..have + take].copy_from_slice(&rest[..take]);
                    consumed += take;
                    if have + take < len {
                        self.state = State::Body { len, have: have + take };
                        continue;
                    }
                    self.state = State::Prefix(0);
                    let result = Repr::parse(&self.buf.as_ref()[..len]);
                    self.stats.count(&result, len);
                    return Decoded { consumed, frame: Some(result) };
                }
                State::Skip(left) => {
                    let take = left.min(rest.len());
                    consumed += take;
                    self.state = if take == left { State::Prefix(0) } else { State::Skip(left - take) };
                }
            }
        }
    }

    fn is_incomplete(&self, input: &[u8]) -> bool {
        if !self.is_idle() {
            return false;
        }
        let Some((prefix, rest)) = input.split_first_chunk::<PREFIX_LEN>() else { return true };
        let len = u32::from_le_bytes(*prefix) as usize;
        // A length over the limit or too short is decoded (and rejected) at once.
        (OVERHEAD..=N).contains(&len) && rest.len() < len
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }

    fn shrink(&mut self) {
        if !matches!(self.state, State::Body { .. }) {
            self.buf.shrink(0);
        }
    }
}

impl Encoder for LengthDelimited {
    const HEADER_LEN: Option<usize> = Some(PREFIX_LEN);

    fn write_header(_tag: u32, packet_len: usize, out: &mut [u8]) {
        out.copy_from_slice(&Self::prefix(packet_len));
    }

    fn max_encoded_len(packet_len: usize) -> usize {
        PREFIX_LEN + packet_len
    }

    fn encode(packet: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let total = PREFIX_LEN + packet.len();
        let dst = out.get_mut(..total).ok_or(BufferTooSmall { required: total })?;
        dst[..PREFIX_LEN].copy_from_slice(&Self::prefix(packet.len()));
        dst[PREFIX_LEN..].copy_from_slice(packet);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SeqNumber;

    type Ld = LengthDelimitedDecoder<64>;
    type Growable = LengthDelimitedDecoder<1024, std::vec::Vec<u8>>;

    fn frame(seq: u16, payload: &[u8], out: &mut [u8]) -> usize {
        let mut packet = [0u8; 1024];
        let n = Repr::data(SeqNumber(seq), None, false, payload).emit(&mut packet).unwrap();
        LengthDelimited::encode(&packet[..n], out).unwrap()
    }

    /// Feeds `input` in chunks of `chunk` bytes; returns the payload lengths or error per frame.
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
        let mut stream = [0u8; 256];
        let mut len = frame(0, b"one", &mut stream);
        len += frame(1, &[7; 40], &mut stream[len..]);
        len += frame(2, b"", &mut stream[len..]);
        for chunk in 1..=len {
            let mut dec = Ld::new();
            assert_eq!(feed(&mut dec, &stream[..len], chunk), [Ok(3), Ok(40), Ok(0)], "chunk {chunk}");
            assert!(dec.is_idle());
            let mut dec = Growable::with_buffer(std::vec::Vec::new());
            assert_eq!(feed(&mut dec, &stream[..len], chunk), [Ok(3), Ok(40), Ok(0)], "chunk {chunk}");
            assert!(dec.is_idle());
            assert!(dec.buf.len() <= 4 + 40 + OVERHEAD, "grew past the largest frame");
        }
    }

    #[test]
    fn growable_storage_grows_only_for_a_split_frame_and_shrinks_when_idle() {
        let mut stream = [0u8; 1024];
        let mut len = frame(0, &[1; 30], &mut stream);
        let big = len;
        len += frame(1, &[2; 600], &mut stream[len..]);
        let mut dec = Growable::with_buffer(std::vec::Vec::new());

        // Whole frames in the input: nothing buffered, no room taken.
        assert_eq!(feed(&mut dec, &stream[..len], len), [Ok(30), Ok(600)]);
        assert_eq!(dec.buf.capacity(), 0);
        // Nor when only the prefix is split and the body follows whole.
        assert!(dec.decode(&stream[..2]).frame.is_none());
        assert!(dec.decode(&stream[2..big]).frame.unwrap().is_ok());
        assert_eq!(dec.buf.capacity(), 0);

        // A small frame split in two: room for what came, then for exactly that frame, kept
        // while idle.
        let d = dec.decode(&stream[..10]);
        assert!(d.frame.is_none());
        assert_eq!(dec.buf.len(), 6);
        assert!(dec.decode(&stream[10..big]).frame.unwrap().is_ok());
        let _ = dec.decode(&[]);
        assert_eq!(dec.buf.len(), big - 4);
        // Asked to, it gives back even that, but not while it holds part of a frame.
        assert!(dec.decode(&stream[..10]).frame.is_none());
        dec.shrink();
        assert_eq!(dec.buf.len(), big - 4);
        assert!(dec.decode(&stream[10..big]).frame.unwrap().is_ok());
        dec.shrink();
        assert_eq!(dec.buf.capacity(), 0);

        // A large one: grown as its bytes come, to its length, given back at the next call
        // once it is out.
        assert!(dec.decode(&stream[big..big + 100]).frame.is_none());
        assert_eq!(dec.buf.len(), 96);
        assert_eq!(dec.decode(&stream[big + 100..len]).frame.unwrap().unwrap().payload.len(), 600);
        assert!(dec.is_idle());
        let d = dec.decode(&[]);
        assert_eq!((d.consumed, d.frame.is_none()), (0, true));
        assert_eq!(dec.buf.capacity(), 0);
    }

    #[test]
    fn growable_storage_holds_what_came_not_what_was_announced() {
        let mut dec = LengthDelimitedDecoder::<65_548, std::vec::Vec<u8>>::with_buffer(std::vec::Vec::new());
        // A peer announces the largest frame, then sends it a few bytes at a time.
        assert!(dec.decode(&65_548u32.to_le_bytes()).frame.is_none());
        assert_eq!(dec.buf.len(), 0);
        for sent in 1..=10 {
            assert!(dec.decode(&[7; 10]).frame.is_none());
            assert!(
                dec.buf.len() <= 2 * 10 * sent,
                "{} bytes held for {} received",
                dec.buf.len(),
                10 * sent
            );
        }
    }

    #[test]
    fn growable_storage_never_grows_past_the_limit() {
        let mut dec = LengthDelimitedDecoder::<64, std::vec::Vec<u8>>::with_buffer(std::vec::Vec::new());
        let prefix = 65u32.to_le_bytes();
        let d = dec.decode(&prefix);
        assert_eq!(d.frame.unwrap(), Err(DecodeError::TooLong { len: 65, max: 64 }));
        assert!(dec.decode(&[0; 65]).frame.is_none(), "the frame's bytes are skipped");
        assert_eq!(dec.buf.capacity(), 0);
    }

    #[test]
    fn short_fixed_storage_refuses_a_split_frame_it_cannot_hold() {
        let mut backing = [0u8; 20];
        let mut dec = LengthDelimitedDecoder::<64, &mut [u8]>::with_buffer(&mut backing);
        let mut stream = [0u8; 64];
        let len = frame(0, &[3; 20], &mut stream);
        let frames = feed(&mut dec, &stream[..len], 10);
        assert_eq!(frames, [Err(DecodeError::TooLong { len: 33, max: 20 })]);
        assert!(dec.is_idle());
    }

    #[test]
    fn too_long_is_reported_at_the_prefix_and_skipped() {
        let mut stream = [0u8; 256];
        stream[..4].copy_from_slice(&100u32.to_le_bytes());
        // 100 bytes of junk the decoder must skip, then a good frame.
        let len = 104 + frame(5, b"after", &mut stream[104..]);
        for chunk in [1, 3, 7, len] {
            let mut dec = Ld::new();
            let frames = feed(&mut dec, &stream[..len], chunk);
            assert_eq!(frames, [Err(DecodeError::TooLong { len: 100, max: 64 }), Ok(5)]);
            assert_eq!(dec.stats().dropped_bytes, 100);
        }
    }

    #[test]
    fn a_frame_is_incomplete_until_its_last_byte_unless_its_length_is_refused() {
        let mut stream = [0u8; 64];
        let len = frame(5, b"whole", &mut stream);
        let dec = Ld::new();
        for cut in 0..len {
            assert!(dec.is_incomplete(&stream[..cut]), "{cut} of {len} bytes");
        }
        assert!(!dec.is_incomplete(&stream[..len]));
        // Lengths the decoder refuses at once are not waited for.
        assert!(!dec.is_incomplete(&1_000u32.to_le_bytes()));
        assert!(!dec.is_incomplete(&3u32.to_le_bytes()));
        // Nor is anything while the decoder holds part of a frame.
        let mut dec = Ld::new();
        let _ = dec.decode(&stream[..6]);
        assert!(!dec.is_incomplete(&stream[6..8]));
    }

    #[test]
    fn too_long_is_known_before_the_payload_arrives() {
        let mut dec = Ld::new();
        let prefix = 1_000_000u32.to_le_bytes();
        let d = dec.decode(&prefix);
        assert_eq!(d.consumed, 4);
        assert_eq!(d.frame.unwrap(), Err(DecodeError::TooLong { len: 1_000_000, max: 64 }));
    }

    #[test]
    fn short_length_and_bad_crc_are_recoverable() {
        let mut stream = [0u8; 256];
        stream[..4].copy_from_slice(&3u32.to_le_bytes());
        let mut len = 7;
        let start = len;
        len += frame(1, b"corrupt me", &mut stream[len..]);
        stream[start + 4 + 9 + 2] ^= 0x40; // a payload byte
        len += frame(2, b"fine", &mut stream[len..]);
        let mut dec = Ld::new();
        let frames = feed(&mut dec, &stream[..len], 5);
        assert_eq!(frames[0], Err(DecodeError::Truncated { len: 3, needed: 13 }));
        assert!(matches!(frames[1], Err(DecodeError::BadCrc { .. })));
        assert_eq!(frames[2], Ok(4));
        assert_eq!(dec.stats().crc_errors, 1);
        assert_eq!(dec.stats().frames, 1);
    }

    #[test]
    fn zero_length_prefix_is_truncated_and_skips_nothing() {
        let mut stream = [0u8; 64];
        let len = 4 + frame(9, b"x", &mut stream[4..]);
        let mut dec = Ld::new();
        assert_eq!(
            feed(&mut dec, &stream[..len], len),
            [Err(DecodeError::Truncated { len: 0, needed: 13 }), Ok(1)]
        );
    }

    #[test]
    fn emit_in_place_equals_emit_then_encode() {
        let repr = Repr::data(SeqNumber(9), Some(SeqNumber(4)), true, b"in place");
        let mut expected = [0u8; 64];
        let mut packet = [0u8; 64];
        let n = repr.emit(&mut packet).unwrap();
        let m = LengthDelimited::encode(&packet[..n], &mut expected).unwrap();
        let mut out = [0u8; 64];
        assert_eq!(LengthDelimited::emit(&repr, &mut [], &mut out), Ok(m));
        assert_eq!(out[..m], expected[..m]);
        let mut short = [0xAAu8; 20];
        assert_eq!(LengthDelimited::emit(&repr, &mut [], &mut short), Err(BufferTooSmall { required: 25 }));
        assert_eq!(short, [0xAA; 20]);
    }

    #[test]
    fn whole_frame_in_input_is_not_copied() {
        let mut stream = [0u8; 64];
        let len = frame(0, b"zero-copy", &mut stream);
        let mut dec = Ld::new();
        let d = dec.decode(&stream[..len]);
        let payload = d.frame.unwrap().unwrap().payload;
        let range = stream.as_ptr_range();
        assert!(range.contains(&payload.as_ptr()));
    }
}
