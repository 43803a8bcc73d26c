//! Output: text for people, one JSON document for machines, one `framelink: ...` line per
//! failure, and the units the reports use.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::interrupt;

/// How a command reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Lines as things happen, then a summary, on stdout.
    Text,
    /// One JSON document on stdout at the end; nothing else on stdout.
    Json,
    /// Nothing on stdout: the caller prints the report (`framelink demo`).
    Quiet,
}

impl Mode {
    /// Whether lines go out as things happen.
    pub(crate) fn is_text(self) -> bool {
        self == Self::Text
    }
}

/// Why a command failed, as one line (printed as `framelink: ...` on stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure(pub(crate) String);

impl Failure {
    /// A failure at `addr`: `tcp://127.0.0.1:7878: connection refused: ...`.
    pub(crate) fn at(addr: &impl fmt::Display, error: impl fmt::Display) -> Self {
        Self(format!("{addr}: {error}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a command ended with: its report, printed whatever happened, and the error that cut
/// it short, if one did.
#[derive(Debug)]
pub(crate) struct Outcome<R> {
    /// The figures so far.
    pub(crate) report: R,
    /// Why the command stopped early.
    pub(crate) error: Option<Failure>,
}

impl<R> Outcome<R> {
    /// A report and how the run ended.
    pub(crate) fn new(report: R, error: Option<Failure>) -> Self {
        Self { report, error }
    }
}

/// A command's result: an [`Outcome`], or a failure before there was anything to report (a bad
/// address, a refused connection).
pub(crate) type Run<R> = Result<Outcome<R>, Failure>;

/// A command's summary.
pub(crate) trait Report: Serialize {
    /// Prints the summary for people on stdout (the lines printed during the run come first).
    fn print_text(&self);
}

/// The JSON document: the report's fields, then `error` and `interrupted` when they apply.
#[derive(Serialize)]
struct Document<'a, R> {
    #[serde(flatten)]
    report: Option<&'a R>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    interrupted: bool,
}

/// Prints what `run` ended with, as `mode` asks, and gives the exit status: 0 when the command
/// succeeded (a Ctrl-C included), 1 after `framelink: ...` on stderr.
pub(crate) fn finish<R: Report>(mode: Mode, run: Run<R>) -> ExitCode {
    let (report, error) = match &run {
        Ok(outcome) => (Some(&outcome.report), outcome.error.as_ref()),
        Err(failure) => (None, Some(failure)),
    };
    match mode {
        Mode::Json => {
            let document =
                Document { report, error: error.map(|e| e.0.as_str()), interrupted: interrupt::requested() };
            match serde_json::to_string_pretty(&document) {
                Ok(text) => say(format_args!("{text}")),
                Err(e) => eprintln!("framelink: cannot write JSON: {e}"),
            }
        }
        Mode::Text => {
            if let Some(report) = report {
                report.print_text();
            }
        }
        Mode::Quiet => {}
    }
    match error {
        Some(failure) => {
            eprintln!("framelink: {failure}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

/// Prints one line on stdout. When stdout is gone (`framelink ping ... | head`), it asks the
/// command to stop, as Ctrl-C does, instead of panicking.
pub(crate) fn say(line: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        interrupt::request();
    }
}

/// Bytes for people, in powers of 1024 with three significant digits: `2.55 GBytes`, as iperf3
/// writes them.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["Bytes", "KBytes", "MBytes", "GBytes", "TBytes"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} Bytes") } else { format!("{} {}", three_digits(value), UNITS[unit]) }
}

/// A bit rate for people, in powers of 1000: `21.9 Gbits/sec`, as iperf3 writes it.
pub(crate) fn bitrate(bits_per_second: f64) -> String {
    const UNITS: [&str; 4] = ["bits/sec", "Kbits/sec", "Mbits/sec", "Gbits/sec"];
    let mut value = bits_per_second;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{} {}", three_digits(value), UNITS[unit])
}

/// `value` with three significant digits (at most): 2.55, 21.9, 938.
fn three_digits(value: f64) -> String {
    if value < 9.995 {
        format!("{value:.2}")
    } else if value < 99.95 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// Milliseconds with microsecond precision: `0.412`.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1e3)
}

/// Microseconds as a JSON number, to the nanosecond.
pub(crate) fn us(duration: Duration) -> f64 {
    duration.as_nanos() as f64 / 1e3
}

/// `value` rounded to `decimals` decimals, so that JSON shows `0.3`, never
/// `0.30000000000000004`.
pub(crate) fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A number with at most three decimals and no trailing zeros, as ping writes a loss: `0`,
/// `20`, `0.5`, `33.333`.
pub(crate) fn plain(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `n thing` or `n things` (`n replies` for `reply`).
pub(crate) fn count(n: u64, thing: &str) -> String {
    match (n, thing.strip_suffix('y')) {
        (1, _) => format!("1 {thing}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {thing}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_like_iperf3() {
        assert_eq!(bytes(512), "512 Bytes");
        assert_eq!(bytes(2 * 1024 * 1024 * 1024 + 600 * 1024 * 1024), "2.59 GBytes");
        assert_eq!(bytes(112 * 1024 * 1024), "112 MBytes");
        assert_eq!(bitrate(21.94e9), "21.9 Gbits/sec");
        assert_eq!(bitrate(938e6), "938 Mbits/sec");
        assert_eq!(bitrate(0.0), "0.00 bits/sec");
        assert_eq!(ms(Duration::from_micros(412)), "0.412");
        assert_eq!(us(Duration::from_nanos(12_345)), 12.345);
        assert_eq!(count(1, "message"), "1 message");
        assert_eq!(count(2, "message"), "2 messages");
        assert_eq!((count(1, "reply"), count(0, "reply")), ("1 reply".to_owned(), "0 replies".to_owned()));
    }

    #[test]
    fn numbers_lose_their_float_noise() {
        assert_eq!(round(0.1 + 0.2, 3), 0.3);
        assert_eq!(serde_json::to_string(&round(0.1 + 0.2, 3)).unwrap(), "0.3");
        assert_eq!(round(1.23456, 2), 1.23);
        assert_eq!(plain(0.0), "0");
        assert_eq!(plain(20.0), "20");
        assert_eq!(plain(0.5), "0.5");
        assert_eq!(plain(100.0 / 3.0), "33.333");
    }
}
