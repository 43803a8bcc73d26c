//! Desktop adapters for framelink over `std::net`.
//!
//! - [`Addr`]: `tcp://host:port`, `udp://host:port`, `tcp+cobs://host:port` (COBS over TCP, for a
//!   serial line bridged to TCP) and bare `host:port` (TCP).
#![deny(missing_docs)]

mod addr;

pub use addr::{Addr, AddrError, Transport};
pub use framelink_core as core;
