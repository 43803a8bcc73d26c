//! The example client through the portable embedded-nal driver (`framelink::core::nal`) on
//! `std-embedded-nal`: the code path firmware network stacks run, on a desktop. Same arguments,
//! output and exit status as `client`.
//!
//! ```sh
//! cargo run --example server &
//! cargo run --example nal_client                                  # "Hello, Server!"
//! cargo run --example nal_client -- udp://127.0.0.1:8080 one two  # two messages over UDP
//! ```

use std::process::ExitCode;

use framelink::std::{Addr, LinkConfig, LinkError, nal};

const HELP: &str = "\
usage: nal_client [ADDR [MESSAGE...]]

Connects to ADDR (default tcp://127.0.0.1:8080) through the embedded-nal driver on
std-embedded-nal, sends each MESSAGE as its own message (none given: \"Hello, Server!\"), waits
until the server has acknowledged all of them and closes gracefully. A MESSAGE of `-` is read
whole from standard input.

ADDR: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT (COBS framing over TCP), or
HOST:PORT (TCP). Messages up to 16 MiB.

Exit status, as the framelink tool's: 0 when every message was acknowledged and the session
closed gracefully; 1, with one line on stderr, for a bad address, when no server is there, the
server refused the session or the link failed; 2 for a usage error (an unknown option).";

#[path = "common/client_cli.rs"]
mod client_cli;

use client_cli::MAX_MESSAGE;

fn main() -> ExitCode {
    client_cli::run("nal_client", HELP, run)
}

fn run(addr: &Addr, messages: &[Vec<u8>]) -> Result<(), LinkError> {
    let mut link = nal::connect(addr, &LinkConfig::new().max_message(MAX_MESSAGE))?;
    for message in messages {
        link.send(message)?;
    }
    link.drain()?;
    link.close()
}
