//! A session joined to the framing of its transport, chosen at run time: the core's
//! [`Connection`] over one of three framings, with `Vec` storage.

use framelink_core::Instant;
use framelink_core::connection::Connection;
use framelink_core::framing::{CobsDecoder, DatagramDecoder, DecoderStats, LengthDelimitedDecoder};
use framelink_core::session::{CloseReason, Event, Session};
use framelink_core::wire::{BufferTooSmall, MAX_PACKET};
use framelink_std::Transport;

/// The session type of every link: buffers that grow as messages need, up to the limits of
/// the session's configuration, and are given back once idle (the core's `alloc` feature).
pub(crate) type Sess = Session<Vec<u8>>;

/// A session joined to the framing of its transport.
pub(crate) enum Framed {
    Tcp(Connection<LengthDelimitedDecoder<MAX_PACKET, Vec<u8>>, Vec<u8>>),
    Cobs(Connection<CobsDecoder<MAX_PACKET, Vec<u8>>, Vec<u8>>),
    Udp(Connection<DatagramDecoder, Vec<u8>>),
}

/// Runs `$body` with `$f` bound to the connection, whatever its framing.
macro_rules! each {
    ($framed:expr, $f:ident => $body:expr) => {
        match $framed {
            Framed::Tcp($f) => $body,
            Framed::Cobs($f) => $body,
            Framed::Udp($f) => $body,
        }
    };
}

impl Framed {
    /// Joins `session` to the framing of `transport`; `packet_len` is the largest packet this
    /// side accepts (13 + its max payload).
    pub(crate) fn new(transport: Transport, session: Sess, packet_len: usize) -> Self {
        match transport {
            Transport::Udp => {
                Self::Udp(Connection::new(session, DatagramDecoder::new(packet_len), Vec::new()))
            }
            Transport::Tcp => Self::Tcp(Connection::new(
                session,
                LengthDelimitedDecoder::with_buffer(Vec::new()),
                Vec::new(),
            )),
            // COBS: over TCP (tcp+cobs), a serial port, and any transport added later.
            _ => Self::Cobs(Connection::new(session, CobsDecoder::with_buffer(Vec::new()), Vec::new())),
        }
    }

    /// The most bytes one [`poll_transmit`](Self::poll_transmit) writes.
    pub(crate) fn max_frame(&self) -> usize {
        each!(self, f => f.max_frame())
    }

    pub(crate) fn session(&self) -> &Sess {
        each!(self, f => f.session())
    }

    pub(crate) fn session_mut(&mut self) -> &mut Sess {
        each!(self, f => f.session_mut())
    }

    pub(crate) fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        each!(self, f => f.handle_bytes(now, bytes))
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        each!(self, f => f.handle_timeout(now))
    }

    /// Whole frames for one write (streams) or one datagram (UDP); 0 when nothing is due.
    pub(crate) fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        match self {
            Self::Tcp(f) => f.poll_transmit(now, out),
            Self::Cobs(f) => f.poll_transmit(now, out),
            Self::Udp(f) => f.poll_datagram(now, out),
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        each!(self, f => f.poll_timeout())
    }

    pub(crate) fn next_event(&mut self) -> Option<Result<Event<'_>, CloseReason>> {
        each!(self, f => f.next_event())
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        each!(self, f => f.close_reason())
    }

    pub(crate) fn decoder_stats(&self) -> DecoderStats {
        each!(self, f => f.decoder_stats())
    }
}
