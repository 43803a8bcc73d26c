//! A TCP or TCP+COBS client on an event loop: its socket, its phase (accepted, serving,
//! lingering), and one step of driving it ([`Conn::step`]): bytes the socket would not take are
//! written first; then what arrived is read (while nothing waits to be written) and fed to the
//! session; then the session's events go to the handler and what the session has to send goes
//! to the socket, until neither has more.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use framelink_core::connection::Gather;
use framelink_core::session::CloseReason;
use mio::net::TcpStream;

use super::{Control, Dispatch, Handler, Served, dispatch};
use crate::clock::StdClock;
use crate::conn::{Framed, GATHER, io_slices};
use crate::link::lost_or_io;
use crate::{LinkError, Transport};

/// Reads from one connection before the loop turns to the others (it comes back to it after).
const READS_PER_TURN: usize = 16;

/// A connection served by a loop.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    /// Bytes the socket would not take yet: empty (no capacity) when the client keeps up.
    pub(super) out: Vec<u8>,
    /// The earliest deadline this connection has in the loop's [`Timers`](super::timers::Timers).
    pub(super) armed: Option<StdInstant>,
    /// Since when `out` has waited without the socket taking a byte.
    pub(super) stalled_since: Option<StdInstant>,
    /// The client ended its side of the stream.
    pub(super) eof: bool,
    /// The read budget ran out with input left: the loop comes back to it.
    pub(super) unread: bool,
    /// The socket may have input: set by a readiness event, cleared by a read that found less
    /// than it could take (the next input brings another event).
    pub(super) readable: bool,
    /// The client's end of the stream is known closed (or failed): read to the end regardless.
    pub(super) read_closed: bool,
    pub(super) phase: Phase,
}

pub(super) enum Phase {
    /// Connected, nothing read yet: no session until the first bytes arrive, or the handshake
    /// deadline passes (`at` + the handshake timeout; the session then starts at `at` and
    /// times out as any other would).
    Accepted { transport: Transport, at: StdInstant },
    /// A session runs (handshake included).
    Serving(Box<Client>),
    /// The session ended (or the client was refused): its last bytes go out, then the writing
    /// side is shut and what the client still sends is read and dropped until it closes, or
    /// `until`.
    Lingering { until: StdInstant, shut: bool, refusal: bool },
}

/// A client with a session.
pub(super) struct Client {
    pub(super) framed: Framed,
    pub(super) served: Served,
}

/// What the connections of a loop share.
pub(super) struct Shared<H> {
    pub(super) control: Arc<Control>,
    pub(super) handler: Arc<H>,
    pub(super) clock: StdClock,
    pub(super) read_buf: Box<[u8]>,
    pub(super) write_buf: Box<[u8]>,
    pub(super) index: usize,
    /// Clients connected to this loop, by id (to push messages to).
    pub(super) by_id: HashMap<u64, usize>,
}

/// What became of a connection after a [`Conn::step`].
#[derive(Debug)]
pub(super) enum Step {
    /// It goes on.
    Keep,
    /// Its session ended, for this reason: it is to linger.
    Ended(Result<CloseReason, LinkError>),
    /// The connection failed under its session.
    Failed(LinkError),
    /// It is done (or the handler panicked): drop it now.
    Drop,
}

impl Conn {
    pub(super) fn new(stream: TcpStream, phase: Phase) -> Self {
        Self {
            stream,
            out: Vec::new(),
            armed: None,
            stalled_since: None,
            eof: false,
            unread: false,
            readable: true,
            read_closed: false,
            phase,
        }
    }

    /// When the connection must be looked at again, if nothing happens before.
    pub(super) fn deadline<H>(&self, shared: &Shared<H>) -> Option<StdInstant> {
        match &self.phase {
            Phase::Serving(client) => {
                let session = client.framed.session().poll_timeout().map(|at| shared.clock.to_std(at));
                let stall = self.stalled_since.map(|since| since + shared.control.config.link.idle_timeout);
                [session, stall].into_iter().flatten().min()
            }
            Phase::Lingering { until, .. } => Some(*until),
            Phase::Accepted { at, .. } => Some(*at + shared.control.config.link.handshake_timeout),
        }
    }

    /// Writes what waits, reads what arrived, serves the session.
    pub(super) fn step<H: Handler>(&mut self, shared: &mut Shared<H>) -> Step {
        // Nothing is read before the connection has a session to give it to.
        if matches!(self.phase, Phase::Accepted { .. }) {
            return Step::Keep;
        }
        let std_now = StdInstant::now();
        if let Err(error) = self.flush(std_now) {
            return self.failed(lost_or_io(error));
        }
        if self.readable && self.out.is_empty() && !self.eof {
            let read = self.read(shared);
            if let Err(error) = read {
                return self.failed(lost_or_io(error));
            }
        }
        match &mut self.phase {
            Phase::Serving(client) => {
                let step = serve(client, &mut self.stream, &mut self.out, shared);
                if !matches!(step, Step::Keep) {
                    return step;
                }
                if self.stalled_since.is_none() && !self.out.is_empty() {
                    self.stalled_since = Some(std_now);
                }
                if self
                    .stalled_since
                    .is_some_and(|since| since + shared.control.config.link.idle_timeout <= std_now)
                {
                    return Step::Failed(LinkError::Stalled);
                }
                if self.eof {
                    return Step::Failed(LinkError::ConnectionLost);
                }
                Step::Keep
            }
            Phase::Lingering { until, shut, .. } => {
                if self.out.is_empty() && !*shut {
                    *shut = true;
                    if self.stream.shutdown(Shutdown::Write).is_err() {
                        return Step::Drop;
                    }
                }
                if (*shut && self.eof) || *until <= std_now { Step::Drop } else { Step::Keep }
            }
            Phase::Accepted { .. } => Step::Keep,
        }
    }

    /// A failure of the connection: serving, it ends the session; lingering, the connection.
    fn failed(&self, error: LinkError) -> Step {
        match self.phase {
            Phase::Serving(_) => Step::Failed(error),
            Phase::Lingering { .. } | Phase::Accepted { .. } => Step::Drop,
        }
    }

    /// Writes what waits in `out`, as far as the socket takes it.
    fn flush(&mut self, now: StdInstant) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = write_some(&mut self.stream, &self.out)?;
        if written > 0 {
            self.out.drain(..written);
            self.stalled_since = (!self.out.is_empty()).then_some(now);
        }
        if self.out.is_empty() {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Reads until the socket has nothing more (or the budget runs out), feeding a session
    /// what arrives; a lingering connection drops it.
    fn read<H>(&mut self, shared: &mut Shared<H>) -> io::Result<()> {
        for _ in 0..READS_PER_TURN {
            match self.stream.read(&mut shared.read_buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(len) => {
                    if let Phase::Serving(client) = &mut self.phase {
                        let now = shared.clock.now();
                        client.framed.handle_bytes_mut(now, &mut shared.read_buf[..len]);
                    }
                    // Less than asked for: the socket is empty for now (unless its end is
                    // known to have come, which no later event would report).
                    if len < shared.read_buf.len() && !self.read_closed {
                        self.readable = false;
                        return Ok(());
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.unread = true;
        Ok(())
    }
}

/// Runs the session's timers, hands its events to the handler and writes what it has to send,
/// until nothing more is due or the socket takes no more.
fn serve<H: Handler>(
    client: &mut Client,
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    shared: &mut Shared<H>,
) -> Step {
    let now = shared.clock.now();
    if client.framed.session().poll_timeout().is_some_and(|at| at <= now) {
        client.framed.session_mut().handle_timeout(now);
        // Once the session has given its buffers back (both empty for a keepalive interval),
        // the framing's scratch room and the responder's reply buffer go too.
        let session = client.framed.session();
        if session.send_buffer_storage() == 0 && session.receive_buffer_storage() == 0 {
            client.framed.shrink();
            client.served.give_back_reply_buffer();
        }
    }
    loop {
        let outcome =
            dispatch(&*shared.handler, &mut client.framed, &mut client.served, &shared.control, now);
        if let Err(error) = transmit(&mut client.framed, stream, out, &mut shared.write_buf, now) {
            return Step::Failed(error);
        }
        let session = client.framed.session();
        match outcome {
            // Sending can end the session (CLOSE-ACK) or make room for replies: look again.
            Dispatch::Wait
                if session.has_event() && (client.served.outbox.is_empty() || session.is_closed()) => {}
            Dispatch::Wait => return Step::Keep,
            Dispatch::Ended(reason) => return Step::Ended(Ok(reason)),
            Dispatch::Panicked => return Step::Drop,
        }
    }
}

/// Writes the session's frames while the socket takes them whole; keeps the rest of the last
/// write in `out` (and takes no more from the session until it is written).
fn transmit(
    framed: &mut Framed,
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    write_buf: &mut [u8],
    now: framelink_core::Instant,
) -> Result<(), LinkError> {
    while out.is_empty() {
        let frames = match framed.poll_transmit_gather(now, write_buf) {
            Ok(frames) if frames.is_empty() => return Ok(()),
            Ok(frames) => frames,
            Err(error) => return Err(LinkError::Io(io::Error::other(error.to_string()))),
        };
        let written = write_some_gathered(stream, &frames).map_err(lost_or_io)?;
        for rest in frames.tail(written) {
            out.extend_from_slice(rest);
        }
    }
    Ok(())
}

/// Writes as much of `frames` as the socket takes now, in vectored writes (DATA payloads
/// straight from the send buffer); returns how much.
fn write_some_gathered(stream: &mut TcpStream, frames: &Gather<'_, GATHER>) -> io::Result<usize> {
    let (mut slices, len) = io_slices(frames);
    let mut slices = &mut slices[..len];
    let mut written = 0;
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(len) => {
                written += len;
                IoSlice::advance_slices(&mut slices, len);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}

/// Writes as much of `bytes` as the socket takes now; returns how much.
pub(super) fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(len) => written += len,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}
