//! `bench-e2e`: the load tools `scripts/bench-e2e.sh` runs beside `framelink` and iperf3.
//!
//! - `raw-server` / `raw-ping`: a plain std TCP ping-pong of fixed-size messages (the echo in one
//!   write, `TCP_NODELAY`), the floor `framelink ping` is compared with;
//! - `clients`: N framelink links pinging one `framelink serve` at once with ECHO messages (as
//!   `framelink ping` does), at a fixed total rate on a schedule, reporting RTT percentiles; a
//!   few threads drive every link without blocking (a `Fleet`), so that the load tool's own
//!   threads do not crowd the server;
//! - `hold`: N idle framelink sessions held open against one `framelink serve`, reporting the
//!   server's RSS and threads, and a ping series with none and with all held;
//! - `quic-server` / `quic-send`: one QUIC (quinn) stream of bulk data, the goodput the
//!   receiving application sees; the reference for `framelink bench` over UDP through the same
//!   lossy relay.
//!
//! Each prints one JSON document on stdout. Every loop is bounded by a count or a duration.

mod clients;
mod fleet;
mod hold;
mod quic;
mod raw;
mod rtt;
mod timer;

use clap::{Parser, Subcommand};

/// Load tools for the end-to-end benchmarks (loopback only).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Echo fixed-size messages on TCP, one thread per connection, until killed.
    RawServer(raw::ServerArgs),
    /// Ping-pong fixed-size messages with a raw-server and print the RTT percentiles.
    RawPing(raw::PingArgs),
    /// Many framelink clients pinging one server at once.
    Clients(clients::ClientsArgs),
    /// Many idle framelink sessions held open against one server, measuring its RSS and threads.
    Hold(hold::HoldArgs),
    /// Receive QUIC bulk streams and answer each with the goodput it had, until killed.
    QuicServer(quic::ServerArgs),
    /// Send one QUIC bulk stream to a quic-server and print its goodput.
    QuicSend(quic::SendArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::RawServer(args) => raw::serve(&args),
        Command::RawPing(args) => raw::ping(&args),
        Command::Clients(args) => clients::run(&args),
        Command::Hold(args) => hold::run(&args),
        Command::QuicServer(args) => quic::serve(&args),
        Command::QuicSend(args) => quic::send(&args),
    };
    if let Err(error) = result {
        eprintln!("bench-e2e: {error}");
        std::process::exit(1);
    }
}
