//! Durations as the command line takes them: seconds, fractions allowed (`0.2`, `1.5`), as
//! ping(8) and iperf3 read `-i`, `-W`, `-w` and `-t`.

use std::time::Duration;

/// A parser of a number of seconds from `min` to `max`, or 0 when `zero` allows it, for clap's
/// `value_parser`.
fn parser(min: f64, max: f64, zero: bool) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| {
        let trimmed = text.trim();
        match trimmed.parse::<f64>() {
            Ok(s) if s == 0.0 && zero => Ok(Duration::ZERO),
            Ok(s) if (min..=max).contains(&s) => Ok(Duration::from_secs_f64(s)),
            _ if zero => Err(format!("`{trimmed}` is not 0 or a number of seconds from {min} to {max}")),
            _ => Err(format!("`{trimmed}` is not a number of seconds from {min} to {max}")),
        }
    }
}

/// Seconds from `min` to `max`: `0.2`, `1`, `2.5`.
pub(crate) fn within(min: f64, max: f64) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    parser(min, max, false)
}

/// 0, or seconds from `min` to `max` (0: none, or at once).
pub(crate) fn zero_or_within(min: f64, max: f64) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    parser(min, max, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_of_seconds_parse() {
        let parse = within(0.001, 1e6);
        assert_eq!(parse("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse(" 2 "), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0", "0.0001", "-1", "x", "", "nan", "inf", "2e6", "200ms"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let parse = zero_or_within(0.01, 60.0);
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0.01"), Ok(Duration::from_millis(10)));
        assert_eq!(parse("0.001"), Err("`0.001` is not 0 or a number of seconds from 0.01 to 60".to_owned()));
    }
}
