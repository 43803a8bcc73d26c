//! `framelink serve [--listen ADDR]... [--max-clients N] [--handshake-timeout S] [--idle-timeout S]
//! [--max-message BYTES]`: answers the remote test service on every listener and prints every
//! text message. On a serial port it serves the one device there, session after session (a
//! device that restarts says HELLO again); a port that goes away (unplugged, a USB board that
//! resets) is waited for and served again once it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use clap::Args;
use framelink::core::session::CloseReason;
use framelink::std::{Addr, Handler, LinkError, PeerInfo, Reply, Server, ServerConfig};
use serde::Serialize;

use crate::client::{TICK, parse_addr, parse_seconds};
use crate::interrupt;
use crate::output::{self, Failure, Mode, Outcome, Report, Run};
use crate::psk::PskArgs;
use crate::size;

/// Where `serve` listens without `--listen`.
pub(crate) const DEFAULT_LISTEN: [&str; 2] = ["tcp://127.0.0.1:7878", "udp://127.0.0.1:7878"];

/// Arguments of `framelink serve`.
#[derive(Args, Clone, Debug)]
pub(crate) struct ServeArgs {
    /// Listen here: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT or a serial port
    /// (serial:///dev/ttyACM0?baud=115200: serve the device on it), as often as needed; port 0
    /// picks a free port [default: tcp://127.0.0.1:7878 and udp://127.0.0.1:7878]
    #[arg(short = 'l', long, value_name = "ADDR")]
    pub(crate) listen: Vec<String>,
    /// Clients served at once, over every listener; one more is refused (ERROR busy)
    #[arg(long, value_name = "N", default_value_t = ServerConfig::DEFAULT_MAX_CLIENTS)]
    pub(crate) max_clients: usize,
    /// Drop a client that has not completed the handshake after S seconds
    #[arg(long, value_name = "S", default_value = "10", value_parser = parse_seconds)]
    pub(crate) handshake_timeout: Duration,
    /// End a session after S seconds without hearing from the client (ERROR idle timeout);
    /// live clients answer keepalives and stay
    #[arg(long, value_name = "S", default_value = "30", value_parser = parse_seconds)]
    pub(crate) idle_timeout: Duration,
    /// The largest message a client may send (ERROR message too large beyond it), such as 1500,
    /// 64K or 16M, at most 1G; each client's two buffers grow as its messages need, up to this +
    /// 64 KiB each
    #[arg(long, value_name = "BYTES", default_value = "256K", value_parser = size::bytes_in(1, 1 << 30))]
    pub(crate) max_message: u64,
    #[command(flatten)]
    pub(crate) key: PskArgs,
}

/// What `serve` did, once stopped.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ServeReport {
    /// The bound addresses, real ports included.
    pub(crate) listen: Vec<String>,
    /// Clients taken in.
    pub(crate) accepted: u64,
    /// Clients refused for the client limit.
    pub(crate) refused: u64,
    /// Clients dropped at the handshake timeout.
    pub(crate) handshake_timeouts: u64,
    /// Sessions ended at the idle timeout.
    pub(crate) idle_timeouts: u64,
    /// Sessions ended for a message or payload over the limits.
    pub(crate) too_large: u64,
    /// Sessions ended for another error of the client's.
    pub(crate) protocol_errors: u64,
    /// UDP datagrams dropped with no session to go to.
    pub(crate) stray_datagrams: u64,
    /// Text messages printed.
    pub(crate) messages: u64,
}

impl Report for ServeReport {
    fn print_text(&self) {
        // The log, on stderr: stdout carries only the messages.
        eprintln!(
            "served {} ({} refused), printed {}",
            output::count(self.accepted, "client"),
            self.refused,
            output::count(self.messages, "message")
        );
        eprintln!(
            "ended at a limit: {} handshake timeouts, {} idle timeouts, {} too large, {} protocol errors; {} stray datagrams",
            self.handshake_timeouts,
            self.idle_timeouts,
            self.too_large,
            self.protocol_errors,
            self.stray_datagrams
        );
    }
}

/// Prints each text message; logs clients on stderr.
struct Printer {
    mode: Mode,
    messages: Arc<AtomicU64>,
}

impl Handler for Printer {
    fn on_connect(&self, peer: &PeerInfo) {
        eprintln!("{peer} connected");
    }

    fn on_message(&self, _peer: &PeerInfo, message: &[u8], _reply: &mut Reply<'_>) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        if self.mode.is_text() {
            output::say(format_args!("Received: {}", String::from_utf8_lossy(message)));
        }
    }

    fn on_close(&self, peer: &PeerInfo, reason: Result<CloseReason, &LinkError>) {
        match reason {
            Ok(CloseReason::Peer) => eprintln!("{peer} closed"),
            Ok(reason) => eprintln!("{peer} ended: {reason}"),
            Err(error) => eprintln!("{peer} ended: {error}"),
        }
    }

    fn on_serial_port(&self, addr: &Addr, change: Result<(), &LinkError>) {
        match change {
            Err(error) => eprintln!("{addr}: {error}; waiting for it to come back"),
            Ok(()) => eprintln!("{addr}: back; serving it again"),
        }
    }
}

/// Runs `framelink serve` until Ctrl-C.
pub(crate) fn run(args: &ServeArgs, mode: Mode) -> Run<ServeReport> {
    let texts: Vec<&str> = if args.listen.is_empty() {
        DEFAULT_LISTEN.to_vec()
    } else {
        args.listen.iter().map(String::as_str).collect()
    };
    let addrs = texts.into_iter().map(parse_addr).collect::<Result<Vec<_>, _>>()?;
    let mut config = ServerConfig::new()
        .max_clients(args.max_clients)
        .handshake_timeout(args.handshake_timeout)
        .idle_timeout(args.idle_timeout)
        .max_message(args.max_message as u32)
        .reopen_serial(true)
        .responder("framelink serve", env!("CARGO_PKG_VERSION"));
    if let Some(psk) = &args.key.psk {
        // Keyed sessions only: a client without the key is refused.
        let link = config.link_config().clone().psk(psk.clone());
        config = config.link(link);
    }
    let server = Server::bind(&addrs, config).map_err(|e| Failure(e.to_string()))?;
    let listen: Vec<String> = server.local_addrs().iter().map(ToString::to_string).collect();
    let messages = Arc::new(AtomicU64::new(0));
    let printer = Printer { mode, messages: Arc::clone(&messages) };
    let handle = server.spawn(printer).map_err(|e| Failure(format!("cannot start the server: {e}")))?;
    for addr in &listen {
        eprintln!("listening on {addr}");
    }
    // Until Ctrl-C, or until a listener fails for good: then with its error.
    let mut error = None;
    while !interrupt::requested() {
        if let Some((addr, failure)) = handle.take_failure() {
            error = Some(Failure::at(&addr, failure));
            break;
        }
        thread::sleep(TICK);
    }
    let stats = handle.stats();
    eprintln!("stopping");
    handle.shutdown();
    let report = ServeReport {
        listen,
        accepted: stats.accepted,
        refused: stats.refused,
        handshake_timeouts: stats.handshake_timeouts,
        idle_timeouts: stats.idle_timeouts,
        too_large: stats.too_large,
        protocol_errors: stats.protocol_errors,
        stray_datagrams: stats.stray_datagrams,
        messages: messages.load(Ordering::Relaxed),
    };
    Ok(Outcome::new(report, error))
}
