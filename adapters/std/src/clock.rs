//! Time for the core from [`std::time::Instant`].

use std::time::{Duration, Instant as StdInstant};

use framelink_core::Instant;
use framelink_core::driver::Clock;

/// A monotonic clock that maps [`std::time::Instant`] onto the core's [`Instant`]: microseconds
/// since the clock was made.
///
/// ```
/// use framelink_std::StdClock;
///
/// let clock = StdClock::new();
/// let now = clock.now();
/// assert!(clock.to_std(now) >= clock.start());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    start: StdInstant,
}

impl StdClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self { start: StdInstant::now() }
    }

    /// The epoch, as a [`std::time::Instant`].
    pub fn start(&self) -> StdInstant {
        self.start
    }

    /// The current time, in microseconds since the epoch.
    pub fn now(&self) -> Instant {
        self.from_std(StdInstant::now())
    }

    /// `at` on this clock (instants before the epoch map to the epoch).
    pub fn from_std(&self, at: StdInstant) -> Instant {
        let micros = at.saturating_duration_since(self.start).as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The [`std::time::Instant`] of `at` (saturating far in the future).
    pub fn to_std(&self, at: Instant) -> StdInstant {
        let after = Duration::from_micros(at.as_micros());
        self.start.checked_add(after).unwrap_or_else(|| self.start + Duration::from_secs(1 << 40))
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now(&mut self) -> Instant {
        Self::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_saturates() {
        let clock = StdClock::new();
        let later = clock.start() + Duration::from_millis(1500);
        assert_eq!(clock.from_std(later), Instant::from_millis(1500));
        assert_eq!(clock.to_std(Instant::from_millis(1500)), later);
        assert_eq!(clock.from_std(clock.start() - Duration::from_secs(1)), Instant::ZERO);
        assert!(clock.to_std(Instant::from_micros(u64::MAX)) > later);
    }
}
