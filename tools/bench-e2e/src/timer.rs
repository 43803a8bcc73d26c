//! A timer that wakes a mio poll at a microsecond-precise time.
//!
//! mio's poll timeouts are rounded up to whole milliseconds (epoll's unit); a ping due in 300 µs
//! would go out up to 1 ms late. A `timerfd` registered with the poll fires when due instead.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

/// A one-shot timer on the monotonic clock (as [`Instant`]), readable in a mio poll when it
/// fires.
pub(crate) struct WakeTimer {
    fd: OwnedFd,
    /// When it is set to fire, until it has: setting it again to the same time is skipped
    /// (each setting reprograms the CPU's timer, a VM exit in a guest).
    armed: Option<Instant>,
}

impl WakeTimer {
    /// A disarmed timer registered with `registry` under `token`.
    pub(crate) fn new(registry: &Registry, token: Token) -> io::Result<Self> {
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
        Ok(Self { fd, armed: None })
    }

    /// Fires once at `at` (at once if it has passed), replacing any earlier setting.
    pub(crate) fn arm(&mut self, at: Instant) -> io::Result<()> {
        if self.armed == Some(at) {
            return Ok(());
        }
        // A zero value disarms a timerfd: a passed deadline fires after 1 ns instead.
        let after = at.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
        let value = Timespec {
            tv_sec: after.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: after.subsec_nanos().into(),
        };
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        let spec = Itimerspec { it_interval: zero, it_value: value };
        rustix::time::timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec)?;
        self.armed = Some(at);
        Ok(())
    }

    /// After the poll reported the timer: takes the expirations counted so far, so that the
    /// poll reports the next one afresh.
    pub(crate) fn clear(&mut self) {
        self.armed = None;
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut count);
    }
}
