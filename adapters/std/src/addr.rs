//! Link addresses: `tcp://host:port`, `udp://host:port`, `tcp+cobs://host:port`, `host:port`.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

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
}

impl Transport {
    /// The scheme that names this transport in an address.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::TcpCobs => "tcp+cobs",
        }
    }
}

/// Where a link goes: a transport, a host and a port.
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
/// # Ok::<(), framelink_std::AddrError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Addr {
    /// The transport.
    pub transport: Transport,
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
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
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty address"),
            Self::UnknownScheme(s) => {
                write!(f, "unknown scheme `{s}://` (use tcp://, udp:// or tcp+cobs://)")
            }
            Self::MissingPort(a) => write!(f, "address `{a}` has no port (host:port)"),
            Self::BadPort(p) => write!(f, "port `{p}` is not a number from 0 to 65535"),
            Self::MissingHost(a) => write!(f, "address `{a}` has no host"),
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
        Self { transport, host: host.into(), port }
    }

    /// The same host and port over another transport.
    pub fn with_transport(&self, transport: Transport) -> Self {
        Self { transport, ..self.clone() }
    }

    /// The socket addresses the host resolves to (DNS for names).
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
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
        Ok(Self { transport, host: host.to_owned(), port })
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
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
    }

    #[test]
    fn display_round_trips() {
        for text in ["tcp://127.0.0.1:1", "udp://[::1]:2", "tcp+cobs://h:3"] {
            assert_eq!(text.parse::<Addr>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn loopback_resolves() {
        let addr: Addr = "udp://127.0.0.1:9".parse().unwrap();
        assert_eq!(addr.resolve().unwrap(), ["127.0.0.1:9".parse().unwrap()]);
    }
}
