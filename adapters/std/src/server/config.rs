//! The settings of a [`Server`](super::Server).

use std::thread;
use std::time::Duration;

use crate::LinkConfig;

/// Settings of a [`Server`](super::Server): limits, and the session settings of every client.
///
/// ```
/// use std::time::Duration;
/// use framelink_std::ServerConfig;
///
/// let config = ServerConfig::new().max_clients(64).max_message(1 << 20).idle_timeout(Duration::from_secs(10));
/// assert_eq!(config.max_clients_value(), 64);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub(super) link: LinkConfig,
    pub(super) max_clients: usize,
    pub(super) event_loops: usize,
    pub(super) stack_size: usize,
    pub(super) responder: Option<(&'static str, &'static str)>,
    pub(super) reopen_serial: bool,
}

impl ServerConfig {
    /// The default [`max_clients`](Self::max_clients): 1024.
    pub const DEFAULT_MAX_CLIENTS: usize = 1024;

    /// The defaults; see each setter.
    pub fn new() -> Self {
        Self {
            link: LinkConfig::new(),
            max_clients: Self::DEFAULT_MAX_CLIENTS,
            event_loops: 0,
            stack_size: 1 << 20,
            responder: None,
            reopen_serial: false,
        }
    }

    /// Sessions served at once, over every listener (default 1024). A client beyond the limit
    /// gets ERROR Busy (detail: the limit) and is disconnected. Each TCP client also takes a
    /// file descriptor: keep it under the process's limit (`ulimit -n`).
    pub fn max_clients(mut self, clients: usize) -> Self {
        self.max_clients = clients;
        self
    }

    /// Wait for a serial port that went away (a USB device unplugged or reset) and serve it
    /// again once it is back, instead of stopping that listener (default: stop, reported by
    /// [`ServerHandle::take_failure`](crate::ServerHandle::take_failure)). The server tries to
    /// open it again after 100 ms, then ever less often, at most every 2 s; the handler hears
    /// of each change through [`Handler::on_serial_port`](crate::Handler::on_serial_port).
    pub fn reopen_serial(mut self, reopen: bool) -> Self {
        self.reopen_serial = reopen;
        self
    }

    /// The largest message a client may send, and the handler may reply (default 256 KiB).
    /// Announced in the handshake; larger ones are refused by the session (ERROR message too
    /// large). It bounds each client's two session buffers (they grow as messages need, up to
    /// this + 64 KiB each, + 1 MiB on TCP); see [`Server`](super::Server) for the memory a client takes.
    pub fn max_message(mut self, bytes: u32) -> Self {
        self.link = self.link.max_message(bytes);
        self
    }

    /// End a session after this long without hearing from the client, keepalives included
    /// (default 30 s): a vanished client is dropped. Live clients answer the server's
    /// keepalive PINGs, so an idle but alive client stays: the keepalive interval is cut to
    /// a third of the timeout when it is longer.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.link = self.link.idle_timeout(timeout);
        if self.link.keepalive > timeout / 3 {
            self.link = self.link.keepalive(timeout / 3);
        }
        self
    }

    /// Drop a client that has not completed the handshake after this long (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.link = self.link.handshake_timeout(timeout);
        self
    }

    /// Every other session setting at once (keepalive, close timeout, window, payload size);
    /// replaces those set by [`max_message`](Self::max_message),
    /// [`idle_timeout`](Self::idle_timeout) and [`handshake_timeout`](Self::handshake_timeout).
    pub fn link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }

    /// Answer the remote test service on every session (default off): ECHO, SINK, SOURCE,
    /// STATS and INFO, by the same `no_std` responder firmware links
    /// ([`framelink_core::service`]), introducing itself as `name` running `software`. Service
    /// messages never reach the handler; every other message does.
    pub fn responder(mut self, name: &'static str, software: &'static str) -> Self {
        self.responder = Some((name, software));
        self
    }

    /// Event-loop threads serving the TCP and TCP+COBS clients (default 0: one per core, as
    /// [`std::thread::available_parallelism`] tells). Each owns the clients it was handed, and
    /// runs their handler calls; see [`Server`](super::Server).
    pub fn event_loops(mut self, threads: usize) -> Self {
        self.event_loops = threads;
        self
    }

    /// Stack size of each server thread, where the handler runs (default 1 MiB).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// The configured client limit.
    pub fn max_clients_value(&self) -> usize {
        self.max_clients
    }

    /// The event loops the server runs: [`event_loops`](Self::event_loops), or one per core.
    pub fn event_loops_value(&self) -> usize {
        match self.event_loops {
            0 => thread::available_parallelism().map_or(1, usize::from),
            threads => threads,
        }
    }

    /// The session settings of every client.
    pub fn link_config(&self) -> &LinkConfig {
        &self.link
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self::new()
    }
}
