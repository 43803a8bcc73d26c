//! The deadlines of a server thread's clients (an event loop's connections, a UDP socket's
//! peers): a min-heap with lazy deletion, so that no tick looks at every client.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Deadlines by client key `K`, which names a client for as long as it lives and no other
/// after it (an event loop's `(slot, generation)`, a UDP socket's `(address, client id)`). A
/// client keeps its earliest armed deadline beside it ([`Timers::arm`] updates it); entries
/// that no longer match it are dropped when they come up, so moving a deadline later costs
/// nothing and moving it earlier costs one push.
#[derive(Debug)]
pub(super) struct Timers<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord> Default for Timers<K> {
    fn default() -> Self {
        Self { heap: BinaryHeap::new() }
    }
}

impl<K: Ord> Timers<K> {
    /// Makes sure the client `key` is woken by `deadline`: pushes an entry unless the one it
    /// has (`armed`) comes no later, and records the earliest in `armed`.
    pub(super) fn arm(&mut self, armed: &mut Option<Instant>, deadline: Instant, key: K) {
        if armed.is_some_and(|at| at <= deadline) {
            return;
        }
        *armed = Some(deadline);
        self.heap.push(Reverse((deadline, key)));
    }

    /// The earliest deadline, stale or not (a stale one only wakes the loop early).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, ..))| *at)
    }

    /// Takes the earliest entry if it is due at `now`: `(deadline, key)`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        match self.heap.peek() {
            Some(Reverse((at, ..))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_later_deadline_keeps_the_entry_and_an_earlier_one_pushes() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let mut armed = None;
        timers.arm(&mut armed, t0 + Duration::from_secs(5), (3, 1));
        timers.arm(&mut armed, t0 + Duration::from_secs(9), (3, 1));
        assert_eq!((timers.len(), armed), (1, Some(t0 + Duration::from_secs(5))));
        timers.arm(&mut armed, t0 + Duration::from_secs(2), (3, 1));
        assert_eq!((timers.len(), armed), (2, Some(t0 + Duration::from_secs(2))));
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn entries_come_out_earliest_first_and_only_when_due() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        for (slot, secs) in [(0, 7), (1, 3), (2, 5)] {
            timers.arm(&mut None, t0 + Duration::from_secs(secs), (slot, 0));
        }
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(1)), None);
        let due: Vec<usize> = std::iter::from_fn(|| timers.pop_due(t0 + Duration::from_secs(6)))
            .map(|(_, (slot, _))| slot)
            .collect();
        assert_eq!(due, [1, 2]);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(7)));
    }
}
