//! Time from SysTick: a millisecond tick counted by its exception, the microseconds within it
//! read from the counter.
//!
//! The tick also wakes the main loop from WFI every millisecond, so timers (smoltcp's
//! retransmissions, the sessions' keepalives and retransmissions) are served within a
//! millisecond without arming a timer for each deadline.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use framelink_core::Instant;

/// SysTick ticks per microsecond: QEMU's lm3s6965evb runs the core at 12 MHz.
const TICKS_PER_US: u32 = 12;
/// Ticks per millisecond, less one: the counter runs RELOAD, ..., 0.
const RELOAD: u32 = 1000 * TICKS_PER_US - 1;

// SAFETY (both `no_mangle`s): the names are unmangled so that `ci.sh` finds the counters in
// the image's symbols; nothing else in the image defines them.
/// Milliseconds since the clock started (wraps after 49 days; [`Clock`] widens it).
#[unsafe(no_mangle)]
static MILLIS: AtomicU32 = AtomicU32::new(0);

/// Ticks that came while the core slept: the idle share of [`MILLIS`], sampled once a
/// millisecond. Nothing reads it but `ci.sh`, from RAM through QEMU's monitor, to tell whether
/// the core was the bottleneck of a run.
#[unsafe(no_mangle)]
static IDLE_MILLIS: AtomicU32 = AtomicU32::new(0);

/// Counts a tick that woke the core from WFI (called with the tick still pending).
pub fn count_idle_tick() {
    if SCB::is_pendst_pending() {
        IDLE_MILLIS.fetch_add(1, Ordering::Relaxed);
    }
}

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}

/// The firmware's clock.
pub struct Clock {
    _syst: SYST,
    /// The tick count at the last read, and the milliseconds before it that wrapped away.
    last_millis: u32,
    wrapped_millis: u64,
    /// The last time returned: time never goes back (the counter reloads a few cycles before
    /// the exception counts the tick).
    last: u64,
}

impl Clock {
    /// Starts SysTick from the core clock with its exception every millisecond.
    pub fn new(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_counter();
        syst.enable_interrupt();
        Self { _syst: syst, last_millis: 0, wrapped_millis: 0, last: 0 }
    }

    /// Microseconds since the clock started.
    pub fn now(&mut self) -> Instant {
        let (millis, ticks) = loop {
            let millis = MILLIS.load(Ordering::Relaxed);
            let ticks = RELOAD - SYST::get_current().min(RELOAD);
            if MILLIS.load(Ordering::Relaxed) == millis {
                break (millis, ticks);
            }
        };
        if millis < self.last_millis {
            self.wrapped_millis += 1 << 32;
        }
        self.last_millis = millis;
        let micros = (self.wrapped_millis + u64::from(millis)) * 1000 + u64::from(ticks / TICKS_PER_US);
        self.last = self.last.max(micros);
        Instant::from_micros(self.last)
    }
}
