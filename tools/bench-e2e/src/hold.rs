//! Many idle framelink sessions held open against one server, while its memory, threads and
//! round trip are measured.
//!
//! One thread drives every held session without blocking (mio, and the core's sans-I/O
//! [`Connection`]): it connects, completes each handshake, then only answers what the server
//! sends (keepalive PINGs) until the hold ends. Another thread runs the ping series, with the
//! blocking std [`Link`](framelink_std::Link), as `clients` does.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use framelink_core::connection::Connection;
use framelink_core::framing::LengthDelimitedDecoder;
use framelink_core::session::{Config, Event, Session};
use framelink_core::wire::MAX_PACKET;
use framelink_std::{Addr, StdClock, Transport};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::clients::ping_series;
use crate::rtt::RttPercentiles;

/// The largest message and packet payload a held session announces: it never sends data.
const HELD_MAX_MESSAGE: u32 = 1024;
/// Size of each held session's send and receive buffer (the message, its 4-byte length, room).
const HELD_BUFFER: usize = 2048;
/// How often the driving thread runs the sessions' timers.
const TICK: Duration = Duration::from_millis(100);
/// How long the server gets to settle before its memory is read, and to let go afterwards.
const SETTLE: Duration = Duration::from_secs(2);

/// Arguments of `hold`.
#[derive(Args, Debug)]
pub(crate) struct HoldArgs {
    /// The server: tcp://127.0.0.1:PORT (a `framelink serve`)
    #[arg(long)]
    connect: Addr,
    /// The server's process id, whose /proc/PID/status gives its RSS and threads
    #[arg(long)]
    server_pid: u32,
    /// Sessions to open and hold
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Handshakes in progress at once while opening
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Seconds allowed for opening every session; those not handshaken by then count as failed
    #[arg(long, default_value_t = 120.0)]
    open_seconds: f64,
    /// Seconds to hold the sessions idle once open (the ping series runs in this time)
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// ECHO requests per second of each ping series
    #[arg(long, default_value_t = 2000.0)]
    ping_rate: f64,
    /// Seconds of each ping series: one with no session held, one with all held
    #[arg(long, default_value_t = 5.0)]
    ping_seconds: f64,
    /// Bytes of each ECHO message, its 6-byte header included
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Keepalive interval of the held sessions in seconds; longer than the server's, so that
    /// only the server's keepalives travel and the held side just answers
    #[arg(long, default_value_t = 20.0)]
    keepalive: f64,
}

/// The server's memory and threads at one moment.
#[derive(Debug, Clone, Copy, Serialize)]
struct ServerSample {
    rss_kib: u64,
    threads: u64,
}

/// A ping series: RTT percentiles and requests lost.
#[derive(Debug, Serialize)]
struct PingReport {
    sent: u64,
    lost: u64,
    rtt: Option<RttPercentiles>,
}

/// What `hold` prints.
#[derive(Debug, Serialize)]
struct HoldReport {
    sessions: usize,
    /// Sessions that completed their handshake.
    held: usize,
    /// Sessions that failed to connect or handshake, or were not done in time.
    failed: usize,
    /// Held sessions that ended before the hold did (the server closed them, or went silent).
    lost: usize,
    open_seconds: f64,
    hold_seconds: f64,
    /// Packets the server sent to held sessions after their handshakes (keepalive PINGs, each
    /// answered with a PONG).
    server_packets: u64,
    server_before: ServerSample,
    /// After opening, once settled.
    server_held: ServerSample,
    /// At the end of the hold.
    server_held_end: ServerSample,
    /// After every held session was closed, once settled.
    server_after: ServerSample,
    /// (RSS with every session held - RSS before) / sessions held, in KiB.
    rss_per_session_kib: Option<f64>,
    ping_none_held: PingReport,
    ping_all_held: PingReport,
}

/// Opens and holds the sessions, measures, prints the report as JSON.
pub(crate) fn run(args: &HoldArgs) -> io::Result<()> {
    if args.connect.transport != Transport::Tcp {
        return Err(io::Error::other("hold speaks framelink over TCP: give tcp://HOST:PORT"));
    }
    if args.sessions == 0 || args.concurrency == 0 || args.ping_rate <= 0.0 || args.size < 6 {
        return Err(io::Error::other("need sessions, concurrency, a positive ping rate and --size >= 6"));
    }
    let target = *args.connect.resolve()?.first().ok_or_else(|| io::Error::other("no address"))?;
    let pid = args.server_pid;
    let server_before = sample(pid)?;
    let ping_none_held = ping(args)?;

    let mut holder = Holder::new(target, args)?;
    let opening = Instant::now();
    holder.open(args.sessions, args.concurrency, opening + Duration::from_secs_f64(args.open_seconds))?;
    let open_seconds = opening.elapsed().as_secs_f64();
    let held = holder.held;
    let hold_start = Instant::now();
    holder.run_until(|_| Instant::now() >= hold_start + SETTLE)?;
    let server_held = sample(pid)?;

    let series = ping_thread(args)?;
    holder.run_until(|_| series.is_finished())?;
    let ping_all_held = series.join().map_err(|_| io::Error::other("the ping series panicked"))??;
    let hold_end = hold_start + Duration::from_secs_f64(args.seconds).max(SETTLE);
    holder.run_until(|_| Instant::now() >= hold_end)?;
    let server_held_end = sample(pid)?;
    let hold_seconds = hold_start.elapsed().as_secs_f64();
    let (lost, server_packets) = (holder.lost, holder.close_all());
    thread::sleep(SETTLE);
    let server_after = sample(pid)?;

    let report = HoldReport {
        sessions: args.sessions,
        held,
        failed: args.sessions - held,
        lost,
        open_seconds,
        hold_seconds,
        server_packets,
        server_before,
        server_held,
        server_held_end,
        server_after,
        rss_per_session_kib: (held > 0)
            .then(|| server_held.rss_kib.saturating_sub(server_before.rss_kib) as f64 / held as f64),
        ping_none_held,
        ping_all_held,
    };
    println!("{}", serde_json::to_string(&report).map_err(io::Error::other)?);
    Ok(())
}

/// A ping series run on this thread.
fn ping(args: &HoldArgs) -> io::Result<PingReport> {
    ping_thread(args)?.join().map_err(|_| io::Error::other("the ping series panicked"))?
}

/// A ping series run on a thread of its own.
fn ping_thread(args: &HoldArgs) -> io::Result<thread::JoinHandle<io::Result<PingReport>>> {
    let (addr, size) = (args.connect.clone(), args.size);
    let interval = Duration::from_secs_f64(1.0 / args.ping_rate);
    let seconds = Duration::from_secs_f64(args.ping_seconds);
    thread::Builder::new().name("ping".into()).spawn(move || {
        let mut result = ping_series(&addr, size, Duration::ZERO, interval, seconds)?;
        Ok(PingReport { sent: result.sent, lost: result.lost, rtt: RttPercentiles::of(&mut result.samples) })
    })
}

/// The server's resident memory and thread count, from /proc/PID/status.
fn sample(pid: u32) -> io::Result<ServerSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} in /proc/{pid}/status")))
    };
    Ok(ServerSample { rss_kib: field("VmRSS:")?, threads: field("Threads:")? })
}

/// A held session's connection: a client session in small heap buffers, its length-delimited
/// decoder growing only for a frame that arrives in pieces.
type HeldConnection = Connection<LengthDelimitedDecoder<MAX_PACKET, Vec<u8>>, Vec<u8>>;

/// One held session.
struct Held {
    stream: TcpStream,
    connection: HeldConnection,
    /// Framed bytes the socket did not take yet.
    unsent: Vec<u8>,
    /// The TCP connect completed.
    connected: bool,
    /// The handshake completed.
    handshaken: bool,
}

/// Every held session, driven from one thread.
struct Holder {
    poll: Poll,
    events: Events,
    target: SocketAddr,
    config: Config,
    clock: StdClock,
    /// Indexed by token; `None` once a session ended or failed.
    sessions: Vec<Option<Held>>,
    /// Sessions not yet handshaken, nor failed.
    opening: usize,
    held: usize,
    lost: usize,
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

impl Holder {
    fn new(target: SocketAddr, args: &HoldArgs) -> io::Result<Self> {
        let config = Config::new()
            .max_payload(HELD_MAX_MESSAGE as u16)
            .max_message(HELD_MAX_MESSAGE)
            .keepalive(Duration::from_secs_f64(args.keepalive))
            .idle_timeout(Duration::from_secs_f64(args.keepalive * 3.0))
            .handshake_timeout(Duration::from_secs_f64(args.open_seconds));
        let seed = std::process::id().wrapping_mul(0x9E37_79B9);
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            target,
            config,
            clock: StdClock::new(),
            sessions: Vec::with_capacity(args.sessions),
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
    /// have failed, or `until`.
    fn open(&mut self, count: usize, concurrency: usize, until: Instant) -> io::Result<()> {
        while (self.sessions.len() < count || self.opening > 0) && Instant::now() < until {
            while self.sessions.len() < count && self.opening < concurrency {
                self.start_one()?;
            }
            self.turn()?;
        }
        Ok(())
    }

    /// Starts one TCP connect; a refused one counts as failed.
    fn start_one(&mut self) -> io::Result<()> {
        let token = Token(self.sessions.len());
        let mut stream = match TcpStream::connect(self.target) {
            Ok(stream) => stream,
            Err(error) if error.raw_os_error() == Some(24) => {
                return Err(io::Error::other("out of file descriptors: raise ulimit -n"));
            }
            Err(_) => {
                self.sessions.push(None);
                return Ok(());
            }
        };
        self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let id = self.seed ^ (token.0 as u32).wrapping_mul(0x85EB_CA6B);
        let now = self.clock.now();
        let session = Session::client(self.config, id, vec![0; HELD_BUFFER], vec![0; HELD_BUFFER], now);
        let decoder = LengthDelimitedDecoder::with_buffer(Vec::new());
        let connection = Connection::new(session, decoder, Vec::new());
        self.sessions.push(Some(Held {
            stream,
            connection,
            unsent: Vec::new(),
            connected: false,
            handshaken: false,
        }));
        self.opening += 1;
        Ok(())
    }

    /// Drives the sessions until `done` says so.
    fn run_until(&mut self, mut done: impl FnMut(&Self) -> bool) -> io::Result<()> {
        while !done(self) {
            self.turn()?;
        }
        Ok(())
    }

    /// Waits for socket events until the next timer scan at most, and handles them; then runs
    /// the timers that are due if the scan is.
    fn turn(&mut self) -> io::Result<()> {
        let wait = self.next_scan.saturating_duration_since(Instant::now());
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        let ready: Vec<usize> = self.events.iter().map(|event| event.token().0).collect();
        for index in ready {
            self.service(index, false);
        }
        if Instant::now() < self.next_scan {
            return Ok(());
        }
        self.next_scan = Instant::now() + TICK;
        let now = self.clock.now();
        for index in 0..self.sessions.len() {
            let due = self.sessions[index]
                .as_ref()
                .and_then(|held| held.connection.poll_timeout())
                .is_some_and(|deadline| deadline <= now);
            if due {
                self.service(index, true);
            }
        }
        Ok(())
    }

    /// Reads, runs timers, writes and handles events for session `index`; ends it on failure.
    fn service(&mut self, index: usize, timers: bool) {
        let Some(held) = self.sessions.get_mut(index).and_then(Option::as_mut) else { return };
        let now = self.clock.now();
        let mut alive = pump(held, now, timers, &mut self.scratch);
        while alive {
            match held.connection.next_event() {
                Some(Ok(Event::Connected)) => {
                    held.handshaken = true;
                    held.connection.shrink();
                    self.opening -= 1;
                    self.held += 1;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => alive = false,
                None => break,
            }
        }
        // Flush whatever the events made due.
        if alive && flush(held, now, &mut self.scratch) {
            return;
        }
        if let Some(mut held) = self.sessions[index].take() {
            let _ = self.poll.registry().deregister(&mut held.stream);
            self.packets += packets_after_handshake(&held);
            if held.handshaken {
                self.held -= 1;
                self.lost += 1;
            } else {
                self.opening -= 1;
            }
        }
    }

    /// Closes every session (drops its socket); returns the packets the held sessions received
    /// after their handshakes.
    fn close_all(mut self) -> u64 {
        let held = self.sessions.drain(..).flatten();
        self.packets + held.map(|held| packets_after_handshake(&held)).sum::<u64>()
    }
}

/// Packets a session received after its HELLO-ACK.
fn packets_after_handshake(held: &Held) -> u64 {
    held.connection.session().stats().packets_received.saturating_sub(1)
}

/// Completes the connect, reads what the socket has, runs the timers if asked, and writes;
/// false once the session cannot go on (the socket failed or closed).
fn pump(held: &mut Held, now: framelink_core::Instant, timers: bool, scratch: &mut [u8]) -> bool {
    if !held.connected {
        match held.stream.peer_addr() {
            Ok(_) => held.connected = true,
            Err(error) if error.kind() == ErrorKind::NotConnected => {
                return held.stream.take_error().is_ok_and(|error| error.is_none());
            }
            Err(_) => return false,
        }
        let _ = held.stream.set_nodelay(true);
    }
    loop {
        match held.stream.read(scratch) {
            Ok(0) => return false,
            Ok(n) => held.connection.handle_bytes(now, &scratch[..n]),
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if timers {
        held.connection.handle_timeout(now);
    }
    flush(held, now, scratch)
}

/// Writes what the socket did not take before, then every frame due; false if the socket
/// failed.
fn flush(held: &mut Held, now: framelink_core::Instant, scratch: &mut [u8]) -> bool {
    if !held.connected {
        return true;
    }
    loop {
        while !held.unsent.is_empty() {
            match held.stream.write(&held.unsent) {
                Ok(0) => return false,
                Ok(n) => {
                    held.unsent.drain(..n);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        match held.connection.poll_transmit(now, scratch) {
            Ok(0) => return true,
            Ok(n) => held.unsent.extend_from_slice(&scratch[..n]),
            Err(_) => return false,
        }
    }
}
