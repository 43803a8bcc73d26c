//! `framelink`: test and use framelink links from the command line.
//!
//! `serve` answers the remote test service (the same `no_std` responder firmware links) and
//! prints text messages; `send`, `ping`, `bench` and `info` are its clients; `cat` sends stdin
//! and prints what comes back, or waits for one peer (`--listen`); `ports` lists the serial
//! ports; `relay` makes a lossy UDP link in userspace; `demo` runs it all in one process. Text
//! for people, `--json` for machines; exit status 0 on success, 1 after one `framelink: ...` line on stderr, 2 for
//! a usage error. Ctrl-C prints the summary so far.

mod bench;
mod cat;
mod client;
mod demo;
mod info;
mod interrupt;
mod output;
mod ping;
mod ports;
mod psk;
mod relay;
mod seconds;
mod send;
mod serve;
mod size;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::output::{Mode, finish};

/// Test and use framelink links: messages framed, checked, sequenced and acknowledged over
/// TCP, UDP and serial lines.
#[derive(Debug, Parser)]
#[command(name = "framelink", version, after_help = ADDRESSES)]
struct Cli {
    /// Print one JSON document on stdout at the end instead of text
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// How addresses are written, shown under `--help`.
const ADDRESSES: &str = "\
Addresses: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT (COBS over TCP: a serial line
bridged to TCP, such as QEMU's UART), HOST:PORT (TCP), or a serial port: serial:///dev/ttyACM0,
serial://COM3, with options ?baud=115200&data=8&parity=none&stop=1&flow=none (those are the
defaults; parity odd|even, stop 2, flow software|hardware). `framelink ports` lists the ports.

Start with `framelink demo`.";

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the remote test service and print every text message ("Received: ..."), until
    /// Ctrl-C; it sends nothing back to a plain message (to answer one by hand: cat --listen)
    Serve(serve::ServeArgs),
    /// Send each MESSAGE (`-`: standard input) or file as one message; exit once all are
    /// acknowledged
    Send(send::SendArgs),
    /// Round-trip times of ECHO requests, like ping
    Ping(ping::PingArgs),
    /// Throughput, forward (acknowledged bytes) or reverse (every byte checked), like iperf3
    Bench(bench::BenchArgs),
    /// Who the responder is, its limits and its counters
    Info(info::InfoArgs),
    /// Netcat for messages: each line of stdin (or record, with --binary) is sent as one
    /// message, each message received is printed as one line; --listen waits for one peer
    Cat(cat::CatArgs),
    /// The serial ports present (USB, PCI, platform and Bluetooth UARTs; not ptys)
    Ports,
    /// Relay UDP with loss, duplication, reordering, delay, jitter or corruption, until Ctrl-C
    Relay(relay::RelayArgs),
    /// A server in this process, then send, ping, bench and info against it: a tour in a few
    /// seconds
    Demo,
    /// Write a new random pre-shared key to PATH (mode 0600), for --psk-file on both sides
    Keygen(psk::KeygenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.json && matches!(cli.command, Command::Cat(_)) {
        // `cat` prints the messages on stdout: a JSON document there would mix with them.
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "`cat` prints messages on stdout: --json is not available",
            )
            .exit();
    }
    interrupt::install();
    let mode = if cli.json { Mode::Json } else { Mode::Text };
    match &cli.command {
        Command::Serve(args) => finish(mode, serve::run(args, mode)),
        Command::Send(args) => finish(mode, send::run(args, mode)),
        Command::Ping(args) => finish(mode, ping::run(args, mode)),
        Command::Bench(args) => finish(mode, bench::run(args, mode)),
        Command::Info(args) => finish(mode, info::run(args, mode)),
        Command::Cat(args) => finish(mode, cat::run(args, mode)),
        Command::Ports => finish(mode, ports::run(mode)),
        Command::Relay(args) => finish(mode, relay::run(args, mode)),
        Command::Demo => finish(mode, demo::run(mode)),
        Command::Keygen(args) => finish(mode, psk::keygen(args)),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn every_command_has_unique_flags() {
        Cli::command().debug_assert();
    }
}
