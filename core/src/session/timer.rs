//! The session's timers, kept in a fixed table (no heap, one slot per kind).

use crate::Instant;

/// The kinds of timer a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum Timer {
    /// The handshake must complete before it fires.
    Handshake = 0,
    /// Send a keepalive PING when it fires.
    KeepAlive = 1,
    /// Nothing heard for too long: the session fails.
    Idle = 2,
    /// The peer did not answer CLOSE in time.
    Close = 3,
    /// Retransmission timeout: send the oldest unacknowledged packet (or HELLO, CLOSE) again.
    Retransmit = 4,
    /// A delayed acknowledgement is due.
    AckDelay = 5,
    /// The pacer lets the next DATA packet go.
    #[cfg(feature = "congestion")]
    Pace = 6,
    /// A packet overtaken by a delivered one has waited out the reordering window (RACK).
    #[cfg(feature = "congestion")]
    Loss = 7,
}

/// How many kinds of timer there are.
const COUNT: usize = if cfg!(feature = "congestion") { 8 } else { 6 };

impl Timer {
    /// Every timer, in the order `handle_timeout` serves them.
    #[cfg(not(feature = "congestion"))]
    pub(crate) const VALUES: [Self; COUNT] =
        [Self::Handshake, Self::Idle, Self::Close, Self::Retransmit, Self::AckDelay, Self::KeepAlive];
    /// Every timer, in the order `handle_timeout` serves them.
    #[cfg(feature = "congestion")]
    pub(crate) const VALUES: [Self; COUNT] = [
        Self::Handshake,
        Self::Idle,
        Self::Close,
        Self::Loss,
        Self::Retransmit,
        Self::AckDelay,
        Self::KeepAlive,
        Self::Pace,
    ];
}

/// When each timer fires, if it is running.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    /// Sets `timer` to fire `micros` µs after `now`.
    #[inline(never)]
    pub(crate) fn set_after(&mut self, timer: Timer, now: Instant, micros: u64) {
        self.set(timer, now.add_micros(micros));
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.data = [None; COUNT];
    }

    pub(crate) fn is_running(&self, timer: Timer) -> bool {
        self.data[timer as usize].is_some()
    }

    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.data[timer as usize].is_some_and(|at| at <= now)
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_timeout_is_the_earliest_running_timer() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::Idle, Instant::from_millis(30));
        t.set(Timer::KeepAlive, Instant::from_millis(5));
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(5)));
        assert!(t.is_expired(Timer::KeepAlive, Instant::from_millis(5)));
        assert!(!t.is_expired(Timer::Idle, Instant::from_millis(29)));
        t.stop(Timer::KeepAlive);
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(30)));
        t.stop_all();
        assert_eq!(t.next_timeout(), None);
    }
}
