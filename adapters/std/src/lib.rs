//! Desktop adapters for framelink over `std::net` and serial ports.
//!
//! - [`Addr`]: `tcp://host:port`, `udp://host:port`, `tcp+cobs://host:port` (COBS over TCP, for a
//!   serial line bridged to TCP), bare `host:port` (TCP), and serial ports,
//!   `serial:///dev/ttyACM0?baud=115200` or `serial://COM3` ([`SerialSettings`]).
//! - [`Link`]: a connected session, from [`Link::connect`]: send messages, wait for events,
//!   ping, flush, close gracefully; a [`CancelToken`] ends its waits early (Ctrl-C).
//! - [`LinkListener`]: waits for one peer and gives its [`Link`] (the other end of a connect).
//! - [`Server`]: serves many clients at once over any mix of those transports, with limits on
//!   clients, message size, handshake and idle time; the application implements [`Handler`].
//! - [`ServiceClient`]: the test service that `framelink serve` and firmware answer (ECHO,
//!   INFO, STATS, SOURCE, SINK), request by request over a link.
//! - [`StdClock`]: `std::time::Instant` as the core's [`Instant`](framelink_core::Instant).
//! - [`nal`]: the same sessions through the portable embedded-nal driver on `std-embedded-nal`.
//!
//! - [`Relay`]: a userspace impairment relay for UDP (loss, duplication, reordering, delay,
//!   jitter, corruption), since these kernels have no netem.
//!
//! - [`available_ports`]: the serial ports present; [`SerialError`] says why one could not be
//!   opened or was lost.
//!
//! Over `udp://`, `tcp+cobs://` and `serial://` the session retransmits what the transport
//! loses, so every message arrives once and in order there too; over `tcp://` it relies on TCP.
#![deny(missing_docs)]

mod addr;
mod cancel;
mod clock;
mod conn;
mod cookie;
mod error;
mod link;
mod listener;
pub mod nal;
mod relay;
mod serial;
mod server;
mod service_client;
mod sniff;
mod socket;

pub use addr::{Addr, AddrError, ToAddr, Transport};
pub use cancel::CancelToken;
pub use clock::StdClock;
pub use error::LinkError;
pub use framelink_core as core;

/// What framelink-tokio shares with this crate's blocking links: the session type and the
/// session joined to its framing. Not a stable API.
#[doc(hidden)]
pub mod shared {
    pub use crate::conn::{FEED_BATCH, Framed, GATHER, Sess, raise_udp_recv_buffer};
}
/// A pre-shared key for keyed sessions ([`LinkConfig::psk`]).
pub use framelink_core::auth::{Psk, PskError, Suite};
pub use link::{Link, LinkConfig, LinkEvent, LinkEventRef, new_psk};
pub use listener::LinkListener;
pub use relay::{DirectionStats, Relay, RelayConfig, RelayConfigError, RelayHandle, RelayStats};
pub use serial::{
    DataBits, FlowControl, Parity, PortInfo, PortKind, SerialError, SerialSettings, StopBits, available_ports,
};
pub use server::{Handler, PeerInfo, Reply, Server, ServerConfig, ServerHandle, ServerStats};
pub use service_client::{RequestError, ServiceClient, ServiceInfo, Transfer};
pub use sniff::Framing;
