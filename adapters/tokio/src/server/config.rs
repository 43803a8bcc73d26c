//! The settings of a [`Server`](super::Server).

use std::time::Duration;

use framelink_std::LinkConfig;

/// Settings of a [`Server`](super::Server): limits, the session settings of every client, and
/// whether it answers the remote test service. The same settings as framelink-std's
/// `ServerConfig`, but for its threads.
///
/// ```
/// use std::time::Duration;
/// use framelink_tokio::ServerConfig;
///
/// let config = ServerConfig::new().max_clients(64).idle_timeout(Duration::from_secs(10));
/// assert_eq!(config.max_clients_value(), 64);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub(super) link: LinkConfig,
    pub(super) max_clients: usize,
    pub(super) responder: Option<(&'static str, &'static str)>,
}

impl ServerConfig {
    /// The default [`max_clients`](Self::max_clients): 1024.
    pub const DEFAULT_MAX_CLIENTS: usize = 1024;

    /// The defaults; see each setter.
    pub fn new() -> Self {
        Self { link: LinkConfig::new(), max_clients: Self::DEFAULT_MAX_CLIENTS, responder: None }
    }

    /// Clients served at once, over every listener, handshakes included (default 1024). A
    /// client beyond the limit gets ERROR Busy (detail: the limit).
    pub fn max_clients(mut self, clients: usize) -> Self {
        self.max_clients = clients;
        self
    }

    /// The largest message a client may send, and the handler may reply (default 256 KiB).
    pub fn max_message(mut self, bytes: u32) -> Self {
        self.link = self.link.max_message(bytes);
        self
    }

    /// End a session after this long without hearing from the client, keepalives included
    /// (default 30 s). The keepalive interval is cut to a third of the timeout when it is
    /// longer, so that a live but quiet client stays.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.link = self.link.idle_timeout(timeout);
        if self.link.keepalive_value() > timeout / 3 {
            self.link = self.link.keepalive(timeout / 3);
        }
        self
    }

    /// Drop a client that has not completed the handshake after this long (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.link = self.link.handshake_timeout(timeout);
        self
    }

    /// Every other session setting at once; replaces those set by
    /// [`max_message`](Self::max_message), [`idle_timeout`](Self::idle_timeout) and
    /// [`handshake_timeout`](Self::handshake_timeout).
    pub fn link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }

    /// Answer the remote test service on every link (default off): ECHO, SINK, SOURCE, STATS
    /// and INFO, by the core's `no_std` responder, introducing itself as `name` running
    /// `software`. Service messages never reach the handler; every other message does.
    pub fn responder(mut self, name: &'static str, software: &'static str) -> Self {
        self.responder = Some((name, software));
        self
    }

    /// The configured client limit.
    pub fn max_clients_value(&self) -> usize {
        self.max_clients
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
