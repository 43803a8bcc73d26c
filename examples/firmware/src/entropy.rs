//! EXAMPLE ONLY: a stand-in for a true random number generator under QEMU.
//!
//! The nonces of keyed sessions must never repeat across restarts, so a real board seeds them
//! from its TRNG (an STM32's RNG peripheral, an nRF's RNG, an RP2040's ROSC, ...) through a
//! `rand_core::TryCryptoRng` of its HAL. The lm3s6965 that QEMU emulates has no TRNG, and a
//! QEMU machine boots the same way every time, so this example waits for the first byte a
//! client sends and folds the SysTick counter, sampled at every turn of the wait, into the
//! seed: the host's timing is the only thing that varies between boots. That is enough to
//! exercise the protocol in CI; it is not a secret a real attacker could not guess.

use core::convert::Infallible;

use cortex_m::peripheral::SYST;

use crate::clock::Clock;
use crate::uart::Uart;

/// A 32-byte seed from the host's timing, handed out once.
pub struct HostTiming {
    seed: [u8; 32],
    at: usize,
}

impl HostTiming {
    /// Waits for the first byte on UART0 (without taking it), mixing the timer in as it waits.
    pub fn gather(clock: &mut Clock) -> Self {
        let mut seed = [0u8; 32];
        let mut turns = 0usize;
        while Uart::rx_empty() || turns < 64 {
            // Keeps the clock's count of timer periods right while it waits, too.
            let sample = SYST::get_current() ^ (clock.now().as_micros() as u32);
            let byte = &mut seed[turns % 32];
            *byte = (byte.rotate_left(3) ^ sample as u8 ^ (sample >> 8) as u8).wrapping_mul(0x9D);
            turns = turns.wrapping_add(1);
        }
        Self { seed, at: 0 }
    }
}

impl rand_core::TryRng for HostTiming {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut word = [0u8; 4];
        self.try_fill_bytes(&mut word)?;
        Ok(u32::from_le_bytes(word))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut word = [0u8; 8];
        self.try_fill_bytes(&mut word)?;
        Ok(u64::from_le_bytes(word))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for byte in dst {
            *byte = self.seed[self.at % self.seed.len()];
            self.at += 1;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for HostTiming {}
