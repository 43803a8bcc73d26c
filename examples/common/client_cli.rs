//! The command line both example clients share: arguments, standard input, messages and exit
//! status. Each client supplies its help text and how it sends.

use std::ffi::OsString;
use std::io::Read;
use std::process::ExitCode;

use framelink::std::{Addr, LinkError};

/// The largest message the example pair exchanges.
pub(crate) const MAX_MESSAGE: u32 = 16 << 20;

/// Parses `[ADDR [MESSAGE...]]`, then calls `send` with the address and the messages; prints
/// one line about the outcome and returns the exit status, as the `framelink` tool does: 0 on
/// success, 1 after one error line (a bad address, no server, a refused session, a failed
/// link), 2 on a usage error (an unknown option). `name` prefixes every line.
pub(crate) fn run(
    name: &str,
    help: &str,
    send: impl FnOnce(&Addr, &[Vec<u8>]) -> Result<(), LinkError>,
) -> ExitCode {
    let usage = |problem: &str| {
        eprintln!("{name}: {problem}\nusage: {name} [ADDR [MESSAGE...]]   ({name} --help for more)");
        ExitCode::from(2)
    };
    let mut args = std::env::args_os().skip(1);
    let addr_arg = args.next();
    if addr_arg.as_ref().is_some_and(|arg| arg == "-h" || arg == "--help") {
        println!("{help}");
        return ExitCode::SUCCESS;
    }
    let addr_text = match addr_arg.map(OsString::into_string) {
        None => "tcp://127.0.0.1:8080".to_owned(),
        Some(Ok(text)) if !text.starts_with('-') => text,
        Some(Ok(text)) => return usage(&format!("unknown option `{text}`")),
        Some(Err(_)) => return usage("the address is not valid UTF-8"),
    };
    // As the `framelink` tool: an address that does not parse is a failure (1), not a usage
    // error (2, kept for options and arguments that cannot be read at all).
    let addr: Addr = match addr_text.parse() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("{name}: error: bad address `{addr_text}`: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut messages = Vec::new();
    for arg in args {
        if arg == "-" {
            let mut message = Vec::new();
            if let Err(error) = std::io::stdin().read_to_end(&mut message) {
                eprintln!("{name}: error: reading standard input: {error}");
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
    match send(&addr, &messages) {
        Ok(()) => {
            let bytes: usize = messages.iter().map(Vec::len).sum();
            let plural = if messages.len() == 1 { "" } else { "s" };
            eprintln!("sent {} message{plural} ({bytes} bytes) to {addr}, all acknowledged", messages.len());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{name}: error: {addr}: {error}");
            ExitCode::FAILURE
        }
    }
}
