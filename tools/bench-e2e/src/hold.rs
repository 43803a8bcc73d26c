//! Many idle framelink sessions held open against one server, while its memory, threads and
//! round trip are measured.
//!
//! One thread drives every held session without blocking (a [`Fleet`]): it connects,
//! completes each handshake, then only answers what the server sends (keepalive PINGs) until
//! the hold ends. Another thread runs the ping series: one client of `clients`, driven the same
//! way.

use std::io;
use std::net::SocketAddr;
use std::thread;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
use std::time::{Duration, Instant};

use clap::Args;
use framelink_core::session::Config;
use framelink_std::{Addr, Transport};
use serde::Serialize;

use crate::clients::ping_series;
use crate::fleet::Fleet;
use crate::rtt::RttPercentiles;

/// The largest message and packet payload a held session announces: it never sends data.
const HELD_MAX_MESSAGE: u32 = 1024;
/// Size of each held session's send and receive buffer (the message, its 4-byte length, room).
const HELD_BUFFER: usize = 2048;
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
    /// Drive the held sessions from this CPU, while the ping series stays on the CPUs the tool
    /// was started on (with the server, under `taskset`): the load tool's own work of answering
    /// 10,000 sessions' keepalives is then not what the ping measures, the server's is
    #[arg(long)]
    fleet_cpu: Option<usize>,
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
    // Every ping series runs where the tool started, held sessions or not.
    let home = sched_getaffinity(None)?;
    let ping_none_held = ping(target, args, &home)?;

    if let Some(cpu) = args.fleet_cpu {
        let mut only = CpuSet::new();
        only.set(cpu);
        sched_setaffinity(None, &only)?;
    }
    let mut fleet = Fleet::new(target, held_config(args), HELD_BUFFER)?;
    let opening = Instant::now();
    fleet.open(args.sessions, args.concurrency, opening + Duration::from_secs_f64(args.open_seconds))?;
    let open_seconds = opening.elapsed().as_secs_f64();
    let held = fleet.held;
    let hold_start = Instant::now();
    fleet.run_until(|_| Instant::now() >= hold_start + SETTLE)?;
    let server_held = sample(pid)?;

    let series = ping_thread(target, args, &home)?;
    fleet.run_until(|_| series.is_finished())?;
    let ping_all_held = series.join().map_err(|_| io::Error::other("the ping series panicked"))??;
    let hold_end = hold_start + Duration::from_secs_f64(args.seconds).max(SETTLE);
    fleet.run_until(|_| Instant::now() >= hold_end)?;
    let server_held_end = sample(pid)?;
    let hold_seconds = hold_start.elapsed().as_secs_f64();
    let (lost, server_packets) = (fleet.lost, fleet.close_all());
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

/// The settings of a held session: small limits (it never sends data), and keepalives rarer
/// than the server's.
fn held_config(args: &HoldArgs) -> Config {
    Config::new()
        .max_payload(HELD_MAX_MESSAGE as u16)
        .max_message(HELD_MAX_MESSAGE)
        .keepalive(Duration::from_secs_f64(args.keepalive))
        .idle_timeout(Duration::from_secs_f64(args.keepalive * 3.0))
        .handshake_timeout(Duration::from_secs_f64(args.open_seconds))
}

/// A ping series on the CPUs `home`, waited for.
fn ping(target: SocketAddr, args: &HoldArgs, home: &CpuSet) -> io::Result<PingReport> {
    ping_thread(target, args, home)?.join().map_err(|_| io::Error::other("the ping series panicked"))?
}

/// A ping series run on a thread of its own, on the CPUs `home`.
fn ping_thread(
    target: SocketAddr,
    args: &HoldArgs,
    home: &CpuSet,
) -> io::Result<thread::JoinHandle<io::Result<PingReport>>> {
    let (size, rate) = (args.size, args.ping_rate);
    let seconds = Duration::from_secs_f64(args.ping_seconds);
    let home = *home;
    thread::Builder::new().name("ping".into()).spawn(move || {
        sched_setaffinity(None, &home)?;
        let mut result = ping_series(target, size, rate, seconds)?;
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
