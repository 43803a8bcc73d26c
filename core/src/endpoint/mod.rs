//! Datagram demultiplexing without I/O: session tags, RETRY cookies and the session table of a
//! UDP server (PROTOCOL.md 9.3 and 10.1), for firmware and desktops alike.
//!
//! An [`Endpoint`] is fed what a socket received, `(now, from, datagram)`, and says what to do
//! with it ([`Route`]): hand it to the session of that address, answer it itself (RETRY, ERROR
//! Busy, ERROR VersionMismatch, a repeated CLOSE-ACK: datagrams that need no session), accept
//! a new peer, or drop it. It never reads a clock or touches a socket, and keeps no state for
//! a peer until that peer's HELLO carries a cookie proving its address:
//!
//! - a HELLO from an address without a session, or with a new session id from one with a
//!   session, is answered with a RETRY carrying a cookie (a keyed hash of the address, the
//!   session id and the time period, under the caller's [`CookieKey`]) unless it carries a
//!   valid one; nothing else happens;
//! - a HELLO whose cookie proves its address starts a session ([`Route::Incoming`]), or is
//!   answered with ERROR Busy when the table is full;
//! - any other datagram from an address without a session is dropped and counted
//!   ([`Counters::stray`]); one of another protocol version is answered with ERROR
//!   VersionMismatch, and a CLOSE repeated by a peer whose session ended with its CLOSE (the
//!   CLOSE-ACK was lost) gets its CLOSE-ACK again for a while ([`Config::linger`]);
//! - datagrams from an address with a session go to that session unread (but for HELLOs,
//!   which are checked as above): its decoder drops the ones without its session tag, so
//!   spoofed CLOSE, ERROR or DATA reach no session.
//!
//! No answer is larger than the datagram it answers: the server cannot be used to amplify a
//! flood at a spoofed victim (a datagram whose answer would be larger gets none).
//!
//! The sessions live in a [`Table`] keyed by address: a `heapless::LinearMap` with a capacity
//! fixed at compile time in firmware, a `BTreeMap` (feature `alloc`) that grows on a desktop.
//! The value is the caller's: a session, a session with what the caller keeps beside it, or
//! `()` when the caller holds its only session elsewhere.
//!
//! # Example
//!
//! ```
//! use core::net::SocketAddr;
//! use framelink_core::Instant;
//! use framelink_core::endpoint::{Config, CookieKey, Endpoint, Entry, Route, ANSWER_LEN};
//! use framelink_core::framing::{Datagram, Encoder};
//! use framelink_core::wire::{HelloPayload, PacketType, Repr, RetryPayload};
//!
//! // A table of at most 4 peers; the value here is a count of datagrams routed to each.
//! type Table = heapless::LinearMap<SocketAddr, Entry<u32>, 4>;
//! let mut endpoint = Endpoint::new(CookieKey::new([7; 16]), Table::new(), Config::new());
//!
//! // A client's HELLO, session id 0x1234, without a cookie.
//! let hello = |cookie: Option<[u8; 8]>| {
//!     let mut fields = HelloPayload::parse(&[0; HelloPayload::LEN]).unwrap();
//!     (fields.version, fields.max_payload, fields.window, fields.session_id) = (1, 1024, 8, 0x1234);
//!     fields.cookie = cookie;
//!     let (mut payload, mut packet, mut datagram) = ([0; 30], [0; 64], [0; 64]);
//!     let n = fields.emit(&mut payload).unwrap();
//!     let n = Repr::control(PacketType::Hello, &payload[..n]).emit(&mut packet).unwrap();
//!     let n = Datagram::encode_tagged(0x1234, &packet[..n], &mut datagram).unwrap();
//!     datagram[..n].to_vec()
//! };
//! let from: SocketAddr = "192.0.2.7:4000".parse().unwrap();
//! let mut answer = [0u8; ANSWER_LEN];
//!
//! // Answered with a RETRY (sent back to `from`); nothing is kept.
//! let Route::Answer(n) = endpoint.handle(Instant::ZERO, from, &hello(None), &mut answer) else {
//!     panic!("a HELLO without a cookie gets a RETRY")
//! };
//! let retry = Repr::parse(&answer[4..n]).unwrap();
//! assert_eq!(retry.kind, PacketType::Retry);
//! assert!(endpoint.is_empty());
//!
//! // The HELLO again with the cookie: a new peer, which the caller accepts with its session.
//! let cookie = RetryPayload::parse(retry.payload).unwrap().cookie;
//! let now = Instant::from_millis(20);
//! match endpoint.handle(now, from, &hello(Some(cookie)), &mut answer) {
//!     Route::Incoming(incoming) => *endpoint.accept(incoming, 0).unwrap() += 1,
//!     _ => panic!("a proven HELLO starts a session"),
//! }
//! // From now on the peer's datagrams go to its session.
//! match endpoint.handle(now, from, &hello(Some(cookie)), &mut answer) {
//!     Route::Session(count) => *count += 1,
//!     _ => panic!("routed to the session"),
//! }
//! assert_eq!(endpoint.get_mut(&from), Some(&mut 2));
//! assert_eq!(endpoint.counters().retries, 1);
//! ```

mod cookie;
mod table;
#[cfg(test)]
mod tests;

use core::net::SocketAddr;
use core::time::Duration;

pub use cookie::{Cookie, CookieKey};
pub use table::{Entry, Table};

use crate::Instant;
use crate::framing::{Datagram, Encoder, datagram};
use crate::wire::{
    DecodeError, ErrorCode, ErrorPayload, HelloPayload, OVERHEAD, Packet, PacketType, Repr, RetryPayload,
    VERSION,
};
use cookie::Cookies;
use table::Slot;

/// The largest answer the endpoint writes (a RETRY: tag, header and cookie, 25 bytes): the
/// least room to give [`Endpoint::handle`] and [`Endpoint::refuse`].
pub const ANSWER_LEN: usize = datagram::TAG_LEN + OVERHEAD + RetryPayload::LEN;

/// Settings of an [`Endpoint`].
///
/// ```
/// use core::time::Duration;
/// use framelink_core::endpoint::Config;
///
/// let config = Config::new().max_sessions(1).linger(Duration::from_secs(1));
/// assert_eq!(config.max_sessions_value(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    cookie_period: Duration,
    linger: Duration,
    max_sessions: usize,
}

impl Config {
    /// Cookies change every 30 s, a peer's CLOSE is remembered for 2 s, and sessions are
    /// limited only by the table's capacity.
    pub const fn new() -> Self {
        Self {
            cookie_period: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            max_sessions: usize::MAX,
        }
    }

    /// How long one cookie period lasts (30 s by default); a cookie holds for the period it was
    /// issued in and the next, so a client has at least this long to send its HELLO again.
    pub const fn cookie_period(mut self, period: Duration) -> Self {
        self.cookie_period = period;
        self
    }

    /// How long a repeated CLOSE is answered after a session ended with the peer's CLOSE
    /// ([`Endpoint::remove_closed`]); 2 s by default. Use the session's close timeout.
    pub const fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sessions at most at once (beyond, a proven HELLO is answered with ERROR Busy); the
    /// table's capacity bounds it too. Unlimited by default.
    pub const fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// The session limit set by [`max_sessions`](Self::max_sessions).
    pub const fn max_sessions_value(&self) -> usize {
        self.max_sessions
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// What an endpoint answered and dropped since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Counters {
    /// Datagrams dropped with no session to go to (junk, packets of other versions, datagrams
    /// of sessions that ended, spoofed ones), answered or not.
    pub stray: u64,
    /// RETRYs sent to HELLOs without a valid cookie.
    pub retries: u64,
    /// Proven HELLOs refused with ERROR Busy (a full table, or [`Endpoint::refuse`]).
    pub busy: u64,
}

/// A HELLO whose cookie proves its address, from an address with no session: pass it to
/// [`Endpoint::accept`] with a new session, or to [`Endpoint::refuse`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "accept or refuse it"]
pub struct Incoming {
    addr: SocketAddr,
    session_id: u32,
    tag: u32,
    /// Bytes of the HELLO's datagram: the largest answer allowed.
    len: usize,
}

impl Incoming {
    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The session id its HELLO asks for.
    pub fn session_id(&self) -> u32 {
        self.session_id
    }
}

/// What to do with a datagram, as [`Endpoint::handle`] decided.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a datagram's session, answer or new peer is to be acted on"]
pub enum Route<'a, V> {
    /// Hand the datagram to this session (the one of its source address).
    Session(&'a mut V),
    /// A new peer proved its address: [`accept`](Endpoint::accept) it (then hand it the
    /// datagram) or [`refuse`](Endpoint::refuse) it.
    Incoming(Incoming),
    /// Send the first this many bytes of the answer buffer back to the datagram's source;
    /// nothing else to do.
    Answer(usize),
    /// Nothing to do: the datagram was dropped (and counted, if stray).
    Drop,
}

/// The sans-I/O demultiplexer of a UDP server: see the [module docs](self).
///
/// Call order, from one thread or task per socket:
///
/// 1. for each datagram received, [`handle`](Self::handle); act on its [`Route`];
/// 2. when a session ends, [`remove`](Self::remove) it, or [`remove_closed`](Self::remove_closed)
///    if it ended with the peer's CLOSE;
/// 3. at [`poll_timeout`](Self::poll_timeout), or with the sessions' timers,
///    [`handle_timeout`](Self::handle_timeout) to forget closed peers whose linger ran out (a
///    late call costs only memory: an expired peer is never answered).
///
/// [`for_each_session`](Self::for_each_session) and [`get_mut`](Self::get_mut) reach the
/// sessions in between (to run their timers and send what they have to send).
#[derive(Debug)]
pub struct Endpoint<T: Table> {
    table: T,
    cookies: Cookies,
    config: Config,
    /// Entries holding a session (the rest linger).
    live: usize,
    /// No closed peer's linger runs out before this (`None`: none lingers).
    next_expiry: Option<Instant>,
    counters: Counters,
}

impl<T: Table> Endpoint<T> {
    /// An endpoint making cookies under `key`, keeping its peers in `table` (empty).
    pub fn new(key: CookieKey, table: T, config: Config) -> Self {
        Self {
            table,
            cookies: Cookies::new(key, config.cookie_period),
            config,
            live: 0,
            next_expiry: None,
            counters: Counters::default(),
        }
    }

    /// Decides what becomes of `datagram`, received from `from` at `now`; an answer is written
    /// into `answer` (give it [`ANSWER_LEN`] bytes; a smaller buffer only loses answers).
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        answer: &mut [u8],
    ) -> Route<'_, T::Session> {
        let tag = datagram::session_tag(datagram).unwrap_or(0);
        let packet = datagram.get(datagram::TAG_LEN..).unwrap_or_default();
        let current =
            self.table.get_mut(&from).map(|entry| (entry.session_id, entry.is_live(), expired(entry, now)));
        if let Some((session_id, true, _)) = current {
            // A live session reads its datagrams itself; a HELLO is read here first, since a new
            // session id must prove its address.
            let hello_type = Packet::new_checked(packet).is_ok_and(|p| p.kind() == PacketType::Hello);
            if hello_type
                && let Ok(repr) = Repr::parse(packet)
                && let Some(hello) = HelloPayload::parse(repr.payload)
                && hello.session_id != session_id
            {
                if !self.proven(now, from, &hello) {
                    return self.retry(now, from, &hello, tag, datagram.len(), answer);
                }
                if let Some(entry) = self.table.get_mut(&from) {
                    entry.session_id = hello.session_id;
                }
            }
            return match self.table.get_mut(&from).and_then(Entry::session) {
                Some(session) => Route::Session(session),
                None => Route::Drop,
            };
        }
        // The session id of a closed peer still remembered.
        let lingering = current.and_then(|(session_id, _, expired)| (!expired).then_some(session_id));
        match Repr::parse(packet) {
            Ok(repr) if repr.kind == PacketType::Hello => match HelloPayload::parse(repr.payload) {
                Some(hello) if self.proven(now, from, &hello) => {
                    let incoming =
                        Incoming { addr: from, session_id: hello.session_id, tag, len: datagram.len() };
                    if self.live < self.limit() {
                        return Route::Incoming(incoming);
                    }
                    let detail = u32::try_from(self.limit()).unwrap_or(u32::MAX);
                    Self::written(self.refuse(incoming, detail, answer))
                }
                Some(hello) => self.retry(now, from, &hello, tag, datagram.len(), answer),
                None => self.stray(),
            },
            Ok(repr) if repr.kind == PacketType::Close && lingering == Some(tag) => {
                Self::written(control(PacketType::CloseAck, &[], tag, datagram.len(), answer))
            }
            Err(DecodeError::BadVersion { .. }) => {
                self.counters.stray += 1;
                let mut payload = [0u8; ErrorPayload::LEN];
                let error =
                    ErrorPayload { code: ErrorCode::VersionMismatch, detail: VERSION.into(), text: &[] };
                match error.emit(&mut payload) {
                    Ok(n) => {
                        Self::written(control(PacketType::Error, &payload[..n], tag, datagram.len(), answer))
                    }
                    Err(_) => Route::Drop,
                }
            }
            _ => self.stray(),
        }
    }

    /// Takes in the peer of `incoming` with `session` (a fresh server session, which is then
    /// handed the HELLO's datagram). Gives `incoming` back, to [`refuse`](Self::refuse), if
    /// there is no room after all.
    pub fn accept(&mut self, incoming: Incoming, session: T::Session) -> Result<&mut T::Session, Incoming> {
        let addr = incoming.addr;
        if self.live >= self.limit() || self.table.get_mut(&addr).is_some_and(|entry| entry.is_live()) {
            return Err(incoming);
        }
        if self.table.len() >= self.table.capacity() && self.table.get_mut(&addr).is_none() {
            // Full, and not all live (the live ones are below the limit): forget a closed peer.
            let mut victim = None;
            self.table.for_each(|addr, entry| {
                if victim.is_none() && !entry.is_live() {
                    victim = Some(*addr);
                }
            });
            victim.and_then(|victim| self.table.remove(&victim));
        }
        let entry = Entry { session_id: incoming.session_id, state: Slot::Live(session) };
        if self.table.insert(addr, entry).is_err() {
            return Err(incoming);
        }
        self.live += 1;
        self.table.get_mut(&addr).and_then(Entry::session).ok_or(incoming)
    }

    /// Refuses `incoming` with ERROR Busy carrying `detail` (the session limit, PROTOCOL.md
    /// 5.4), written into `answer`; returns its length (0 if there is no room for it). Counted
    /// in [`Counters::busy`].
    pub fn refuse(&mut self, incoming: Incoming, detail: u32, answer: &mut [u8]) -> usize {
        self.counters.busy += 1;
        let mut payload = [0u8; ErrorPayload::LEN];
        let busy = ErrorPayload { code: ErrorCode::Busy, detail, text: &[] };
        match busy.emit(&mut payload) {
            Ok(n) => control(PacketType::Error, &payload[..n], incoming.tag, incoming.len, answer),
            Err(_) => 0,
        }
    }

    /// The session of `addr`.
    pub fn get_mut(&mut self, addr: &SocketAddr) -> Option<&mut T::Session> {
        self.table.get_mut(addr).and_then(Entry::session)
    }

    /// Removes the session of `addr` (it ended, or the server drops it) and forgets the peer.
    pub fn remove(&mut self, addr: &SocketAddr) -> Option<T::Session> {
        match self.table.remove(addr)?.state {
            Slot::Live(session) => {
                self.live -= 1;
                Some(session)
            }
            Slot::Lingering(_) => None,
        }
    }

    /// Removes the session of `addr`, which ended with the peer's CLOSE (answered): until
    /// `now` + [`Config::linger`], a CLOSE repeated with its session tag (our CLOSE-ACK was
    /// lost) is answered with CLOSE-ACK again.
    pub fn remove_closed(&mut self, addr: &SocketAddr, now: Instant) -> Option<T::Session> {
        let entry = self.table.get_mut(addr)?;
        let Slot::Live(_) = entry.state else { return None };
        let until = now + self.config.linger;
        let Slot::Live(session) = core::mem::replace(&mut entry.state, Slot::Lingering(until)) else {
            return None;
        };
        self.live -= 1;
        self.next_expiry = Some(self.next_expiry.map_or(until, |next| next.min(until)));
        Some(session)
    }

    /// Forgets the closed peers whose linger ran out by `now` (looking through the table only
    /// when one is due).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|next| next > now) {
            return;
        }
        let mut next_expiry = None;
        self.table.retain(|_, entry| match entry.state {
            Slot::Lingering(until) if until <= now => false,
            Slot::Lingering(until) => {
                next_expiry = Some(next_expiry.map_or(until, |next: Instant| next.min(until)));
                true
            }
            Slot::Live(_) => true,
        });
        self.next_expiry = next_expiry;
    }

    /// When the next closed peer is to be forgotten ([`handle_timeout`](Self::handle_timeout)),
    /// if any lingers; it may come early (a peer forgotten before its time).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_expiry
    }

    /// Calls `each` with every session and its peer's address.
    pub fn for_each_session(&mut self, mut each: impl FnMut(SocketAddr, &mut T::Session)) {
        self.table.for_each(|addr, entry| {
            if let Some(session) = entry.session() {
                each(*addr, session);
            }
        });
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// What was answered and dropped so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Sessions at most: the configured limit within the table's capacity.
    fn limit(&self) -> usize {
        self.config.max_sessions.min(self.table.capacity())
    }

    /// Whether `hello` carries the cookie this endpoint issues to `from` for its session id.
    fn proven(&self, now: Instant, from: SocketAddr, hello: &HelloPayload) -> bool {
        hello.cookie.is_some_and(|cookie| self.cookies.check(from, hello.session_id, &cookie, now))
    }

    /// A RETRY with a cookie for `hello`, tagged `tag` (PROTOCOL.md 10.1).
    fn retry(
        &mut self,
        now: Instant,
        from: SocketAddr,
        hello: &HelloPayload,
        tag: u32,
        received: usize,
        answer: &mut [u8],
    ) -> Route<'_, T::Session> {
        let cookie = self.cookies.issue(from, hello.session_id, now);
        let n = control(PacketType::Retry, &cookie, tag, received, answer);
        if n > 0 {
            self.counters.retries += 1;
        }
        Self::written(n)
    }

    fn stray(&mut self) -> Route<'_, T::Session> {
        self.counters.stray += 1;
        Route::Drop
    }

    fn written<'a>(len: usize) -> Route<'a, T::Session> {
        if len == 0 { Route::Drop } else { Route::Answer(len) }
    }
}

/// Whether `entry` is a closed peer whose linger ran out by `now`.
fn expired<V>(entry: &Entry<V>, now: Instant) -> bool {
    matches!(entry.state, Slot::Lingering(until) if until <= now)
}

/// Writes a control packet of `kind` with `payload` as a datagram tagged `tag` into `out`;
/// returns its length, or 0 if it does not fit or would be larger than the `received` bytes it
/// answers (no amplification).
fn control(kind: PacketType, payload: &[u8], tag: u32, received: usize, out: &mut [u8]) -> usize {
    let mut packet = [0u8; OVERHEAD + RetryPayload::LEN];
    Repr::control(kind, payload)
        .emit(&mut packet)
        .and_then(|n| Datagram::encode_tagged(tag, &packet[..n], out))
        .ok()
        .filter(|&n| n <= received)
        .unwrap_or(0)
}
