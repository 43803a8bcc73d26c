//! Input: packets, decode errors and timeouts. Each handler implements one row of the table in
//! the module docs.

use super::{
    Allowed, CloseReason, ControlEvent, MAX_RETRIES, PeerParams, PongOut, Role, Session, State, Timeout,
};
use crate::Instant;
use crate::session::timer::Timer;
use crate::wire::{
    AckPayload, DecodeError, ErrorCode, ErrorPayload, HelloPayload, PacketType, PingPayload, Repr,
    RetryPayload, SeqNumber, VERSION,
};

impl<B: crate::buffer::Buffer, const W: usize> Session<B, W> {
    /// Handles one packet from the peer (as a decoder or [`Repr::parse`] produced it).
    ///
    /// A keyed session opens it first: one that does not verify, or was seen before, is
    /// dropped and counted in `Stats::auth_failures`.
    #[inline]
    pub fn handle_packet(&mut self, now: Instant, packet: &Repr<'_>) {
        #[cfg(feature = "auth")]
        if self.is_sealing() && crate::auth::is_sealed_kind(packet.kind) {
            return self.handle_sealed(now, packet);
        }
        self.handle_plain(now, packet);
    }

    /// Handles one packet in the clear (unkeyed, or opened). Keyed builds call it from two
    /// places: out of line, once.
    #[cfg_attr(feature = "auth", inline(never))]
    pub(super) fn handle_plain(&mut self, now: Instant, packet: &Repr<'_>) {
        if self.state == State::Closed && !(self.role == Role::Server && packet.kind == PacketType::Hello) {
            if packet.kind == PacketType::Close && self.close_acked {
                // Our CLOSE-ACK was lost: the peer asks again.
                self.pending.close_ack = true;
            } else {
                self.stats.ignored += 1;
            }
            return;
        }
        let mut progress = false;
        if self.peer.is_some() {
            self.heard(now);
            if let Some(ack) = packet.ack {
                // An ACK's selective acknowledgement is taken in before losses are looked for.
                progress = self.on_ack_number(now, ack, packet.kind != PacketType::Ack);
            }
        }
        match packet.kind {
            PacketType::Hello => self.on_hello(now, packet),
            PacketType::HelloAck => self.on_hello_ack(now, packet),
            PacketType::Data => self.on_data(now, packet),
            PacketType::Ack => self.on_ack(now, packet, progress),
            PacketType::Ping => self.on_ping(packet),
            PacketType::Pong => self.on_pong(now, packet),
            PacketType::Close => self.on_close(packet),
            PacketType::CloseAck => self.on_close_ack(),
            PacketType::Error => self.on_error(packet),
            PacketType::Retry => self.on_retry(now, packet),
            PacketType::Unknown(_) => self.stats.ignored += 1,
        }
        // Counted after it was handled: a HELLO that restarts the session is the new one's.
        self.stats.packets_received += 1;
        self.update_retransmit_timer(now, progress);
        self.give_back_room(now);
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
                    self.pending.error = Some((ErrorCode::IdleTimeout, self.config.idle_timeout_ms));
                    return self.finish(CloseReason::TimedOut(Timeout::Idle));
                }
                Timer::Close => return self.finish(CloseReason::TimedOut(Timeout::Close)),
                Timer::Retransmit => {
                    if self.on_retransmit_timeout(now) {
                        return;
                    }
                }
                Timer::AckDelay => {
                    self.timers.stop(Timer::AckDelay);
                    self.pending.ack_due = true;
                }
                Timer::KeepAlive => {
                    self.pending.keepalive = true;
                    self.timers.set_after(Timer::KeepAlive, now, self.config.keepalive_us);
                }
                // The next poll_transmit sends what the pacer held back.
                #[cfg(feature = "congestion")]
                Timer::Pace => self.timers.stop(Timer::Pace),
                #[cfg(feature = "congestion")]
                Timer::Loss => {
                    self.timers.stop(Timer::Loss);
                    self.detect_losses(now);
                }
            }
        }
        self.give_back_room(now);
    }

    /// The retransmission timer fired (RFC 6298 5.4-5.6): send the oldest unanswered packet
    /// again and back off; past the dead-link limit, end the session. Returns whether it ended.
    fn on_retransmit_timeout(&mut self, now: Instant) -> bool {
        #[cfg(feature = "congestion")]
        if self.probe_allowed() && self.rtt.smoothed().is_some() {
            self.send_probe(now);
            return false;
        }
        self.stats.timeouts += 1;
        if self.backoff >= self.config.max_retransmits {
            self.finish(CloseReason::TimedOut(Timeout::DeadLink));
            return true;
        }
        self.backoff += 1;
        match self.state {
            State::HelloSent => {
                self.pending.hello = true;
                self.hello_resent = true;
            }
            // Our CLOSE is sent again (our data is all acknowledged in CLOSE-SENT).
            State::CloseSent => self.set_state(State::Closing),
            _ => {
                // After a timeout nothing in flight is trusted any more (as TCP restarts from
                // the oldest unacknowledged byte); what the peer reported holding is skipped.
                // A server that heard nothing but the HELLO may have lost its HELLO-ACK, and a
                // client still waiting for it ignores the DATA: send it again with the DATA.
                #[cfg(feature = "congestion")]
                if self.role == Role::Server && self.stats.packets_received <= 1 {
                    self.pending.hello_ack = true;
                }
                #[cfg(feature = "congestion")]
                if self.tx.inflight() > 0 {
                    let queue = self.rtt_shows_queue();
                    self.cc.on_persistent_congestion(queue);
                }
                if self.tx.mark_all_lost() == 0 {
                    // Nothing in flight but data waiting: the peer's credit grant may have been
                    // lost. A PING makes it answer with a fresh ACK.
                    self.pending.keepalive = true;
                }
            }
        }
        self.timers.set_after(Timer::Retransmit, now, self.rto().into());
        false
    }

    /// The probe timeout fired (RFC 8985 7.3): new data goes if the peer's window and credit
    /// allow, beyond the congestion window and the pacer, else the newest packet in flight is
    /// sent again; the retransmission timeout follows if nothing is acknowledged.
    #[cfg(feature = "congestion")]
    fn send_probe(&mut self, now: Instant) {
        self.rack.probe_out = true;
        self.stats.probes += 1;
        // The probe goes beyond the congestion window and the pacer.
        self.rack.probe_next = true;
        if !self.can_send_new_data() {
            self.tx.queue_probe();
        }
        self.timers.set_after(Timer::Retransmit, now, self.rto().into());
    }

    /// Runs RACK over what is in flight: packets overtaken by a delivered one and older than
    /// its RTT plus the reordering window are queued to be sent again (and answered by the
    /// congestion controller); the loss timer waits for the next that may become so.
    #[cfg(feature = "congestion")]
    fn detect_losses(&mut self, now: Instant) {
        let min = self.rtt.latest_and_min().1;
        let srtt = self.rtt.smoothed().unwrap_or(0) as u32;
        let Some(threshold) = self.rack.threshold(min, srtt) else { return };
        let queue = self.rtt_shows_queue();
        let next = self.tx.next_seq();
        let (cc, mut lost) = (&mut self.cc, 0u64);
        let mut due = self.tx.rack_detect(now, threshold, |seq| {
            lost += 1;
            cc.on_lost(seq, next, queue);
        });
        // A full window: nothing new goes, so once the oldest packet's repair is the last one
        // sent, no later packet can reveal that it was lost too, and every packet reported
        // meanwhile pushes the probe back. The oldest packet, which holds the window, is then
        // deemed lost once its round trip and a quarter more have passed (RACK's reordering
        // window, RFC 8985 6.2), with no later delivery needed.
        if self.tx.inflight() >= self.send_window() {
            let wait = u64::from(srtt) + u64::from(min / 4);
            let (front, front_due) = self.tx.front_overdue(now, wait);
            if let Some(seq) = front {
                lost += 1;
                self.cc.on_lost(seq, next, queue);
            }
            due = [due, front_due].into_iter().flatten().min();
        }
        self.stats.fast_retransmits += lost;
        match due {
            Some(at) => self.timers.set(Timer::Loss, at),
            None => self.timers.stop(Timer::Loss),
        }
    }

    /// `count` packets were newly delivered, the newest numbered `newest`: the congestion
    /// window may grow.
    #[cfg(feature = "congestion")]
    fn on_delivered(&mut self, count: u32, newest: SeqNumber) {
        if count == 0 {
            return;
        }
        if self.peer.is_none() {
            return;
        }
        let window = self.cc.window();
        let limited = self.tx.pipe() as u32 + count >= window / 2;
        let cap = u32::try_from(self.send_window()).unwrap_or(u32::MAX);
        let queue = self.rtt_shows_queue();
        self.cc.on_delivered(count, newest, limited, queue, cap);
    }

    /// Whether the round trip shows a queue ([`queue_building`](super::congestion::queue_building)),
    /// judged on the smoothed RTT: one late sample (a descheduled peer) is no queue.
    #[cfg(feature = "congestion")]
    pub(super) fn rtt_shows_queue(&self) -> bool {
        let (srtt, min) = (self.rtt.smoothed().unwrap_or(0) as u32, self.rtt.latest_and_min().1);
        super::congestion::queue_building(srtt, min, self.config.ack_delay_us)
    }

    /// The peer is alive: push the keepalive and idle deadlines back.
    fn heard(&mut self, now: Instant) {
        if self.state.is_open() {
            self.timers.set_after(Timer::KeepAlive, now, self.config.keepalive_us);
            self.timers.set_after(Timer::Idle, now, self.config.idle_timeout_us);
        }
        // Only our CLOSE awaits an answer, and the peer answers it once its own data is
        // drained (PROTOCOL.md 10.6), however long its retransmissions take: a peer we hear
        // is alive, so the close timer bounds the wait, not the dead-link limit.
        if self.state == State::CloseSent {
            self.backoff = 0;
        }
    }

    /// Processes a cumulative acknowledgement; returns whether it acknowledged new DATA. Losses
    /// are looked for then if `detect`, else by the caller once the packet is all taken in.
    fn on_ack_number(&mut self, now: Instant, ack: SeqNumber, detect: bool) -> bool {
        if !self.tx.is_valid_ack(ack) {
            self.stats.ignored += 1;
            return false;
        }
        let mut acked = 0u64;
        let mut clean = true;
        #[cfg(feature = "congestion")]
        let (rack, min_rtt, mut delivered) = (&mut self.rack, self.rtt.latest_and_min().1, 0u32);
        let last = self.tx.acknowledge(ack, |segment| {
            acked += u64::from(segment.len);
            clean &= segment.transmissions == 1 && !segment.sacked;
            #[cfg(feature = "congestion")]
            if !segment.sacked {
                rack.on_delivered(segment, now, min_rtt);
                delivered += 1;
            }
        });
        let Some(segment) = last else { return false };
        self.stats.bytes_acked += acked;
        self.allowed.acknowledge(segment.cost_end);
        self.backoff = 0;
        // Karn's rule: no sample from a packet sent more than once. Nor from an ack that
        // waited for a retransmission to fill a gap (a packet sent again, or one the peer held
        // ahead of the gap): that ack measures the recovery, not the path.
        if clean {
            self.rtt.sample(now, segment.sent_at);
        }
        #[cfg(feature = "congestion")]
        if self.lossy() {
            self.rack.probe_out = false;
            self.on_delivered(delivered, segment.seq);
            if detect {
                self.detect_losses(now);
            }
        }
        #[cfg(not(feature = "congestion"))]
        let _ = detect;
        if self.state == State::CloseSent {
            self.timers.set_after(Timer::Close, now, self.config.close_timeout_us);
        }
        true
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
            State::Listen => self.accept_hello(now, &hello, packet.payload),
            State::Closed if self.peer.is_none() || hello.session_id != self.session_id => {
                self.reset(now);
                self.accept_hello(now, &hello, packet.payload);
            }
            State::Closed | State::HelloSent => self.stats.ignored += 1,
            // Open: our HELLO-ACK was lost, or a new session replaces this one (a keyed
            // session only for a HELLO that proves the key).
            _ if hello.session_id == self.session_id => {
                if self.hello_is_repeat(packet.payload) {
                    self.pending.hello_ack = true;
                }
            }
            _ => {
                if !self.hello_is_genuine(packet.payload) {
                    return;
                }
                self.push_event(ControlEvent::Closed(CloseReason::Reset));
                self.reset(now);
                self.accept_hello(now, &hello, packet.payload);
            }
        }
    }

    /// Checks what both HELLO and HELLO-ACK (`kind`) must agree on; fails the session if they
    /// don't, naming `kind` when the limits are zero.
    fn agree(&mut self, kind: PacketType, hello: &HelloPayload, agreed: super::Capabilities) -> bool {
        if hello.version != VERSION {
            self.fail(ErrorCode::VersionMismatch, VERSION.into());
            return false;
        }
        let missing = agreed.difference(self.supports());
        let missing = missing.union(agreed.difference(hello.supports));
        if !missing.is_empty() {
            self.fail(ErrorCode::UnsupportedCapability, missing.0.into());
            return false;
        }
        if hello.max_payload == 0 || hello.window == 0 {
            self.fail(ErrorCode::ProtocolViolation, u8::from(kind).into());
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
        self.allowed = Allowed::new(hello.credit);
        self.timers.stop(Timer::Handshake);
        self.set_state(State::Established);
        self.heard(now);
        if self.config.spread_keepalives {
            // Fibonacci hashing spreads even consecutive ids over [0, interval / 2); the phase
            // then holds, as every later keepalive is dated from the last packet heard.
            let half = self.config.keepalive_us / 2;
            let spread = (u64::from(self.session_id.wrapping_mul(0x9E37_79B9)) * half) >> 32;
            self.timers.set_after(Timer::KeepAlive, now, self.config.keepalive_us - spread);
        }
        self.push_event(ControlEvent::Connected);
    }

    fn accept_hello(&mut self, now: Instant, hello: &HelloPayload, payload: &[u8]) {
        self.session_id = hello.session_id;
        let agreed = hello.requires.union(self.requires()).union(self.chosen_suite(hello));
        if self.agree(PacketType::Hello, hello, agreed)
            && self.authenticate(PacketType::Hello, hello, payload)
        {
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
        if self.agree(PacketType::HelloAck, &hello, hello.requires)
            && self.authenticate(PacketType::HelloAck, &hello, packet.payload)
        {
            // The handshake is the first round trip to measure (Karn: only if HELLO went once).
            if let (Some(sent), false) = (self.hello_sent_at, self.hello_resent) {
                self.rtt.sample(now, sent);
            }
            self.establish(now, &hello, hello.requires);
        }
    }

    /// A server asks for proof of our address: send HELLO again, with its cookie, at once.
    fn on_retry(&mut self, now: Instant, packet: &Repr<'_>) {
        let retry = match RetryPayload::parse(packet.payload) {
            Some(retry) if self.state == State::HelloSent && self.retries < MAX_RETRIES => retry,
            _ => {
                self.stats.ignored += 1;
                return;
            }
        };
        self.retries += 1;
        self.cookie = Some(retry.cookie);
        self.pending.hello = true;
        // The HELLO that carries the cookie is the one whose round trip counts.
        (self.hello_sent_at, self.hello_resent) = (None, false);
        self.backoff = 0;
        if self.lossy() {
            self.timers.set_after(Timer::Retransmit, now, self.rto().into());
        }
    }

    fn on_data(&mut self, now: Instant, packet: &Repr<'_>) {
        let diff = packet.seq.diff(self.rcv_next);
        let receiving = self.state.is_receiving();
        if diff < 0 && self.state.is_open() {
            self.stats.duplicates += 1;
            self.pending.ack = true;
            self.pending.ack_due = true;
            // With retransmission the peer sent it again: tell it what we hold.
            self.pending.credit |= self.lossy();
            return;
        }
        if !receiving || (diff > 0 && !self.lossy()) {
            self.stats.ignored += 1;
            return;
        }
        let len = packet.payload.len();
        let max_payload = self.announced_max_payload();
        if len > usize::from(max_payload) {
            return self.fail(ErrorCode::PayloadTooLarge, max_payload.into());
        }
        let cost = len as u32 + AckPayload::DATA_COST; // len <= max_payload, a u16
        if diff > 0 {
            return self.hold(now, packet, cost);
        }
        let left = self.granted.left_unheld();
        if cost > left {
            return self.fail(ErrorCode::FlowControl, left);
        }
        if !self.check_message_size(len) {
            return;
        }
        let Ok(completed) = self.take_payload(packet) else {
            // Within the credit it always fits; a peer that ignores the credit lands here.
            return self.fail(ErrorCode::FlowControl, 0);
        };
        self.accepted(len, cost, completed);
        if self.state == State::CloseSent {
            // The peer got our CLOSE and is draining its data towards us: the link is alive, so
            // neither the close timer nor the dead-link count may run out meanwhile, and our
            // CLOSE waits for a full RTO before it goes again.
            self.timers.set_after(Timer::Close, now, self.config.close_timeout_us);
            self.backoff = 0;
            if self.lossy() {
                self.timers.set_after(Timer::Retransmit, now, self.rto().into());
            }
        }
        // Packets held ahead of the gap this one filled follow it in order.
        while self.state != State::Closed {
            let held = self.rx.held_len(self.rcv_next);
            let Some(held_len) = held else { break };
            if !self.check_message_size(held_len) {
                return;
            }
            let held_cost = held_len as u32 + AckPayload::DATA_COST;
            self.granted.release_held(held_cost);
            match self.rx.release_held(self.rcv_next) {
                Some(completed) => self.accepted(held_len, held_cost, completed),
                None => self.stats.dropped += 1,
            }
        }
        self.ack_received(now, !self.lossy() || self.rx.held_count() > 0);
    }

    /// A message may not grow past what we announced.
    fn check_message_size(&mut self, len: usize) -> bool {
        let max_message = self.announced_max_message();
        if (self.rx.partial_len() + len) as u64 > u64::from(max_message) {
            self.fail(ErrorCode::MessageTooLarge, max_message);
            return false;
        }
        true
    }

    /// Books an in-order DATA packet that joined the receive buffer.
    fn accepted(&mut self, len: usize, cost: u32, completed: bool) {
        self.granted.spend(cost);
        self.rcv_next += 1;
        self.stats.bytes_received += len as u64;
        self.unacked_received = self.unacked_received.saturating_add(1);
        if completed {
            self.completed += 1;
            self.stats.messages_received += 1;
        }
    }

    /// Owes an acknowledgement for in-order DATA: at once on reliable streams, or if `at_once`;
    /// with retransmission, at every second packet or after the ack delay.
    fn ack_received(&mut self, now: Instant, at_once: bool) {
        self.pending.ack = true;
        if at_once || self.unacked_received >= 2 {
            self.pending.ack_due = true;
        } else if !self.timers.is_running(Timer::AckDelay) {
            self.timers.set_after(Timer::AckDelay, now, self.config.ack_delay_us.into());
        }
    }

    /// Holds DATA that arrived ahead of a gap (with retransmission only), within the window.
    /// A packet that opens a new gap or fills one, or that is not kept, is reported at once
    /// (as RFC 9000 13.2.1 asks): with its credit, the peer learns what we hold. One that
    /// extends the packets held, the next after the highest, is acknowledged as in-order DATA
    /// is, at every second packet.
    fn hold(&mut self, now: Instant, packet: &Repr<'_>, cost: u32) {
        let ahead = packet.seq.distance_from(self.rcv_next);
        if ahead >= self.announced_window() {
            self.stats.ignored += 1;
            return;
        }
        let mut at_once = !self.rx.extends_held(packet.seq);
        if !self.granted.may_hold(cost) {
            self.stats.dropped += 1;
            at_once = true;
        } else {
            match self.rx.hold(packet.seq, packet.payload, packet.more) {
                Ok(true) => {
                    self.granted.hold(cost);
                    self.stats.out_of_order += 1;
                    self.unacked_received = self.unacked_received.saturating_add(1);
                }
                Ok(false) => {
                    self.stats.duplicates += 1;
                    at_once = true;
                }
                Err(()) => {
                    self.stats.dropped += 1;
                    at_once = true;
                }
            }
        }
        self.pending.credit |= at_once;
        self.ack_received(now, at_once);
    }

    /// An ACK packet, whose number (new DATA acknowledged if `acked`) was processed: losses
    /// are looked for once, after its selective acknowledgement if it has one.
    fn on_ack(&mut self, now: Instant, packet: &Repr<'_>, acked: bool) {
        if !self.on_ack_payload(now, packet) && acked {
            #[cfg(feature = "congestion")]
            if self.lossy() {
                self.detect_losses(now);
            }
        }
    }

    /// Takes in an ACK's credit and selective acknowledgement; returns whether it had one.
    fn on_ack_payload(&mut self, now: Instant, packet: &Repr<'_>) -> bool {
        let payload = AckPayload::parse(packet.payload);
        match (self.state.is_open(), packet.ack, payload) {
            (true, Some(ack), Some(payload)) => {
                // The piggybacked number was already processed; a stale one is not our base.
                if ack == self.tx.oldest_unacked() {
                    self.allowed.grant(payload.credit);
                    #[cfg(feature = "congestion")]
                    if W > 32 && packet.payload.len() > AckPayload::LEN_WITH_SACK && self.lossy() {
                        // More bitmap words (5.2): a window past 32 packets.
                        let mut words = [0u32; super::output::SACK_WORDS];
                        let more = packet.payload[AckPayload::LEN..].chunks_exact(4);
                        for (word, bytes) in words.iter_mut().zip(more) {
                            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                        }
                        self.on_selective_ack(now, ack, &words);
                        return true;
                    }
                    if payload.sack != 0 && self.lossy() {
                        self.on_selective_ack(now, ack, &[payload.sack]);
                        return true;
                    }
                }
            }
            _ => self.stats.ignored += 1,
        }
        false
    }

    /// Marks what the peer holds beyond a gap; holes overtaken by three or more received
    /// packets are sent again at once (fast retransmit), at most once per RTT.
    fn on_selective_ack(&mut self, now: Instant, ack: SeqNumber, bitmap: &[u32]) {
        // With RACK, what was reported received dates the losses (RFC 8985).
        #[cfg(feature = "congestion")]
        {
            let (rack, min_rtt) = (&mut self.rack, self.rtt.latest_and_min().1);
            let (mut delivered, mut newest) = (0u32, ack);
            let sample = self.tx.mark_sacked_with(ack, bitmap, |segment| {
                rack.on_delivered(segment, now, min_rtt);
                delivered += 1;
                newest = segment.seq;
            });
            // A receiver reports a gap at once: a newly reported packet sent once times the path.
            if let Some(sent_at) = sample {
                self.rtt.sample(now, sent_at);
            }
            self.on_delivered(delivered, newest);
            if delivered > 0 {
                // Newly reported packets are progress (as QUIC's ACK ranges): the probe and
                // retransmission timer starts again, so a hole at the front being repaired
                // does not set off a probe, nor a timeout that would send everything again.
                self.rack.probe_out = false;
                self.backoff = 0;
                self.update_retransmit_timer(now, true);
            }
            self.detect_losses(now);
        }
        #[cfg(not(feature = "congestion"))]
        self.fast_retransmit(now, ack, bitmap[0]);
    }

    /// Without RACK: holes that three later packets overtook are sent again.
    #[cfg(not(feature = "congestion"))]
    fn fast_retransmit(&mut self, now: Instant, ack: SeqNumber, bitmap: u32) {
        // A receiver reports a gap at once, so a newly reported packet sent once times the path.
        if let Some(sent_at) = self.tx.mark_sacked(ack, bitmap) {
            self.rtt.sample(now, sent_at);
        }
        let recent = self.rtt.smoothed().unwrap_or(self.config.initial_rto_us.into());
        // Three packets overtaking a hole mark it lost (as TCP's three duplicate acks). When no
        // more can follow (fewer than four in flight, or nothing new may be sent: out of data,
        // window or credit), one is enough (early retransmit, RFC 5827).
        let dupthresh = if self.tx.inflight() >= 4 && self.can_send_new_data() { 3 } else { 1 };
        let queued = self.tx.mark_lost(dupthresh, now, recent);
        self.stats.fast_retransmits += queued as u64;
    }

    fn on_ping(&mut self, packet: &Repr<'_>) {
        let ping = PingPayload::parse(packet.payload);
        match (self.state.is_open(), ping) {
            (true, Some(ping)) => {
                let padding = (packet.payload.len() - PingPayload::LEN) as u16;
                if self.pending.pongs.push_back(PongOut { ping, padding }).is_err() {
                    self.stats.pongs_dropped += 1;
                }
                // With retransmission, a PING also asks for our credit: a grant may have been
                // lost, and the peer probes with PING when it has data but no credit.
                self.pending.credit |= self.lossy();
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_pong(&mut self, now: Instant, packet: &Repr<'_>) {
        let pong = PingPayload::parse(packet.payload);
        match (self.state.is_open(), pong) {
            (true, Some(pong)) => {
                let rtt = self.rtt.sample(now, Instant::from_micros(pong.timestamp));
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
            State::CloseSent if in_sequence => self.pending.close_ack = true,
            State::Closing if in_sequence => self.set_state(State::Draining),
            // The closer asks again while we still drain: answer with an ACK (and credit), so
            // it knows its CLOSE arrived and that we are alive (PROTOCOL.md 10.6).
            State::Draining if in_sequence => {
                self.pending.ack = true;
                self.pending.ack_due = true;
                self.pending.credit = true;
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn on_close_ack(&mut self) {
        if self.state == State::CloseSent {
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
