//! Running a [`Responder`] over a session: the loop firmware and `framelink serve` share.

use super::responder::{Handled, LinkState, Responder};
use crate::Instant;
use crate::framing::DecoderStats;
use crate::session::{Event, SendError, Session};

/// A [`Responder`] joined to a reply buffer: call [`poll`](Self::poll) after every input to
/// the session, and it answers requests and streams SOURCE data as the send buffer has room.
///
/// A reply that does not fit in the send buffer yet waits (and no further request is read
/// until it is out), so nothing is lost and replies keep their order.
#[derive(Debug)]
pub struct ResponderDriver<'a, B> {
    responder: Responder<'a>,
    out: B,
    /// A reply of this many bytes in `out` waits for room in the send buffer.
    pending: Option<usize>,
}

impl<'a, B: AsRef<[u8]> + AsMut<[u8]>> ResponderDriver<'a, B> {
    /// Serves with `responder`, writing replies into `out` (as large as the largest message
    /// the session accepts, plus 6 bytes).
    pub fn new(responder: Responder<'a>, out: B) -> Self {
        Self { responder, out, pending: None }
    }

    /// The responder, for its counters.
    pub fn responder(&self) -> &Responder<'a> {
        &self.responder
    }

    /// The responder, to change it (set its server counters).
    pub fn responder_mut(&mut self) -> &mut Responder<'a> {
        &mut self.responder
    }

    /// The reply buffer, when nothing waits in it (no reply waiting for room, no SOURCE stream
    /// running): a host that allocates it on demand can give its room back here between
    /// requests. `None` while it holds something still to send.
    pub fn idle_buffer_mut(&mut self) -> Option<&mut B> {
        (self.pending.is_none() && self.responder.source_need().is_none()).then_some(&mut self.out)
    }

    /// Serves what the session has received. Events that are not service requests (text
    /// messages, `Connected`, `Closed`, `Pong`) go to `on_event`.
    // Out of line: inlined into a firmware's main loop (already holding the session), it costs
    // about 230 B of register spills there.
    #[inline(never)]
    pub fn poll<S: crate::buffer::Buffer, const W: usize>(
        &mut self,
        now: Instant,
        session: &mut Session<S, W>,
        decoder: DecoderStats,
        mut on_event: impl FnMut(Event<'_>),
    ) {
        if !self.flush_pending(now, session) {
            return;
        }
        loop {
            let len = match session.poll_event() {
                None => break,
                Some(Event::Message(message)) => match self.responder.handle(now, message, self.out.as_mut())
                {
                    Handled::Plain => {
                        on_event(Event::Message(message));
                        continue;
                    }
                    Handled::Reply(len) => len,
                    // The message is released: the link's figures can be read.
                    Handled::Describe(what) => {
                        let link = LinkState::of(session, decoder);
                        match self.responder.describe(what, &link, self.out.as_mut()) {
                            Ok(len) => len,
                            Err(_) => continue,
                        }
                    }
                    Handled::Done => continue,
                },
                Some(other) => {
                    if matches!(other, Event::Closed(_)) {
                        self.responder.stop_source();
                        self.pending = None;
                    }
                    on_event(other);
                    continue;
                }
            };
            self.pending = Some(len);
            if !self.flush_pending(now, session) {
                return;
            }
        }
        self.stream_source(now, session);
    }

    /// Sends the waiting reply; false if it still waits.
    fn flush_pending<S: crate::buffer::Buffer, const W: usize>(
        &mut self,
        now: Instant,
        session: &mut Session<S, W>,
    ) -> bool {
        let Some(len) = self.pending else { return true };
        match session.send(now, &self.out.as_ref()[..len]) {
            Err(SendError::WouldBlock) => false,
            // Sent, or the session can take nothing more (closing, closed, or a reply larger
            // than the peer accepts): either way it no longer waits.
            _ => {
                self.pending = None;
                true
            }
        }
    }

    fn stream_source<S: crate::buffer::Buffer, const W: usize>(
        &mut self,
        now: Instant,
        session: &mut Session<S, W>,
    ) {
        while let Some(need) = self.responder.source_need() {
            if session.send_buffer_free() < need + 4 {
                return;
            }
            let Some(len) = self.responder.poll_source(now, self.out.as_mut()) else { return };
            if session.send(now, &self.out.as_ref()[..len]).is_err() {
                self.responder.stop_source();
                return;
            }
        }
    }
}
