//! Round-trip samples summarised as percentiles, in microseconds.

use std::time::Duration;

use serde::Serialize;

/// Percentiles of a set of round trips, in microseconds.
#[derive(Debug, Serialize)]
pub(crate) struct RttPercentiles {
    /// Samples.
    pub(crate) samples: usize,
    /// The median (nearest rank).
    pub(crate) p50_us: f64,
    /// The 99th percentile (nearest rank).
    pub(crate) p99_us: f64,
    /// The largest.
    pub(crate) max_us: f64,
    /// `[percent, microseconds]` at 1, 2, ..., 99, 99.9 and 100 percent: the distribution, for
    /// plots.
    pub(crate) distribution: Vec<(f64, f64)>,
}

impl RttPercentiles {
    /// The percentiles of `samples` (unsorted); `None` without one.
    pub(crate) fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len() as f64;
        let at = |p: f64| {
            let rank = ((p / 100.0 * n).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_nanos() as f64 / 1000.0
        };
        let mut points: Vec<f64> = (1..=99).map(f64::from).collect();
        points.extend([99.9, 100.0]);
        Some(Self {
            samples: samples.len(),
            p50_us: at(50.0),
            p99_us: at(99.0),
            max_us: at(100.0),
            distribution: points.into_iter().map(|p| (p, at(p))).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut samples: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let p = RttPercentiles::of(&mut samples).unwrap();
        assert_eq!((p.samples, p.p50_us, p.p99_us, p.max_us), (200, 100.0, 198.0, 200.0));
        assert_eq!(p.distribution.first(), Some(&(1.0, 2.0)));
        assert!(RttPercentiles::of(&mut []).is_none());
    }
}
