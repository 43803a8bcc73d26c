//! Time from SysTick: the core clock counted down from 2^24, wraps counted by polling COUNTFLAG.
//!
//! No interrupt handler runs: the main loop reads the clock at least once per wrap (SysTick's
//! exception wakes it from WFI even with interrupts masked), so every wrap is seen.

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use framelink_core::Instant;

/// SysTick ticks per microsecond: QEMU's lm3s6965evb runs the core at 12 MHz.
pub const TICKS_PER_US: u64 = 12;
const RELOAD: u32 = 0x00FF_FFFF;

/// The firmware's clock.
pub struct Clock {
    syst: SYST,
    wraps: u64,
}

impl Clock {
    /// Starts SysTick from the core clock, with its exception on (to wake WFI).
    pub fn new(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_counter();
        syst.enable_interrupt();
        Self { syst, wraps: 0 }
    }

    /// Microseconds since boot.
    pub fn now(&mut self) -> Instant {
        loop {
            if self.syst.has_wrapped() {
                self.wraps += 1;
            }
            let current = SYST::get_current();
            // A wrap between the two reads would be missed; read COUNTFLAG again.
            if !self.syst.has_wrapped() {
                let ticks = self.wraps * (u64::from(RELOAD) + 1) + u64::from(RELOAD - current);
                // The exception that woke us (if any) must not stay pending, or WFI never sleeps.
                SCB::clear_pendst();
                return Instant::from_micros(ticks / TICKS_PER_US);
            }
            self.wraps += 1;
        }
    }
}
