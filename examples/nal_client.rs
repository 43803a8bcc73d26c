//! The example client through the portable embedded-nal driver (`framelink::core::nal`) on
//! `std-embedded-nal`: the code path firmware network stacks run, on a desktop. Same arguments,
//! output and exit status as `client`.
//!
//! ```sh
//! cargo run --example server &
//! cargo run --example nal_client                                  # "Hello, Server!"
//! cargo run --example nal_client -- udp://127.0.0.1:8080 one two  # two messages over UDP
//! ```

use std::ffi::OsString;
use std::io::Read;
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
                eprintln!("nal_client: error: reading standard input: {error}");
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
            eprintln!("nal_client: error: {addr}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &Addr, messages: &[Vec<u8>]) -> Result<(), LinkError> {
    let mut link = nal::connect(addr, &LinkConfig::new().max_message(MAX_MESSAGE))?;
    for message in messages {
        link.send(message)?;
    }
    link.drain()?;
    link.close()
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("nal_client: {problem}\nusage: nal_client [ADDR [MESSAGE...]]   (nal_client --help for more)");
    ExitCode::from(2)
}
