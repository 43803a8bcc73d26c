//! `framelink ping ADDR [-c N] [-i MS] [--size B]`: ECHO requests, a line per reply as ping
//! prints them, then loss and round-trip times.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use clap::Args;
use framelink::core::service::{ServiceMessage, fill_pattern};
use framelink::std::{Addr, Link, LinkError, LinkEventRef};
use serde::Serialize;

use crate::client::{ConnectArgs, TICK, connect, parse_addr};
use crate::interrupt;
use crate::output::{self, Failure, Mode, Outcome, Report, Run, ms, us};
use crate::size;

/// Bytes of an ECHO message before its payload: tag, op, id.
const ECHO_HEADER: usize = 6;
/// The largest ECHO message `--size` takes.
const MAX_SIZE: u64 = 16 << 20;

/// Arguments of `framelink ping`.
#[derive(Args, Clone, Debug)]
pub(crate) struct PingArgs {
    /// Where: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT, serial://PORT[?baud=N] or
    /// HOST:PORT (TCP)
    pub(crate) addr: String,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    /// Stop after N requests [default: until Ctrl-C]
    #[arg(short = 'c', long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Milliseconds between requests; 0 sends each as soon as the previous reply is in
    #[arg(short = 'i', long, value_name = "MS", default_value_t = 1000)]
    pub(crate) interval: u64,
    /// Size of each ECHO message in bytes, its 6-byte header included (K, M: powers of 1024)
    #[arg(short = 's', long, value_name = "B", default_value = "64",
          value_parser = size::bytes_in(ECHO_HEADER as u64, MAX_SIZE))]
    pub(crate) size: u64,
    /// Milliseconds to wait for a reply before counting it lost [default: the larger of 1000
    /// and 4 intervals]
    #[arg(short = 'W', long = "wait", value_name = "MS")]
    pub(crate) timeout: Option<u64>,
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
        Some(Self {
            min: values[0],
            avg,
            max: values[values.len() - 1],
            mdev: (square - avg * avg).max(0.0).sqrt(),
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
    /// Requests without a reply in time, in percent of those sent.
    pub(crate) loss_percent: f64,
    /// From the first request to the end, in milliseconds.
    pub(crate) time_ms: f64,
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
            percent(self.loss_percent),
            self.time_ms
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

/// A loss in percent as ping writes it: `0`, `20`, `0.5`.
fn percent(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Runs `framelink ping`.
pub(crate) fn run(args: &PingArgs, mode: Mode) -> Run<PingReport> {
    let addr = parse_addr(&args.addr)?;
    let mut link = connect(&addr, &args.connect)?;
    if mode.is_text() {
        output::say(format_args!("PING {addr}: {}-byte ECHO messages", args.size));
    }
    let mut pinger = Pinger::new(args, &addr);
    let error = pinger.run(&mut link, mode);
    let error = match error {
        None => link.close().err().map(|e| Failure::at(&addr, e)),
        Some(error) => Some(error),
    };
    let report = pinger.report();
    let error = error
        .or_else(|| (report.transmitted > 0 && report.received == 0).then(|| Failure::at(&addr, "no reply")));
    Ok(Outcome::new(report, error))
}

/// The state of a ping run.
struct Pinger<'a> {
    addr: &'a Addr,
    size: u64,
    count: Option<u64>,
    interval: Duration,
    timeout: Duration,
    /// The ECHO payload (a pattern), sent each time and expected back.
    payload: Vec<u8>,
    /// The encoded request.
    request: Vec<u8>,
    /// Requests waiting for their reply: id and when it was sent, oldest first.
    outstanding: VecDeque<(u32, Instant)>,
    start: Instant,
    end: Instant,
    transmitted: u64,
    late: u64,
    samples: Vec<Duration>,
}

impl<'a> Pinger<'a> {
    fn new(args: &PingArgs, addr: &'a Addr) -> Self {
        let interval = Duration::from_millis(args.interval);
        let timeout = args.timeout.map_or((4 * interval).max(Duration::from_secs(1)), Duration::from_millis);
        let mut payload = vec![0; args.size as usize - ECHO_HEADER];
        fill_pattern(0, &mut payload);
        let now = Instant::now();
        Self {
            addr,
            size: args.size,
            count: args.count,
            interval,
            timeout,
            payload,
            request: vec![0; args.size as usize],
            outstanding: VecDeque::new(),
            start: now,
            end: now,
            transmitted: 0,
            late: 0,
            samples: Vec::new(),
        }
    }

    /// Pings until the count is reached and every reply is in or lost, or Ctrl-C; returns the
    /// error that stopped it early.
    fn run(&mut self, link: &mut Link, mode: Mode) -> Option<Failure> {
        self.start = Instant::now();
        let mut next_send = self.start;
        let error = loop {
            if interrupt::requested() {
                break None;
            }
            let now = Instant::now();
            while let Some(&(id, sent)) = self.outstanding.front() {
                if now.duration_since(sent) < self.timeout {
                    break;
                }
                self.outstanding.pop_front();
                if mode.is_text() {
                    output::say(format_args!("no reply for seq={id} within {} ms", self.timeout.as_millis()));
                }
            }
            let more = self.count.is_none_or(|count| self.transmitted < count);
            if !more && self.outstanding.is_empty() {
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
            if let Err(error) = self.receive(link, wake.saturating_duration_since(now), mode) {
                break Some(error);
            }
        };
        self.end = Instant::now();
        error
    }

    /// Sends the next ECHO.
    fn send(&mut self, link: &mut Link) -> Result<(), Failure> {
        let id = (self.transmitted + 1) as u32;
        let echo = ServiceMessage::Echo { id, payload: &self.payload };
        let len = echo.emit(&mut self.request).map_err(|e| Failure::at(self.addr, e))?;
        let sent = Instant::now();
        link.send(&self.request[..len]).map_err(|e| Failure::at(self.addr, e))?;
        self.outstanding.push_back((id, sent));
        self.transmitted += 1;
        Ok(())
    }

    /// Waits at most `wait` for a reply and takes it.
    fn receive(&mut self, link: &mut Link, wait: Duration, mode: Mode) -> Result<(), Failure> {
        let event = link.next_event_ref(Some(wait)).map_err(|e| Failure::at(self.addr, e))?;
        let arrived = Instant::now();
        let message = match event {
            Some(LinkEventRef::Message(message)) => message,
            Some(LinkEventRef::Closed(reason)) => {
                return Err(Failure::at(self.addr, LinkError::Closed(reason)));
            }
            _ => return Ok(()),
        };
        let (id, payload) = match ServiceMessage::parse(message) {
            Ok(Some(ServiceMessage::EchoReply { id, payload })) => (id, payload),
            Ok(Some(ServiceMessage::Error { error })) => {
                return Err(Failure::at(self.addr, format!("the responder answered: {error}")));
            }
            // Not an answer to a ping: not ours to judge.
            _ => return Ok(()),
        };
        let Some(position) = self.outstanding.iter().position(|&(waiting, _)| waiting == id) else {
            self.late += 1;
            return Ok(());
        };
        if payload != self.payload.as_slice() {
            return Err(Failure::at(
                self.addr,
                format!("the reply to seq={id} does not carry the request's payload"),
            ));
        }
        let len = message.len();
        let Some((_, sent)) = self.outstanding.remove(position) else { return Ok(()) };
        let rtt = arrived.duration_since(sent);
        self.samples.push(rtt);
        if mode.is_text() {
            output::say(format_args!("{len} bytes from {}: seq={id} time={} ms", self.addr, ms(rtt)));
        }
        Ok(())
    }

    /// The figures so far; requests still waiting count as lost.
    fn report(&self) -> PingReport {
        let received = self.samples.len() as u64;
        let loss_percent = if self.transmitted == 0 {
            0.0
        } else {
            ((self.transmitted - received) as f64 * 100.0 / self.transmitted as f64 * 1000.0).round() / 1000.0
        };
        PingReport {
            addr: self.addr.to_string(),
            size: self.size,
            transmitted: self.transmitted,
            received,
            late: self.late,
            loss_percent,
            time_ms: self.end.duration_since(self.start).as_secs_f64() * 1e3,
            rtt_us: RttSummary::of(&self.samples),
        }
    }
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
    fn loss_reads_like_ping() {
        assert_eq!(percent(0.0), "0");
        assert_eq!(percent(20.0), "20");
        assert_eq!(percent(0.5), "0.5");
        assert_eq!(percent(100.0 / 3.0), "33.333");
    }
}
