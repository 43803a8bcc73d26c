//! What the application implements ([`Handler`]) and what it is handed: who the client is
//! ([`PeerInfo`]) and where its answers go ([`Reply`]).

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;

use framelink_core::Instant;
use framelink_core::session::{CloseReason, SendError, State};

use crate::conn::Sess;
use crate::{Addr, LinkError, Transport};

/// An outbox that grew beyond this is given back to the allocator once empty (an idle client
/// keeps no more for its replies).
const OUTBOX_KEEP: usize = 4096;

/// Who a client is, as the [`Handler`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// A number unique within the server, counting from 1.
    pub id: u64,
    /// The client's address.
    pub addr: SocketAddr,
    /// The server's address this client reached.
    pub local: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// The session id the client chose (0 before the handshake).
    pub session_id: u32,
    /// The serial port, for a peer on one (`addr` and `local` are then `0.0.0.0:0`).
    pub port: Option<String>,
}

impl fmt::Display for PeerInfo {
    /// `tcp://127.0.0.1:50210 (#3)`, `serial:///dev/ttyACM0 (#1)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.port {
            Some(port) => write!(f, "serial://{port} (#{})", self.id),
            None => write!(f, "{}://{} (#{})", self.transport.scheme(), self.addr, self.id),
        }
    }
}

/// What the application does with its clients. Every method is called on the thread serving
/// that client: its event loop (TCP, TCP+COBS), its socket's thread (UDP) or its port's
/// thread (serial), in order for each client. A call that takes long delays the other clients
/// of that thread (see [`Server`](super::Server)).
///
/// A closure `Fn(&PeerInfo, &[u8], &mut Reply<'_>)` is a handler that only handles messages.
pub trait Handler: Send + Sync + 'static {
    /// A client completed the handshake.
    fn on_connect(&self, peer: &PeerInfo) {
        let _ = peer;
    }

    /// A whole message from `peer`, delivered once and in order. Answer through `reply`.
    fn on_message(&self, peer: &PeerInfo, message: &[u8], reply: &mut Reply<'_>);

    /// The session of a connected client ended: `Ok` with the reason the session gives
    /// (`CloseReason::Peer` for a graceful close by the client, `CloseReason::Local` for one by
    /// the server), or `Err` when the connection broke first.
    fn on_close(&self, peer: &PeerInfo, reason: Result<CloseReason, &LinkError>) {
        let _ = (peer, reason);
    }

    /// With [`ServerConfig::reopen_serial`](crate::ServerConfig::reopen_serial): the serial
    /// port at `addr` went away (`Err`, why) and is being waited for, or is back and served
    /// again (`Ok`). Called on the port's thread.
    fn on_serial_port(&self, addr: &Addr, change: Result<(), &LinkError>) {
        let _ = (addr, change);
    }
}

impl<F> Handler for F
where
    F: Fn(&PeerInfo, &[u8], &mut Reply<'_>) + Send + Sync + 'static,
{
    fn on_message(&self, peer: &PeerInfo, message: &[u8], reply: &mut Reply<'_>) {
        self(peer, message, reply)
    }
}

/// Messages for the client, queued in order, waiting for room in the session's send buffer.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pub(super) bytes: Vec<u8>,
    pub(super) lens: VecDeque<usize>,
    pub(super) head: usize,
    pub(super) close: bool,
}

impl Outbox {
    pub(super) fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Moves queued messages into the session while they fit.
    pub(super) fn pump(&mut self, session: &mut Sess, now: Instant) {
        while let Some(&len) = self.lens.front() {
            match session.send(now, &self.bytes[self.head..self.head + len]) {
                Ok(()) => {
                    self.head += len;
                    self.lens.pop_front();
                }
                Err(SendError::WouldBlock) => return,
                // Closing or closed: nothing more can go.
                Err(_) => self.lens.clear(),
            }
        }
        self.bytes.clear();
        self.head = 0;
        if self.bytes.capacity() > OUTBOX_KEEP {
            self.bytes = Vec::new();
            self.lens = VecDeque::new();
        }
        if std::mem::take(&mut self.close) {
            session.close(now);
        }
    }
}

/// Answers to the client whose message is being handled.
///
/// Replies are never lost: what does not fit the session's send buffer waits in memory, and the
/// client's next message is handled only once every reply is in the send buffer (so a client
/// that does not read its replies is slowed down, not answered with errors).
#[derive(Debug)]
pub struct Reply<'a> {
    pub(super) outbox: &'a mut Outbox,
    pub(super) state: State,
    pub(super) max: usize,
}

impl Reply<'_> {
    /// Queues `message` for the client, whole and in order after earlier replies.
    ///
    /// Fails, queuing nothing, when the message is larger than the client accepts
    /// ([`SendError::TooLarge`]) or the session is closing.
    pub fn send(&mut self, message: &[u8]) -> Result<(), SendError> {
        match self.state {
            State::Established if !self.outbox.close => {}
            State::Closed => return Err(SendError::Closed),
            _ => return Err(SendError::Closing),
        }
        if message.len() > self.max {
            return Err(SendError::TooLarge { max: self.max });
        }
        self.outbox.bytes.extend_from_slice(message);
        self.outbox.lens.push_back(message.len());
        Ok(())
    }

    /// Closes the session gracefully once the replies queued so far are delivered.
    pub fn close(&mut self) {
        self.outbox.close = true;
    }

    /// The largest message [`send`](Self::send) takes.
    pub fn max_message(&self) -> usize {
        self.max
    }
}
