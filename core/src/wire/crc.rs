//! CRC-32C (Castagnoli), the packet checksum.
//!
//! Parameters (the `CRC-32/ISCSI` entry of the CRC catalogue): width 32, polynomial `0x1EDC6F41`
//! (reflected `0x82F63B78`), initial value `0xFFFFFFFF`, input and output reflected, final XOR
//! `0xFFFFFFFF`. The check value of the ASCII string `123456789` is `0xE3069283`.
//!
//! Two implementations give the same values:
//!
//! - **portable** ([`crc32c_portable`]), from the `crc` crate: with the default feature
//!   `fast-crc` a slice-by-16 table (16 KiB of flash, a few GB/s on a desktop); with `crc-table`
//!   alone a 256-entry table (1 KiB); with neither, no table at all, eight shifts per byte
//!   (the smallest code, and fast enough for a UART: what the firmware example uses);
//! - **hardware**, with the feature `hw-crc` on hosts with an operating system and an
//!   `x86_64` or `aarch64` CPU: the `crc-fast` crate, which picks at run time the fastest code the
//!   CPU has (carry-less multiply folding with PCLMULQDQ / VPCLMULQDQ / AVX-512 or ARMv8 PMULL,
//!   fused with the SSE4.2 or ARMv8 CRC instructions) and a table otherwise. On a Zen 1 EPYC it
//!   ran 23-53 GiB/s on 1-64 KiB where the CRC instructions alone (the `crc32c` crate) ran 3-24.
//!   That crate needs `std`; on any other target (firmware, `*-none` targets) the feature changes
//!   nothing and the portable code is used.
//!
//! [`crc32c()`] and [`Crc32c`] use the hardware path where it is built, the portable one
//! elsewhere; [`HW_CRC`] tells which.

#[cfg(feature = "fast-crc")]
type Table = crc::Table<16>;
#[cfg(all(feature = "crc-table", not(feature = "fast-crc")))]
type Table = crc::Table<1>;
#[cfg(not(any(feature = "crc-table", feature = "fast-crc")))]
type Table = crc::NoTable;

static CASTAGNOLI: crc::Crc<u32, Table> = crc::Crc::<u32, Table>::new(&crc::CRC_32_ISCSI);

/// Whether [`crc32c()`] runs the `crc-fast` crate (feature `hw-crc` on an `x86_64` or `aarch64`
/// host with an OS), which uses the CPU's carry-less multiply and CRC instructions when it has
/// them.
pub const HW_CRC: bool = cfg!(all(
    feature = "hw-crc",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(target_os = "none")
));

/// The CRC-32C of `data`, by the hardware where [`HW_CRC`] says so, else by the portable table.
///
/// ```
/// assert_eq!(framelink_core::wire::crc32c(b"123456789"), 0xE306_9283);
/// ```
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    imp::append(imp::START, data)
}

/// The CRC-32C of `data` by the portable table code, whatever the features: what firmware
/// runs, and the reference the hardware path is tested against.
///
/// ```
/// assert_eq!(framelink_core::wire::crc32c_portable(b"123456789"), 0xE306_9283);
/// ```
pub fn crc32c_portable(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// A CRC-32C computed over several pieces, for data that is not contiguous; the same path as
/// [`crc32c()`].
pub struct Crc32c {
    state: imp::State,
}

impl Crc32c {
    /// A digest over no bytes yet.
    pub fn new() -> Self {
        Self { state: imp::START }
    }

    /// Adds `data` to the digest.
    pub fn update(&mut self, data: &[u8]) {
        self.state = imp::append(self.state, data);
    }

    /// The CRC-32C of everything added.
    pub fn finalize(self) -> u32 {
        imp::finish(self.state)
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

/// The hardware path: `crc-fast`, resumed from the finished CRC of what came before.
#[cfg(all(
    feature = "hw-crc",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(target_os = "none")
))]
mod imp {
    use ::crc_fast::{CrcAlgorithm, Digest};

    pub(super) type State = u32;
    pub(super) const START: State = 0;

    #[inline]
    pub(super) fn append(state: State, data: &[u8]) -> State {
        if state == START {
            // A finished CRC of 0 leaves the register at its initial value, so the one-shot
            // entry (no digest to set up: the common case, one packet) is exact here.
            return ::crc_fast::crc32_iscsi(data);
        }
        // The register after what came before is the finished CRC with the final XOR undone.
        let mut digest = Digest::new_with_init_state(CrcAlgorithm::Crc32Iscsi, u64::from(!state));
        digest.update(data);
        digest.finalize() as u32
    }

    pub(super) fn finish(state: State) -> u32 {
        state
    }
}

/// The portable path: the `crc` crate's table update on the raw register.
#[cfg(not(all(
    feature = "hw-crc",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(target_os = "none")
)))]
mod imp {
    pub(super) type State = u32;
    pub(super) const START: State = 0;

    #[inline]
    pub(super) fn append(state: State, data: &[u8]) -> State {
        // The register after what came before is the finished CRC inverted; `digest_with_initial`
        // takes it unreflected.
        let mut digest = super::CASTAGNOLI.digest_with_initial((state ^ 0xFFFF_FFFF).reverse_bits());
        digest.update(data);
        digest.finalize()
    }

    pub(super) fn finish(state: State) -> u32 {
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs of every length up to 300 (the hardware path splits at 8, 256 and more bytes),
    /// at every alignment of the first 16.
    fn inputs() -> impl Iterator<Item = &'static [u8]> {
        static DATA: [u8; 316] = {
            let mut data = [0u8; 316];
            let mut i = 0;
            while i < data.len() {
                data[i] = (i * 131 + 7) as u8;
                i += 1;
            }
            data
        };
        (0..16).flat_map(|start| (0..=300).map(move |len| &DATA[start..start + len]))
    }

    #[test]
    fn check_value_of_123456789() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_portable(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn both_paths_agree_on_every_length_and_alignment() {
        for data in inputs() {
            assert_eq!(crc32c(data), crc32c_portable(data), "{} bytes", data.len());
        }
    }

    #[test]
    fn pieces_give_the_same_crc_as_the_whole() {
        let data: [u8; 100] = core::array::from_fn(|i| (i * 7) as u8);
        for split in [0, 1, 33, 99, 100] {
            let mut digest = Crc32c::new();
            digest.update(&data[..split]);
            digest.update(&data[split..]);
            assert_eq!(digest.finalize(), crc32c_portable(&data), "split at {split}");
        }
    }

    /// Large inputs take other code paths in the hardware crate (folding over 4 KiB and more).
    #[test]
    #[cfg_attr(miri, ignore = "slow under the interpreter")]
    fn both_paths_agree_on_large_inputs_whole_and_in_pieces() {
        let data: [u8; 70_000] = core::array::from_fn(|i| (i * 31 + (i >> 8)) as u8);
        for len in [1023, 4096, 4097, 16_385, 65_536, 70_000] {
            let expected = crc32c_portable(&data[..len]);
            assert_eq!(crc32c(&data[..len]), expected, "{len} bytes");
            let mut digest = Crc32c::new();
            digest.update(&data[..len / 3]);
            digest.update(&data[len / 3..len]);
            assert_eq!(digest.finalize(), expected, "{len} bytes in two pieces");
        }
    }

    #[test]
    fn empty_input() {
        assert_eq!(crc32c(&[]), 0);
        assert_eq!(crc32c_portable(&[]), 0);
        assert_eq!(Crc32c::new().finalize(), 0);
    }

    #[test]
    fn hardware_path_is_built_where_the_feature_and_target_allow() {
        let expected = cfg!(feature = "hw-crc") && cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));
        assert_eq!(HW_CRC, expected);
    }
}
