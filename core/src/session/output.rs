//! Output: the next packet to send.

use super::{CloseReason, Session, State};
use crate::Instant;
use crate::wire::{
    AckPayload, BufferTooSmall, ErrorPayload, Header, OVERHEAD, PacketType, PingPayload, Repr, SeqNumber,
};

impl<B: AsRef<[u8]> + AsMut<[u8]>, const W: usize> Session<B, W> {
    /// Writes the next packet to send into `buf` and returns its length, or `None` when nothing
    /// is due. Call it until it returns `None` after every other call.
    ///
    /// The packet is unframed: encode it with the transport's framing. A buffer of
    /// 13 + the peer's `max_payload` bytes (at most 65548) is always enough; a smaller one cuts
    /// DATA smaller, and one too small for a control packet returns [`BufferTooSmall`] with
    /// nothing changed.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        let sent = self.next_packet(now, buf)?;
        if sent.is_some() {
            self.stats.packets_sent += 1;
        }
        Ok(sent)
    }

    fn ack_field(&self) -> Option<SeqNumber> {
        self.peer.is_some().then_some(self.rcv_next)
    }

    fn next_packet(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        if let Some((code, detail)) = self.pending.error {
            let error = ErrorPayload { code, detail, text: &[] };
            let len = emit_control(buf, PacketType::Error, None, ErrorPayload::LEN, |p| {
                let _ = error.emit(p);
            })?;
            self.pending.error = None;
            return Ok(Some(len));
        }
        if self.state == State::Closed {
            return Ok(None);
        }
        if self.pending.hello || self.pending.hello_ack {
            let hello = self.hello_payload();
            let kind = if self.pending.hello { PacketType::Hello } else { PacketType::HelloAck };
            let len = emit_control(buf, kind, None, hello_len(), |p| {
                let _ = hello.emit(p);
            })?;
            self.pending.hello = false;
            self.pending.hello_ack = false;
            return Ok(Some(len));
        }
        if self.peer.is_none() {
            return Ok(None);
        }
        let ack = self.ack_field();
        if let Some(pong) = self.pending.pongs.front().copied() {
            let len = emit_control(
                buf,
                PacketType::Pong,
                ack,
                PingPayload::LEN + usize::from(pong.padding),
                |p| fill_ping(p, &pong.ping),
            )?;
            self.pending.pongs.pop_front();
            self.pending.ack = false;
            return Ok(Some(len));
        }
        if let Some(ping) = self.pending.pings.front().copied() {
            let payload = PingPayload { timestamp: now.as_micros(), token: ping.token };
            let len = emit_control(
                buf,
                PacketType::Ping,
                ack,
                PingPayload::LEN + usize::from(ping.padding),
                |p| fill_ping(p, &payload),
            )?;
            self.pending.pings.pop_front();
            self.pending.ack = false;
            return Ok(Some(len));
        }
        if let Some(len) = self.next_data(now, buf)? {
            return Ok(Some(len));
        }
        if self.pending.ack || self.pending.credit {
            let credit = self.initial_credit();
            let len = emit_control(buf, PacketType::Ack, ack, AckPayload::LEN, |p| {
                let _ = AckPayload { credit }.emit(p);
            })?;
            self.granted = self.granted.max(self.recv_cost + u64::from(credit));
            self.pending.ack = false;
            self.pending.credit = false;
            return Ok(Some(len));
        }
        self.next_close(buf)
    }

    /// The next DATA fragment, if the window and the peer's credit allow it.
    fn next_data(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        let Some(peer) = self.peer else { return Ok(None) };
        let window = usize::from(peer.window).min(self.tx.inflight_capacity());
        if self.tx.inflight() >= window {
            return Ok(None);
        }
        let room = buf.len().saturating_sub(OVERHEAD).min(usize::from(u16::MAX)) as u16;
        let Some(fragment) = self.tx.peek_fragment(peer.max_payload.min(room)) else {
            return Ok(None);
        };
        if fragment.len == 0 && fragment.more {
            return Err(BufferTooSmall { required: OVERHEAD + 1 });
        }
        let cost = u64::from(fragment.len) + u64::from(AckPayload::DATA_COST);
        if self.sent_cost + cost > self.send_limit {
            return Ok(None);
        }
        let header = Header {
            kind: PacketType::Data,
            seq: self.tx.next_seq(),
            ack: self.ack_field(),
            more: fragment.more,
        };
        let tx = &self.tx;
        let len = Repr::emit_with(header, usize::from(fragment.len), buf, |p| tx.read_at(fragment.start, p))?;
        self.sent_cost += cost;
        self.tx.commit(fragment, self.sent_cost, now);
        self.pending.ack = false;
        self.stats.bytes_sent += u64::from(fragment.len);
        Ok(Some(len))
    }

    /// CLOSE once our data is drained (CLOSING), or CLOSE-ACK (DRAINING, or both closing).
    fn next_close(&mut self, buf: &mut [u8]) -> Result<Option<usize>, BufferTooSmall> {
        if !self.tx.is_drained() {
            return Ok(None);
        }
        let ack = self.ack_field();
        match self.state {
            State::Closing if !self.close_sent => {
                let header = Header { kind: PacketType::Close, seq: self.tx.next_seq(), ack, more: false };
                let len = Repr::emit_with(header, 0, buf, |_| {})?;
                self.close_sent = true;
                Ok(Some(len))
            }
            State::Closing if self.pending.close_ack => {
                let len = emit_control(buf, PacketType::CloseAck, ack, 0, |_| {})?;
                self.finish(CloseReason::Local);
                Ok(Some(len))
            }
            State::Draining => {
                let len = emit_control(buf, PacketType::CloseAck, ack, 0, |_| {})?;
                self.finish(CloseReason::Peer);
                Ok(Some(len))
            }
            _ => Ok(None),
        }
    }
}

fn hello_len() -> usize {
    crate::wire::HelloPayload::LEN
}

fn fill_ping(payload: &mut [u8], ping: &PingPayload) {
    let _ = ping.emit(payload);
    payload[PingPayload::LEN..].fill(0);
}

/// Emits a packet with sequence number 0, an optional ack and a payload filled in place.
fn emit_control(
    buf: &mut [u8],
    kind: PacketType,
    ack: Option<SeqNumber>,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Result<usize, BufferTooSmall> {
    let header = Header { kind, seq: SeqNumber(0), ack, more: false };
    Repr::emit_with(header, payload_len, buf, fill)
}
