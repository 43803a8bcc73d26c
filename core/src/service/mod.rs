//! The remote test service: ECHO, SINK, SOURCE, STATS and INFO over an established session.
//!
//! The same `no_std` code answers in firmware and in `framelink serve`, and the desktop tool
//! drives it: `framelink ping` is ECHO, `bench` is SINK (and SOURCE with `--reverse`), `info`
//! is INFO and STATS. Service messages are ordinary session messages whose first byte is
//! [`TAG`] (`0xFA`, never the first byte of UTF-8 text), so text messages and service requests
//! share one session. `docs/PROTOCOL.md` section 14 has the layouts, with hex vectors.
//!
//! - [`ServiceMessage`] parses and writes every message, request or reply;
//! - [`Client`] writes requests and matches replies to them ([`Pending`], [`Reply`]), the
//!   client side without I/O (`framelink_std::ServiceClient` runs it over a link);
//! - [`Responder`] serves requests;
//! - [`ResponderDriver`] runs a responder over a session, as firmware and `framelink serve` do.

mod client;
mod driver;
mod message;
mod responder;
mod stats;

pub use client::{Client, ClientError, ECHO_HEADER, Pending, Reply, SINK_HEADER, SOURCE_REQUEST_LEN};
pub use driver::ResponderDriver;
pub use message::{
    InfoReply, SOURCE_HEADER, ServiceError, ServiceMessage, TAG, check_pattern, fill_pattern, op,
    pattern_byte,
};
pub use responder::{Describe, Handled, LinkState, Responder};
pub use stats::{ServerCounters, StatsReply};
#[cfg(test)]
mod tests;
