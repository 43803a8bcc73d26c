//! Desktop adapters for framelink over `std::net`.
//!
//! This crate is the home of the TCP, UDP and COBS-over-TCP bindings of the `no_std`
//! [`framelink_core`] session; for now it only re-exports the core.
#![deny(missing_docs)]

pub use framelink_core as core;
