//! The seed client, done properly: connects, sends each MESSAGE as its own message, waits until
//! the server has acknowledged all of them, closes gracefully.
//!
//! ```sh
//! cargo run --example client                                  # "Hello, Server!" to tcp://127.0.0.1:8080
//! cargo run --example client -- tcp://127.0.0.1:8080 one two  # two messages
//! head -c 200000 /dev/zero | tr '\0' x | cargo run --example client -- udp://127.0.0.1:8080 -
//! ```

use std::ffi::OsString;
use std::io::Read;
use std::process::ExitCode;

use framelink::std::{Addr, Link, LinkConfig, LinkError};

const HELP: &str = "\
usage: client [ADDR [MESSAGE...]]

Connects to ADDR (default tcp://127.0.0.1:8080), sends each MESSAGE as its own message (none
given: \"Hello, Server!\"), waits until the server has acknowledged all of them and closes
gracefully. A MESSAGE of `-` is read whole from standard input (for long or binary messages).

ADDR: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT (COBS framing over TCP), or
HOST:PORT (TCP). Messages up to 16 MiB.

Exit status: 0 when every message was acknowledged and the session closed gracefully; 1, with
one line on stderr, when no server is there, the server refused the session or the link failed;
2 for a usage error.";

/// The largest message the example pair exchanges.
const MAX_MESSAGE: u32 = 16 << 20;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let addr_arg = args.next();
    if addr_arg.as_ref().is_some_and(|arg| arg == "-h" || arg == "--help") {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let addr_text = match addr_arg.map(OsString::into_string) {
        None => "tcp://127.0.0.1:8080".to_owned(),
        Some(Ok(text)) if !text.starts_with('-') => text,
        Some(Ok(text)) => return usage(&format!("unknown option `{text}`")),
        Some(Err(_)) => return usage("the address is not valid UTF-8"),
    };
    let addr: Addr = match addr_text.parse() {
        Ok(addr) => addr,
        Err(error) => return usage(&error.to_string()),
    };
    let mut messages = Vec::new();
    for arg in args {
        if arg == "-" {
            let mut message = Vec::new();
            if let Err(error) = std::io::stdin().read_to_end(&mut message) {
                eprintln!("client: error: reading standard input: {error}");
                return ExitCode::FAILURE;
            }
            messages.push(message);
        } else {
            messages.push(arg.into_encoded_bytes());
        }
    }
    if messages.is_empty() {
        messages.push(b"Hello, Server!".to_vec());
    }
    match run(&addr, &messages) {
        Ok(()) => {
            let bytes: usize = messages.iter().map(Vec::len).sum();
            let plural = if messages.len() == 1 { "" } else { "s" };
            eprintln!("sent {} message{plural} ({bytes} bytes) to {addr}, all acknowledged", messages.len());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("client: error: {addr}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &Addr, messages: &[Vec<u8>]) -> Result<(), LinkError> {
    let mut link = Link::connect(addr, &LinkConfig::new().max_message(MAX_MESSAGE))?;
    for message in messages {
        link.send(message)?;
    }
    link.flush(None)?;
    link.close()
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("client: {problem}\nusage: client [ADDR [MESSAGE...]]   (client --help for more)");
    ExitCode::from(2)
}
