//! A client and a server `Session` driven by arbitrary operations over a faulty link.
//!
//! Both sessions are `Session<Vec<u8>, 8>` with 1 KiB receive buffers, 1 or 4 KiB send
//! buffers, `max_payload` 64, and a window, `max_message`, `max_rto` and retransmission chosen
//! per side by the input. The input is read front to back (zeros once it runs out):
//!
//! - setup: one config byte per side (bit 0: retransmit; bits 1-2: window 8, 8, 3 or 1; bit 3:
//!   `max_message` 128 instead of the buffer's 1020; bits 4-5: `max_rto` 10 s, 1 s, 100 ms or
//!   20 ms; bit 6: a 4 KiB send buffer instead of 1 KiB), a byte whose low 2 bits choose the
//!   one-way latency of the final phase (0, 1 ms, 20 ms or 100 ms), then the client's 4-byte
//!   session id;
//! - then at most 256 operations, one byte each (low 4 bits = the operation) plus the bytes
//!   the operation reads:
//!
//! | op | what | reads |
//! |---|---|---|
//! | 0, 1 | deliver the oldest packet client→server (0) or server→client (1) | |
//! | 2 | deliver any queued packet (reorder) | direction bit + index |
//! | 3 | drop a queued packet | direction bit + index |
//! | 4 | duplicate a queued packet to any place in its queue | direction bit + index, place |
//! | 5 | deliver everything queued, both ways, in order; draining the sessions after each packet, or once after all (a driver that decodes a whole read first) | mode bit |
//! | 6 | advance virtual time (100 µs to 63 s), then run due timers | step |
//! | 7 | advance to the earliest deadline, then run due timers | |
//! | 8, 9 | `send` a test message from the client (8) or the server (9) | body length |
//! | 10 | `ping` | side bit + padding |
//! | 11 | `close`, or `abort` with a code | side bit, abort bit (+ code, detail) |
//! | 12 | inject a packet built from input bytes | side, mode, type, seq, ack, flags, payload |
//! | 13 | inject a decode error | side + variant, two fields |
//! | 14 | pause/resume reading events, or one `poll_transmit` into a small buffer | side, mode (+ size) |
//! | 15 | flip bits in a queued packet | direction bit + index, offset, mask |
//!
//! After every operation both sessions are drained as the driver loop says: `poll_transmit`
//! until `None` (into the link, whose queues hold 64 packets each and drop the oldest beyond),
//! then `poll_event` until `None` (unless reading is paused), then `poll_transmit` again.
//! Packets reach a side with `handle_packet_lent` unless its reading is paused, so a message
//! that may be lent is taken from the packet at once (and checked like any other).
//!
//! # Test messages
//!
//! Each `send` carries `[magic: 4][index: u32][len: u16][len bytes derived from the index]
//! [hash: 8]`. The magic names the sender; the index counts the sender's successful sends; the
//! hash is FNV-1a over everything before it with the top bit of each byte set. Injected DATA
//! payloads have the top bit of every byte cleared, so no injected byte can stand for a magic or
//! hash byte: a received message that passes every check is byte for byte a message that was
//! sent.
//!
//! # Invariants
//!
//! Always: no panic; every packet `poll_transmit` writes fits the buffer, parses, and a DATA
//! payload is within the peer's announced `max_payload`; `send` refuses with `WouldBlock` only
//! when the message plus 4 does not fit in `send_buffer_free()`; a valid test message arrives
//! at the other side from its sender, with an index that was sent; the client reports
//! `Connected` once, first, then messages, then at most one `Closed`, then nothing; the server
//! reports messages only between `Connected` and `Closed`; a `Pong` never carries the keepalive
//! token 0.
//!
//! When nothing was injected (junk packets, or a bit flip that still passed the CRC): every
//! message received is the next index of its sender, valid, with no gap, duplicate or reorder
//! (drops, duplicates, reorders and timeouts of the link are not junk); a `Pong` carries a token
//! `ping` returned; if a connected side ended gracefully (`Closed(Local)` or `Closed(Peer)`),
//! every message each side sent was delivered to the other. Liveness, when both sides agreed on
//! retransmission or the link never lost, duplicated, reordered or damaged a packet: a final
//! phase on a perfect link (up to 300 virtual seconds, timers run as they fall due) ends with
//! every message sent delivered if both sessions are still established, and with no close
//! still under way (CLOSING or DRAINING); and no side declares a dead link there while its peer
//! is alive and was heard after the side's first retransmission timeout in that phase (unless
//! the side's `max_rto` is below two round trips, where every retry is early by configuration).
//!
//! When junk was injected: invalid messages are allowed (junk may join the stream), and valid
//! ones still arrive in increasing index order (gaps allowed) unless the server restarted (a
//! HELLO with a new session id replaced or dropped its session: its buffers and sequence numbers
//! start over, so old and new data may interleave and unacknowledged data may arrive twice).
//!
//! `FRAMELINK_FUZZ_TRACE=1` prints every step of a run (for reproducing a crash).
#![no_main]

use std::collections::VecDeque;
use std::time::Duration;

use framelink_core::Instant;
use framelink_core::session::{CloseReason, Config, Event, SendError, Session, State, Timeout};
use framelink_core::wire::{Capabilities, DecodeError, ErrorCode, PacketType, Repr, SeqNumber};
use libfuzzer_sys::fuzz_target;

type S = Session<Vec<u8>, 8>;

const CLIENT: usize = 0;
const SERVER: usize = 1;
const NAMES: [&str; 2] = ["client", "server"];
const BUFFER: usize = 1024;
/// `Config`'s default `min_rto`; the timeout is never capped below it.
const MIN_RTO: Duration = Duration::from_millis(20);
const MAX_PAYLOAD: u16 = 64;
const MAX_OPS: usize = 256;
const LINK_CAP: usize = 64;
const PUMP_CAP: usize = 64;
const EVENT_CAP: usize = 64;
/// Enough for any packet (13 + 65535): an injected HELLO may announce the largest payload.
const TX_BUF: usize = 13 + 65535;
/// How long the final phase on a perfect link may run.
const SETTLE: Duration = Duration::from_secs(300);

/// Set `FRAMELINK_FUZZ_TRACE=1` when reproducing a crash to print every step to stderr.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FRAMELINK_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// The fuzz input, read front to back; zeros once it runs out.
struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

/// The test messages: see the module docs.
mod message {
    /// By sender: client, server. The first byte has its top bit set (see `mask`).
    const MAGIC: [[u8; 4]; 2] = [[0xF1, 0x4B, 0xA7, 0xC5], [0xF1, 0x4B, 0xA7, 0x5C]];
    const HEADER: usize = 10;
    const HASH: usize = 8;

    fn body_byte(index: u32, i: usize) -> u8 {
        (index.wrapping_mul(31).wrapping_add(i as u32 * 7) % 128) as u8
    }

    fn hash(bytes: &[u8]) -> [u8; HASH] {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h.to_le_bytes().map(|b| b | 0x80)
    }

    /// Message `index` of `sender` with `len` body bytes.
    pub(crate) fn build(sender: usize, index: u32, len: u16) -> Vec<u8> {
        let mut m = Vec::with_capacity(HEADER + usize::from(len) + HASH);
        m.extend_from_slice(&MAGIC[sender]);
        m.extend_from_slice(&index.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend((0..usize::from(len)).map(|i| body_byte(index, i)));
        let h = hash(&m);
        m.extend_from_slice(&h);
        m
    }

    /// `(sender, index)` of a message that passes every check, else `None`.
    pub(crate) fn check(m: &[u8]) -> Option<(usize, u32)> {
        let sender = MAGIC.iter().position(|magic| m.starts_with(magic))?;
        let index = u32::from_le_bytes(m.get(4..8)?.try_into().ok()?);
        let len = usize::from(u16::from_le_bytes(m.get(8..10)?.try_into().ok()?));
        if m.len() != HEADER + len + HASH {
            return None;
        }
        let body = &m[HEADER..HEADER + len];
        if body.iter().enumerate().any(|(i, &b)| b != body_byte(index, i)) {
            return None;
        }
        (m[HEADER + len..] == hash(&m[..HEADER + len])).then_some((sender, index))
    }

    /// What an injected DATA payload may contain: no byte with its top bit set.
    pub(crate) fn mask(payload: &mut [u8]) {
        for b in payload {
            *b &= 0x7F;
        }
    }
}

/// What one side's application has seen.
#[derive(Default)]
struct Seen {
    /// Valid test messages received.
    delivered: u32,
    /// Index of the last valid test message received.
    last: Option<u32>,
    connects: u32,
    connected: bool,
    closed: bool,
}

enum Ev {
    Connected,
    Message(Vec<u8>),
    Pong(u32),
    Closed(CloseReason),
    Other,
}

struct World {
    now: Instant,
    sides: [S; 2],
    /// `links[d]`: packets sent by side `d`, not yet delivered to the other.
    links: [VecDeque<Vec<u8>>; 2],
    /// Successful `send`s per side (the next index).
    sent: [u32; 2],
    tokens: [Vec<u32>; 2],
    paused: [bool; 2],
    seen: [Seen; 2],
    /// Junk reached a session: relaxed checks from now on.
    injected: bool,
    /// The server restarted on a HELLO with a new session id.
    restarted: bool,
    /// The server's session id while it has a peer.
    server_session: Option<u32>,
    /// The link lost, duplicated, reordered or damaged a packet.
    faulty: bool,
    /// In the final phase on a perfect link: when each side's first retransmission timeout
    /// there fired.
    first_timeout: [Option<Instant>; 2],
    /// When each side last received a packet that parsed.
    heard: [Option<Instant>; 2],
    /// The final phase on a perfect link has begun.
    settling: bool,
    /// One-way delay of the final phase on a perfect link.
    latency: Duration,
    /// Each side's configured `max_rto`.
    max_rto: [Duration; 2],
    /// A connected side ended gracefully (`Closed(Local)` or `Closed(Peer)`).
    graceful: bool,
    tx_buf: Vec<u8>,
}

fn max_rto(bits: u8) -> Duration {
    Duration::from_millis([10_000, 1_000, 100, 20][usize::from(bits >> 4 & 3)])
}

fn config(bits: u8) -> Config {
    let window = [8, 8, 3, 1][usize::from(bits >> 1 & 3)];
    let max_message = if bits & 8 != 0 { 128 } else { u32::MAX };
    Config::new()
        .max_payload(MAX_PAYLOAD)
        .window(window)
        .retransmit(bits & 1 != 0)
        .max_message(max_message)
        .max_rto(max_rto(bits))
}

impl World {
    fn new(input: &mut Bytes<'_>) -> Self {
        let bits = [input.u8(), input.u8()];
        let (latency, id) = (input.u8(), input.u32());
        let now = Instant::ZERO;
        let buf = || vec![0u8; BUFFER];
        let tx = |bits: u8| vec![0u8; if bits & 64 != 0 { 4 * BUFFER } else { BUFFER }];
        Self {
            now,
            sides: [
                S::client(config(bits[CLIENT]), id, tx(bits[CLIENT]), buf(), now),
                S::server(config(bits[SERVER]), tx(bits[SERVER]), buf(), now),
            ],
            links: [VecDeque::new(), VecDeque::new()],
            sent: [0; 2],
            tokens: [Vec::new(), Vec::new()],
            paused: [false; 2],
            seen: [Seen::default(), Seen::default()],
            injected: false,
            restarted: false,
            server_session: None,
            faulty: false,
            first_timeout: [None; 2],
            heard: [None; 2],
            settling: false,
            latency: Duration::from_millis([0, 1, 20, 100][usize::from(latency & 3)]),
            max_rto: bits.map(max_rto),
            graceful: false,
            tx_buf: vec![0u8; TX_BUF],
        }
    }

    /// Checks a packet `side` wrote, and puts it on the link.
    fn transmitted(&mut self, side: usize, len: usize, room: usize) {
        assert!(len <= room, "{}: poll_transmit wrote {len} bytes into {room}", NAMES[side]);
        let bytes = self.tx_buf[..len].to_vec();
        let repr = match Repr::parse(&bytes) {
            Ok(repr) => repr,
            Err(error) => {
                panic!("{}: sent a packet that does not parse ({error}): {bytes:02x?}", NAMES[side])
            }
        };
        trace!("  {} sends {repr:?}", NAMES[side]);
        if repr.kind == PacketType::Data {
            let max = self.sides[side].peer().expect("DATA before the handshake").max_payload;
            assert!(
                repr.payload.len() <= usize::from(max),
                "{}: DATA over the peer's max_payload",
                NAMES[side]
            );
        }
        let link = &mut self.links[side];
        if link.len() >= LINK_CAP {
            link.pop_front();
            self.faulty = true;
        }
        link.push_back(bytes);
    }

    fn pump(&mut self, side: usize) {
        for _ in 0..PUMP_CAP {
            match self.sides[side].poll_transmit(self.now, &mut self.tx_buf) {
                Ok(Some(len)) => self.transmitted(side, len, TX_BUF),
                Ok(None) => return,
                Err(error) => panic!("{}: {error} with a {TX_BUF}-byte buffer", NAMES[side]),
            }
        }
    }

    /// The driver loop after an input: transmit, read events, transmit what reading freed.
    fn after(&mut self) {
        self.watch_server();
        self.pump(CLIENT);
        self.pump(SERVER);
        for side in [CLIENT, SERVER] {
            if !self.paused[side] {
                self.drain_events(side, EVENT_CAP);
            }
        }
        self.pump(CLIENT);
        self.pump(SERVER);
        self.watch_server();
    }

    /// Notes a server restart: its session (a peer and an id) replaced by another, or dropped
    /// (only a restart clears the peer; a restart whose handshake then fails leaves none).
    fn watch_server(&mut self) {
        let server = &self.sides[SERVER];
        let now = server.peer().map(|_| server.session_id());
        match (self.server_session, now) {
            (Some(before), Some(id)) if before != id => self.restarted = true,
            (Some(_), None) => self.restarted = true,
            _ => {}
        }
        self.server_session = now;
    }

    fn drain_events(&mut self, side: usize, cap: usize) {
        for _ in 0..cap {
            let event = match self.sides[side].poll_event() {
                None => return,
                Some(Event::Connected) => Ev::Connected,
                Some(Event::Message(m)) => Ev::Message(m.to_vec()),
                Some(Event::Pong { token, .. }) => Ev::Pong(token),
                Some(Event::Closed(reason)) => Ev::Closed(reason),
                Some(_) => Ev::Other,
            };
            self.on_event(side, event);
        }
    }

    fn on_event(&mut self, side: usize, event: Ev) {
        let name = NAMES[side];
        match &event {
            Ev::Message(m) => trace!("  {name} event Message {:?}", message::check(m)),
            Ev::Connected => trace!("  {name} event Connected"),
            Ev::Pong(token) => trace!("  {name} event Pong {token}"),
            Ev::Closed(reason) => trace!("  {name} event Closed({reason:?})"),
            Ev::Other => trace!("  {name} event (other)"),
        }
        let seen = &mut self.seen[side];
        match event {
            Ev::Connected => {
                if side == CLIENT {
                    assert!(seen.connects == 0 && !seen.closed, "client: Connected again or after Closed");
                } else {
                    assert!(!seen.connected || self.injected, "server: Connected twice without Closed");
                }
                seen.connects += 1;
                seen.connected = true;
                seen.closed = false;
            }
            Ev::Closed(reason) => {
                assert!(!(side == CLIENT && seen.closed), "client: Closed twice");
                // `close` before the handshake completes also reports `Local`: not a graceful end.
                if seen.connected && matches!(reason, CloseReason::Local | CloseReason::Peer) {
                    self.graceful = true;
                }
                seen.closed = true;
                seen.connected = false;
                // A dead link on the perfect link, declared although the peer is alive and was
                // heard after this side had started retransmitting there. Not a failure: a peer
                // that stays silent (say while it waits for its own timeout), packets still
                // arriving from a peer that has ended, or a timeout capped below two round trips
                // (retries then fire before an answer can arrive, and the dead-link limit is
                // reached by configuration).
                let rto_cap = self.max_rto[side].max(MIN_RTO);
                let peer = self.sides[1 - side].state();
                if let (CloseReason::TimedOut(Timeout::DeadLink), Some(first), Some(heard)) =
                    (reason, self.first_timeout[side], self.heard[side])
                    && 4 * self.latency < rto_cap
                    && peer != State::Closed
                {
                    assert!(
                        heard <= first,
                        "{name}: dead link declared on a perfect link at {:?}, though the peer ({peer:?}) \
                         was heard at {heard:?}, after the first retransmission timeout at {first:?}",
                        self.now
                    );
                }
            }
            Ev::Message(m) => {
                if side == CLIENT || !self.injected {
                    assert!(seen.connected, "{name}: a message outside Connected..Closed");
                }
                self.on_message(side, &m);
            }
            Ev::Pong(token) => {
                assert_ne!(token, 0, "{name}: a keepalive pong was reported");
                if !self.injected {
                    assert!(
                        self.tokens[side].contains(&token),
                        "{name}: Pong for token {token} never issued"
                    );
                }
            }
            Ev::Other => {}
        }
    }

    fn on_message(&mut self, side: usize, m: &[u8]) {
        let name = NAMES[side];
        let sender = 1 - side;
        let seen = &mut self.seen[side];
        let Some((from, index)) = message::check(m) else {
            assert!(self.injected, "{name}: received a message nobody sent: {m:02x?}");
            return;
        };
        assert_eq!(from, sender, "{name}: received its own message {index}");
        assert!(index < self.sent[sender], "{name}: message {index} was never sent");
        if !self.injected {
            assert_eq!(index, seen.delivered, "{name}: message {index} out of order (gap or duplicate)");
        } else if !self.restarted
            && let Some(last) = seen.last
        {
            assert!(index > last, "{name}: message {index} after {last}");
        }
        seen.last = Some(index);
        seen.delivered += 1;
    }

    fn deliver_bytes(&mut self, to: usize, bytes: &[u8]) {
        trace!("  {} gets {:?} at {:?}", NAMES[to], Repr::parse(bytes), self.now);
        match Repr::parse(bytes) {
            Ok(repr) => {
                self.heard[to] = Some(self.now);
                // A side that takes its events takes a message lent from the packet where it can.
                if self.paused[to] {
                    self.sides[to].handle_packet(self.now, &repr);
                } else if self.sides[to].handle_packet_lent(self.now, &repr) {
                    self.on_event(to, Ev::Message(repr.payload.to_vec()));
                }
            }
            Err(error) => self.sides[to].handle_decode_error(self.now, &error),
        }
    }

    /// Delivers packet `index` (modulo the queue) from side `from`'s link.
    fn deliver(&mut self, from: usize, index: usize) {
        let link = &mut self.links[from];
        if link.is_empty() {
            return;
        }
        let index = index % link.len();
        self.faulty |= index != 0;
        let bytes = link.remove(index).expect("index in range");
        self.deliver_bytes(1 - from, &bytes);
    }

    fn deliver_all(&mut self, batch: bool) {
        if batch {
            // Everything queued now, and nothing sent in between.
            for from in [CLIENT, SERVER] {
                while let Some(bytes) = self.links[from].pop_front() {
                    self.deliver_bytes(1 - from, &bytes);
                }
            }
            return;
        }
        for _ in 0..4 * LINK_CAP {
            if self.links.iter().all(VecDeque::is_empty) {
                return;
            }
            for from in [CLIENT, SERVER] {
                self.deliver(from, 0);
                self.after();
            }
        }
    }

    fn run_timers(&mut self) {
        for side in [CLIENT, SERVER] {
            for _ in 0..4 {
                match self.sides[side].poll_timeout() {
                    Some(at) if at <= self.now => {
                        trace!("  {} handle_timeout at {:?}", NAMES[side], self.now);
                        let before = self.sides[side].stats().timeouts;
                        self.sides[side].handle_timeout(self.now);
                        if self.settling
                            && self.first_timeout[side].is_none()
                            && self.sides[side].stats().timeouts > before
                        {
                            self.first_timeout[side] = Some(self.now);
                        }
                    }
                    _ => break,
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.sides.iter().filter_map(S::poll_timeout).min()
    }

    fn send(&mut self, side: usize, len: u16) {
        let index = self.sent[side];
        let m = message::build(side, index, len);
        let session = &mut self.sides[side];
        let result = session.send(self.now, &m);
        trace!("  {} send {index} ({} bytes): {result:?}", NAMES[side], m.len());
        match result {
            Ok(()) => self.sent[side] += 1,
            Err(SendError::WouldBlock) => assert!(
                session.send_buffer_free() < m.len() + 4,
                "{}: WouldBlock with {} bytes free for a {}-byte message",
                NAMES[side],
                session.send_buffer_free(),
                m.len()
            ),
            Err(SendError::TooLarge { max }) => assert!(m.len() > max, "{}: TooLarge", NAMES[side]),
            Err(SendError::NotConnected) => {
                assert!(
                    matches!(session.state(), State::Listen | State::HelloSent) || session.peer().is_none()
                )
            }
            Err(SendError::Closing) => {
                assert!(matches!(session.state(), State::Closing | State::CloseSent | State::Draining))
            }
            Err(SendError::Closed) => assert_eq!(session.state(), State::Closed),
            Err(_) => {}
        }
    }

    /// A packet from input bytes, given to `side` as parsed (or as a decode error), or raw.
    fn inject(&mut self, input: &mut Bytes<'_>) {
        let mode = input.u8();
        let side = usize::from(mode & 1);
        let (kind, seq, ack, more, mut payload) = if mode & 4 != 0 && !self.links[1 - side].is_empty() {
            // A packet on its way to `side`, with fields changed.
            let link = &self.links[1 - side];
            let bytes = link[usize::from(input.u8()) % link.len()].clone();
            let Ok(base) = Repr::parse(&bytes) else { return };
            let change = input.u8();
            let kind = if change & 1 != 0 { PacketType::from(input.u8()) } else { base.kind };
            let seq = SeqNumber(base.seq.0.wrapping_add(u16::from(input.u8()).wrapping_sub(128)));
            let ack = match (change & 2 != 0, base.ack) {
                (false, ack) => ack,
                (true, Some(_)) => None,
                (true, None) => Some(SeqNumber(input.u16())),
            };
            let more = base.more ^ (change & 4 != 0);
            (kind, seq, ack, more, base.payload.to_vec())
        } else {
            let kind = PacketType::from(input.u8());
            let seq = SeqNumber(input.u16());
            let flags = input.u8();
            let ack = (flags & 1 != 0).then(|| SeqNumber(input.u16()));
            let len = usize::from(input.u8());
            (kind, seq, ack, flags & 2 != 0, input.take(len))
        };
        if kind == PacketType::Data {
            message::mask(&mut payload);
        }
        let repr = Repr { kind, seq, ack, more, payload: &payload };
        // Before it arrives: a message lent from it is reported at once.
        self.injected = true;
        if mode & 2 != 0 {
            // Outside the contract of `handle_packet` (a Repr that `parse` would not return:
            // unknown type, short control payload, MORE on a control packet), yet it must not
            // panic.
            self.sides[side].handle_packet(self.now, &repr);
        } else {
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut bytes).expect("buffer_len bytes");
            self.deliver_bytes(side, &bytes);
        }
    }

    fn inject_decode_error(&mut self, input: &mut Bytes<'_>) {
        let b = input.u8();
        let (x, y) = (usize::from(input.u16()), input.u8());
        let error = match b >> 1 & 7 {
            0 => DecodeError::Truncated { len: x, needed: 13 },
            1 => DecodeError::TrailingBytes { len: x, expected: 13 },
            2 => DecodeError::BadCrc { received: x as u32, computed: u32::from(y) },
            3 => DecodeError::BadVersion { version: y },
            4 => DecodeError::UnknownType { kind: y },
            5 => DecodeError::TooLong { len: x, max: 13 },
            6 => DecodeError::BadCobs,
            _ => DecodeError::BadPayload { kind: y },
        };
        self.sides[usize::from(b & 1)].handle_decode_error(self.now, &error);
    }

    fn corrupt(&mut self, input: &mut Bytes<'_>) {
        let (which, offset, mask) = (input.u8(), usize::from(input.u16()), input.u8());
        let from = usize::from(which & 1);
        let link = &mut self.links[from];
        if link.is_empty() || mask == 0 {
            return;
        }
        let i = usize::from(which >> 1) % link.len();
        let bytes = &mut link[i];
        let at = offset % bytes.len();
        let before = bytes.clone();
        bytes[at] ^= mask;
        self.faulty = true;
        // CRC-32C catches any flip of up to 8 bits in one byte; should one still parse, and
        // parse differently, it is junk.
        if Repr::parse(bytes).is_ok_and(|r| Repr::parse(&before).is_ok_and(|b| b != r)) {
            self.injected = true;
        }
    }

    fn op(&mut self, input: &mut Bytes<'_>) {
        let code = input.u8();
        trace!(
            "op {} [{:?} {:?}] links {}/{}",
            code & 15,
            self.sides[CLIENT].state(),
            self.sides[SERVER].state(),
            self.links[CLIENT].len(),
            self.links[SERVER].len()
        );
        match code & 15 {
            0 => self.deliver(CLIENT, 0),
            1 => self.deliver(SERVER, 0),
            2 => {
                let b = input.u8();
                self.deliver(usize::from(b & 1), usize::from(b >> 1));
            }
            3 => {
                let b = input.u8();
                let link = &mut self.links[usize::from(b & 1)];
                if !link.is_empty() {
                    link.remove(usize::from(b >> 1) % link.len());
                    self.faulty = true;
                }
            }
            4 => {
                let (b, place) = (input.u8(), usize::from(input.u8()));
                let link = &mut self.links[usize::from(b & 1)];
                if !link.is_empty() && link.len() < LINK_CAP {
                    let copy = link[usize::from(b >> 1) % link.len()].clone();
                    link.insert(place % (link.len() + 1), copy);
                    self.faulty = true;
                }
            }
            5 => {
                let batch = input.u8() & 1 != 0;
                self.deliver_all(batch);
            }
            6 => {
                let b = input.u8();
                let n = u64::from(b & 63);
                let micros = match b >> 6 {
                    0 => n * 100,
                    1 => n * 1_000,
                    2 => n * 100_000,
                    _ => n * 1_000_000,
                };
                self.now = self.now + Duration::from_micros(micros);
                self.run_timers();
            }
            7 => {
                if let Some(at) = self.next_deadline() {
                    self.now = self.now.max(at);
                }
                self.run_timers();
            }
            8 | 9 => {
                let len = u16::from(input.u8());
                self.send(usize::from(code & 1), len);
            }
            10 => {
                let b = input.u8();
                let side = usize::from(b & 1);
                if let Ok(token) = self.sides[side].ping(self.now, u16::from(b >> 1)) {
                    self.tokens[side].push(token);
                }
            }
            11 => {
                let b = input.u8();
                let side = usize::from(b & 1);
                if b & 2 == 0 {
                    self.sides[side].close(self.now);
                } else {
                    let (code, detail) = (ErrorCode::from(input.u16()), input.u32());
                    self.sides[side].abort(code, detail);
                }
            }
            12 => self.inject(input),
            13 => self.inject_decode_error(input),
            14 => {
                let b = input.u8();
                let side = usize::from(b & 1);
                if b & 2 == 0 {
                    self.paused[side] = !self.paused[side];
                } else {
                    let room = usize::from(input.u8() % 128);
                    match self.sides[side].poll_transmit(self.now, &mut self.tx_buf[..room]) {
                        Ok(Some(len)) => self.transmitted(side, len, room),
                        Ok(None) => {}
                        Err(e) => assert!(e.required > room, "BufferTooSmall needs {} of {room}", e.required),
                    }
                }
            }
            _ => self.corrupt(input),
        }
        self.after();
    }

    fn all_delivered(&self) -> bool {
        self.seen[SERVER].delivered == self.sent[CLIENT] && self.seen[CLIENT].delivered == self.sent[SERVER]
    }

    fn retransmitting(&self) -> bool {
        self.sides.iter().all(|s| s.peer().is_some_and(|p| p.agreed.contains(Capabilities::RETRANSMIT)))
    }

    fn closing(&self) -> bool {
        self.sides.iter().any(|s| matches!(s.state(), State::Closing | State::CloseSent | State::Draining))
    }

    /// A perfect link (every packet arrives, in order, after `latency`) until everything sent is
    /// delivered and no close is under way, or the time is up.
    fn settle(&mut self) {
        let end = self.now + SETTLE;
        self.settling = true;
        let mut flight: [VecDeque<(Instant, Vec<u8>)>; 2] = [VecDeque::new(), VecDeque::new()];
        for _ in 0..20_000 {
            for (from, queue) in flight.iter_mut().enumerate() {
                let at = self.now + self.latency;
                queue.extend(self.links[from].drain(..).map(|bytes| (at, bytes)));
            }
            let mut arrived = false;
            for (from, queue) in flight.iter_mut().enumerate() {
                while queue.front().is_some_and(|(at, _)| *at <= self.now) {
                    let (_, bytes) = queue.pop_front().expect("a front packet");
                    self.deliver_bytes(1 - from, &bytes);
                    self.after();
                    arrived = true;
                }
            }
            if arrived {
                continue;
            }
            if flight.iter().all(VecDeque::is_empty) && self.all_delivered() && !self.closing() {
                return;
            }
            let next_arrival = flight.iter().filter_map(|q| q.front().map(|(at, _)| *at)).min();
            match next_arrival.into_iter().chain(self.next_deadline()).min() {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.run_timers();
                    self.after();
                }
                _ => return,
            }
        }
    }

    fn finish(&mut self) {
        trace!("finish");
        self.paused = [false; 2];
        self.after();
        for side in [CLIENT, SERVER] {
            self.drain_events(side, 10_000);
        }
        if self.injected {
            return;
        }
        // Liveness: with retransmission agreed the protocol repairs any earlier fault; without
        // it, only a link that never faulted is owed delivery.
        if self.retransmitting() || !self.faulty {
            self.settle();
            let states = [self.sides[CLIENT].state(), self.sides[SERVER].state()];
            if states == [State::Established; 2] {
                assert!(
                    self.all_delivered(),
                    "stalled on a perfect link: client sent {} (server got {}), server sent {} (client got {})",
                    self.sent[CLIENT],
                    self.seen[SERVER].delivered,
                    self.sent[SERVER],
                    self.seen[CLIENT].delivered,
                );
            }
            assert!(
                !self.closing(),
                "a close still under way after {SETTLE:?} on a perfect link: {states:?}"
            );
        }
        if self.graceful {
            assert!(
                self.all_delivered(),
                "graceful close with messages missing: client sent {} (server got {}), server sent {} (client got {})",
                self.sent[CLIENT],
                self.seen[SERVER].delivered,
                self.sent[SERVER],
                self.seen[CLIENT].delivered,
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes { data };
    let mut world = World::new(&mut input);
    world.after();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        world.op(&mut input);
    }
    world.finish();
});
