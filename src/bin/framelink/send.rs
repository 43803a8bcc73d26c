//! `framelink send ADDR [MESSAGE|-]... [--file PATH]...`: each message on its own (`-` is
//! standard input, read to its end; `--file` a whole file); exits once all are acknowledged and
//! the session is closed.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::PathBuf;

use clap::Args;
use framelink::std::{Link, LinkConfig};
use serde::Serialize;

use crate::client::{ConnectArgs, connect_with, parse_addr};
use crate::output::{self, Failure, Mode, Outcome, Report, Run};

/// The largest message `send` reads: the most a server's `--max-message` allows.
const MAX_MESSAGE: u64 = 1 << 30;

/// Arguments of `framelink send`.
#[derive(Args, Clone, Debug)]
pub(crate) struct SendArgs {
    /// Where: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT, serial://PORT[?baud=N] or
    /// HOST:PORT (TCP)
    pub(crate) addr: String,
    /// The messages, each sent as one message (the server prints each on its own line); `-`
    /// reads standard input to its end and sends it as one message
    #[arg(required_unless_present = "file", value_parser = clap::value_parser!(OsString))]
    pub(crate) messages: Vec<OsString>,
    /// Send the file at PATH as one message, after the MESSAGEs; as often as needed. A message
    /// may be as large as the server accepts (`serve --max-message`; 256K by default)
    #[arg(short = 'f', long, value_name = "PATH")]
    pub(crate) file: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// What `send` did.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SendReport {
    /// The peer.
    pub(crate) addr: String,
    /// Messages handed to the session.
    pub(crate) sent: u64,
    /// Of those, acknowledged by the peer.
    pub(crate) acknowledged: u64,
    /// Bytes of the messages sent.
    pub(crate) bytes: u64,
}

impl Report for SendReport {
    fn print_text(&self) {
        let noun = output::count(self.sent, "message");
        output::say(format_args!(
            "sent {noun} ({} bytes) to {}, {} acknowledged",
            self.bytes, self.addr, self.acknowledged
        ));
    }
}

/// Runs `framelink send`.
pub(crate) fn run(args: &SendArgs, _mode: Mode) -> Run<SendReport> {
    let addr = parse_addr(&args.addr)?;
    let owned = read_messages(args)?;
    let messages: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let largest = messages.iter().map(|m| m.len()).max().unwrap_or(0);
    // This side's limit bounds its send buffer: room for the largest message.
    let max_message = (largest as u32).max(LinkConfig::DEFAULT_MAX_MESSAGE);
    let mut link = connect_with(&addr, &args.connect.config().max_message(max_message))?;
    if let Some(peer) = link.peer()
        && largest > peer.max_message as usize
    {
        let _ = link.close();
        return Err(Failure::at(
            &addr,
            format!(
                "a message of {largest} bytes is larger than the peer accepts ({} bytes; `framelink serve --max-message` raises it)",
                peer.max_message
            ),
        ));
    }
    let mut report = SendReport { addr: addr.to_string(), sent: 0, acknowledged: 0, bytes: 0 };
    let result = send_all(&mut link, &messages, &mut report);
    report.acknowledged = acknowledged(&messages[..report.sent as usize], link.stats().bytes_acked);
    let error = match result {
        Ok(()) => link.close().err(),
        Err(e) => Some(e),
    };
    Ok(Outcome::new(report, error.map(|e| Failure::at(&addr, e))))
}

/// The messages in order: the arguments (`-`: standard input), then the files.
fn read_messages(args: &SendArgs) -> Result<Vec<Vec<u8>>, Failure> {
    let mut messages = Vec::with_capacity(args.messages.len() + args.file.len());
    for message in &args.messages {
        if message == "-" {
            messages.push(read_all(io::stdin().lock(), "standard input")?);
        } else {
            messages.push(message.as_encoded_bytes().to_vec());
        }
    }
    for path in &args.file {
        let file = std::fs::File::open(path).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
        messages.push(read_all(file, &path.display().to_string())?);
    }
    Ok(messages)
}

/// Everything `source` holds, up to [`MAX_MESSAGE`] bytes.
fn read_all(source: impl Read, name: &str) -> Result<Vec<u8>, Failure> {
    let mut message = Vec::new();
    source.take(MAX_MESSAGE + 1).read_to_end(&mut message).map_err(|e| Failure(format!("{name}: {e}")))?;
    if message.len() as u64 > MAX_MESSAGE {
        return Err(Failure(format!("{name}: larger than the largest message ({MAX_MESSAGE} bytes)")));
    }
    Ok(message)
}

/// Sends every message, then waits until all are acknowledged.
fn send_all(
    link: &mut Link,
    messages: &[&[u8]],
    report: &mut SendReport,
) -> Result<(), framelink::std::LinkError> {
    for message in messages {
        link.send(message)?;
        report.sent += 1;
        report.bytes += message.len() as u64;
    }
    link.flush(None)
}

/// How many of `messages`, sent in order, `acked` acknowledged bytes cover (an empty message
/// counts once the bytes before it are acknowledged).
fn acknowledged(messages: &[&[u8]], acked: u64) -> u64 {
    let mut end = 0u64;
    let mut count = 0;
    for message in messages {
        end += message.len() as u64;
        if end > acked {
            break;
        }
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_messages_follow_acknowledged_bytes() {
        let messages: [&[u8]; 3] = [b"Hello, ", b"", b"Server!"];
        assert_eq!(acknowledged(&messages, 0), 0);
        assert_eq!(acknowledged(&messages, 7), 2);
        assert_eq!(acknowledged(&messages, 13), 2);
        assert_eq!(acknowledged(&messages, 14), 3);
    }
}
