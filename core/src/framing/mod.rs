//! Framing: how packets travel over a medium.
//!
//! Each framing is a unit type that encodes ([`Encoder`]) and a decoder type beside it
//! ([`Decoder`]), sized by the largest packet it accepts. The decoder names its encoder
//! ([`Framing`]), so a [`Connection`](crate::connection::Connection) cannot pair a COBS decoder
//! with a length-delimited encoder.
//!
//! | framing | for | on the wire |
//! |---|---|---|
//! | [`LengthDelimited`] | reliable byte streams (TCP) | `u32` LE packet length, then the packet |
//! | [`Cobs`] | byte streams that corrupt (UART, a UART bridged to TCP) | COBS-encoded packet, then `0x00` |
//! | [`Datagram`] | datagram sockets (UDP) | one packet per datagram, behind the session tag |
//!
//! Decoders are incremental: feed them any split of the input, down to single bytes, and they
//! yield the same packets. Each call to `decode` reports how many input bytes it consumed and at
//! most one frame; call again with the rest. A decoder never panics, and every [`DecodeError`]
//! is recoverable: the bad frame has been skipped, the next call goes on.
//!
//! The stream decoders keep a partial frame in storage of their own, a
//! [`Buffer`](crate::buffer::Buffer): an inline array by default (firmware: RAM fixed at build
//! time), or a `Vec<u8>` that starts empty, grows only to hold a frame that arrived in pieces,
//! never past the decoder's limit, and is given back once the decoder is idle again (a server
//! holding many idle sessions keeps each small).
//!
//! ```
//! use framelink_core::framing::{Decoder, Encoder, LengthDelimited, LengthDelimitedDecoder};
//! use framelink_core::wire::{Repr, SeqNumber};
//!
//! // Two packets glued together, as TCP may deliver them.
//! let mut stream = [0u8; 64];
//! let mut packet = [0u8; 32];
//! let mut len = 0;
//! for (seq, text) in [(0, &b"Hello, "[..]), (1, &b"Server!"[..])] {
//!     let n = Repr::data(SeqNumber(seq), None, false, text).emit(&mut packet)?;
//!     len += LengthDelimited::encode(&packet[..n], &mut stream[len..])?;
//! }
//!
//! let mut decoder = LengthDelimitedDecoder::<64>::new();
//! let mut input = &stream[..len];
//! let mut expected = [&b"Hello, "[..], &b"Server!"[..]].into_iter();
//! while !input.is_empty() {
//!     let decoded = decoder.decode(input);
//!     input = &input[decoded.consumed..];
//!     if let Some(frame) = decoded.frame {
//!         // Each send arrives alone and whole.
//!         assert_eq!(Some(frame?.payload), expected.next());
//!     }
//! }
//! assert_eq!(expected.next(), None);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

mod cobs;
pub mod datagram;
mod length_delimited;

pub use crate::wire::{BufferTooSmall, DecodeError};
pub use cobs::{Cobs, CobsDecoder};
pub use datagram::{Datagram, DatagramDecoder};
pub use length_delimited::{LengthDelimited, LengthDelimitedDecoder};

use crate::wire::Repr;

/// The room a decoder with growable storage may keep while idle: after a frame that needed
/// more, it gives its storage back at its next call to `decode` ([`Decoder::shrink`]).
pub const IDLE_ROOM: usize = 256;

/// What one call to [`Decoder::decode`] did.
#[derive(Debug)]
#[must_use = "the consumed count says where the next call must start"]
pub struct Decoded<'a> {
    /// Input bytes consumed; the next call starts after them.
    pub consumed: usize,
    /// A complete frame: a packet, or why the frame was rejected. `None` when the input ran out
    /// first.
    pub frame: Option<Result<Repr<'a>, DecodeError>>,
}

/// Counters a decoder keeps since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct DecoderStats {
    /// Frames that decoded to a packet.
    pub frames: u64,
    /// Frames rejected with an error (CRC errors included).
    pub errors: u64,
    /// Frames rejected for a bad CRC.
    pub crc_errors: u64,
    /// Bytes thrown away: those of rejected frames and garbage before a delimiter.
    pub dropped_bytes: u64,
    /// Times the decoder had to resynchronise (COBS: skip to the next delimiter).
    pub resyncs: u64,
}

impl DecoderStats {
    pub(crate) const EMPTY: Self = Self { frames: 0, errors: 0, crc_errors: 0, dropped_bytes: 0, resyncs: 0 };

    fn count(&mut self, result: &Result<Repr<'_>, DecodeError>, frame_len: usize) {
        match result {
            Ok(_) => self.frames += 1,
            Err(err) => self.count_error(err, frame_len),
        }
    }

    #[inline(never)] // errors are rare: one shared copy, not one inlined at each frame end
    fn count_error(&mut self, err: &DecodeError, dropped: usize) {
        self.errors += 1;
        self.dropped_bytes += dropped as u64;
        if matches!(err, DecodeError::BadCrc { .. }) {
            self.crc_errors += 1;
        }
    }
}

/// An incremental frame decoder.
pub trait Decoder {
    /// Whether each input is one whole datagram that starts with a session tag
    /// ([`datagram::session_tag`]), which the caller checks against its session.
    const SESSION_TAG: bool = false;

    /// Consumes a prefix of `input` and returns at most one frame.
    ///
    /// The frame borrows from the decoder's buffer or, when a whole frame lies in `input`, from
    /// `input` itself (no copy). Handle it before the next call.
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> Decoded<'a>;

    /// Counters since the decoder was made.
    fn stats(&self) -> DecoderStats;

    /// Whether `input` starts with a frame that is not whole in it, which
    /// [`decode`](Self::decode) would copy into the decoder's own storage to wait for the rest:
    /// a driver with room to read the rest right after it can keep it instead, and decode it
    /// whole (no copy) once it is. `false` for a decoder that copies every frame, or holds
    /// part of one already.
    fn is_incomplete(&self, _input: &[u8]) -> bool {
        false
    }

    /// Gives back all the room of growable storage unless a partial frame is held in it, for a
    /// decoder that will be idle for a while (it grows again when a frame needs it). `decode`
    /// does the same by itself at its first call after a frame of more than [`IDLE_ROOM`]
    /// bytes. Fixed storage keeps what it has.
    fn shrink(&mut self) {}
}

/// A framing: a decoder together with the encoder of the same wire format.
///
/// Implemented by each decoder type, which names its encoder, so the decoder type alone (with
/// the largest frame and the storage it carries) says how a
/// [`Connection`](crate::connection::Connection) frames both ways.
///
/// ```
/// use framelink_core::framing::{Cobs, CobsDecoder, Framing};
///
/// fn encoder_of<F: Framing>(_: &F) -> &'static str {
///     core::any::type_name::<F::Encoder>()
/// }
/// assert_eq!(encoder_of(&CobsDecoder::<300>::new()), core::any::type_name::<Cobs>());
/// ```
pub trait Framing: Decoder {
    /// The encoder of the same wire format.
    type Encoder: Encoder;
}

impl<const N: usize, B: crate::buffer::Buffer> Framing for LengthDelimitedDecoder<N, B> {
    type Encoder = LengthDelimited;
}

impl<const N: usize, B: crate::buffer::Buffer> Framing for CobsDecoder<N, B> {
    type Encoder = Cobs;
}

impl Framing for DatagramDecoder {
    type Encoder = Datagram;
}

/// A frame encoder.
pub trait Encoder {
    /// Bytes to send once before the first frame of a connection (COBS sends a lone
    /// delimiter, so a receiver holding a partial frame from an earlier peer starts afresh).
    const PREAMBLE: &'static [u8] = &[];

    /// The largest encoding of a packet of `packet_len` bytes.
    fn max_encoded_len(packet_len: usize) -> usize;

    /// Encodes `packet` (as [`Repr::emit`] wrote it) at the start of `out`; returns the bytes
    /// written. On error nothing is written.
    fn encode(packet: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall>;

    /// Encodes `packet` of the session tagged `tag` (its session id): the datagram framing
    /// writes the tag in front of the packet, stream framings carry no tag and ignore it.
    fn encode_tagged(tag: u32, packet: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let _ = tag;
        Self::encode(packet, out)
    }

    /// For framings that leave the packet as it is and only put a fixed header before it
    /// (length-delimited: the 4-byte prefix; datagram: the 4-byte session tag), the header's
    /// length: a packet
    /// can then be emitted straight into the output after its header
    /// ([`write_header`](Self::write_header)), without the copy [`encode`](Self::encode)
    /// makes. `None` (COBS) when the packet itself is transformed.
    const HEADER_LEN: Option<usize> = None;

    /// Writes the header of the frame of a packet of `packet_len` bytes of the session tagged
    /// `tag` into `out`, which holds exactly [`HEADER_LEN`](Self::HEADER_LEN) bytes. Called
    /// only when that is `Some`.
    fn write_header(tag: u32, packet_len: usize, out: &mut [u8]) {
        let _ = (tag, packet_len, out);
    }

    /// Emits `repr` and frames it at the start of `out` in one step; returns the bytes written.
    /// (A datagram gets tag 0, as with [`encode`](Self::encode).)
    ///
    /// Where the framing has a [`HEADER_LEN`](Self::HEADER_LEN) the packet is emitted in place
    /// (one copy of the payload, `scratch` unused); otherwise it is emitted into `scratch`
    /// (at least [`Repr::buffer_len`] bytes) and encoded from there. On error nothing is
    /// written to `out`.
    ///
    /// ```
    /// use framelink_core::framing::{Encoder, LengthDelimited};
    /// use framelink_core::wire::{Repr, SeqNumber};
    ///
    /// let mut out = [0u8; 32];
    /// let n = LengthDelimited::emit(&Repr::data(SeqNumber(1), None, false, b"hi"), &mut [], &mut out)?;
    /// assert_eq!(&out[..4], &15u32.to_le_bytes());
    /// assert_eq!(n, 4 + 15);
    /// # Ok::<(), framelink_core::wire::BufferTooSmall>(())
    /// ```
    fn emit(repr: &Repr<'_>, scratch: &mut [u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        match Self::HEADER_LEN {
            Some(header) => {
                let total = header + repr.buffer_len();
                let dst = out.get_mut(..total).ok_or(BufferTooSmall { required: total })?;
                let len = repr.emit(&mut dst[header..])?;
                Self::write_header(0, len, &mut dst[..header]);
                Ok(header + len)
            }
            None => {
                let len = repr.emit(scratch)?;
                Self::encode(&scratch[..len], out)
            }
        }
    }
}
