//! Received messages waiting for the application.
//!
//! A linear buffer over the caller's storage: complete messages, each behind a 4-byte length,
//! then the message being reassembled. Delivered messages are released from the front; the
//! contents slide back to the start only when a fragment would not fit at the end, so each
//! message is contiguous and handed out without a copy.
//!
//! On lossy transports, DATA that arrives ahead of a gap is held higher up in the same buffer
//! (up to `W` packets) and copied down into the message area once the gap is filled. Held
//! packets are stacked downwards in the order they arrive, each followed by a 4-byte trailer
//! (its length and sequence number), and found through a table indexed by sequence number
//! modulo its size, beside a bitmap of the numbers held: holding, finding and releasing a
//! packet and building an ACK's bitmap cost the same with thousands held as with one. A released packet leaves its bytes behind; when room runs short the packets still held
//! are packed up against the end of the storage in one pass, and once none is held the stack
//! starts again at the end.
//!
//! Growable storage starts with what it was given and grows, as packets need, up to a limit
//! (the held packets move up to the new end), and gives the room back once empty. The table
//! of held packets has `W` slots beside fixed storage; beside growable storage it is made with
//! 16 slots when a packet is first held and doubles whenever two numbers held would share a
//! slot, up to `W` rounded up to a power of two (where the numbers of one window never do),
//! and it is given back, with the bitmap, once the buffer is empty.

use crate::buffer::{Buffer, Record, RecordStorage};
use crate::wire::SeqNumber;

/// Bytes stored in front of each message.
const LEN_PREFIX: usize = 4;
/// Slots a growable table of held packets starts with.
const FIRST_SLOTS: usize = 16;
/// Bytes after each held payload: its length and sequence number (16 bits each), so the held
/// packets can be walked from the oldest end when they are packed.
const TRAILER: usize = 4;

/// A packet received ahead of a gap, in the table's slot `seq % W`. Its position fits in 32
/// bits (the buffer's limit is a `u32`) and its length in 16 (a DATA payload's).
#[derive(Clone, Copy, Debug)]
struct Held {
    seq: SeqNumber,
    len: u16,
    at: u32,
    more: bool,
    used: bool,
}

impl Record for Held {
    const EMPTY: Self = Self { seq: SeqNumber(0), len: 0, at: 0, more: false, used: false };
}

#[derive(Debug)]
pub(crate) struct RecvBuffer<B: Buffer, const W: usize> {
    buf: B,
    /// Start of the oldest complete message's prefix.
    read: usize,
    /// End of the complete messages; a message being reassembled has its prefix here.
    complete_end: usize,
    /// End of the data (past `complete_end` while a message is being reassembled).
    write: usize,
    complete: usize,
    /// The packets held, each in its slot (see [`slot`](Self::slot)).
    held: B::Records<Held, W>,
    /// Bit `seq % HELD_BITS` is set while `seq` is held.
    held_bits: B::Records<u32, W>,
    /// Packets held, and the bytes they take with their trailers.
    held_count: usize,
    held_bytes: usize,
    /// The highest sequence number held (meaningful while one is).
    held_high: SeqNumber,
    /// The held packets, and those released whose bytes are not yet reclaimed, fill
    /// `top..bottom`, the newest lowest.
    top: usize,
    bottom: usize,
    // Last: read only with growable storage (small offsets stay for the fields used often).
    /// The size growable storage may reach (the buffer's capacity); unused with fixed storage.
    limit: usize,
    /// The storage's length when it was given, which it shrinks back to.
    initial: usize,
}

impl<B: Buffer, const W: usize> RecvBuffer<B, W> {
    /// Bits in the bitmap of held sequence numbers: a power of two at least `W` (so the numbers
    /// of one window never share a bit) and at least one word. `W` words of fixed storage
    /// always hold them.
    const HELD_BITS: usize = if W <= 32 { 32 } else { W.next_power_of_two() };
    /// The most slots a growable table of held packets takes: `W` rounded up to a power of two.
    const HELD_SLOTS: usize = W.next_power_of_two();

    /// A buffer over `buf`, which may grow up to `limit` bytes if it can.
    pub(crate) fn new(buf: B, limit: usize) -> Self {
        let top = buf.as_ref().len();
        Self {
            buf,
            read: 0,
            complete_end: 0,
            write: 0,
            complete: 0,
            held: RecordStorage::new(),
            held_bits: RecordStorage::new(),
            held_count: 0,
            held_bytes: 0,
            held_high: SeqNumber(0),
            top,
            bottom: top,
            // Unused with fixed storage: zeros, stored with the other zeros.
            limit: if B::GROWS { limit.max(top) } else { 0 },
            initial: if B::GROWS { top } else { 0 },
        }
    }

    pub(crate) fn reset(&mut self) {
        if B::GROWS {
            self.buf.shrink(self.initial);
        }
        self.forget_held();
        self.read = 0;
        self.complete_end = 0;
        self.write = 0;
        self.complete = 0;
        self.top = self.storage_len();
        self.bottom = self.top;
    }

    /// Empties the table and bitmap of held packets (given back with growable storage).
    fn forget_held(&mut self) {
        self.held = RecordStorage::new();
        self.held_bits = RecordStorage::new();
        self.held_count = 0;
        self.held_bytes = 0;
    }

    /// The bytes it can hold: its storage's length, or the limit growable storage may reach.
    pub(crate) fn capacity(&self) -> usize {
        if B::GROWS { self.limit } else { self.storage_len() }
    }

    /// The storage's length now.
    pub(crate) fn storage_len(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// Whether nothing is stored: no message, complete or not, and nothing held (an empty
    /// packet held takes no payload bytes but has a place).
    pub(crate) fn is_empty(&self) -> bool {
        self.write == 0 && self.held_count == 0
    }

    /// Gives grown storage back, once nothing is stored.
    pub(crate) fn shrink_if_empty(&mut self) {
        if B::GROWS && self.is_empty() {
            self.forget_held();
            if self.storage_len() > self.initial {
                self.buf.shrink(self.initial);
                self.top = self.storage_len();
                self.bottom = self.top;
            }
        }
    }

    /// Grows the storage (at least doubling, up to the limit) when sliding back and packing
    /// the held packets cannot make `need` bytes free, or while packets are held, when they
    /// would leave less room free than they take: packing moves every packet held, so it then
    /// comes at most once per as many bytes held as it moves. The caller checked
    /// `need <= free()`.
    fn grow_for(&mut self, need: usize) {
        let len = self.storage_len();
        let used = (self.write - self.read) + self.held_bytes;
        let spare = if self.held_count > 0 { self.held_bytes } else { 0 };
        if used + spare + need <= len || len >= self.limit {
            return;
        }
        let target = (used + spare + need).max(len.saturating_mul(2)).min(self.limit);
        let grown = self.buf.grow_to(target);
        debug_assert!(grown, "growable storage grows up to its limit");
    }

    /// The largest message that fits in an empty buffer.
    pub(crate) fn max_message(&self) -> usize {
        self.capacity().saturating_sub(LEN_PREFIX)
    }

    /// Bytes free plus those the packets held ahead of the gap take: the room for every DATA
    /// packet from the gap on (each held packet needs at most its length and 4 bytes more,
    /// held or joined to the messages, which its cost covers).
    pub(crate) fn free_from_gap(&self) -> usize {
        self.capacity() - (self.write - self.read)
    }

    /// Bytes free, counting the space that sliding back and packing the held packets would
    /// reclaim.
    // Out of line: it has many callers, and a call is smaller than its loads.
    #[inline(never)]
    pub(crate) fn free(&self) -> usize {
        self.capacity() - (self.write - self.read) - self.held_bytes
    }

    /// Whether a message is being reassembled.
    fn partial(&self) -> bool {
        self.write != self.complete_end
    }

    /// Bytes of the message being reassembled.
    pub(crate) fn partial_len(&self) -> usize {
        (self.write - self.complete_end).saturating_sub(LEN_PREFIX)
    }

    /// Complete messages not yet released.
    pub(crate) fn complete(&self) -> usize {
        self.complete
    }

    /// Bytes needed at `write` to append `len` bytes of payload (a new message's prefix too).
    fn need(&self, len: usize) -> usize {
        len + if self.partial() { 0 } else { LEN_PREFIX }
    }

    /// Makes `need` contiguous bytes free between `write` and the held packets, growing the
    /// storage, packing the held packets up against its end and sliding the messages back as
    /// needed. The caller checked `need <= free()`.
    fn make_room(&mut self, need: usize) {
        if self.write + need <= self.top {
            return;
        }
        if B::GROWS {
            self.grow_for(need);
        }
        self.pack_held();
        if self.write + need <= self.top {
            return;
        }
        let read = self.read;
        move_within(self.buf.as_mut(), read, 0, self.write - read);
        self.complete_end -= read;
        self.write -= read;
        self.read = 0;
    }

    /// The payload length and sequence number in the trailer that ends at `end`.
    fn trailer(&self, end: usize) -> (usize, SeqNumber) {
        let t = &self.buf.as_ref()[end - TRAILER..end];
        let trailer = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        ((trailer & 0xffff) as usize, SeqNumber((trailer >> 16) as u16))
    }

    /// The table slot for `seq`: `seq % W` in fixed storage; in growable storage, whose table
    /// has a power of two of slots, `seq` modulo that (any slot if the table is not made yet:
    /// it is empty).
    fn slot(&self, seq: SeqNumber) -> usize {
        if B::GROWS {
            usize::from(seq.0) & self.held.as_ref().len().saturating_sub(1)
        } else {
            usize::from(seq.0) % W.max(1)
        }
    }

    /// Doubles a growable table (from 16 slots, up to `W` rounded up to a power of two, where
    /// the numbers of one window never share a slot); each packet held moves to its slot in
    /// the larger table. Returns whether it grew.
    fn grow_held(&mut self) -> bool {
        let len = self.held.as_ref().len();
        let target = if len == 0 { FIRST_SLOTS.min(Self::HELD_SLOTS) } else { len * 2 };
        if !B::GROWS || target > Self::HELD_SLOTS {
            return false;
        }
        self.held.grow_to(target);
        self.held_bits.grow_to(Self::HELD_BITS / 32);
        // A packet in slot `i` of `len` stays there or moves to `i + len`, which is empty.
        for i in 0..len {
            let h = self.held.as_ref()[i];
            if h.used && usize::from(h.seq.0) & (target - 1) != i {
                self.held.as_mut()[i + len] = h;
                self.held.as_mut()[i] = Held::EMPTY;
            }
        }
        true
    }

    /// The slot of `seq` if it is held and its payload starts at `at` (any position if `None`).
    fn held_slot(&self, seq: SeqNumber, at: Option<usize>) -> Option<usize> {
        let slot = self.slot(seq);
        let h = self.held.as_ref().get(slot)?;
        (h.used && h.seq == seq && at.is_none_or(|at| h.at as usize == at)).then_some(slot)
    }

    /// Moves the held packets up against the end of the storage, oldest highest, leaving out
    /// the bytes of those released.
    fn pack_held(&mut self) {
        let end = self.storage_len();
        if self.bottom == end && self.bottom - self.top == self.held_bytes {
            return;
        }
        let (mut from, mut to) = (self.bottom, end);
        while from > self.top {
            let (len, seq) = self.trailer(from);
            let at = from - TRAILER - len;
            // Not a packet released long ago whose number came round again.
            if let Some(slot) = self.held_slot(seq, Some(at)) {
                // Never below `at`: the packets not yet moved stay where they are.
                to -= len + TRAILER;
                move_within(self.buf.as_mut(), at, to, len + TRAILER);
                self.held.as_mut()[slot].at = to as u32;
            }
            from = at;
        }
        self.top = to;
        self.bottom = end;
    }

    /// Where the next `len` bytes of the message being reassembled go (its prefix reserved if
    /// it is new). The caller made room.
    fn append_at(&mut self) -> usize {
        if !self.partial() {
            self.write += LEN_PREFIX;
        }
        self.write
    }

    /// `len` bytes were appended at [`append_at`](Self::append_at); returns whether that
    /// completed the message (and then writes its length in front).
    fn appended(&mut self, len: usize, more: bool) -> bool {
        self.write += len;
        if more {
            return false;
        }
        let at = self.complete_end;
        let size = (self.write - at - LEN_PREFIX) as u32;
        self.buf.as_mut()[at..at + LEN_PREFIX].copy_from_slice(&size.to_le_bytes());
        self.complete_end = self.write;
        self.complete += 1;
        true
    }

    /// Appends a fragment; returns whether it completed a message, or `Err` (nothing stored)
    /// if it does not fit.
    pub(crate) fn push(&mut self, payload: &[u8], more: bool) -> Result<bool, ()> {
        let need = self.need(payload.len());
        if need > self.free() {
            return Err(());
        }
        self.make_room(need);
        let at = self.append_at();
        self.buf.as_mut()[at..at + payload.len()].copy_from_slice(payload);
        Ok(self.appended(payload.len(), more))
    }

    /// Whether `seq` is the number after the highest held: it extends the packets held, where
    /// any other reveals a new gap or fills one.
    pub(crate) fn extends_held(&self, seq: SeqNumber) -> bool {
        self.held_count > 0 && seq == self.held_high + 1
    }

    /// Holds a packet that arrived ahead of a gap, less than `W` packets ahead of it. `Err`
    /// (nothing stored) when there is no room, or its slot is taken by a number a multiple of
    /// `W` away (only fixed storage with a window that is not a power of two, across the
    /// numbers' wrap); `Ok(false)` when it is already held. A growable table doubles until the
    /// packet has a slot of its own.
    pub(crate) fn hold(&mut self, seq: SeqNumber, payload: &[u8], more: bool) -> Result<bool, ()> {
        let slot = loop {
            let slot = self.slot(seq);
            match self.held.as_ref().get(slot).copied() {
                Some(h) if !h.used => break slot,
                Some(h) if h.seq == seq => return Ok(false),
                _ if self.grow_held() => {}
                _ => return Err(()),
            }
        };
        let size = payload.len() + TRAILER;
        if size > self.free() {
            return Err(());
        }
        self.make_room(size);
        let at = self.top - size;
        let buf = self.buf.as_mut();
        // A DATA payload's length fits 16 bits (the session refuses longer ones).
        let len = payload.len() as u16;
        let (packet, trailer) = buf[at..self.top].split_at_mut(payload.len());
        packet.copy_from_slice(payload);
        trailer.copy_from_slice(&(u32::from(len) | u32::from(seq.0) << 16).to_le_bytes());
        self.top = at;
        self.held.as_mut()[slot] = Held { seq, len, at: at as u32, more, used: true };
        let bit = usize::from(seq.0) % Self::HELD_BITS;
        self.held_bits.as_mut()[bit / 32] |= 1 << (bit % 32);
        if self.held_count == 0 || seq.diff(self.held_high) > 0 {
            self.held_high = seq;
        }
        self.held_count += 1;
        self.held_bytes += size;
        Ok(true)
    }

    /// Moves the held packet `seq`, if any, into the message area; returns `Some(completed)`
    /// as [`push`](Self::push) does.
    // Out of line: inlined into the input path it takes 100 bytes more flash on Cortex-M.
    #[inline(never)]
    pub(crate) fn release_held(&mut self, seq: SeqNumber) -> Option<bool> {
        let slot = self.held_slot(seq, None)?;
        let len = usize::from(self.held.as_ref()[slot].len);
        let need = self.need(len);
        // Without room (a peer beyond its credit) it is dropped, to be sent again.
        let fits = need <= self.free();
        if fits {
            // This may move the held packets; the table follows.
            self.make_room(need);
        }
        let h = core::mem::replace(&mut self.held.as_mut()[slot], Held::EMPTY);
        let bit = usize::from(seq.0) % Self::HELD_BITS;
        self.held_bits.as_mut()[bit / 32] &= !(1 << (bit % 32));
        self.held_count -= 1;
        self.held_bytes -= len + TRAILER;
        if fits {
            let at = self.append_at();
            move_within(self.buf.as_mut(), h.at as usize, at, len);
        }
        if self.held_count == 0 {
            // Nothing held: the area starts again at the end.
            self.top = self.storage_len();
            self.bottom = self.top;
        }
        fits.then(|| self.appended(len, h.more))
    }

    /// The payload length of the held packet `seq`, if it is held.
    pub(crate) fn held_len(&self, seq: SeqNumber) -> Option<usize> {
        self.held_slot(seq, None).map(|slot| usize::from(self.held.as_ref()[slot].len))
    }

    /// Which of the 32 packets after `next` are held, as a selective-ack bitmap.
    pub(crate) fn held_bitmap(&self, next: SeqNumber) -> u32 {
        if W > 32 {
            let mut word = [0];
            self.held_bitmaps(next, &mut word);
            return word[0];
        }
        // One word holds the window: turned so that bit 0 stands for `next + 1`.
        let word = self.held_bits.as_ref().first().copied().unwrap_or(0);
        word.rotate_right(u32::from(next.0.wrapping_add(1)) % 32)
    }

    /// The selective-ack bitmaps of the held packets (PROTOCOL.md 5.2): bit `i` of word `k`
    /// stands for `next + 1 + 32·k + i`. Returns how many words up to the last non-zero one.
    pub(crate) fn held_bitmaps(&self, next: SeqNumber, words: &mut [u32]) -> usize {
        words.fill(0);
        let bits = self.held_bits.as_ref();
        if self.held_count == 0 || bits.is_empty() {
            return 0;
        }
        // Every number held lies less than `W` after `next`, so one lap of the bitmap from
        // `next + 1` sees each once and nothing else; words past the highest held are zero.
        let mask = Self::HELD_BITS - 1;
        let span = usize::from(self.held_high.distance_from(next)).min(W);
        let mut used = 0;
        for (k, word) in words.iter_mut().take(span.div_ceil(32)).enumerate() {
            let bit = (usize::from(next.0) + 1 + 32 * k) & mask;
            let (at, shift) = (bit / 32, bit % 32);
            let high = if shift == 0 { 0 } else { bits[(at + 1) % (Self::HELD_BITS / 32)] << (32 - shift) };
            *word = bits[at] >> shift | high;
            if *word != 0 {
                used = k + 1;
            }
        }
        used
    }

    pub(crate) fn held_count(&self) -> usize {
        self.held_count
    }

    /// The oldest complete message.
    pub(crate) fn front(&self) -> Option<&[u8]> {
        if self.complete == 0 {
            return None;
        }
        let (prefix, rest) = self.buf.as_ref()[self.read..].split_at(LEN_PREFIX);
        let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        rest.get(..len as usize)
    }

    /// Releases the oldest complete message.
    pub(crate) fn pop(&mut self) {
        let Some(message) = self.front() else { return };
        self.read += LEN_PREFIX + message.len();
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
    let shift = src.abs_diff(dst);
    let mut left = len;
    while left > 0 && shift > 0 {
        let n = shift.min(left);
        // Moving down, the chunks go front first; moving up, back first.
        let at = if dst < src { len - left } else { left - n };
        left -= n;
        let (from, to) = (src + at, dst + at);
        let (low, high) = buf.split_at_mut(from.max(to));
        let (lower, upper) = (&mut low[from.min(to)..][..n], &mut high[..n]);
        let (source, target) = if from < to { (lower, upper) } else { (upper, lower) };
        target.copy_from_slice(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_into_contiguous_messages() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 32], 0);
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
        let mut r = RecvBuffer::<_, 4>::new([0u8; 32], 0);
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
        let mut r = RecvBuffer::<_, 4>::new([0u8; 64], 0);
        assert_eq!(r.hold(SeqNumber(2), b"cd", true), Ok(true));
        assert_eq!(r.hold(SeqNumber(3), b"ef", false), Ok(true));
        assert_eq!(r.hold(SeqNumber(3), b"ef", false), Ok(false), "already held");
        assert_eq!(r.held_bitmap(SeqNumber(1)), 0b11);
        assert!(r.extends_held(SeqNumber(4)) && !r.extends_held(SeqNumber(5)));
        assert_eq!(r.free(), 64 - 2 * (2 + TRAILER));
        assert_eq!(r.push(b"ab", true), Ok(false)); // seq 1 fills the gap
        assert_eq!(r.release_held(SeqNumber(2)), Some(false));
        assert_eq!(r.release_held(SeqNumber(3)), Some(true));
        assert_eq!(r.release_held(SeqNumber(4)), None);
        assert_eq!(r.front(), Some(&b"abcdef"[..]));
        assert_eq!(r.held_count(), 0);
        r.pop();
        assert_eq!(r.free(), 64);
    }

    fn drain<const N: usize, const W: usize>(
        r: &mut RecvBuffer<[u8; N], W>,
    ) -> std::vec::Vec<std::vec::Vec<u8>> {
        let mut got = std::vec::Vec::new();
        while let Some(m) = r.front() {
            got.push(m.to_vec());
            r.pop();
        }
        got
    }

    #[test]
    fn released_bytes_stay_until_room_is_short_then_the_held_packets_are_packed() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 48], 0);
        assert_eq!(r.hold(SeqNumber(6), &[6; 8], false), Ok(true)); // 36..48
        assert_eq!(r.hold(SeqNumber(7), &[7; 8], false), Ok(true)); // 24..36
        assert_eq!(r.push(&[5; 2], false), Ok(true));
        assert_eq!(r.release_held(SeqNumber(6)), Some(true)); // 36..48 left behind
        assert_eq!((r.top, r.bottom), (24, 48));
        assert_eq!(drain(&mut r), [std::vec![5; 2], std::vec![6; 8]]);
        assert_eq!(r.push(&[1; 20], false), Ok(true)); // 0..24
        // 10 bytes fit only once 7 moves up against the end, over what 6 left.
        assert_eq!(r.hold(SeqNumber(9), &[9; 6], false), Ok(true));
        assert_eq!((r.top, r.bottom), (26, 48));
        assert_eq!(drain(&mut r), [std::vec![1; 20]]);
        assert_eq!(r.release_held(SeqNumber(7)), Some(true));
        assert_eq!(r.release_held(SeqNumber(9)), Some(true));
        assert_eq!((r.top, r.bottom), (48, 48), "nothing held: the area starts again at the end");
        assert_eq!(drain(&mut r), [std::vec![7; 8], std::vec![9; 6]]);
        assert_eq!(r.free(), 48);
    }

    #[test]
    fn a_packet_released_from_the_middle_leaves_bytes_that_packing_drops() {
        let mut r = RecvBuffer::<_, 8>::new([0u8; 64], 0);
        assert_eq!(r.hold(SeqNumber(10), &[1; 8], false), Ok(true)); // 52..64
        assert_eq!(r.hold(SeqNumber(11), &[2; 8], false), Ok(true)); // 40..52
        assert_eq!(r.hold(SeqNumber(13), &[], false), Ok(true)); // 36..40
        assert_eq!(r.hold(SeqNumber(12), &[3; 8], false), Ok(true)); // 24..36
        assert_eq!(r.release_held(SeqNumber(11)), Some(true)); // to 0..12; 40..52 left behind
        assert_eq!((r.top, r.bottom), (24, 64));
        assert_eq!(drain(&mut r), [std::vec![2; 8]]);
        assert_eq!(r.free(), 64 - 12 - 4 - 12);
        // 34 bytes fit once the live packets are packed: 12 and 13 move up, 10 stays.
        assert_eq!(r.push(&[9; 30], false), Ok(true));
        assert_eq!((r.top, r.bottom), (36, 64));
        assert_eq!(r.held_bitmap(SeqNumber(9)), 0b1101);
        assert_eq!(drain(&mut r), [std::vec![9; 30]]);
        for seq in [10, 12, 13] {
            assert_eq!(r.release_held(SeqNumber(seq)), Some(true));
        }
        assert_eq!(drain(&mut r), [std::vec![1; 8], std::vec![3; 8], std::vec![]]);
        assert_eq!((r.free(), r.top), (64, 64));
    }

    #[test]
    fn a_held_packet_without_room_to_move_down_is_dropped() {
        let mut r = RecvBuffer::<_, 4>::new([0u8; 48], 0);
        assert_eq!(r.hold(SeqNumber(2), &[2; 20], false), Ok(true));
        assert_eq!(r.push(&[1; 20], false), Ok(true)); // unread: 24 bytes
        assert_eq!(r.release_held(SeqNumber(2)), None, "24 + 24 > 48");
        assert_eq!(r.held_count(), 0);
        assert_eq!(drain(&mut r), [std::vec![1; 20]]);
    }

    #[test]
    fn growable_held_records_are_made_at_the_first_hold_and_given_back_once_empty() {
        let mut r = RecvBuffer::<std::vec::Vec<u8>, 8>::new(std::vec::Vec::new(), 256);
        assert_eq!((r.held.len(), r.held_bits.len()), (0, 0), "no record before a packet is held");
        for seq in 2..10u16 {
            assert_eq!(r.hold(SeqNumber(seq), &[seq as u8; 3], seq < 9), Ok(true));
        }
        assert_eq!((r.held_count(), r.held.len(), r.held_bits.len()), (8, 8, 1));
        assert_eq!(r.hold(SeqNumber(10), &[10; 3], false), Err(()), "slot 2 is taken: W at most");
        assert_eq!(r.push(&[1; 3], true), Ok(false));
        for seq in 2..9u16 {
            assert_eq!(r.release_held(SeqNumber(seq)), Some(false));
        }
        assert_eq!(r.release_held(SeqNumber(9)), Some(true));
        let want: std::vec::Vec<u8> = (1..10u8).flat_map(|b| [b; 3]).collect();
        assert_eq!(r.front(), Some(&want[..]));
        r.pop();
        r.shrink_if_empty();
        assert_eq!((r.held.len(), r.held_bits.len(), r.storage_len()), (0, 0, 0), "given back");
    }

    #[test]
    fn a_growable_table_doubles_when_two_numbers_share_a_slot() {
        let mut r = RecvBuffer::<std::vec::Vec<u8>, 256>::new(std::vec::Vec::new(), 4096);
        assert_eq!(r.hold(SeqNumber(3), &[3], false), Ok(true));
        assert_eq!(r.held.len(), 16, "sixteen slots at first");
        // 19 and 35 share slot 3 of 16 with 3; 35 shares slot 3 of 32 as well.
        assert_eq!(r.hold(SeqNumber(19), &[19], false), Ok(true));
        assert_eq!(r.held.len(), 32);
        assert_eq!(r.hold(SeqNumber(35), &[35], false), Ok(true));
        assert_eq!(r.held.len(), 64);
        assert_eq!(r.hold(SeqNumber(19), &[19], false), Ok(false), "found after the move");
        let mut words = [0u32; 8];
        assert_eq!(r.held_bitmaps(SeqNumber(2), &mut words), 2);
        assert_eq!(words[..2], [1 | 1 << 16, 1]);
        assert_eq!(r.push(&[2], false), Ok(true));
        for seq in [3, 19, 35] {
            assert_eq!(r.held_len(SeqNumber(seq)), Some(1));
            assert_eq!(r.release_held(SeqNumber(seq)), Some(true));
        }
        let mut got = std::vec::Vec::new();
        while let Some(m) = r.front() {
            got.push(m[0]);
            r.pop();
        }
        assert_eq!(got, [2, 3, 19, 35]);
    }

    #[test]
    fn no_slot_or_no_room_refuses_without_storing() {
        let mut r = RecvBuffer::<_, 2>::new([0u8; 32], 0);
        assert_eq!(r.hold(SeqNumber(1), &[1; 4], false), Ok(true));
        assert_eq!(r.hold(SeqNumber(2), &[2; 4], false), Ok(true));
        assert_eq!(r.hold(SeqNumber(3), &[3; 4], false), Err(()), "two slots");
        let mut r = RecvBuffer::<_, 4>::new([0u8; 16], 0);
        assert_eq!(r.hold(SeqNumber(1), &[1; 13], false), Err(()), "13 + 4 > 16");
        assert_eq!(r.free(), 16);
    }

    #[test]
    fn bitmaps_cross_the_bitmap_end_and_the_numbers_wrap() {
        // 64 numbers from 65531 on: the bitmap's lap and the u16 wrap both fall inside.
        let mut r = RecvBuffer::<std::vec::Vec<u8>, 64>::new(std::vec::Vec::new(), 1024);
        for seq in [65531, 65535, 0, 5, 50] {
            assert_eq!(r.hold(SeqNumber(seq), &[1], false), Ok(true));
        }
        let mut words = [7u32; 4];
        assert_eq!(r.held_bitmaps(SeqNumber(65530), &mut words), 2);
        assert_eq!(words, [1 | 1 << 4 | 1 << 5 | 1 << 10, 1 << 23, 0, 0]);
        assert_eq!(r.held_bitmap(SeqNumber(65530)), words[0]);
        assert!(r.extends_held(SeqNumber(51)));
        // A window that is not a power of two: 65536 = 16 (mod 48), so across the wrap 65530
        // and 10 share a slot of a fixed table of 48, and the second is refused (to be sent
        // again later); a growable table doubles (to 32 slots, where they differ) and takes
        // both.
        let mut r = RecvBuffer::<_, 48>::new([0u8; 1024], 0);
        assert_eq!(r.hold(SeqNumber(65530), &[1], false), Ok(true));
        assert_eq!(r.hold(SeqNumber(10), &[1], false), Err(()));
        assert_eq!(r.hold(SeqNumber(11), &[1], false), Ok(true));
        let mut grows = RecvBuffer::<std::vec::Vec<u8>, 48>::new(std::vec::Vec::new(), 1024);
        for seq in [65530, 10, 11] {
            assert_eq!(grows.hold(SeqNumber(seq), &[1], false), Ok(true));
        }
        assert_eq!(grows.held.len(), 32);
        let mut words = [0u32; 2];
        assert_eq!(r.held_bitmaps(SeqNumber(65529), &mut words), 1);
        assert_eq!(words, [1 | 1 << 17, 0]);
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

// Not under miri: proptest looks for its regressions file, and miri's isolation refuses the file
// system (the model runs in every `cargo test`).
#[cfg(all(test, not(miri)))]
mod model_tests {
    use std::collections::BTreeMap;
    use std::vec::Vec;

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// A packet's payload and its `more` flag.
    type Fragment = (Vec<u8>, bool);

    /// Messages of these lengths, and their fragments of at most `cut` bytes (one per sequence
    /// number).
    fn fragments(lens: &[usize], cut: usize) -> (Vec<Vec<u8>>, Vec<Fragment>) {
        let messages: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(k, &n)| (0..n).map(|i| (k * 7 + i) as u8).collect()).collect();
        let mut frags = Vec::new();
        for m in &messages {
            let mut chunks: Vec<&[u8]> = m.chunks(cut).collect();
            if chunks.is_empty() {
                chunks.push(&[]);
            }
            let last = chunks.len() - 1;
            frags.extend(chunks.into_iter().enumerate().map(|(i, c)| (c.to_vec(), i < last)));
        }
        (messages, frags)
    }

    /// Runs the model over `r`, a 40-byte buffer (or one that may grow to 40).
    fn check_model<S: Buffer>(
        mut r: RecvBuffer<S, 4>,
        lens: &[usize],
        cut: usize,
        ops: Vec<(u8, usize)>,
    ) -> Result<(), TestCaseError> {
        let (messages, frags) = fragments(lens, cut);
        let mut next = 0usize;
        let mut held = BTreeMap::new();
        let (mut stored, mut got) = (0usize, Vec::new());
        // An op reads a message (kind 6 or 7) or delivers packet `next + value - 1` (from an
        // old one up to 4 ahead); then every packet comes in order, read as it goes.
        let drain = (0..1200).map(|i| if i % 2 == 0 { (0, 1) } else { (6, 0) });
        for (kind, value) in ops.into_iter().chain(drain) {
            if kind >= 6 {
                if let Some(m) = r.front() {
                    stored -= m.len() + LEN_PREFIX;
                    got.push(m.to_vec());
                    r.pop();
                }
                if kind == 7 {
                    r.shrink_if_empty();
                }
            } else {
                let Some(seq) = (next + value).checked_sub(1) else { continue };
                let Some((payload, more)) = frags.get(seq) else { continue };
                let new_message = !r.partial();
                if seq == next {
                    if r.push(payload, *more).is_ok() {
                        stored += payload.len() + if new_message { LEN_PREFIX } else { 0 };
                        next += 1;
                    }
                    while let Some(len) = r.held_len(SeqNumber(next as u16)) {
                        let new_message = !r.partial();
                        held.remove(&next);
                        if r.release_held(SeqNumber(next as u16)).is_some() {
                            stored += len + if new_message { LEN_PREFIX } else { 0 };
                            next += 1;
                        }
                    }
                } else if seq > next && r.hold(SeqNumber(seq as u16), payload, *more) == Ok(true) {
                    held.insert(seq, payload.len());
                }
            }
            let held_bytes: usize = held.values().map(|len| len + TRAILER).sum();
            prop_assert_eq!(r.free(), 40 - stored - held_bytes);
            prop_assert!(r.storage_len() <= 40);
            prop_assert_eq!(r.held_count(), held.len());
        }
        // Held packets may fill the buffer so that the gap's packet never fits (a session's
        // credit prevents that); otherwise everything arrived.
        prop_assert_eq!(&got[..], &messages[..got.len()]);
        prop_assert!(got.len() == messages.len() || !held.is_empty());
        Ok(())
    }

    proptest! {
        /// Packets delivered in any order, repeated or lost, with reads in between, come out as
        /// the messages that went in, in order; `free` counts exactly what is stored.
        #[test]
        fn any_arrival_order_reassembles_the_messages_in_order(
            lens in vec(0usize..20, 1..12),
            cut in 1usize..8,
            ops in vec((0u8..8, 0usize..6), 0..200),
        ) {
            check_model(RecvBuffer::<_, 4>::new([0u8; 40], 0), &lens, cut, ops)?;
        }

        /// The same with storage that starts small, grows up to 40 bytes as packets need, and
        /// is given back whenever it empties: growth keeps every stored and held byte.
        #[test]
        fn growable_storage_reassembles_the_same(
            lens in vec(0usize..20, 1..12),
            cut in 1usize..8,
            ops in vec((0u8..8, 0usize..6), 0..200),
            initial in 0usize..16,
        ) {
            check_model(RecvBuffer::<_, 4>::new(std::vec![0u8; initial], 40), &lens, cut, ops)?;
        }
    }
}
