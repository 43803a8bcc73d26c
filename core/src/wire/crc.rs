//! CRC-32C (Castagnoli), the packet checksum.
//!
//! Parameters (the `CRC-32/ISCSI` entry of the CRC catalogue): width 32, polynomial `0x1EDC6F41`
//! (reflected `0x82F63B78`), initial value `0xFFFFFFFF`, input and output reflected, final XOR
//! `0xFFFFFFFF`. The check value of the ASCII string `123456789` is `0xE3069283`.
//!
//! The computation comes from the `crc` crate. With the default feature `fast-crc` it uses a
//! slice-by-16 table (16 KiB of flash, several GB/s on a desktop); without it a 256-entry table
//! (1 KiB), which suits small firmware.

#[cfg(feature = "fast-crc")]
type Table = crc::Table<16>;
#[cfg(not(feature = "fast-crc"))]
type Table = crc::Table<1>;

static CASTAGNOLI: crc::Crc<u32, Table> = crc::Crc::<u32, Table>::new(&crc::CRC_32_ISCSI);

/// The CRC-32C of `data`.
///
/// ```
/// assert_eq!(framelink_core::wire::crc32c(b"123456789"), 0xE306_9283);
/// ```
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// A CRC-32C computed over several pieces, for data that is not contiguous.
pub struct Crc32c {
    digest: crc::Digest<'static, u32, Table>,
}

impl Crc32c {
    /// A digest over no bytes yet.
    pub fn new() -> Self {
        Self { digest: CASTAGNOLI.digest() }
    }

    /// Adds `data` to the digest.
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// The CRC-32C of everything added.
    pub fn finalize(self) -> u32 {
        self.digest.finalize()
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_of_123456789() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn pieces_give_the_same_crc_as_the_whole() {
        let data: [u8; 100] = core::array::from_fn(|i| (i * 7) as u8);
        let mut digest = Crc32c::new();
        digest.update(&data[..33]);
        digest.update(&data[33..]);
        assert_eq!(digest.finalize(), crc32c(&data));
    }

    #[test]
    fn empty_input() {
        assert_eq!(crc32c(&[]), 0);
    }
}
