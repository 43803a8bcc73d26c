//! A UDP server over an `embedded-nal` stack: one session, one peer at a time, behind a
//! [`core::endpoint`](crate::endpoint) that answers everything that needs no session.

use core::cell::Cell;
use core::net::SocketAddr;

use embedded_nal::{UdpFullStack, nb};

use super::{Conn, Interest, NalLink, Received, Wait};
use crate::Instant;
use crate::buffer::Buffer;
use crate::connection::Connection;
use crate::driver::{Clock, Error};
use crate::endpoint::{ANSWER_LEN, Config, CookieKey, Counters, Endpoint, Entry, Route};
use crate::framing::{Encoder, Framing};
use crate::session::{CloseReason, Event, SendError, Session};

/// The peers a [`UdpPeer`] keeps: the one served, and one whose session ended with its CLOSE
/// (a repeated CLOSE gets its CLOSE-ACK again).
type Peers = heapless::LinearMap<SocketAddr, Entry<()>, 2>;

/// A bound UDP socket and its stack, serving one peer at a time: the socket of a [`UdpServer`].
///
/// Every datagram goes through an [`Endpoint`] first: a HELLO from a new address is answered
/// with a RETRY cookie until it proves its address, and only then becomes the peer; see the
/// [module docs](super) for what other addresses get. The peer is forgotten when the session
/// ends.
pub struct UdpPeer<S: UdpFullStack> {
    stack: S,
    socket: S::UdpSocket,
    endpoint: Endpoint<Peers>,
    peer: Option<SocketAddr>,
    /// The time of the current round, for cookies ([`UdpServer`] sets it before each).
    now: Cell<Instant>,
}

impl<S: UdpFullStack> UdpPeer<S> {
    /// A `socket` of `stack`, already bound, making cookies under `key`.
    pub fn new(stack: S, socket: S::UdpSocket, key: CookieKey) -> Self {
        let endpoint = Endpoint::new(key, Peers::new(), Config::new().max_sessions(1));
        Self { stack, socket, endpoint, peer: None, now: Cell::new(Instant::ZERO) }
    }

    /// The peer being served, if any.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// What the socket answered and dropped without the session: stray datagrams, RETRYs and
    /// ERROR Busy refusals.
    pub fn counters(&self) -> Counters {
        self.endpoint.counters()
    }

    /// Sets the time cookies are made and checked at: the start of the current round.
    pub fn set_now(&self, now: Instant) {
        self.now.set(now);
    }

    /// Sends `answer` to `to` if it is not empty and the socket takes it at once (best effort,
    /// like any datagram: a client whose answer is lost asks again).
    fn answer(&mut self, to: SocketAddr, answer: &[u8]) {
        if !answer.is_empty() {
            let _ = self.stack.send_to(&mut self.socket, to, answer);
        }
    }
}

impl<S: UdpFullStack> Conn for UdpPeer<S> {
    type Stack = S;
    type Socket = S::UdpSocket;
    type Error = S::Error;
    const DATAGRAM: bool = true;
    const REOPENS: bool = true;

    fn parts(&mut self) -> (&mut S, &S::UdpSocket) {
        (&mut self.stack, &self.socket)
    }

    fn send(&mut self, bytes: &[u8]) -> nb::Result<usize, Error<S::Error>> {
        if let Some(peer) = self.peer {
            self.stack.send_to(&mut self.socket, peer, bytes).map_err(|e| e.map(Error::Io))?;
        }
        Ok(bytes.len())
    }

    fn receive<E: Encoder>(&mut self, buf: &mut [u8]) -> nb::Result<Received, Error<S::Error>> {
        let (n, from) = self.stack.receive(&mut self.socket, buf).map_err(|e| e.map(Error::Io))?;
        let n = n.min(buf.len());
        let mut answer = [0u8; ANSWER_LEN];
        let routed = match self.endpoint.handle(self.now.get(), from, &buf[..n], &mut answer) {
            Route::Session(()) => true,
            Route::Incoming(incoming) => match self.endpoint.accept(incoming, ()) {
                Ok(()) => true,
                Err(incoming) => {
                    let len = self.endpoint.refuse(incoming, 1, &mut answer);
                    self.answer(from, &answer[..len]);
                    false
                }
            },
            Route::Answer(len) => {
                self.answer(from, &answer[..len]);
                false
            }
            Route::Drop => false,
        };
        if routed {
            self.peer = Some(from);
            Ok(Received::Bytes(n))
        } else {
            Ok(Received::Ignored)
        }
    }

    fn idle(&mut self) {
        if let Some(peer) = self.peer.take() {
            // Whichever way the session ended, a CLOSE repeated with its tag is answered: if the
            // peer closed, our CLOSE-ACK may have been lost.
            let _ = self.endpoint.remove_closed(&peer, self.now.get());
        }
    }

    fn close(mut self) -> Result<S, S::Error> {
        self.stack.close(self.socket)?;
        Ok(self.stack)
    }
}

/// A bound UDP socket serving one peer at a time, session after session.
///
/// One session (a server [`Session`]) serves every peer in turn: when it ends, the next proven
/// HELLO from any address starts a new one. [`next_event`](Self::next_event) reports, for each
/// peer, [`Event::Connected`], its messages and [`Event::Closed`]; a session that never
/// connected (the first handshake timer running out while nobody came, a refused HELLO) is not
/// reported. See the [module docs](super) for datagrams from other addresses.
///
/// An echo server over any UDP stack (the same code runs on `std-embedded-nal` and on firmware):
///
/// ```
/// use embedded_nal::UdpFullStack;
/// use framelink_core::Instant;
/// use framelink_core::connection::Connection;
/// use framelink_core::driver::Error;
/// use framelink_core::endpoint::CookieKey;
/// use framelink_core::framing::DatagramDecoder;
/// use framelink_core::nal::UdpServer;
/// use framelink_core::session::{Config, Event, Session};
///
/// /// `key`: 16 bytes drawn at boot (see [`CookieKey`]).
/// fn echo<S: UdpFullStack>(
///     stack: S,
///     key: [u8; 16],
///     mut now: impl FnMut() -> Instant,
/// ) -> Result<(), Error<S::Error>> {
///     let (mut tx, mut rx, mut packet) = ([0u8; 4096], [0u8; 4096], [0u8; 1200]);
///     let (mut read_buf, mut write_buf) = ([0u8; 1201], [0u8; 1204]);
///     let config = Config::new().max_payload(1187).retransmit(true);
///     let session: Session<&mut [u8]> = Session::server(config, &mut tx[..], &mut rx[..], now());
///     let connection = Connection::new(session, DatagramDecoder::new(1200), &mut packet[..]);
///     let (read_buf, write_buf) = (&mut read_buf[..], &mut write_buf[..]);
///     let mut server = UdpServer::bind(stack, 7878, CookieKey::new(key), connection, read_buf, write_buf)?;
///     // Sleep until something happens or the deadline passes (here: spin).
///     let mut wait = |_deadline: Option<Instant>| {};
///     let mut reply = [0u8; 256];
///     loop {
///         // Connected, messages, Closed: peer after peer.
///         if let Event::Message(message) = server.next_event(&mut now, &mut wait)? {
///             let n = message.len().min(reply.len());
///             reply[..n].copy_from_slice(&message[..n]);
///             server.send(&mut now, &reply[..n], &mut wait)?;
///         }
///     }
/// }
/// ```
pub struct UdpServer<S: UdpFullStack, F, B: Buffer, const W: usize = 16> {
    link: NalLink<UdpPeer<S>, F, B, W>,
    /// `Connected` was reported and its `Closed` not yet.
    connected: bool,
}

impl<S, F, B, const W: usize> UdpServer<S, F, B, W>
where
    S: UdpFullStack,
    F: Framing,
    B: Buffer,
{
    /// Opens a UDP socket of `stack` bound to `port` and serves `connection` (a server session)
    /// on it, making RETRY cookies under `key`. On error the socket is closed.
    pub fn bind(
        mut stack: S,
        port: u16,
        key: CookieKey,
        connection: Connection<F, B, W>,
        read_buf: B,
        write_buf: B,
    ) -> Result<Self, Error<S::Error>> {
        let mut socket = stack.socket().map_err(Error::Io)?;
        if let Err(error) = stack.bind(&mut socket, port) {
            let _ = stack.close(socket);
            return Err(Error::Io(error));
        }
        let link = NalLink::new(UdpPeer::new(stack, socket, key), connection, read_buf, write_buf);
        Ok(Self { link, connected: false })
    }

    /// The next event of the current peer's session; waits for a peer when there is none.
    /// Never fails because a session ended.
    pub fn next_event(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<S, S::UdpSocket>,
    ) -> Result<Event<'_>, Error<S::Error>> {
        loop {
            if self.link.session().has_event() {
                if self.connected {
                    break;
                }
                // Before Connected the session reports nothing else than Connected or Closed.
                if let Some(Event::Connected) = self.link.session_mut().poll_event() {
                    self.connected = true;
                    return Ok(Event::Connected);
                }
                continue;
            }
            self.round(clock, wait)?;
        }
        if self.link.session().is_closed() {
            // The session's last packets (a CLOSE-ACK) go out before its end is reported.
            self.link.flush(clock.now())?;
        }
        match self.link.session_mut().poll_event() {
            Some(event) => {
                if let Event::Closed(_) = event {
                    self.connected = false;
                }
                Ok(event)
            }
            None => Err(Error::Closed(CloseReason::Local)),
        }
    }

    /// Queues `message` for the current peer, polling while the send buffer is full; see
    /// [`NalLink::send`].
    pub fn send(
        &mut self,
        clock: &mut impl Clock,
        message: &[u8],
        wait: &mut impl Wait<S, S::UdpSocket>,
    ) -> Result<(), Error<S::Error>> {
        loop {
            let now = clock.now();
            match self.link.session_mut().send(now, message) {
                Ok(()) => return self.link.flush(now).map(drop),
                Err(SendError::WouldBlock) => self.round(clock, wait)?,
                // The link says why (the session ended, the message is too large).
                Err(_) => return self.link.send(clock, message, wait),
            }
        }
    }

    /// Closes the current peer's session gracefully: waits until everything sent is
    /// acknowledged and the peer confirmed; messages that arrive meanwhile are dropped. The
    /// server goes on serving the next peer.
    pub fn close(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<S, S::UdpSocket>,
    ) -> Result<(), Error<S::Error>> {
        if !self.connected {
            return Ok(());
        }
        self.link.session_mut().close(clock.now());
        loop {
            match self.next_event(clock, wait)? {
                Event::Closed(CloseReason::Local | CloseReason::Peer) => return Ok(()),
                Event::Closed(reason) => return Err(Error::Closed(reason)),
                _ => {}
            }
        }
    }

    /// The peer being served, if any.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.link.conn().peer()
    }

    /// What the server answered and dropped without a session: stray datagrams, RETRYs and
    /// ERROR Busy refusals.
    pub fn counters(&self) -> Counters {
        self.link.conn().counters()
    }

    /// The link underneath, for [`poll`](NalLink::poll), [`drain`](NalLink::drain) and the
    /// session. Call [`UdpPeer::set_now`] before polling it yourself, so cookies go by the
    /// current time.
    pub fn link_mut(&mut self) -> &mut NalLink<UdpPeer<S>, F, B, W> {
        &mut self.link
    }

    /// The session.
    pub fn session(&self) -> &Session<B, W> {
        self.link.session()
    }

    /// Closes the socket and gives back the stack.
    pub fn release(self) -> Result<S, S::Error> {
        self.link.release()
    }

    /// One round: polls at the current time and, if nothing happened, waits (for a datagram,
    /// the socket taking output, or the session's deadline) inside a second poll's receive
    /// step, so that the next round reads the clock, for cookies, after the wait.
    fn round(
        &mut self,
        clock: &mut impl Clock,
        wait: &mut impl Wait<S, S::UdpSocket>,
    ) -> Result<(), Error<S::Error>> {
        let now = clock.now();
        self.link.conn().set_now(now);
        if self.link.poll(now, wait)? || self.link.session().has_event() {
            return Ok(());
        }
        let interest = if self.link.has_output() { Interest::ReadWrite } else { Interest::Read };
        let deadline = self.link.session().poll_timeout();
        let mut wait_first = WaitFirst { wait, interest, deadline };
        self.link.poll(now, &mut wait_first).map(drop)
    }
}

/// A [`Wait`] hook that waits when asked whether to receive, then says no: the round after it
/// receives, at a fresh time.
struct WaitFirst<'w, H> {
    wait: &'w mut H,
    interest: Interest,
    deadline: Option<Instant>,
}

impl<S, K, H: Wait<S, K>> Wait<S, K> for WaitFirst<'_, H> {
    fn wait(&mut self, stack: &mut S, socket: &K, interest: Interest, deadline: Option<Instant>) {
        self.wait.wait(stack, socket, interest, deadline);
    }

    fn may_receive(&mut self, stack: &mut S, socket: &K) -> bool {
        self.wait.wait(stack, socket, self.interest, self.deadline);
        false
    }
}

#[cfg(test)]
mod tests;
