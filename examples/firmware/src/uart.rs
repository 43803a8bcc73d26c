//! A driver for the PL011 UART0 of the lm3s6965 (as QEMU emulates it), implementing
//! `framelink_core::embedded_io::{Read, Write, ReadReady}`.
//!
//! Registers (offsets from 0x4000_C000): DR 0x000, FR 0x018 (bit 4 RXFE, bit 5 TXFF),
//! LCRH 0x02C (bit 4 FEN, bits 5-6 WLEN), CR 0x030 (bit 0 UARTEN, 8 TXE, 9 RXE), IMSC 0x038
//! (bit 4 RXIM, bit 6 RTIM), ICR 0x044. The only `unsafe` of the firmware is in `reg`.

use core::convert::Infallible;

const BASE: usize = 0x4000_C000;
const DR: usize = 0x000;
const FR: usize = 0x018;
const LCRH: usize = 0x02C;
const CR: usize = 0x030;
const IMSC: usize = 0x038;
const ICR: usize = 0x044;

const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const LCRH_FEN: u32 = 1 << 4;
const LCRH_WLEN_8: u32 = 0b11 << 5;
const CR_UARTEN: u32 = 1 << 0;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;
const IMSC_RXIM: u32 = 1 << 4;
const IMSC_RTIM: u32 = 1 << 6;

/// NVIC: UART0 is interrupt 5.
const NVIC_ISER0: usize = 0xE000_E100;
const NVIC_ICPR0: usize = 0xE000_E280;
const UART0_IRQ_BIT: u32 = 1 << 5;

/// Volatile access to the memory-mapped registers above.
mod reg {
    pub(super) fn read(address: usize) -> u32 {
        // SAFETY: `address` is one of the PL011 or NVIC registers listed in this module, which
        // exist on this chip, are 4-byte aligned and have no side effects on read beyond the
        // UART's documented FIFO pop (DR).
        unsafe { core::ptr::read_volatile(address as *const u32) }
    }

    pub(super) fn write(address: usize, value: u32) {
        // SAFETY: as for `read`; every value written is one the register documents.
        unsafe { core::ptr::write_volatile(address as *mut u32, value) }
    }
}

/// UART0. Only one may exist: [`Uart::take`] hands it out once.
pub struct Uart {
    _private: (),
}

impl Uart {
    /// Initialises UART0 (8 data bits, FIFOs on; QEMU needs no baud divisors) and returns it,
    /// the first time only.
    pub fn take() -> Option<Self> {
        static TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if TAKEN.swap(true, core::sync::atomic::Ordering::AcqRel) {
            return None;
        }
        reg::write(BASE + CR, 0);
        reg::write(BASE + LCRH, LCRH_FEN | LCRH_WLEN_8);
        reg::write(BASE + CR, CR_UARTEN | CR_TXE | CR_RXE);
        // Receive interrupts only to wake the core from WFI; no handler runs (PRIMASK is set).
        reg::write(BASE + IMSC, IMSC_RXIM | IMSC_RTIM);
        reg::write(NVIC_ISER0, UART0_IRQ_BIT);
        Some(Self { _private: () })
    }

    pub(crate) fn rx_empty() -> bool {
        reg::read(BASE + FR) & FR_RXFE != 0
    }

    /// Sleeps until a byte arrives or another interrupt (SysTick) fires, unless a byte is
    /// already waiting.
    pub fn wait(&mut self) {
        reg::write(BASE + ICR, IMSC_RXIM | IMSC_RTIM);
        reg::write(NVIC_ICPR0, UART0_IRQ_BIT);
        if Self::rx_empty() {
            cortex_m::asm::wfi();
        }
    }
}

impl framelink_core::embedded_io::ErrorType for Uart {
    type Error = Infallible;
}

impl framelink_core::embedded_io::Read for Uart {
    /// Waits for the first byte, then takes what the FIFO holds.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        while Self::rx_empty() {
            self.wait();
        }
        let mut n = 0;
        while n < buf.len() && !Self::rx_empty() {
            buf[n] = reg::read(BASE + DR) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl framelink_core::embedded_io::ReadReady for Uart {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!Self::rx_empty())
    }
}

impl framelink_core::embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &byte in buf {
            while reg::read(BASE + FR) & FR_TXFF != 0 {}
            reg::write(BASE + DR, u32::from(byte));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
