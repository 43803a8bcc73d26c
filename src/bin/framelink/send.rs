//! `framelink send ADDR MESSAGE...`: each message on its own; exits once all are acknowledged
//! and the session is closed.

use std::ffi::OsString;

use clap::Args;
use framelink::std::Link;
use serde::Serialize;

use crate::client::{connect, parse_addr};
use crate::output::{self, Failure, Mode, Outcome, Report, Run};

/// Arguments of `framelink send`.
#[derive(Args, Clone, Debug)]
pub(crate) struct SendArgs {
    /// Where: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT, serial://PORT[?baud=N] or
    /// HOST:PORT (TCP)
    pub(crate) addr: String,
    /// The messages, each sent as one message (the server prints each on its own line)
    #[arg(required = true, value_parser = clap::value_parser!(OsString))]
    pub(crate) messages: Vec<OsString>,
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
    let messages: Vec<&[u8]> = args.messages.iter().map(|m| m.as_encoded_bytes()).collect();
    let mut link = connect(&addr)?;
    let mut report = SendReport { addr: addr.to_string(), sent: 0, acknowledged: 0, bytes: 0 };
    let result = send_all(&mut link, &messages, &mut report);
    report.acknowledged = acknowledged(&messages[..report.sent as usize], link.stats().bytes_acked);
    let error = match result {
        Ok(()) => link.close().err(),
        Err(e) => Some(e),
    };
    Ok(Outcome::new(report, error.map(|e| Failure::at(&addr, e))))
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
