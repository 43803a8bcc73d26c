//! Sizes and rates as the command line takes them: a number with an optional unit suffix.
//!
//! Byte counts and sizes (`--size`, `--bytes`, `--max-message`) take K, M, G and T as powers
//! of 1024, as iperf3 reads `-n` and `-l`: `64K` is 65,536 bytes, `1.5M` is 1,572,864. `KiB`,
//! `KB` and `k` say the same. Bit rates (`--bitrate`) take k, M, G and T as powers of 1000, as
//! iperf3 reads `-b`: `10M` is 10,000,000 bits per second.

/// A number with an optional K, M, G or T suffix (any case, then an optional `iB` or `B`),
/// times `base` per step.
fn scaled(text: &str, base: f64) -> Result<f64, String> {
    let trimmed = text.trim();
    let number_end = trimmed.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let steps = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        _ => return Err(format!("unknown unit `{unit}` in `{trimmed}` (use K, M, G or T)")),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("`{trimmed}` is not a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("`{trimmed}` is not a positive number"));
    }
    Ok(value * base.powi(steps))
}

/// A byte count of at least 1: `1000`, `64K`, `1.5M`, `2G` (powers of 1024). Fractions of a
/// byte are cut off.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let value = scaled(text, 1024.0)?;
    if !(1.0..=u64::MAX as f64 / 2.0).contains(&value) {
        return Err(format!("`{}` is not a byte count from 1 up", text.trim()));
    }
    Ok(value as u64)
}

/// A parser of byte counts from `min` to `max`, for clap's `value_parser`.
pub(crate) fn bytes_in(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> + Clone {
    move |text| {
        let value = parse_bytes(text)?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(format!("`{}` is {value} bytes, not from {min} to {max}", text.trim()))
        }
    }
}

/// A bit rate of at least 1 bit per second: `10M`, `500k`, `1.5G`, `9600` (powers of 1000).
pub(crate) fn parse_bitrate(text: &str) -> Result<u64, String> {
    let value = scaled(text, 1000.0)?;
    if !(1.0..=1e15).contains(&value) {
        return Err(format!("`{}` is not a bit rate from 1 bit/s up", text.trim()));
    }
    Ok(value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_powers_of_1024() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("64K"), Ok(65_536));
        assert_eq!(parse_bytes("64k"), Ok(65_536));
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("64 KB"), Ok(65_536));
        assert_eq!(parse_bytes("1.5m"), Ok(1_572_864));
        assert_eq!(parse_bytes("10M"), Ok(10 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("1T"), Ok(1 << 40));
        assert_eq!(parse_bytes("512B"), Ok(512));
        for bad in ["0", "", "x", "5Q", "-1K", "K", "1KK", "inf", "nan", "0.5"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_name_the_bounds() {
        let parse = bytes_in(6, 16 << 20);
        assert_eq!(parse("64K"), Ok(65_536));
        assert_eq!(parse("6"), Ok(6));
        assert_eq!(parse("5"), Err("`5` is 5 bytes, not from 6 to 16777216".to_owned()));
        assert!(parse("17M").is_err());
    }

    #[test]
    fn rates_are_powers_of_1000() {
        assert_eq!(parse_bitrate("10M"), Ok(10_000_000));
        assert_eq!(parse_bitrate("500k"), Ok(500_000));
        assert_eq!(parse_bitrate("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_bitrate("9600"), Ok(9600));
        assert!(parse_bitrate("-1M").is_err() && parse_bitrate("inf").is_err());
        assert!(parse_bitrate("0").is_err());
    }
}
