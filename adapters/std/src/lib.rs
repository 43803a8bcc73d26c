//! Desktop adapters for framelink over `std::net`.
//!
//! - [`Addr`]: `tcp://host:port`, `udp://host:port`, `tcp+cobs://host:port` (COBS over TCP, for a
//!   serial line bridged to TCP) and bare `host:port` (TCP).
//! - [`Link`]: a connected session, from [`Link::connect`]: send messages, wait for events,
//!   ping, flush, close gracefully.
//! - [`Server`]: serves many clients at once over any mix of those transports, with limits on
//!   clients, message size, handshake and idle time; the application implements [`Handler`].
//! - [`StdClock`]: `std::time::Instant` as the core's [`Instant`](framelink_core::Instant).
//!
//! UDP is not loss-tolerant yet (retransmission is a later protocol mode): a lost datagram stalls
//! a link until [`LinkError::Stalled`] or the idle timeout. Loopback rarely loses.
#![deny(missing_docs)]

mod addr;
mod clock;
mod conn;
mod error;
mod link;
mod relay;
mod server;

pub use addr::{Addr, AddrError, Transport};
pub use clock::StdClock;
pub use error::LinkError;
pub use framelink_core as core;
pub use link::{Link, LinkConfig, LinkEvent, LinkEventRef};
pub use relay::{DirectionStats, Relay, RelayConfig, RelayConfigError, RelayHandle, RelayStats};
pub use server::{Handler, PeerInfo, Reply, Server, ServerConfig, ServerHandle, ServerStats};
