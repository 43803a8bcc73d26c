//! Round-trip time estimation, per RFC 6298.
//!
//! The estimator keeps SRTT and RTTVAR from RFC 6298 section 2 (alpha = 1/8, beta = 1/4). The
//! session feeds it PONG round trips and, by Karn's rule (section 3), acknowledgements of DATA
//! packets that were sent only once.

use core::time::Duration;

use crate::Instant;
use crate::time::duration_from_micros;

/// Round-trip time figures of a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct RttStats {
    /// The most recent sample.
    pub latest: Option<Duration>,
    /// The smallest sample seen.
    pub min: Option<Duration>,
    /// SRTT, the smoothed round-trip time.
    pub smoothed: Option<Duration>,
    /// RTTVAR, the round-trip time variation.
    pub variance: Duration,
    /// Samples taken.
    pub samples: u64,
}

impl RttStats {
    /// The retransmission timeout before backoff: RTO = SRTT + max(G, 4 * RTTVAR) (RFC 6298
    /// 2.3, G = 1 ms), kept within `min..=max`; `initial` before the first sample (2.1). In
    /// whole microseconds, at most `u32::MAX` (71 minutes), as the session computes it.
    pub fn rto(&self, initial: Duration, min: Duration, max: Duration) -> Duration {
        let estimate = self.smoothed.map(|srtt| (micros(srtt), micros(self.variance)));
        let rto = rto_micros(estimate, micros(initial), micros(min), micros(max));
        Duration::from_micros(rto.into())
    }
}

/// Whole microseconds, at most `u32::MAX`: the RTO is computed in 32 bits, which keeps it small
/// on small cores.
fn micros(d: Duration) -> u32 {
    crate::time::duration_micros_u32(d)
}

/// RFC 6298 2.3 in microseconds: `estimate` is SRTT and RTTVAR, `None` before the first sample.
fn rto_micros(estimate: Option<(u32, u32)>, initial: u32, min: u32, max: u32) -> u32 {
    let rto = match estimate {
        None => initial,
        Some((srtt, rttvar)) => srtt.saturating_add(rttvar.saturating_mul(4).max(1000)),
    };
    rto.clamp(min, max.max(min))
}

/// The estimator the session runs, in whole microseconds (a sample is at most `u32::MAX`
/// µs, 71 minutes): integer arithmetic only, no `Duration` and no 64-bit division, which
/// costs flash on small cores. [`RttStats`] is its public snapshot.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rtt {
    latest: u32,
    min: u32,
    srtt: u32,
    rttvar: u32,
    samples: u64,
}

impl Rtt {
    /// Adds the sample of a packet sent at `sent` and acknowledged at `now`, and returns it in µs
    /// (at most `u32::MAX`). One place for the subtraction its four callers need.
    pub(crate) fn sample(&mut self, now: Instant, sent: Instant) -> u32 {
        let r = u32::try_from(now.micros_since(sent)).unwrap_or(u32::MAX);
        self.add_sample(r);
        r
    }

    /// Adds a sample of `r` µs (RFC 6298 section 2.2 for the first, 2.3 after).
    fn add_sample(&mut self, r: u32) {
        self.latest = r;
        if self.samples == 0 {
            // SRTT <- R, RTTVAR <- R/2
            (self.min, self.srtt, self.rttvar) = (r, r, r / 2);
        } else {
            self.min = self.min.min(r);
            let (srtt, rttvar) = (self.srtt, self.rttvar);
            // RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|, beta = 1/4
            self.rttvar = rttvar - rttvar / 4 + srtt.abs_diff(r) / 4;
            // SRTT <- (1 - alpha) * SRTT + alpha * R', alpha = 1/8
            self.srtt = srtt - srtt / 8 + r / 8;
        }
        self.samples += 1;
    }

    /// SRTT in µs, once measured.
    pub(crate) fn smoothed(&self) -> Option<u64> {
        (self.samples > 0).then_some(u64::from(self.srtt))
    }

    /// The latest and the smallest sample in µs (0 before the first).
    #[cfg(feature = "congestion")]
    pub(crate) fn latest_and_min(&self) -> (u32, u32) {
        (self.latest, self.min)
    }

    /// [`RttStats::rto`] in microseconds.
    pub(crate) fn rto(&self, initial: u32, min: u32, max: u32) -> u32 {
        let estimate = (self.samples > 0).then_some((self.srtt, self.rttvar));
        rto_micros(estimate, initial, min, max)
    }

    /// The public figures.
    pub(crate) fn stats(&self) -> RttStats {
        let measured = |us: u32| (self.samples > 0).then(|| duration_from_micros(us));
        RttStats {
            latest: measured(self.latest),
            min: measured(self.min),
            smoothed: measured(self.srtt),
            variance: duration_from_micros(self.rttvar),
            samples: self.samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rto_follows_rfc_6298_within_bounds() {
        let (min, max) = (Duration::from_millis(200), Duration::from_secs(10));
        let rto = |r: &Rtt| {
            let (initial, min, max) = (micros(Duration::from_secs(1)), micros(min), micros(max));
            let us = r.rto(initial, min, max);
            assert_eq!(
                r.stats().rto(
                    Duration::from_secs(1),
                    Duration::from_micros(min.into()),
                    Duration::from_micros(max.into())
                ),
                Duration::from_micros(us.into())
            );
            Duration::from_micros(us.into())
        };
        let mut r = Rtt::default();
        assert_eq!(rto(&r), Duration::from_secs(1));
        r.add_sample(100_000); // SRTT 100, RTTVAR 50: 100 + 200
        assert_eq!(rto(&r), Duration::from_millis(300));
        let mut r = Rtt::default();
        r.add_sample(2_000); // 2 + 4: clamped up to the minimum
        assert_eq!(rto(&r), min);
        r.add_sample(60_000_000);
        assert_eq!(rto(&r), max);
    }

    #[test]
    fn first_sample_then_smoothing_per_rfc_6298() {
        let mut rtt = Rtt::default();
        assert_eq!(rtt.stats(), RttStats::default());
        rtt.add_sample(100_000);
        let r = rtt.stats();
        assert_eq!(r.smoothed, Some(Duration::from_millis(100)));
        assert_eq!(r.variance, Duration::from_millis(50));
        rtt.add_sample(200_000);
        let r = rtt.stats();
        // RTTVAR = 3/4 * 50 + 1/4 * 100 = 62.5 ms; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 ms
        assert_eq!(r.variance, Duration::from_micros(62_500));
        assert_eq!(r.smoothed, Some(Duration::from_micros(112_500)));
        assert_eq!(r.min, Some(Duration::from_millis(100)));
        assert_eq!(r.latest, Some(Duration::from_millis(200)));
        assert_eq!(r.samples, 2);
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn samples_saturate_at_u32_max_micros() {
        let mut rtt = Rtt::default();
        rtt.add_sample(u32::MAX);
        rtt.add_sample(u32::MAX);
        let r = rtt.stats();
        assert_eq!(r.latest, Some(Duration::from_micros(u32::MAX.into())));
        assert_eq!(r.smoothed, Some(Duration::from_micros(u32::MAX.into())));
        assert_eq!(r.variance, Duration::from_micros((u32::MAX / 2 - u32::MAX / 8) as u64));
    }
}
