//! The `sacked` and `resend` flags of the segment ring's slots, 32 slots to a word.
//!
//! Bit `s % 32` of word `s / 32` stands for ring slot `s`. An ACK's bitmap word covers 32
//! consecutive sequence numbers, which lie in 32 consecutive slots (round the ring's end), so
//! [`run`] reads the flags of all 32 in at most four word reads: comparing what the peer reports
//! with what it reported before costs a few operations per word, not one per packet.

use crate::buffer::Record;

/// The flags of 32 ring slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlotFlags {
    /// Reported received (selective acknowledgement).
    sacked: u32,
    /// Queued to be sent again.
    resend: u32,
}

impl Record for SlotFlags {
    const EMPTY: Self = Self { sacked: 0, resend: 0 };
}

/// Which flag.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Flag {
    Sacked,
    Resend,
}

impl SlotFlags {
    fn word(self, flag: Flag) -> u32 {
        match flag {
            Flag::Sacked => self.sacked,
            Flag::Resend => self.resend,
        }
    }

    fn word_mut(&mut self, flag: Flag) -> &mut u32 {
        match flag {
            Flag::Sacked => &mut self.sacked,
            Flag::Resend => &mut self.resend,
        }
    }
}

/// The words that hold the flags of `slots` slots.
pub(crate) fn words_for(slots: usize) -> usize {
    slots.div_ceil(32)
}

/// The lowest `n` bits set (`n <= 32`).
pub(crate) fn low_bits(n: usize) -> u32 {
    if n >= 32 { u32::MAX } else { (1 << n) - 1 }
}

/// Sets or clears `flag` of slot `slot`.
pub(crate) fn set(words: &mut [SlotFlags], slot: usize, flag: Flag, on: bool) {
    if let Some(word) = words.get_mut(slot / 32) {
        let bit = 1 << (slot % 32);
        let word = word.word_mut(flag);
        *word = if on { *word | bit } else { *word & !bit };
    }
}

/// `flag` of the `n <= 32` slots from `start` on, round the end of a ring of `len` slots
/// (`start < len`, `n <= len`): bit `i` for slot `start + i`.
#[inline]
pub(crate) fn run(words: &[SlotFlags], flag: Flag, len: usize, start: usize, n: usize) -> u32 {
    if len.is_multiple_of(32) {
        // Whole words (every ring of 32 slots or more that doubled): the slots after the
        // last word's are the first word's.
        let at = start / 32;
        let next = if at + 1 == len / 32 { 0 } else { at + 1 };
        let word = |i: usize| u64::from(words.get(i).map_or(0, |w| w.word(flag)));
        return ((word(at) | word(next) << 32) >> (start % 32)) as u32 & low_bits(n);
    }
    let first = n.min(len - start);
    let mut bits = run_within(words, flag, start, first);
    if first < n {
        bits |= run_within(words, flag, 0, n - first) << first;
    }
    bits
}

/// `flag` of the `n <= 32` slots from `start` on, none past the ring's end.
fn run_within(words: &[SlotFlags], flag: Flag, start: usize, n: usize) -> u32 {
    let (at, shift) = (start / 32, start % 32);
    let word = |i: usize| u64::from(words.get(i).map_or(0, |w| w.word(flag)));
    let pair = word(at) | (if shift + n > 32 { word(at + 1) << 32 } else { 0 });
    (pair >> shift) as u32 & low_bits(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_read_across_words_and_round_the_ring() {
        let mut words = [SlotFlags::EMPTY; 3];
        // A ring of 70 slots: 2 words and 6 bits.
        for slot in [0, 5, 31, 32, 40, 63, 64, 69] {
            set(&mut words, slot, Flag::Sacked, true);
        }
        set(&mut words, 40, Flag::Resend, true);
        assert_eq!(run(&words, Flag::Sacked, 70, 0, 32), 1 | 1 << 5 | 1 << 31);
        assert_eq!(run(&words, Flag::Sacked, 70, 31, 10), 0b11 | 1 << 9);
        assert_eq!(run(&words, Flag::Resend, 70, 31, 10), 1 << 9);
        // From slot 60: 60..70 then 0..22.
        assert_eq!(run(&words, Flag::Sacked, 70, 60, 32), 1 << 3 | 1 << 4 | 1 << 9 | 1 << 10 | 1 << 15);
        assert_eq!(run(&words, Flag::Sacked, 70, 69, 1), 1);
        set(&mut words, 69, Flag::Sacked, false);
        assert_eq!(run(&words, Flag::Sacked, 70, 69, 2), 0b10);
        // A ring of whole words: 64 slots, from slot 50 round to slot 17.
        let mut whole = [SlotFlags::EMPTY; 2];
        for slot in [0, 17, 18, 50, 63] {
            set(&mut whole, slot, Flag::Resend, true);
        }
        assert_eq!(run(&whole, Flag::Resend, 64, 50, 32), 1 | 1 << 13 | 1 << 14 | 1 << 31);
        assert_eq!(run(&whole, Flag::Resend, 64, 50, 31), 1 | 1 << 13 | 1 << 14);
        assert_eq!(run(&whole, Flag::Resend, 64, 0, 32), 1 | 1 << 17 | 1 << 18);
        assert_eq!(run(&whole[..1], Flag::Resend, 32, 17, 32), 0b11 | 1 << 15);
        // A ring shorter than a word.
        let mut small = [SlotFlags::EMPTY; 1];
        set(&mut small, 3, Flag::Resend, true);
        assert_eq!(run(&small, Flag::Resend, 4, 2, 4), 0b10);
        assert_eq!((low_bits(0), low_bits(3), low_bits(32)), (0, 7, u32::MAX));
        assert_eq!((words_for(0), words_for(1), words_for(32), words_for(33)), (0, 1, 1, 2));
    }
}
