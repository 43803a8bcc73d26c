//! A polled driver for the lm3s6965's Ethernet controller (as QEMU's `stellaris` NIC model
//! emulates it), implementing smoltcp's [`Device`].
//!
//! The MAC has 16 registers from 0x4004_8000; this driver uses RIS/IACK 0x00, IM 0x04,
//! RCTL 0x08, TCTL 0x0C, DATA 0x10, IA0 0x14, IA1 0x18, NP 0x34 and TR 0x38. Frames go
//! through FIFOs, one 32-bit word per access to DATA, little-endian:
//!
//! - receive: the first word's low half is the frame's length in the FIFO: 2 (this length) +
//!   the frame + 4 (its FCS); its high half is the frame's first two bytes. NP counts the frames
//!   waiting (QEMU holds up to 31, and holds back further ones until there is room).
//! - transmit: the first word's low half is the frame's length less its 14-byte header, its
//!   high half the frame's first two bytes. With TCTL.CRC the MAC appends the FCS, with
//!   TCTL.PADEN it pads short frames; TR.NEWTX starts the transmission (QEMU sends once the
//!   last word is written, and reads TR as 0).
//!
//! Under QEMU the MAC needs no clock gating and the PHY no setup; silicon also needs the EMAC
//! and PHY clocks (SYSCTL RCGC2) and the MII clock divisor (MDV). The only `unsafe` is in
//! `reg`.

use lm3s6965::interrupt;
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;

const BASE: usize = 0x4004_8000;
const RIS: usize = 0x00; // read: raw interrupt status; write: IACK, 1s clear
const IM: usize = 0x04;
const RCTL: usize = 0x08;
const TCTL: usize = 0x0C;
const DATA: usize = 0x10;
const IA0: usize = 0x14;
const IA1: usize = 0x18;
const NP: usize = 0x34;
const TR: usize = 0x38;

const INT_RX: u32 = 1 << 0;
const RCTL_RXEN: u32 = 1 << 0;
const RCTL_BADCRC: u32 = 1 << 3;
const RCTL_RSTFIFO: u32 = 1 << 4;
const TCTL_TXEN: u32 = 1 << 0;
const TCTL_PADEN: u32 = 1 << 1;
const TCTL_CRC: u32 = 1 << 2;
const TCTL_DUPLEX: u32 = 1 << 3;
const TR_NEWTX: u32 = 1 << 0;

/// NVIC: the Ethernet controller is interrupt 42, bit 10 of the second enable word.
const NVIC_ISER1: usize = 0xE000_E104;
const ETH_IRQ_BIT: u32 = 1 << (42 - 32);

/// The largest frame sent or taken (without its FCS): a 14-byte header and an IPv4 datagram of
/// 576 bytes, the size every IPv4 host must accept, rather than Ethernet's 1500 (1.8 KB less
/// RAM). smoltcp then offers TCP peers a segment size of 536 and sends nothing larger; longer
/// frames received are dropped.
pub const MTU: usize = 14 + 576;
/// A received frame as the FIFO holds it: its length (2), the frame, its FCS (4); whole words.
const RX_BYTES: usize = (2 + MTU + 4).next_multiple_of(4);
/// A frame to send as it goes into the FIFO: its length (2), the frame; whole words.
const TX_BYTES: usize = (2 + MTU).next_multiple_of(4);

/// Volatile access to the registers above.
mod reg {
    pub(super) fn read(address: usize) -> u32 {
        // SAFETY: `address` is one of the MAC or NVIC registers listed in this module: they
        // exist on this chip and are 4-byte aligned. Reading DATA pops a word of the receive
        // FIFO, which `Eth::receive` does only for frames NP says are there.
        unsafe { core::ptr::read_volatile(address as *const u32) }
    }

    pub(super) fn write(address: usize, value: u32) {
        // SAFETY: as for `read`; every value written is one the register documents.
        unsafe { core::ptr::write_volatile(address as *mut u32, value) }
    }
}

/// Room for one received frame as the FIFO gives it.
pub struct RxBuffer([u8; RX_BYTES]);
/// Room for one frame to send.
pub struct TxBuffer([u8; TX_BYTES]);

impl RxBuffer {
    /// Zeroed, for a `static`.
    pub const NEW: Self = Self([0; RX_BYTES]);
}

impl TxBuffer {
    /// Zeroed, for a `static`.
    pub const NEW: Self = Self([0; TX_BYTES]);
}

/// The Ethernet controller, with one frame's room each way. Only one may exist:
/// [`Eth::take`] hands it out once.
pub struct Eth<'a> {
    rx: &'a mut [u8; RX_BYTES],
    tx: &'a mut [u8; TX_BYTES],
}

impl<'a> Eth<'a> {
    /// Resets the receive FIFO, turns on receive and transmit (FCS and padding added by the
    /// MAC) and the receive interrupt (to wake [`wait`](Self::wait)), the first time only.
    pub fn take(rx: &'a mut RxBuffer, tx: &'a mut TxBuffer) -> Option<Self> {
        static TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
        if TAKEN.swap(true, core::sync::atomic::Ordering::AcqRel) {
            return None;
        }
        reg::write(BASE + RCTL, RCTL_RSTFIFO);
        reg::write(BASE + RCTL, RCTL_RXEN | RCTL_BADCRC);
        reg::write(BASE + TCTL, TCTL_TXEN | TCTL_PADEN | TCTL_CRC | TCTL_DUPLEX);
        reg::write(BASE + IM, INT_RX);
        reg::write(NVIC_ISER1, ETH_IRQ_BIT);
        Some(Self { rx: &mut rx.0, tx: &mut tx.0 })
    }

    /// The MAC address the board was given (QEMU: `-nic ...,mac=`, 52:54:00:12:34:56 by
    /// default).
    pub fn mac_address(&self) -> [u8; 6] {
        let (low, high) = (reg::read(BASE + IA0).to_le_bytes(), reg::read(BASE + IA1).to_le_bytes());
        [low[0], low[1], low[2], low[3], high[0], high[1]]
    }

    /// Whether a received frame waits in the FIFO.
    pub fn has_frame(&self) -> bool {
        reg::read(BASE + NP) & 0x3F != 0
    }

    /// Sleeps until a frame arrives or another interrupt (SysTick) fires, unless one waits.
    ///
    /// Interrupts are masked from the check to the WFI, so one that comes between them wakes
    /// the WFI at once instead of being handled before it; its handler runs after. A tick that
    /// came during the sleep is counted as idle (see `clock`).
    pub fn wait(&self) {
        cortex_m::interrupt::free(|_| {
            if !self.has_frame() {
                cortex_m::asm::wfi();
                crate::clock::count_idle_tick();
            }
        });
    }

    /// Reads the next frame out of the FIFO into `rx`; returns its length, or `None` for a
    /// frame too long or too short (its words are read and dropped all the same).
    fn read_frame(&mut self) -> Option<usize> {
        let first = reg::read(BASE + DATA);
        let len = (first & 0xFFFF) as usize;
        // Word by word into 4-byte slots (one store each); words past the buffer are dropped.
        let mut slots = self.rx.chunks_exact_mut(4).filter_map(|slot| <&mut [u8; 4]>::try_from(slot).ok());
        for i in 0..len.div_ceil(4) {
            let word = if i == 0 { first } else { reg::read(BASE + DATA) };
            if let Some(slot) = slots.next() {
                *slot = word.to_le_bytes();
            }
        }
        len.checked_sub(6).filter(|&n| (14..=MTU).contains(&n))
    }
}

/// A received frame: `len` bytes of `rx` from offset 2 (after the length).
pub struct EthRx<'a> {
    rx: &'a [u8; RX_BYTES],
    len: usize,
}

/// Room to send one frame.
pub struct EthTx<'a> {
    buf: &'a mut [u8; TX_BYTES],
}

impl RxToken for EthRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.rx[2..2 + self.len])
    }
}

impl TxToken for EthTx<'_> {
    /// Lays the frame out as the FIFO takes it (its length less the header in the first two
    /// bytes, then the frame) and writes it a word at a time; the bytes of the last word past
    /// the frame are ignored by the MAC.
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.clamp(14, MTU);
        let result = f(&mut self.buf[2..2 + len]);
        self.buf[..2].copy_from_slice(&((len - 14) as u16).to_le_bytes());
        while reg::read(BASE + TR) & TR_NEWTX != 0 {}
        for word in self.buf[..(2 + len).next_multiple_of(4)].chunks_exact(4) {
            reg::write(BASE + DATA, u32::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        reg::write(BASE + TR, TR_NEWTX);
        result
    }
}

/// The receive interrupt only wakes the core: acknowledge it, the main loop reads the frames.
#[interrupt]
fn ETHERNET() {
    reg::write(BASE + RIS, INT_RX);
}

impl Device for Eth<'_> {
    type RxToken<'a>
        = EthRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = EthTx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(EthRx<'_>, EthTx<'_>)> {
        while self.has_frame() {
            if let Some(len) = self.read_frame() {
                return Some((EthRx { rx: self.rx, len }, EthTx { buf: self.tx }));
            }
        }
        None
    }

    /// The transmit FIFO takes a whole frame at once, so there is always room.
    fn transmit(&mut self, _: Instant) -> Option<EthTx<'_>> {
        Some(EthTx { buf: self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(1);
        caps
    }
}
