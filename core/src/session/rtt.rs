//! Round-trip time estimation, per RFC 6298.
//!
//! The estimator keeps SRTT and RTTVAR from RFC 6298 section 2 (alpha = 1/8, beta = 1/4). The
//! session feeds it PONG round trips and, by Karn's rule (section 3), acknowledgements of DATA
//! packets that were sent only once.

use core::time::Duration;

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
    /// 2.3, G = 1 ms), kept within `min..=max`; `initial` before the first sample (2.1).
    pub fn rto(&self, initial: Duration, min: Duration, max: Duration) -> Duration {
        let rto = match self.smoothed {
            None => micros(initial),
            Some(srtt) => micros(srtt) + (micros(self.variance) * 4).max(1000),
        };
        Duration::from_micros(rto.clamp(micros(min), micros(max).max(micros(min))))
    }
}

/// Whole microseconds, without 128-bit arithmetic (it costs flash on small cores). The
/// estimator computes in microseconds and keeps `Duration`s only for its public fields.
pub(crate) fn micros(d: Duration) -> u64 {
    d.as_secs().saturating_mul(1_000_000).saturating_add(u64::from(d.subsec_micros()))
}

impl RttStats {
    /// Adds a sample (RFC 6298 section 2.2 for the first, 2.3 after).
    pub(crate) fn add_sample(&mut self, rtt: Duration) {
        self.latest = Some(rtt);
        self.min = Some(self.min.map_or(rtt, |m| m.min(rtt)));
        self.samples += 1;
        let r = micros(rtt);
        let (srtt, rttvar) = match self.smoothed {
            // SRTT <- R, RTTVAR <- R/2
            None => (r, r / 2),
            Some(srtt) => {
                let (srtt, rttvar) = (micros(srtt), micros(self.variance));
                // RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|, beta = 1/4
                let rttvar = rttvar - rttvar / 4 + srtt.abs_diff(r) / 4;
                // SRTT <- (1 - alpha) * SRTT + alpha * R', alpha = 1/8
                (srtt - srtt / 8 + r / 8, rttvar)
            }
        };
        self.smoothed = Some(Duration::from_micros(srtt));
        self.variance = Duration::from_micros(rttvar);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rto_follows_rfc_6298_within_bounds() {
        let (min, max) = (Duration::from_millis(200), Duration::from_secs(10));
        let mut r = RttStats::default();
        assert_eq!(r.rto(Duration::from_secs(1), min, max), Duration::from_secs(1));
        r.add_sample(Duration::from_millis(100)); // SRTT 100, RTTVAR 50: 100 + 200
        assert_eq!(r.rto(Duration::from_secs(1), min, max), Duration::from_millis(300));
        let mut r = RttStats::default();
        r.add_sample(Duration::from_millis(2)); // 2 + 4: clamped up to the minimum
        assert_eq!(r.rto(Duration::from_secs(1), min, max), min);
        r.add_sample(Duration::from_secs(60));
        assert_eq!(r.rto(Duration::from_secs(1), min, max), max);
    }

    #[test]
    fn first_sample_then_smoothing_per_rfc_6298() {
        let mut r = RttStats::default();
        r.add_sample(Duration::from_millis(100));
        assert_eq!(r.smoothed, Some(Duration::from_millis(100)));
        assert_eq!(r.variance, Duration::from_millis(50));
        r.add_sample(Duration::from_millis(200));
        // RTTVAR = 3/4 * 50 + 1/4 * 100 = 62.5 ms; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 ms
        assert_eq!(r.variance, Duration::from_micros(62_500));
        assert_eq!(r.smoothed, Some(Duration::from_micros(112_500)));
        assert_eq!(r.min, Some(Duration::from_millis(100)));
        assert_eq!(r.latest, Some(Duration::from_millis(200)));
        assert_eq!(r.samples, 2);
    }
}
