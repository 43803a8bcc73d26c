//! Time from SysTick: the core clock counted down from 2^24, wraps counted by polling COUNTFLAG.
//!
//! No interrupt handler runs: the main loop reads the clock at least once per wrap (SysTick's
//! exception wakes it from WFI even with interrupts masked), so every wrap is seen. Ticks turn
//! into microseconds as they come, in 32-bit arithmetic (a 64-bit division is a library call
//! of about 1 KiB on the Cortex-M3).

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use framelink_core::Instant;

/// SysTick ticks per microsecond: QEMU's lm3s6965evb runs the core at 12 MHz.
pub const TICKS_PER_US: u32 = 12;
const RELOAD: u32 = 0x00FF_FFFF;

/// The firmware's clock.
pub struct Clock {
    syst: SYST,
    /// Ticks into the current period at the last read (0 where COUNTFLAG is set).
    last: u32,
    /// Ticks counted but not yet a whole microsecond.
    rest: u32,
    micros: u64,
}

impl Clock {
    /// Starts SysTick from the core clock, with its exception on (to wake WFI).
    pub fn new(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_counter();
        syst.enable_interrupt();
        Self { syst, last: 0, rest: 0, micros: 0 }
    }

    /// Microseconds since boot.
    pub fn now(&mut self) -> Instant {
        let mut wraps = 0u32;
        loop {
            if self.syst.has_wrapped() {
                wraps += 1;
            }
            // Ticks into the period: the counter runs RELOAD, ..., 1, 0 and sets COUNTFLAG on
            // reaching 0, which is where this count starts over.
            let at = SYST::get_current().wrapping_neg() & RELOAD;
            // A wrap between the two reads would be missed; read COUNTFLAG again.
            if !self.syst.has_wrapped() {
                let ticks = (wraps << 24).wrapping_add(at).wrapping_sub(self.last) + self.rest;
                self.last = at;
                self.micros += u64::from(ticks / TICKS_PER_US);
                self.rest = ticks % TICKS_PER_US;
                // The exception that woke us (if any) must not stay pending, or WFI never sleeps.
                SCB::clear_pendst();
                return Instant::from_micros(self.micros);
            }
            wraps += 1;
        }
    }
}
