//! Logging through `defmt` when the `defmt` feature is on; nothing at all when it is off.
//!
//! The level is chosen at build time with `DEFMT_LOG` (for example `DEFMT_LOG=debug`); levels
//! below it are compiled out.

macro_rules! trace {
    ($($arg:tt)*) => {
        #[cfg(feature = "defmt")]
        defmt::trace!($($arg)*);
    };
}

macro_rules! debug {
    ($($arg:tt)*) => {
        #[cfg(feature = "defmt")]
        defmt::debug!($($arg)*);
    };
}

macro_rules! warn {
    ($($arg:tt)*) => {
        #[cfg(feature = "defmt")]
        defmt::warn!($($arg)*);
    };
}
