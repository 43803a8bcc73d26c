//! Why a link failed.

use std::fmt;
use std::io;

use framelink_core::session::{CloseReason, SendError, Timeout};
use framelink_core::wire::{Capabilities, ErrorCode};

use crate::serial::SerialError;
use crate::sniff::Framing;
use crate::{AddrError, Transport};

/// Why a [`Link`](crate::Link) call failed.
///
/// Each variant prints as one clear line (no trailing period), fit for a command-line tool's
/// `error: ...`.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkError {
    /// The address given to [`Link::connect`](crate::Link::connect) did not parse.
    Addr(AddrError),
    /// The socket failed (the connection was refused, the host is unreachable, ...).
    Io(io::Error),
    /// The handshake was refused with an ERROR: by the peer (another protocol version, a
    /// capability it lacks, a server that is full; `CloseReason::PeerError`), or by this side
    /// (the peer's answer did not agree; `CloseReason::LocalError`).
    Refused(CloseReason),
    /// The session ended; a graceful end is `Closed(CloseReason::Local)` or
    /// `Closed(CloseReason::Peer)`.
    Closed(CloseReason),
    /// The connection ended (end of stream, reset) before the session did.
    ConnectionLost,
    /// The caller's timeout ran out.
    TimedOut,
    /// Data sent has waited for an acknowledgement for longer than the idle timeout while the
    /// peer still answers keepalives: a packet was lost (UDP has no retransmission yet) or the
    /// peer's application stopped reading.
    Stalled,
    /// The session refused a message or a ping (too large, closing, ...); nothing was queued.
    Send(SendError),
    /// The handshake got no answer within the handshake timeout; when the peer sent bytes that
    /// look like another framing than the address named, `looks_like` says which (`tcp://`
    /// against a COBS peer, `tcp+cobs://` against a length-delimited one).
    NoAnswer {
        /// The transport the handshake was tried on.
        transport: Transport,
        /// Bytes the peer sent meanwhile, none of them a frame this side could decode.
        bytes_received: u64,
        /// The other framing those bytes look like, if they do.
        looks_like: Option<Framing>,
    },
    /// A [`CancelToken`](crate::CancelToken) was cancelled while the call waited; the link, if
    /// there is one, is still usable.
    Interrupted,
    /// A serial port could not be opened (no such port, permission denied, busy, unsupported
    /// baud rate), or went away (unplugged, closed).
    Serial(SerialError),
}

impl LinkError {
    /// Whether the link is still usable after this error (a refused send, a caller's timeout,
    /// a cancelled wait); every other error ends it.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            Self::TimedOut
                | Self::Interrupted
                | Self::Send(SendError::TooLarge { .. } | SendError::WouldBlock)
        )
    }
}

/// What an ERROR code and its detail mean, in words.
pub(crate) fn describe_error(code: ErrorCode, detail: u32) -> String {
    match code {
        ErrorCode::VersionMismatch => {
            format!("protocol version mismatch (the sender speaks version {detail})")
        }
        ErrorCode::UnsupportedCapability if detail & u32::from(Capabilities::KEYED.0) != 0 => {
            "keyed sessions: one side has a pre-shared key and the other has none (--psk-file)".to_owned()
        }
        ErrorCode::UnsupportedCapability => format!("unsupported capability (missing bits {detail:#06x})"),
        ErrorCode::AuthenticationFailed => "authentication failed: the peer has a different key".to_owned(),
        ErrorCode::MessageTooLarge => format!("message too large (the limit is {detail} bytes)"),
        ErrorCode::PayloadTooLarge => format!("packet payload too large (the limit is {detail} bytes)"),
        ErrorCode::FlowControl => format!("flow control violated ({detail} bytes of credit were left)"),
        ErrorCode::ProtocolViolation => format!("protocol violation (packet type {detail:#04x})"),
        ErrorCode::IdleTimeout => format!("idle timeout (nothing heard for {detail} ms)"),
        ErrorCode::Busy => format!("server busy (it serves at most {detail} clients)"),
        other => format!("{other} ({detail})"),
    }
}

/// Why a session ended, in words.
pub(crate) fn describe_close(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Local => "closed".to_owned(),
        CloseReason::Peer => "closed by the peer".to_owned(),
        CloseReason::PeerError { code, detail } => {
            format!("ERROR from the peer: {}", describe_error(*code, *detail))
        }
        CloseReason::LocalError { code, detail } => {
            format!("ERROR sent to the peer: {}", describe_error(*code, *detail))
        }
        CloseReason::TimedOut(Timeout::Handshake) => {
            "the handshake timed out: no answer from the peer".to_owned()
        }
        CloseReason::TimedOut(Timeout::Idle) => "idle timeout: nothing heard from the peer".to_owned(),
        CloseReason::TimedOut(Timeout::Close) => "the peer did not confirm the close in time".to_owned(),
        CloseReason::Reset => "the peer started a new session".to_owned(),
        other => other.to_string(),
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => match error.kind() {
                io::ErrorKind::ConnectionRefused => {
                    f.write_str("connection refused: no server is listening there")
                }
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                    f.write_str("timed out: the peer does not answer")
                }
                _ => write!(f, "{error}"),
            },
            Self::Refused(CloseReason::PeerError { code, detail }) => {
                write!(f, "the peer refused the session: {}", describe_error(*code, *detail))
            }
            Self::Refused(CloseReason::LocalError { code, detail }) => {
                write!(f, "refused the peer's handshake: {}", describe_error(*code, *detail))
            }
            Self::Refused(reason) => write!(f, "the session was refused: {}", describe_close(reason)),
            Self::Closed(reason) => write!(f, "session ended: {}", describe_close(reason)),
            Self::ConnectionLost => {
                f.write_str("connection lost: the peer went away without closing the session")
            }
            Self::TimedOut => f.write_str("timed out"),
            Self::Stalled => f.write_str(
                "link stalled: sent data was not acknowledged in time (lost packet or peer not reading)",
            ),
            Self::Send(error) => write!(f, "cannot send: {error}"),
            Self::Serial(error) => write!(f, "{error}"),
            Self::Addr(error) => write!(f, "bad address: {error}"),
            Self::NoAnswer { transport, bytes_received, looks_like } => {
                no_answer(f, *transport, *bytes_received, *looks_like)
            }
            Self::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// A handshake without an answer, with what the bytes that came back suggest.
fn no_answer(
    f: &mut fmt::Formatter<'_>,
    transport: Transport,
    bytes: u64,
    looks_like: Option<Framing>,
) -> fmt::Result {
    let sent = if bytes == 1 { "1 byte that looks".to_owned() } else { format!("{bytes} bytes that look") };
    match (looks_like, transport) {
        (Some(Framing::Cobs), _) => write!(
            f,
            "no answer to the handshake, but the peer sent {sent} like COBS frames: try tcp+cobs://"
        ),
        (Some(Framing::LengthDelimited), Transport::Serial) => write!(
            f,
            "no answer to the handshake, but the peer sent {sent} like length-delimited frames (tcp://), not COBS"
        ),
        (Some(Framing::LengthDelimited), _) => write!(
            f,
            "no answer to the handshake, but the peer sent {sent} like length-delimited frames: try tcp://"
        ),
        (None, _) if bytes > 0 => write!(
            f,
            "the handshake timed out: the peer sent {bytes} byte{} that are no framelink frames",
            if bytes == 1 { "" } else { "s" }
        ),
        (None, Transport::Tcp) => f.write_str(
            "the handshake timed out: no answer from the peer (if it frames with COBS, as a serial line bridged to TCP does, try tcp+cobs://)",
        ),
        (None, Transport::TcpCobs) => f.write_str(
            "the handshake timed out: no answer from the peer (if it is a framelink server on plain TCP, try tcp://)",
        ),
        (None, _) => f.write_str("the handshake timed out: no answer from the peer"),
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(error) => Some(error),
            Self::Send(error) => Some(error),
            Self::Serial(error) => Some(error),
            Self::Addr(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for LinkError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<AddrError> for LinkError {
    fn from(error: AddrError) -> Self {
        Self::Addr(error)
    }
}

impl From<SendError> for LinkError {
    fn from(error: SendError) -> Self {
        Self::Send(error)
    }
}

impl From<LinkError> for io::Error {
    fn from(error: LinkError) -> Self {
        use io::ErrorKind as K;
        let kind = match &error {
            LinkError::Io(inner) => inner.kind(),
            LinkError::Refused(_) => K::ConnectionRefused,
            LinkError::Closed(CloseReason::Local | CloseReason::Peer) => K::BrokenPipe,
            LinkError::Closed(CloseReason::TimedOut(_))
            | LinkError::NoAnswer { .. }
            | LinkError::TimedOut
            | LinkError::Stalled => K::TimedOut,
            LinkError::Interrupted => K::Interrupted,
            LinkError::Closed(_) => K::ConnectionAborted,
            LinkError::ConnectionLost => K::ConnectionReset,
            LinkError::Send(SendError::TooLarge { .. }) => K::InvalidInput,
            LinkError::Send(SendError::WouldBlock) => K::WouldBlock,
            LinkError::Send(SendError::NotConnected) => K::NotConnected,
            LinkError::Send(_) => K::BrokenPipe,
            LinkError::Serial(_) => K::Other,
            LinkError::Addr(_) => K::InvalidInput,
        };
        match error {
            LinkError::Io(inner) => inner,
            LinkError::Serial(inner) => inner.into(),
            other => Self::new(kind, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_is_one_line_and_maps_to_an_io_kind() {
        let cases = [
            (LinkError::Io(io::ErrorKind::ConnectionRefused.into()), io::ErrorKind::ConnectionRefused),
            (
                LinkError::Refused(CloseReason::PeerError { code: ErrorCode::VersionMismatch, detail: 2 }),
                io::ErrorKind::ConnectionRefused,
            ),
            (LinkError::Closed(CloseReason::Peer), io::ErrorKind::BrokenPipe),
            (LinkError::Closed(CloseReason::TimedOut(Timeout::Idle)), io::ErrorKind::TimedOut),
            (LinkError::ConnectionLost, io::ErrorKind::ConnectionReset),
            (LinkError::Stalled, io::ErrorKind::TimedOut),
            (LinkError::Send(SendError::TooLarge { max: 9 }), io::ErrorKind::InvalidInput),
            (LinkError::Addr(AddrError::Empty), io::ErrorKind::InvalidInput),
            (LinkError::Interrupted, io::ErrorKind::Interrupted),
            (
                LinkError::NoAnswer {
                    transport: Transport::Tcp,
                    bytes_received: 1,
                    looks_like: Some(Framing::Cobs),
                },
                io::ErrorKind::TimedOut,
            ),
        ];
        for (error, kind) in cases {
            let text = error.to_string();
            assert!(!text.contains('\n') && !text.is_empty(), "{text}");
            assert_eq!(io::Error::from(error).kind(), kind, "{text}");
        }
        let refused =
            LinkError::Refused(CloseReason::PeerError { code: ErrorCode::VersionMismatch, detail: 2 });
        assert_eq!(
            refused.to_string(),
            "the peer refused the session: protocol version mismatch (the sender speaks version 2)"
        );
    }
}
