//! What links and served peers share: a session joined to the framing of its transport, with
//! heap buffers sized from a [`LinkConfig`](crate::LinkConfig).

use std::io::IoSlice;
use std::time::Duration;

use framelink_core::Instant;
use framelink_core::connection::{Connection, Gather, Lent};
use framelink_core::framing::{CobsDecoder, DatagramDecoder, DecoderStats, LengthDelimitedDecoder};
use framelink_core::session::{CloseReason, Event, Session};
use framelink_core::wire::{BufferTooSmall, MAX_PACKET};

use crate::Transport;

/// Storage of every session buffer on a host: it grows as messages need, up to the limits
/// of the session's configuration, and is given back once idle.
pub(crate) type Buf = Vec<u8>;
/// Slices of one vectored write ([`Framed::poll_transmit_gather`]): enough for 16 frames of
/// large DATA (4 each) and the preamble; frames of short DATA join into one slice.
pub const GATHER: usize = 65;
/// Message bytes a link's `feed` queues before it writes: on loopback TCP, writes of 128 KiB
/// moved about 1.7 times the bytes per second of writes of 64 KiB (the kernel's cost per write).
pub const FEED_BATCH: usize = 128 * 1024;
/// Receive buffer asked for each UDP socket (a server's, a link's, the relay's), where bursts
/// of datagrams queue: the usual default of 208 KiB holds only a few hundred, and the data or
/// acknowledgements of a wide window come in bursts. The kernel caps it (`rmem_max` on Linux).
const UDP_RECV_BUFFER: usize = 4 << 20;

/// Asks for a receive buffer of 4 MiB on the UDP `socket`, best effort: a smaller one only
/// makes losses likelier.
pub fn raise_udp_recv_buffer<S>(socket: &S)
where
    for<'a> socket2::SockRef<'a>: From<&'a S>,
{
    let _ = socket2::SockRef::from(socket).set_recv_buffer_size(UDP_RECV_BUFFER);
}

/// `frames` as I/O slices for one vectored write: the first `len` of the array.
pub(crate) fn io_slices<'a>(frames: &Gather<'a, GATHER>) -> ([IoSlice<'a>; GATHER], usize) {
    let mut slices = [IoSlice::new(&[]); GATHER];
    let mut len = 0;
    for (slot, slice) in slices.iter_mut().zip(frames.slices()) {
        *slot = IoSlice::new(slice);
        len += 1;
    }
    (slices, len)
}

/// The session type of every link: up to 8192 DATA packets in flight (9.8 MB in 1200-byte
/// packets: at 10% loss a hole at the front of the window takes two to four round trips to
/// fill, so a path of 50 ms round trip still moves about 400 Mbit/s). Their records live on
/// the heap while packets are in flight or held, so an idle session stays small.
pub type Sess = Session<Buf, WINDOW>;
/// DATA packets a session can have in flight.
pub(crate) const WINDOW: usize = 8192;

/// A zeroed heap buffer (calloc: pages are only touched when used).
pub(crate) fn zeroed(len: usize) -> Box<[u8]> {
    vec![0u8; len].into_boxed_slice()
}

/// A session joined to one of the three framings, chosen at run time: the core's
/// [`Connection`] with `Vec` storage. Public (hidden) so that framelink-tokio drives the very
/// same type; not a stable API.
pub enum Framed {
    /// Length-delimited frames (`tcp://`).
    Tcp(Connection<LengthDelimitedDecoder<MAX_PACKET, Vec<u8>>, Buf, WINDOW>),
    /// COBS frames (`tcp+cobs://`, `serial://`).
    Cobs(Connection<CobsDecoder<MAX_PACKET, Vec<u8>>, Buf, WINDOW>),
    /// One packet per datagram (`udp://`).
    Udp(Connection<DatagramDecoder, Buf, WINDOW>),
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
    /// side sends or accepts (13 + its max payload).
    ///
    /// Only COBS needs a scratch packet (the other framings frame each packet in place).
    pub fn new(transport: Transport, session: Sess, packet_len: usize) -> Self {
        match transport {
            Transport::Udp => {
                Self::Udp(Connection::new(session, DatagramDecoder::new(packet_len), Vec::new()))
            }
            Transport::TcpCobs | Transport::Serial => {
                Self::Cobs(Connection::new(session, CobsDecoder::with_buffer(Vec::new()), Vec::new()))
            }
            Transport::Tcp => Self::Tcp(Connection::new(
                session,
                LengthDelimitedDecoder::with_buffer(Vec::new()),
                Vec::new(),
            )),
        }
    }

    /// The largest frame [`poll_transmit`](Self::poll_transmit) may write (for the
    /// `packet_len` given to [`new`](Self::new), which the session's `max_payload` says).
    pub fn max_frame(&self) -> usize {
        each!(self, f => f.max_frame())
    }

    /// The session.
    pub fn session(&self) -> &Sess {
        each!(self, f => f.session())
    }

    /// The session, to send on or close.
    pub fn session_mut(&mut self) -> &mut Sess {
        each!(self, f => f.session_mut())
    }

    /// Feeds bytes read from the transport (one whole datagram for UDP).
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        each!(self, f => f.handle_bytes(now, bytes))
    }

    /// [`handle_bytes`](Self::handle_bytes) for bytes it may change: a keyed session opens
    /// sealed packets where they lie ([`Connection::handle_bytes_mut`]).
    pub fn handle_bytes_mut(&mut self, now: Instant, bytes: &mut [u8]) {
        each!(self, f => f.handle_bytes_mut(now, bytes))
    }

    /// Feeds bytes read from the transport until a message is lent from them
    /// ([`Connection::handle_bytes_lending`]).
    pub fn handle_bytes_lending(&mut self, now: Instant, bytes: &mut [u8]) -> Lent {
        each!(self, f => f.handle_bytes_lending(now, bytes))
    }

    /// Whole frames for one write (streams) or one datagram (UDP); 0 when nothing is due.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        match self {
            Self::Tcp(f) => f.poll_transmit(now, out),
            Self::Cobs(f) => f.poll_transmit(now, out),
            Self::Udp(f) => f.poll_datagram(now, out),
        }
    }

    /// Frames for one vectored write on a stream (or one datagram), at most `out.len()` bytes
    /// in all: the payloads of DATA packets are lent from the send buffer, not copied into
    /// `out` ([`Connection::poll_transmit_gather`]). Empty when nothing is due.
    pub fn poll_transmit_gather<'a>(
        &'a mut self,
        now: Instant,
        out: &'a mut [u8],
    ) -> Result<Gather<'a, GATHER>, BufferTooSmall> {
        each!(self, f => f.poll_transmit_gather(now, out))
    }

    /// Gives back the room of the scratch packet and of an idle decoder.
    pub fn shrink(&mut self) {
        each!(self, f => f.shrink())
    }

    /// The decoder's counters.
    pub fn decoder_stats(&self) -> DecoderStats {
        each!(self, f => f.decoder_stats())
    }

    /// Runs the session's timers if their deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        each!(self, f => f.handle_timeout(now))
    }

    /// When to run the timers if no input comes first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session().poll_timeout()
    }

    /// Whether [`next_event`](Self::next_event) has an answer now.
    pub fn is_ready(&self) -> bool {
        each!(self, f => f.is_ready())
    }

    /// The next event, or why the session ended once that was reported; `None` while neither.
    pub fn next_event(&mut self) -> Option<Result<Event<'_>, CloseReason>> {
        each!(self, f => f.next_event())
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.session().close_reason()
    }
}

/// Remembers the read timeout set on a socket, so that a new one is set (one system call) only
/// when the old one would wake up too late, or much too early.
#[derive(Debug, Default)]
pub(crate) struct TimeoutCache {
    /// What the socket has: `None` before the first call.
    set: Option<Option<Duration>>,
}

impl TimeoutCache {
    /// The timeout to set before a read that must return within `wait` (`None`: no limit), or
    /// `None` if the socket's current timeout will do.
    pub(crate) fn update(&mut self, wait: Option<Duration>) -> Option<Option<Duration>> {
        let fits = match (self.set, wait) {
            (Some(None), None) => true,
            // Late by at most 5 ms (or an eighth of the wait), early by at most half.
            (Some(Some(set)), Some(wait)) => {
                set <= wait + (wait / 8).min(Duration::from_millis(5)) && set >= wait / 2
            }
            _ => false,
        };
        if fits {
            return None;
        }
        self.set = Some(wait);
        Some(wait)
    }

    /// Forgets the socket's timeout (after setting it failed).
    pub(crate) fn reset(&mut self) {
        self.set = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_set_only_when_it_would_be_late_or_far_too_early() {
        let mut cache = TimeoutCache::default();
        let s = Duration::from_secs;
        assert_eq!(cache.update(Some(s(5))), Some(Some(s(5))));
        assert_eq!(cache.update(Some(s(5) - Duration::from_micros(200))), None);
        assert_eq!(cache.update(Some(s(4))), Some(Some(s(4))));
        assert_eq!(cache.update(Some(s(9))), Some(Some(s(9))));
        assert_eq!(cache.update(None), Some(None));
        assert_eq!(cache.update(None), None);
    }
}
