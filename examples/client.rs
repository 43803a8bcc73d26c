//! The seed client, done properly: connects, sends each MESSAGE as its own message, waits until
//! the server has acknowledged all of them, closes gracefully.
//!
//! ```sh
//! cargo run --example client                                  # "Hello, Server!" to tcp://127.0.0.1:8080
//! cargo run --example client -- tcp://127.0.0.1:8080 one two  # two messages
//! head -c 200000 /dev/zero | tr '\0' x | cargo run --example client -- udp://127.0.0.1:8080 -
//! ```

use std::process::ExitCode;

use framelink::std::{Addr, Link, LinkConfig, LinkError};

const HELP: &str = "\
usage: client [ADDR [MESSAGE...]]

Connects to ADDR (default tcp://127.0.0.1:8080), sends each MESSAGE as its own message (none
given: \"Hello, Server!\"), waits until the server has acknowledged all of them and closes
gracefully. A MESSAGE of `-` is read whole from standard input (for long or binary messages).

ADDR: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT (COBS framing over TCP), or
HOST:PORT (TCP). Messages up to 16 MiB.

Exit status, as the framelink tool's: 0 when every message was acknowledged and the session
closed gracefully; 1, with one line on stderr, for a bad address, when no server is there, the
server refused the session or the link failed; 2 for a usage error (an unknown option).";

#[path = "common/client_cli.rs"]
mod client_cli;

use client_cli::MAX_MESSAGE;

fn main() -> ExitCode {
    client_cli::run("client", HELP, run)
}

fn run(addr: &Addr, messages: &[Vec<u8>]) -> Result<(), LinkError> {
    let mut link = Link::connect_with(addr, &LinkConfig::new().max_message(MAX_MESSAGE))?;
    for message in messages {
        link.send(message)?;
    }
    link.flush(None)?;
    link.close()
}
