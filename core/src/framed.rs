//! A session and its framing together: bytes in, framed bytes out.

use core::marker::PhantomData;

use crate::Instant;
use crate::framing::{Decoder, DecoderStats, Encoder, datagram};
use crate::session::Session;
use crate::wire::{BufferTooSmall, DecodeError};

/// A [`Session`] joined to a framing: the common core of every driver.
///
/// [`handle_bytes`](Self::handle_bytes) takes whatever the transport delivered (any chunk of a
/// stream, or one datagram), decodes it and feeds the session, reporting decoder errors to it.
/// [`poll_transmit`](Self::poll_transmit) writes as many whole frames as fit into the caller's
/// buffer, ready for one write (or, for datagram framing, exactly one datagram).
///
/// `D` decodes, `E` encodes (for example [`LengthDelimitedDecoder`] and [`LengthDelimited`]),
/// `B` is the storage of the session's buffers and of one scratch packet.
///
/// [`LengthDelimitedDecoder`]: crate::framing::LengthDelimitedDecoder
/// [`LengthDelimited`]: crate::framing::LengthDelimited
///
/// ```
/// use framelink_core::framed::FramedSession;
/// use framelink_core::framing::{Cobs, CobsDecoder};
/// use framelink_core::session::{Config, Event, Session};
/// use framelink_core::Instant;
///
/// type Uart = FramedSession<CobsDecoder<300>, Cobs, [u8; 1024]>;
/// let now = Instant::ZERO;
/// let mut client = Uart::new(Session::client(Config::new(), 1, [0; 1024], [0; 1024], now), CobsDecoder::new(), [0; 1024]);
/// let mut server = Uart::new(Session::server(Config::new(), [0; 1024], [0; 1024], now), CobsDecoder::new(), [0; 1024]);
///
/// let mut wire = [0u8; 2048];
/// let n = client.poll_transmit(now, &mut wire)?; // a 0x00 to resynchronise, then HELLO
/// server.handle_bytes(now, &wire[..n]);
/// let n = server.poll_transmit(now, &mut wire)?; // HELLO-ACK
/// client.handle_bytes(now, &wire[..n]);
/// assert_eq!(client.session_mut().poll_event(), Some(Event::Connected));
/// # Ok::<(), framelink_core::wire::BufferTooSmall>(())
/// ```
#[derive(Debug)]
pub struct FramedSession<D, E, B, const W: usize = 16> {
    session: Session<B, W>,
    decoder: D,
    packet: B,
    preamble_sent: bool,
    encoder: PhantomData<E>,
}

impl<D: Decoder, E: Encoder, B: AsRef<[u8]> + AsMut<[u8]>, const W: usize> FramedSession<D, E, B, W> {
    /// Joins `session` to a framing. `packet` is scratch space for one unframed packet: give it
    /// 13 + the largest payload either side sends (65548 always suffices).
    pub fn new(session: Session<B, W>, decoder: D, packet: B) -> Self {
        Self { session, decoder, packet, preamble_sent: false, encoder: PhantomData }
    }

    /// Decodes `bytes` (a chunk of a stream, or one whole datagram) and feeds every packet and
    /// every decoder error to the session. Consumes all of `bytes`.
    ///
    /// With datagram framing `bytes` is one datagram, and a packet whose session tag does not
    /// belong to the session ([`Session::accepts_tag`]) is dropped and counted as a
    /// [`DecodeError::ForeignSession`].
    // Out of line: the session's whole input path inlines into it, and the firmware came out
    // about 270 bytes bigger with all that inlined into its main loop as well.
    #[inline(never)]
    pub fn handle_bytes(&mut self, now: Instant, mut bytes: &[u8]) {
        let tag = if D::SESSION_TAG { datagram::session_tag(bytes) } else { None };
        while !bytes.is_empty() {
            let decoded = self.decoder.decode(bytes);
            // A decoder never consumes more than its input: `get` only spares a panic path.
            bytes = bytes.get(decoded.consumed..).unwrap_or_default();
            match decoded.frame {
                Some(Ok(packet)) => match tag {
                    Some(tag) if !self.session.accepts_tag(tag, packet.kind) => {
                        self.session.handle_decode_error(now, &DecodeError::ForeignSession { tag });
                    }
                    _ => self.session.handle_packet(now, &packet),
                },
                Some(Err(error)) => self.session.handle_decode_error(now, &error),
                None => {}
            }
        }
    }

    /// Writes whole frames into `out` while the next one is sure to fit; returns the bytes
    /// written, 0 when nothing is due.
    ///
    /// With datagram framing call it with a buffer for one datagram: it stops after one frame
    /// only if `out` cannot hold two, so give it room for exactly one packet
    /// (use [`poll_datagram`](Self::poll_datagram)). Fails only when `out` cannot hold the
    /// largest frame and something is due.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let worst = E::max_encoded_len(self.packet.as_ref().len());
        let mut written = 0;
        if !self.preamble_sent {
            let preamble = E::PREAMBLE;
            let dst = out.get_mut(..preamble.len()).ok_or(BufferTooSmall { required: preamble.len() })?;
            dst.copy_from_slice(preamble);
            written = preamble.len();
            self.preamble_sent = true;
        }
        loop {
            if out.len() - written < worst {
                if written == 0 {
                    return Err(BufferTooSmall { required: worst });
                }
                return Ok(written);
            }
            match self.poll_frame(now, &mut out[written..])? {
                0 => return Ok(written),
                len => written += len,
            }
        }
    }

    /// One frame from the session at the start of `out` (which holds the largest frame), or 0.
    /// Framings that leave the packet as it is get it emitted in place after their header, so
    /// the payload is copied once; COBS encodes from the scratch packet.
    fn poll_frame(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let packet = self.packet.as_mut();
        match E::HEADER_LEN {
            Some(header) => {
                // The same room as the scratch packet, so packets come out the same size.
                let required = header + packet.len();
                let frame = out.get_mut(..required).ok_or(BufferTooSmall { required })?;
                let (head, body) = frame.split_at_mut(header);
                match self.session.poll_transmit(now, body)? {
                    Some(len) => {
                        E::write_header(self.session.session_id(), len, head);
                        Ok(header + len)
                    }
                    None => Ok(0),
                }
            }
            None => match self.session.poll_transmit(now, packet)? {
                Some(len) => E::encode_tagged(self.session.session_id(), &self.packet.as_ref()[..len], out),
                None => Ok(0),
            },
        }
    }

    /// Writes at most one frame into `out`: one datagram. Returns its length, 0 when nothing is
    /// due.
    /// Fails, taking nothing from the session, when `out` cannot hold the largest packet.
    pub fn poll_datagram(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        self.preamble_sent = true;
        let required = E::max_encoded_len(self.packet.as_ref().len());
        if out.len() < required {
            return Err(BufferTooSmall { required });
        }
        self.poll_frame(now, out)
    }

    /// The session.
    pub fn session(&self) -> &Session<B, W> {
        &self.session
    }

    /// The session, for `send`, `ping`, `close` and `poll_event`.
    pub fn session_mut(&mut self) -> &mut Session<B, W> {
        &mut self.session
    }

    /// The decoder's counters (frames, CRC errors, dropped bytes, resyncs).
    pub fn decoder_stats(&self) -> DecoderStats {
        self.decoder.stats()
    }

    /// Takes the session, decoder and scratch buffer apart.
    pub fn into_parts(self) -> (Session<B, W>, D, B) {
        (self.session, self.decoder, self.packet)
    }
}
