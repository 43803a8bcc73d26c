//! Session settings.

use core::time::Duration;

use crate::time::{duration_micros as micros, duration_micros_u32 as micros_u32};

/// Settings for a [`Session`](super::Session).
///
/// Built with `const` builder methods, so firmware can keep one in a `const`:
///
/// ```
/// use core::time::Duration;
/// use framelink_core::session::Config;
///
/// const CONFIG: Config = Config::new().max_payload(256).keepalive(Duration::from_secs(2));
/// assert_eq!(CONFIG.max_payload_value(), 256);
/// ```
///
/// The limits marked "announced" travel in the handshake and bind the peer; the timers stay
/// local. The defaults suit a desktop on a LAN or loopback; firmware on a slow UART wants a
/// smaller `max_payload` and longer timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
///
/// Durations are kept in whole microseconds, converted when set (at compile time for a
/// `const` configuration), so the session computes its deadlines in integers; those of the
/// retransmission timer (initial, min and max RTO, ack delay) in 32 bits, so at most 71 minutes.
pub struct Config {
    pub(crate) max_payload: u16,
    pub(crate) max_message: u32,
    pub(crate) window: u16,
    pub(crate) keepalive_us: u64,
    pub(crate) idle_timeout_us: u64,
    /// The idle timeout in milliseconds, for the ERROR packet that reports it.
    pub(crate) idle_timeout_ms: u32,
    pub(crate) handshake_timeout_us: u64,
    pub(crate) close_timeout_us: u64,
    pub(crate) retransmit: bool,
    pub(crate) spread_keepalives: bool,
    pub(crate) initial_rto_us: u32,
    pub(crate) min_rto_us: u32,
    pub(crate) max_rto_us: u32,
    pub(crate) max_retransmits: u8,
    pub(crate) ack_delay_us: u32,
    pub(crate) max_send_buffer: u32,
    pub(crate) max_receive_buffer: u32,
}

impl Config {
    /// The defaults: see each setter.
    pub const fn new() -> Self {
        Self {
            max_payload: 1024,
            max_message: 64 * 1024,
            window: 16,
            keepalive_us: 5_000_000,
            idle_timeout_us: 30_000_000,
            idle_timeout_ms: 30_000,
            handshake_timeout_us: 10_000_000,
            close_timeout_us: 10_000_000,
            retransmit: false,
            spread_keepalives: false,
            initial_rto_us: 1_000_000,
            min_rto_us: 20_000,
            max_rto_us: 10_000_000,
            max_retransmits: 10,
            ack_delay_us: 5_000,
            max_send_buffer: 0,
            max_receive_buffer: 0,
        }
    }

    /// Announced: ask for retransmission (default off). Turn it on for transports that lose,
    /// duplicate or reorder (UDP, serial lines); leave it off on TCP. Either side asking is
    /// enough; the handshake then agrees on it, and a peer that cannot retransmit refuses.
    pub const fn retransmit(mut self, on: bool) -> Self {
        self.retransmit = on;
        self
    }

    /// Local, with retransmission: the retransmission timeout before the first RTT sample
    /// (default 1 s, RFC 6298 2.1).
    pub const fn initial_rto(mut self, rto: Duration) -> Self {
        self.initial_rto_us = micros_u32(rto);
        self
    }

    /// Local, with retransmission: the smallest retransmission timeout (default 20 ms). RFC 6298
    /// asks for 1 s on the Internet and Linux TCP uses 200 ms; like QUIC's probe timeout, framelink
    /// relies on the measured RTT plus the peer's ack delay instead, so a LAN or a UART link
    /// recovers in a few round trips. Raise it on links whose RTT jumps.
    pub const fn min_rto(mut self, rto: Duration) -> Self {
        self.min_rto_us = micros_u32(rto);
        self
    }

    /// Local, with retransmission: the cap on the backed-off retransmission timeout (default
    /// 10 s).
    pub const fn max_rto(mut self, rto: Duration) -> Self {
        self.max_rto_us = micros_u32(rto);
        self
    }

    /// Local, with retransmission: the dead-link limit: after this many retransmission timeouts
    /// in a row without progress the session ends (default 10).
    pub const fn max_retransmits(mut self, count: u8) -> Self {
        self.max_retransmits = count;
        self
    }

    /// Local, with retransmission: how long an acknowledgement for in-order DATA may wait to be
    /// combined with the next one (default 5 ms); every second packet is acknowledged at once.
    pub const fn ack_delay(mut self, delay: Duration) -> Self {
        self.ack_delay_us = micros_u32(delay);
        self
    }

    /// Whether retransmission is requested.
    pub const fn retransmit_value(&self) -> bool {
        self.retransmit
    }

    /// Announced: the largest DATA payload this side accepts (default 1024 bytes). The session
    /// announces at most its receive buffer's size minus 4. Messages longer than the peer's value
    /// are sent in fragments.
    pub const fn max_payload(mut self, bytes: u16) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Announced: the largest message this side accepts (default 64 KiB). The session announces
    /// at most its receive buffer's size minus 4.
    pub const fn max_message(mut self, bytes: u32) -> Self {
        self.max_message = bytes;
        self
    }

    /// Announced: how many DATA packets the peer may have in flight towards this side
    /// (default 16). The sender also caps it by its own descriptor capacity `W`.
    pub const fn window(mut self, packets: u16) -> Self {
        self.window = packets;
        self
    }

    /// Local: send a PING after this long without hearing from the peer (default 5 s). Keep it
    /// well below both sides' idle timeouts.
    pub const fn keepalive(mut self, interval: Duration) -> Self {
        self.keepalive_us = micros(interval);
        self
    }

    /// Local: bring the first keepalive forward by up to half the interval, by an amount drawn
    /// from the session id (default off). A server whose clients all connected at once (after
    /// a restart, or from a load tool) otherwise sends their keepalives all at once, every
    /// interval, as a herd; spread, they come due one after another, as routing protocols
    /// jitter their periodic timers for the same reason.
    pub const fn spread_keepalives(mut self, on: bool) -> Self {
        self.spread_keepalives = on;
        self
    }

    /// Local: fail the session after this long without hearing from the peer (default 30 s).
    pub const fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout_us = micros(timeout);
        let ms = timeout.as_millis();
        self.idle_timeout_ms = if ms > u32::MAX as u128 { u32::MAX } else { ms as u32 };
        self
    }

    /// Local: give up on a handshake that has not completed after this long (default 10 s).
    /// Applies to the client waiting for HELLO-ACK and to the server waiting for HELLO.
    pub const fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout_us = micros(timeout);
        self
    }

    /// Local: after [`close`](super::Session::close), give up when the close makes no progress
    /// (no data acknowledged or received, no CLOSE-ACK) for this long (default 10 s).
    pub const fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout_us = micros(timeout);
        self
    }

    /// Local, with growable storage (`Vec<u8>`): the size the send buffer may grow to
    /// (default 0: the size it was given). It starts with the storage it was given and grows as
    /// messages need; the largest message it takes is this size minus 4. Fixed storage keeps
    /// its size whatever this says.
    pub const fn max_send_buffer(mut self, bytes: u32) -> Self {
        self.max_send_buffer = bytes;
        self
    }

    /// Local, with growable storage (`Vec<u8>`): the size the receive buffer may grow to
    /// (default 0: the size it was given). The session announces credit and limits for this
    /// size from the start, since growing up to it always succeeds; the buffer itself starts
    /// with the storage it was given and grows as packets need. Grown buffers are given back
    /// once both have stayed empty for a keepalive interval. Fixed storage keeps its size
    /// whatever this says.
    pub const fn max_receive_buffer(mut self, bytes: u32) -> Self {
        self.max_receive_buffer = bytes;
        self
    }

    /// The configured largest DATA payload.
    pub const fn max_payload_value(&self) -> u16 {
        self.max_payload
    }

    /// The configured largest message.
    pub const fn max_message_value(&self) -> u32 {
        self.max_message
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}
