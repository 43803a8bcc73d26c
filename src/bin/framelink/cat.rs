//! `framelink cat ADDR` and `framelink cat --listen ADDR`: netcat for messages. Each line of
//! standard input becomes one message, and each message received is printed as one line, until
//! standard input ends (then the session closes once everything sent is acknowledged), the peer
//! closes, or Ctrl-C.
//!
//! With `--binary` both directions are records instead of lines: a u32 big-endian length, then
//! that many bytes (any bytes, newlines and zeros included).

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;
use std::time::Duration;

use clap::Args;
use framelink::core::session::SendError;
use framelink::std::{Link, LinkError, LinkEventRef, LinkListener};
use serde::Serialize;

use crate::client::{ConnectArgs, connect_with, parse_addr};
use crate::interrupt;
use crate::output::{self, Failure, Mode, Outcome, Report, Run};
use crate::size;

/// The longest a message read from standard input waits to be sent while the link waits for
/// the peer.
const INPUT_LATENCY: Duration = Duration::from_millis(20);
/// Messages read ahead of the link.
const INPUT_QUEUE: usize = 64;

/// Arguments of `framelink cat`.
#[derive(Args, Clone, Debug)]
pub(crate) struct CatArgs {
    /// Where: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT, serial://PORT[?baud=N] or
    /// HOST:PORT (TCP); with --listen, where to wait for the peer (port 0 picks a free port)
    pub(crate) addr: String,
    /// Wait at ADDR for one peer (a `framelink cat`, a library client, a device on a serial
    /// port) instead of connecting to it. The end of standard input closes the session here
    /// too: to watch what a program sends, run it from a terminal (not `< /dev/null`)
    #[arg(short = 'l', long)]
    pub(crate) listen: bool,
    /// Records instead of lines, both ways: a u32 big-endian length, then that many bytes
    #[arg(short = 'b', long)]
    pub(crate) binary: bool,
    /// The largest message taken and sent, such as 64K or 16M (at most 1G)
    #[arg(long, value_name = "BYTES", default_value = "256K", value_parser = size::bytes_in(1, 1 << 30))]
    pub(crate) max_message: u64,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// What `cat` did.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct CatReport {
    /// The address connected to or listened on.
    pub(crate) addr: String,
    /// The peer, once there is one.
    pub(crate) peer: Option<String>,
    /// Messages sent (lines or records of standard input).
    pub(crate) sent: u64,
    /// Their bytes.
    pub(crate) sent_bytes: u64,
    /// Bytes of them the peer acknowledged.
    pub(crate) acknowledged_bytes: u64,
    /// Messages received (printed).
    pub(crate) received: u64,
    /// Their bytes.
    pub(crate) received_bytes: u64,
}

impl Report for CatReport {
    fn print_text(&self) {
        // On stderr: stdout carries only the messages.
        eprintln!(
            "sent {} ({} bytes, {} acknowledged), received {} ({} bytes)",
            output::count(self.sent, "message"),
            self.sent_bytes,
            self.acknowledged_bytes,
            output::count(self.received, "message"),
            self.received_bytes
        );
    }
}

/// What the standard input thread hands over.
enum Input {
    Message(Vec<u8>),
    End,
    Failed(String),
}

/// Runs `framelink cat`.
pub(crate) fn run(args: &CatArgs, _mode: Mode) -> Run<CatReport> {
    let addr = parse_addr(&args.addr)?;
    let config = args.connect.config().max_message(args.max_message as u32);
    let mut report = CatReport { addr: addr.to_string(), ..CatReport::default() };
    let mut link = if args.listen {
        let listener =
            LinkListener::bind(&addr).map_err(|e| Failure(format!("cannot listen on {addr}: {e}")))?;
        report.addr = listener.local_addr().to_string();
        eprintln!("listening on {}", report.addr);
        match listener.accept(&config) {
            Ok(link) => link,
            Err(LinkError::Interrupted) => return Ok(Outcome::new(report, None)),
            Err(e) => return Err(Failure::at(&report.addr, e)),
        }
    } else {
        connect_with(&addr, &config)?
    };
    let peer = peer_name(&link);
    if args.listen {
        eprintln!("{peer} connected");
    }
    report.peer = Some(peer.clone());
    let input = read_input(args.binary, args.max_message);
    let mut printer = Printer { out: BufWriter::new(io::stdout().lock()), binary: args.binary };
    let result = exchange(&mut link, &input, &mut printer, &mut report);
    report.acknowledged_bytes = link.stats().bytes_acked;
    let error = match result {
        Ok(Ending::Input) => link.close().err(),
        Ok(Ending::Peer | Ending::Interrupted) | Err(LinkError::Interrupted) => None,
        Err(e) => Some(e),
    };
    Ok(Outcome::new(report, error.map(|e| Failure::at(&peer, e))))
}

/// The peer, as the log names it.
fn peer_name(link: &Link) -> String {
    match (link.transport(), link.port_name()) {
        (_, Some(port)) => format!("serial://{port}"),
        (transport, None) => format!("{}://{}", transport.scheme(), link.peer_addr()),
    }
}

/// Why the exchange ended.
enum Ending {
    /// Standard input ended and everything sent was acknowledged: close.
    Input,
    /// The peer closed the session.
    Peer,
    /// Ctrl-C.
    Interrupted,
}

/// Sends what standard input gives and prints what the peer sends, until one of them ends.
fn exchange(
    link: &mut Link,
    input: &Receiver<Input>,
    printer: &mut Printer<'_>,
    report: &mut CatReport,
) -> Result<Ending, LinkError> {
    let mut input_open = true;
    loop {
        if interrupt::requested() {
            return Ok(Ending::Interrupted);
        }
        while input_open {
            match input.try_recv() {
                Ok(Input::Message(message)) => match link.send(&message) {
                    Ok(()) => {
                        report.sent += 1;
                        report.sent_bytes += message.len() as u64;
                    }
                    // The peer is closing: what it sent before is still to print.
                    Err(LinkError::Send(SendError::Closing | SendError::Closed)) => {
                        return drain(link, printer, report);
                    }
                    Err(e) => return Err(e),
                },
                Ok(Input::End) | Err(TryRecvError::Disconnected) => input_open = false,
                Ok(Input::Failed(error)) => {
                    return Err(LinkError::Io(io::Error::new(io::ErrorKind::InvalidData, error)));
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        if !input_open {
            return finish_input(link, printer, report);
        }
        match link.next_event_ref(Some(INPUT_LATENCY))? {
            Some(LinkEventRef::Message(message)) => printer.print(message, report)?,
            Some(LinkEventRef::Closed(reason)) => return ended(reason),
            _ => {}
        }
    }
}

/// Standard input has ended: waits until the peer has acknowledged everything, printing what
/// it sends meanwhile.
fn finish_input(
    link: &mut Link,
    printer: &mut Printer<'_>,
    report: &mut CatReport,
) -> Result<Ending, LinkError> {
    loop {
        let flushed = match link.flush(Some(INPUT_LATENCY)) {
            Ok(()) => true,
            Err(LinkError::TimedOut) => false,
            Err(e) => return Err(e),
        };
        while let Some(event) = link.next_event_ref(Some(Duration::ZERO))? {
            match event {
                LinkEventRef::Message(message) => printer.print(message, report)?,
                LinkEventRef::Closed(reason) => return ended(reason),
                _ => {}
            }
        }
        if flushed {
            return Ok(Ending::Input);
        }
    }
}

/// The peer closed while this side had more to send: prints what it sent before, and ends as
/// the session did.
fn drain(link: &mut Link, printer: &mut Printer<'_>, report: &mut CatReport) -> Result<Ending, LinkError> {
    // The session ends soon (at the latest at its close timeout), or Ctrl-C.
    loop {
        match link.next_event_ref(None)? {
            Some(LinkEventRef::Message(message)) => printer.print(message, report)?,
            Some(LinkEventRef::Closed(reason)) => return ended(reason),
            _ => {}
        }
    }
}

/// The peer's end of the session: graceful, or an error.
fn ended(reason: framelink::core::session::CloseReason) -> Result<Ending, LinkError> {
    use framelink::core::session::CloseReason;
    match reason {
        CloseReason::Peer | CloseReason::Local => Ok(Ending::Peer),
        other => Err(LinkError::Closed(other)),
    }
}

/// Writes received messages on stdout.
struct Printer<'a> {
    out: BufWriter<io::StdoutLock<'a>>,
    binary: bool,
}

impl Printer<'_> {
    /// One message: a line, or a record. A stdout that is gone (`| head`) ends the command as
    /// Ctrl-C does.
    fn print(&mut self, message: &[u8], report: &mut CatReport) -> Result<(), LinkError> {
        report.received += 1;
        report.received_bytes += message.len() as u64;
        let written = if self.binary {
            let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
            self.out.write_all(&len.to_be_bytes()).and_then(|()| self.out.write_all(message))
        } else {
            self.out.write_all(message).and_then(|()| self.out.write_all(b"\n"))
        };
        match written.and_then(|()| self.out.flush()) {
            Ok(()) => Ok(()),
            Err(_) => {
                interrupt::request();
                Err(LinkError::Interrupted)
            }
        }
    }
}

/// Reads standard input on a thread of its own: lines, or records, each one message.
fn read_input(binary: bool, max_message: u64) -> Receiver<Input> {
    let (sender, receiver) = mpsc::sync_channel(INPUT_QUEUE);
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let next = if binary {
                read_record(&mut stdin, max_message)
            } else {
                read_line(&mut stdin, max_message)
            };
            let last = !matches!(next, Input::Message(_));
            if sender.send(next).is_err() || last {
                return;
            }
        }
    });
    receiver
}

/// The next line, without its `\n` (or `\r\n`); a last line without one counts too.
fn read_line(input: &mut impl BufRead, max_message: u64) -> Input {
    let mut line = Vec::new();
    match input.take(max_message + 2).read_until(b'\n', &mut line) {
        Ok(0) => return Input::End,
        Ok(_) => {}
        Err(e) => return Input::Failed(format!("standard input: {e}")),
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() as u64 > max_message {
        return Input::Failed(format!(
            "a line of standard input is longer than --max-message ({max_message} bytes)"
        ));
    }
    Input::Message(line)
}

/// The next record: a u32 big-endian length, then that many bytes.
fn read_record(input: &mut impl Read, max_message: u64) -> Input {
    let mut prefix = [0u8; 4];
    let mut have = 0;
    while have < prefix.len() {
        match input.read(&mut prefix[have..]) {
            Ok(0) if have == 0 => return Input::End,
            Ok(0) => return Input::Failed("standard input ended inside a record's length".to_owned()),
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Input::Failed(format!("standard input: {e}")),
        }
    }
    let len = u64::from(u32::from_be_bytes(prefix));
    if len > max_message {
        return Input::Failed(format!(
            "a record of {len} bytes is larger than --max-message ({max_message} bytes)"
        ));
    }
    let mut record = vec![0u8; len as usize];
    match input.read_exact(&mut record) {
        Ok(()) => Input::Message(record),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Input::Failed(format!("standard input ended inside a record of {len} bytes"))
        }
        Err(e) => Input::Failed(format!("standard input: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(mut next: impl FnMut() -> Input) -> (Vec<Vec<u8>>, Option<String>) {
        let mut out = Vec::new();
        for _ in 0..100 {
            match next() {
                Input::Message(m) => out.push(m),
                Input::End => return (out, None),
                Input::Failed(e) => return (out, Some(e)),
            }
        }
        panic!("no end")
    }

    #[test]
    fn lines_lose_their_ends() {
        let mut input = &b"one\ntwo\r\n\nlast"[..];
        let (lines, error) = messages(|| read_line(&mut input, 100));
        assert_eq!(lines, [&b"one"[..], b"two", b"", b"last"]);
        assert_eq!(error, None);
        let mut long = &b"0123456789\n"[..];
        assert!(messages(|| read_line(&mut long, 5)).1.is_some_and(|e| e.contains("--max-message")));
    }

    #[test]
    fn records_are_length_prefixed() {
        let mut bytes = Vec::new();
        for record in [&b"a\nb"[..], b"", b"\0\xff"] {
            bytes.extend_from_slice(&(record.len() as u32).to_be_bytes());
            bytes.extend_from_slice(record);
        }
        let mut input = &bytes[..];
        let (records, error) = messages(|| read_record(&mut input, 100));
        assert_eq!(records, [&b"a\nb"[..], b"", b"\0\xff"]);
        assert_eq!(error, None);
        let mut cut = &bytes[..bytes.len() - 1][..];
        assert!(messages(|| read_record(&mut cut, 100)).1.is_some_and(|e| e.contains("inside a record")));
        let mut big = &[0u8, 0, 1, 0][..];
        assert!(messages(|| read_record(&mut big, 100)).1.is_some_and(|e| e.contains("larger than")));
    }
}
