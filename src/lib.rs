//! framelink: framed, sequenced, acknowledged messages over TCP, UDP and serial lines.
//!
//! Each message arrives once, whole and in order, or the link says why it could not: framelink
//! frames every message with a CRC-32C, numbers and acknowledges it, repairs what UDP and serial
//! lines lose, limits what is in flight by the receiver's credit, pings a silent peer and closes
//! gracefully. The protocol is one `no_std` core without allocator or `unsafe`, so a
//! microcontroller and a desktop run the same code.
//!
//! # A server and a client
//!
//! ```
//! use std::time::Duration;
//! use framelink::std::{Link, LinkEvent, PeerInfo, Reply, Server, ServerConfig};
//!
//! // A server on a free loopback port that answers each message with its length.
//! let server = Server::bind(&["tcp://127.0.0.1:0"], ServerConfig::new())?;
//! let addr = server.local_addrs()[0].clone();
//! let handle = server.spawn(|_: &PeerInfo, message: &[u8], reply: &mut Reply<'_>| {
//!     let _ = reply.send(format!("{} bytes", message.len()).as_bytes());
//! })?;
//!
//! // A client: connect, send, receive, close.
//! let mut link = Link::connect(&addr)?; // or Link::connect("tcp://127.0.0.1:7878")
//! link.send(b"Hello, Server!")?;
//! let reply = link.next_event(Some(Duration::from_secs(5)))?;
//! assert_eq!(reply, Some(LinkEvent::Message(b"14 bytes".to_vec())));
//! link.close()?;
//! handle.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same code runs over `udp://`, `tcp+cobs://` (a serial line bridged to TCP) and
//! `serial:///dev/ttyACM0?baud=115200`; see [`std::Link`] for what each call waits for,
//! [`std::LinkConfig`] for the limits and timeouts, and [`std::Server`] for the server's.
//!
//! # Talking to the test service
//!
//! `framelink serve` and the firmware example answer a small test service (ECHO, INFO, STATS,
//! SOURCE, SINK); [`std::ServiceClient`] speaks it from code:
//!
//! ```
//! use framelink::std::{PeerInfo, Reply, Server, ServerConfig, ServiceClient};
//!
//! let config = ServerConfig::new().responder("example", "1.0");
//! let handle = Server::bind(&["udp://127.0.0.1:0"], config)?
//!     .spawn(|_: &PeerInfo, _: &[u8], _: &mut Reply<'_>| {})?;
//!
//! let mut client = ServiceClient::connect(&handle.local_addrs()[0])?;
//! println!("round trip {:?}", client.ping(64)?);
//! println!("{}", client.info()?.name);
//! println!("{:.0} bit/s", client.source(1_000_000)?.bits_per_second());
//! client.close()?;
//! handle.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The core, without I/O
//!
//! Under the adapters, [`core::session::Session`] is a state machine fed bytes and time that
//! hands back bytes to send and events; firmware drives it over a UART with [`core::io`], and
//! any program can drive it over any pipe. Two sessions joined by hand:
//!
//! ```
//! use framelink::core::session::{Config, Event, Session};
//! use framelink::core::wire::Repr;
//! use framelink::core::Instant;
//!
//! type Peer = Session<[u8; 2048]>;
//!
//! fn pump(from: &mut Peer, to: &mut Peer, now: Instant) {
//!     let mut buf = [0u8; 1100];
//!     while let Some(len) = from.poll_transmit(now, &mut buf).unwrap() {
//!         to.handle_packet(now, &Repr::parse(&buf[..len]).unwrap());
//!     }
//! }
//!
//! let now = Instant::ZERO;
//! let mut client = Peer::client(Config::new(), 0x2A, [0; 2048], [0; 2048], now);
//! let mut server = Peer::server(Config::new(), [0; 2048], [0; 2048], now);
//! pump(&mut client, &mut server, now); // HELLO
//! pump(&mut server, &mut client, now); // HELLO-ACK
//! assert_eq!(client.poll_event(), Some(Event::Connected));
//! assert_eq!(server.poll_event(), Some(Event::Connected));
//!
//! client.send(now, b"Hello, Server!").unwrap();
//! pump(&mut client, &mut server, now);
//! assert_eq!(server.poll_event(), Some(Event::Message(b"Hello, Server!")));
//! ```
//!
//! # Crates and features
//!
//! | | |
//! |---|---|
//! | [`core`] (crate `framelink-core`) | wire format, framings, the session, drivers over `embedded-io` and `embedded-nal`, the test service; `no_std`, no allocator |
//! | [`std`] (crate `framelink-std`) | links, servers, the service client and a lossy UDP relay over `std::net` and serial ports |
//! | `tokio` (feature `tokio`, crate `framelink-tokio`) | an async link and server for tokio, with the same addresses and settings |
//! | feature `cli` (default) | the `framelink` command line tool; a library turns it off with `default-features = false`, and then depends on neither clap, serde nor ctrlc |
//! | feature `serde` | `serde::Serialize` on the test service's replies |
//!
//! The wire format is specified in `docs/PROTOCOL.md`, and the README tours the tool.
#![deny(missing_docs)]

pub use framelink_core as core;
pub use framelink_std as std;
#[cfg(feature = "tokio")]
pub use framelink_tokio as tokio;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
