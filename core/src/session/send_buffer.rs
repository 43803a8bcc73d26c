//! Messages waiting to be sent or acknowledged.
//!
//! A byte ring over the caller's buffer holds every message from [`SendBuffer::push`] until all
//! its fragments are acknowledged. Each message is stored behind a 4-byte length, so fragments
//! can be cut at transmit time to whatever size the peer accepts. Fragments in flight are
//! described by a ring of [`Segment`]s (capacity `W`), oldest first; their sequence numbers
//! follow one another.
//!
//! Growable storage starts with what it was given and grows, as messages need, up to a limit;
//! the ring is made linear again before it grows, and gives the room back once drained. The
//! segment ring does the same beside growable storage: it starts empty, doubles as packets go
//! in flight (up to `W`), and is given back once drained.
//!
//! With loss recovery (feature `congestion`) thousands of segments may be in flight, and every
//! ACK is handled without a pass over them. Beside the ring, bit words hold each slot's
//! `sacked` and `resend` flags, so a selective-ack word is compared with what was reported
//! before in a few operations, and the next repair is found 32 slots at a time from the
//! lowest slot that may be queued. RACK walks the segments sent once in sequence order, which
//! is the order they were sent, from where its last walk stopped, and the retransmissions in
//! the order they were sent from a queue ([`Retransmits`]); both walks stop at the first
//! segment not yet due. An ACK thus costs a step per newly reported, acknowledged or lost
//! segment, plus one per bitmap word.

use crate::Instant;
use crate::buffer::{Buffer, Record, RecordStorage};
use crate::wire::SeqNumber;

#[cfg(feature = "congestion")]
mod flags;
// Not under miri: proptest looks for its regressions file, and miri's isolation refuses the file
// system (the model runs in every `cargo test`).
#[cfg(all(test, feature = "congestion", not(miri)))]
mod model_tests;

#[cfg(feature = "congestion")]
use super::rack::{Retransmit, Retransmits};
#[cfg(feature = "congestion")]
use flags::{Flag, SlotFlags};

/// Bytes stored in front of each message.
const LEN_PREFIX: usize = 4;

/// A DATA packet sent and not yet acknowledged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub(crate) seq: SeqNumber,
    /// Stream offset of the payload's first byte (wrapping: only differences count).
    pub(crate) start: usize,
    pub(crate) len: u16,
    pub(crate) more: bool,
    /// Credit spent by all DATA up to and including this one.
    pub(crate) cost_end: u32,
    /// When it was last sent.
    pub(crate) sent_at: Instant,
    pub(crate) transmissions: u8,
    /// The peer reported it received (selective acknowledgement); never sent again.
    pub(crate) sacked: bool,
    /// Queued to be sent again.
    pub(crate) resend: bool,
}

impl Record for Segment {
    const EMPTY: Self = Self::EMPTY;
}

impl Segment {
    pub(crate) const EMPTY: Self = Self {
        seq: SeqNumber(0),
        start: 0,
        len: 0,
        more: false,
        cost_end: 0,
        sent_at: Instant::ZERO,
        transmissions: 0,
        sacked: false,
        resend: false,
    };
}

/// The next fragment to cut, before it is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fragment {
    pub(crate) start: usize,
    pub(crate) len: u16,
    #[allow(dead_code, reason = "read when the fragment is sent again")]
    pub(crate) more: bool,
    /// Bytes of the message left after this fragment.
    rest: u32,
}

/// Stream offsets are `usize` and wrap: the ring never holds more than its capacity, so the
/// distance from `head` is always exact (and on small cores this is 32-bit arithmetic).
/// Segments a growable ring makes room for first.
const FIRST_SEGMENTS: usize = 4;

#[derive(Debug)]
pub(crate) struct SendBuffer<B: Buffer, const W: usize> {
    buf: B,
    /// Stream offset of the oldest byte still needed.
    head: usize,
    /// Where `head` lies in `buf` (stream offsets map to positions without a division).
    head_at: usize,
    /// Stream offset after the newest byte.
    tail: usize,
    /// Stream offset of the first byte not yet cut into a fragment.
    cursor: usize,
    /// Bytes left in the message being cut; `None` when the cursor is at a length prefix.
    msg_left: Option<u32>,
    /// The segments in flight: `count` of them from `first` on, round the end (of all `W`
    /// records with fixed storage; of those grown so far with growable storage).
    inflight: B::Records<Segment, W>,
    first: usize,
    count: usize,
    next_seq: SeqNumber,
    /// Segments in flight marked `sacked`, and marked `resend` (never both): the pipe and the
    /// check for repairs cost nothing per packet with thousands in flight.
    #[cfg(feature = "congestion")]
    sacked: usize,
    #[cfg(feature = "congestion")]
    resends: usize,
    /// The segments' `sacked` and `resend` flags by ring slot, 32 to a word (as many words as
    /// the ring's records need).
    #[cfg(feature = "congestion")]
    flags: B::Records<SlotFlags, W>,
    /// No segment before the `resend_from`th in flight is queued to be sent again.
    #[cfg(feature = "congestion")]
    resend_from: usize,
    /// RACK's walk over segments sent once: every segment before the `rack_from`th in flight
    /// was reported received, queued to be sent again, or sent again.
    #[cfg(feature = "congestion")]
    rack_from: usize,
    /// The retransmissions RACK may still find lost, in the order sent.
    #[cfg(feature = "congestion")]
    retransmits: Retransmits<B::Records<Retransmit, W>>,
    // Last: read only with growable storage (small offsets stay for the fields used often).
    /// The size growable storage may reach (the buffer's capacity); unused with fixed storage.
    limit: usize,
    /// The storage's length when it was given, which it shrinks back to.
    initial: usize,
}

impl<B: Buffer, const W: usize> SendBuffer<B, W> {
    /// A buffer over `buf`, which may grow up to `limit` bytes if it can.
    pub(crate) fn new(buf: B, limit: usize) -> Self {
        let initial = buf.as_ref().len();
        Self {
            buf,
            head: 0,
            head_at: 0,
            tail: 0,
            cursor: 0,
            msg_left: None,
            inflight: RecordStorage::new(),
            first: 0,
            count: 0,
            next_seq: SeqNumber(0),
            #[cfg(feature = "congestion")]
            sacked: 0,
            #[cfg(feature = "congestion")]
            resends: 0,
            #[cfg(feature = "congestion")]
            flags: RecordStorage::new(),
            #[cfg(feature = "congestion")]
            resend_from: 0,
            #[cfg(feature = "congestion")]
            rack_from: 0,
            #[cfg(feature = "congestion")]
            retransmits: Retransmits::new(),
            // Unused with fixed storage: zeros, stored with the other zeros.
            limit: if B::GROWS { limit.max(initial) } else { 0 },
            initial: if B::GROWS { initial } else { 0 },
        }
    }

    pub(crate) fn reset(&mut self) {
        if B::GROWS {
            self.buf.shrink(self.initial);
            self.inflight.shrink(0);
        }
        self.head = 0;
        self.head_at = 0;
        self.tail = 0;
        self.cursor = 0;
        self.msg_left = None;
        self.first = 0;
        self.count = 0;
        self.next_seq = SeqNumber(0);
        #[cfg(feature = "congestion")]
        {
            (self.sacked, self.resends) = (0, 0);
            (self.resend_from, self.rack_from) = (0, 0);
            self.flags.shrink(0);
            self.flags.as_mut().fill(SlotFlags::EMPTY);
            self.retransmits.clear();
        }
    }

    /// The bytes it can hold: its storage's length, or the limit growable storage may reach.
    pub(crate) fn capacity(&self) -> usize {
        if B::GROWS { self.limit } else { self.storage_len() }
    }

    /// The storage's length now.
    pub(crate) fn storage_len(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// Makes the storage hold `need` more bytes, growing it (at least doubling, up to the
    /// limit) with the ring made linear first so that no stored byte lies across its end.
    /// The caller checked `need <= free()`.
    fn grow_for(&mut self, need: usize) {
        let len = self.storage_len();
        let used = self.tail.wrapping_sub(self.head);
        if used + need <= len {
            return;
        }
        self.buf.as_mut().rotate_left(self.head_at);
        self.head_at = 0;
        let target = (used + need).max(len.saturating_mul(2)).min(self.limit);
        let grown = self.buf.grow_to(target);
        debug_assert!(grown, "growable storage grows up to its limit");
    }

    /// Gives grown storage back, once every message has been acknowledged.
    pub(crate) fn shrink_if_drained(&mut self) {
        if B::GROWS && self.is_drained() {
            // Nothing in flight: the segment ring may start anywhere, and hold no place.
            self.first = 0;
            self.inflight.shrink(0);
            #[cfg(feature = "congestion")]
            {
                self.flags.shrink(0);
                self.retransmits.clear();
            }
            if self.storage_len() > self.initial {
                // Drained: `head == tail`, no byte is stored, the ring may start anywhere.
                self.head_at = 0;
                self.buf.shrink(self.initial);
            }
        }
    }

    /// The largest message that fits in an empty buffer.
    pub(crate) fn max_message(&self) -> usize {
        self.capacity().saturating_sub(LEN_PREFIX)
    }

    /// Bytes free for new messages (length prefixes included).
    pub(crate) fn free(&self) -> usize {
        self.capacity() - self.tail.wrapping_sub(self.head)
    }

    /// Stores `msg`; false (and nothing stored) if it does not fit now.
    pub(crate) fn push(&mut self, msg: &[u8]) -> bool {
        if msg.len() + LEN_PREFIX > self.free() {
            return false;
        }
        if B::GROWS {
            self.grow_for(msg.len() + LEN_PREFIX);
        }
        let tail = self.tail;
        self.write_at(tail, &(msg.len() as u32).to_le_bytes());
        self.write_at(tail.wrapping_add(LEN_PREFIX), msg);
        self.tail = tail.wrapping_add(LEN_PREFIX + msg.len());
        true
    }

    /// The position in `buf` of stream `offset`, which lies between `head` and `head` plus the
    /// capacity.
    fn position(&self, offset: usize) -> usize {
        let cap = self.storage_len();
        let at = self.head_at + offset.wrapping_sub(self.head);
        if at >= cap { at - cap } else { at }
    }

    fn write_at(&mut self, offset: usize, data: &[u8]) {
        let at = self.position(offset);
        let (wrapped, from_at) = self.buf.as_mut().split_at_mut(at);
        let (first, rest) = data.split_at(data.len().min(from_at.len()));
        from_at[..first.len()].copy_from_slice(first);
        wrapped[..rest.len()].copy_from_slice(rest);
    }

    /// Copies the bytes at stream `offset` into `out`, across the wrap if need be.
    pub(crate) fn read_at(&self, offset: usize, out: &mut [u8]) {
        let at = self.position(offset);
        let (wrapped, from_at) = self.buf.as_ref().split_at(at);
        let (first, rest) = out.split_at_mut(out.len().min(from_at.len()));
        first.copy_from_slice(&from_at[..first.len()]);
        rest.copy_from_slice(&wrapped[..rest.len()]);
    }

    /// The `len` bytes at stream `offset` where they lie: up to two pieces of the storage (the
    /// second, across the wrap, empty if none).
    pub(crate) fn slices(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let at = self.position(offset);
        let (wrapped, from_at) = self.buf.as_ref().split_at(at);
        let first = len.min(from_at.len());
        (&from_at[..first], wrapped.get(..len - first).unwrap_or_default())
    }

    /// Where the `len` bytes at stream `offset` lie in the storage: `(at, first)`, `first`
    /// bytes from `at`, and the rest from the storage's start (across the wrap).
    pub(crate) fn span(&self, offset: usize, len: usize) -> (usize, usize) {
        let at = self.position(offset);
        (at, len.min(self.storage_len() - at))
    }

    /// The storage, in which [`span`](Self::span) places stream bytes.
    pub(crate) fn storage(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The storage, to change bytes in place: a keyed session without retransmission seals a
    /// payload where it lies as it sends it, the only time it is ever read.
    #[cfg(all(feature = "auth", feature = "alloc"))]
    pub(crate) fn storage_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Whether bytes remain that were never sent.
    pub(crate) fn has_unsent(&self) -> bool {
        self.cursor != self.tail
    }

    /// Whether every message was sent and acknowledged.
    pub(crate) fn is_drained(&self) -> bool {
        !self.has_unsent() && self.count == 0
    }

    pub(crate) fn inflight(&self) -> usize {
        self.count
    }

    pub(crate) fn inflight_capacity(&self) -> usize {
        W
    }

    pub(crate) fn next_seq(&self) -> SeqNumber {
        self.next_seq
    }

    /// The oldest unacknowledged sequence number (the next one if none is in flight).
    pub(crate) fn oldest_unacked(&self) -> SeqNumber {
        // In-flight segments are numbered one after another up to `next_seq`.
        SeqNumber(self.next_seq.0.wrapping_sub(self.count as u16))
    }

    /// Where the `i`th segment in flight lies in `inflight` (oldest first, `i <= count`, and
    /// `i < count` unless a slot is free).
    fn slot(&self, i: usize) -> usize {
        if B::GROWS {
            // `first` and `i` are below the ring's length: one subtraction wraps the sum.
            let len = self.inflight.as_ref().len();
            let at = self.first + i;
            if at >= len { at - len } else { at }
        } else {
            (self.first + i) % W
        }
    }

    /// Doubles a full growable segment ring (up to `W`), made linear first.
    fn grow_inflight(&mut self) {
        let len = self.inflight.as_ref().len();
        self.inflight.as_mut().rotate_left(self.first);
        self.first = 0;
        let grown = self.inflight.grow_to(len.saturating_mul(2).max(FIRST_SEGMENTS).min(W));
        debug_assert!(grown, "growable records grow up to W");
        #[cfg(feature = "congestion")]
        {
            let grown = self.flags.grow_to(flags::words_for(self.inflight.as_ref().len()));
            debug_assert!(grown, "growable records grow up to W");
            self.rebuild_flags();
        }
    }

    /// The `i`th segment in flight (`i < count`).
    #[cfg(feature = "congestion")]
    fn segment(&self, i: usize) -> &Segment {
        &self.inflight.as_ref()[self.slot(i)]
    }

    /// Sets every slot's flag bits from the segments' flags (after the ring moved or changed
    /// whole).
    #[cfg(feature = "congestion")]
    fn rebuild_flags(&mut self) {
        self.flags.as_mut().fill(SlotFlags::EMPTY);
        for i in 0..self.count {
            let (at, segment) = (self.slot(i), *self.segment(i));
            flags::set(self.flags.as_mut(), at, Flag::Sacked, segment.sacked);
            flags::set(self.flags.as_mut(), at, Flag::Resend, segment.resend);
        }
    }

    /// `flag` of the `n <= 32` segments in flight from the `i`th on (`i + n <= count`): bit `j`
    /// for the `i + j`th.
    #[cfg(feature = "congestion")]
    #[inline]
    fn flag_run(&self, flag: Flag, i: usize, n: usize) -> u32 {
        let len = if B::GROWS { self.inflight.as_ref().len() } else { W };
        flags::run(self.flags.as_ref(), flag, len, self.slot(i), n)
    }

    /// The first segment from the `i`th on whose `flag` is `on`, if any.
    #[cfg(feature = "congestion")]
    fn find_flag(&self, flag: Flag, on: bool, mut i: usize) -> Option<usize> {
        while i < self.count {
            let n = (self.count - i).min(32);
            let run = self.flag_run(flag, i, n);
            let run = if on { run } else { !run & flags::low_bits(n) };
            if run != 0 {
                return Some(i + run.trailing_zeros() as usize);
            }
            i += n;
        }
        None
    }

    /// Marks the `i`th segment in flight reported received (it was not), and no longer queued.
    #[cfg(feature = "congestion")]
    fn set_sacked(&mut self, i: usize) -> Segment {
        let at = self.slot(i);
        let segment = &mut self.inflight.as_mut()[at];
        self.sacked += 1;
        self.resends -= usize::from(segment.resend);
        segment.sacked = true;
        segment.resend = false;
        let segment = *segment;
        flags::set(self.flags.as_mut(), at, Flag::Sacked, true);
        flags::set(self.flags.as_mut(), at, Flag::Resend, false);
        segment
    }

    /// Queues the `i`th segment in flight to be sent again (it is neither queued nor reported
    /// received).
    #[cfg(feature = "congestion")]
    fn set_resend(&mut self, i: usize) {
        let at = self.slot(i);
        self.inflight.as_mut()[at].resend = true;
        self.resends += 1;
        self.resend_from = self.resend_from.min(i);
        flags::set(self.flags.as_mut(), at, Flag::Resend, true);
    }

    /// The next fragment of at most `max_payload` bytes, without cutting it.
    pub(crate) fn peek_fragment(&self, max_payload: u16) -> Option<Fragment> {
        if !self.has_unsent() {
            return None;
        }
        let (start, left) = match self.msg_left {
            Some(left) => (self.cursor, left),
            None => {
                let mut len = [0u8; LEN_PREFIX];
                self.read_at(self.cursor, &mut len);
                (self.cursor.wrapping_add(LEN_PREFIX), u32::from_le_bytes(len))
            }
        };
        let len = left.min(u32::from(max_payload)) as u16;
        let rest = left - u32::from(len);
        Some(Fragment { start, len, more: rest > 0, rest })
    }

    /// Cuts `fragment` (from [`peek_fragment`](Self::peek_fragment)) and puts it in flight.
    pub(crate) fn commit(&mut self, fragment: Fragment, cost_end: u32, now: Instant) -> Segment {
        let segment = Segment {
            seq: self.next_seq,
            start: fragment.start,
            len: fragment.len,
            more: fragment.more,
            cost_end,
            sent_at: now,
            transmissions: 1,
            sacked: false,
            resend: false,
        };
        // The caller checked the window against `inflight_capacity`.
        debug_assert!(self.count < W);
        if B::GROWS && self.count == self.inflight.as_ref().len() {
            self.grow_inflight();
        }
        let at = self.slot(self.count);
        self.inflight.as_mut()[at] = segment;
        self.count += 1;
        self.cursor = fragment.start.wrapping_add(usize::from(fragment.len));
        self.msg_left = fragment.more.then_some(fragment.rest);
        self.next_seq += 1;
        segment
    }

    /// Frees every segment before `ack`; returns the last one freed.
    ///
    /// `ack` must lie between [`oldest_unacked`](Self::oldest_unacked) and
    /// [`next_seq`](Self::next_seq).
    pub(crate) fn acknowledge(
        &mut self,
        ack: SeqNumber,
        mut on_acked: impl FnMut(&Segment),
    ) -> Option<Segment> {
        let mut last = None;
        let acked = usize::from(ack.distance_from(self.oldest_unacked())).min(self.count);
        for _ in 0..acked {
            let segment = self.inflight.as_ref()[self.slot(0)];
            #[cfg(feature = "congestion")]
            {
                self.sacked -= usize::from(segment.sacked);
                self.resends -= usize::from(segment.resend);
                // A slot's bits are clear while it is free.
                flags::set(self.flags.as_mut(), self.first, Flag::Sacked, false);
                flags::set(self.flags.as_mut(), self.first, Flag::Resend, false);
            }
            self.first = self.slot(1);
            self.count -= 1;
            on_acked(&segment);
            last = Some(segment);
        }
        #[cfg(feature = "congestion")]
        {
            self.resend_from = self.resend_from.saturating_sub(acked);
            self.rack_from = self.rack_from.saturating_sub(acked);
        }
        if let Some(segment) = last {
            let head = segment.start.wrapping_add(usize::from(segment.len));
            self.head_at = self.position(head);
            self.head = head;
        }
        last
    }

    /// Marks the segments the peer reported in a selective-ack bitmap: bit `i` stands for
    /// `ack + 1 + i`. Returns when the newest newly marked segment was sent, if it was sent
    /// only once (an RTT sample by Karn's rule).
    #[cfg(any(test, not(feature = "congestion")))]
    pub(crate) fn mark_sacked(&mut self, ack: SeqNumber, bitmap: u32) -> Option<Instant> {
        let mut sample = None;
        for i in 0..self.count {
            let at = self.slot(i);
            let segment = &mut self.inflight.as_mut()[at];
            let offset = i32::from(segment.seq.diff(ack)) - 1;
            if (0..32).contains(&offset) && bitmap & (1 << offset) != 0 && !segment.sacked {
                #[cfg(feature = "congestion")]
                {
                    sample = (segment.transmissions == 1).then_some(segment.sent_at);
                    self.set_sacked(i);
                    continue;
                }
                #[cfg(not(feature = "congestion"))]
                {
                    segment.sacked = true;
                    segment.resend = false;
                    sample = (segment.transmissions == 1).then_some(segment.sent_at);
                }
            }
        }
        sample
    }

    /// [`mark_sacked`](Self::mark_sacked) over bitmap words (bit `i` of word `k` stands for
    /// `ack + 1 + 32·k + i`), calling `on_sacked` for each segment newly marked, oldest first.
    /// Each word is compared with the slots' `sacked` bits: the cost is a few steps per word
    /// plus one per segment newly marked.
    #[cfg(feature = "congestion")]
    pub(crate) fn mark_sacked_with(
        &mut self,
        ack: SeqNumber,
        bitmap: &[u32],
        mut on_sacked: impl FnMut(&Segment),
    ) -> Option<Instant> {
        let mut sample = None;
        // Where `ack + 1` lies in flight; bits before the oldest segment or past the newest
        // stand for nothing in flight.
        let base = i32::from(ack.diff(self.oldest_unacked())) + 1;
        for (k, &word) in bitmap.iter().enumerate() {
            let from = base + 32 * k as i32;
            // Bits standing for segments already acknowledged (an ack older than the oldest).
            let (word, from) = match usize::try_from(from) {
                Ok(from) => (word, from),
                Err(_) if from > -32 => (word >> from.unsigned_abs(), 0),
                Err(_) => continue,
            };
            if from >= self.count {
                break;
            }
            if word == 0 {
                continue;
            }
            let n = (self.count - from).min(32);
            let mut new = word & flags::low_bits(n) & !self.flag_run(Flag::Sacked, from, n);
            while new != 0 {
                let i = from + new.trailing_zeros() as usize;
                new &= new - 1;
                let segment = self.set_sacked(i);
                sample = (segment.transmissions == 1).then_some(segment.sent_at);
                on_sacked(&segment);
            }
        }
        sample
    }

    /// Segments in the network: sent, neither acknowledged, reported received nor queued to be
    /// sent again (what the congestion window bounds).
    #[cfg(feature = "congestion")]
    pub(crate) fn pipe(&self) -> usize {
        #[cfg(debug_assertions)]
        if self.count <= 64 {
            self.check_index();
        }
        self.count - self.sacked - self.resends
    }

    /// Checks the counts, flag bits and walk positions against the segments (a pass over
    /// them).
    #[cfg(all(feature = "congestion", any(test, debug_assertions)))]
    fn check_index(&self) {
        let (mut sacked, mut resends) = (0, 0);
        for i in 0..self.count {
            let segment = self.segment(i);
            sacked += usize::from(segment.sacked);
            resends += usize::from(segment.resend);
            let bits = (self.flag_run(Flag::Sacked, i, 1), self.flag_run(Flag::Resend, i, 1));
            assert_eq!(bits, (u32::from(segment.sacked), u32::from(segment.resend)), "bits of {i}");
            assert!(i >= self.resend_from || !segment.resend, "{i} queued before resend_from");
            let first_pending = segment.transmissions == 1 && !segment.sacked && !segment.resend;
            assert!(i >= self.rack_from || !first_pending, "{i} unjudged before rack_from");
        }
        assert_eq!((self.sacked, self.resends), (sacked, resends), "the counts follow the flags");
        let len = if B::GROWS { self.inflight.as_ref().len() } else { W };
        for i in self.count..len {
            let at = self.slot(i);
            let bits = (
                flags::run(self.flags.as_ref(), Flag::Sacked, len, at, 1),
                flags::run(self.flags.as_ref(), Flag::Resend, len, at, 1),
            );
            assert_eq!(bits, (0, 0), "a free slot's bits are clear");
        }
    }

    /// RACK (RFC 8985 6.2): queues for retransmission each segment not reported received that
    /// was sent before the newest delivered one (`xmit`, numbered `xmit_seq`) and `wait` µs or
    /// more before `now`, calling `on_lost` with its number. Returns when the next segment sent
    /// before that one will be due, if one is not yet (the reordering timer).
    ///
    /// Segments sent once are judged in sequence order, which is the order they were sent,
    /// from where the last call stopped; retransmissions in the order they were sent, from the
    /// queue's front. Both walks stop at the first segment sent after `xmit` or not yet due: a
    /// call costs a step per segment found lost, passed for good, or judged stale.
    #[cfg(feature = "congestion")]
    pub(crate) fn rack_detect(
        &mut self,
        now: Instant,
        (xmit, xmit_seq, wait): (Instant, SeqNumber, u64),
        mut on_lost: impl FnMut(SeqNumber),
    ) -> Option<Instant> {
        let before = |s: &Segment| s.sent_at < xmit || (s.sent_at == xmit && s.seq.diff(xmit_seq) < 0);
        let mut next = None::<Instant>;
        // Sent once: `rack_from` passes what was reported, queued, sent again or found lost.
        while self.rack_from < self.count {
            let i = self.rack_from;
            let segment = *self.segment(i);
            if segment.transmissions == 1 && !segment.sacked && !segment.resend {
                if !before(&segment) {
                    break;
                }
                let due = segment.sent_at.add_micros(wait);
                if due > now {
                    next = Some(due);
                    break;
                }
                self.set_resend(i);
                on_lost(segment.seq);
            }
            self.rack_from += 1;
        }
        // Sent again: stale entries at the front go; entries sent at `xmit`'s very time but
        // numbered after it are not judged, and stay.
        let mut e = 0;
        while let Some(entry) = self.retransmits.get(e) {
            let Some(i) = self.live_retransmit(entry) else {
                if e == 0 {
                    self.retransmits.pop_front();
                } else {
                    e += 1;
                }
                continue;
            };
            let segment = *self.segment(i);
            if segment.sent_at > xmit {
                break;
            }
            if before(&segment) {
                let due = segment.sent_at.add_micros(wait);
                if due > now {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    break;
                }
                self.set_resend(i);
                on_lost(segment.seq);
                if e == 0 {
                    self.retransmits.pop_front();
                    continue;
                }
            }
            e += 1;
        }
        next
    }

    /// Where the packet of a queued retransmission lies in flight, if the entry is live: the
    /// packet is in flight, was sent no more times since, and is neither reported received
    /// nor queued to be sent again.
    #[cfg(feature = "congestion")]
    fn live_retransmit(&self, entry: Retransmit) -> Option<usize> {
        let i = usize::from(entry.seq.distance_from(self.oldest_unacked()));
        (i < self.count && entry.is_live(self.segment(i))).then_some(i)
    }

    /// The oldest segment in flight, when it holds a full window back: queued to be sent again
    /// (its number returned) once it went `wait` µs or more before `now` without being reported
    /// received; else when it will be due, if it can be.
    #[cfg(feature = "congestion")]
    pub(crate) fn front_overdue(&mut self, now: Instant, wait: u64) -> (Option<SeqNumber>, Option<Instant>) {
        if self.count == 0 {
            return (None, None);
        }
        let segment = *self.segment(0);
        if segment.sacked || segment.resend {
            return (None, None);
        }
        let due = segment.sent_at.add_micros(wait);
        if due > now {
            return (None, Some(due));
        }
        self.set_resend(0);
        (Some(segment.seq), None)
    }

    /// Queues the segment `seq` to be sent again, unless it is queued or reported received.
    #[cfg(feature = "congestion")]
    pub(crate) fn requeue(&mut self, seq: SeqNumber) {
        let i = usize::from(seq.distance_from(self.oldest_unacked()));
        if i < self.count {
            let segment = self.segment(i);
            if !segment.sacked && !segment.resend {
                self.set_resend(i);
            }
        }
    }

    /// Queues the oldest segment not reported received to be sent again, as a tail-loss probe:
    /// the one that holds the window back if its repair was lost, and, once delivered, the
    /// newest delivered packet, which makes RACK find every older one missing. Returns whether
    /// there was one.
    #[cfg(feature = "congestion")]
    pub(crate) fn queue_probe(&mut self) -> bool {
        let Some(i) = self.find_flag(Flag::Sacked, false, 0) else { return false };
        if !self.segment(i).resend {
            self.set_resend(i);
        }
        true
    }

    /// Queues for retransmission the segments not reported received that `dupthresh` or more
    /// later segments overtook (fast retransmit); a segment already sent again waits `recent`
    /// µs (an RTT) before another try. Returns how many were queued.
    #[cfg(any(test, not(feature = "congestion")))]
    pub(crate) fn mark_lost(&mut self, dupthresh: usize, now: Instant, recent: u64) -> usize {
        let mut sacked_after = 0;
        let mut queued = 0;
        for i in (0..self.count).rev() {
            let at = self.slot(i);
            let segment = &mut self.inflight.as_mut()[at];
            if segment.sacked {
                sacked_after += 1;
            } else if sacked_after >= dupthresh
                && !segment.resend
                && (segment.transmissions == 1 || now.micros_since(segment.sent_at) >= recent)
            {
                queued += 1;
                #[cfg(feature = "congestion")]
                self.set_resend(i);
                #[cfg(not(feature = "congestion"))]
                {
                    segment.resend = true;
                }
            }
        }
        queued
    }

    /// Queues for retransmission (on a timeout) every segment not reported received, and the
    /// oldest one even if it was: a cumulative ack that still stops before it says the peer
    /// dropped it after reporting it (RFC 2018 allows that). Returns how many.
    pub(crate) fn mark_all_lost(&mut self) -> usize {
        let mut queued = 0;
        for i in 0..self.count {
            let at = self.slot(i);
            let segment = &mut self.inflight.as_mut()[at];
            if i == 0 || !segment.sacked {
                segment.sacked = false;
                segment.resend = true;
                queued += 1;
            }
        }
        #[cfg(feature = "congestion")]
        {
            (self.sacked, self.resends) = (self.count - queued, queued);
            // Nothing is left for RACK to judge until it is sent again.
            (self.resend_from, self.rack_from) = (0, self.count);
            self.rebuild_flags();
            self.retransmits.clear();
        }
        queued
    }

    /// The first segment queued for retransmission.
    #[cfg(not(feature = "congestion"))]
    pub(crate) fn next_resend(&mut self) -> Option<Segment> {
        (0..self.count).map(|i| &self.inflight.as_ref()[self.slot(i)]).find(|s| s.resend).copied()
    }

    /// The first segment queued for retransmission, looked for 32 slots at a time from the
    /// lowest that may be queued.
    #[cfg(feature = "congestion")]
    pub(crate) fn next_resend(&mut self) -> Option<Segment> {
        if self.resends == 0 {
            return None;
        }
        let found = self.find_flag(Flag::Resend, true, self.resend_from);
        self.resend_from = found.unwrap_or(self.count);
        found.map(|i| *self.segment(i))
    }

    /// Records that the segment with `seq` was sent again at `now`.
    pub(crate) fn resent(&mut self, seq: SeqNumber, now: Instant) {
        let i = usize::from(seq.distance_from(self.oldest_unacked()));
        if i < self.count {
            let at = self.slot(i);
            let segment = &mut self.inflight.as_mut()[at];
            #[cfg(feature = "congestion")]
            {
                self.resends -= usize::from(segment.resend);
            }
            segment.resend = false;
            segment.sent_at = now;
            segment.transmissions = segment.transmissions.saturating_add(1);
            #[cfg(feature = "congestion")]
            {
                let entry = Retransmit { seq, transmissions: segment.transmissions };
                flags::set(self.flags.as_mut(), at, Flag::Resend, false);
                let (oldest, count, first, inflight) =
                    (self.oldest_unacked(), self.count, self.first, &self.inflight);
                let len = if B::GROWS { inflight.as_ref().len() } else { W };
                self.retransmits.push(entry, W, |e| {
                    let i = usize::from(e.seq.distance_from(oldest));
                    i < count && inflight.as_ref().get((first + i) % len).is_some_and(|s| e.is_live(s))
                });
            }
        }
    }

    /// Whether `ack` acknowledges only what was sent: from the oldest unacknowledged
    /// sequence number up to the next one.
    pub(crate) fn is_valid_ack(&self, ack: SeqNumber) -> bool {
        usize::from(ack.distance_from(self.oldest_unacked())) <= self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Buf = SendBuffer<[u8; 32], 4>;

    fn cut(b: &mut Buf, max: u16) -> (Segment, [u8; 32]) {
        let f = b.peek_fragment(max).unwrap();
        let s = b.commit(f, 0, Instant::ZERO);
        let mut out = [0u8; 32];
        b.read_at(s.start, &mut out[..usize::from(s.len)]);
        (s, out)
    }

    #[test]
    fn messages_are_cut_into_fragments_with_more_flags() {
        let mut b = Buf::new([0; 32], 0);
        assert!(b.push(b"abcdefghij"));
        assert!(b.push(b""));
        let (s, out) = cut(&mut b, 4);
        assert_eq!((s.seq, s.len, s.more, &out[..4]), (SeqNumber(0), 4, true, &b"abcd"[..]));
        let (s, _) = cut(&mut b, 4);
        assert_eq!((s.len, s.more), (4, true));
        let (s, out) = cut(&mut b, 4);
        assert_eq!((s.len, s.more, &out[..2]), (2, false, &b"ij"[..]));
        let (s, _) = cut(&mut b, 4);
        assert_eq!((s.seq, s.len, s.more), (SeqNumber(3), 0, false));
        assert!(b.peek_fragment(4).is_none());
        assert!(!b.is_drained());
    }

    /// The pipe and the queue of repairs, counted as the flags change, match the flags.
    #[cfg(feature = "congestion")]
    #[test]
    fn the_pipe_and_the_repairs_follow_every_flag_change() {
        let mut b = Buf::new([0; 32], 0);
        assert!(b.push(&[1; 20]));
        for _ in 0..4 {
            cut(&mut b, 5);
        }
        assert_eq!((b.pipe(), b.next_resend().map(|s| s.seq)), (4, None));
        // 0 missing, 1 and 3 reported received; then 0 and 2 lost (RACK).
        b.mark_sacked_with(SeqNumber(0), &[0b101], |_| {});
        assert_eq!(b.pipe(), 2);
        let sent_after = Instant::from_micros(1);
        b.rack_detect(Instant::from_millis(10), (sent_after, SeqNumber(3), 0), |_| {});
        assert_eq!(b.pipe(), 0);
        assert_eq!(b.next_resend().unwrap().seq, SeqNumber(0));
        b.resent(SeqNumber(0), Instant::from_millis(10));
        assert_eq!((b.pipe(), b.next_resend().unwrap().seq), (1, SeqNumber(2)));
        // 0 and 1 acknowledged: 2 is still queued, 3 still reported.
        b.acknowledge(SeqNumber(2), |_| {});
        assert_eq!((b.pipe(), b.next_resend().unwrap().seq), (0, SeqNumber(2)));
        b.resent(SeqNumber(2), Instant::from_millis(11));
        assert_eq!((b.pipe(), b.next_resend().map(|s| s.seq)), (1, None));
        // A timeout: everything not reported, again.
        assert_eq!(b.mark_all_lost(), 1);
        assert_eq!((b.pipe(), b.next_resend().map(|s| s.seq)), (0, Some(SeqNumber(2))));
        b.acknowledge(SeqNumber(4), |_| {});
        assert_eq!((b.pipe(), b.next_resend().map(|s| s.seq)), (0, None));
        assert!(b.queue_probe() || b.inflight() == 0);
    }

    #[test]
    fn acknowledging_frees_space_and_wraps() {
        let mut b = Buf::new([0; 32], 0);
        assert!(b.push(&[1; 20]));
        assert!(!b.push(&[2; 9]), "20+4 used, 9+4 more does not fit in 32");
        let (s, _) = cut(&mut b, 64);
        assert_eq!(b.free(), 8);
        assert!(b.is_valid_ack(SeqNumber(1)));
        assert!(!b.is_valid_ack(SeqNumber(2)));
        let freed = b.acknowledge(SeqNumber(1), |_| {}).unwrap();
        assert_eq!(freed.seq, s.seq);
        assert_eq!(b.free(), 32);
        // This message wraps around the end of the ring.
        assert!(b.push(&[3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]));
        let (s, out) = cut(&mut b, 64);
        assert_eq!(&out[..usize::from(s.len)], &[3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        b.acknowledge(SeqNumber(2), |_| {});
        assert!(b.is_drained());
    }

    #[test]
    fn fixed_storage_ignores_the_limit() {
        let b = Buf::new([0; 32], 1000);
        assert_eq!((b.capacity(), b.storage_len(), b.max_message()), (32, 32, 28));
    }

    /// Sends everything queued in fragments of `max` and acknowledges it; the bytes sent.
    fn send_all<S: Buffer>(b: &mut SendBuffer<S, 4>, max: u16) -> std::vec::Vec<u8> {
        let mut sent = std::vec::Vec::new();
        while let Some(f) = b.peek_fragment(max) {
            let s = b.commit(f, 0, Instant::ZERO);
            let mut out = std::vec![0u8; usize::from(s.len)];
            b.read_at(s.start, &mut out);
            sent.extend(out);
            b.acknowledge(b.next_seq(), |_| {});
        }
        sent
    }

    #[test]
    fn growable_storage_grows_as_messages_need_and_is_given_back_once_drained() {
        let mut b = SendBuffer::<std::vec::Vec<u8>, 4>::new(std::vec::Vec::new(), 1000);
        assert_eq!((b.capacity(), b.storage_len(), b.free()), (1000, 0, 1000));
        assert!(b.push(b"abc"));
        assert_eq!(b.storage_len(), 7, "grown to what the message needs");
        assert!(b.push(&[9; 100]));
        assert!((107..=1000).contains(&b.storage_len()));
        assert!(!b.push(&[1; 1000]), "beyond the limit");
        let mut expected = b"abc".to_vec();
        expected.extend([9; 100]);
        assert_eq!(send_all(&mut b, 16), expected);
        assert!(b.is_drained());
        b.shrink_if_drained();
        assert_eq!(b.storage_len(), 0);
        assert_eq!(b.free(), 1000);
    }

    #[test]
    fn growth_makes_a_wrapped_ring_linear_first() {
        let mut b = SendBuffer::<std::vec::Vec<u8>, 4>::new(std::vec![0; 32], 256);
        // Fill and drain part of the ring so that the next message wraps round its end.
        assert!(b.push(&[1; 20]));
        send_all(&mut b, 64);
        assert!(b.push(&[2; 12]), "fits without growing, across the end");
        assert_eq!(b.storage_len(), 32);
        // One fragment of it is in flight when the storage grows under it.
        let f = b.peek_fragment(5).unwrap();
        let s = b.commit(f, 0, Instant::ZERO);
        assert!(b.push(&[3; 40]));
        assert!(b.storage_len() >= 16 + 44);
        let mut first = [0u8; 5];
        b.read_at(s.start, &mut first);
        assert_eq!(first, [2; 5], "a fragment in flight reads the same after the growth");
        b.acknowledge(b.next_seq(), |_| {});
        let mut expected = std::vec![2; 7];
        expected.extend([3; 40]);
        assert_eq!(send_all(&mut b, 8), expected);
        b.shrink_if_drained();
        assert_eq!(b.storage_len(), 32, "back to the storage it was given");
    }

    #[test]
    fn growable_segment_records_grow_across_the_wrap_and_are_given_back_once_drained() {
        let mut b = SendBuffer::<std::vec::Vec<u8>, 16>::new(std::vec::Vec::new(), 1000);
        assert_eq!(b.inflight.len(), 0, "no record before a packet is in flight");
        for i in 0..6u8 {
            assert!(b.push(&[i]));
        }
        let cut = |b: &mut SendBuffer<std::vec::Vec<u8>, 16>| {
            let f = b.peek_fragment(8).unwrap();
            b.commit(f, 0, Instant::ZERO)
        };
        // Three in flight, two acknowledged: the fourth record wraps round a ring of four.
        for _ in 0..3 {
            cut(&mut b);
        }
        b.acknowledge(SeqNumber(2), |_| {});
        for _ in 0..3 {
            cut(&mut b);
        }
        assert_eq!((b.inflight.len(), b.first, b.inflight()), (4, 2, 4));
        // A fifth doubles the ring, made linear: the oldest first, in order.
        assert!(b.push(&[6]));
        cut(&mut b);
        assert_eq!((b.inflight.len(), b.first), (8, 0));
        for i in 0..5 {
            let segment = b.inflight[b.slot(i)];
            let mut byte = [0u8];
            b.read_at(segment.start, &mut byte);
            assert_eq!((segment.seq.0, byte[0]), (2 + i as u16, 2 + i as u8));
        }
        let mut acked = std::vec::Vec::new();
        b.acknowledge(b.next_seq(), |s| acked.push(s.seq.0));
        assert_eq!(acked, [2, 3, 4, 5, 6]);
        assert!(b.is_drained());
        b.shrink_if_drained();
        assert_eq!((b.inflight.len(), b.inflight.capacity()), (0, 0), "given back");
        assert!(b.is_valid_ack(SeqNumber(7)) && !b.is_valid_ack(SeqNumber(8)));
    }

    #[test]
    fn segment_records_are_given_back_even_if_the_storage_never_grew() {
        let mut b = SendBuffer::<std::vec::Vec<u8>, 8>::new(std::vec![0; 64], 64);
        assert!(b.push(b"abc"));
        let f = b.peek_fragment(8).unwrap();
        b.commit(f, 0, Instant::ZERO);
        assert_eq!(b.inflight.len(), 4);
        b.acknowledge(b.next_seq(), |_| {});
        b.shrink_if_drained();
        assert_eq!((b.inflight.capacity(), b.storage_len()), (0, 64));
    }

    #[test]
    fn stale_and_future_acks_are_invalid() {
        let mut b = Buf::new([0; 32], 0);
        b.push(b"x");
        b.push(b"y");
        cut(&mut b, 8);
        cut(&mut b, 8);
        b.acknowledge(SeqNumber(1), |_| {});
        assert!(b.is_valid_ack(SeqNumber(1)));
        assert!(b.is_valid_ack(SeqNumber(2)));
        assert!(!b.is_valid_ack(SeqNumber(0)), "stale");
        assert!(!b.is_valid_ack(SeqNumber(3)), "acknowledges what was never sent");
    }

    #[test]
    fn offsets_sequence_numbers_and_the_inflight_ring_wrap() {
        let mut b = Buf::new([0; 32], 0);
        // Start just before the stream offset and the sequence number wrap round.
        let start = usize::MAX - 6;
        (b.head, b.tail, b.cursor, b.next_seq) = (start, start, start, SeqNumber(65534));
        for round in 0u8..6 {
            assert!(b.push(&[round; 3]));
            assert!(b.push(&[round + 100; 2]));
            let (s0, out) = cut(&mut b, 8);
            assert_eq!(&out[..3], &[round; 3]);
            let (s1, out) = cut(&mut b, 8);
            assert_eq!(&out[..2], &[round + 100; 2]);
            assert_eq!((b.inflight(), b.oldest_unacked()), (2, s0.seq));
            // The second is reported received: the first is lost (one is enough with two).
            assert_eq!(b.mark_sacked(s0.seq, 1), Some(Instant::ZERO));
            assert_eq!(b.mark_lost(1, Instant::ZERO, 0), 1);
            let resend = b.next_resend().unwrap();
            assert_eq!((resend.seq, resend.start), (s0.seq, s0.start));
            b.resent(resend.seq, Instant::ZERO);
            assert!(b.next_resend().is_none());
            assert!(b.is_valid_ack(s1.seq + 1) && !b.is_valid_ack(s1.seq + 2));
            let last = b.acknowledge(s1.seq + 1, |_| {}).unwrap();
            assert_eq!(last.seq, s1.seq);
            assert!(b.is_drained());
            assert_eq!(b.free(), 32);
        }
        assert_eq!(b.next_seq(), SeqNumber(10));
        assert!(b.head < start, "the offsets went round");
    }
}
