//! Received messages waiting for the application.
//!
//! A linear buffer over the caller's storage: complete messages, each behind a 4-byte length,
//! then the message being reassembled. Delivered messages are released from the front; the
//! contents slide back to the start only when a fragment would not fit at the end, so each
//! message is contiguous and handed out without a copy.
//!
//! On lossy transports, DATA that arrives ahead of a gap is held at the top end of the same
//! buffer (up to `W` packets) and moved down into the message area once the gap is filled.

use heapless::Vec;

use crate::wire::SeqNumber;

/// Bytes stored in front of each message.
const LEN_PREFIX: usize = 4;

/// A packet received ahead of a gap.
#[derive(Clone, Copy, Debug)]
struct Held {
    seq: SeqNumber,
    at: usize,
    len: usize,
    more: bool,
}

#[derive(Debug)]
pub(crate) struct RecvBuffer<B, const W: usize> {
    buf: B,
    /// Start of the oldest complete message's prefix.
    read: usize,
    /// End of the complete messages; the partial message's prefix starts here.
    complete_end: usize,
    /// End of the data.
    write: usize,
    /// Whether a message is being reassembled (its prefix is reserved at `complete_end`).
    partial: bool,
    complete: usize,
    held: Vec<Held, W>,
    /// Start of the held area; held packets lie in `top..capacity`.
    top: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, const W: usize> RecvBuffer<B, W> {
    pub(crate) fn new(buf: B) -> Self {
        let top = buf.as_ref().len();
        Self { buf, read: 0, complete_end: 0, write: 0, partial: false, complete: 0, held: Vec::new(), top }
    }

    pub(crate) fn reset(&mut self) {
        self.read = 0;
        self.complete_end = 0;
        self.write = 0;
        self.partial = false;
        self.complete = 0;
        self.held.clear();
        self.top = self.capacity();
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// The largest message that fits in an empty buffer.
    pub(crate) fn max_message(&self) -> usize {
        self.capacity().saturating_sub(LEN_PREFIX)
    }

    /// Bytes free, counting the space that sliding back and packing would reclaim.
    pub(crate) fn free(&self) -> usize {
        self.capacity() - (self.write - self.read) - self.held_bytes()
    }

    fn held_bytes(&self) -> usize {
        self.held.iter().map(|h| h.len).sum()
    }

    /// Makes `need` contiguous bytes free at `write`, sliding the messages back and packing
    /// the held packets up as needed. The caller checked `need <= free()`.
    fn make_room(&mut self, need: usize) {
        if self.write + need <= self.top {
            return;
        }
        self.slide_back();
        if self.write + need <= self.top {
            return;
        }
        // Pack the held packets against the end, highest first. An insertion sort (at most W
        // entries) keeps a sort routine out of small firmware; an empty packet may share its
        // position with another, and every entry is moved.
        let capacity = self.capacity();
        let held = self.held.as_mut_slice();
        for i in 1..held.len() {
            let mut j = i;
            while j > 0 && held[j - 1].at < held[j].at {
                (held[j - 1], held[j]) = (held[j], held[j - 1]);
                j -= 1;
            }
        }
        let mut end = capacity;
        for h in held.iter_mut() {
            let at = end - h.len;
            move_within(self.buf.as_mut(), h.at, at, h.len);
            h.at = at;
            end = at;
        }
        self.top = end;
    }

    /// Bytes of the message being reassembled.
    pub(crate) fn partial_len(&self) -> usize {
        if self.partial { self.write - self.complete_end - LEN_PREFIX } else { 0 }
    }

    /// Complete messages not yet released.
    pub(crate) fn complete(&self) -> usize {
        self.complete
    }

    /// Appends a fragment; returns whether it completed a message, or `Err` (nothing stored)
    /// if it does not fit.
    pub(crate) fn push(&mut self, payload: &[u8], more: bool) -> Result<bool, ()> {
        let need = payload.len() + if self.partial { 0 } else { LEN_PREFIX };
        if need > self.free() {
            return Err(());
        }
        self.make_room(need);
        if !self.partial {
            self.partial = true;
            self.write += LEN_PREFIX;
        }
        let write = self.write;
        self.buf.as_mut()[write..write + payload.len()].copy_from_slice(payload);
        self.write += payload.len();
        if more {
            return Ok(false);
        }
        Ok(self.finish_message())
    }

    /// The partial message is complete: writes its length; returns true.
    fn finish_message(&mut self) -> bool {
        let len = self.partial_len() as u32;
        let at = self.complete_end;
        self.buf.as_mut()[at..at + LEN_PREFIX].copy_from_slice(&len.to_le_bytes());
        self.complete_end = self.write;
        self.partial = false;
        self.complete += 1;
        true
    }

    /// Holds a packet that arrived ahead of a gap. `Err` (nothing stored) when there is no
    /// room or no free slot; `Ok(false)` when it is already held.
    pub(crate) fn hold(&mut self, seq: SeqNumber, payload: &[u8], more: bool) -> Result<bool, ()> {
        if self.held.iter().any(|h| h.seq == seq) {
            return Ok(false);
        }
        if self.held.is_full() || payload.len() + LEN_PREFIX > self.free() {
            return Err(());
        }
        // Room for it, and for the length prefix its message may need when it moves down.
        self.make_room(payload.len());
        let at = self.top - payload.len();
        self.buf.as_mut()[at..self.top].copy_from_slice(payload);
        self.top = at;
        let _ = self.held.push(Held { seq, at, len: payload.len(), more });
        Ok(true)
    }

    /// Moves the held packet `seq`, if any, into the message area; returns `Some(completed)`
    /// as [`push`](Self::push) does.
    pub(crate) fn release_held(&mut self, seq: SeqNumber) -> Option<bool> {
        let index = self.held.iter().position(|h| h.seq == seq)?;
        let need = self.held[index].len + if self.partial { 0 } else { LEN_PREFIX };
        // Room at `write` may pack the held area; find the packet again afterwards. Without
        // room (a peer beyond its credit) it is dropped, to be sent again.
        let fits = need <= self.free();
        if fits {
            self.make_room(need);
        }
        // By hand: `swap_remove` and `swap` copy with `memmove` (see `move_within`).
        let index = self.held.iter().position(|h| h.seq == seq)?;
        let last = self.held.len() - 1;
        let (before, last) = self.held.split_at_mut(last);
        if let Some(slot) = before.get_mut(index) {
            core::mem::swap(slot, &mut last[0]);
        }
        let h = self.held.pop()?;
        if !fits {
            self.top = self.held.iter().map(|h| h.at).min().unwrap_or(self.capacity());
            return None;
        }
        if !self.partial {
            self.partial = true;
            self.write += LEN_PREFIX;
        }
        // Room was made above the message area, below every held packet: no overlap.
        let write = self.write;
        let (low, high) = self.buf.as_mut().split_at_mut(h.at);
        low[write..write + h.len].copy_from_slice(&high[..h.len]);
        self.write += h.len;
        self.top = self.held.iter().map(|h| h.at).min().unwrap_or(self.capacity());
        Some(if h.more { false } else { self.finish_message() })
    }

    /// The payload length of the held packet `seq`, if it is held.
    pub(crate) fn held_len(&self, seq: SeqNumber) -> Option<usize> {
        self.held.iter().find(|h| h.seq == seq).map(|h| h.len)
    }

    /// Which of the 32 packets after `next` are held, as a selective-ack bitmap.
    pub(crate) fn held_bitmap(&self, next: SeqNumber) -> u32 {
        self.held.iter().fold(0, |bits, h| {
            let offset = i32::from(h.seq.diff(next)) - 1;
            if (0..32).contains(&offset) { bits | 1 << offset } else { bits }
        })
    }

    pub(crate) fn held_count(&self) -> usize {
        self.held.len()
    }

    fn slide_back(&mut self) {
        let read = self.read;
        move_within(self.buf.as_mut(), read, 0, self.write - read);
        self.complete_end -= read;
        self.write -= read;
        self.read = 0;
    }

    fn front_len(&self) -> usize {
        let b = &self.buf.as_ref()[self.read..self.read + LEN_PREFIX];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// The oldest complete message.
    pub(crate) fn front(&self) -> Option<&[u8]> {
        (self.complete > 0).then(|| {
            let start = self.read + LEN_PREFIX;
            &self.buf.as_ref()[start..start + self.front_len()]
        })
    }

    /// Releases the oldest complete message.
    pub(crate) fn pop(&mut self) {
        if self.complete == 0 {
            return;
        }
        self.read += LEN_PREFIX + self.front_len();
        self.complete -= 1;
        if self.read == self.write {
            self.read = 0;
            self.complete_end = 0;
            self.write = 0;
        }
    }
}

/// Moves `len` bytes from `src` to `dst` in `buf`; the ranges may overlap.
///
/// Like `copy_within`, but in copies between disjoint ranges, a shift's length at a time:
/// `copy_within` is `memmove`, which costs 1.6 KiB of flash on Cortex-M besides `memcpy`.
fn move_within(buf: &mut [u8], src: usize, dst: usize, len: usize) {
    if dst < src {
        let shift = src - dst;
        let mut done = 0;
        while done < len {
            let n = shift.min(len - done);
            let (low, high) = buf.split_at_mut(src + done);
            low[dst + done..dst + done + n].copy_from_slice(&high[..n]);
            done += n;
        }
    } else if dst > src {
        let shift = dst - src;
        let mut left = len;
        while left > 0 {
            let n = shift.min(left);
            left -= n;
            let (low, high) = buf.split_at_mut(dst + left);
            high[..n].copy_from_slice(&low[src + left..src + left + n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_into_contiguous_messages() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 32]);
        assert_eq!(r.push(b"hel", true), Ok(false));
        assert_eq!(r.partial_len(), 3);
        assert_eq!(r.push(b"lo", false), Ok(true));
        assert_eq!(r.push(b"", false), Ok(true));
        assert_eq!(r.complete(), 2);
        assert_eq!(r.front(), Some(&b"hello"[..]));
        r.pop();
        assert_eq!(r.front(), Some(&b""[..]));
        r.pop();
        assert_eq!(r.front(), None);
        assert_eq!(r.free(), 32);
    }

    #[test]
    fn full_buffer_refuses_without_storing_and_slides_back_when_needed() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 32]);
        assert_eq!(r.push(&[1; 10], false), Ok(true)); // 14 used
        assert_eq!(r.push(&[2; 10], false), Ok(true)); // 28 used
        assert_eq!(r.push(&[3; 1], false), Err(()));
        assert_eq!(r.free(), 4);
        r.pop(); // frees 14 at the front, none at the end
        assert_eq!(r.free(), 18);
        assert_eq!(r.push(&[4; 14], false), Ok(true)); // needs the slide
        assert_eq!(r.front(), Some(&[2u8; 10][..]));
        r.pop();
        assert_eq!(r.front(), Some(&[4u8; 14][..]));
    }
}

#[cfg(test)]
mod held_tests {
    use super::*;

    #[test]
    fn packets_ahead_of_a_gap_wait_and_then_join_their_message() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 64]);
        assert_eq!(r.hold(SeqNumber(2), b"cd", true), Ok(true));
        assert_eq!(r.hold(SeqNumber(3), b"ef", false), Ok(true));
        assert_eq!(r.hold(SeqNumber(3), b"ef", false), Ok(false), "already held");
        assert_eq!(r.held_bitmap(SeqNumber(1)), 0b11);
        assert_eq!(r.free(), 60);
        assert_eq!(r.push(b"ab", true), Ok(false)); // seq 1 fills the gap
        assert_eq!(r.release_held(SeqNumber(2)), Some(false));
        assert_eq!(r.release_held(SeqNumber(3)), Some(true));
        assert_eq!(r.release_held(SeqNumber(4)), None);
        assert_eq!(r.front(), Some(&b"abcdef"[..]));
        assert_eq!(r.held_count(), 0);
        r.pop();
        assert_eq!(r.free(), 64);
    }

    fn drain(r: &mut RecvBuffer<[u8; 48], 4>) -> std::vec::Vec<std::vec::Vec<u8>> {
        let mut got = std::vec::Vec::new();
        while let Some(m) = r.front() {
            got.push(m.to_vec());
            r.pop();
        }
        got
    }

    #[test]
    fn holding_packs_the_held_area_when_it_is_fragmented() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 48]);
        assert_eq!(r.hold(SeqNumber(6), &[6; 8], false), Ok(true)); // 40..48
        assert_eq!(r.hold(SeqNumber(7), &[7; 8], false), Ok(true)); // 32..40
        assert_eq!(r.push(&[5; 2], false), Ok(true));
        assert_eq!(r.release_held(SeqNumber(6)), Some(true)); // leaves a hole at 40..48
        assert_eq!(drain(&mut r), [std::vec![5; 2], std::vec![6; 8]]);
        assert_eq!(r.push(&[1; 20], false), Ok(true)); // 0..24
        // 10 bytes fit only once 7 is packed up into the hole.
        assert_eq!(r.hold(SeqNumber(9), &[9; 10], false), Ok(true));
        assert_eq!(drain(&mut r), [std::vec![1; 20]]);
        assert_eq!(r.release_held(SeqNumber(7)), Some(true));
        assert_eq!(r.release_held(SeqNumber(9)), Some(true));
        assert_eq!(drain(&mut r), [std::vec![7; 8], std::vec![9; 10]]);
        assert_eq!(r.free(), 48);
    }

    #[test]
    fn packing_moves_an_empty_packet_that_shares_a_position() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 48]);
        assert_eq!(r.hold(SeqNumber(3), &[3; 8], false), Ok(true)); // 40..48
        assert_eq!(r.hold(SeqNumber(5), &[5; 8], false), Ok(true)); // 32..40
        assert_eq!(r.hold(SeqNumber(6), &[], false), Ok(true)); // empty, also at 32
        assert_eq!(r.push(&[2; 2], false), Ok(true)); // seq 2
        assert_eq!(r.release_held(SeqNumber(3)), Some(true)); // a hole at 40..48
        assert_eq!(drain(&mut r), [std::vec![2; 2], std::vec![3; 8]]);
        // 34 bytes fit only once both held packets move up into the hole.
        assert_eq!(r.push(&[1; 30], false), Ok(true));
        assert_eq!(drain(&mut r), [std::vec![1; 30]]);
        assert_eq!(r.push(&[4; 1], false), Ok(true)); // seq 4
        assert_eq!(r.release_held(SeqNumber(5)), Some(true));
        assert_eq!(r.release_held(SeqNumber(6)), Some(true));
        assert_eq!(drain(&mut r), [std::vec![4; 1], std::vec![5; 8], std::vec![]]);
    }

    #[test]
    fn a_held_packet_without_room_to_move_down_is_dropped() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 48]);
        assert_eq!(r.hold(SeqNumber(2), &[2; 20], false), Ok(true));
        assert_eq!(r.push(&[1; 20], false), Ok(true)); // unread: 24 bytes
        assert_eq!(r.release_held(SeqNumber(2)), None, "24 + 24 > 48");
        assert_eq!(r.held_count(), 0);
        assert_eq!(drain(&mut r), [std::vec![1; 20]]);
    }

    #[test]
    fn no_slot_or_no_room_refuses_without_storing() {
        let mut r = RecvBuffer::<_, 2>::new([0u8; 32]);
        assert_eq!(r.hold(SeqNumber(1), &[1; 4], false), Ok(true));
        assert_eq!(r.hold(SeqNumber(2), &[2; 4], false), Ok(true));
        assert_eq!(r.hold(SeqNumber(3), &[3; 4], false), Err(()), "two slots");
        let mut r = RecvBuffer::<_, 4>::new([0u8; 16]);
        assert_eq!(r.hold(SeqNumber(1), &[1; 13], false), Err(()), "13 + 4 > 16");
        assert_eq!(r.free(), 16);
    }
}

#[cfg(test)]
mod move_tests {
    use super::move_within;

    #[test]
    fn moves_like_copy_within_for_every_overlap() {
        for len in 0..12 {
            for src in 0..=(24 - len) {
                for dst in 0..=(24 - len) {
                    let mut want: [u8; 24] = core::array::from_fn(|i| i as u8);
                    let mut got = want;
                    want.copy_within(src..src + len, dst);
                    move_within(&mut got, src, dst, len);
                    assert_eq!(got, want, "len {len}, {src} -> {dst}");
                }
            }
        }
    }
}
