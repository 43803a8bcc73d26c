//! The sender's congestion window and pacing (feature `congestion`), with RFC 9002 section 7
//! (QUIC's NewReno) as the reference.
//!
//! The window counts DATA packets (the peer's window is in packets too) and bounds those in the
//! network: sent, not acknowledged, not reported received and not deemed lost. It starts at ten
//! packets and doubles every round trip in slow start. In congestion avoidance it grows by one
//! packet per window acknowledged while the round trip shows a queue, and by a quarter of what
//! is delivered while it shows none (HyStart++'s conservative slow start, RFC 9406 4.3, which
//! resumes growth once the delay falls back): a window cut during a passing delay (a
//! descheduled receiver) regains its size in a few round trips, not one packet per round trip.
//! It never grows past what the receiver grants (its window and the `W` packets the sender can
//! describe).
//!
//! The response to loss comes once per flight (a recovery period: losses of packets sent before
//! the first response get none) and depends on the path's delay. A loss while the round trip
//! shows a queue (the latest RTT above the smallest by the peer's ack delay and an eighth of
//! the RTT, at least 4 ms, at most 16 ms) is congestion: the window shrinks to 7/10 (β of RFC 9438) and slow start ends. A loss
//! on a path without a queue is taken for random loss (noise, a lossy radio, an impaired relay):
//! the window keeps its size and goes on growing (no recovery period starts), since shrinking
//! it or holding it would throw the link away. A rising delay ends
//! slow start on its own (HyStart, RFC 9406). A retransmission timeout, which comes only after
//! the tail-loss probe went unanswered, is persistent congestion: the window falls to two
//! packets.
//!
//! The pacer spreads packets at 5/4 of the window per smoothed RTT, allowing bursts of two
//! milliseconds' worth (ten to 64 packets, so a burst fits a receiver's socket buffer), so a driver that wakes once a millisecond still
//! keeps the rate.

use crate::Instant;
use crate::wire::SeqNumber;

/// Packets the window starts with (RFC 9002 7.2).
pub(super) const INITIAL_WINDOW: u32 = 10;
/// The smallest window (RFC 9002 7.2).
pub(super) const MIN_WINDOW: u32 = 2;
/// In congestion avoidance without a queue, the window grows by one packet per this many
/// delivered (RFC 9406's CSS_GROWTH_DIVISOR).
const CSS_DIVISOR: u32 = 4;
/// Bursts the pacer allows, in packets.
const MIN_BURST: u64 = 10;
const MAX_BURST: u64 = 64;
/// A burst lasts this long at the paced rate (µs).
const BURST_US: u64 = 2_000;

/// Whether the round trip shows a queue: the latest RTT `latest` exceeds the smallest `min`
/// by `min / 8`, at least 4 ms and at most 16 ms (HyStart++'s threshold, RFC 9406 4.2), beyond
/// the `ack_delay` the peer may add (an ACK does not say how long it was held).
pub(super) fn queue_building(latest: u32, min: u32, ack_delay: u32) -> bool {
    latest > min.saturating_add(ack_delay).saturating_add((min / 8).clamp(4_000, 16_000))
}

/// The congestion window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Congestion {
    window: u32,
    /// Slow start runs while the window is below it.
    ssthresh: u32,
    /// Packets delivered towards the next one-packet increase in congestion avoidance.
    delivered: u32,
    /// The recovery period: losses of packets sent before this one get no response.
    recovery: Option<SeqNumber>,
    /// Responses to congestion (the window shrank).
    pub(super) reductions: u32,
}

impl Default for Congestion {
    fn default() -> Self {
        Self { window: INITIAL_WINDOW, ssthresh: u32::MAX, delivered: 0, recovery: None, reductions: 0 }
    }
}

impl Congestion {
    /// The window in packets.
    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    /// `count` packets were newly delivered (acknowledged or reported received), the newest of
    /// them sent as `newest`. The window grows unless a recovery period runs or the sender did
    /// not fill it (`limited` false), and never past `cap`. `queue` says the RTT shows a queue.
    pub(crate) fn on_delivered(
        &mut self,
        count: u32,
        newest: SeqNumber,
        limited: bool,
        queue: bool,
        cap: u32,
    ) {
        if let Some(start) = self.recovery {
            if newest.diff(start) < 0 {
                return;
            }
            self.recovery = None;
        }
        if !limited || self.window >= cap {
            return;
        }
        if self.window < self.ssthresh {
            self.window = self.window.saturating_add(count).min(self.ssthresh);
            if queue {
                self.ssthresh = self.window;
            }
        } else if queue {
            self.delivered += count;
            if self.delivered >= self.window {
                self.delivered -= self.window;
                self.window += 1;
            }
        } else {
            // No queue: a quarter of slow start's growth (HyStart++'s conservative slow start,
            // RFC 9406 4.3, which also goes back to growing once the delay falls).
            self.delivered += count;
            self.window = self.window.saturating_add(self.delivered / CSS_DIVISOR);
            self.delivered %= CSS_DIVISOR;
        }
        self.window = self.window.min(cap.max(MIN_WINDOW));
    }

    /// The packet sent as `seq` was lost; `next` is the next sequence number to be sent. Once
    /// per flight, the window shrinks to 7/10 if `queue` (the RTT shows a queue); a loss on a
    /// path without a queue leaves it. Returns whether the window shrank.
    pub(crate) fn on_lost(&mut self, seq: SeqNumber, next: SeqNumber, queue: bool) -> bool {
        // Without a queue nothing shrinks, so no recovery period starts: one would stop the
        // window's growth for the flight, and with random loss in every flight it would never
        // grow (RFC 9002 7.3.2 enters recovery on a reduction only).
        if !queue || self.recovery.is_some_and(|start| seq.diff(start) < 0) {
            return false;
        }
        self.recovery = Some(next);
        self.window = (self.window * 7 / 10).max(MIN_WINDOW);
        self.ssthresh = self.window;
        self.delivered = 0;
        self.reductions += 1;
        true
    }

    /// The retransmission timeout fired after a probe went unanswered: persistent congestion
    /// (RFC 9002 7.6), the window falls to its minimum. Slow start then runs up to 7/10 of the
    /// old window if the RTT shows a queue (`queue`), else up to where it ran before.
    pub(crate) fn on_persistent_congestion(&mut self, queue: bool) {
        if queue {
            self.ssthresh = (self.window * 7 / 10).max(MIN_WINDOW);
        }
        self.window = MIN_WINDOW;
        self.delivered = 0;
        self.recovery = None;
        self.reductions += 1;
    }
}

/// Spreads packets over the round trip (RFC 9002 7.7).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pacer {
    /// The earliest time the next packet may go.
    next_at: u64,
}

impl Pacer {
    /// µs between packets at 5/4 of `window` packets per `srtt` µs.
    fn interval(srtt: u64, window: u32) -> u64 {
        srtt * 4 / (5 * u64::from(window.max(1)))
    }

    /// When the next packet may go, if not now. Without an RTT estimate there is no pacing.
    pub(crate) fn delay(&self, now: Instant, srtt: Option<u64>) -> Option<Instant> {
        (srtt.is_some() && self.next_at > now.as_micros()).then(|| Instant::from_micros(self.next_at))
    }

    /// A packet went at `now`. The next may go at most one interval from now: probes and
    /// repairs that go past the pacer must not push new data further out (after a long RTT
    /// sample, many such sends would otherwise hold data back beyond the retransmission
    /// timeout, which then fires with nothing to repair).
    pub(crate) fn on_sent(&mut self, now: Instant, srtt: Option<u64>, window: u32) {
        let Some(srtt) = srtt else { return };
        let interval = Self::interval(srtt, window);
        let burst = (u64::from(window) * BURST_US / srtt.max(1)).clamp(MIN_BURST, MAX_BURST);
        let now = now.as_micros();
        let floor = now.saturating_sub(burst * interval);
        self.next_at = (self.next_at.max(floor) + interval).min(now + interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u32 = 512;

    #[test]
    fn slow_start_doubles_per_round_then_a_queue_ends_it() {
        let mut cc = Congestion::default();
        assert_eq!(cc.window(), INITIAL_WINDOW);
        // A round trip: every packet of the window delivered.
        cc.on_delivered(10, SeqNumber(9), true, false, CAP);
        assert_eq!(cc.window(), 20);
        cc.on_delivered(20, SeqNumber(29), true, false, CAP);
        assert_eq!(cc.window(), 40);
        // The RTT rises: slow start ends at this window; while the queue shows, growth is one
        // packet per window.
        cc.on_delivered(40, SeqNumber(69), true, true, CAP);
        assert_eq!(cc.window(), 80);
        cc.on_delivered(79, SeqNumber(148), true, true, CAP);
        assert_eq!(cc.window(), 80);
        cc.on_delivered(1, SeqNumber(149), true, true, CAP);
        assert_eq!(cc.window(), 81);
        // The queue gone (a passing delay): a quarter of slow start, a packet per four delivered.
        cc.on_delivered(81, SeqNumber(230), true, false, CAP);
        assert_eq!(cc.window(), 101);
        cc.on_delivered(3, SeqNumber(233), true, false, CAP);
        assert_eq!(cc.window(), 102, "what was left over counts");
        // Two more round trips: 25% each.
        for round in 0..2u16 {
            cc.on_delivered(cc.window(), SeqNumber(300 + round * 200), true, false, CAP);
        }
        assert_eq!(cc.window(), 102 + 25 + 31 + 1);
    }

    #[test]
    fn the_window_stops_at_the_cap_and_when_not_filled() {
        let mut cc = Congestion::default();
        cc.on_delivered(10, SeqNumber(9), false, false, CAP);
        assert_eq!(cc.window(), 10, "an application that does not fill the window does not grow it");
        for round in 0..10 {
            cc.on_delivered(cc.window(), SeqNumber(round * 600), true, false, CAP);
        }
        assert_eq!(cc.window(), CAP);
    }

    #[test]
    fn congestion_shrinks_the_window_once_per_flight() {
        let mut cc = Congestion::default();
        cc.on_delivered(90, SeqNumber(99), true, false, CAP);
        assert_eq!(cc.window(), 100);
        // Packets 100..200 are out; 110 is lost while the RTT shows a queue.
        assert!(cc.on_lost(SeqNumber(110), SeqNumber(200), true));
        assert_eq!(cc.window(), 70);
        // More losses of the same flight: no further response, and no growth.
        assert!(!cc.on_lost(SeqNumber(150), SeqNumber(210), true));
        cc.on_delivered(5, SeqNumber(199), true, false, CAP);
        assert_eq!(cc.window(), 70);
        // A packet sent after the response is delivered: the recovery period ends.
        cc.on_delivered(70, SeqNumber(200), true, true, CAP);
        assert_eq!(cc.window(), 71, "congestion avoidance after the response");
        // A loss of the next flight gets its own response.
        assert!(cc.on_lost(SeqNumber(230), SeqNumber(280), true));
        assert_eq!(cc.window(), 49);
        assert_eq!(cc.reductions, 2);
    }

    #[test]
    fn random_loss_without_a_queue_keeps_the_window() {
        let mut cc = Congestion::default();
        cc.on_delivered(10, SeqNumber(9), true, false, CAP);
        assert!(!cc.on_lost(SeqNumber(12), SeqNumber(30), false));
        assert_eq!(cc.window(), 20);
        // Slow start goes on, with the rest of the flight the loss was in as well.
        cc.on_delivered(10, SeqNumber(25), true, false, CAP);
        assert_eq!(cc.window(), 30, "no recovery period without a response");
        cc.on_delivered(20, SeqNumber(30), true, false, CAP);
        assert_eq!(cc.window(), 50);
        assert_eq!(cc.reductions, 0);
        // Random loss in every flight: the window still doubles per round trip.
        for round in 0..3u16 {
            let sent = SeqNumber(100 + round * 200);
            assert!(!cc.on_lost(sent, SeqNumber(sent.0 + 150), false));
            cc.on_delivered(cc.window(), SeqNumber(sent.0 + 100), true, false, CAP);
        }
        assert_eq!(cc.window(), 400);
        // A queue then: the response comes at the first loss while it shows.
        assert!(cc.on_lost(SeqNumber(800), SeqNumber(900), true));
        assert_eq!(cc.window(), 280);
    }

    #[test]
    fn persistent_congestion_falls_to_the_minimum_and_slow_starts_to_seven_tenths() {
        let mut cc = Congestion::default();
        cc.on_delivered(90, SeqNumber(99), true, false, CAP);
        cc.on_persistent_congestion(true);
        assert_eq!(cc.window(), MIN_WINDOW);
        for i in 0..6 {
            cc.on_delivered(cc.window(), SeqNumber(100 + i * 100), true, false, CAP);
        }
        assert_eq!(cc.window(), 70, "slow start up to 7/10 of the old window, then one per window");
        // Without a queue the timeout was random loss: the threshold stays where it was.
        cc.on_persistent_congestion(false);
        for i in 0..6 {
            cc.on_delivered(cc.window(), SeqNumber(1000 + i * 600), true, false, CAP);
        }
        assert_eq!(cc.window(), 70, "slow start to the threshold it had (six rounds)");
        cc.on_delivered(70, SeqNumber(5000), true, true, CAP);
        assert_eq!(cc.window(), 71, "then one per window while a queue shows");
    }

    #[test]
    fn queue_threshold_is_an_eighth_of_the_rtt_within_4_to_16_ms() {
        assert!(!queue_building(14_000, 10_000, 0));
        assert!(queue_building(14_001, 10_000, 0));
        assert!(!queue_building(19_000, 10_000, 5_000), "an ack held for its delay is no queue");
        assert!(queue_building(19_001, 10_000, 5_000));
        assert!(!queue_building(112_000, 100_000, 0));
        assert!(queue_building(112_501, 100_000, 0));
        assert!(queue_building(216_001, 200_000, 0));
    }

    #[test]
    fn the_pacer_allows_a_burst_then_spreads_packets() {
        let mut pacer = Pacer::default();
        let now = Instant::from_millis(100);
        assert_eq!(pacer.delay(now, None), None);
        pacer.on_sent(now, None, 100);
        assert_eq!(pacer.delay(now, None), None, "no pacing before an RTT estimate");
        // 100 packets per 10 ms at 5/4: one per 80 µs; a burst of 20 (2 ms worth).
        let srtt = Some(10_000);
        let mut burst = 0;
        while pacer.delay(now, srtt).is_none() {
            pacer.on_sent(now, srtt, 100);
            burst += 1;
            assert!(burst < 100);
        }
        assert_eq!(burst, 21);
        let next = pacer.delay(now, srtt).unwrap();
        assert_eq!(next, now.add_micros(80));
        // At that time one more may go, then the next is 80 µs later again.
        assert_eq!(pacer.delay(next, srtt), None);
        pacer.on_sent(next, srtt, 100);
        assert_eq!(pacer.delay(next, srtt), Some(next.add_micros(80)));
    }

    #[test]
    fn sends_past_the_pacer_hold_the_next_packet_one_interval_at_most() {
        let mut pacer = Pacer::default();
        let now = Instant::from_millis(100);
        // A long RTT sample and a small window: one packet per 4 s (10 s at 5/4 of 2).
        let srtt = Some(10_000_000);
        for _ in 0..50 {
            pacer.on_sent(now, srtt, 2);
        }
        assert_eq!(pacer.delay(now, srtt), Some(now.add_micros(4_000_000)));
    }
}
