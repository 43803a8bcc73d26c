//! The responder: the far side of `framelink ping|bench|info`, in firmware or in `framelink serve`.

use super::message::{
    InfoReply, SOURCE_END_LEN, SOURCE_HEADER, ServiceError, ServiceMessage, fill_pattern, op, write,
};
use super::stats::{Counter, MAX_COUNTERS, ServerCounters, StatsReply};
use crate::Instant;
use crate::framing::DecoderStats;
use crate::session::{RttStats, Session, Stats};
use crate::wire::{BufferTooSmall, HelloPayload};
use core::time::Duration;

/// What [`Responder::handle`] made of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "a reply must be sent"]
pub enum Handled {
    /// Not a service message: an ordinary message for the application (`framelink serve`
    /// prints it).
    Plain,
    /// Served; send back the first `len` bytes of `out` as one message.
    Reply(usize),
    /// Served; the reply needs the link's figures: call [`Responder::describe`] with `what`
    /// once the message is released, and send what it writes.
    Describe(Describe),
    /// Served; nothing to send now (SINK, or a SOURCE stream started: see
    /// [`Responder::poll_source`]).
    Done,
}

/// Which description a request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Describe {
    /// STATS.
    Stats,
    /// INFO.
    Info,
}

/// A snapshot of the link for STATS and INFO, taken after the request's message is released.
#[derive(Clone, Copy, Debug)]
pub struct LinkState {
    /// The session's counters.
    pub stats: Stats,
    /// The session's RTT figures.
    pub rtt: RttStats,
    /// The decoder's counters.
    pub decoder: DecoderStats,
    /// What the session announces in its handshake.
    pub local: HelloPayload,
    /// The session's receive buffer, in bytes.
    pub rx_buffer: usize,
    /// The session's send buffer, in bytes.
    pub tx_buffer: usize,
}

impl LinkState {
    /// The state of `session`, with the counters of its decoder.
    pub fn of<B: crate::buffer::Buffer, const W: usize>(
        session: &Session<B, W>,
        decoder: DecoderStats,
    ) -> Self {
        Self {
            stats: session.stats(),
            rtt: session.rtt(),
            decoder,
            local: session.local_params(),
            rx_buffer: session.receive_buffer_capacity(),
            tx_buffer: session.send_buffer_capacity(),
        }
    }
}

impl SourceJob {
    /// Pattern bytes in the next SOURCE-DATA: a full message's worth, or what is left. (The
    /// limit is `u64::MAX` for a stream limited by time only; nothing here may add to it.)
    fn data_len(&self) -> usize {
        let full = self.size - SOURCE_HEADER;
        let left = self.limit - self.offset;
        if left < full as u64 { left as usize } else { full }
    }
}

#[derive(Clone, Copy, Debug)]
struct SourceJob {
    id: u32,
    /// Pattern bytes to send in all; `u64::MAX` when only time limits the stream.
    limit: u64,
    deadline: Option<Instant>,
    size: usize,
    offset: u64,
}

/// Serves ECHO, SINK, SOURCE, STATS and INFO over an established session. `no_std`, no
/// allocation: replies are written into a buffer the caller provides (as large as the largest
/// message it accepts, plus 6 bytes for an ECHO reply).
///
/// The driver loop: for each [`Event::Message`](crate::session::Event::Message), call
/// [`handle`](Self::handle) and send what it says; while [`source_need`](Self::source_need)
/// fits in the send buffer, send what [`poll_source`](Self::poll_source) writes.
///
/// ```
/// use framelink_core::Instant;
/// use framelink_core::service::{Handled, Responder, ServiceMessage};
///
/// let mut responder = Responder::new("doc example", "0.1");
/// let mut request = [0u8; 16];
/// let n = ServiceMessage::Echo { id: 7, payload: b"hi" }.emit(&mut request)?;
/// let mut out = [0u8; 64];
/// let Handled::Reply(len) = responder.handle(Instant::ZERO, &request[..n], &mut out) else { panic!() };
/// assert_eq!(ServiceMessage::parse(&out[..len]), Ok(Some(ServiceMessage::EchoReply { id: 7, payload: b"hi" })));
/// assert_eq!(responder.handle(Instant::ZERO, b"Hello, Server!", &mut out), Handled::Plain);
/// # Ok::<(), framelink_core::wire::BufferTooSmall>(())
/// ```
#[derive(Debug)]
pub struct Responder<'a> {
    name: &'a str,
    software: &'a str,
    source: Option<SourceJob>,
    /// A finished stream whose SOURCE-END is still to be sent.
    ended: Option<(u32, u64)>,
    sink_messages: u64,
    sink_bytes: u64,
    source_bytes: u64,
    echoes: u64,
    /// The server's counters in wire order, if any.
    server: Option<[Counter; ServerCounters::FIELDS]>,
}

impl<'a> Responder<'a> {
    /// A responder that introduces itself as `name`, running `software` (for INFO).
    pub const fn new(name: &'a str, software: &'a str) -> Self {
        Self {
            name,
            software,
            source: None,
            ended: None,
            sink_messages: 0,
            sink_bytes: 0,
            source_bytes: 0,
            echoes: 0,
            server: None,
        }
    }

    /// Sets the server counters the next STATS replies carry (a host serving many sessions
    /// updates them before each poll); `None`, the default, sends the session's alone.
    pub fn set_server_counters(&mut self, counters: Option<ServerCounters>) {
        self.server = counters.map(ServerCounters::to_wire);
    }

    /// Serves one received message, writing any reply into `out`.
    ///
    /// A reply that does not fit in `out`, or a malformed request, is answered with a service
    /// ERROR instead (if even that does not fit, nothing is sent).
    pub fn handle(&mut self, now: Instant, message: &[u8], out: &mut [u8]) -> Handled {
        let error = match ServiceMessage::parse_request(message) {
            Ok(None) => return Handled::Plain,
            Ok(Some(ServiceMessage::Echo { id, payload })) => {
                match (ServiceMessage::EchoReply { id, payload }).emit_reply(out) {
                    Ok(len) => {
                        self.echoes += 1;
                        return Handled::Reply(len);
                    }
                    Err(_) => ServiceError::Malformed(op::ECHO),
                }
            }
            Ok(Some(ServiceMessage::Sink { payload })) => {
                self.sink_messages += 1;
                self.sink_bytes += payload.len() as u64;
                return Handled::Done;
            }
            Ok(Some(ServiceMessage::Source { id, bytes, millis, size })) => {
                if let Some(old) = self.source.take() {
                    self.ended = Some((old.id, old.offset));
                }
                let deadline = (millis > 0).then(|| now.add_micros(u64::from(millis) * 1000));
                let limit = if bytes == 0 { u64::MAX } else { bytes };
                self.source = Some(SourceJob { id, limit, deadline, size: size as usize, offset: 0 });
                return Handled::Done;
            }
            Ok(Some(ServiceMessage::Stats)) => return Handled::Describe(Describe::Stats),
            Ok(Some(ServiceMessage::Info)) => return Handled::Describe(Describe::Info),
            Ok(Some(other)) => ServiceError::UnknownOp(other.op()),
            Err(error) => error,
        };
        // Every refusal: a service ERROR, or nothing if even that does not fit.
        match (ServiceMessage::Error { error }).emit_reply(out) {
            Ok(len) => Handled::Reply(len),
            Err(_) => Handled::Done,
        }
    }

    /// Writes the STATS or INFO reply for `link` into `out`; returns its length.
    pub fn describe(
        &self,
        what: Describe,
        link: &LinkState,
        out: &mut [u8],
    ) -> Result<usize, BufferTooSmall> {
        let message = match what {
            // The counters go straight from the link to the wire.
            Describe::Stats => {
                let server = self.server.as_ref().map_or(&[][..], |s| s.as_flattened());
                return write(out, op::STATS_REPLY, &[self.counters(link).as_flattened(), server]);
            }
            Describe::Info => ServiceMessage::InfoReply(InfoReply::new(
                link.local.version,
                link.local.supports.0,
                link.local.max_payload,
                link.local.window,
                link.local.max_message,
                u32::try_from(link.rx_buffer).unwrap_or(u32::MAX),
                u32::try_from(link.tx_buffer).unwrap_or(u32::MAX),
                self.name,
                self.software,
            )),
        };
        message.emit_reply(out)
    }

    /// The counters a STATS reply carries for `link`.
    pub fn stats(&self, link: &LinkState) -> StatsReply {
        // What a STATS reply carries, read back (it always fits, and holds the session's counters).
        let mut reply = [0; 2 + 8 * MAX_COUNTERS];
        let len = self.describe(Describe::Stats, link, &mut reply).unwrap_or(2);
        StatsReply::read(&reply[2..len]).unwrap_or_default()
    }

    /// The session's counters of a STATS reply as they go on the wire (`u64::MAX` for an RTT
    /// not measured).
    fn counters(&self, link: &LinkState) -> [Counter; StatsReply::FIELDS] {
        let le = u64::to_le_bytes;
        [
            le(link.stats.messages_received),
            le(link.stats.bytes_received),
            le(link.stats.messages_sent),
            le(link.stats.bytes_sent),
            le(link.stats.packets_received),
            le(link.stats.packets_sent),
            le(link.stats.crc_errors.max(link.decoder.crc_errors)),
            le(link.stats.decode_errors.max(link.decoder.errors)),
            le(link.decoder.resyncs),
            le(link.decoder.dropped_bytes),
            le(link.stats.retransmits),
            le(link.stats.duplicates),
            le(rtt_micros(link.rtt.smoothed)),
            le(rtt_micros(link.rtt.min)),
            le(self.sink_messages),
            le(self.sink_bytes),
            le(self.source_bytes),
            le(self.echoes),
        ]
    }

    /// The size of the next SOURCE message, while a stream runs or its end is still to be
    /// sent: call [`poll_source`](Self::poll_source) once the send buffer has that much room
    /// (plus 4).
    pub fn source_need(&self) -> Option<usize> {
        if self.ended.is_some() {
            return Some(SOURCE_END_LEN);
        }
        self.source.map(|job| SOURCE_HEADER + job.data_len())
    }

    /// Writes the next SOURCE message into `out`: pattern data, or SOURCE-END once the byte
    /// or time limit is reached. `None` when no stream runs, or `out` is smaller than
    /// [`source_need`](Self::source_need).
    // Out of line: inlined into the driver's loop it costs about 150 B in firmware.
    #[inline(never)]
    pub fn poll_source(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        let (id, bytes) = match (self.ended, self.source.as_mut()) {
            (Some(ended), _) => ended,
            (None, None) => return None,
            (None, Some(job)) if job.offset >= job.limit || job.deadline.is_some_and(|d| now >= d) => {
                (job.id, job.offset)
            }
            (None, Some(job)) => {
                let data_len = job.data_len();
                let (header, data) = out.get_mut(..SOURCE_HEADER + data_len)?.split_at_mut(SOURCE_HEADER);
                ServiceMessage::SourceData { id: job.id, offset: job.offset, data: &[] }
                    .emit_reply(header)
                    .ok()?;
                fill_pattern(job.offset, data);
                job.offset += data_len as u64;
                self.source_bytes += data_len as u64;
                return Some(SOURCE_HEADER + data_len);
            }
        };
        let len = ServiceMessage::SourceEnd { id, bytes }.emit_reply(out).ok()?;
        // The end sent is the queued one if any, else the running stream's.
        if self.ended.take().is_none() {
            self.source = None;
        }
        Some(len)
    }

    /// Stops a SOURCE stream (the peer went away); its end is not sent.
    pub fn stop_source(&mut self) {
        self.source = None;
        self.ended = None;
    }
}

/// An RTT figure of a STATS reply: whole microseconds, `u64::MAX` when not measured.
// Out of line: two inlined copies of its 64-bit arithmetic cost about 140 B in firmware.
#[inline(never)]
fn rtt_micros(rtt: Option<Duration>) -> u64 {
    rtt.map_or(u64::MAX, |d| crate::time::duration_micros(d).min(u64::MAX - 1))
}
