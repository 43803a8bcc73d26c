//! The fast paths of loss recovery (selective acks, RACK, the next repair) checked against a
//! pass over every segment in flight, the way they were first written.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::vec::Vec;

/// What the model keeps of a segment in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seg {
    seq: SeqNumber,
    sent_at: Instant,
    transmissions: u8,
    sacked: bool,
    resend: bool,
}

/// The segments in flight, oldest first, changed by passes over all of them.
#[derive(Default)]
struct Model {
    segs: VecDeque<Seg>,
}

impl Model {
    fn sack(&mut self, ack: SeqNumber, bitmap: &[u32]) -> (Vec<SeqNumber>, Option<Instant>) {
        let (mut marked, mut sample) = (Vec::new(), None);
        for s in &mut self.segs {
            let offset = (i32::from(s.seq.diff(ack)) - 1) as usize;
            let word = bitmap.get(offset / 32).copied().unwrap_or(0);
            if word & (1 << (offset % 32)) != 0 && !s.sacked {
                (s.sacked, s.resend) = (true, false);
                sample = (s.transmissions == 1).then_some(s.sent_at);
                marked.push(s.seq);
            }
        }
        (marked, sample)
    }

    fn rack(
        &mut self,
        now: Instant,
        (xmit, xmit_seq, wait): (Instant, SeqNumber, u64),
    ) -> (Vec<SeqNumber>, Option<Instant>) {
        let (mut lost, mut next) = (Vec::new(), None::<Instant>);
        for s in &mut self.segs {
            let before = s.sent_at < xmit || (s.sent_at == xmit && s.seq.diff(xmit_seq) < 0);
            if s.sacked || s.resend || !before {
                continue;
            }
            let due = s.sent_at.add_micros(wait);
            if due <= now {
                s.resend = true;
                lost.push(s.seq);
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        (lost, next)
    }

    fn front_overdue(&mut self, now: Instant, wait: u64) -> (Option<SeqNumber>, Option<Instant>) {
        let Some(s) = self.segs.front_mut() else { return (None, None) };
        if s.sacked || s.resend {
            return (None, None);
        }
        let due = s.sent_at.add_micros(wait);
        if due > now {
            return (None, Some(due));
        }
        s.resend = true;
        (Some(s.seq), None)
    }

    fn find(&mut self, seq: SeqNumber) -> Option<&mut Seg> {
        self.segs.iter_mut().find(|s| s.seq == seq)
    }

    fn queue_probe(&mut self) -> bool {
        let probe = self.segs.iter_mut().find(|s| !s.sacked);
        probe.map(|s| s.resend = true).is_some()
    }

    fn mark_all_lost(&mut self) -> usize {
        let mut queued = 0;
        for (i, s) in self.segs.iter_mut().enumerate() {
            if i == 0 || !s.sacked {
                (s.sacked, s.resend) = (false, true);
                queued += 1;
            }
        }
        queued
    }
}

/// A few pseudo-random bitmap words from `seed`, sparse or dense.
fn words(seed: u32, n: usize) -> Vec<u32> {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    (0..n)
        .map(|_| match seed % 3 {
            0 => next() & next(),
            1 => next() | next(),
            _ => next(),
        })
        .collect()
}

fn check_model<S: Buffer, const W: usize>(
    mut b: SendBuffer<S, W>,
    start: u16,
    ops: &[(u8, u32, u32)],
) -> Result<(), TestCaseError> {
    b.next_seq = SeqNumber(start);
    let mut model = Model::default();
    let mut now = Instant::from_micros(1);
    for &(op, a, c) in ops {
        let count = model.segs.len();
        let at = |i: u32| model.segs.get(i as usize % count.max(1)).copied();
        match op {
            0 | 1 => {
                for _ in 0..a % 6 + 1 {
                    if b.inflight() == W || !b.push(&[op]) {
                        break;
                    }
                    let f = b.peek_fragment(8).unwrap();
                    let s = b.commit(f, 0, now);
                    model.segs.push_back(Seg {
                        seq: s.seq,
                        sent_at: now,
                        transmissions: 1,
                        sacked: false,
                        resend: false,
                    });
                }
            }
            2 => now = now.add_micros(u64::from(a % 5000)),
            3 => {
                let acked = a as usize % (count + 1);
                let ack = b.oldest_unacked() + acked as u16;
                let mut freed = Vec::new();
                b.acknowledge(ack, |s| freed.push(s.seq));
                b.shrink_if_drained();
                let expected: Vec<_> = model.segs.drain(..acked).map(|s| s.seq).collect();
                prop_assert_eq!(freed, expected);
            }
            4 | 5 => {
                // Mostly at the oldest, as the session calls it; sometimes before or after it.
                let shift = match c % 8 {
                    0 => -((c / 8 % 40) as i32),
                    1 => (c / 8 % 40) as i32,
                    _ => 0,
                };
                let ack = SeqNumber(b.oldest_unacked().0.wrapping_add(shift as u16));
                let bitmap = words(a, (c as usize / 8) % 5);
                let mut marked = Vec::new();
                let sample = b.mark_sacked_with(ack, &bitmap, |s| marked.push(s.seq));
                prop_assert_eq!((marked, sample), model.sack(ack, &bitmap));
            }
            6 => {
                let (xmit, xmit_seq) = match at(a) {
                    Some(s) if c % 4 != 0 => (s.sent_at, s.seq),
                    _ => (now, b.next_seq()),
                };
                let threshold = (xmit, xmit_seq, u64::from(c % 20_000));
                let mut lost = Vec::new();
                let next = b.rack_detect(now, threshold, |seq| lost.push(seq));
                let (mut expected, expected_next) = model.rack(now, threshold);
                // Losses are reported in the order the walks meet them; the set is what counts.
                let key = |s: &SeqNumber| s.distance_from(b.oldest_unacked());
                lost.sort_by_key(key);
                expected.sort_by_key(key);
                prop_assert_eq!((lost, next), (expected, expected_next));
            }
            7 => {
                let wait = u64::from(a % 20_000);
                prop_assert_eq!(b.front_overdue(now, wait), model.front_overdue(now, wait));
            }
            8 => {
                if let Some(s) = at(a) {
                    b.requeue(s.seq);
                    let s = model.find(s.seq).unwrap();
                    s.resend |= !s.sacked;
                }
            }
            9 => prop_assert_eq!(b.queue_probe(), model.queue_probe()),
            10 if a % 8 == 0 => prop_assert_eq!(b.mark_all_lost(), model.mark_all_lost()),
            _ => {
                // The next repair goes; a repair sent for the second time goes twice.
                let expected = model.segs.iter().find(|s| s.resend).map(|s| s.seq);
                let got = b.next_resend();
                prop_assert_eq!(got.map(|s| s.seq), expected);
                if let Some(seq) = expected {
                    b.resent(seq, now);
                    let s = model.find(seq).unwrap();
                    (s.resend, s.sent_at, s.transmissions) = (false, now, s.transmissions + 1);
                    if s.transmissions == 2 && a % 2 == 0 {
                        b.requeue(seq);
                        s.resend = true;
                    }
                }
            }
        }
        let segs: Vec<_> = (0..b.inflight())
            .map(|i| {
                let s = b.segment(i);
                Seg {
                    seq: s.seq,
                    sent_at: s.sent_at,
                    transmissions: s.transmissions,
                    sacked: s.sacked,
                    resend: s.resend,
                }
            })
            .collect();
        prop_assert_eq!(&segs[..], &model.segs.make_contiguous()[..]);
        let pending = segs.iter().filter(|s| !s.sacked && !s.resend).count();
        prop_assert_eq!(b.pipe(), pending);
        b.check_index();
    }
    Ok(())
}

proptest! {
    /// Random sends, acks, selective acks, RACK and probe losses, repairs and timeouts, on
    /// fixed storage (a ring of 40, not a whole number of words), give the same segments
    /// marked, lost and sent again as passes over every segment.
    #[test]
    fn fixed_storage_recovers_as_a_pass_over_every_segment(
        start in any::<u16>(),
        ops in vec((0u8..14, any::<u32>(), any::<u32>()), 0..300),
    ) {
        check_model(SendBuffer::<_, 40>::new([0u8; 512], 0), start, &ops)?;
    }

    /// The same on fixed storage of whole words (a ring of 64).
    #[test]
    fn a_ring_of_whole_words_recovers_as_a_pass_over_every_segment(
        start in any::<u16>(),
        ops in vec((0u8..14, any::<u32>(), any::<u32>()), 0..300),
    ) {
        check_model(SendBuffer::<_, 64>::new([0u8; 512], 0), start, &ops)?;
    }

    /// The same on growable storage, whose ring grows (and the flag words with it) under
    /// segments in flight, and is given back when drained: rings of 4 to 16 slots, of whole
    /// words (32, 64), and of 100.
    #[test]
    fn growable_storage_recovers_as_a_pass_over_every_segment(
        start in any::<u16>(),
        ops in vec((0u8..14, any::<u32>(), any::<u32>()), 0..300),
    ) {
        check_model(SendBuffer::<_, 100>::new(Vec::new(), 1024), start, &ops)?;
    }

    /// A ring shorter than a word.
    #[test]
    fn a_ring_of_four_recovers_as_a_pass_over_every_segment(
        start in any::<u16>(),
        ops in vec((0u8..14, any::<u32>(), any::<u32>()), 0..200),
    ) {
        check_model(SendBuffer::<_, 4>::new([0u8; 64], 0), start, &ops)?;
    }
}
