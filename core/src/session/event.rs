//! What a session reports to the application.

use core::time::Duration;

use crate::wire::ErrorCode;

/// Something the application must know, from [`Session::poll_event`](super::Session::poll_event).
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// The handshake completed; [`send`](super::Session::send) works from now on. Reported once,
    /// first.
    Connected,
    /// A whole message, delivered once and in order. It stays valid until the next call to
    /// `poll_event`, which releases its buffer space.
    Message(&'a [u8]),
    /// The answer to an application [`ping`](super::Session::ping) (keepalive pings report
    /// nothing).
    Pong {
        /// The token `ping` returned.
        token: u32,
        /// The measured round trip.
        rtt: Duration,
    },
    /// The session ended; reported once, after every message that arrived before the end.
    /// Nothing more will be sent or received; drop the session or, for a server, make a new one.
    Closed(CloseReason),
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CloseReason {
    /// We closed, and the peer confirmed after both sides drained their data.
    Local,
    /// The peer closed, and we confirmed after both sides drained their data.
    Peer,
    /// The peer ended the session with an ERROR packet (a refused handshake among them).
    PeerError {
        /// The peer's error code.
        code: ErrorCode,
        /// The peer's detail number (see [`ErrorCode`]).
        detail: u32,
    },
    /// We ended the session with an ERROR packet, because of what the peer sent.
    LocalError {
        /// The code sent.
        code: ErrorCode,
        /// The detail sent.
        detail: u32,
    },
    /// A timer ran out.
    TimedOut(Timeout),
    /// The peer started a new session (a HELLO with another session id) while this one was
    /// open; messages not yet delivered were dropped with it.
    Reset,
}

/// Which timer ended the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Timeout {
    /// The handshake did not complete in time ([`Config::handshake_timeout`](super::Config::handshake_timeout)).
    Handshake,
    /// Nothing was heard from the peer for too long ([`Config::idle_timeout`](super::Config::idle_timeout)).
    Idle,
    /// The peer did not confirm our CLOSE in time ([`Config::close_timeout`](super::Config::close_timeout)).
    Close,
    /// The peer stopped acknowledging: retransmissions ran out
    /// ([`Config::max_retransmits`](super::Config::max_retransmits)).
    DeadLink,
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Local => f.write_str("closed"),
            Self::Peer => f.write_str("closed by the peer"),
            Self::PeerError { code, detail } => write!(f, "peer error: {code} ({detail})"),
            Self::LocalError { code, detail } => write!(f, "refused: {code} ({detail})"),
            Self::TimedOut(Timeout::Handshake) => f.write_str("handshake timed out"),
            Self::TimedOut(Timeout::Idle) => f.write_str("idle timeout: the peer went silent"),
            Self::TimedOut(Timeout::Close) => f.write_str("close timed out"),
            Self::TimedOut(Timeout::DeadLink) => f.write_str("dead link: the peer stopped acknowledging"),
            Self::Reset => f.write_str("the peer started a new session"),
        }
    }
}

/// Why [`Session::send`](super::Session::send) or [`Session::ping`](super::Session::ping)
/// refused; nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The handshake has not completed yet; wait for [`Event::Connected`].
    NotConnected,
    /// The send buffer is full; try again after the peer acknowledged some data (after
    /// handling incoming packets).
    WouldBlock,
    /// The message is larger than the peer accepts or than the send buffer holds.
    TooLarge {
        /// The largest message that can be sent.
        max: usize,
    },
    /// [`close`](super::Session::close) was called or the peer is closing: no new messages.
    Closing,
    /// The session has ended.
    Closed,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotConnected => f.write_str("not connected yet"),
            Self::WouldBlock => f.write_str("send buffer full"),
            Self::TooLarge { max } => write!(f, "message too large (at most {max} bytes)"),
            Self::Closing => f.write_str("session is closing"),
            Self::Closed => f.write_str("session is closed"),
        }
    }
}

impl core::error::Error for SendError {}

/// Counters a session keeps, for STATS and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// Packets handed out by `poll_transmit`.
    pub packets_sent: u64,
    /// Valid packets handed in.
    pub packets_received: u64,
    /// DATA payload bytes sent (first transmissions).
    pub bytes_sent: u64,
    /// DATA payload bytes accepted.
    pub bytes_received: u64,
    /// Messages queued by `send`.
    pub messages_sent: u64,
    /// Messages reassembled.
    pub messages_received: u64,
    /// DATA bytes the peer acknowledged.
    pub bytes_acked: u64,
    /// DATA packets sent again (lossy transports only).
    pub retransmits: u64,
    /// Of those, sent again because later packets overtook them (fast retransmit).
    pub fast_retransmits: u64,
    /// Retransmission timeouts that fired.
    pub timeouts: u64,
    /// Tail-loss probes sent (RFC 8985): a packet sent to draw an acknowledgement when the
    /// last ones of a flight went unanswered, before the retransmission timeout (feature
    /// `congestion`).
    #[cfg(feature = "congestion")]
    pub probes: u64,
    /// DATA packets that arrived ahead of a gap and were held.
    pub out_of_order: u64,
    /// DATA packets dropped for lack of room (to be sent again by the peer).
    pub dropped: u64,
    /// DATA packets received again and dropped.
    pub duplicates: u64,
    /// Packets that made no sense in the state they arrived in, ignored.
    pub ignored: u64,
    /// Frames the decoder rejected (reported through `handle_decode_error`).
    pub decode_errors: u64,
    /// Frames rejected for a bad CRC, a subset of `decode_errors`.
    pub crc_errors: u64,
    /// PONGs not sent because too many PINGs arrived at once.
    pub pongs_dropped: u64,
    /// Keyed sessions: packets dropped because they did not verify (forged, altered, or not
    /// sealed) or were replayed.
    #[cfg(feature = "auth")]
    pub auth_failures: u64,
}
