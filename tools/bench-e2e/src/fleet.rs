//! Many framelink client sessions over TCP, driven from one thread without blocking: mio for
//! the sockets and the core's sans-I/O [`Connection`] for each session.
//!
//! `hold` keeps thousands of them idle; `clients` pings through them. A fleet opens its
//! sessions a bounded number of handshakes at a time, then [`turn`](Fleet::turn)s: it waits for
//! socket events (or a [`WakeTimer`] set to the caller's next deadline), reads, hands each
//! message to the caller, runs the sessions' timers every [`TICK`], and writes what is due.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use framelink_core::connection::Connection;
use framelink_core::framing::LengthDelimitedDecoder;
use framelink_core::session::{Config, Event, Session};
use framelink_core::wire::MAX_PACKET;
use framelink_std::StdClock;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::timer::WakeTimer;

/// How often the sessions' timers are checked.
const TICK: Duration = Duration::from_millis(100);
/// The poll token of the [`WakeTimer`]; sessions take tokens from 0 up.
const TIMER: Token = Token(usize::MAX);

/// Fleets made in this process so far, for their session ids.
static FLEETS: AtomicU32 = AtomicU32::new(0);

/// A session's connection: a client session in fixed heap buffers, its length-delimited
/// decoder growing only for a frame that arrives in pieces.
type TcpConnection = Connection<LengthDelimitedDecoder<MAX_PACKET, Vec<u8>>, Vec<u8>>;

/// One session of a fleet.
struct Member {
    stream: TcpStream,
    connection: TcpConnection,
    /// Framed bytes the socket did not take yet.
    unsent: Vec<u8>,
    /// The TCP connect completed.
    connected: bool,
    /// The handshake completed.
    handshaken: bool,
}

/// Client sessions to one server, driven from one thread.
pub(crate) struct Fleet {
    poll: Poll,
    events: Events,
    timer: WakeTimer,
    target: SocketAddr,
    config: Config,
    /// Bytes of each session's send and receive buffer.
    buffer_len: usize,
    clock: StdClock,
    /// Indexed by token; `None` once a session ended or failed.
    members: Vec<Option<Member>>,
    /// Sessions not yet handshaken, nor failed.
    opening: usize,
    /// Sessions handshaken and not ended.
    pub(crate) held: usize,
    /// Handshaken sessions that ended (the server closed them, or went silent).
    pub(crate) lost: usize,
    /// Packets received after the handshake by sessions that ended.
    packets: u64,
    /// When the sessions' timers are next checked (every [`TICK`], not at every event: a scan
    /// of every session at each of thousands of events a second would load the CPU measured).
    next_scan: Instant,
    /// Scratch for reads and for frames to write.
    scratch: Vec<u8>,
    /// Seed of the session ids.
    seed: u32,
}

impl Fleet {
    /// An empty fleet for `target`; each session gets `config` and two buffers of
    /// `buffer_len` bytes.
    pub(crate) fn new(target: SocketAddr, config: Config, buffer_len: usize) -> io::Result<Self> {
        let poll = Poll::new()?;
        let timer = WakeTimer::new(poll.registry(), TIMER)?;
        // Session ids differ between the fleets of one process and between processes.
        let fleet = FLEETS.fetch_add(1, Ordering::Relaxed);
        let seed = std::process::id().wrapping_mul(0x9E37_79B9) ^ fleet.wrapping_mul(0x27D4_EB2F);
        Ok(Self {
            poll,
            events: Events::with_capacity(1024),
            timer,
            target,
            config,
            buffer_len,
            clock: StdClock::new(),
            members: Vec::new(),
            opening: 0,
            held: 0,
            lost: 0,
            packets: 0,
            next_scan: Instant::now(),
            scratch: vec![0; 64 * 1024],
            seed,
        })
    }

    /// Opens `count` sessions, at most `concurrency` handshakes at once, until all are held or
    /// have failed, or `until`. Session `i` is the `i`-th opened.
    pub(crate) fn open(&mut self, count: usize, concurrency: usize, until: Instant) -> io::Result<()> {
        self.members.reserve(count);
        while (self.members.len() < count || self.opening > 0) && Instant::now() < until {
            while self.members.len() < count && self.opening < concurrency {
                self.start_one()?;
            }
            self.turn(until, &mut |_, _, _| {})?;
        }
        Ok(())
    }

    /// Starts one TCP connect; a refused one counts as failed.
    fn start_one(&mut self) -> io::Result<()> {
        let token = Token(self.members.len());
        let mut stream = match TcpStream::connect(self.target) {
            Ok(stream) => stream,
            Err(error) if error.raw_os_error() == Some(24) => {
                return Err(io::Error::other("out of file descriptors: raise ulimit -n"));
            }
            Err(_) => {
                self.members.push(None);
                return Ok(());
            }
        };
        self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let id = self.seed ^ (token.0 as u32).wrapping_mul(0x85EB_CA6B);
        let now = self.clock.now();
        let (tx, rx) = (vec![0; self.buffer_len], vec![0; self.buffer_len]);
        let session = Session::client(self.config, id, tx, rx, now);
        let decoder = LengthDelimitedDecoder::with_buffer(Vec::new());
        let connection = Connection::new(session, decoder, Vec::new());
        self.members.push(Some(Member {
            stream,
            connection,
            unsent: Vec::new(),
            connected: false,
            handshaken: false,
        }));
        self.opening += 1;
        Ok(())
    }

    /// Drives the sessions, handing messages to nobody, until `done` says so.
    pub(crate) fn run_until(&mut self, mut done: impl FnMut(&Self) -> bool) -> io::Result<()> {
        while !done(self) {
            self.turn(self.next_scan, &mut |_, _, _| {})?;
        }
        Ok(())
    }

    /// Waits for socket events until `wake` at most (to the microsecond) and handles them,
    /// handing each message to `on_message` with its session's index and the time it was
    /// read; then runs the timers that are due if the scan is.
    pub(crate) fn turn(
        &mut self,
        wake: Instant,
        on_message: &mut impl FnMut(usize, &[u8], Instant),
    ) -> io::Result<()> {
        self.timer.arm(wake.min(self.next_scan))?;
        match self.poll.poll(&mut self.events, None) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        let ready: Vec<Token> = self.events.iter().map(|event| event.token()).collect();
        for token in ready {
            if token == TIMER {
                self.timer.clear();
            } else {
                self.service(token.0, false, on_message);
            }
        }
        if Instant::now() < self.next_scan {
            return Ok(());
        }
        self.next_scan = Instant::now() + TICK;
        let now = self.clock.now();
        for index in 0..self.members.len() {
            let due = self.members[index]
                .as_ref()
                .and_then(|member| member.connection.poll_timeout())
                .is_some_and(|deadline| deadline <= now);
            if due {
                self.service(index, true, on_message);
            }
        }
        Ok(())
    }

    /// Queues `message` on session `index` and writes it; false if the session is gone or its
    /// send buffer is full.
    pub(crate) fn send(&mut self, index: usize, message: &[u8]) -> bool {
        let Some(member) = self.members.get_mut(index).and_then(Option::as_mut) else { return false };
        let now = self.clock.now();
        if member.connection.session_mut().send(now, message).is_err() {
            return false;
        }
        if flush(member, now, &mut self.scratch) {
            return true;
        }
        self.end(index);
        false
    }

    /// Reads, runs timers, writes and handles events for session `index`; ends it on failure.
    fn service(&mut self, index: usize, timers: bool, on_message: &mut impl FnMut(usize, &[u8], Instant)) {
        let Some(member) = self.members.get_mut(index).and_then(Option::as_mut) else { return };
        let now = self.clock.now();
        let mut alive = pump(member, now, timers, &mut self.scratch);
        let read_at = Instant::now();
        while alive {
            match member.connection.next_event() {
                Some(Ok(Event::Connected)) => {
                    member.handshaken = true;
                    member.connection.shrink();
                    self.opening -= 1;
                    self.held += 1;
                }
                Some(Ok(Event::Message(message))) => on_message(index, message, read_at),
                Some(Ok(_)) => {}
                Some(Err(_)) => alive = false,
                None => break,
            }
        }
        // Flush whatever the events made due.
        if !(alive && flush(member, now, &mut self.scratch)) {
            self.end(index);
        }
    }

    /// Drops session `index` and counts it as lost or failed.
    fn end(&mut self, index: usize) {
        if let Some(mut member) = self.members[index].take() {
            let _ = self.poll.registry().deregister(&mut member.stream);
            self.packets += packets_after_handshake(&member);
            if member.handshaken {
                self.held -= 1;
                self.lost += 1;
            } else {
                self.opening -= 1;
            }
        }
    }

    /// Closes every session (drops its socket); returns the packets the held sessions received
    /// after their handshakes.
    pub(crate) fn close_all(mut self) -> u64 {
        let members = self.members.drain(..).flatten();
        self.packets + members.map(|member| packets_after_handshake(&member)).sum::<u64>()
    }
}

/// Packets a session received after its HELLO-ACK.
fn packets_after_handshake(member: &Member) -> u64 {
    member.connection.session().stats().packets_received.saturating_sub(1)
}

/// Completes the connect, reads what the socket has, runs the timers if asked, and writes;
/// false once the session cannot go on (the socket failed or closed).
fn pump(member: &mut Member, now: framelink_core::Instant, timers: bool, scratch: &mut [u8]) -> bool {
    if !member.connected {
        match member.stream.peer_addr() {
            Ok(_) => member.connected = true,
            Err(error) if error.kind() == ErrorKind::NotConnected => {
                return member.stream.take_error().is_ok_and(|error| error.is_none());
            }
            Err(_) => return false,
        }
        let _ = member.stream.set_nodelay(true);
    }
    loop {
        match member.stream.read(scratch) {
            Ok(0) => return false,
            Ok(n) => member.connection.handle_bytes(now, &scratch[..n]),
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if timers {
        member.connection.handle_timeout(now);
    }
    flush(member, now, scratch)
}

/// Writes what the socket did not take before, then every frame due; false if the socket
/// failed.
fn flush(member: &mut Member, now: framelink_core::Instant, scratch: &mut [u8]) -> bool {
    if !member.connected {
        return true;
    }
    loop {
        while !member.unsent.is_empty() {
            match member.stream.write(&member.unsent) {
                Ok(0) => return false,
                Ok(n) => {
                    member.unsent.drain(..n);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        match member.connection.poll_transmit(now, scratch) {
            Ok(0) => return true,
            Ok(n) => member.unsent.extend_from_slice(&scratch[..n]),
            Err(_) => return false,
        }
    }
}
