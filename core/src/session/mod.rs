//! The sans-I/O session: handshake, sequenced data, acknowledgements, flow control, keepalive
//! and graceful close.
//!
//! A [`Session`] never touches a socket or a clock. The driver (a loop over a UART, a TCP
//! stream or a UDP socket) feeds it what arrived and the time, and asks it what to send, when to
//! wake up, and what happened. The same code runs in firmware and on desktops.
//!
//! # The driver loop
//!
//! The methods fall into four groups:
//!
//! - input: [`handle_packet`](Session::handle_packet) for each decoded packet,
//!   [`handle_decode_error`](Session::handle_decode_error) for each frame the decoder rejected,
//!   [`handle_timeout`](Session::handle_timeout) when the deadline passes;
//! - application calls: [`send`](Session::send), [`ping`](Session::ping),
//!   [`close`](Session::close);
//! - output, drained after every input or application call, in this order:
//!   [`poll_transmit`](Session::poll_transmit) until it returns `None`,
//!   [`poll_event`](Session::poll_event) until it returns `None`, then
//!   [`poll_timeout`](Session::poll_timeout) for the next deadline;
//! - getters: [`state`](Session::state), [`stats`](Session::stats), [`rtt`](Session::rtt), ...
//!
//! `now` must never go backwards between calls.
//!
//! ```
//! use framelink_core::session::{Config, Event, Session};
//! use framelink_core::wire::Repr;
//! use framelink_core::Instant;
//!
//! let now = Instant::ZERO;
//! let mut client: Session<[u8; 2048]> = Session::client(Config::new(), 0x1234, [0; 2048], [0; 2048], now);
//! let mut server: Session<[u8; 2048]> = Session::server(Config::new(), [0; 2048], [0; 2048], now);
//!
//! // Move packets until both sides are quiet (a real driver frames them onto a transport).
//! fn pump(from: &mut Session<[u8; 2048]>, to: &mut Session<[u8; 2048]>, now: Instant) {
//!     let mut buf = [0u8; 1100];
//!     while let Some(len) = from.poll_transmit(now, &mut buf).unwrap() {
//!         to.handle_packet(now, &Repr::parse(&buf[..len]).unwrap());
//!     }
//! }
//!
//! pump(&mut client, &mut server, now); // HELLO
//! pump(&mut server, &mut client, now); // HELLO-ACK
//! assert_eq!(client.poll_event(), Some(Event::Connected));
//! assert_eq!(server.poll_event(), Some(Event::Connected));
//!
//! client.send(now, b"Hello, Server!").unwrap();
//! pump(&mut client, &mut server, now);
//! assert_eq!(server.poll_event(), Some(Event::Message(b"Hello, Server!")));
//! # assert_eq!(server.poll_event(), None);
//! ```
//!
//! # States
//!
//! ```text
//!   client                                              server
//!   ------                                              ------
//!  HELLO-SENT --HELLO-ACK--> ESTABLISHED <--HELLO-- LISTEN
//!                               |      |
//!                   close()     |      |   CLOSE (in sequence)
//!                               v      v
//!                          CLOSING    DRAINING
//!        CLOSE sent once our |            | our DATA all acknowledged:
//!        DATA is acknowledged|            | send CLOSE-ACK
//!                            v            |
//!                       CLOSE-SENT        |
//!                 CLOSE-ACK  |            |
//!                            v            v
//!                           CLOSED <------+
//! ```
//!
//! CLOSE-SENT is the protocol's CLOSING once its CLOSE is out; when the CLOSE has to be sent
//! again (retransmission) the session goes back to CLOSING.
//!
//! Any state but CLOSED also ends in CLOSED on an ERROR from the peer (except LISTEN, which
//! ignores it), on a violation we answer with ERROR, or when a timer runs out.
//!
//! # Every packet in every state
//!
//! "handled" is described under the state; "ignored" means dropped and counted in
//! [`Stats::ignored`]; "ERROR" means the session answers with an ERROR packet and closes.
//! Acknowledgement fields are processed in ESTABLISHED, CLOSING, CLOSE-SENT and DRAINING before
//! the packet.
//!
//! | packet \ state | LISTEN | HELLO-SENT | ESTABLISHED | CLOSING | CLOSE-SENT | DRAINING | CLOSED |
//! |---|---|---|---|---|---|---|---|
//! | HELLO | handshake, or ERROR on a version or capability mismatch or zero limits | ignored | server: same id: HELLO-ACK again; new id: reset and handshake. client: ignored | as ESTABLISHED | as ESTABLISHED | as ESTABLISHED | server, new id (or no handshake ever succeeded): new handshake; else ignored |
//! | HELLO-ACK | ignored | our id: established, or ERROR on a mismatch; other id: ignored | ignored | ignored | ignored | ignored | ignored |
//! | DATA | ignored | ignored | in sequence: accepted (ERROR if over a limit or the credit); earlier: duplicate, re-acknowledged; later: held with retransmission, else ignored | as ESTABLISHED | as ESTABLISHED | earlier: duplicate, re-acknowledged; else ignored | ignored |
//! | ACK | ignored | ignored | acknowledgement and credit | as ESTABLISHED | as ESTABLISHED | as ESTABLISHED | ignored |
//! | PING | ignored | ignored | PONG | PONG | PONG | PONG | ignored |
//! | PONG | ignored | ignored | RTT sample | RTT sample | RTT sample | RTT sample | ignored |
//! | CLOSE | ignored | ignored | in sequence: to DRAINING; else ignored | in sequence: to DRAINING; else ignored | in sequence: CLOSE-ACK and closed; else ignored | in sequence: ACK again; else ignored | CLOSE-ACK again if we sent one; else ignored |
//! | CLOSE-ACK | ignored | ignored | ignored | ignored | closed | ignored | ignored |
//! | ERROR | ignored | closed | closed | closed | closed | closed | ignored |
//!
//! Frames the decoder rejects are counted; a bad version before the handshake is answered with
//! ERROR (version mismatch) by a server in LISTEN.
//!
//! # Retransmission
//!
//! When the handshake agrees on [`Capabilities::RETRANSMIT`] (either side's
//! [`Config::retransmit`]), the session repairs a transport that loses, duplicates, reorders or
//! corrupts: selective repeat within the window, cumulative acks with a selective-ack bitmap,
//! a retransmission timeout per RFC 6298 (SRTT/RTTVAR, Karn's rule, doubling up to a cap), fast
//! retransmit when later packets overtake a hole, delayed and coalesced acks, HELLO and CLOSE
//! sent again too, and a dead-link limit. `docs/PROTOCOL.md` section 10.8 has the rules.
//!
//! # Flow control
//!
//! The receiver grants credit in bytes (HELLO, then every ACK); each DATA packet costs its
//! payload plus 4 bytes. The sender never exceeds the credit nor the peer's window of packets
//! in flight, so a receiver that holds messages the application has not read yet is never sent
//! more than fits: nothing is dropped for lack of room. A full send buffer makes
//! [`send`](Session::send) return [`SendError::WouldBlock`].

mod config;
#[cfg(feature = "congestion")]
mod congestion;
mod credit;
mod event;
mod gather;
mod input;
#[cfg(feature = "auth")]
mod keyed;
#[cfg(all(test, feature = "auth"))]
mod keyed_tests;
mod lend;
mod output;
#[cfg(feature = "congestion")]
mod rack;
mod recv_buffer;
mod rtt;
mod send_buffer;
#[cfg(test)]
mod tests;
mod timer;

pub use config::Config;
pub use event::{CloseReason, Event, SendError, Stats, Timeout};
pub use gather::{PacketParts, SentPayload};
use rtt::Rtt;
pub use rtt::RttStats;

use heapless::Deque;

use crate::Instant;
use crate::buffer::Buffer;
#[cfg(not(feature = "auth"))]
use crate::wire::BufferTooSmall;
use crate::wire::{
    Capabilities, ErrorCode, HelloPayload, PacketType, PingPayload, RetryPayload, SeqNumber, VERSION,
};
use credit::{Allowed, Granted};
use recv_buffer::RecvBuffer;
use send_buffer::SendBuffer;
use timer::{Timer, TimerTable};

/// Capabilities this implementation supports.
const SUPPORTS: Capabilities = Capabilities::RETRANSMIT;
/// Pings or pongs waiting to be sent, each.
const PING_QUEUE: usize = 4;
/// Control events waiting for the application (Connected, Pong, Closed).
const EVENT_QUEUE: usize = 8;
/// RETRYs a client follows in one handshake; later ones are ignored.
const MAX_RETRIES: u8 = 4;

/// Which side of the handshake a session plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// Sends HELLO.
    Client,
    /// Answers HELLO.
    Server,
}

/// Where a session is in its life; see the module docs for the diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum State {
    /// Server waiting for HELLO.
    Listen,
    /// Client waiting for HELLO-ACK.
    HelloSent,
    /// Both sides exchange data.
    Established,
    /// We called `close`: draining our data; CLOSE goes out once it is all acknowledged.
    Closing,
    /// We called `close`, our data is acknowledged and our CLOSE is out: waiting for CLOSE-ACK
    /// (PROTOCOL.md's CLOSING once its CLOSE is sent).
    CloseSent,
    /// The peer sent CLOSE: draining our data, then CLOSE-ACK.
    Draining,
    /// Ended; see [`Event::Closed`] for why.
    Closed,
}

impl State {
    /// Whether the handshake is done and the session not ended: packets of the peer's session
    /// are handled (ESTABLISHED, CLOSING, CLOSE-SENT, DRAINING).
    fn is_open(self) -> bool {
        matches!(self, Self::Established | Self::Closing | Self::CloseSent | Self::Draining)
    }

    /// Whether DATA from the peer is still taken (it has not sent CLOSE).
    fn is_receiving(self) -> bool {
        matches!(self, Self::Established | Self::Closing | Self::CloseSent)
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Listen => "LISTEN",
            Self::HelloSent => "HELLO-SENT",
            Self::Established => "ESTABLISHED",
            Self::Closing => "CLOSING",
            Self::CloseSent => "CLOSE-SENT",
            Self::Draining => "DRAINING",
            Self::Closed => "CLOSED",
        })
    }
}

/// What the peer announced in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct PeerParams {
    /// The largest DATA payload the peer accepts.
    pub max_payload: u16,
    /// DATA packets the peer accepts in flight.
    pub window: u16,
    /// The largest message the peer accepts.
    pub max_message: u32,
    /// The capabilities both sides agreed on.
    pub agreed: Capabilities,
}

#[derive(Clone, Copy, Debug)]
struct PingOut {
    token: u32,
    padding: u16,
}

#[derive(Clone, Copy, Debug)]
struct PongOut {
    ping: PingPayload,
    padding: u16,
}

/// Packets owed to the peer.
#[derive(Debug, Default)]
struct Pending {
    hello: bool,
    hello_ack: bool,
    /// A cumulative acknowledgement is owed; it may ride on DATA.
    ack: bool,
    /// The owed acknowledgement may wait no longer (with retransmission, acks of in-order
    /// DATA wait up to the ack delay, or for a second packet).
    ack_due: bool,
    /// An ACK packet is owed (fresh credit, or a selective ack after a gap), not just an ack.
    credit: bool,
    /// A CLOSE-ACK is owed (both sides closed at once).
    close_ack: bool,
    error: Option<(ErrorCode, u32)>,
    pings: Deque<PingOut, PING_QUEUE>,
    /// A keepalive PING (token 0) is owed.
    keepalive: bool,
    pongs: Deque<PongOut, PING_QUEUE>,
}

#[derive(Clone, Copy, Debug)]
enum ControlEvent {
    Connected,
    Pong {
        token: u32,
        /// The round trip in µs (at most 71 minutes).
        rtt: u32,
    },
    Closed(CloseReason),
}

#[derive(Clone, Copy, Debug)]
struct QueuedEvent {
    event: ControlEvent,
    /// Messages completed before this event; they are delivered first.
    after: u64,
}

/// One end of a framelink session.
///
/// `B` is the storage for the send and receive buffers, one of each (any [`Buffer`]): `[u8; N]`
/// on firmware, `Box<[u8]>` or `Vec<u8>` on a host, or `&mut [u8]` borrowed from the caller. The
/// send buffer holds messages until the peer acknowledges them, the receive buffer holds
/// messages being reassembled or not yet read; each message takes its length plus 4 bytes in
/// them, and the largest message is the buffer's size minus 4.
///
/// Growable storage (`Vec<u8>`) may start empty: with [`Config::max_send_buffer`] and
/// [`Config::max_receive_buffer`] each buffer grows as messages need, up to that size, and is
/// given back once both buffers have stayed empty for a keepalive interval, so an idle session
/// holds little memory. The session announces its limits and credit for the full size from the
/// start. Fixed storage keeps its size. `W` is how many DATA packets may be in flight, and held
/// ahead of a gap (default 16): fixed storage keeps a record of each in the session, growable
/// storage on the heap, only as many as are used, given back with the buffers.
///
/// See the [module docs](self) for the driver loop, the states and an example.
#[derive(Debug)]
pub struct Session<B: Buffer, const W: usize = 16> {
    role: Role,
    state: State,
    config: Config,
    session_id: u32,
    peer: Option<PeerParams>,
    tx: SendBuffer<B, W>,
    rx: RecvBuffer<B, W>,
    /// The next DATA sequence number expected from the peer.
    rcv_next: SeqNumber,
    /// Credit we granted the peer.
    granted: Granted,
    /// Credit the peer granted us.
    allowed: Allowed,
    /// We sent CLOSE-ACK: a repeated CLOSE (our answer was lost) is answered again.
    close_acked: bool,
    /// Retransmission timeouts in a row without progress (the RTO backoff exponent).
    backoff: u8,
    /// When the client first sent HELLO, and whether it sent it more than once (Karn).
    hello_sent_at: Option<Instant>,
    hello_resent: bool,
    /// The cookie of the server's last RETRY, sent back in HELLO; and how many RETRYs came.
    cookie: Option<[u8; RetryPayload::LEN]>,
    retries: u8,
    close_reason: Option<CloseReason>,
    /// In-order DATA packets not yet acknowledged.
    unacked_received: u8,
    timers: TimerTable,
    pending: Pending,
    events: Deque<QueuedEvent, EVENT_QUEUE>,
    /// Messages reassembled, and handed to the application.
    completed: u64,
    delivered: u64,
    /// A message was handed out by `poll_event`; release it at the next call.
    message_out: bool,
    /// Whether the packet being handled may have its message lent to the caller
    /// ([`handle_packet_lent`](Self::handle_packet_lent)).
    lend: lend::Lend,
    next_token: u32,
    stats: Stats,
    rtt: Rtt,
    /// With growable storage: the last time a buffer held something (grown buffers are given
    /// back a keepalive interval after it).
    busy_at: Instant,
    /// A keyed session's key, nonces and channel ([`with_auth`](Self::with_auth)).
    #[cfg(feature = "auth")]
    keyed: Option<keyed::Keyed<B>>,
    /// The congestion window, the pacer and RACK-TLP (with retransmission).
    #[cfg(feature = "congestion")]
    cc: congestion::Congestion,
    #[cfg(feature = "congestion")]
    pacer: congestion::Pacer,
    #[cfg(feature = "congestion")]
    rack: rack::Rack,
}

impl<B: Buffer, const W: usize> Session<B, W> {
    fn new(role: Role, config: Config, session_id: u32, tx: B, rx: B, now: Instant) -> Self {
        let mut session = Self {
            role,
            state: if role == Role::Client { State::HelloSent } else { State::Listen },
            config,
            session_id,
            peer: None,
            tx: SendBuffer::new(tx, config.max_send_buffer as usize),
            rx: RecvBuffer::new(rx, config.max_receive_buffer as usize),
            rcv_next: SeqNumber(0),
            granted: Granted::default(),
            allowed: Allowed::default(),
            close_acked: false,
            backoff: 0,
            hello_sent_at: None,
            hello_resent: false,
            cookie: None,
            retries: 0,
            close_reason: None,
            unacked_received: 0,
            timers: TimerTable::default(),
            pending: Pending::default(),
            events: Deque::new(),
            completed: 0,
            delivered: 0,
            message_out: false,
            lend: lend::Lend::No,
            next_token: 1,
            stats: Stats::default(),
            rtt: Rtt::default(),
            busy_at: now,
            #[cfg(feature = "auth")]
            keyed: None,
            #[cfg(feature = "congestion")]
            cc: congestion::Congestion::default(),
            #[cfg(feature = "congestion")]
            pacer: congestion::Pacer::default(),
            #[cfg(feature = "congestion")]
            rack: rack::Rack::default(),
        };
        session.granted = Granted::new(session.credit());
        session.pending.hello = role == Role::Client;
        session.timers.set_after(Timer::Handshake, now, config.handshake_timeout_us);
        session
    }

    /// A client session that sends HELLO with `session_id` at the first
    /// [`poll_transmit`](Self::poll_transmit).
    ///
    /// Choose `session_id` at random where you can: a server treats a HELLO with a new id as a
    /// new session and ends the old one.
    pub fn client(config: Config, session_id: u32, tx: B, rx: B, now: Instant) -> Self {
        Self::new(Role::Client, config, session_id, tx, rx, now)
    }

    /// A server session waiting for HELLO.
    pub fn server(config: Config, tx: B, rx: B, now: Instant) -> Self {
        Self::new(Role::Server, config, 0, tx, rx, now)
    }

    /// Queues `message` to be sent whole, in order, exactly once.
    ///
    /// It is copied into the send buffer and leaves it when the peer has acknowledged it; call
    /// [`poll_transmit`](Self::poll_transmit) to send it. On error nothing is queued.
    pub fn send(&mut self, now: Instant, message: &[u8]) -> Result<(), SendError> {
        let peer = self.ready_to_send()?;
        let max = self.tx.max_message().min(peer.max_message as usize);
        if message.len() > max {
            return Err(SendError::TooLarge { max });
        }
        if !self.tx.push(message) {
            return Err(SendError::WouldBlock);
        }
        if B::GROWS {
            self.busy_at = now;
        }
        self.stats.messages_sent += 1;
        Ok(())
    }

    /// Queues a PING carrying `padding` zero bytes after its 12-byte header; returns the token
    /// that the matching [`Event::Pong`] will carry.
    pub fn ping(&mut self, _now: Instant, padding: u16) -> Result<u32, SendError> {
        let peer = match self.state {
            State::Established | State::Closing | State::CloseSent | State::Draining => {
                self.peer.ok_or(SendError::NotConnected)?
            }
            State::Listen | State::HelloSent => return Err(SendError::NotConnected),
            State::Closed => return Err(SendError::Closed),
        };
        let max = usize::from(peer.max_payload).saturating_sub(PingPayload::LEN);
        if usize::from(padding) > max {
            return Err(SendError::TooLarge { max });
        }
        let token = self.next_token;
        self.pending.pings.push_back(PingOut { token, padding }).map_err(|_| SendError::WouldBlock)?;
        self.next_token = self.next_token.checked_add(1).unwrap_or(1);
        Ok(token)
    }

    /// Starts a graceful close: no new messages; once everything sent is acknowledged, CLOSE
    /// goes out, and [`Event::Closed`] with [`CloseReason::Local`] follows the peer's CLOSE-ACK.
    ///
    /// Before the handshake completes the session simply ends. Calling it again does nothing.
    pub fn close(&mut self, _now: Instant) {
        match self.state {
            State::Established => self.set_state(State::Closing),
            State::Listen | State::HelloSent => self.finish(CloseReason::Local),
            State::Closing | State::CloseSent | State::Draining | State::Closed => {}
        }
    }

    /// Ends the session at once with an ERROR packet carrying `code` and `detail` (for example
    /// [`ErrorCode::Busy`] from a server that is full). [`Event::Closed`] with
    /// [`CloseReason::LocalError`] follows; messages not yet acknowledged are dropped.
    pub fn abort(&mut self, code: ErrorCode, detail: u32) {
        if self.state != State::Closed {
            self.fail(code, detail);
        }
    }

    /// The next thing that happened, if any; see [`Event`].
    ///
    /// A returned [`Event::Message`] borrows the receive buffer; its space is released at the
    /// next call, which may queue a credit update for the peer (send it with
    /// [`poll_transmit`](Self::poll_transmit)).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.release_message();
        let control_first = self.events.front().is_some_and(|e| e.after <= self.delivered);
        if !control_first && self.rx.complete() > 0 {
            self.message_out = true;
            return self.rx.front().map(Event::Message);
        }
        self.events.pop_front().map(|queued| match queued.event {
            ControlEvent::Connected => Event::Connected,
            ControlEvent::Pong { token, rtt } => {
                Event::Pong { token, rtt: crate::time::duration_from_micros(rtt) }
            }
            ControlEvent::Closed(reason) => Event::Closed(reason),
        })
    }

    /// Whether [`poll_event`](Self::poll_event) has something new to report (a message handed
    /// out by the previous call does not count).
    pub fn has_event(&self) -> bool {
        !self.events.is_empty() || self.rx.complete() > usize::from(self.message_out)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next; `None` when no timer
    /// runs. Changes after every other call.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the session has ended (an [`Event::Closed`] is queued or was reported).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Why the session ended, once it has (the reason [`Event::Closed`] reports, readable
    /// without draining events). A server session that a new HELLO restarted forgets it.
    pub fn close_reason(&self) -> Option<CloseReason> {
        if self.state == State::Closed { self.close_reason } else { None }
    }

    /// Which side of the handshake this session plays.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The session id (a server learns it from HELLO).
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// Whether a datagram tagged `tag` carrying a packet of type `kind` belongs to this session
    /// (datagram framing, PROTOCOL.md 9.3): its tag is the session id, except a HELLO, which
    /// may start a new session, and anything reaching a server that has none yet.
    /// [`Connection`](crate::connection::Connection) checks it for every datagram.
    pub fn accepts_tag(&self, tag: u32, kind: PacketType) -> bool {
        tag == self.session_id
            || (self.role == Role::Server && (kind == PacketType::Hello || self.state == State::Listen))
    }

    /// What the peer announced, once the handshake is done.
    pub fn peer(&self) -> Option<PeerParams> {
        self.peer
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Round-trip time figures, from PONGs and acknowledgements.
    pub fn rtt(&self) -> RttStats {
        self.rtt.stats()
    }

    /// Whether every message queued by [`send`](Self::send) has been acknowledged.
    pub fn is_send_drained(&self) -> bool {
        self.tx.is_drained()
    }

    /// The settings the session was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What this side announces in its handshake (HELLO or HELLO-ACK payload).
    pub fn local_params(&self) -> HelloPayload {
        self.hello_payload()
    }

    /// The send buffer's size in bytes (with growable storage, the size it may grow to).
    pub fn send_buffer_capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// The receive buffer's size in bytes (with growable storage, the size it may grow to).
    pub fn receive_buffer_capacity(&self) -> usize {
        self.rx.capacity()
    }

    /// The send buffer's storage in bytes now: its size, or what growable storage has grown to.
    pub fn send_buffer_storage(&self) -> usize {
        self.tx.storage_len()
    }

    /// The receive buffer's storage in bytes now: its size, or what growable storage has grown
    /// to.
    pub fn receive_buffer_storage(&self) -> usize {
        self.rx.storage_len()
    }

    /// Bytes free in the send buffer (a message takes its length plus 4).
    pub fn send_buffer_free(&self) -> usize {
        self.tx.free()
    }

    fn ready_to_send(&self) -> Result<PeerParams, SendError> {
        match self.state {
            State::Established => self.peer.ok_or(SendError::NotConnected),
            State::Listen | State::HelloSent => Err(SendError::NotConnected),
            State::Closing | State::CloseSent | State::Draining => Err(SendError::Closing),
            State::Closed => Err(SendError::Closed),
        }
    }

    /// With growable storage: notes that a buffer holds something, or gives grown buffers back
    /// once both have stayed empty for a keepalive interval (a steady stream keeps its room).
    fn give_back_room(&mut self, now: Instant) {
        if !B::GROWS {
            return;
        }
        if !self.tx.is_drained() || !self.rx.is_empty() {
            self.busy_at = now;
        } else if now.micros_since(self.busy_at) >= self.config.keepalive_us {
            self.tx.shrink_if_drained();
            self.rx.shrink_if_empty();
            #[cfg(feature = "auth")]
            if let Some(scratch) = self.keyed.as_mut().and_then(|keyed| keyed.scratch.as_mut()) {
                scratch.shrink(0);
            }
        }
    }

    /// The credit to announce (HELLO, HELLO-ACK, ACK): the room for DATA from the ack field on
    /// (PROTOCOL.md 10.4), which holds the packets held ahead of the gap as well. Counting only
    /// the free space would charge a held packet twice (its room, and its cost past the ack),
    /// so a hole at the front of a wide window would leave the sender about half the buffer.
    pub(super) fn credit(&self) -> u32 {
        u32::try_from(self.rx.free_from_gap()).unwrap_or(u32::MAX)
    }

    /// Whether the peer should hear about space the application freed.
    fn credit_update_due(&self) -> bool {
        if !self.state.is_receiving() {
            return false;
        }
        let left = self.granted.left();
        let could = self.credit();
        could > left && (left < could / 2 || left < u32::from(self.announced_max_payload()) + 4)
    }

    /// Releases the message the last [`poll_event`](Self::poll_event) lent, if any (nothing
    /// can borrow it any more): its room is free, which may queue a credit update.
    fn release_message(&mut self) {
        if self.message_out {
            self.message_out = false;
            self.rx.pop();
            self.delivered += 1;
            if self.credit_update_due() {
                self.pending.credit = true;
            }
        }
    }

    /// What this side requires of the peer.
    fn requires(&self) -> Capabilities {
        let requires = if self.config.retransmit { Capabilities::RETRANSMIT } else { Capabilities::NONE };
        #[cfg(feature = "auth")]
        if self.keyed.is_some() {
            return requires.union(Capabilities::KEYED);
        }
        requires
    }

    /// What this side supports: RETRANSMIT, and KEYED (with the suites offered) when it has a
    /// key.
    fn supports(&self) -> Capabilities {
        #[cfg(feature = "auth")]
        #[cfg(feature = "aes-gcm")]
        if let Some(keyed) = &self.keyed {
            return SUPPORTS.union(Capabilities::KEYED).union(keyed.offered_suites());
        }
        #[cfg(all(feature = "auth", not(feature = "aes-gcm")))]
        if self.keyed.is_some() {
            return SUPPORTS.union(Capabilities::KEYED);
        }
        SUPPORTS
    }

    /// What a server adds to the agreed set for a HELLO: the faster suite, when both offer it
    /// (PROTOCOL.md section 15.1).
    #[inline(always)]
    fn chosen_suite(&self, hello: &HelloPayload) -> Capabilities {
        #[cfg(feature = "aes-gcm")]
        if let Some(keyed) = &self.keyed {
            return keyed.offered_suites().intersection(hello.supports);
        }
        let _ = hello;
        Capabilities::NONE
    }

    /// Whether this session retransmits (agreed in the handshake; before it, as configured).
    #[inline(never)] // nine callers: a call is smaller than the option test
    fn lossy(&self) -> bool {
        self.peer.map_or(self.config.retransmit, |p| p.agreed.contains(Capabilities::RETRANSMIT))
    }

    /// The window announced: packets in flight towards us, bounded by the `W` packets we can
    /// hold ahead of a gap.
    fn announced_window(&self) -> u16 {
        let w = u16::try_from(W).unwrap_or(u16::MAX);
        self.config.window.min(w).min(i16::MAX as u16).max(1)
    }

    /// The retransmission timeout now in microseconds, with backoff (RFC 6298 5.5), capped.
    /// The peer may hold an ack for up to its ack delay, so that is added (as QUIC's probe
    /// timeout does).
    fn rto(&self) -> u32 {
        let (min, max) = (self.config.min_rto_us, self.config.max_rto_us);
        let measured = self.rtt.smoothed().is_some();
        let base = self.rtt.rto(self.config.initial_rto_us, min, max).saturating_add(if measured {
            self.config.ack_delay_us
        } else {
            0
        });
        // HELLO backs off once only: within the handshake timeout it gets several tries.
        let backoff = u32::from(if self.state == State::HelloSent {
            self.backoff.min(1)
        } else {
            self.backoff.min(16)
        });
        let cap = max.max(min);
        if base.leading_zeros() <= backoff { cap } else { (base << backoff).min(cap) }
    }

    /// Runs the retransmission timer while something awaits an answer; `restart` after
    /// progress (RFC 6298 5.3).
    fn update_retransmit_timer(&mut self, now: Instant, restart: bool) {
        let waiting = match self.state {
            State::HelloSent => true,
            State::CloseSent => true,
            State::Established | State::Closing | State::Draining => {
                self.tx.inflight() > 0 || self.tx.has_unsent()
            }
            _ => false,
        };
        if !self.lossy() || !waiting {
            self.timers.stop(Timer::Retransmit);
            return;
        }
        if restart || !self.timers.is_running(Timer::Retransmit) {
            self.timers.set_after(Timer::Retransmit, now, self.retransmit_delay().into());
        }
    }

    /// The retransmission timer's delay: the probe timeout while a tail-loss probe may go
    /// (DATA in flight, none sent since the last progress), else the RTO.
    fn retransmit_delay(&self) -> u32 {
        let rto = self.rto();
        #[cfg(feature = "congestion")]
        if let (Some(srtt), true) = (self.rtt.smoothed(), self.probe_allowed()) {
            return rack::probe_timeout(srtt as u32, self.config.ack_delay_us, rto);
        }
        rto
    }

    /// Whether a tail-loss probe may go when the timer fires.
    #[cfg(feature = "congestion")]
    fn probe_allowed(&self) -> bool {
        matches!(self.state, State::Established | State::Closing | State::Draining)
            && !self.rack.probe_out
            && self.backoff == 0
            && self.tx.inflight() > 0
    }

    fn announced_max_payload(&self) -> u16 {
        let fits = u16::try_from(self.rx.max_message()).unwrap_or(u16::MAX);
        #[cfg(feature = "auth")]
        if self.keyed.is_some() {
            // A sealed payload is 24 bytes longer and must still fit the 16-bit length.
            return self.config.max_payload.min(fits).min(keyed::MAX_PLAIN_PAYLOAD);
        }
        self.config.max_payload.min(fits)
    }

    fn announced_max_message(&self) -> u32 {
        let fits = u32::try_from(self.rx.max_message()).unwrap_or(u32::MAX);
        self.config.max_message.min(fits)
    }

    /// Our HELLO or HELLO-ACK payload.
    fn hello_payload(&self) -> HelloPayload {
        HelloPayload {
            version: VERSION,
            supports: self.supports(),
            requires: self.peer.map_or(self.requires(), |p| p.agreed),
            max_payload: self.announced_max_payload(),
            window: self.announced_window(),
            session_id: self.session_id,
            max_message: self.announced_max_message(),
            credit: self.credit(),
            cookie: if self.role == Role::Client { self.cookie } else { None },
        }
    }

    /// Our HELLO or HELLO-ACK (`kind`) with `hello` as its payload.
    #[cfg(not(feature = "auth"))]
    fn emit_hello(
        &self,
        buf: &mut [u8],
        kind: PacketType,
        hello: &HelloPayload,
    ) -> Result<usize, BufferTooSmall> {
        output::emit_control(buf, kind, None, hello.encoded_len(), |p| {
            let _ = hello.emit(p);
        })
    }

    /// Whether a HELLO may restart the session (a keyed one: only if it proves the key).
    #[cfg(not(feature = "auth"))]
    #[inline(always)]
    fn hello_is_genuine(&mut self, _payload: &[u8]) -> bool {
        true
    }

    /// Whether a HELLO with the current session id repeats the one the session started with.
    #[cfg(not(feature = "auth"))]
    #[inline(always)]
    fn hello_is_repeat(&mut self, _payload: &[u8]) -> bool {
        true
    }

    /// Checks a keyed HELLO or HELLO-ACK's proof of the key (failing the session if it does not
    /// verify) and derives the session keys; unkeyed, nothing to check.
    #[cfg(not(feature = "auth"))]
    #[inline(always)]
    fn authenticate(&mut self, _kind: PacketType, _hello: &HelloPayload, _payload: &[u8]) -> bool {
        true
    }

    fn set_state(&mut self, state: State) {
        trace!("framelink session {=u32:#x}: {} => {}", self.session_id, self.state, state);
        self.state = state;
    }

    fn push_event(&mut self, event: ControlEvent) {
        // Pongs give way so that Connected and Closed always find room.
        if matches!(event, ControlEvent::Pong { .. }) && self.events.len() + 3 > EVENT_QUEUE {
            return;
        }
        let queued = QueuedEvent { event, after: self.completed };
        let _ = self.events.push_back(queued);
    }

    /// Ends the session for `reason`.
    fn finish(&mut self, reason: CloseReason) {
        self.close_reason = Some(reason);
        debug!("framelink session {=u32:#x} ended: {}", self.session_id, reason);
        self.set_state(State::Closed);
        self.timers.stop_all();
        self.push_event(ControlEvent::Closed(reason));
    }

    /// Ends the session with an ERROR packet to the peer.
    fn fail(&mut self, code: ErrorCode, detail: u32) {
        warn!("framelink session {=u32:#x}: sending ERROR {} ({=u32})", self.session_id, code, detail);
        self.pending.error = Some((code, detail));
        self.finish(CloseReason::LocalError { code, detail });
    }

    /// Drops everything of the current session, for a server that meets a new HELLO: the
    /// session that follows starts as fresh as a new one (no RTT estimate, statistics or
    /// counters of the previous client), the HELLO being its first packet. Events not yet
    /// reported (the old session's end) are kept.
    fn reset(&mut self, now: Instant) {
        self.tx.reset();
        self.rx.reset();
        self.delivered = self.completed;
        self.message_out = false;
        self.peer = None;
        self.rcv_next = SeqNumber(0);
        self.allowed = Allowed::default();
        self.close_acked = false;
        self.backoff = 0;
        self.unacked_received = 0;
        self.pending = Pending::default();
        self.next_token = 1;
        self.stats = Stats::default();
        self.rtt = Rtt::default();
        #[cfg(feature = "congestion")]
        {
            self.cc = congestion::Congestion::default();
            self.pacer = congestion::Pacer::default();
            self.rack.reset();
        }
        self.busy_at = now;
        self.granted = Granted::new(self.credit());
        self.timers.stop_all();
        self.timers.set_after(Timer::Handshake, now, self.config.handshake_timeout_us);
        #[cfg(feature = "auth")]
        if let Some(keyed) = &mut self.keyed {
            keyed.channel = None;
        }
        self.set_state(State::Listen);
    }
}
