//! framelink-core: framed, sequenced, acknowledged messages for firmware and desktops.
//!
//! `no_std`, no allocator, no `unsafe`. Three layers, each usable alone:
//!
//! - [`buffer`]: the storage every buffer is made of (fixed arrays, or growable vectors with
//!   the `alloc` feature);
//! - [`wire`]: the packet format (a 13-byte envelope with a CRC-32C) and its payloads;
//! - [`framing`]: incremental decoders and encoders that carry packets over a byte stream
//!   (length-delimited for TCP, COBS for serial lines) or datagrams (UDP);
//! - [`session`]: a sans-I/O state machine (handshake, sequenced data, acknowledgements,
//!   flow control, keepalive, graceful close) fed bytes and time, handing back bytes and events;
//! - [`endpoint`]: datagram demultiplexing for UDP servers (session tags, RETRY cookies, the
//!   session table), without I/O;
//! - [`connection`]: a session joined to its framing, the sans-I/O step every driver loops
//!   over;
//! - [`io`]: a blocking driver over `embedded-io` streams (UART, TCP);
//! - `io_async` (feature `async`): the same over `embedded-io-async`;
//! - `nal` (feature `nal`): client and server over `embedded-nal` TCP and UDP sockets;
//! - [`service`]: the remote test service (ECHO, SINK, SOURCE, STATS, INFO) and its responder;
//! - `auth` (feature `auth`): keyed sessions, a pre-shared key that authenticates and seals
//!   every packet.
//!
//! The protocol is specified in `docs/PROTOCOL.md`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;
#[cfg(test)]
extern crate std;

// Host test binaries built with `defmt` need a global logger to link.
#[cfg(all(test, feature = "defmt"))]
use framelink_defmt_sink as _;

#[macro_use]
mod log;

#[cfg(feature = "auth")]
pub mod auth;
pub mod buffer;
pub mod connection;
pub mod driver;
pub mod endpoint;
pub mod framing;
pub mod io;
#[cfg(feature = "async")]
pub mod io_async;
#[cfg(feature = "nal")]
pub mod nal;
pub mod service;
pub mod session;
pub mod time;
pub mod wire;

pub use time::Instant;

/// The `embedded-io` crate the drivers are written against; implement its traits from here.
pub use embedded_io;
/// The `embedded-io-async` crate the async driver is written against.
#[cfg(feature = "async")]
pub use embedded_io_async;
