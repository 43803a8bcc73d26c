//! Link addresses: `tcp://host:port`, `udp://host:port`, `tcp+cobs://host:port`, `host:port`,
//! and serial ports, `serial:///dev/ttyACM0?baud=115200` or `serial://COM3`.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use crate::serial::{self, SerialSettings};

/// How a link reaches its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// TCP with length-delimited framing.
    Tcp,
    /// UDP, one packet per datagram.
    Udp,
    /// COBS framing over a TCP stream: a serial line bridged to TCP (QEMU, ser2net).
    TcpCobs,
    /// COBS framing over a serial port (a USB-serial board, a UART, a pty).
    Serial,
}

impl Transport {
    /// The scheme that names this transport in an address.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::TcpCobs => "tcp+cobs",
            Self::Serial => "serial",
        }
    }
}

/// Where a link goes: a transport, a host and a port; or a serial port and its settings.
///
/// ```
/// use framelink_std::{Addr, Transport};
///
/// let addr: Addr = "udp://127.0.0.1:7878".parse()?;
/// assert_eq!(addr.transport, Transport::Udp);
/// assert_eq!(addr.port, 7878);
/// assert_eq!("localhost:80".parse::<Addr>()?.transport, Transport::Tcp);
/// assert_eq!(addr.to_string(), "udp://127.0.0.1:7878");
/// assert!("http://example:1".parse::<Addr>().is_err());
///
/// let serial: Addr = "serial:///dev/ttyACM0?baud=9600".parse()?;
/// assert_eq!(serial.transport, Transport::Serial);
/// assert_eq!(serial.host, "/dev/ttyACM0");
/// assert_eq!(serial.serial_settings().baud, 9600);
/// assert_eq!(serial.to_string(), "serial:///dev/ttyACM0?baud=9600");
/// assert_eq!("serial://COM3".parse::<Addr>()?.host, "COM3");
/// # Ok::<(), framelink_std::AddrError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Addr {
    /// The transport.
    pub transport: Transport,
    /// A host name or an IP address (IPv6 without brackets); for a serial port, its name
    /// (`/dev/ttyACM0`, `COM3`).
    pub host: String,
    /// The port (0 for a serial port).
    pub port: u16,
    /// A serial port's settings (`None` on the network transports, where they mean nothing;
    /// see [`serial_settings`](Self::serial_settings)).
    pub serial: Option<SerialSettings>,
}

/// Why an address did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddrError {
    /// Nothing was given.
    Empty,
    /// A scheme other than `tcp`, `udp` and `tcp+cobs`.
    UnknownScheme(String),
    /// No `:port` after the host.
    MissingPort(String),
    /// The port is not a number from 0 to 65535.
    BadPort(String),
    /// No host before the port.
    MissingHost(String),
    /// `serial://` without a device.
    MissingDevice(String),
    /// A serial option other than `baud`, `data`, `parity`, `stop` and `flow`.
    UnknownOption(String),
    /// A serial option given twice.
    RepeatedOption(String),
    /// A serial option with a value it does not take.
    BadOption {
        /// The option.
        option: String,
        /// The value given.
        value: String,
    },
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty address"),
            Self::UnknownScheme(s) => {
                write!(f, "unknown scheme `{s}://` (use tcp://, udp://, tcp+cobs:// or serial://)")
            }
            Self::MissingPort(a) => write!(f, "address `{a}` has no port (host:port)"),
            Self::BadPort(p) => write!(f, "port `{p}` is not a number from 0 to 65535"),
            Self::MissingHost(a) => write!(f, "address `{a}` has no host"),
            Self::MissingDevice(a) => {
                write!(f, "address `{a}` names no serial port (serial:///dev/ttyACM0, serial://COM3)")
            }
            Self::UnknownOption(o) => {
                write!(f, "unknown serial option `{o}` (use baud, data, parity, stop and flow)")
            }
            Self::RepeatedOption(o) => write!(f, "serial option `{o}` is given twice"),
            Self::BadOption { option, value } => {
                write!(f, "bad {option}=`{value}`: {option} takes {}", serial::expected(option))
            }
        }
    }
}

impl std::error::Error for AddrError {}

impl From<AddrError> for io::Error {
    fn from(error: AddrError) -> Self {
        Self::new(io::ErrorKind::InvalidInput, error)
    }
}

impl Addr {
    /// An address from its parts.
    pub fn new(transport: Transport, host: impl Into<String>, port: u16) -> Self {
        Self { transport, host: host.into(), port, serial: None }
    }

    /// The address of serial port `name` (`/dev/ttyACM0`, `COM3`) with `settings`.
    pub fn serial(name: impl Into<String>, settings: SerialSettings) -> Self {
        Self { transport: Transport::Serial, host: name.into(), port: 0, serial: Some(settings) }
    }

    /// The serial settings: those given, or the defaults (115200 8N1, no flow control).
    pub fn serial_settings(&self) -> SerialSettings {
        self.serial.unwrap_or_default()
    }

    /// The same host and port over another transport.
    pub fn with_transport(&self, transport: Transport) -> Self {
        Self { transport, ..self.clone() }
    }

    /// The socket addresses the host resolves to (DNS for names).
    /// A serial port has none: [`io::ErrorKind::InvalidInput`].
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        if self.transport == Transport::Serial {
            let text = format!("{self} is a serial port, not a network address");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, text));
        }
        let found: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        if found.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} resolves to no address", self.host),
            ));
        }
        Ok(found)
    }
}

/// Anything that names an [`Addr`]: an `Addr` itself (owned or borrowed), or its text
/// (`&str`, `String`), parsed on use; what [`Link::connect`](crate::Link::connect) takes, as
/// std's `TcpStream::connect` takes [`ToSocketAddrs`].
///
/// ```
/// use framelink_std::{Addr, ToAddr, Transport};
///
/// assert_eq!("udp://127.0.0.1:7878".to_addr()?.transport, Transport::Udp);
/// let addr = Addr::new(Transport::Tcp, "127.0.0.1", 7878);
/// assert_eq!(*addr.to_addr()?, addr);
/// assert_eq!(*String::from("127.0.0.1:7878").to_addr()?, addr);
/// assert!("http://example:1".to_addr().is_err());
/// # Ok::<(), framelink_std::AddrError>(())
/// ```
pub trait ToAddr {
    /// The address, borrowed when `self` is one, or why the text is not one.
    fn to_addr(&self) -> Result<Cow<'_, Addr>, AddrError>;
}

impl ToAddr for Addr {
    fn to_addr(&self) -> Result<Cow<'_, Addr>, AddrError> {
        Ok(Cow::Borrowed(self))
    }
}

impl ToAddr for str {
    fn to_addr(&self) -> Result<Cow<'_, Addr>, AddrError> {
        self.parse().map(Cow::Owned)
    }
}

impl ToAddr for String {
    fn to_addr(&self) -> Result<Cow<'_, Addr>, AddrError> {
        self.as_str().to_addr()
    }
}

impl<T: ToAddr + ?Sized> ToAddr for &T {
    fn to_addr(&self) -> Result<Cow<'_, Addr>, AddrError> {
        (**self).to_addr()
    }
}

impl FromStr for Addr {
    type Err = AddrError;

    fn from_str(text: &str) -> Result<Self, AddrError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AddrError::Empty);
        }
        let (transport, rest) = match text.split_once("://") {
            Some(("tcp", rest)) => (Transport::Tcp, rest),
            Some(("udp", rest)) => (Transport::Udp, rest),
            Some(("tcp+cobs", rest)) => (Transport::TcpCobs, rest),
            Some(("serial", rest)) => {
                let (name, settings) = serial::parse(rest, text)?;
                return Ok(Self::serial(name, settings));
            }
            Some((scheme, _)) => return Err(AddrError::UnknownScheme(scheme.to_owned())),
            None => (Transport::Tcp, text),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            // [v6]:port
            let (host, after) =
                bracketed.split_once(']').ok_or_else(|| AddrError::MissingPort(text.to_owned()))?;
            let port = after.strip_prefix(':').ok_or_else(|| AddrError::MissingPort(text.to_owned()))?;
            (host, port)
        } else {
            rest.rsplit_once(':').ok_or_else(|| AddrError::MissingPort(text.to_owned()))?
        };
        if host.is_empty() {
            return Err(AddrError::MissingHost(text.to_owned()));
        }
        let port = port.parse().map_err(|_| AddrError::BadPort(port.to_owned()))?;
        Ok(Self::new(transport, host, port))
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.transport == Transport::Serial {
            write!(f, "serial://{}?{}", self.host, self.serial_settings())
        } else if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.transport.scheme(), self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.transport.scheme(), self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        let cases = [
            ("tcp://127.0.0.1:8080", Transport::Tcp, "127.0.0.1", 8080),
            ("udp://localhost:7", Transport::Udp, "localhost", 7),
            ("tcp+cobs://127.0.0.1:5555", Transport::TcpCobs, "127.0.0.1", 5555),
            ("example.org:1", Transport::Tcp, "example.org", 1),
            ("udp://[::1]:9", Transport::Udp, "::1", 9),
            ("[::1]:10", Transport::Tcp, "::1", 10),
        ];
        for (text, transport, host, port) in cases {
            assert_eq!(text.parse::<Addr>(), Ok(Addr::new(transport, host, port)), "{text}");
        }
    }

    #[test]
    fn each_mistake_has_its_own_error() {
        assert_eq!("".parse::<Addr>(), Err(AddrError::Empty));
        assert_eq!("http://a:1".parse::<Addr>(), Err(AddrError::UnknownScheme("http".into())));
        assert_eq!("tcp://host".parse::<Addr>(), Err(AddrError::MissingPort("tcp://host".into())));
        assert_eq!("udp://host:99999".parse::<Addr>(), Err(AddrError::BadPort("99999".into())));
        assert_eq!("udp://host:x".parse::<Addr>(), Err(AddrError::BadPort("x".into())));
        assert_eq!("tcp://:80".parse::<Addr>(), Err(AddrError::MissingHost("tcp://:80".into())));
        assert_eq!("[::1".parse::<Addr>(), Err(AddrError::MissingPort("[::1".into())));
        assert_eq!("serial://".parse::<Addr>(), Err(AddrError::MissingDevice("serial://".into())));
        assert_eq!("serial:///dev/x?bits=8".parse::<Addr>(), Err(AddrError::UnknownOption("bits".into())));
        let bad = "serial://COM3?baud=x".parse::<Addr>().unwrap_err();
        assert_eq!(bad.to_string(), "bad baud=`x`: baud takes a number from 50 to 20000000");
    }

    #[test]
    fn display_round_trips() {
        for text in
            ["tcp://127.0.0.1:1", "udp://[::1]:2", "tcp+cobs://h:3", "serial://COM3?baud=9600&parity=even"]
        {
            assert_eq!(text.parse::<Addr>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn serial_ports_parse_by_path_or_name() {
        let addr: Addr = "serial:///dev/ttyACM0?baud=115200&parity=none&flow=none".parse().unwrap();
        assert_eq!(addr, Addr::serial("/dev/ttyACM0", SerialSettings::new()));
        assert_eq!(addr.to_string(), "serial:///dev/ttyACM0?baud=115200");
        assert_eq!("serial://COM3".parse::<Addr>().unwrap(), Addr::serial("COM3", SerialSettings::new()));
        assert_eq!(addr.resolve().unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn loopback_resolves() {
        let addr: Addr = "udp://127.0.0.1:9".parse().unwrap();
        assert_eq!(addr.resolve().unwrap(), ["127.0.0.1:9".parse().unwrap()]);
    }
}
