//! Input: packets, decode errors and timeouts. Each handler implements one row of the table in
//! the module docs.

use super::{
    CloseReason, ControlEvent, PeerParams, PongOut, REQUIRES, Role, SUPPORTS, Session, State, Timeout,
};
use crate::Instant;
use crate::session::timer::Timer;
use crate::wire::{
    AckPayload, DecodeError, ErrorCode, ErrorPayload, HelloPayload, PacketType, PingPayload, Repr, SeqNumber,
    VERSION,
};

impl<B: AsRef<[u8]> + AsMut<[u8]>, const W: usize> Session<B, W> {
    /// Handles one packet from the peer (as a decoder or [`Repr::parse`] produced it).
    pub fn handle_packet(&mut self, now: Instant, packet: &Repr<'_>) {
        if self.state == State::Closed && !(self.role == Role::Server && packet.kind == PacketType::Hello) {
            self.stats.ignored += 1;
            return;
        }
        self.stats.packets_received += 1;
        if self.peer.is_some() {
            self.heard(now);
            if let Some(ack) = packet.ack {
                self.on_ack_number(now, ack);
            }
        }
        match packet.kind {
            PacketType::Hello => self.on_hello(now, packet),
            PacketType::HelloAck => self.on_hello_ack(now, packet),
            PacketType::Data => self.on_data(packet),
            PacketType::Ack => self.on_ack(packet),
            PacketType::Ping => self.on_ping(packet),
            PacketType::Pong => self.on_pong(now, packet),
            PacketType::Close => self.on_close(packet),
            PacketType::CloseAck => self.on_close_ack(),
            PacketType::Error => self.on_error(packet),
            PacketType::Unknown(_) => self.stats.ignored += 1,
        }
    }

    /// Counts a frame the decoder rejected. A server still in LISTEN answers a bad version with
    /// ERROR (version mismatch) and closes; everything else is only counted.
    pub fn handle_decode_error(&mut self, _now: Instant, error: &DecodeError) {
        debug!("framelink session {=u32:#x}: frame rejected: {}", self.session_id, error);
        self.stats.decode_errors += 1;
        if matches!(error, DecodeError::BadCrc { .. }) {
            self.stats.crc_errors += 1;
        }
        if matches!(error, DecodeError::BadVersion { .. }) && self.state == State::Listen {
            self.fail(ErrorCode::VersionMismatch, VERSION.into());
        }
    }

    /// Runs the timers that are due at `now`: keepalive PING, or the end of the session on a
    /// handshake, idle or close timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in Timer::VALUES {
            if !self.timers.is_expired(timer, now) {
                continue;
            }
            match timer {
                Timer::Handshake => return self.finish(CloseReason::TimedOut(Timeout::Handshake)),
                Timer::Idle => {
                    let ms = u32::try_from(self.config.idle_timeout.as_millis()).unwrap_or(u32::MAX);
                    self.pending.error = Some((ErrorCode::IdleTimeout, ms));
                    return self.finish(CloseReason::TimedOut(Timeout::Idle));
                }
                Timer::Close => return self.finish(CloseReason::TimedOut(Timeout::Close)),
                Timer::KeepAlive => {
                    if !self.pending.pings.iter().any(|p| p.token == 0) {
                        let _ = self.pending.pings.push_back(super::PingOut { token: 0, padding: 0 });
                    }
                    self.timers.set(Timer::KeepAlive, now + self.config.keepalive);
                }
            }
        }
    }

    /// The peer is alive: push the keepalive and idle deadlines back.
    fn heard(&mut self, now: Instant) {
        if matches!(self.state, State::Established | State::Closing | State::Draining) {
            self.timers.set(Timer::KeepAlive, now + self.config.keepalive);
            self.timers.set(Timer::Idle, now + self.config.idle_timeout);
        }
    }

    fn on_ack_number(&mut self, now: Instant, ack: SeqNumber) {
        if !self.tx.is_valid_ack(ack) {
            self.stats.ignored += 1;
            return;
        }
        let mut acked = 0u64;
        let last = self.tx.acknowledge(ack, |segment| acked += u64::from(segment.len));
        if let Some(segment) = last {
            self.stats.bytes_acked += acked;
            self.acked_cost = segment.cost_end;
            // Karn's rule: no sample from a packet sent more than once.
            if segment.transmissions == 1 {
                self.rtt.add_sample(now - segment.sent_at);
            }
        }
    }

    fn on_hello(&mut self, now: Instant, packet: &Repr<'_>) {
        let Some(hello) = HelloPayload::parse(packet.payload) else {
            self.stats.ignored += 1;
            return;
        };
        if self.role == Role::Client {
            self.stats.ignored += 1;
            return;
        }
        match self.state {
            State::Listen => self.accept_hello(now, &hello),
            State::Established | State::Closing | State::Draining if hello.session_id == self.session_id => {
                self.pending.hello_ack = true;
            }
            State::Established | State::Closing | State::Draining => {
                self.push_event(ControlEvent::Closed(CloseReason::Reset));
                self.reset(now);
                self.accept_hello(now, &hello);
            }
            State::Closed if self.peer.is_none() || hello.session_id != self.session_id => {
                self.reset(now);
                self.accept_hello(now, &hello);
            }
            State::Closed | State::HelloSent => self.stats.ignored += 1,
        }
    }

    /// Checks what both HELLO and HELLO-ACK must agree on; fails the session if they don't.
    fn agree(&mut self, hello: &HelloPayload, agreed: super::Capabilities) -> bool {
        if hello.version != VERSION {
            self.fail(ErrorCode::VersionMismatch, VERSION.into());
            return false;
        }
        let missing = agreed.difference(SUPPORTS);
        let missing = missing.union(agreed.difference(hello.supports));
        if !missing.is_empty() {
            self.fail(ErrorCode::UnsupportedCapability, missing.0.into());
            return false;
        }
        if hello.max_payload == 0 || hello.window == 0 {
            self.fail(ErrorCode::ProtocolViolation, u8::from(PacketType::Hello).into());
            return false;
        }
        true
    }

    fn establish(&mut self, now: Instant, hello: &HelloPayload, agreed: super::Capabilities) {
        self.peer = Some(PeerParams {
            max_payload: hello.max_payload,
            window: hello.window,
            max_message: hello.max_message,
            agreed,
        });
        self.send_limit = hello.credit.into();
        self.timers.stop(Timer::Handshake);
        self.set_state(State::Established);
        self.heard(now);
        self.push_event(ControlEvent::Connected);
    }

    fn accept_hello(&mut self, now: Instant, hello: &HelloPayload) {
        self.session_id = hello.session_id;
        let agreed = hello.requires.union(REQUIRES);
        if self.agree(hello, agreed) {
            self.pending.hello_ack = true;
            self.establish(now, hello, agreed);
        }
    }

    fn on_hello_ack(&mut self, now: Instant, packet: &Repr<'_>) {
        let hello = match HelloPayload::parse(packet.payload) {
            Some(hello) if self.state == State::HelloSent && hello.session_id == self.session_id => hello,
            _ => {
                self.stats.ignored += 1;
                return;
            }
        };
        if self.agree(&hello, hello.requires) {
            self.establish(now, &hello, hello.requires);
        }
    }

    fn on_data(&mut self, packet: &Repr<'_>) {
        let diff = packet.seq.diff(self.rcv_next);
        match self.state {
            State::Established | State::Closing | State::Draining if diff < 0 => {
                self.stats.duplicates += 1;
                self.pending.ack = true;
                return;
            }
            State::Established | State::Closing if diff == 0 => {}
            _ => {
                self.stats.ignored += 1;
                return;
            }
        }
        let len = packet.payload.len();
        let max_payload = self.announced_max_payload();
        if len > usize::from(max_payload) {
            return self.fail(ErrorCode::PayloadTooLarge, max_payload.into());
        }
        let cost = len as u64 + u64::from(AckPayload::DATA_COST);
        if self.recv_cost + cost > self.granted {
            let left = self.granted - self.recv_cost;
            return self.fail(ErrorCode::FlowControl, u32::try_from(left).unwrap_or(u32::MAX));
        }
        let max_message = self.announced_max_message();
        if (self.rx.partial_len() + len) as u64 > u64::from(max_message) {
            return self.fail(ErrorCode::MessageTooLarge, max_message);
        }
        let Ok(completed) = self.rx.push(packet.payload, packet.more) else {
            // Within the credit it always fits; a peer that ignores the credit lands here.
            return self.fail(ErrorCode::FlowControl, 0);
        };
        self.recv_cost += cost;
        self.rcv_next += 1;
        self.pending.ack = true;
        self.stats.bytes_received += len as u64;
        if completed {
            self.completed += 1;
            self.stats.messages_received += 1;
        }
    }

    fn on_ack(&mut self, packet: &Repr<'_>) {
        let credit = AckPayload::parse(packet.payload);
        match (self.state, packet.ack, credit) {
            (State::Established | State::Closing | State::Draining, Some(ack), Some(credit)) => {
                // The piggybacked number was already processed; a stale one is not our base.
                if ack == self.tx.oldest_unacked() {
                    self.send_limit = self.send_limit.max(self.acked_cost + u64::from(credit.credit));
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_ping(&mut self, packet: &Repr<'_>) {
        let ping = PingPayload::parse(packet.payload);
        match (self.state, ping) {
            (State::Established | State::Closing | State::Draining, Some(ping)) => {
                let padding = (packet.payload.len() - PingPayload::LEN) as u16;
                if self.pending.pongs.push_back(PongOut { ping, padding }).is_err() {
                    self.stats.pongs_dropped += 1;
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_pong(&mut self, now: Instant, packet: &Repr<'_>) {
        let pong = PingPayload::parse(packet.payload);
        match (self.state, pong) {
            (State::Established | State::Closing | State::Draining, Some(pong)) => {
                let rtt = now - Instant::from_micros(pong.timestamp);
                self.rtt.add_sample(rtt);
                if pong.token != 0 {
                    self.push_event(ControlEvent::Pong { token: pong.token, rtt });
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_close(&mut self, packet: &Repr<'_>) {
        let in_sequence = packet.seq == self.rcv_next;
        match self.state {
            State::Established if in_sequence => self.set_state(State::Draining),
            State::Closing if in_sequence && self.close_sent => self.pending.close_ack = true,
            State::Closing if in_sequence => self.set_state(State::Draining),
            _ => self.stats.ignored += 1,
        }
    }

    fn on_close_ack(&mut self) {
        if self.state == State::Closing && self.close_sent {
            self.finish(CloseReason::Local);
        } else {
            self.stats.ignored += 1;
        }
    }

    fn on_error(&mut self, packet: &Repr<'_>) {
        let error = ErrorPayload::parse(packet.payload);
        match (self.state, error) {
            (State::Listen | State::Closed, _) | (_, None) => self.stats.ignored += 1,
            (_, Some(error)) => {
                self.finish(CloseReason::PeerError { code: error.code, detail: error.detail })
            }
        }
    }
}
