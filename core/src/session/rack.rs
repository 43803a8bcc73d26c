//! Time-based loss detection and the tail-loss probe, per RFC 8985 (RACK-TLP), feature
//! `congestion`.
//!
//! RACK remembers the most recently sent packet among those delivered (acknowledged or reported
//! received). A packet still missing that was sent before it is lost once its own round trip
//! plus a reordering window has passed since it was sent: none until the path is seen to
//! reorder, then a quarter of the smallest RTT, so a packet overtaken by a little reordering
//! is not sent again at once. A retransmission is
//! judged the same way, by when it was sent, so a lost repair is found by the next delivery
//! too rather than by a timeout. When no delivery can reveal a loss (the flight's last packets
//! were lost, or their acknowledgements), the probe timeout, 2·SRTT plus the peer's ack
//! delay, sends one packet (new data, or the oldest packet in flight not reported received
//! again) to draw an acknowledgement, before the retransmission timeout would: once it is
//! acknowledged it is the newest packet delivered, so RACK finds every older one missing.

use super::send_buffer::Segment;
use crate::Instant;
use crate::wire::SeqNumber;

/// The RACK state of a sender.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rack {
    /// When the most recently sent of the delivered packets was sent, and its number (ties).
    xmit: Option<(Instant, SeqNumber)>,
    /// That packet's round trip (µs).
    rtt: u32,
    /// A packet sent once was delivered after a later one: the path reorders.
    reordering: bool,
    /// A tail-loss probe went out and nothing was acknowledged since.
    pub(crate) probe_out: bool,
    /// A probe is due: the next DATA packet (new or sent again) may go beyond the congestion
    /// window and the pacer.
    pub(crate) probe_next: bool,
}

impl Rack {
    /// `segment` was delivered at `now` (RFC 8985 6.2 step 2). A packet sent more than once
    /// whose delivery came sooner than `min_rtt` after its last sending is taken for the
    /// delivery of an earlier copy, and says nothing of the path.
    pub(crate) fn on_delivered(&mut self, segment: &Segment, now: Instant, min_rtt: u32) {
        let rtt = u32::try_from(now.micros_since(segment.sent_at)).unwrap_or(u32::MAX);
        if segment.transmissions > 1 && rtt < min_rtt {
            return;
        }
        let newer = self.xmit.is_none_or(|(at, seq)| {
            segment.sent_at > at || (segment.sent_at == at && segment.seq.diff(seq) > 0)
        });
        self.reordering |= !newer && segment.transmissions == 1;
        if newer {
            self.xmit = Some((segment.sent_at, segment.seq));
            self.rtt = rtt;
        }
    }

    /// The newest delivered packet's sending time and number, and how long after its sending
    /// an earlier packet is deemed lost: its RTT plus the reordering window, a quarter of
    /// `min_rtt` (at most `srtt`) once the path was seen to reorder, else none (RFC 8985 6.2
    /// step 4 lets it be zero while no reordering was seen).
    pub(crate) fn threshold(&self, min_rtt: u32, srtt: u32) -> Option<(Instant, SeqNumber, u64)> {
        let reo_wnd = if self.reordering { (min_rtt / 4).min(srtt) } else { 0 };
        self.xmit.map(|(at, seq)| (at, seq, u64::from(self.rtt) + u64::from(reo_wnd)))
    }

    /// Forgets the session's packets (a server restarted by a new HELLO).
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

/// The probe timeout in µs: 2·SRTT plus the peer's ack delay (RFC 8985 7.2), within `rto`.
pub(crate) fn probe_timeout(srtt: u32, ack_delay: u32, rto: u32) -> u32 {
    srtt.saturating_mul(2).saturating_add(ack_delay).min(rto)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(seq: u16, sent_ms: u64, transmissions: u8) -> Segment {
        let mut s = Segment::EMPTY;
        (s.seq, s.sent_at, s.transmissions) = (SeqNumber(seq), Instant::from_millis(sent_ms), transmissions);
        s
    }

    #[test]
    fn rack_follows_the_most_recently_sent_delivered_packet() {
        let mut rack = Rack::default();
        assert_eq!(rack.threshold(10_000, 10_000), None);
        rack.on_delivered(&segment(5, 100, 1), Instant::from_millis(110), 10_000);
        let no_reordering = Some((Instant::from_millis(100), SeqNumber(5), 10_000));
        assert_eq!(rack.threshold(10_000, 12_000), no_reordering, "no reordering seen: no window");
        // An older packet delivered later (reordering) does not move it back, and opens the
        // reordering window.
        rack.on_delivered(&segment(3, 99, 1), Instant::from_millis(111), 10_000);
        assert_eq!(rack.threshold(10_000, 12_000), Some((Instant::from_millis(100), SeqNumber(5), 12_500)));
        // A retransmission acknowledged too soon after it went: an earlier copy's delivery.
        rack.on_delivered(&segment(2, 120, 2), Instant::from_millis(121), 10_000);
        assert_eq!(rack.threshold(10_000, 10_000).unwrap().1, SeqNumber(5));
        // One acknowledged a full round trip after: it counts.
        rack.on_delivered(&segment(2, 120, 2), Instant::from_millis(131), 10_000);
        let (at, seq, wait) = rack.threshold(8_000, 10_000).unwrap();
        assert_eq!((at, seq, wait), (Instant::from_millis(120), SeqNumber(2), 13_000));
        rack.reset();
        assert_eq!(rack.threshold(10_000, 10_000), None);
    }

    #[test]
    fn the_probe_timeout_is_two_rtts_and_the_ack_delay_within_the_rto() {
        assert_eq!(probe_timeout(10_000, 5_000, 200_000), 25_000);
        assert_eq!(probe_timeout(100_000, 5_000, 200_000), 200_000);
        assert_eq!(probe_timeout(u32::MAX, 5_000, 10_000_000), 10_000_000);
    }
}
