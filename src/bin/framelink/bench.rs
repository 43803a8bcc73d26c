//! `framelink bench ADDR [-t S | --bytes N] [--size B] [--reverse] [-P N] [--bitrate R] [-i S]`:
//! throughput, a line per interval like iperf3, then the total.
//!
//! Forward, the links send SINK messages as fast as the session's credit allows and count the
//! bytes the responder ACKNOWLEDGED, never bytes written. Each link queues at most one message
//! beyond what its credit lets out, so what is in flight is bounded by the session's window and
//! credit, and stopping does not leave a backlog to drain (a device behind a slow UART).
//! Reverse, each link asks for a SOURCE stream and counts the pattern bytes received, every
//! one checked. Links run on their own threads; this thread reports.
//!
//! A link that makes no progress (nothing acknowledged while data waits, or no SOURCE data)
//! for `--stall-timeout` seconds ends the run with the summary so far; meanwhile the interval
//! lines say `stalled` and for how long.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use framelink::core::service::{Client, Reply, SINK_HEADER, SOURCE_HEADER, SOURCE_REQUEST_LEN};
use framelink::core::session::CloseReason;
use framelink::std::{Addr, Link, LinkConfig, LinkError, LinkEventRef, ServiceClient, Transport};
use serde::Serialize;

use crate::client::{ConnectArgs, REPLY_TIMEOUT, TICK, cancellable, connect_with, parse_addr};
use crate::interrupt;
use crate::output::{self, Failure, Mode, Outcome, Report, Run};
use crate::seconds;
use crate::size::{parse_bitrate, parse_bytes};

/// Bytes a TCP sender lets queue beyond what was written ([`Link::feed`] writes 128 KiB at a
/// time).
const FEED_BATCH: u64 = 256 * 1024;
/// Seconds a run lasts when neither `-t` nor `--bytes` is given (as iperf3).
const DEFAULT_TIME: Duration = Duration::from_secs(10);
/// The longest `-t` (a SOURCE request counts milliseconds in 32 bits).
const MAX_SECONDS: f64 = 1e6;
/// Parallel links at most.
const MAX_LINKS: i64 = 128;
/// Reverse: after this long without data, a PING checks that the server is still there (a
/// receiver sends nothing otherwise, and only a send finds out that a UDP peer is gone).
const PROBE: Duration = Duration::from_secs(1);
/// `--stall-timeout` when not given.
pub(crate) const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The links' keepalive interval unless the stall timeout asks for shorter (the default of
/// `LinkConfig`).
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(5);
/// In [`Shared::stalled_since`]: the link is making progress.
const PROGRESSING: u64 = u64::MAX;
/// What a forward link misses when it stalls.
const ACKNOWLEDGED: &str = "nothing acknowledged";
/// What a reverse link misses when it stalls.
const NO_DATA: &str = "no SOURCE data";
/// Default message size over `tcp+cobs://` and `serial://`: a serial line is behind it, and
/// small messages keep its latency low.
const COBS_SIZE: u32 = 256;

/// Arguments of `framelink bench`.
#[derive(Args, Clone, Debug)]
pub(crate) struct BenchArgs {
    /// Where: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT, serial://PORT[?baud=N] or
    /// HOST:PORT (TCP)
    pub(crate) addr: String,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Seconds to run [default: 10]
    #[arg(short = 't', long, value_name = "S", value_parser = seconds::within(0.001, MAX_SECONDS),
          conflicts_with = "bytes")]
    pub(crate) time: Option<Duration>,
    /// Bytes to move instead, over all links (K, M, G: powers of 1024)
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_bytes)]
    pub(crate) bytes: Option<u64>,
    /// Message size in bytes, header included (K: 1024) [default: 65535 on TCP (one packet), the packet
    /// payload on UDP (1200), 256 on tcp+cobs and serial]
    #[arg(short = 'l', long, visible_alias = "length", value_name = "B", value_parser = parse_bytes)]
    pub(crate) size: Option<u64>,
    /// The server sends (a SOURCE stream, every byte checked) and this side receives
    #[arg(short = 'R', long)]
    pub(crate) reverse: bool,
    /// Parallel links, each on its own thread; the figures are summed
    #[arg(short = 'P', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=MAX_LINKS))]
    pub(crate) parallel: u16,
    /// Pace each link at this many bits per second (k, M, G: powers of 1000), such as 10M
    #[arg(short = 'b', long, value_name = "R", value_parser = parse_bitrate)]
    pub(crate) bitrate: Option<u64>,
    /// Seconds between interval reports; 0 for none
    #[arg(short = 'i', long, value_name = "S", default_value = "1",
          value_parser = seconds::zero_or_within(0.01, MAX_SECONDS))]
    pub(crate) interval: Duration,
    /// Seconds without progress (nothing acknowledged while data waits, or no data coming) after
    /// which the run ends as stalled, with the summary so far
    #[arg(long, value_name = "S", default_value = "10", value_parser = seconds::within(0.1, MAX_SECONDS))]
    pub(crate) stall_timeout: Duration,
}

/// One interval of a run.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Interval {
    /// Seconds since the start (three decimals).
    pub(crate) start: f64,
    /// Seconds since the start (three decimals).
    pub(crate) end: f64,
    /// Bytes counted in the interval.
    pub(crate) bytes: u64,
    /// Their rate, in whole bits per second.
    pub(crate) bits_per_second: u64,
    /// Whether nothing was counted in the interval while a link waited on the peer.
    pub(crate) stalled: bool,
    /// How long, in seconds, the stalled link had gone without progress at the interval's end.
    #[serde(skip)]
    stalled_for: f64,
}

impl Interval {
    fn new(start: f64, end: f64, bytes: u64) -> Self {
        Self {
            start: output::round(start, 3),
            end: output::round(end, 3),
            bytes,
            bits_per_second: rate(bytes, end - start),
            stalled: false,
            stalled_for: 0.0,
        }
    }

    fn print(&self) {
        let rate = if self.stalled {
            format!("stalled {:.1} s", self.stalled_for)
        } else {
            output::bitrate(self.bits_per_second as f64)
        };
        output::say(format_args!("{}", line(self.start, self.end, self.bytes, &rate)));
    }
}

/// What `bench` measured.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BenchReport {
    /// The peer.
    pub(crate) addr: String,
    /// `forward` (this side sends) or `reverse` (the server sends).
    pub(crate) direction: &'static str,
    /// Parallel links.
    pub(crate) streams: u16,
    /// Bytes of each message.
    pub(crate) message_size: u32,
    /// Forward: bytes the server acknowledged; reverse: pattern bytes received and checked.
    pub(crate) bytes: u64,
    /// From the start to the last acknowledgement (forward) or byte (reverse), or to the
    /// failure that ended the run (three decimals).
    pub(crate) seconds: f64,
    /// `bytes` over `seconds`, in whole bits per second.
    pub(crate) bits_per_second: u64,
    /// DATA packets sent again, by the sender (this side forward, the server reverse).
    pub(crate) retransmits: u64,
    /// Interval by interval (none with `-i 0`).
    pub(crate) intervals: Vec<Interval>,
}

impl BenchReport {
    /// `acknowledged by the server` or `received, every byte checked`.
    fn counted_as(&self) -> &'static str {
        if self.direction == "forward" { "acknowledged" } else { "received and checked" }
    }
}

impl Report for BenchReport {
    fn print_text(&self) {
        if !self.intervals.is_empty() {
            output::say(format_args!("- - - - - - - - - - - - - - - - - - - - - - - - -"));
        }
        output::say(format_args!(
            "{}  {}, {}",
            line(0.0, self.seconds, self.bytes, &output::bitrate(self.bits_per_second as f64)),
            self.counted_as(),
            output::count(self.retransmits, "retransmit"),
        ));
    }
}

/// A line of the table, as iperf3 prints it: `  0.00-1.00   sec   2.41 GBytes   20.7 Gbits/sec`
/// (or `stalled 2.0 s` in the rate's column).
fn line(start: f64, end: f64, bytes: u64, rate: &str) -> String {
    let bytes = output::bytes(bytes);
    format!("{start:>6.2}-{end:<6.2} sec {bytes:>12} {rate:>15}")
}

/// The table's header, over [`line`]'s columns.
fn header() -> String {
    format!("{:<17} {:>12} {:>15}", "Interval", "Transfer", "Bitrate")
}

/// When `bytes` are due at `bitrate` bits per second from `start`.
fn paced(start: Instant, bytes: u64, bitrate: u64) -> Instant {
    let after = Duration::try_from_secs_f64(bytes as f64 * 8.0 / bitrate as f64).unwrap_or(Duration::MAX);
    start.checked_add(after).unwrap_or(start + Duration::from_secs(86_400 * 365))
}

/// Whole bits per second.
fn rate(bytes: u64, seconds: f64) -> u64 {
    if seconds > 0.0 { (bytes as f64 * 8.0 / seconds).round() as u64 } else { 0 }
}

/// What every link of a run does.
#[derive(Clone, Copy, Debug)]
struct Plan {
    reverse: bool,
    size: usize,
    start: Instant,
    /// Time mode: the run ends this long after the start.
    duration: Option<Duration>,
    bitrate: Option<u64>,
    /// A link without progress for this long has stalled.
    stall: Duration,
}

/// One link's part of the run.
#[derive(Clone, Copy, Debug)]
struct Job {
    index: usize,
    /// Bytes mode: this link's share.
    bytes: Option<u64>,
}

/// What the links and the reporter share.
struct Shared {
    /// A link failed: the others stop too.
    stop: AtomicBool,
    /// Each link's count so far (acknowledged or received bytes).
    counted: Vec<AtomicU64>,
    /// Each link's last progress, in microseconds since the start, while it waits on the peer
    /// with nothing coming; [`PROGRESSING`] otherwise.
    stalled_since: Vec<AtomicU64>,
}

impl Shared {
    fn new(links: usize) -> Self {
        let counters = || (0..links).map(|_| AtomicU64::new(0)).collect();
        let stalled_since = (0..links).map(|_| AtomicU64::new(PROGRESSING)).collect();
        Self { stop: AtomicBool::new(false), counted: counters(), stalled_since }
    }

    /// Records whether link `index` waits on the peer without progress since `since`.
    fn waiting(&self, index: usize, start: Instant, since: Option<Instant>) {
        let micros = since.map_or(PROGRESSING, |at| at.duration_since(start).as_micros() as u64);
        self.stalled_since[index].store(micros, Ordering::Relaxed);
    }

    /// The earliest last progress of a link that waits on the peer, if one does.
    fn stalled_since(&self, start: Instant) -> Option<Instant> {
        let micros = self.stalled_since.iter().map(|s| s.load(Ordering::Relaxed)).min()?;
        (micros != PROGRESSING).then(|| start + Duration::from_micros(micros))
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || interrupt::requested()
    }

    fn total(&self) -> u64 {
        self.counted.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// How one link's part ended.
#[derive(Debug)]
struct Finished {
    bytes: u64,
    end: Instant,
    retransmits: u64,
    error: Option<Failure>,
}

/// Runs `framelink bench`.
pub(crate) fn run(args: &BenchArgs, mode: Mode) -> Run<BenchReport> {
    let addr = parse_addr(&args.addr)?;
    let config = link_config(args.connect.config(), args.stall_timeout);
    let mut links = Vec::new();
    for _ in 0..args.parallel {
        let mut link = connect_with(&addr, &config)?;
        link.set_cancel_token(None);
        links.push(link);
    }
    let size = match message_size(args, &addr, &links[0]) {
        Ok(size) => size,
        Err(error) => {
            for link in links {
                let _ = link.close();
            }
            return Err(error);
        }
    };
    let duration = match (args.time, args.bytes) {
        (_, Some(_)) => None,
        (time, None) => Some(time.unwrap_or(DEFAULT_TIME)),
    };
    let direction = if args.reverse { "reverse" } else { "forward" };
    if mode.is_text() {
        let limit = match (duration, args.bytes) {
            (Some(duration), _) => format!("{} s", duration.as_secs_f64()),
            (None, Some(bytes)) => output::bytes(bytes),
            (None, None) => String::new(),
        };
        let way = if args.reverse { "server to client" } else { "client to server" };
        let paced =
            args.bitrate.map_or(String::new(), |b| format!(", paced at {}", output::bitrate(b as f64)));
        output::say(format_args!(
            "bench {addr}: {direction} ({way}), {}, {size}-byte messages, {limit}{paced}",
            output::count(u64::from(args.parallel), "link")
        ));
        if !args.interval.is_zero() {
            output::say(format_args!("{}", header()));
        }
    }
    let shared = Shared::new(links.len());
    let plan = Plan {
        reverse: args.reverse,
        size: size as usize,
        start: Instant::now(),
        duration,
        bitrate: args.bitrate,
        stall: args.stall_timeout,
    };
    let shares = share(args.bytes, links.len());
    let (intervals, finished) = thread::scope(|scope| {
        let (done, results) = mpsc::channel();
        for (index, link) in links.into_iter().enumerate() {
            let (done, shared, addr) = (done.clone(), &shared, &addr);
            let job = Job { index, bytes: shares[index] };
            scope.spawn(move || {
                let finished = if plan.reverse {
                    receive(link, addr, &plan, job, shared)
                } else {
                    transmit(link, addr, &plan, job, shared)
                };
                let _ = done.send((index, finished));
            });
        }
        drop(done);
        report(&plan, &shared, &results, args.interval, mode)
    });
    let bytes = finished.iter().map(|f| f.bytes).sum();
    let end = finished.iter().map(|f| f.end).max().unwrap_or(plan.start);
    let seconds = output::round(end.duration_since(plan.start).as_secs_f64(), 3);
    let error = match finished.iter().find_map(|f| f.error.clone()) {
        Some(error) => Some(error),
        None if finished.len() < usize::from(args.parallel) => {
            Some(Failure::at(&addr, "a link's thread failed"))
        }
        None => None,
    };
    let report = BenchReport {
        addr: addr.to_string(),
        direction,
        streams: args.parallel,
        message_size: size,
        bytes,
        seconds,
        bits_per_second: rate(bytes, seconds),
        retransmits: finished.iter().map(|f| f.retransmits).sum(),
        intervals,
    };
    Ok(Outcome::new(report, error))
}

/// `config` for a stall timeout of `stall`: a write that blocks (a peer that stopped reading
/// fills the socket's buffer) and a peer that falls silent give up after it too, and keepalives
/// come often enough that a quiet but live link is not taken for a silent one.
fn link_config(config: LinkConfig, stall: Duration) -> LinkConfig {
    let keepalive = DEFAULT_KEEPALIVE.min(stall / 3);
    config.idle_timeout(stall).keepalive(keepalive)
}

/// The failure for `error` on a link that has had no progress for `quiet`: a stall when the
/// link gave up for the same reason (a write blocked, sent data unacknowledged, the peer silent)
/// after most of the stall timeout.
fn link_failure(addr: &Addr, error: LinkError, quiet: Duration, plan: &Plan, what: &str) -> Failure {
    let stall_like = match &error {
        LinkError::Stalled | LinkError::Closed(CloseReason::TimedOut(_)) => true,
        LinkError::Io(e) => matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock),
        _ => false,
    };
    if stall_like && quiet >= plan.stall / 2 {
        stalled(addr, what, plan.stall)
    } else {
        Failure::at(addr, error)
    }
}

/// The message size: the one asked for, or the transport's default, within what both sides
/// accept.
fn message_size(args: &BenchArgs, addr: &Addr, link: &Link) -> Result<u32, Failure> {
    let peer = link.peer().ok_or_else(|| Failure::at(addr, "no handshake"))?;
    let max = peer.max_message.min(LinkConfig::DEFAULT_MAX_MESSAGE);
    let min = if args.reverse { SOURCE_HEADER + 1 } else { SINK_HEADER } as u64;
    let Some(size) = args.size else {
        let default = match link.transport() {
            Transport::Tcp => u32::from(peer.max_payload),
            Transport::Udp => u32::from(peer.max_payload).min(1200),
            _ => COBS_SIZE,
        };
        return Ok(default.clamp(min as u32, max.max(min as u32)));
    };
    if size < min {
        return Err(Failure(format!(
            "--size {size} is too small: at least {min} bytes for a {} message",
            if args.reverse { "SOURCE" } else { "SINK" }
        )));
    }
    if size > u64::from(max) {
        return Err(Failure(format!(
            "--size {size} is larger than the largest message the link takes ({max} bytes)"
        )));
    }
    Ok(size as u32)
}

/// Splits `bytes` over `links`: the first ones get the remainder.
fn share(bytes: Option<u64>, links: usize) -> Vec<Option<u64>> {
    let n = links as u64;
    (0..n).map(|i| bytes.map(|b| b / n + u64::from(i < b % n))).collect()
}

/// Reports the intervals until every link has finished; returns them and how each link ended.
fn report(
    plan: &Plan,
    shared: &Shared,
    results: &mpsc::Receiver<(usize, Finished)>,
    interval: Duration,
    mode: Mode,
) -> (Vec<Interval>, Vec<Finished>) {
    let interval = (!interval.is_zero()).then_some(interval);
    let end = plan.duration.map(|d| plan.start + d);
    let mut intervals = Vec::new();
    let mut finished = Vec::new();
    let (mut tick_at, mut tick_bytes) = (plan.start, 0u64);
    let mut links_left = shared.counted.len();
    let seconds = |at: Instant| at.duration_since(plan.start).as_secs_f64();
    // The interval from `from` to `to` with `bytes`, stalled when nothing came in it while a
    // link waits on the peer.
    let interval_line = |from: Instant, to: Instant, bytes: u64| {
        let mut line = Interval::new(seconds(from), seconds(to), bytes);
        if let Some(since) = shared.stalled_since(plan.start).filter(|_| bytes == 0) {
            line.stalled = true;
            line.stalled_for = to.saturating_duration_since(since).as_secs_f64();
        }
        line
    };
    while links_left > 0 {
        // The tick at the end of a timed run waits for the links, which count the last
        // acknowledgements (or bytes) into it.
        let tick = interval.map(|i| tick_at + i).filter(|&t| end.is_none_or(|end| t + TICK / 10 < end));
        let next = match tick {
            Some(tick) => results.recv_timeout(tick.saturating_duration_since(Instant::now())),
            None => results.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((_, done)) => {
                if done.error.is_some() {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                finished.push(done);
                links_left -= 1;
            }
            Err(RecvTimeoutError::Timeout) => {
                let Some(tick) = tick else { continue };
                let total = shared.total();
                let line = interval_line(tick_at, tick, total.saturating_sub(tick_bytes));
                if mode.is_text() {
                    line.print();
                }
                intervals.push(line);
                (tick_at, tick_bytes) = (tick, total);
            }
            // A link's thread ended without a word; the caller reports it.
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let total: u64 = finished.iter().map(|f| f.bytes).sum();
    let last = finished.iter().map(|f| f.end).max().unwrap_or(tick_at);
    if interval.is_some() && (total > tick_bytes || last.duration_since(tick_at) > Duration::from_millis(1)) {
        let line = interval_line(tick_at, last.max(tick_at), total.saturating_sub(tick_bytes));
        if mode.is_text() {
            line.print();
        }
        intervals.push(line);
    }
    (intervals, finished)
}

/// Forward: SINK messages as fast as the credit allows (or the pace), counting acknowledged
/// bytes; then the last acknowledgements and a graceful close.
fn transmit(mut link: Link, addr: &Addr, plan: &Plan, job: Job, shared: &Shared) -> Finished {
    let counted = &shared.counted[job.index];
    let payload = vec![0u8; plan.size - SINK_HEADER];
    let mut message = vec![0u8; plan.size];
    let _ = Client::new().sink(&payload, &mut message);
    let deadline = plan.duration.map(|d| plan.start + d);
    let size = plan.size as u64;
    let mut queued = 0u64;
    let mut progress = (0u64, Instant::now());
    let waiting = |since| shared.waiting(job.index, plan.start, since);
    // On TCP, messages are fed in batches (fewer, larger writes), and up to a batch more may
    // wait unsent; elsewhere each is sent at once and at most one waits.
    let batch = if addr.transport == Transport::Tcp { FEED_BATCH } else { 0 };
    // Sending, then (at the end of the time or bytes) waiting for the last acknowledgements.
    let mut sending = true;
    let error = loop {
        if shared.stopping() {
            break None;
        }
        let now = Instant::now();
        sending &= !(deadline.is_some_and(|d| now >= d) || job.bytes.is_some_and(|b| queued >= b));
        let stats = link.stats();
        counted.store(stats.bytes_acked, Ordering::Relaxed);
        if stats.bytes_acked != progress.0 {
            progress = (stats.bytes_acked, now);
        }
        if queued > stats.bytes_acked {
            waiting(Some(progress.1));
            if now.duration_since(progress.1) >= plan.stall {
                break Some(stalled(addr, ACKNOWLEDGED, plan.stall));
            }
        } else {
            waiting(None);
            if !sending {
                break None;
            }
        }
        // Wait while draining, while the session holds a whole message its credit does not
        // let out yet, or while ahead of the pace; the link keeps taking acknowledgements.
        let held = queued.saturating_sub(stats.bytes_sent) >= size.max(batch);
        let pace = plan.bitrate.map(|bitrate| paced(plan.start, queued, bitrate));
        let pace = pace.filter(|&due| due > now);
        if !sending || held || pace.is_some() {
            let deadline = deadline.filter(|_| sending);
            let wake = [Some(now + TICK), pace, deadline].into_iter().flatten().min().unwrap_or(now);
            if let Err(e) = link.drive(Some(wake.saturating_duration_since(now))) {
                break Some(link_failure(addr, e, progress.1.elapsed(), plan, ACKNOWLEDGED));
            }
            continue;
        }
        let len = job.bytes.map_or(size, |b| (b - queued).clamp(SINK_HEADER as u64, size));
        let message = &message[..len as usize];
        let sent = if batch > 0 { link.feed(message) } else { link.send(message) };
        if let Err(e) = sent {
            break Some(link_failure(addr, e, progress.1.elapsed(), plan, ACKNOWLEDGED));
        }
        queued += len;
    };
    if error.is_none() {
        waiting(None);
    }
    let end = Instant::now();
    let stats = link.stats();
    counted.store(stats.bytes_acked, Ordering::Relaxed);
    let error = error.or_else(|| link.close().err().map(|e| Failure::at(addr, e)));
    Finished { bytes: stats.bytes_acked, end, retransmits: stats.retransmits, error }
}

/// Reverse: SOURCE streams, every pattern byte checked and counted; then the server's
/// retransmissions (STATS) and a graceful close.
fn receive(link: Link, addr: &Addr, plan: &Plan, job: Job, shared: &Shared) -> Finished {
    let counted = &shared.counted[job.index];
    let client = Client::new();
    let mut reverse = Reverse { link, client, addr, plan, shared, index: job.index, counted, received: 0 };
    let (finished, error) = match reverse.streams(job.bytes) {
        Ok(finished) => (finished, None),
        Err(error) => (false, Some(error)),
    };
    let end = Instant::now();
    if error.is_none() {
        shared.waiting(job.index, plan.start, None);
    }
    let Reverse { link, received, .. } = reverse;
    let mut service = ServiceClient::new(link).with_timeout(REPLY_TIMEOUT);
    let mut retransmits = 0;
    let error = error.or_else(|| {
        if !finished {
            return None;
        }
        let stats = cancellable(&mut service, ServiceClient::stats).map_err(|e| Failure::at(addr, e));
        stats.map(|stats| retransmits = stats.retransmits).err()
    });
    let error = error.or_else(|| service.close().err().map(|e| Failure::at(addr, e)));
    Finished { bytes: received, end, retransmits, error }
}

/// The most pattern bytes one SOURCE request asks for. A longer run chains requests: a
/// responder's `Responder::source_need` overflows for a byte limit near `usize::MAX` (0, "no
/// limit", included), so every request carries a limit that fits 32 bits with room to spare.
const SOURCE_CHUNK: u64 = 1 << 31;

/// One link receiving SOURCE streams.
struct Reverse<'a> {
    link: Link,
    /// Writes the SOURCE requests and checks what comes back.
    client: Client,
    addr: &'a Addr,
    plan: &'a Plan,
    shared: &'a Shared,
    /// This link's place in `shared`.
    index: usize,
    counted: &'a AtomicU64,
    /// Pattern bytes received over every stream so far.
    received: u64,
}

impl Reverse<'_> {
    /// Asks for streams until the run's time is up or `bytes` have arrived; `Ok(false)` when
    /// stopped before.
    fn streams(&mut self, bytes: Option<u64>) -> Result<bool, Failure> {
        let deadline = self.plan.duration.map(|d| self.plan.start + d);
        let mut left = bytes;
        loop {
            let millis = match deadline {
                None => 0,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(rest) if !rest.is_zero() => {
                        u32::try_from(rest.as_millis().max(1)).unwrap_or(u32::MAX)
                    }
                    _ => return Ok(true),
                },
            };
            let ask = match left {
                Some(0) => return Ok(true),
                Some(left) => left.min(SOURCE_CHUNK),
                None => SOURCE_CHUNK,
            };
            let Some(got) = self.stream(ask, millis)? else { return Ok(false) };
            if let Some(left) = &mut left {
                *left = left.saturating_sub(got);
            } else if got < ask {
                // The time limit ended it.
                return Ok(true);
            }
        }
    }

    /// Asks for one stream and receives it: `Some(bytes)` at its end, `None` when stopped.
    fn stream(&mut self, bytes: u64, millis: u32) -> Result<Option<u64>, Failure> {
        let addr = self.addr;
        let mut request = [0u8; SOURCE_REQUEST_LEN];
        let (len, mut pending) = self
            .client
            .source(bytes, millis, self.plan.size as u32, &mut request)
            .map_err(|e| Failure::at(addr, e))?;
        self.link.send(&request[..len]).map_err(|e| Failure::at(addr, e))?;
        let mut last = Instant::now();
        let mut probed: Option<Instant> = None;
        loop {
            if self.shared.stopping() {
                return Ok(None);
            }
            if let Some(bitrate) = self.plan.bitrate {
                // Ahead of the pace: keep the link answering but read nothing; the session's
                // credit slows the sender down.
                let due = paced(self.plan.start, self.received, bitrate);
                let now = Instant::now();
                if due > now {
                    let driven = self.link.drive(Some((due - now).min(TICK)));
                    driven.map_err(|e| link_failure(addr, e, last.elapsed(), self.plan, NO_DATA))?;
                    continue;
                }
            }
            let event = self.link.next_event_ref(Some(TICK));
            let message =
                match event.map_err(|e| link_failure(addr, e, last.elapsed(), self.plan, NO_DATA))? {
                    Some(LinkEventRef::Message(message)) => message,
                    Some(LinkEventRef::Closed(reason)) => {
                        return Err(link_failure(
                            addr,
                            LinkError::Closed(reason),
                            last.elapsed(),
                            self.plan,
                            NO_DATA,
                        ));
                    }
                    _ => {
                        let quiet = last.elapsed();
                        if quiet >= self.plan.stall {
                            return Err(stalled(addr, NO_DATA, self.plan.stall));
                        }
                        if quiet >= TICK {
                            self.shared.waiting(self.index, self.plan.start, Some(last));
                        }
                        if quiet > PROBE && probed.is_none_or(|at| at.elapsed() > PROBE) {
                            let pinged = self.link.ping(0);
                            pinged.map_err(|e| link_failure(addr, e, quiet, self.plan, NO_DATA))?;
                            probed = Some(Instant::now());
                        }
                        continue;
                    }
                };
            // The pattern and the offsets are checked as each message is accepted.
            match pending.accept(message).map_err(|e| Failure::at(addr, e))? {
                Some(Reply::SourceData { data, .. }) => {
                    self.received += data.len() as u64;
                    self.counted.store(self.received, Ordering::Relaxed);
                    last = Instant::now();
                    self.shared.waiting(self.index, self.plan.start, None);
                }
                Some(Reply::SourceEnd { bytes, .. }) => return Ok(Some(bytes)),
                _ => {}
            }
        }
    }
}

/// The failure of a link without progress for `stall`: `what` (`nothing acknowledged`) for
/// that long.
fn stalled(addr: &Addr, what: &str, stall: Duration) -> Failure {
    Failure::at(
        addr,
        format!(
            "link stalled: {what} for {} s (--stall-timeout): the peer stopped answering or the link is down",
            output::plain(stall.as_secs_f64())
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_seconds_and_the_default_stall_timeout_is_the_one_demo_uses() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: BenchArgs,
        }
        let cli = Cli::try_parse_from(["bench", "tcp://127.0.0.1:1"]).unwrap();
        assert_eq!(cli.args.stall_timeout, DEFAULT_STALL_TIMEOUT);
        let cli = Cli::try_parse_from(["bench", "tcp://127.0.0.1:1", "--stall-timeout", "2.5"]).unwrap();
        assert_eq!(cli.args.stall_timeout, Duration::from_millis(2500));
        assert!(Cli::try_parse_from(["bench", "x", "--stall-timeout", "0"]).is_err());
        let cli = Cli::try_parse_from(["bench", "x", "-t", "0.5", "-i", "0"]).unwrap();
        assert_eq!((cli.args.time, cli.args.interval), (Some(Duration::from_millis(500)), Duration::ZERO));
        for bad in [&["-t", "0"][..], &["-i", "0.001"], &["-t", "nan"]] {
            assert!(Cli::try_parse_from([&["bench", "x"][..], bad].concat()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rates_are_whole_bits_per_second() {
        assert_eq!(rate(1, 3.0), 3);
        assert_eq!(rate(0, 0.0), 0);
        let interval = Interval::new(0.1 + 0.2, 0.6, 1000);
        assert_eq!((interval.start, interval.bits_per_second), (0.3, 26_667));
    }

    #[test]
    fn bytes_are_shared_over_links() {
        assert_eq!(share(Some(10), 3), [Some(4), Some(3), Some(3)]);
        assert_eq!(share(None, 2), [None, None]);
    }
}
