//! A connection: a session joined to its framing, the sans-I/O step every driver loops over.

use crate::Instant;
use crate::buffer::Buffer;
use crate::framing::{DecoderStats, Encoder, Framing, datagram};
use crate::session::{CloseReason, Event, Session};
use crate::wire::{BufferTooSmall, DecodeError, OVERHEAD};

mod gather;
mod lend;
pub use gather::Gather;
pub use lend::Lent;

/// A [`Session`] joined to its framing: bytes and time in; bytes to write, the next deadline
/// and events out. It owns no I/O and reads no clock.
///
/// `F` is the framing, named by its decoder type (for example
/// [`LengthDelimitedDecoder`](crate::framing::LengthDelimitedDecoder), which encodes with
/// [`LengthDelimited`](crate::framing::LengthDelimited)); `B` is the storage of the session's
/// buffers and of one scratch packet.
///
/// # The step
///
/// A driver (the blocking [`io`](crate::io) loop, the async one, the embedded-nal one, or one
/// of your own) repeats:
///
/// - input: [`handle_bytes`](Self::handle_bytes) with whatever the transport delivered (any
///   chunk of a stream, or one datagram), [`handle_timeout`](Self::handle_timeout) with the
///   time (it does nothing before the deadline);
/// - output, after every input or application call:
///   [`poll_transmit`](Self::poll_transmit) (streams) or
///   [`poll_datagram`](Self::poll_datagram) until it returns 0, writing what it gives;
///   [`next_event`](Self::next_event) for what happened (messages are lent from the receive
///   buffer, never copied); [`poll_timeout`](Self::poll_timeout) for when to call again if no
///   input comes;
/// - the application's calls go to the [`session_mut`](Self::session_mut) (`send`, `ping`,
///   `close`).
///
/// When the session has ended, [`close_reason`](Self::close_reason) says why, without draining
/// events.
///
/// ```
/// use framelink_core::connection::Connection;
/// use framelink_core::framing::CobsDecoder;
/// use framelink_core::session::{Config, Event, Session};
/// use framelink_core::Instant;
///
/// type Uart = Connection<CobsDecoder<300>, [u8; 1024]>;
/// let now = Instant::ZERO;
/// let config = Config::new().max_payload(256);
/// let mut client = Uart::new(Session::client(config, 1, [0; 1024], [0; 1024], now), CobsDecoder::new(), [0; 1024]);
/// let mut server = Uart::new(Session::server(config, [0; 1024], [0; 1024], now), CobsDecoder::new(), [0; 1024]);
///
/// let mut wire = [0u8; 2048];
/// let n = client.poll_transmit(now, &mut wire)?; // a 0x00 to resynchronise, then HELLO
/// server.handle_bytes(now, &wire[..n]);
/// let n = server.poll_transmit(now, &mut wire)?; // HELLO-ACK
/// client.handle_bytes(now, &wire[..n]);
/// assert_eq!(client.next_event(), Some(Ok(Event::Connected)));
/// assert_eq!(client.next_event(), None); // nothing more until input comes
/// # Ok::<(), framelink_core::wire::BufferTooSmall>(())
/// ```
#[derive(Debug)]
pub struct Connection<F, B: Buffer, const W: usize = 16> {
    session: Session<B, W>,
    decoder: F,
    /// Scratch for one unframed packet, for framings that transform it (COBS); grown to
    /// `max_packet` at the first packet sent.
    packet: B,
    preamble_sent: bool,
}

impl<F: Framing, B: Buffer, const W: usize> Connection<F, B, W> {
    /// Joins `session` to a framing. Packets sent are at most 13 + the session's `max_payload`.
    ///
    /// `packet` is scratch for one packet, used only by framings that transform it (COBS; the
    /// others frame each packet in place in the output, and any `packet` will do). Growable
    /// storage (an empty `Vec`) grows to the largest packet when the first is sent; fixed
    /// storage is the largest packet itself: give it 13 + `max_payload` bytes (shorter cuts
    /// DATA smaller).
    pub fn new(session: Session<B, W>, decoder: F, packet: B) -> Self {
        Self { session, decoder, packet, preamble_sent: false }
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
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        let _ = self.feed::<false, _>(now, bytes);
    }

    /// Like [`handle_bytes`](Self::handle_bytes), for input the connection may change: a keyed
    /// session opens each sealed packet that lies whole in `bytes` where it lies, rather than
    /// copying it out to open it (a packet that came in pieces, put together in the decoder,
    /// is opened from a copy). What `bytes` holds afterwards is unspecified.
    pub fn handle_bytes_mut(&mut self, now: Instant, bytes: &mut [u8]) {
        let _ = self.feed::<false, _>(now, bytes);
    }

    /// Decodes `bytes` and feeds what comes out to the session; with `LEND`, stops after a
    /// message lent from `bytes` ([`handle_bytes_lending`](Self::handle_bytes_lending)). A
    /// keyed session opens a sealed packet in place where `bytes` may be changed.
    #[inline(always)]
    #[cfg_attr(not(feature = "auth"), allow(unused_mut))] // only keyed sessions change `bytes`
    fn feed<const LEND: bool, I: lend::Input>(&mut self, now: Instant, mut bytes: I) -> Lent {
        let tag = if F::SESSION_TAG { datagram::session_tag(bytes.get()) } else { None };
        let len = bytes.get().len();
        let mut at = 0;
        while at < len {
            let input = &bytes.get()[at..];
            if LEND && self.decoder.is_incomplete(input) {
                return Lent { consumed: at, message: None };
            }
            let decoded = self.decoder.decode(input);
            // A decoder never consumes more than its input: `min` only spares a panic path.
            at += decoded.consumed.min(input.len());
            // A sealed packet to open where it lies in `bytes`: its header and its payload.
            #[cfg(feature = "auth")]
            let mut sealed = None;
            match decoded.frame {
                Some(Ok(packet)) => match tag {
                    Some(tag) if !self.session.accepts_tag(tag, packet.kind) => {
                        self.session.handle_decode_error(now, &DecodeError::ForeignSession { tag });
                    }
                    #[cfg(feature = "auth")]
                    _ if I::CHANGEABLE && self.session.opens(packet.kind) => {
                        // Only a payload that lies in `bytes` (not in the decoder's own
                        // storage, where a frame split across inputs is put together).
                        match lend::place_in(bytes.get(), packet.payload) {
                            Some(payload) => sealed = Some((packet.header(), payload)),
                            None => self.session.handle_packet(now, &packet),
                        }
                    }
                    _ if LEND => match lend::place_in(bytes.get(), packet.payload) {
                        Some(message) if self.session.handle_packet_lent(now, &packet) => {
                            return Lent { consumed: at, message: Some(message) };
                        }
                        Some(_) => {}
                        None => self.session.handle_packet(now, &packet),
                    },
                    _ => self.session.handle_packet(now, &packet),
                },
                Some(Err(error)) => self.session.handle_decode_error(now, &error),
                None => {}
            }
            #[cfg(feature = "auth")]
            if let Some((header, place)) = sealed
                && let Some(payload) = bytes.get_mut().and_then(|bytes| bytes.get_mut(place.clone()))
                && let Some(message) = self.session.handle_sealed_in_place(now, header, payload, LEND)
            {
                let start = place.start + message.start;
                return Lent { consumed: at, message: Some(start..place.start + message.end) };
            }
            // An event to take first (a message copied into the receive buffer): the frames
            // after it may still be lent once it is taken.
            if LEND && self.session.has_event() {
                return Lent { consumed: at, message: None };
            }
        }
        Lent { consumed: len, message: None }
    }

    /// Runs the session's timers if the deadline ([`poll_timeout`](Self::poll_timeout)) has
    /// passed; does nothing before it.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|deadline| deadline <= now) {
            self.session.handle_timeout(now);
        }
    }

    /// Writes whole frames into `out` while the next one is sure to fit; returns the bytes
    /// written, 0 when nothing is due.
    ///
    /// For a stream: give it at least [`max_frame`](Self::max_frame) bytes. With datagram
    /// framing use [`poll_datagram`](Self::poll_datagram) instead. Fails only when `out`
    /// cannot hold the largest frame and something is due.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let worst = F::Encoder::max_encoded_len(self.max_packet());
        let mut written = 0;
        if !self.preamble_sent {
            let preamble = F::Encoder::PREAMBLE;
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

    /// Writes at most one frame into `out`: one datagram. Returns its length, 0 when nothing is
    /// due. Fails, taking nothing from the session, when `out` cannot hold the largest frame.
    pub fn poll_datagram(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        self.preamble_sent = true;
        let required = F::Encoder::max_encoded_len(self.max_packet());
        if out.len() < required {
            return Err(BufferTooSmall { required });
        }
        self.poll_frame(now, out)
    }

    /// One frame from the session at the start of `out` (which holds the largest frame), or 0.
    /// Framings that leave the packet as it is get it emitted in place after their header, so
    /// the payload is copied once; COBS encodes from the scratch packet.
    fn poll_frame(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        match F::Encoder::HEADER_LEN {
            Some(header) => {
                let required = header + self.max_packet();
                let frame = out.get_mut(..required).ok_or(BufferTooSmall { required })?;
                let (head, body) = frame.split_at_mut(header);
                match self.session.poll_transmit(now, body)? {
                    Some(len) => {
                        F::Encoder::write_header(self.session.session_id(), len, head);
                        Ok(header + len)
                    }
                    None => Ok(0),
                }
            }
            None => {
                // Fixed storage keeps what it has; a packet then is at most that long.
                self.packet.grow_to(self.max_packet());
                let packet = self.packet.as_mut();
                match self.session.poll_transmit(now, packet)? {
                    Some(len) => F::Encoder::encode_tagged(
                        self.session.session_id(),
                        &self.packet.as_ref()[..len],
                        out,
                    ),
                    None => Ok(0),
                }
            }
        }
    }

    /// The largest packet sent: 13 + the session's `max_payload`, or the fixed scratch packet's
    /// length where there is one (firmware sizes it so; the frame loop is then a little
    /// shorter).
    fn max_packet(&self) -> usize {
        if F::Encoder::HEADER_LEN.is_none() && !B::GROWS {
            return self.packet.as_ref().len();
        }
        let packet = OVERHEAD + usize::from(self.session.config().max_payload_value());
        #[cfg(feature = "auth")]
        if self.session.is_keyed() {
            return packet + crate::auth::SEAL_OVERHEAD;
        }
        packet
    }

    /// The largest number of bytes one [`poll_transmit`](Self::poll_transmit) needs room for
    /// (the preamble and the largest frame), or one [`poll_datagram`](Self::poll_datagram).
    pub fn max_frame(&self) -> usize {
        F::Encoder::PREAMBLE.len() + F::Encoder::max_encoded_len(self.max_packet())
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) if no input comes first; `None`
    /// when no timer runs.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Whether [`next_event`](Self::next_event) has an answer now (an event is queued, or the
    /// session ended), so that a driver waiting for an event stops feeding input.
    pub fn is_ready(&self) -> bool {
        self.session.has_event() || self.session.is_closed()
    }

    /// The next event; once the session has ended and its [`Event::Closed`] was handed out,
    /// `Err` with the reason it ended, at every call; `None` while neither (input or time is
    /// needed). A message is lent from the receive buffer until the next call.
    #[must_use]
    pub fn next_event(&mut self) -> Option<Result<Event<'_>, CloseReason>> {
        if self.session.has_event() {
            return self.session.poll_event().map(Ok);
        }
        self.session.close_reason().map(Err)
    }

    /// Why the session ended, once it has (the reason its [`Event::Closed`] carries, whether
    /// handed out yet or not).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.session.close_reason()
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

    /// Gives back the room of the scratch packet and of the decoder
    /// ([`Decoder::shrink`](crate::framing::Decoder::shrink)), if their storage can (they grow
    /// again when needed): for a connection that will be idle for a while.
    pub fn shrink(&mut self) {
        self.packet.shrink(0);
        self.decoder.shrink();
    }

    /// Takes the session, decoder and scratch buffer apart.
    pub fn into_parts(self) -> (Session<B, W>, F, B) {
        (self.session, self.decoder, self.packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{CobsDecoder, LengthDelimitedDecoder};
    use crate::session::Config;
    use std::vec::Vec;

    fn pair<F: Framing + Default>() -> (Connection<F, Vec<u8>>, Connection<F, Vec<u8>>) {
        let config = Config::new().max_payload(200);
        let buf = || std::vec![0u8; 1024];
        let client = Session::client(config, 7, buf(), buf(), Instant::ZERO);
        let server = Session::server(config, buf(), buf(), Instant::ZERO);
        (Connection::new(client, F::default(), Vec::new()), Connection::new(server, F::default(), Vec::new()))
    }

    fn pump<F: Framing>(from: &mut Connection<F, Vec<u8>>, to: &mut Connection<F, Vec<u8>>) {
        let mut wire = std::vec![0u8; from.max_frame()];
        loop {
            let n = from.poll_transmit(Instant::ZERO, &mut wire).unwrap();
            if n == 0 {
                return;
            }
            to.handle_bytes(Instant::ZERO, &wire[..n]);
        }
    }

    #[test]
    fn the_scratch_packet_grows_only_for_a_framing_that_needs_it() {
        let (mut client, mut server) = pair::<LengthDelimitedDecoder<300>>();
        pump(&mut client, &mut server);
        assert_eq!(client.into_parts().2.capacity(), 0, "length-delimited frames in place");

        let (mut client, mut server) = pair::<CobsDecoder<300>>();
        assert_eq!(client.max_frame(), 1 + 213 + 2);
        pump(&mut client, &mut server);
        pump(&mut server, &mut client);
        assert_eq!(client.next_event(), Some(Ok(Event::Connected)));
        client.session_mut().send(Instant::ZERO, &[5; 500]).unwrap();
        pump(&mut client, &mut server);
        assert_eq!(server.next_event(), Some(Ok(Event::Connected)));
        assert_eq!(server.next_event(), Some(Ok(Event::Message(&[5; 500]))));
        client.shrink();
        assert_eq!(client.into_parts().2.capacity(), 0);
    }

    #[test]
    fn the_close_reason_stays_after_the_closed_event() {
        let (mut client, _) = pair::<LengthDelimitedDecoder<300>>();
        assert_eq!(client.next_event(), None);
        assert!(!client.is_ready());
        client.handle_timeout(Instant::from_micros(1));
        assert_eq!(client.close_reason(), None, "before the deadline nothing runs");
        let deadline = client.poll_timeout().unwrap();
        client.handle_timeout(deadline);
        let reason = client.close_reason().unwrap();
        assert!(client.is_ready());
        assert_eq!(client.next_event(), Some(Ok(Event::Closed(reason))));
        assert_eq!(client.next_event(), Some(Err(reason)));
        assert_eq!(client.next_event(), Some(Err(reason)));
    }
}
