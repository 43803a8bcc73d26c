//! `framelink ping ADDR [-c N] [-i S] [-W S] [-w S] [-q] [--size B]`: ECHO requests, a line per
//! reply as ping prints them, then loss, the transport's retransmissions and round-trip times.
//! Times on the command line are seconds with fractions, as ping(8) takes them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use clap::Args;
use framelink::core::service::{Client, ClientError, ECHO_HEADER, Pending, Reply, fill_pattern, op};
use framelink::std::{Addr, Link, LinkError, LinkEventRef, ServiceClient};
use serde::Serialize;

use crate::client::{ConnectArgs, TICK, cancellable, connect, parse_addr};
use crate::interrupt;
use crate::output::{self, Failure, Mode, Outcome, Report, Run, ms, us};
use crate::{seconds, size};

/// The largest ECHO message `--size` takes.
const MAX_SIZE: u64 = 16 << 20;
/// The longest `-i`, `-W` or `-w`: about 11 days.
const MAX_SECONDS: f64 = 1e6;

/// Arguments of `framelink ping`.
#[derive(Args, Clone, Debug)]
pub(crate) struct PingArgs {
    /// Where: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT, serial://PORT[?baud=N] or
    /// HOST:PORT (TCP)
    pub(crate) addr: String,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Stop after N requests (with -w: once N replies are in) [default: until Ctrl-C]
    #[arg(short = 'c', long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Seconds between requests, fractions allowed (0.2); 0 sends each as soon as the previous
    /// reply is in
    #[arg(short = 'i', long, value_name = "S", default_value = "1",
          value_parser = seconds::zero_or_within(0.001, MAX_SECONDS))]
    pub(crate) interval: Duration,
    /// Size of each ECHO message in bytes, its 6-byte header included (K, M: powers of 1024)
    #[arg(short = 's', long, value_name = "B", default_value = "64",
          value_parser = size::bytes_in(ECHO_HEADER as u64, MAX_SIZE))]
    pub(crate) size: u64,
    /// Seconds to wait for each reply before counting it lost [default: the larger of 1 and 4
    /// intervals]
    #[arg(short = 'W', long = "wait", value_name = "S", value_parser = seconds::within(0.001, MAX_SECONDS))]
    pub(crate) timeout: Option<Duration>,
    /// Seconds after which ping stops, whatever was sent or received
    #[arg(short = 'w', long, value_name = "S", value_parser = seconds::within(0.001, MAX_SECONDS))]
    pub(crate) deadline: Option<Duration>,
    /// Quiet: the opening line and the summary only
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

/// Round-trip times in microseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct RttSummary {
    /// The shortest.
    pub(crate) min: f64,
    /// The mean.
    pub(crate) avg: f64,
    /// The longest.
    pub(crate) max: f64,
    /// The standard deviation (ping's mdev).
    pub(crate) mdev: f64,
    /// The median (nearest rank).
    pub(crate) p50: f64,
    /// The 99th percentile (nearest rank).
    pub(crate) p99: f64,
}

impl RttSummary {
    /// The summary of `samples`; `None` without one.
    pub(crate) fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len() as f64;
        let values: Vec<f64> = sorted.iter().copied().map(us).collect();
        let avg = values.iter().sum::<f64>() / n;
        let square = values.iter().map(|v| v * v).sum::<f64>() / n;
        let rank = |p: f64| values[((p / 100.0 * n).ceil() as usize).clamp(1, values.len()) - 1];
        // To the nanosecond, as measured: no float noise in the JSON.
        let ns = |us: f64| output::round(us, 3);
        Some(Self {
            min: values[0],
            avg: ns(avg),
            max: values[values.len() - 1],
            mdev: ns((square - avg * avg).max(0.0).sqrt()),
            p50: rank(50.0),
            p99: rank(99.0),
        })
    }
}

/// What `ping` measured.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PingReport {
    /// The peer.
    pub(crate) addr: String,
    /// Bytes of each ECHO message.
    pub(crate) size: u64,
    /// Requests sent.
    pub(crate) transmitted: u64,
    /// Replies received in time.
    pub(crate) received: u64,
    /// Replies that came after their timeout (counted lost).
    pub(crate) late: u64,
    /// Requests without a reply in time, in percent of those sent (three decimals).
    pub(crate) loss_percent: f64,
    /// From the first request to the end, in milliseconds (three decimals).
    pub(crate) time_ms: f64,
    /// DATA packets of the requests that this side's session sent again: the transport's own
    /// loss, hidden under the round-trip times.
    pub(crate) retransmits: u64,
    /// DATA packets of the replies that the responder sent again, from its STATS at the end;
    /// `null` when it could not be asked (Ctrl-C, no reply, a failure).
    pub(crate) responder_retransmits: Option<u64>,
    /// The DATA packets sent again, in percent of all DATA packets sent both ways (this side's
    /// only when the responder's count is unknown), three decimals.
    pub(crate) retransmit_percent: f64,
    /// Round-trip times, in microseconds; `null` without a reply.
    pub(crate) rtt_us: Option<RttSummary>,
}

impl Report for PingReport {
    fn print_text(&self) {
        output::say(format_args!("--- {} ping statistics ---", self.addr));
        output::say(format_args!(
            "{} transmitted, {} received, {}% loss, time {:.0} ms",
            self.transmitted,
            self.received,
            output::plain(self.loss_percent),
            self.time_ms
        ));
        let resent = match self.responder_retransmits {
            Some(replies) => format!(
                "{} and {} sent again",
                output::count(self.retransmits, "request"),
                output::count(replies, "reply")
            ),
            None => format!(
                "{} sent again (the responder's count unknown)",
                output::count(self.retransmits, "request")
            ),
        };
        output::say(format_args!(
            "transport: {resent}, {}% of DATA packets retransmitted",
            output::plain(self.retransmit_percent)
        ));
        if let Some(rtt) = &self.rtt_us {
            let ms = |us: f64| format!("{:.3}", us / 1e3);
            output::say(format_args!(
                "rtt min/avg/max/mdev = {}/{}/{}/{} ms, p50 {} ms, p99 {} ms",
                ms(rtt.min),
                ms(rtt.avg),
                ms(rtt.max),
                ms(rtt.mdev),
                ms(rtt.p50),
                ms(rtt.p99)
            ));
        }
    }
}

/// Runs `framelink ping`.
pub(crate) fn run(args: &PingArgs, mode: Mode) -> Run<PingReport> {
    let addr = parse_addr(&args.addr)?;
    let mut link = connect(&addr, &args.connect)?;
    if mode.is_text() {
        output::say(format_args!("PING {addr}: {}-byte ECHO messages", args.size));
    }
    let mut pinger = Pinger::new(args, &addr, mode.is_text() && !args.quiet);
    let error = pinger.run(&mut link);
    let retransmits = link.stats().retransmits;
    let max_payload = link.peer().map_or(u64::MAX, |peer| u64::from(peer.max_payload.max(1)));
    // The responder's retransmissions, from its STATS, asked for only while it has been
    // answering, and waited for no longer than an ECHO reply; Ctrl-C ends the wait.
    let mut service = ServiceClient::new(link).with_timeout(pinger.timeout);
    let responder = (error.is_none() && !interrupt::requested() && !pinger.samples.is_empty())
        .then(|| cancellable(&mut service, ServiceClient::stats).ok())
        .flatten()
        .map(|stats| ResponderStats { retransmits: stats.retransmits, echoes: stats.echoes });
    let error = match error {
        None => service.close().err().map(|e| Failure::at(&addr, e)),
        Some(error) => Some(error),
    };
    let report = pinger.report(retransmits, responder, max_payload);
    let error = error.or_else(|| pinger.shortfall(&report));
    Ok(Outcome::new(report, error))
}

/// The responder's counters that ping reports.
#[derive(Clone, Copy, Debug)]
struct ResponderStats {
    /// DATA packets it sent again.
    retransmits: u64,
    /// ECHOs it answered.
    echoes: u64,
}

/// The state of a ping run.
struct Pinger<'a> {
    addr: &'a Addr,
    size: u64,
    count: Option<u64>,
    interval: Duration,
    timeout: Duration,
    deadline: Option<Duration>,
    /// Whether a line goes out per reply (text, without `-q`).
    verbose: bool,
    /// The ECHO payload (a pattern), sent each time and expected back.
    payload: Vec<u8>,
    /// Writes the requests and recognises their replies.
    client: Client,
    /// The encoded request.
    request: Vec<u8>,
    /// Requests waiting for their reply, and when each was sent, oldest first.
    outstanding: VecDeque<(Pending, Instant)>,
    start: Instant,
    end: Instant,
    transmitted: u64,
    late: u64,
    samples: Vec<Duration>,
}

impl<'a> Pinger<'a> {
    fn new(args: &PingArgs, addr: &'a Addr, verbose: bool) -> Self {
        let timeout = args.timeout.unwrap_or((4 * args.interval).max(Duration::from_secs(1)));
        let mut payload = vec![0; args.size as usize - ECHO_HEADER];
        fill_pattern(0, &mut payload);
        let now = Instant::now();
        Self {
            addr,
            size: args.size,
            count: args.count,
            interval: args.interval,
            timeout,
            deadline: args.deadline,
            verbose,
            payload,
            client: Client::new(),
            request: vec![0; args.size as usize],
            outstanding: VecDeque::new(),
            start: now,
            end: now,
            transmitted: 0,
            late: 0,
            samples: Vec::new(),
        }
    }

    /// Whether another request goes out: until the count is sent, or with a deadline (as
    /// ping(8) -w), until the count is answered.
    fn more(&self) -> bool {
        match (self.count, self.deadline) {
            (None, _) => true,
            (Some(count), None) => self.transmitted < count,
            (Some(count), Some(_)) => (self.samples.len() as u64) < count,
        }
    }

    /// Pings until the count is reached and every reply is in or lost, the deadline passes or
    /// Ctrl-C; returns the error that stopped it early.
    fn run(&mut self, link: &mut Link) -> Option<Failure> {
        self.start = Instant::now();
        let deadline = self.deadline.map(|d| self.start + d);
        let mut next_send = self.start;
        let error = loop {
            if interrupt::requested() {
                break None;
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                break None;
            }
            while let Some(&(pending, sent)) = self.outstanding.front() {
                if now.duration_since(sent) < self.timeout {
                    break;
                }
                self.outstanding.pop_front();
                if self.verbose {
                    output::say(format_args!(
                        "no reply for seq={} within {} s",
                        pending.id(),
                        output::plain(self.timeout.as_secs_f64())
                    ));
                }
            }
            let more = self.more();
            if !more && (self.outstanding.is_empty() || deadline.is_some()) {
                break None;
            }
            // Back to back (`-i 0`): the next request once the previous reply is in.
            let may_send = more && (!self.interval.is_zero() || self.outstanding.is_empty());
            if may_send && now >= next_send {
                if let Err(error) = self.send(link) {
                    break Some(error);
                }
                next_send = (next_send + self.interval).max(now);
                continue;
            }
            let mut wake = now + TICK;
            if may_send {
                wake = wake.min(next_send);
            }
            if let Some(&(_, sent)) = self.outstanding.front() {
                wake = wake.min(sent + self.timeout);
            }
            if let Some(deadline) = deadline {
                wake = wake.min(deadline);
            }
            if let Err(error) = self.receive(link, wake.saturating_duration_since(now)) {
                break Some(error);
            }
        };
        self.end = Instant::now();
        error
    }

    /// Sends the next ECHO.
    fn send(&mut self, link: &mut Link) -> Result<(), Failure> {
        let (len, pending) =
            self.client.echo(&self.payload, &mut self.request).map_err(|e| Failure::at(self.addr, e))?;
        let sent = Instant::now();
        link.send(&self.request[..len]).map_err(|e| Failure::at(self.addr, e))?;
        self.outstanding.push_back((pending, sent));
        self.transmitted += 1;
        Ok(())
    }

    /// Waits at most `wait` for a reply and takes it.
    fn receive(&mut self, link: &mut Link, wait: Duration) -> Result<(), Failure> {
        let addr = self.addr;
        let event = link.next_event_ref(Some(wait)).map_err(|e| Failure::at(addr, e))?;
        let arrived = Instant::now();
        let message = match event {
            Some(LinkEventRef::Message(message)) => message,
            Some(LinkEventRef::Closed(reason)) => return Err(Failure::at(addr, LinkError::Closed(reason))),
            _ => return Ok(()),
        };
        let id = match Reply::parse(message) {
            Ok(Some(Reply::Echo { id, .. })) => id,
            Ok(Some(Reply::Error(error))) if error.op() == op::ECHO => {
                return Err(Failure::at(addr, ClientError::Responder(error)));
            }
            // Not an answer to a ping: not ours to judge.
            _ => return Ok(()),
        };
        let Some(position) = self.outstanding.iter().position(|(pending, _)| pending.id() == id) else {
            self.late += 1;
            return Ok(());
        };
        let Some((mut pending, sent)) = self.outstanding.remove(position) else { return Ok(()) };
        match pending.accept(message) {
            Ok(Some(Reply::Echo { payload, .. })) if payload == self.payload.as_slice() => {}
            Ok(_) | Err(ClientError::EchoMismatch) => {
                return Err(Failure::at(
                    addr,
                    format!("the reply to seq={id} does not carry the request's payload"),
                ));
            }
            Err(error) => return Err(Failure::at(addr, error)),
        }
        let rtt = arrived.duration_since(sent);
        self.samples.push(rtt);
        if self.verbose {
            output::say(format_args!("{} bytes from {addr}: seq={id} time={} ms", message.len(), ms(rtt)));
        }
        Ok(())
    }

    /// The figures so far; requests still waiting count as lost. `retransmits` is this side's
    /// count; messages go out in DATA packets of at most `max_payload` bytes.
    fn report(&self, retransmits: u64, responder: Option<ResponderStats>, max_payload: u64) -> PingReport {
        let received = self.samples.len() as u64;
        let packets = self.size.div_ceil(max_payload);
        let (resent, first) = match responder {
            Some(r) => (retransmits + r.retransmits, (self.transmitted + r.echoes) * packets),
            None => (retransmits, self.transmitted * packets),
        };
        PingReport {
            addr: self.addr.to_string(),
            size: self.size,
            transmitted: self.transmitted,
            received,
            late: self.late,
            loss_percent: percent(self.transmitted - received, self.transmitted),
            time_ms: output::round(self.end.duration_since(self.start).as_secs_f64() * 1e3, 3),
            retransmits,
            responder_retransmits: responder.map(|r| r.retransmits),
            retransmit_percent: percent(resent, first + resent),
            rtt_us: RttSummary::of(&self.samples),
        }
    }

    /// The failure of a run that ended without one: no reply at all, or (with both `-c` and
    /// `-w`, as ping(8)) fewer replies than asked for by the deadline.
    fn shortfall(&self, report: &PingReport) -> Option<Failure> {
        if report.transmitted > 0 && report.received == 0 {
            return Some(Failure::at(self.addr, "no reply"));
        }
        let (count, deadline) = (self.count?, self.deadline?);
        (report.received < count && !interrupt::requested()).then(|| {
            Failure::at(
                self.addr,
                format!(
                    "{} of {count} replies within the {} s deadline",
                    report.received,
                    output::plain(deadline.as_secs_f64())
                ),
            )
        })
    }
}

/// `part` in percent of `whole`, to three decimals; 0 of nothing.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { output::round(part as f64 * 100.0 / whole as f64, 3) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_micros(v)).collect()
    }

    #[test]
    fn rtt_summary_is_exact() {
        assert!(RttSummary::of(&[]).is_none());
        let one = RttSummary::of(&us(&[5])).unwrap();
        assert_eq!((one.min, one.avg, one.max, one.mdev, one.p50, one.p99), (5.0, 5.0, 5.0, 0.0, 5.0, 5.0));
        // 1..=100 µs: nearest-rank p50 is the 50th value, p99 the 99th.
        let hundred = RttSummary::of(&us(&(1..=100).rev().collect::<Vec<_>>())).unwrap();
        assert_eq!((hundred.min, hundred.max, hundred.p50, hundred.p99), (1.0, 100.0, 50.0, 99.0));
        assert_eq!(hundred.avg, 50.5);
        let two = RttSummary::of(&us(&[10, 20])).unwrap();
        assert_eq!((two.mdev, two.p50, two.p99), (5.0, 10.0, 20.0));
    }

    #[test]
    fn percentages_have_three_decimals() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(1, 5), 20.0);
        assert_eq!(percent(1, 3), 33.333);
        assert_eq!(percent(2, 3), 66.667);
        assert_eq!(serde_json::to_string(&percent(1, 3)).unwrap(), "33.333");
    }

    #[test]
    fn rtt_in_json_has_no_float_noise() {
        let summary = RttSummary::of(&us(&[1, 2, 2])).unwrap();
        let json = serde_json::to_string(&summary).unwrap();
        assert!(json.contains(r#""avg":1.667"#) && json.contains(r#""mdev":0.471"#), "{json}");
    }
}
