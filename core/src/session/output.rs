//! Output: the next packet to send.

use super::gather::{Copied, PayloadOut};
use super::timer::Timer;
use super::{CloseReason, Session, State};
use crate::Instant;
use crate::wire::{
    AckPayload, BufferTooSmall, ErrorPayload, Header, OVERHEAD, PacketType, PingPayload, Repr, SeqNumber,
};

/// Selective-ack bitmap words an ACK carries at most: 8192 packets beyond the gap.
pub(super) const SACK_WORDS: usize = 256;

impl<B: crate::buffer::Buffer, const W: usize> Session<B, W> {
    /// Writes the next packet to send into `buf` and returns its length, or `None` when nothing
    /// is due. Call it until it returns `None` after every other call.
    ///
    /// The packet is unframed: encode it with the transport's framing. A buffer of
    /// 13 + the peer's `max_payload` bytes (at most 65548) is always enough; a smaller one cuts
    /// DATA smaller, and one too small for a control packet returns [`BufferTooSmall`] with
    /// nothing changed.
    ///
    /// A keyed session seals every packet after the handshake, 24 bytes longer (the payload is
    /// cut to leave the room).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        #[cfg(feature = "auth")]
        let sent = self.next_sealed(now, buf)?;
        #[cfg(not(feature = "auth"))]
        let sent = self.next_packet(now, buf)?;
        if sent.is_some() {
            self.stats.packets_sent += 1;
            self.update_retransmit_timer(now, false);
        }
        Ok(sent)
    }

    fn ack_field(&self) -> Option<SeqNumber> {
        self.peer.is_some().then_some(self.rcv_next)
    }

    pub(super) fn next_packet(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<usize>, BufferTooSmall> {
        self.next_packet_with(now, buf, &mut Copied)
    }

    /// [`next_packet`](Self::next_packet), with DATA payloads put out by `payload`.
    pub(super) fn next_packet_with(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        payload: &mut impl PayloadOut,
    ) -> Result<Option<usize>, BufferTooSmall> {
        if let Some((code, detail)) = self.pending.error {
            let error = ErrorPayload { code, detail, text: &[] };
            let len = emit_control(buf, PacketType::Error, None, ErrorPayload::LEN, |p| {
                let _ = error.emit(p);
            })?;
            self.pending.error = None;
            return Ok(Some(len));
        }
        if self.state == State::Closed {
            if self.pending.close_ack {
                // A CLOSE repeated after we closed: our CLOSE-ACK was lost.
                let len = emit_control(buf, PacketType::CloseAck, self.ack_field(), 0, no_payload)?;
                self.pending.close_ack = false;
                return Ok(Some(len));
            }
            return Ok(None);
        }
        if self.pending.hello || self.pending.hello_ack {
            let hello = self.hello_payload();
            let kind = if self.pending.hello { PacketType::Hello } else { PacketType::HelloAck };
            let len = self.emit_hello(buf, kind, &hello)?;
            if self.pending.hello && self.hello_sent_at.is_none() {
                self.hello_sent_at = Some(now);
            }
            self.pending.hello = false;
            self.pending.hello_ack = false;
            return Ok(Some(len));
        }
        if self.peer.is_none() {
            return Ok(None);
        }
        let ack = self.ack_field();
        // PONGs first (the peer is timing them), then the application's PINGs, then keepalive.
        let ping = |token| PingPayload { timestamp: now.as_micros(), token };
        let next = if let Some(pong) = self.pending.pongs.front() {
            Some((PacketType::Pong, pong.ping, pong.padding))
        } else if let Some(out) = self.pending.pings.front() {
            Some((PacketType::Ping, ping(out.token), out.padding))
        } else {
            self.pending.keepalive.then(|| (PacketType::Ping, ping(0), 0))
        };
        if let Some((kind, payload, padding)) = next {
            let len = PingPayload::LEN + usize::from(padding);
            let len = emit_control(buf, kind, ack, len, |p| fill_ping(p, &payload))?;
            if kind == PacketType::Pong {
                self.pending.pongs.pop_front();
            } else if self.pending.pings.pop_front().is_none() {
                self.pending.keepalive = false;
            }
            self.acknowledged();
            return Ok(Some(len));
        }
        if let Some(len) = self.next_resend(now, buf, payload)? {
            return Ok(Some(len));
        }
        if let Some(len) = self.next_data(now, buf, payload)? {
            return Ok(Some(len));
        }
        if self.pending.credit || (self.pending.ack && self.pending.ack_due) {
            let credit = self.credit();
            // A window past 32 packets reports what it holds in more bitmap words (5.2).
            let mut words = [0u32; SACK_WORDS];
            let used =
                if W > 32 && self.lossy() { self.rx.held_bitmaps(self.rcv_next, &mut words) } else { 0 };
            let sack = if W > 32 {
                words[0]
            } else if self.lossy() {
                self.rx.held_bitmap(self.rcv_next)
            } else {
                0
            };
            let payload = AckPayload { credit, sack };
            let len = if used > 1 {
                emit_control(buf, PacketType::Ack, ack, AckPayload::LEN + 4 * used, |p| {
                    let _ = payload.emit(p);
                    for (chunk, word) in p[AckPayload::LEN..].chunks_exact_mut(4).zip(words) {
                        chunk.copy_from_slice(&word.to_le_bytes());
                    }
                })?
            } else {
                emit_control(buf, PacketType::Ack, ack, payload.encoded_len(), |p| {
                    let _ = payload.emit(p);
                })?
            };
            self.granted.announce(credit);
            self.pending.credit = false;
            self.acknowledged();
            return Ok(Some(len));
        }
        self.next_close(now, buf)
    }

    /// The ack field just went out: nothing is owed any more.
    fn acknowledged(&mut self) {
        self.pending.ack = false;
        self.pending.ack_due = false;
        self.unacked_received = 0;
        self.timers.stop(Timer::AckDelay);
    }

    /// A DATA packet queued for retransmission, sent again as it was.
    fn next_resend(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        payload: &mut impl PayloadOut,
    ) -> Result<Option<usize>, BufferTooSmall> {
        let Some(segment) = self.tx.next_resend() else { return Ok(None) };
        if !self.may_send_data(now) {
            return Ok(None);
        }
        let header =
            Header { kind: PacketType::Data, seq: segment.seq, ack: self.ack_field(), more: segment.more };
        let (tx, at) = (&self.tx, (segment.start, usize::from(segment.len)));
        let len = payload.data(tx, header, at, buf, |p| tx.read_at(segment.start, p))?;
        self.tx.resent(segment.seq, now);
        // Repairs go twice while a wide window binds the sender on a path that loses at random:
        // each round of repair costs a round trip, and the packet at the front of the window
        // holds every later one back meanwhile. At 10% loss with thousands of packets in
        // flight, some first repair is lost in every window, and its second round costs the
        // whole window a round trip more; sent twice, a round is lost once in a hundred. With
        // at most half the window (or 32 packets) in flight the front holds nothing back (the
        // path or the CPU binds, and a copy would only cost), and while the RTT shows a queue
        // the loss is congestion: then only a repair that was lost itself goes twice. A
        // round's first copy follows an odd count of transmissions (even, past the first
        // round, otherwise). Not a probe (one packet to draw an ACK), nor after a timeout
        // (`backoff`): the path may be gone, and everything in flight goes again then.
        #[cfg(feature = "congestion")]
        if self.backoff == 0 && self.lossy() && !self.rack.probe_next {
            let random = self.tx.inflight() > (self.send_window() / 2).max(32) && !self.rtt_shows_queue();
            let count = segment.transmissions;
            if if random { count % 2 == 1 } else { count >= 2 && count % 2 == 0 } {
                self.tx.requeue(segment.seq);
            }
        }
        self.data_sent(now);
        self.stats.retransmits += 1;
        self.acknowledged();
        Ok(Some(len))
    }

    /// Packets that may be in flight: the peer's window, within the `W` we can describe (none
    /// before the handshake).
    pub(super) fn send_window(&self) -> usize {
        self.peer.map_or(0, |peer| usize::from(peer.window).min(self.tx.inflight_capacity()))
    }

    /// Whether a new DATA packet of the peer's full size could go out now (window and credit).
    pub(super) fn can_send_new_data(&self) -> bool {
        let Some(peer) = self.peer else { return false };
        let next = self.tx.peek_fragment(peer.max_payload);
        self.tx.inflight() < self.send_window()
            && next.is_some_and(|f| u32::from(f.len) + AckPayload::DATA_COST <= self.allowed.left())
    }

    /// The next DATA fragment, if the window and the peer's credit allow it.
    fn next_data(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        payload: &mut impl PayloadOut,
    ) -> Result<Option<usize>, BufferTooSmall> {
        let Some(peer) = self.peer else { return Ok(None) };
        if self.tx.inflight() >= self.send_window() {
            return Ok(None);
        }
        let room = buf.len().saturating_sub(OVERHEAD).min(usize::from(u16::MAX)) as u16;
        let Some(fragment) = self.tx.peek_fragment(peer.max_payload.min(room)) else {
            return Ok(None);
        };
        if fragment.len == 0 && fragment.more {
            return Err(BufferTooSmall { required: OVERHEAD + 1 });
        }
        let cost = u32::from(fragment.len) + AckPayload::DATA_COST;
        if cost > self.allowed.left() {
            return Ok(None);
        }
        if !self.may_send_data(now) {
            return Ok(None);
        }
        let header = Header {
            kind: PacketType::Data,
            seq: self.tx.next_seq(),
            ack: self.ack_field(),
            more: fragment.more,
        };
        let (tx, at) = (&self.tx, (fragment.start, usize::from(fragment.len)));
        let len = payload.data(tx, header, at, buf, |p| tx.read_at(fragment.start, p))?;
        let position = self.allowed.spend(cost);
        self.tx.commit(fragment, position, now);
        self.data_sent(now);
        self.acknowledged();
        self.stats.bytes_sent += u64::from(fragment.len);
        Ok(Some(len))
    }

    /// Whether the congestion window and the pacer let a DATA packet go now (with
    /// retransmission; a probe goes anyway); if the pacer holds it, the pace timer says when.
    #[inline(always)]
    fn may_send_data(&mut self, _now: Instant) -> bool {
        #[cfg(feature = "congestion")]
        if self.lossy() && !self.rack.probe_next {
            if self.tx.pipe() >= self.cc.window() as usize {
                return false;
            }
            // Pacing spreads a flight; with none in flight the next packet goes at once (the
            // retransmission timeout, capped by `max_rto`, can be shorter than a pacing
            // interval after a long RTT sample, and would otherwise fire with nothing sent).
            if self.tx.pipe() > 0
                && let Some(at) = self.pacer.delay(_now, self.rtt.smoothed())
            {
                self.timers.set(Timer::Pace, at);
                return false;
            }
        }
        true
    }

    /// A DATA packet went out: the pacer counts it, and a due probe is sent.
    #[inline(always)]
    fn data_sent(&mut self, _now: Instant) {
        #[cfg(feature = "congestion")]
        if self.lossy() {
            self.rack.probe_next = false;
            self.pacer.on_sent(_now, self.rtt.smoothed(), self.cc.window());
        }
    }

    /// CLOSE once our data is drained (CLOSING), or CLOSE-ACK (DRAINING, or both closing).
    fn next_close(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        if !self.tx.is_drained() {
            return Ok(None);
        }
        let ack = self.ack_field();
        match self.state {
            State::Closing => {
                let header = Header { kind: PacketType::Close, seq: self.tx.next_seq(), ack, more: false };
                let len = Repr::emit_with(header, 0, buf, no_payload)?;
                self.set_state(State::CloseSent);
                if !self.timers.is_running(Timer::Close) {
                    self.timers.set_after(Timer::Close, now, self.config.close_timeout_us);
                }
                Ok(Some(len))
            }
            State::CloseSent if self.pending.close_ack => {
                let len = emit_control(buf, PacketType::CloseAck, ack, 0, no_payload)?;
                self.pending.close_ack = false;
                self.close_acked = true;
                self.finish(CloseReason::Local);
                Ok(Some(len))
            }
            State::Draining => {
                let len = emit_control(buf, PacketType::CloseAck, ack, 0, no_payload)?;
                self.close_acked = true;
                self.finish(CloseReason::Peer);
                Ok(Some(len))
            }
            _ => Ok(None),
        }
    }
}

/// The fill of an empty payload: one function, so its callers share one copy of the emit code.
fn no_payload(_: &mut [u8]) {}

fn fill_ping(payload: &mut [u8], ping: &PingPayload) {
    let _ = ping.emit(payload);
    payload[PingPayload::LEN..].fill(0);
}

/// Emits a packet with sequence number 0, an optional ack and a payload filled in place.
pub(super) fn emit_control(
    buf: &mut [u8],
    kind: PacketType,
    ack: Option<SeqNumber>,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Result<usize, BufferTooSmall> {
    let header = Header { kind, seq: SeqNumber(0), ack, more: false };
    Repr::emit_with(header, payload_len, buf, fill)
}
