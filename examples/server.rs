//! The seed server, done properly: prints `Received: <message>` on stdout for every message of
//! every client, one line each, whole and in order, for clients one after another or at once.
//!
//! ```sh
//! cargo run --example server                            # tcp://127.0.0.1:8080
//! cargo run --example server -- tcp://0.0.0.0:8080      # reachable from other machines
//! cargo run --example server -- udp://127.0.0.1:0 tcp+cobs://127.0.0.1:0
//! ```

use std::io::Write;
use std::process::ExitCode;

use framelink::core::session::CloseReason;
use framelink::std::{Addr, Handler, LinkError, PeerInfo, Reply, Server, ServerConfig};

const HELP: &str = "\
usage: server [ADDR...]

Listens on each ADDR (default tcp://127.0.0.1:8080) and prints `Received: <message>` on stdout
for every message, one line each, whole and in order. Connections are logged on stderr, and each
bound address as `listening on ADDR` (port 0 picks a free port).

ADDR: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT (COBS framing over TCP), or
HOST:PORT (TCP). Use 0.0.0.0 (or ::) as HOST to accept clients from other machines.

Messages are printed as UTF-8; bytes that are not valid UTF-8 are printed lossily (replaced by
U+FFFD), and a message holding line breaks spans several lines. Messages up to 16 MiB are
accepted.

Exit status, as the framelink tool's: 1, with one line on stderr, for a bad address or one that
cannot be bound; 2 for a usage error (an unknown option). It serves until stopped.";

/// The largest message the example pair exchanges.
const MAX_MESSAGE: u32 = 16 << 20;

/// Prints every message; logs connections.
struct Printer;

impl Handler for Printer {
    fn on_connect(&self, peer: &PeerInfo) {
        eprintln!("connected: {peer}");
    }

    fn on_message(&self, _peer: &PeerInfo, message: &[u8], _reply: &mut Reply<'_>) {
        // One write per line, under the lock: lines of clients served at once never mix.
        let line = format!("Received: {}\n", String::from_utf8_lossy(message));
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(line.as_bytes()).and_then(|()| stdout.flush());
    }

    fn on_close(&self, peer: &PeerInfo, reason: Result<CloseReason, &LinkError>) {
        match reason {
            Ok(reason) => eprintln!("disconnected: {peer}: {}", LinkError::Closed(reason)),
            Err(error) => eprintln!("disconnected: {peer}: {error}"),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let texts = if args.is_empty() { vec!["tcp://127.0.0.1:8080".to_owned()] } else { args };
    let mut addrs = Vec::new();
    for text in &texts {
        if text.starts_with('-') {
            return usage(&format!("unknown option `{text}`"));
        }
        match text.parse::<Addr>() {
            Ok(addr) => addrs.push(addr),
            Err(error) => {
                // As the `framelink` tool: a failure (1), not a usage error.
                eprintln!("server: error: bad address `{text}`: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let server = match Server::bind(&addrs, ServerConfig::new().max_message(MAX_MESSAGE)) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("server: error: {error}");
            return ExitCode::FAILURE;
        }
    };
    for addr in server.local_addrs() {
        eprintln!("listening on {addr}");
    }
    match server.run(Printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("server: {problem}\nusage: server [ADDR...]   (server --help for more)");
    ExitCode::from(2)
}
