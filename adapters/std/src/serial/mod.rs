//! Serial ports: `serial:///dev/ttyACM0?baud=115200` (or `serial://COM3` on Windows), opened
//! through the `serialport` crate, carrying COBS frames with retransmission on.
//!
//! - [`SerialSettings`]: baud rate, data bits, parity, stop bits and flow control, from the
//!   address's query (`?baud=115200&data=8&parity=none&stop=1&flow=none`, each optional; the
//!   defaults are 115200 8N1 without flow control, what USB CDC-ACM boards and most UART
//!   bridges expect).
//! - [`SerialError`]: why a port could not be opened or was lost, one variant per cause.
//! - [`available_ports`]: the serial ports present, as [`PortInfo`].
//!
//! A serial line is a single peer: [`Link::connect`](crate::Link::connect) opens the port and
//! says HELLO (after a `0x00` delimiter, so that the far side's COBS decoder drops whatever
//! stale bytes it holds); a [`Server`](crate::Server) listening on a port serves whoever says
//! HELLO on it, one session after another, and takes a new HELLO at any time.

mod error;
mod port;

use std::fmt;

pub use error::SerialError;
pub(crate) use port::SerialPort;
pub use port::{PortInfo, PortKind, available_ports};

use crate::AddrError;

/// How a serial port is set up; parsed from the query of a `serial://` address.
///
/// ```
/// use framelink_std::{Addr, Parity, SerialSettings};
///
/// let addr: Addr = "serial:///dev/ttyUSB0?baud=9600&parity=even".parse()?;
/// let settings = addr.serial_settings();
/// assert_eq!(settings.baud, 9600);
/// assert_eq!(settings.parity, Parity::Even);
/// assert_eq!(SerialSettings::default().baud, 115_200);
/// # Ok::<(), framelink_std::AddrError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SerialSettings {
    /// Bits per second (`baud=`, default 115200). A pty ignores it; a USB CDC-ACM device
    /// usually does too; a UART bridge (FTDI, CP210x, CH340) and a real UART need it right.
    pub baud: u32,
    /// Data bits (`data=5..8`, default 8). framelink sends bytes: keep 8.
    pub data_bits: DataBits,
    /// Parity (`parity=none|odd|even`, default none).
    pub parity: Parity,
    /// Stop bits (`stop=1|2`, default 1).
    pub stop_bits: StopBits,
    /// Flow control (`flow=none|software|hardware`, default none). Software flow control
    /// (XON/XOFF) takes bytes 0x11 and 0x13 out of the stream, which COBS frames contain: use
    /// it only if the device insists, and expect CRC errors.
    pub flow: FlowControl,
}

impl SerialSettings {
    /// The default baud rate: 115200.
    pub const DEFAULT_BAUD: u32 = 115_200;

    /// 115200 baud, 8 data bits, no parity, 1 stop bit, no flow control.
    pub const fn new() -> Self {
        Self {
            baud: Self::DEFAULT_BAUD,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow: FlowControl::None,
        }
    }

    /// The same settings at another baud rate.
    pub const fn baud(mut self, baud: u32) -> Self {
        self.baud = baud;
        self
    }
}

impl Default for SerialSettings {
    fn default() -> Self {
        Self::new()
    }
}

/// Bits per character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "the names say it")]
pub enum DataBits {
    Five,
    Six,
    Seven,
    Eight,
}

/// The parity bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Stop bits after each character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "the names say it")]
pub enum StopBits {
    One,
    Two,
}

/// Flow control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowControl {
    /// None: the session's window bounds what is in flight.
    None,
    /// XON/XOFF in band (bytes 0x11 and 0x13).
    Software,
    /// RTS/CTS lines.
    Hardware,
}

/// The lowest and highest baud rates an address may ask for.
const BAUD_RANGE: std::ops::RangeInclusive<u32> = 50..=20_000_000;

/// Parses what follows `serial://`: a device (`/dev/ttyACM0`, `COM3`) and an optional query.
pub(crate) fn parse(rest: &str, text: &str) -> Result<(String, SerialSettings), AddrError> {
    let (device, query) = rest.split_once('?').unwrap_or((rest, ""));
    if device.is_empty() {
        return Err(AddrError::MissingDevice(text.to_owned()));
    }
    let mut settings = SerialSettings::new();
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&key) {
            return Err(AddrError::RepeatedOption(key.to_owned()));
        }
        seen.push(key);
        let bad = || AddrError::BadOption { option: key.to_owned(), value: value.to_owned() };
        match key {
            "baud" => {
                settings.baud = value.parse().ok().filter(|b| BAUD_RANGE.contains(b)).ok_or_else(bad)?;
            }
            "data" => {
                settings.data_bits = match value {
                    "5" => DataBits::Five,
                    "6" => DataBits::Six,
                    "7" => DataBits::Seven,
                    "8" => DataBits::Eight,
                    _ => return Err(bad()),
                }
            }
            "parity" => {
                settings.parity = match value {
                    "none" => Parity::None,
                    "odd" => Parity::Odd,
                    "even" => Parity::Even,
                    _ => return Err(bad()),
                }
            }
            "stop" => {
                settings.stop_bits = match value {
                    "1" => StopBits::One,
                    "2" => StopBits::Two,
                    _ => return Err(bad()),
                }
            }
            "flow" => {
                settings.flow = match value {
                    "none" => FlowControl::None,
                    "software" | "xonxoff" => FlowControl::Software,
                    "hardware" | "rtscts" => FlowControl::Hardware,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(AddrError::UnknownOption(key.to_owned())),
        }
    }
    Ok((device.to_owned(), settings))
}

/// What values `option` takes, for an error message.
pub(crate) fn expected(option: &str) -> String {
    match option {
        "baud" => format!("a number from {} to {}", BAUD_RANGE.start(), BAUD_RANGE.end()),
        "data" => "5, 6, 7 or 8".to_owned(),
        "parity" => "none, odd or even".to_owned(),
        "stop" => "1 or 2".to_owned(),
        "flow" => "none, software or hardware".to_owned(),
        _ => "nothing: no such option".to_owned(),
    }
}

impl fmt::Display for SerialSettings {
    /// The query of an address: `baud=115200`, then every setting that is not the default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = Self::new();
        write!(f, "baud={}", self.baud)?;
        if self.data_bits != default.data_bits {
            let bits = match self.data_bits {
                DataBits::Five => 5,
                DataBits::Six => 6,
                DataBits::Seven => 7,
                DataBits::Eight => 8,
            };
            write!(f, "&data={bits}")?;
        }
        if self.parity != default.parity {
            f.write_str(if self.parity == Parity::Odd { "&parity=odd" } else { "&parity=even" })?;
        }
        if self.stop_bits != default.stop_bits {
            f.write_str("&stop=2")?;
        }
        match self.flow {
            FlowControl::None => Ok(()),
            FlowControl::Software => f.write_str("&flow=software"),
            FlowControl::Hardware => f.write_str("&flow=hardware"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_options_parse_and_default() {
        let (device, settings) = parse("/dev/ttyACM0", "serial:///dev/ttyACM0").unwrap();
        assert_eq!((device.as_str(), settings), ("/dev/ttyACM0", SerialSettings::new()));
        let (device, settings) = parse("COM3?baud=9600&data=7&parity=odd&stop=2&flow=hardware", "x").unwrap();
        assert_eq!(device, "COM3");
        assert_eq!(settings.baud, 9600);
        assert_eq!(settings.data_bits, DataBits::Seven);
        assert_eq!(settings.parity, Parity::Odd);
        assert_eq!(settings.stop_bits, StopBits::Two);
        assert_eq!(settings.flow, FlowControl::Hardware);
        assert_eq!(settings.to_string(), "baud=9600&data=7&parity=odd&stop=2&flow=hardware");
        assert_eq!(parse("/dev/x?flow=xonxoff", "x").unwrap().1.flow, FlowControl::Software);
    }

    #[test]
    fn each_mistake_in_the_query_has_its_own_error() {
        let bad =
            |option: &str, value: &str| AddrError::BadOption { option: option.into(), value: value.into() };
        assert_eq!(
            parse("?baud=9600", "serial://?baud=9600"),
            Err(AddrError::MissingDevice("serial://?baud=9600".into()))
        );
        assert_eq!(parse("/dev/x?baud=fast", "t"), Err(bad("baud", "fast")));
        assert_eq!(parse("/dev/x?baud=0", "t"), Err(bad("baud", "0")));
        assert_eq!(parse("/dev/x?baud", "t"), Err(bad("baud", "")));
        assert_eq!(parse("/dev/x?data=9", "t"), Err(bad("data", "9")));
        assert_eq!(parse("/dev/x?parity=mark", "t"), Err(bad("parity", "mark")));
        assert_eq!(parse("/dev/x?stop=1.5", "t"), Err(bad("stop", "1.5")));
        assert_eq!(parse("/dev/x?flow=yes", "t"), Err(bad("flow", "yes")));
        assert_eq!(parse("/dev/x?speed=9600", "t"), Err(AddrError::UnknownOption("speed".into())));
        assert_eq!(parse("/dev/x?baud=1200&baud=2400", "t"), Err(AddrError::RepeatedOption("baud".into())));
    }
}
