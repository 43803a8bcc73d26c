//! Time-based loss detection and the tail-loss probe, per RFC 8985 (RACK-TLP), feature
//! `congestion`.
//!
//! RACK remembers the most recently sent packet among those delivered (acknowledged or reported
//! received). A packet still missing that was sent before it is lost once its own round trip
//! plus a reordering window has passed since it was sent: none until the path is seen to
//! reorder (a packet sent once delivered after a higher-numbered one), then a quarter of the
//! smallest RTT, until 16 round trips pass without reordering, so a packet overtaken by a
//! little reordering is not sent again at once. A retransmission is
//! judged the same way, by when it was sent, so a lost repair is found by the next delivery
//! too rather than by a timeout. When no delivery can reveal a loss (the flight's last packets
//! were lost, or their acknowledgements), the probe timeout, 2·SRTT plus the peer's ack
//! delay, sends one packet (new data, or the oldest packet in flight not reported received
//! again) to draw an acknowledgement, before the retransmission timeout would: once it is
//! acknowledged it is the newest packet delivered, so RACK finds every older one missing.
//!
//! Packets are judged in the order they were sent, and judging stops at the first one not yet
//! due (RFC 8985 keeps them in a list by sending time). Packets sent once are already in that
//! order by sequence number; retransmissions are kept in the order sent by [`Retransmits`].
//! Each ACK thus costs a step per packet found lost or passed for good, whatever the flight.

use super::send_buffer::Segment;
use crate::Instant;
use crate::buffer::{Record, RecordStorage};
use crate::wire::SeqNumber;

/// Round trips (of the smallest RTT) after which reordering no longer seen is forgotten: a
/// passing delay that reordered a few packets does not slow loss detection for good (RFC 8985
/// 6.2 keeps a widened reordering window for 16 recoveries).
const REORDERING_MEMORY: u64 = 16;

/// The RACK state of a sender.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rack {
    /// When the most recently sent of the delivered packets was sent, and its number (ties).
    xmit: Option<(Instant, SeqNumber)>,
    /// That packet's round trip (µs).
    rtt: u32,
    /// The highest-numbered packet delivered (RFC 8985's RACK.fack).
    fack: Option<SeqNumber>,
    /// When a packet sent once was last delivered below it, after a higher-numbered one: the
    /// path reorders. Forgotten after [`REORDERING_MEMORY`] round trips without another.
    reordered_at: Option<Instant>,
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
    ///
    /// Reordering is judged by sequence number (RFC 8985 6.2 step 3): a repair goes out after
    /// packets that are still on their way, so by sending time every repair delivered ahead of
    /// them would look like reordering, and a path that only loses would wait a reordering
    /// window more for every round of repair.
    pub(crate) fn on_delivered(&mut self, segment: &Segment, now: Instant, min_rtt: u32) {
        let below = self.fack.is_some_and(|fack| segment.seq.diff(fack) < 0);
        if below && segment.transmissions == 1 {
            self.reordered_at = Some(now);
        } else if self
            .reordered_at
            .is_some_and(|at| now.micros_since(at) > u64::from(min_rtt) * REORDERING_MEMORY)
        {
            self.reordered_at = None;
        }
        if !below {
            self.fack = Some(segment.seq);
        }
        let rtt = u32::try_from(now.micros_since(segment.sent_at)).unwrap_or(u32::MAX);
        if segment.transmissions > 1 && rtt < min_rtt {
            return;
        }
        let newer = self.xmit.is_none_or(|(at, seq)| {
            segment.sent_at > at || (segment.sent_at == at && segment.seq.diff(seq) > 0)
        });
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
        let reo_wnd = if self.reordered_at.is_some() { (min_rtt / 4).min(srtt) } else { 0 };
        self.xmit.map(|(at, seq)| (at, seq, u64::from(self.rtt) + u64::from(reo_wnd)))
    }

    /// Forgets the session's packets (a server restarted by a new HELLO).
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

/// A packet sent again, as RACK's queue of retransmissions keeps it: its number and how many
/// times it had been sent then (a later retransmission of it makes this entry stale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub(crate) seq: SeqNumber,
    pub(crate) transmissions: u8,
}

impl Record for Retransmit {
    const EMPTY: Self = Self { seq: SeqNumber(0), transmissions: 0 };
}

impl Retransmit {
    /// Whether `segment`, the packet numbered `seq`, is still as this entry left it: sent no
    /// more times since, neither reported received nor queued to be sent again.
    pub(crate) fn is_live(self, segment: &Segment) -> bool {
        segment.transmissions == self.transmissions && !segment.sacked && !segment.resend
    }
}

/// The retransmissions in the order they were sent, which is the order of their sending
/// times: RACK judges them from the oldest on and stops at the first one not yet due, as it
/// walks the packets sent once in sequence order (RFC 8985 keeps one list in sending order; a
/// packet sent again moves to its tail). Entries whose packet was since acknowledged, reported
/// received or queued or sent again are stale: dropped when they reach the front, or when the
/// queue is full.
#[derive(Debug)]
pub(crate) struct Retransmits<R> {
    ring: R,
    first: usize,
    len: usize,
}

impl<R: RecordStorage<Retransmit>> Retransmits<R> {
    pub(crate) fn new() -> Self {
        Self { ring: R::new(), first: 0, len: 0 }
    }

    /// The `i`th entry from the oldest.
    pub(crate) fn get(&self, i: usize) -> Option<Retransmit> {
        let ring = self.ring.as_ref();
        if i >= self.len {
            return None;
        }
        let at = self.first + i;
        ring.get(if at >= ring.len() { at - ring.len() } else { at }).copied()
    }

    pub(crate) fn pop_front(&mut self) {
        if self.len > 0 {
            let next = self.first + 1;
            self.first = if next >= self.ring.as_ref().len() { 0 } else { next };
            self.len -= 1;
        }
    }

    /// Appends `entry`. A full queue grows (doubling, up to `limit` entries) if its storage
    /// can; else its stale entries (`is_live` false) go, and if all are live, the oldest.
    pub(crate) fn push(&mut self, entry: Retransmit, limit: usize, is_live: impl Fn(Retransmit) -> bool) {
        let cap = self.ring.as_ref().len();
        if self.len == cap {
            self.ring.as_mut().rotate_left(self.first);
            self.first = 0;
            let target = cap.saturating_mul(2).max(4).min(limit);
            if !(target > cap && self.ring.grow_to(target)) {
                self.retain(is_live);
            }
        }
        let cap = self.ring.as_ref().len();
        if self.len == cap {
            self.pop_front();
        }
        if cap > 0 {
            let at = self.first + self.len;
            self.ring.as_mut()[if at >= cap { at - cap } else { at }] = entry;
            self.len += 1;
        }
    }

    /// Keeps the live entries of a queue made linear, in order.
    fn retain(&mut self, is_live: impl Fn(Retransmit) -> bool) {
        let ring = &mut self.ring.as_mut()[..self.len];
        let mut kept = 0;
        for i in 0..ring.len() {
            if is_live(ring[i]) {
                ring[kept] = ring[i];
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Forgets every entry; growable storage gives its room back.
    pub(crate) fn clear(&mut self) {
        (self.first, self.len) = (0, 0);
        self.ring.shrink(0);
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

    fn entries<R: RecordStorage<Retransmit>>(queue: &Retransmits<R>) -> std::vec::Vec<u16> {
        (0..).map_while(|i| queue.get(i)).map(|e| e.seq.0).collect()
    }

    #[test]
    fn a_full_queue_drops_its_stale_entries_then_its_oldest() {
        let entry = |seq| Retransmit { seq: SeqNumber(seq), transmissions: 2 };
        let mut queue = Retransmits::<[Retransmit; 4]>::new();
        for seq in 1..=4 {
            queue.push(entry(seq), 4, |_| unreachable!("not full"));
        }
        queue.pop_front();
        queue.push(entry(5), 4, |_| unreachable!("not full"));
        assert_eq!(entries(&queue), [2, 3, 4, 5], "round the ring's end");
        queue.push(entry(6), 4, |e| e.seq.0 % 2 == 0);
        assert_eq!(entries(&queue), [2, 4, 6], "3 and 5 were stale");
        queue.push(entry(7), 4, |_| true);
        queue.push(entry(8), 4, |_| true);
        assert_eq!(entries(&queue), [4, 6, 7, 8], "all live: the oldest goes");
        queue.clear();
        assert_eq!(queue.get(0), None);
    }

    #[test]
    fn a_growable_queue_doubles_up_to_its_limit_and_is_given_back() {
        let entry = |seq| Retransmit { seq: SeqNumber(seq), transmissions: 2 };
        let mut queue = Retransmits::<std::vec::Vec<Retransmit>>::new();
        for seq in 0..4 {
            queue.push(entry(seq), 6, |_| unreachable!("grows"));
        }
        queue.pop_front();
        queue.pop_front();
        for seq in 4..8 {
            queue.push(entry(seq), 6, |_| unreachable!("grows"));
        }
        assert_eq!((entries(&queue), queue.ring.len()), ([2, 3, 4, 5, 6, 7].into(), 6));
        queue.push(entry(8), 6, |e| e.seq.0 != 3);
        assert_eq!(entries(&queue), [2, 4, 5, 6, 7, 8]);
        queue.clear();
        assert_eq!(queue.ring.capacity(), 0);
    }

    #[test]
    fn reordering_is_a_packet_sent_once_delivered_below_a_higher_one() {
        let mut rack = Rack::default();
        rack.on_delivered(&segment(10, 100, 1), Instant::from_millis(150), 50_000);
        // A repair of 5, sent at 160, is delivered before 11 and 12, sent at 101 and 102 and
        // still on their way: by sending time they are older, by number they are higher, and
        // a path that only loses is no reordering.
        rack.on_delivered(&segment(5, 160, 2), Instant::from_millis(211), 50_000);
        rack.on_delivered(&segment(11, 101, 1), Instant::from_millis(212), 50_000);
        rack.on_delivered(&segment(12, 102, 1), Instant::from_millis(212), 50_000);
        assert_eq!(rack.threshold(40_000, 50_000).unwrap().2, 51_000, "no reordering window");
        // 8, sent once, delivered after 12: reordering; a quarter of the smallest RTT is added.
        rack.on_delivered(&segment(8, 99, 1), Instant::from_millis(213), 50_000);
        assert_eq!(rack.threshold(40_000, 50_000).unwrap().2, 61_000);
    }

    #[test]
    fn the_probe_timeout_is_two_rtts_and_the_ack_delay_within_the_rto() {
        assert_eq!(probe_timeout(10_000, 5_000, 200_000), 25_000);
        assert_eq!(probe_timeout(100_000, 5_000, 200_000), 200_000);
        assert_eq!(probe_timeout(u32::MAX, 5_000, 10_000_000), 10_000_000);
    }
}
