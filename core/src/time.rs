//! Time as the caller supplies it.
//!
//! The core never reads a clock. Drivers pass an [`Instant`] (microseconds since an epoch of their
//! choosing: boot, process start) into every call that needs the time, and durations are
//! [`core::time::Duration`].

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, in microseconds since a caller-chosen epoch.
///
/// Only differences between instants from the same clock are meaningful. The clock must not go
/// backwards; the session treats an earlier instant as "no time has passed".
///
/// ```
/// use core::time::Duration;
/// use framelink_core::Instant;
///
/// let t0 = Instant::from_millis(5);
/// let t1 = t0 + Duration::from_micros(250);
/// assert_eq!(t1 - t0, Duration::from_micros(250));
/// assert_eq!(t0 - t1, Duration::ZERO); // saturates, never panics
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The epoch itself.
    pub const ZERO: Self = Self { micros: 0 };

    /// An instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self { micros: millis.saturating_mul(1000) }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

impl Instant {
    /// Microseconds from `earlier` to `self`, or 0 if `earlier` is later: the session's clock
    /// arithmetic, kept in integers (no `Duration` and no 64-bit division on small cores).
    pub(crate) const fn micros_since(self, earlier: Self) -> u64 {
        self.micros.saturating_sub(earlier.micros)
    }

    /// `micros` microseconds later, saturating at the end of time.
    pub(crate) const fn add_micros(self, micros: u64) -> Self {
        Self { micros: self.micros.saturating_add(micros) }
    }
}

/// `d` in whole microseconds, saturating (without the 128-bit arithmetic of `as_micros`, which
/// costs flash on small cores).
pub(crate) const fn duration_micros(d: Duration) -> u64 {
    d.as_secs().saturating_mul(1_000_000).saturating_add(d.subsec_micros() as u64)
}

/// `micros` as a `Duration`, with 32-bit division only (the 64-bit division in
/// `Duration::from_micros` is a library call of about 1 KiB on Cortex-M); at most
/// `u32::MAX` microseconds (71 minutes), which bounds every round-trip figure.
/// Whole microseconds, at most `u32::MAX` (71 minutes): for the retransmission timer's figures,
/// which 32-bit arithmetic keeps small on small cores.
pub(crate) const fn duration_micros_u32(d: Duration) -> u32 {
    let us = duration_micros(d);
    if us > u32::MAX as u64 { u32::MAX } else { us as u32 }
}

pub(crate) const fn duration_from_micros(micros: u32) -> Duration {
    Duration::new((micros / 1_000_000) as u64, micros % 1_000_000 * 1000)
}

impl Add<Duration> for Instant {
    type Output = Self;
    /// Saturates at the end of time instead of overflowing.
    fn add(self, rhs: Duration) -> Self {
        self.add_micros(duration_micros(rhs))
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    /// Saturates at the epoch.
    fn sub(self, rhs: Duration) -> Self {
        Self { micros: self.micros.saturating_sub(duration_micros(rhs)) }
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturates at zero, like [`Instant::saturating_duration_since`].
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_at_both_ends() {
        let end = Instant::from_micros(u64::MAX);
        assert_eq!(end + Duration::from_secs(1), end);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::from_millis(2) - Instant::from_millis(3), Duration::ZERO);
        assert_eq!(Instant::from_millis(3) - Instant::from_millis(2), Duration::from_millis(1));
        assert_eq!(Instant::ZERO + Duration::MAX, end);
    }
}
