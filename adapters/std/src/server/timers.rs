//! The deadlines of an event loop's connections: a min-heap with lazy deletion, so that no tick
//! looks at every connection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A deadline of the connection in slot `slot` while it held generation `generation`.
type Entry = (Instant, usize, u32);

/// Deadlines by connection slot. A connection keeps its earliest armed deadline beside it
/// ([`Timers::arm`] updates it); entries that no longer match it are dropped when they come
/// up, so moving a deadline later costs nothing and moving it earlier costs one push.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    /// Makes sure the connection in `slot` is woken by `deadline`: pushes an entry unless the
    /// one it has (`armed`) comes no later, and records the earliest in `armed`.
    pub(super) fn arm(
        &mut self,
        armed: &mut Option<Instant>,
        deadline: Instant,
        slot: usize,
        generation: u32,
    ) {
        if armed.is_some_and(|at| at <= deadline) {
            return;
        }
        *armed = Some(deadline);
        self.heap.push(Reverse((deadline, slot, generation)));
    }

    /// The earliest deadline, stale or not (a stale one only wakes the loop early).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, ..))| *at)
    }

    /// Takes the earliest entry if it is due at `now`: `(deadline, slot, generation)`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
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
        timers.arm(&mut armed, t0 + Duration::from_secs(5), 3, 1);
        timers.arm(&mut armed, t0 + Duration::from_secs(9), 3, 1);
        assert_eq!((timers.len(), armed), (1, Some(t0 + Duration::from_secs(5))));
        timers.arm(&mut armed, t0 + Duration::from_secs(2), 3, 1);
        assert_eq!((timers.len(), armed), (2, Some(t0 + Duration::from_secs(2))));
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn entries_come_out_earliest_first_and_only_when_due() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        for (slot, secs) in [(0, 7), (1, 3), (2, 5)] {
            timers.arm(&mut None, t0 + Duration::from_secs(secs), slot, 0);
        }
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(1)), None);
        let due: Vec<usize> = std::iter::from_fn(|| timers.pop_due(t0 + Duration::from_secs(6)))
            .map(|(_, slot, _)| slot)
            .collect();
        assert_eq!(due, [1, 2]);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(7)));
    }
}
