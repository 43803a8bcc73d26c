//! framelink: framed, sequenced, acknowledged messages over TCP, UDP and serial lines.
//!
//! This facade re-exports the `no_std` protocol core ([`core`], crate `framelink-core`) and the
//! desktop adapters ([`std`], crate `framelink-std`); with the feature `tokio`, the async
//! adapter too (`tokio`, crate `framelink-tokio`). See the README for the tour.
#![deny(missing_docs)]

pub use framelink_core as core;
pub use framelink_std as std;
#[cfg(feature = "tokio")]
pub use framelink_tokio as tokio;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
