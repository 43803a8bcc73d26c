//! `framelink relay --listen udp://... --to udp://... [--loss P] [--dup P] [--reorder P]
//! [--delay MS] [--jitter MS] [--corrupt P] [--seed N]`: a lossy UDP link made in userspace,
//! until Ctrl-C.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use framelink::std::{Addr, DirectionStats, Relay, RelayConfig, RelayStats, Transport};
use serde::Serialize;

use crate::client::{TICK, parse_addr};
use crate::interrupt;
use crate::output::{self, Failure, Mode, Outcome, Report, Run};

/// How often `-v` prints the counters.
const EVERY: Duration = Duration::from_secs(1);

/// Arguments of `framelink relay`.
#[derive(Args, Clone, Debug)]
pub(crate) struct RelayArgs {
    /// Where clients send: udp://HOST:PORT (port 0 picks a free port)
    #[arg(short = 'l', long, value_name = "ADDR")]
    pub(crate) listen: String,
    /// The server: udp://HOST:PORT
    #[arg(long, value_name = "ADDR")]
    pub(crate) to: String,
    /// Probability (0 to 1) that a datagram is dropped
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub(crate) loss: f64,
    /// Probability that a datagram is sent twice
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub(crate) dup: f64,
    /// Probability that a datagram is held back, so that later ones overtake it
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub(crate) reorder: f64,
    /// Probability that one bit of a datagram is flipped
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub(crate) corrupt: f64,
    /// Milliseconds each datagram is delayed, each way
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub(crate) delay: f64,
    /// Milliseconds of uniform random jitter added to the delay (±)
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub(crate) jitter: f64,
    /// Seed of the random decisions (the same seed repeats them)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) seed: u64,
    /// Print the counters every second (on stderr)
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
}

/// One direction's counters.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct DirectionJson {
    /// Datagrams read.
    pub(crate) received: u64,
    /// Their bytes.
    pub(crate) bytes_received: u64,
    /// Dropped (loss).
    pub(crate) dropped: u64,
    /// Second copies made.
    pub(crate) duplicated: u64,
    /// Copies held back.
    pub(crate) reordered: u64,
    /// Copies with a bit flipped.
    pub(crate) corrupted: u64,
    /// Copies sent.
    pub(crate) forwarded: u64,
    /// Their bytes.
    pub(crate) bytes_forwarded: u64,
    /// Copies dropped for a full queue.
    pub(crate) overflowed: u64,
    /// Copies whose send failed.
    pub(crate) send_errors: u64,
}

impl From<DirectionStats> for DirectionJson {
    fn from(d: DirectionStats) -> Self {
        Self {
            received: d.received,
            bytes_received: d.bytes_received,
            dropped: d.dropped,
            duplicated: d.duplicated,
            reordered: d.reordered,
            corrupted: d.corrupted,
            forwarded: d.forwarded,
            bytes_forwarded: d.bytes_forwarded,
            overflowed: d.overflowed,
            send_errors: d.send_errors,
        }
    }
}

impl DirectionJson {
    fn line(&self) -> String {
        format!(
            "received {} ({}), dropped {}, duplicated {}, reordered {}, corrupted {}, forwarded {}",
            self.received,
            output::bytes(self.bytes_received),
            self.dropped,
            self.duplicated,
            self.reordered,
            self.corrupted,
            self.forwarded
        )
    }
}

/// What the relay did.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RelayReport {
    /// Where clients send.
    pub(crate) listen: String,
    /// The server.
    pub(crate) to: String,
    /// Client to server.
    pub(crate) upstream: DirectionJson,
    /// Server to client.
    pub(crate) downstream: DirectionJson,
    /// Clients mapped at the end.
    pub(crate) clients: usize,
    /// Datagrams from new clients refused.
    pub(crate) refused: u64,
    /// Receive errors.
    pub(crate) errors: u64,
}

impl RelayReport {
    fn new(listen: &str, to: &str, stats: &RelayStats) -> Self {
        Self {
            listen: listen.to_owned(),
            to: to.to_owned(),
            upstream: stats.upstream.into(),
            downstream: stats.downstream.into(),
            clients: stats.clients,
            refused: stats.refused,
            errors: stats.errors,
        }
    }
}

impl Report for RelayReport {
    fn print_text(&self) {
        output::say(format_args!("upstream:   {}", self.upstream.line()));
        output::say(format_args!("downstream: {}", self.downstream.line()));
        output::say(format_args!(
            "clients {}, refused {}, receive errors {}",
            self.clients, self.refused, self.errors
        ));
    }
}

/// The one socket address of a `udp://` address.
fn udp_socket_addr(flag: &str, text: &str) -> Result<SocketAddr, Failure> {
    let addr: Addr = parse_addr(text)?;
    if addr.transport != Transport::Udp {
        return Err(Failure(format!("{flag} {text}: the relay carries UDP only (udp://HOST:PORT)")));
    }
    let resolved = addr.resolve().map_err(|e| Failure::at(&addr, e))?;
    resolved.first().copied().ok_or_else(|| Failure::at(&addr, "resolves to no address"))
}

/// A duration in milliseconds from the command line.
fn millis(flag: &str, ms: f64) -> Result<Duration, Failure> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(Failure(format!("--{flag} must be a number of milliseconds from 0 up, not {ms}")));
    }
    Duration::try_from_secs_f64(ms / 1e3).map_err(|e| Failure(format!("--{flag} {ms}: {e}")))
}

/// Runs `framelink relay` until Ctrl-C.
pub(crate) fn run(args: &RelayArgs, _mode: Mode) -> Run<RelayReport> {
    let listen = udp_socket_addr("--listen", &args.listen)?;
    let target = udp_socket_addr("--to", &args.to)?;
    let config = RelayConfig::new()
        .loss(args.loss)
        .duplicate(args.dup)
        .reorder(args.reorder)
        .corrupt(args.corrupt)
        .delay(millis("delay", args.delay)?)
        .jitter(millis("jitter", args.jitter)?)
        .seed(args.seed);
    config.validate().map_err(|e| Failure(e.to_string()))?;
    let relay = Relay::bind(listen, target, config).map_err(|e| Failure(e.to_string()))?;
    let handle = relay.spawn().map_err(|e| Failure(format!("cannot start the relay: {e}")))?;
    let (listen, to) = (format!("udp://{}", handle.local_addr()), format!("udp://{target}"));
    eprintln!("listening on {listen}");
    eprintln!(
        "relaying to {to}: loss {}, dup {}, reorder {}, corrupt {}, delay {} ms, jitter {} ms, seed {}",
        args.loss, args.dup, args.reorder, args.corrupt, args.delay, args.jitter, args.seed
    );
    let mut next_report = Instant::now() + EVERY;
    while !interrupt::requested() {
        thread::sleep(TICK);
        if args.verbose && Instant::now() >= next_report {
            next_report += EVERY;
            let stats = RelayReport::new(&listen, &to, &handle.stats());
            eprintln!("up: {} | down: {}", stats.upstream.line(), stats.downstream.line());
        }
    }
    match handle.shutdown() {
        Ok(stats) => Ok(Outcome::new(RelayReport::new(&listen, &to, &stats), None)),
        Err(e) => Err(Failure(format!("the relay failed: {e}"))),
    }
}
