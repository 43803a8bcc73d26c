//! framelink: framed, sequenced, acknowledged messages over TCP, UDP and serial lines.
//!
//! This facade re-exports the `no_std` protocol core ([`core`], crate `framelink-core`) and the
//! desktop adapters ([`std`], crate `framelink-std`). See the README for the tour.
#![deny(missing_docs)]

pub use framelink_core as core;
pub use framelink_std as std;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
