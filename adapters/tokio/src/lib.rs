//! framelink for tokio: an async [`Link`] and a [`Server`] that serves each client in a task
//! of its own.
//!
//! - [`Link::connect`] takes the addresses of the blocking adapter, framelink-std
//!   (`"tcp://host:port"`, `udp://`, `tcp+cobs://`, `serial:///dev/ttyACM0`, or an [`Addr`]),
//!   and [`Link::connect_with`] its [`LinkConfig`] too; a link hands out [`LinkEvent`]s and
//!   fails with [`LinkError`]s. A program moving from the blocking [`framelink_std::Link`] to this
//!   one keeps its addresses, settings (a pre-shared key, [`LinkConfig::psk`], included) and
//!   error handling; only the calls gain `.await`.
//! - [`Server::bind`] listens on TCP, TCP+COBS and UDP; [`Server::serve`] calls an async
//!   handler with each connected client's [`Link`], with a client limit, handshake and idle
//!   timeouts, graceful [`shutdown`](ServerHandle::shutdown), and, if asked, the remote test
//!   service (`framelink ping`, `bench`, `info` work against it).
//!
//! Both are thin drivers of the core's sans-I/O step,
//! [`Connection`](framelink_core::connection::Connection): bytes from the socket go to
//! `handle_bytes`, the session's deadline (`poll_timeout`) is awaited with
//! `tokio::time::sleep_until` beside the read, and what `poll_transmit` (or `poll_datagram`)
//! gives is written. The session buffers are `Vec`s that grow as messages need, within the
//! configured limits. UDP servers tell their clients apart with the core's
//! [`endpoint`](framelink_core::endpoint), as framelink-std's server does.
//!
//! # Example
//!
//! ```
//! use framelink_tokio::{Link, LinkEvent, Server, ServerConfig};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = ServerConfig::new().max_clients(100).responder("echo", "1.0");
//!     let server = Server::bind(&["udp://127.0.0.1:0"], config).await?;
//!     let addr = server.local_addrs()[0].clone();
//!     // Echo every message; the test service (ping, info) is answered by the link itself.
//!     let handle = server.serve(|mut link: Link| async move {
//!         while let Ok(Some(message)) = link.recv_message().await {
//!             if link.send(&message).await.is_err() {
//!                 return;
//!             }
//!         }
//!     });
//!
//!     let mut link = Link::connect(&addr).await?;
//!     link.send(b"Hello, Server!").await?;
//!     assert_eq!(link.recv().await?, LinkEvent::Message(b"Hello, Server!".to_vec()));
//!     let token = link.ping(0).await?;
//!     assert!(matches!(link.recv().await?, LinkEvent::Pong { token: t, .. } if t == token));
//!     link.close().await?;
//!     handle.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! `cargo run -p framelink-tokio --example tokio_echo` runs the same with a few messages and a ping.
//!
//! # This crate or the core's `io_async` driver?
//!
//! The core has an async driver of its own, `framelink_core::io_async::AsyncLink` (feature
//! `async`), generic over `embedded_io_async::{Read, Write}`; with `embedded-io-adapters`
//! (feature `tokio-1`) a tokio `TcpStream` or serial stream becomes such a transport. Both run
//! the same session step, so they behave alike on the wire. Pick:
//!
//! - **this crate** on a desktop or server with tokio: it connects by address (DNS, the
//!   transport's framing chosen from the scheme), runs UDP (a connected socket for a client,
//!   the endpoint's demultiplexing for a server: embedded-io has no datagrams), has a server
//!   with limits and the test service, owned events and std errors, reads cancel-safely, and
//!   lets buffers grow and shrink with the messages. It costs std, tokio and an allocator.
//! - **`io_async`** where the same code must also run in firmware (embassy) or on another
//!   executor: fixed buffers chosen at compile time, no allocator, no runtime of its own; you
//!   bring the transport, the clock and the sleep (its `Clock` and `Sleep` traits), and there
//!   is no UDP, no server and no connect-by-address. Its transport's `read` must be
//!   cancel-safe, and its messages are lent, not copied.
//!
//! # Serial ports
//!
//! `serial://` links open the port through `tokio-serial` (epoll on Unix, overlapped I/O on
//! Windows) with the settings of the address, and carry COBS with retransmission, as the
//! blocking adapter does. A port that cannot be opened fails with [`LinkError::Io`] naming
//! the port and the cause (the blocking adapter's `LinkError::Serial` is not used). The server
//! serves serial ports too, one session at a time on each (see [`Server::bind`]), and opens a
//! port that went away again once it is back.
#![deny(missing_docs)]

mod io;
mod link;
mod serial;
mod server;
mod service;

pub use framelink_std::{Addr, AddrError, LinkConfig, LinkError, LinkEvent, Psk, ToAddr, Transport};
pub use link::Link;
pub use server::{Server, ServerConfig, ServerHandle};
